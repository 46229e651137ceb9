"""``qinglian events verify`` and anchors held by another node (issue 11, D14).

A network of three running exchange services anchors its log heads every second. Then
district-a's exchange log is tampered with three ways, each on a fresh copy of the same
database: a row edited with every later hash recomputed, the last rows deleted, and a
shared record rewritten (chain recomputed). The plain verify catches the last two from
the node's own bookkeeping (checkpoints beyond the head, the outbox's signed copy), and
``--against-anchors`` catches all three from the heads the city keeps. Verify never
creates a database, and the city keeps anchors append-only, signed by their node only.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from services.exchange.anchors import anchors_url, sign_statement
from tests.harness import wait_for
from tests.harness.exchange import start_network, stop_network
from shared import config
from shared.federation.envelope import generate_keypair
from shared.federation.keys import load_node_key
from shared.store import GENESIS, chain_hash
from tooling.cli import main

CASE = {"unit_id": "a-xj", "title": "甲区锚定案例", "category": "四风", "summary": "摘要",
        "facts": "事实", "analysis": "分析", "lessons": ["教训"],
        "share": {"sharing": "all", "recipients": []}}


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    """The network, district-a with a private draft and a shared case, anchored at the
    city; then district-a stopped, and a pristine copy of its exchange database."""
    net, nodes = start_network(tmp_path_factory.mktemp("anchors"),
                               extra={"FEDERATION_ANCHOR_SECONDS": 1})
    try:
        a, city = nodes["district-a"], nodes["city"]
        a.execute("draft_experience", {
            "experience_id": "kept-private", "unit_id": "a-xj", "title": "本节点草稿",
            "summary": "摘要", "body": "正文", "business_type": "示范点建设", "topics": []})
        rid = a.execute("compile_case", dict(CASE, case_id="anchored-case"))["case_id"]
        wait_for(lambda: city.record(rid), what="the shared case at the city")
        with a.runtime.engine.connect() as conn:
            head = a.runtime.store.head(conn)

        def anchored_at_city():
            from services.exchange.anchors import held_for
            with city.runtime.engine.connect() as conn:
                return any(h["service"] == "exchange" and h["position"] == head
                           for s in held_for(conn, "district-a") for h in s["heads"])
        wait_for(anchored_at_city, what="district-a's head anchored at the city")
        a.stop()
        a.runtime.engine.dispose()
        db = Path(make_url(config.database_url("exchange", a.local.config)).database)
        pristine = db.with_name("pristine.db")
        _sqlite_copy(db, pristine)
        yield net, nodes, db, pristine, rid
    finally:
        stop_network(net, nodes)


def _sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of a WAL database (the backup API, not a file copy)."""
    with sqlite3.connect(src) as s, sqlite3.connect(dst) as d:
        s.backup(d)


def _restore(pristine: Path, db: Path) -> None:
    _sqlite_copy(pristine, db)


def _recompute_from(conn, position: int) -> None:
    """Every hash from ``position`` on, as if the chain had always been this way."""
    prev = conn.execute("SELECT hash FROM events WHERE position = ?", (position - 1,)).fetchone()
    prev = prev[0] if prev else GENESIS
    rows = conn.execute("SELECT position, event_id, stream_id, stream_type, version, event_type, "
                        "schema_version, payload, meta, recorded_at_us FROM events "
                        "WHERE position >= ? ORDER BY position", (position,)).fetchall()
    for r in rows:
        prev = chain_hash(prev, *r)
        conn.execute("UPDATE events SET hash = ? WHERE position = ?", (prev, r[0]))


def _verify(monkeypatch, capsys, node, *flags) -> tuple[int, str]:
    for k, v in node.local.config.items():
        monkeypatch.setenv(k, str(v))
    code = main(["events", "verify", "--service", "exchange", *flags])
    out = capsys.readouterr()
    return code, out.out + out.err


def _position_of(db: Path, event_type: str, like: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT position FROM events WHERE event_type = ? AND payload LIKE ?",
                            (event_type, "%" + like + "%")).fetchone()[0]


def test_untouched_log_verifies_against_its_anchors(anchored, monkeypatch, capsys):
    net, nodes, db, pristine, _ = anchored
    _restore(pristine, db)
    code, out = _verify(monkeypatch, capsys, nodes["district-a"], "--against-anchors")
    assert code == 0, out
    assert "exchange: matches the" in out and "TAMPERED" not in out


