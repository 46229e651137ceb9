"""How many statements one ``draft_experience`` sends the database (issue 13): every
shared record a district writes is one, and on the scale network a command's fixed
cost is most of a record's CPU. A count, not a time: a statement added to the command's
path (a repeated read of a row, a second lookup of the same thing) fails here."""
from __future__ import annotations

from sqlalchemy import event, select

from services.exchange.projections import record_tags, records
from services.exchange.tests.integration.test_commands import SHARE_ALL, Solo

# what the command sends, in order (SQLite; BEGIN IMMEDIATE and COMMIT go to the driver
# directly, shared.db): its transaction's one read of each thing it needs and its writes
EXPECTED = [
    "SELECT max(events.version)",      # the experience id is new (uow.exists)
    "SELECT unit_directory.",          # the unit's name
    "INSERT INTO events ",             # Drafted and Published, one statement
    "SELECT shared_records.",          # the read model's row: absent (Drafted)
    "INSERT INTO shared_records ",     # ... inserted as Published left it: the writer held
                                       # Drafted's INSERT and folded Published's UPDATE in
    "INSERT INTO record_tags ",        # both tags (topic, business type): one executemany
    "SELECT max(federation_outbox.",   # the next origin number (under the writer lock)
    "INSERT INTO federation_outbox ",  # the signed envelope of Published
]


def _draft(k: int) -> dict:
    return {"experience_id": "p-%05d" % k, "unit_id": "a-xj", "title": "经验 %d" % k,
            "summary": "聚焦责任抓落实。", "body": "示范点建设经验做法。",
            "business_type": "示范点建设", "topics": ["示范点"], "share": SHARE_ALL}


def test_one_shared_draft_sends_these_statements(tmp_path):
    solo = Solo(tmp_path)
    solo.run("draft_experience", _draft(0))  # the first of the node: caches filled
    sent: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        sent.append(" ".join(statement.split()))

    event.listen(solo.rt.engine, "before_cursor_execute", count)
    try:
        out = solo.run("draft_experience", _draft(1))
    finally:
        event.remove(solo.rt.engine, "before_cursor_execute", count)
    assert out == {"experience_id": "district-a/p-00001", "sharing": "all", "published": True}
    got = [next((e for e in EXPECTED if s.startswith(e.rstrip())), s[:60]) for s in sent]
    assert got == EXPECTED, "\n".join(sent)
    # and what it wrote is what a SELECT after each event would have given
    row = solo.query("get_record", {"record_id": "district-a/p-00001"})
    assert row["published"] is True and row["sharing"] == "all"
    assert sorted(row["tags"]) == ["示范点", "示范点建设"]
    with solo.rt.engine.connect() as conn:
        stored = conn.execute(select(records).where(
            records.c.record_id == "district-a/p-00001")).mappings().one()
        tags = conn.execute(select(record_tags.c.tag).where(
            record_tags.c.record_id == "district-a/p-00001")).scalars().all()
    assert stored["events"] == 2 and stored["status"] == "published" and stored["published"]
    assert stored["first_published_at"] is not None and sorted(tags) == ["示范点", "示范点建设"]


def test_a_batch_from_several_origins_reads_and_moves_the_watermarks_once(tmp_path):
    """The live consumer's batch holds a record or two of many origins: the watermark
    rows and the streams' versions are read once for the transaction, and the
    watermarks written once (an executemany), not once per origin - and each origin's
    watermark and counts still come out its own."""
    import json

    from services.exchange.federation import inbox, outbox
    from shared.federation.envelope import public_key_b64
    a, b = Solo(tmp_path / "a"), Solo(tmp_path / "b", node_id="district-b")
    b_draft = dict(_draft(0), unit_id="b-xj")
    for k in range(2):
        a.run("draft_experience", _draft(k))
        b.run("draft_experience", dict(b_draft, experience_id="p-%05d" % k))
    city = Solo(tmp_path / "city", node_id="city", level="city", parent=None)
    for origin, solo in (("district-a", a), ("district-b", b)):
        city.registry.trust(origin, "district", "city", public_key_b64(solo.keys[origin]),
                            replace=True)
    city.fed.load_state()

    def bodies(solo, seq):
        with solo.rt.read() as conn:
            env = conn.execute(select(outbox.c.envelope).where(outbox.c.origin_seq == seq)).scalar()
        return json.dumps(env, ensure_ascii=False).encode("utf-8")

    sent: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        if "federation_inbox" in statement or "max(events.version)" in statement:
            sent.append(" ".join(statement.split()))

    event.listen(city.rt.engine, "before_cursor_execute", count)
    try:
        for seq, first_time in ((1, "INSERT INTO federation_inbox"), (2, "UPDATE federation_inbox")):
            sent.clear()
            city.fed.receive([bodies(a, seq), bodies(b, seq)], "amqp")
            kinds = ["watermarks" if s.startswith("SELECT federation_inbox") else
                     "versions" if s.startswith("SELECT events.stream_id") else
                     s.split(" (")[0].split(" SET")[0] for s in sent]
            assert kinds == ["watermarks", "versions", first_time], sent
    finally:
        event.remove(city.rt.engine, "before_cursor_execute", count)
    with city.rt.read() as conn:
        marks = {r.origin: (r.applied_through, r.events_applied, r.rejected)
                 for r in conn.execute(select(inbox))}
    assert marks == {"district-a": (2, 2, 0), "district-b": (2, 2, 0)}
    assert city.query("get_record", {"record_id": "district-b/p-00001"})["published"] is True
