"""The console suite's seeding (bench/console.py ``seed``) at a tiny size: it runs every
command through the services' own handlers, as ``Application.execute`` would (read ports
bound, rules decided), so the node it builds is one the services themselves could have
built. No timing is asserted (speed lives in make bench)."""
import random

from bench import console
from services.supervision.application import app as sv_app
from services.supervision.settings import Settings
from services.units.application import app as units_app
from shared.uow import Runtime


def test_the_seed_builds_a_node_through_the_services_own_handlers(sqlite_url, tmp_path,
                                                                  engine_for, monkeypatch):
    monkeypatch.setattr(console, "UNITS", 12)
    monkeypatch.setattr(console, "RECTIFICATIONS", 10)
    monkeypatch.setattr(console, "EVENTS", 60)
    units_rt = Runtime(engine_for(sqlite_url), units_app.projections, console.NODE, "units")
    sv_url = "sqlite:///%s" % (tmp_path / "supervision.db")
    sv_rt = Runtime(engine_for(sv_url), sv_app.projections, console.NODE, "supervision",
                    settings=Settings())
    units_rt.create_schema()
    sv_rt.create_schema()
    seeded = console.seed(units_rt, sv_rt, random.Random(7))
    assert (seeded["units"], seeded["rectifications"]) == (12, 10)
    assert seeded["events"] >= 60
    with units_rt.read() as c:
        units = units_rt.store.head(c)
    assert units >= 12  # every unit registered by register_unit itself
