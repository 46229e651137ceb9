"""Read-model JSON columns (``shared.db.JSONText``): lists and dicts in, lists and dicts
out, stored as TEXT - so the rows an existing node wrote by hand (``json.dumps`` into a
TEXT column) read as before, on both back-ends, and a projection rebuilt in memory or
"as of" a past position holds the same values."""
from __future__ import annotations

import json

from sqlalchemy import Column, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.schema import CreateTable

from shared.db import JSONText


def _tables():
    md = MetaData()
    old = Table("json_cols", md, Column("k", String(10), primary_key=True), Column("v", Text))
    md_new = MetaData()
    new = Table("json_cols", md_new, Column("k", String(10), primary_key=True), Column("v", JSONText))
    return md, old, new


def test_the_column_is_text_on_both_back_ends(db_url, engine_for):
    engine = engine_for(db_url)
    _, old, new = _tables()
    assert str(CreateTable(new).compile(engine)) == str(CreateTable(old).compile(engine))


def test_rows_written_by_hand_before_read_as_values_and_values_written_read_by_hand(db_url, engine_for):
    engine = engine_for(db_url)
    md, old, new = _tables()
    md.create_all(engine)  # the table as an existing node has it
    with engine.begin() as c:
        c.execute(insert(old).values(k="old", v=json.dumps(["科室", "窗口"], ensure_ascii=False)))
        c.execute(insert(old).values(k="ascii", v=json.dumps({"a": [1, 2.5, None, True]})))
        c.execute(insert(new).values(k="new", v={"步骤": [{"name": "受理"}], "n": 3}))
        c.execute(insert(new).values(k="none", v=None))
    with engine.connect() as c:
        got = dict(c.execute(select(new.c.k, new.c.v)).all())
        raw = dict(c.execute(select(old.c.k, old.c.v)).all())
    assert got == {"old": ["科室", "窗口"], "ascii": {"a": [1, 2.5, None, True]},
                   "new": {"步骤": [{"name": "受理"}], "n": 3}, "none": None}
    assert json.loads(raw["new"]) == {"步骤": [{"name": "受理"}], "n": 3} and raw["none"] is None
    with engine.begin() as c:
        c.execute(update(new).where(new.c.k == "old").values(v=["科室"]))
    with engine.connect() as c:
        assert c.execute(select(new.c.v).where(new.c.k == "old")).scalar() == ["科室"]


def test_an_existing_units_database_reads_its_people_as_lists(db_url, engine_for):
    """The units service's people table, as an older node wrote it (roles as JSON text in a
    TEXT column), read through today's table: lists."""
    from services.units.projections import people
    engine = engine_for(db_url)
    legacy = Table("people", MetaData(), *[
        Column(col.name, Text if isinstance(col.type, JSONText) else col.type,
               primary_key=col.primary_key) for col in people.columns])
    legacy.create(engine)
    with engine.begin() as c:
        c.execute(insert(legacy).values(person_id="p1", name="张三", unit_id="u1", post="科员",
                                        roles='["cadre", "member"]', part_time_roles="[]",
                                        young_cadre=False))
        c.execute(insert(people).values(person_id="p2", name="李四", unit_id="u1", post="科长",
                                        roles=["unit_head"], part_time_roles=["unit_head"],
                                        young_cadre=False))
    with engine.connect() as c:
        rows = {r["person_id"]: r for r in c.execute(select(people)).mappings()}
        raw = c.execute(select(legacy.c.roles).where(legacy.c.person_id == "p2")).scalar()
    assert rows["p1"]["roles"] == ["cadre", "member"] and rows["p1"]["part_time_roles"] == []
    assert rows["p2"]["roles"] == ["unit_head"] and json.loads(raw) == ["unit_head"]


