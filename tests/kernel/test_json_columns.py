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
