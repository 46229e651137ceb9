"""`qinglian projections rebuild --service supervision` (shared.projections.rebuild_many:
every read model in one pass, flushed by COPY outside nameko) leaves exactly what the
live projections wrote, on PostgreSQL and SQLite (issue 13's rebuild figure)."""
import pytest

from services.supervision.application import app
from shared.events import NewEvent
from shared.uow import Runtime

from tests.harness.rebuild import every_read_model, wreck_and_rebuild
from bench.scale_rebuild import _year  # the benchmark's district year, 1,500 events


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
    live = every_read_model(rt)
    assert sum(len(v) for v in live.values()) > 500
    wreck_and_rebuild(rt, copy)
    assert every_read_model(rt) == live
    names = [t.name for p in rt.projections for t in p.tables]
    assert len(names) == len(set(names))  # no table of two read models: one pass may fill all