def test_recomputed_chain_is_caught_by_the_anchors(anchored, monkeypatch, capsys):
    net, nodes, db, pristine, _ = anchored
    _restore(pristine, db)
    pos = _position_of(db, "Experience.Drafted", "kept-private")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET payload = replace(payload, '本节点草稿', '改过的草稿') "
                     "WHERE position = ?", (pos,))
        _recompute_from(conn, pos)
    code, out = _verify(monkeypatch, capsys, nodes["district-a"])
    assert code == 0, out  # the chain and the node's own books agree with the forgery
    code, out = _verify(monkeypatch, capsys, nodes["district-a"], "--against-anchors")
    assert code == 1, out
    assert "TAMPERED at position" in out and "no longer matches anchor" in out


def test_truncated_log_is_caught_locally_and_by_the_anchors(anchored, monkeypatch, capsys):
    net, nodes, db, pristine, _ = anchored
    _restore(pristine, db)
    with sqlite3.connect(db) as conn:
        head = conn.execute("SELECT max(position) FROM events").fetchone()[0]
        conn.execute("DELETE FROM events WHERE position = ?", (head,))
    code, out = _verify(monkeypatch, capsys, nodes["district-a"])
    assert code == 1, out
    assert "TAMPERED at position %d" % head in out and "were removed" in out
    code, out = _verify(monkeypatch, capsys, nodes["district-a"], "--against-anchors")
    assert code == 1 and ("position %d is gone from the log" % head) in out, out


def test_rewritten_shared_record_is_caught_by_the_outbox_and_anchors(anchored, monkeypatch,
                                                                      capsys):
    net, nodes, db, pristine, rid = anchored
    _restore(pristine, db)
    pos = _position_of(db, "Case.Published", rid)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET payload = replace(payload, '甲区锚定案例', '改写的案例') "
                     "WHERE position = ?", (pos,))
        _recompute_from(conn, pos)
    code, out = _verify(monkeypatch, capsys, nodes["district-a"])
    assert code == 1, out
    assert ("TAMPERED at position %d" % pos) in out and "signed and shared" in out
    code, out = _verify(monkeypatch, capsys, nodes["district-a"], "--against-anchors")
    assert code == 1 and "no longer matches anchor" in out, out


def test_verify_never_creates_a_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QINGLIAN_VAR", str(tmp_path / "wrong"))
    monkeypatch.setenv("NODE_ID", "district-q")
    for flags in ([], ["--service", "units"], ["--against-anchors"]):
        assert main(["events", "verify", *flags]) == 2
        assert "不存在" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()


def test_the_city_keeps_anchors_append_only_and_signed_by_their_node(anchored):
    net, nodes, db, pristine, _ = anchored
    city, a = nodes["city"], nodes["district-a"]
    url = anchors_url(city.local.feed_url)
    from services.exchange.anchors import held_for
    with city.runtime.engine.connect() as conn:
        first = held_for(conn, "district-a")[0]
    key = load_node_key(a.local.config)
    # a different statement under a number already kept: refused, the first one stays
    other = sign_statement(key, "district-a", first["seq"], [
        {"service": "exchange", "position": 1, "hash": "0" * 64}])
    r = requests.post(url, json=other, timeout=10)
    assert r.status_code == 409, r.text
    # the same statement again: accepted as already kept
    assert requests.post(url, json=first, timeout=10).status_code == 200
    # signed by another key: refused
    forged = sign_statement(generate_keypair()[0], "district-a", first["seq"] - 1, [])
    assert requests.post(url, json=forged, timeout=10).status_code == 403
    # not JSON, or not an anchor: a clear 400
    assert requests.post(url, data=b"[" * 5000, timeout=10,
                         headers={"Content-Type": "application/json"}).status_code == 400
    assert requests.post(url, json={"node": "district-a"}, timeout=10).status_code == 400
    with city.runtime.engine.connect() as conn:
        kept = held_for(conn, "district-a")
    assert kept[0] == first and all(s["seq"] != first["seq"] - 1 for s in kept)
    # reading them needs a trusted node's signed request
    assert requests.get(url, params={"node": "district-a"}, timeout=10).status_code == 401


def test_the_citys_own_anchors_are_held_by_its_districts(anchored, monkeypatch, capsys):
    net, nodes, db, pristine, _ = anchored
    city, b = nodes["city"], nodes["district-b"]
    from services.exchange.anchors import held_for
    with b.runtime.engine.connect() as conn:
        assert held_for(conn, "city"), "district-b holds none of the city's anchors"
    code, out = _verify(monkeypatch, capsys, city, "--against-anchors")
    assert code == 0, out
    assert "exchange: matches the" in out
