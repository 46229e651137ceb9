"""Signed feed requests and pages; the node key helpers."""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from shared.federation.envelope import KeyRing, generate_keypair, public_key_b64
from shared.federation.feed import (
    FeedPageInvalid, FeedRefused, page_body, request_headers, verify_page, verify_request,
)
from shared.federation.keys import (
    MissingNodeKey, identity, init_this_node, load_node_key, load_or_create_node_key, node_key_path,
    node_registry,
)


@pytest.fixture
def keys():
    return {n: generate_keypair()[0] for n in ("city", "district-a")}


@pytest.fixture
def ring(keys):
    return KeyRing({n: k.public_key() for n, k in keys.items()})


def test_request_round_trip(keys, ring):
    h = request_headers(keys["city"], "city", "district-a", 10, 500)
    assert verify_request(h, "district-a", 10, 500, ring) == "city"


@pytest.mark.parametrize("change", ["origin", "after", "limit", "skew", "missing"])
def test_request_is_bound_to_what_was_asked(keys, ring, change):
    now = datetime.now(timezone.utc)
    h = request_headers(keys["city"], "city", "district-a", 10, 500,
                        now=now - timedelta(minutes=10) if change == "skew" else now)
    args = {"origin": "district-a", "after": 10, "limit": 500}
    if change == "origin":
        args["origin"] = "district-b"
    elif change == "after":
        args["after"] = 0
    elif change == "limit":
        args["limit"] = 1000
    elif change == "missing":
        h.pop("X-Qinglian-Signature")
    with pytest.raises(FeedRefused):
        verify_request(h, args["origin"], args["after"], args["limit"], ring)


def _page(keys, entries):
    body = page_body(keys["district-a"], "district-a", "city", 0, 5, 9,
                     [(s, "e%d" % s, json.dumps({"origin": "district-a", "origin_seq": s,
                                                 "event_id": "e%d" % s})) for s in entries])
    return json.loads(body)


def test_page_round_trip(keys, ring):
    page = verify_page(_page(keys, [1, 3]), "district-a", "city", 0, ring)
    assert [e["origin_seq"] for e in page.entries] == [1, 3]
    assert (page.through, page.head, page.complete) == (5, 9, False)


@pytest.mark.parametrize("forge", ["through", "drop", "add_foreign", "order", "signer"])
def test_forged_pages_are_refused(keys, ring, forge):
    body = _page(keys, [1, 3])
    if forge == "through":
        body["through"] = 9
    elif forge == "drop":
        body["entries"] = body["entries"][:1]
    elif forge == "add_foreign":
        body["entries"].append({"origin": "district-b", "origin_seq": 4, "event_id": "x"})
    elif forge == "order":
        body["entries"].reverse()
    elif forge == "signer":
        body = json.loads(page_body(keys["city"], "district-a", "city", 0, 5, 9, []))
    with pytest.raises(FeedPageInvalid):
        verify_page(body, "district-a", "city", 0, ring)


def test_node_key_is_created_once_private_and_reused(tmp_path):
    cfg = {"QINGLIAN_VAR": str(tmp_path), "NODE_ID": "district-a"}
    with pytest.raises(MissingNodeKey):
        load_node_key(cfg)
    key = load_or_create_node_key(cfg)
    path = node_key_path(cfg)
    assert path == tmp_path / "district-a" / "keys" / "node.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert public_key_b64(load_or_create_node_key(cfg)) == public_key_b64(key)
    assert not list(path.parent.glob("*.tmp"))


def test_init_this_node_and_identity(tmp_path):
    cfg = {"QINGLIAN_VAR": str(tmp_path), "NODE_ID": "district-a", "NODE_LEVEL": "district",
           "NODE_PARENT": "city"}
    rec = init_this_node(cfg, feed_url="http://a.example:8104/feed")
    assert (rec.node_id, rec.level, rec.parent) == ("district-a", "district", "city")
    again = init_this_node(cfg, feed_url="http://a.example:8104/feed")
    assert again.public_key == rec.public_key
    ident = identity(cfg)
    assert ident == {"node_id": "district-a", "level": "district", "parent": "city",
                     "public_key": rec.public_key, "feed_url": "http://a.example:8104/feed"}
    assert node_registry(cfg).this_node().node_id == "district-a"
