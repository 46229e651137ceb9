"""`qinglian projections rebuild --service supervision` (shared.projections.rebuild_many:
every read model in one pass, flushed by COPY outside nameko) leaves exactly what the
live projections wrote, on PostgreSQL and SQLite (issue 13's rebuild figure)."""
import psycopg2.extensions
import pytest
from sqlalchemy import select

from services.supervision.application import app
from shared.events import NewEvent
from shared.projections import rebuild_many
from shared.uow import Runtime

from bench.scale_rebuild import _year  # the benchmark's district year, 1,500 events


def _everything(rt):
    out = {}
    with rt.read() as c:
        for p in rt.projections:
            for t in p.tables:
                out[t.name] = sorted((tuple(sorted(r.items())) for r in
                                      c.execute(select(t)).mappings()), key=repr)
    return out


@pytest.mark.parametrize("database,copy", [("sqlite_url", False), ("pg_url", False),
                                           ("pg_url", True)],
                         ids=["sqlite", "postgresql-statements", "postgresql-copy"])
def test_rebuilding_every_read_model_in_one_pass_equals_the_live_ones(request, engine_for,
                                                                      database, copy):
    db_url = request.getfixturevalue(database)
    rt = Runtime(engine_for(db_url), app.projections, node_id="d", service="supervision")
    rt.create_schema()
    versions, batch = {}, []
    lives = list(_year(1500))
    for n, (_day, stream_id, stream_type, evs) in enumerate(lives):
        base = versions.get(stream_id, 0)
        batch += [NewEvent(stream_id, stream_type, base + k + 1, t, v, p, {"node": "d"})
                  for k, (t, v, p) in enumerate(evs)]
        versions[stream_id] = base + len(evs)
        if len(batch) >= 400 or n == len(lives) - 1:
            with rt.unit_of_work() as uow:  # the live path: projections inline
                uow.append_events(batch)
            batch = []
    live = _everything(rt)
    assert sum(len(v) for v in live.values()) > 500
    with rt.engine.begin() as c:  # wreck every read model
        for p in rt.projections:
            for t in reversed(p.tables):
                c.execute(t.delete())
    with rt.read() as c:
        head = rt.store.head(c)
    saved = psycopg2.extensions.get_wait_callback()
    if copy:  # as the command line runs it: no eventlet, so the flush is COPY
        psycopg2.extensions.set_wait_callback(None)
    try:
        assert rebuild_many(rt.store, rt.projections) == head
    finally:
        psycopg2.extensions.set_wait_callback(saved)
    assert _everything(rt) == live
    names = [t.name for p in rt.projections for t in p.tables]
    assert len(names) == len(set(names))  # no table of two read models: one pass may fill all
