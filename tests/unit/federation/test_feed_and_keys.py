"""Signed feed requests and pages; the node key helpers."""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from shared.federation.envelope import (
    KeyRing, SignatureInvalid, generate_keypair, public_key_b64, sign, verify,
)
from shared.federation.feed import (
    FeedPageInvalid, FeedRefused, page_body, parse_page, request_headers, verify_page,
    verify_request,
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


def _vouched_body(keys, vouch=True, key=None):
    """district-a's page of two signed entries, as ``Federation.feed_page`` writes it."""
    texts = [json.dumps(sign({"event_id": "e%d" % s, "origin": "district-a", "origin_seq": s,
                              "type": "Case.Published", "schema_version": 1, "sharing": "all",
                              "recipients": [], "payload": {"title": "标题%d" % s},
                              "occurred_at": "2025-03-01T08:00:00.000000Z",
                              "owner": "district-a"}, keys["district-a"]),
                         ensure_ascii=False, separators=(",", ":")) for s in (1, 3)]
    return page_body(key or keys["district-a"], "district-a", "city", 0, 5, 9,
                     [(s, "e%d" % s, t) for s, t in zip((1, 3), texts)], vouch=vouch)


def _verified(data, ring):
    body, raw = parse_page(data)
    return verify_page(body, "district-a", "city", 0, ring, raw)


def test_a_vouched_page_covers_the_exact_bytes_of_its_entries(keys, ring):
    page = _verified(_vouched_body(keys), ring)
    assert page.vouched and [e["title"] for e in (x["payload"] for x in page.entries)] == \
        ["标题1", "标题3"]
    for e in page.entries:  # what the receiver then skips holds: each verifies anyway
        verify(e, ring)
        verify(e, ring, vouched=True)
    # not vouched: no entries_signature, or none by the origin's key
    assert not _verified(_vouched_body(keys, vouch=False), ring).vouched
    with pytest.raises(FeedPageInvalid):  # (the page signature is the city's too)
        _verified(_vouched_body(keys, key=keys["city"]), ring)


@pytest.mark.parametrize("change", ["entry_altered", "second_entries_key", "re_encoded",
                                    "no_raw"])
def test_an_altered_vouched_page_is_not_vouched_and_its_entries_are_checked(keys, ring, change):
    """Whatever happened to the bytes on the way, the page is at best unvouched: each
    entry is then verified on its own, and an altered one is refused (SignatureInvalid
    - the receiver stops before it, never skips it)."""
    data = _vouched_body(keys)
    if change == "entry_altered":  # same (seq, event id): the page signature still holds
        data = data.replace("标题3".encode(), "篡改3".encode())
    elif change == "second_entries_key":  # a whole-body parse would take these entries
        body = json.loads(data)
        extra = dict(body["entries"][1], payload={"title": "篡改3"})
        data = data[:-1] + b',"entries":' + json.dumps([body["entries"][0], extra]).encode() + b"}"
    elif change == "re_encoded":
        data = json.dumps(json.loads(data), indent=1).encode()
    body, raw = parse_page(data)
    page = verify_page(body, "district-a", "city", 0, ring, None if change == "no_raw" else raw)
    assert not page.vouched
    if change in ("entry_altered", "second_entries_key"):
        with pytest.raises(SignatureInvalid):
            verify(page.entries[1], ring)
        with pytest.raises(ValueError):  # a non-origin signer is never vouched for
            verify(dict(page.entries[1], signer="city"), ring, vouched=True)


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