def test_a_column_keeps_the_form_it_was_written_in_by_hand(db_url, engine_for):
    """A column declared with the options of its hand-written form stores exactly that text
    (an older node's rows and new ones group and compare alike in SQL), for every read
    model that moved to JSONText: supervision (the log's canonical JSON), exchange
    (sorted keys; ranking and relief ASCII-escaped too; the anchors compact), and the unit tree."""
    from shared.events import canonical_json
    from services.exchange.anchors import anchors
    from services.exchange.projections import (
        figure_reports, indicator_periods, indicator_reports, records,
    )
    from services.supervision.projections import round_units
    from shared.unittree import unit_directory
    value = {"乙": [2, 1.5, None], "a": {"z": True, "b": "示范点"}}
    hand_written = {
        round_units.c.manual: canonical_json(value),
        records.c.content: json.dumps(value, ensure_ascii=False, sort_keys=True),
        indicator_reports.c.figures: json.dumps(value, sort_keys=True),
        indicator_periods.c.indicators: json.dumps(["违纪", "a"]),
        figure_reports.c.derived_from: json.dumps(value, sort_keys=True),
        unit_directory.c.pilot_flags: json.dumps(["清廉机关"], ensure_ascii=False),
        anchors.c.statement: json.dumps(value, ensure_ascii=False, sort_keys=True,
                                        separators=(",", ":")),
    }
    engine = engine_for(db_url)
    md = MetaData()
    t = Table("json_forms", md, Column("k", String(10), primary_key=True),
              *[Column("c%d" % i, col.type) for i, col in enumerate(hand_written)])
    md.create_all(engine)
    values = [json.loads(text) for text in hand_written.values()]
    with engine.begin() as c:
        c.execute(insert(t).values(k="x", **{"c%d" % i: v for i, v in enumerate(values)}))
    raw = Table("json_forms", MetaData(), Column("k", String(10), primary_key=True),
                *[Column("c%d" % i, Text) for i in range(len(hand_written))])
    with engine.connect() as c:
        stored = c.execute(select(raw).where(raw.c.k == "x")).one()[1:]
        read = c.execute(select(t).where(t.c.k == "x")).one()[1:]
    assert list(stored) == list(hand_written.values())
    assert list(read) == values


def test_the_batch_writer_serialises_json_columns_as_statements_do(db_url, engine_for):
    """``BatchWriter`` (a batch of replicas applied at once) writes on the driver's cursor:
    it applies the column types' serialisation itself, and what it reads back is values."""
    from shared.batching import BatchWriter
    engine = engine_for(db_url)
    _, _, new = _tables()
    new.create(engine)
    with engine.begin() as c:
        w = BatchWriter(c)
        w.insert(new, k="batch", v={"名单": ["甲", "乙"]})
        w.flush()
        assert w.get(new, k="batch") == {"k": "batch", "v": {"名单": ["甲", "乙"]}}
    with engine.connect() as c:
        assert c.execute(select(new.c.v).where(new.c.k == "batch")).scalar() == {"名单": ["甲", "乙"]}


def test_the_federation_tables_keep_the_text_they_held(db_url, engine_for):
    """The exchange's outbox and received rows (``JSONText`` since issue 12 §2) store the
    text the federation wrote by hand before - the envelope compact and UTF-8 as is, in its
    own key order; recipients and routing keys as ``json.dumps`` wrote them - so an older
    node's rows read as values, and what the publisher and the feed send (``wire``: the
    stored text) is what they sent."""
    from services.exchange.federation import metadata, outbox, received, wire
    env = {"event_id": "e1", "origin": "district-a", "origin_seq": 1, "type": "Case.Published",
           "sharing": "named", "recipients": ["city", "区县乙"],
           "payload": {"title": "示范点", "z": 1.5, "a": None}, "signature": "c2ln"}
    hand_written = {"envelope": json.dumps(env, ensure_ascii=False, separators=(",", ":")),
                    "recipients": json.dumps(env["recipients"]),
                    "routing_keys": json.dumps(["case.district-a.Case.Published"])}
    engine = engine_for(db_url)
    metadata.create_all(engine, tables=[outbox, received])
    legacy = Table(outbox.name, MetaData(), *[
        Column(col.name, Text if isinstance(col.type, JSONText) else col.type,
               primary_key=col.primary_key) for col in outbox.columns])
    row = dict(origin_seq=1, event_id="e1", position=1, event_type="Case.Published",
               sharing="named", exchange="qinglian.named", recorded_at_us=0)
    with engine.begin() as c:
        c.execute(insert(legacy).values(**row, **hand_written))  # as an older node wrote it
        c.execute(insert(outbox).values(**dict(row, origin_seq=2), envelope=env,
                                        recipients=env["recipients"],
                                        routing_keys=["case.district-a.Case.Published"]))
        c.execute(insert(received).values(origin="district-a", origin_seq=1, event_id="e1",
                                          position=1, outcome="applied", via="feed",
                                          envelope=env, received_at_us=0))
    with engine.connect() as c:
        raw = [dict(r) for r in c.execute(select(legacy).order_by(legacy.c.origin_seq)).mappings()]
        read = [dict(r) for r in c.execute(select(outbox).order_by(outbox.c.origin_seq)).mappings()]
        sent = c.execute(select(wire(outbox.c.envelope)).order_by(outbox.c.origin_seq)).scalars().all()
        kept = c.execute(select(wire(received.c.envelope))).scalar()
    for stored in raw:
        assert {k: stored[k] for k in hand_written} == hand_written
    for values in read:
        assert (values["envelope"], values["recipients"], values["routing_keys"]) == (
            env, env["recipients"], ["case.district-a.Case.Published"])
        assert list(values["envelope"]) == list(env)  # the signed envelope's key order
    assert sent == [hand_written["envelope"]] * 2 and kept == hand_written["envelope"]
