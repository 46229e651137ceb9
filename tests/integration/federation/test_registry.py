"""The registry of trusted nodes, on SQLite and on PostgreSQL (the ``engine`` fixture
runs every test on both)."""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import inspect

from shared.federation.envelope import (
    KeyResolver,
    SignatureInvalid,
    UntrustedNode,
    generate_keypair,
    public_key_b64,
    sign,
    verify,
)
from shared.federation.registry import KeyConflict, NodeRegistry, metadata


def envelope(origin="district-a"):
    return {
        "event_id": str(uuid.uuid4()), "origin": origin, "origin_seq": 1,
        "type": "Problem.Posted", "schema_version": 1, "sharing": "all", "recipients": [],
        "payload": {"title": "基层小微权力监督难题", "deadline": "2025-06-30"},
        "occurred_at": "2025-03-01T08:00:00Z", "owner": origin,
    }


@pytest.fixture
def registry(engine):
    return NodeRegistry(engine)


def test_tables_are_created_from_the_exported_metadata(registry, engine):
    names = set(inspect(engine).get_table_names())
    assert {"nodes", "this_node"} <= names
    assert set(metadata.tables) == {"nodes", "this_node"}
    cols = {c["name"] for c in inspect(engine).get_columns("nodes")}
    assert cols == {"node_id", "level", "parent", "public_key", "feed_url", "trusted_at"}


def test_trusted_nodes_verify_envelopes(registry):
    city_key, _ = generate_keypair()
    a_key, _ = generate_keypair()
    registry.trust("city", "city", None, public_key_b64(city_key), "https://city.example/feed")
    rec = registry.trust("district-a", "district", "city", public_key_b64(a_key),
                         "http://127.0.0.1:8104/feed")
    assert rec.trusted_at.tzinfo is not None
    assert isinstance(registry, KeyResolver)
    verify(sign(envelope(), a_key), registry)
    verify(sign(envelope("city"), city_key), registry)
    with pytest.raises(UntrustedNode):
        verify(sign(envelope("district-b"), generate_keypair()[0]), registry)


def test_get_and_all(registry):
    keys = {n: public_key_b64(generate_keypair()[0]) for n in ("district-b", "city", "district-a")}
    registry.trust("district-b", "district", "city", keys["district-b"])
    registry.trust("city", "city", None, keys["city"])
    registry.trust("district-a", "district", "city", keys["district-a"], "http://a/feed")
    assert [r.node_id for r in registry.all()] == ["city", "district-a", "district-b"]
    a = registry.get("district-a")
    assert (a.level, a.parent, a.public_key, a.feed_url) == (
        "district", "city", keys["district-a"], "http://a/feed")
    assert registry.get("district-x") is None
    assert registry.public_key("district-x") is None


def test_trusting_again_with_the_same_key_is_idempotent(registry):
    key = public_key_b64(generate_keypair()[0])
    first = registry.trust("district-a", "district", "city", key, "http://a/feed")
    time.sleep(0.01)
    again = registry.trust("district-a", "district", "city", key, "http://a/feed")
    assert again == first
    # same key, moved feed: updated in place, trust time kept
    moved = registry.trust("district-a", "district", "city", key, "http://a2/feed")
    assert moved.feed_url == "http://a2/feed" and moved.trusted_at == first.trusted_at
    assert registry.get("district-a") == moved
    assert len(registry.all()) == 1


def test_changing_a_key_needs_replace(registry):
    old, _ = generate_keypair()
    new, _ = generate_keypair()
    first = registry.trust("district-a", "district", "city", public_key_b64(old))
    with pytest.raises(KeyConflict):
        registry.trust("district-a", "district", "city", public_key_b64(new))
    assert registry.get("district-a").public_key == public_key_b64(old)
    verify(sign(envelope(), old), registry)

    replaced = registry.trust("district-a", "district", "city", public_key_b64(new), replace=True)
    assert replaced.public_key == public_key_b64(new)
    assert replaced.trusted_at > first.trusted_at
    verify(sign(envelope(), new), registry)
    with pytest.raises(SignatureInvalid):  # the old key no longer speaks for district-a
        verify(sign(envelope(), old), registry)


def test_another_process_sees_a_replaced_key(engine):
    writer = NodeRegistry(engine)
    reader = NodeRegistry(engine, create_tables=False, cache_seconds=0)
    old, _ = generate_keypair()
    new, _ = generate_keypair()
    writer.trust("district-a", "district", "city", public_key_b64(old))
    verify(sign(envelope(), old), reader)
    writer.trust("district-a", "district", "city", public_key_b64(new), replace=True)
    verify(sign(envelope(), new), reader)


@pytest.mark.parametrize("args,match", [
    (("District A", "district", "city"), "node_id"),
    (("district-a", "province", "city"), "level"),
    (("district-a", "district", None), "parent"),
    (("city", "city", "city"), "own parent"),
])
def test_bad_node_descriptions_are_refused(registry, args, match):
    with pytest.raises(ValueError, match=match):
        registry.trust(*args, public_key_b64(generate_keypair()[0]))
    assert registry.all() == []


def test_bad_keys_and_feed_urls_are_refused(registry):
    with pytest.raises(ValueError):
        registry.trust("district-a", "district", "city", "bm90IGEga2V5")
    with pytest.raises(ValueError, match="feed_url"):
        registry.trust("district-a", "district", "city",
                       public_key_b64(generate_keypair()[0]), "ftp://a/feed")
    assert registry.all() == []


def test_this_node_and_untrust(registry):
    city_key = public_key_b64(generate_keypair()[0])
    a_key, _ = generate_keypair()
    assert registry.this_node() is None
    with pytest.raises(ValueError):
        registry.set_this_node("city")  # must be trusted first
    registry.trust("city", "city", None, city_key)
    registry.trust("district-a", "district", "city", public_key_b64(a_key))
    registry.set_this_node("city")
    registry.set_this_node("city")  # idempotent
    assert registry.this_node().node_id == "city"
    with pytest.raises(ValueError):
        registry.untrust("city")

    verify(sign(envelope(), a_key), registry)
    assert registry.untrust("district-a") is True
    assert registry.untrust("district-a") is False
    with pytest.raises(UntrustedNode):
        verify(sign(envelope(), a_key), registry)


def test_works_on_the_kernels_engine(tmp_path):
    """shared.db's SQLite engine issues BEGIN IMMEDIATE itself; the registry must cope."""
    from shared.db import make_engine
    engine = make_engine("sqlite:///%s" % (tmp_path / "node.db"))
    try:
        reg = NodeRegistry(engine)
        key, _ = generate_keypair()
        reg.trust("district-a", "district", "city", public_key_b64(key))
        verify(sign(envelope(), key), reg)
        assert [r.node_id for r in reg.all()] == ["district-a"]
    finally:
        engine.dispose()
