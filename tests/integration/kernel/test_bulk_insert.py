"""``shared.batching.insert_rows``: a catching-up node's page of rows goes to PostgreSQL
by COPY (from ``COPY_MIN_ROWS`` rows), also inside a nameko service, where psycopg2 has
a wait callback installed and refuses COPY under it. The rows must read back as the
statements' rows do, and the callback must be back afterwards."""
from __future__ import annotations

import psycopg2.extensions
import psycopg2.extras
import pytest
from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table, Text, select

from shared.batching import COPY_MIN_ROWS, insert_rows
from shared.db import JSONText, create_database, drop_database, make_engine
from tests.fixtures import PG_SERVER

# what COPY's text form must escape, or could mistake for its own markers
AWKWARD = ["a\tb", "line\nnext\r", "back\\slash", "\\N", "清廉机关", "", None, "'quoted'"]


def _table(name: str) -> Table:
    return Table(name, MetaData(), Column("k", String(20), primary_key=True),
                 Column("s", Text), Column("t", Text, nullable=False), Column("n", BigInteger),
                 Column("m", BigInteger, nullable=False), Column("b", Boolean),
                 Column("v", JSONText, nullable=False))


def _rows(n: int) -> list[dict]:
    # (COPY's text is built column by column: "t" only strings, some to escape; "m" only
    # integers; the others mixed)
    awkward = [a for a in AWKWARD if a is not None]
    return [{"k": "r%05d" % i, "s": AWKWARD[i % len(AWKWARD)], "t": awkward[i % len(awkward)],
             "n": None if i % 5 == 0 else 2 ** 40 + i, "m": -i, "b": [True, False, None][i % 3],
             "v": {"名单": ["甲", AWKWARD[i % len(AWKWARD)]], "i": i}} for i in range(n)]


@pytest.fixture
def engine():
    url = create_database(PG_SERVER)
    e = make_engine(url)
    try:
        yield e
    finally:
        e.dispose()
        drop_database(url)


def test_a_page_by_copy_under_a_wait_callback_reads_back_as_statements_write(engine):
    by_copy, by_statements = _table("by_copy"), _table("by_statements")
    for t in (by_copy, by_statements):
        t.create(engine)
    with engine.begin() as conn:
        # what wrote by_copy's rows, as the server saw it (a COPY that failed and fell
        # back to statements leaves only the statements' mark)
        conn.exec_driver_sql("CREATE TABLE seen (q TEXT)")
        conn.exec_driver_sql("CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN INSERT INTO seen VALUES (split_part(current_query(), ' ', 1)); "
                             "RETURN NULL; END $$")
        conn.exec_driver_sql("CREATE TRIGGER noted AFTER INSERT ON by_copy "
                             "FOR EACH STATEMENT EXECUTE FUNCTION note()")
    rows = _rows(COPY_MIN_ROWS + 50)
    before = psycopg2.extensions.get_wait_callback()
    # eventlet's, as in a nameko service (the root conftest.py patches as nameko run does)
    callback = before or psycopg2.extras.wait_select
    psycopg2.extensions.set_wait_callback(callback)
    try:
        with engine.begin() as conn:
            insert_rows(conn, by_copy, rows)  # one call: COPY
            for i in range(0, len(rows), 10):  # below COPY_MIN_ROWS: statements
                insert_rows(conn, by_statements, rows[i:i + 10])
        assert psycopg2.extensions.get_wait_callback() is callback
    finally:
        psycopg2.extensions.set_wait_callback(before)
    with engine.connect() as conn:
        got = [conn.execute(select(t).order_by(t.c.k)).mappings().all() for t in (by_copy, by_statements)]
        seen = conn.exec_driver_sql("SELECT q FROM seen").scalars().all()
    assert seen == ["COPY"]
    assert [dict(r) for r in got[0]] == [dict(r) for r in got[1]] == rows
