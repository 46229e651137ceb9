"""The seeded district year (tooling/scenario.py): the same seed gives the same year,
another seed another one, and a small year loaded into two districts of a linked
network lands in every service's read models and reaches the city through the
exchange's own outbox once the nodes' exchange services start."""
from collections import Counter

from sqlalchemy import func, select

from services.exchange.federation import outbox, received
from shared import config
from shared.db import make_engine
from tests.harness import wait_for
from tests.harness.exchange import FAST, RunningNode
from tooling.localnet import LocalNetwork
from tooling.scenario import Size, Year, load

SMALL = Size.small()


def test_the_same_seed_gives_the_same_year():
    first, counts = Year("district-01", 7, SMALL).fingerprint()
    assert Year("district-01", 7, SMALL).fingerprint() == (first, counts)
    assert Year("district-01", 8, SMALL).fingerprint()[0] != first
    assert Year("district-02", 7, SMALL).fingerprint()[0] != first
    # every part of the year is there, in the amounts the size asks for
    assert counts["units Unit.Registered"] == SMALL.units + 1
    assert counts["units Person.Registered"] == SMALL.members
    assert counts["supervision Rectification.Opened"] == SMALL.units * SMALL.findings_per_unit
    assert counts["supervision Rectification.Verified"] > 0
    assert counts["supervision Inspection.Planned"] == SMALL.units * SMALL.inspections_per_unit
    assert counts["supervision RiskPoint.Assessed"] == SMALL.units * SMALL.risk_points_per_unit
    assert counts["education StudySession.Held"] == SMALL.units * SMALL.sessions_per_unit
    assert counts["education ReminderCheckIn.CheckedIn"] > SMALL.members
    published = sum(counts["exchange %s.Published" % k]
                    for k in ("Experience", "Case", "JointActivity", "JointProblem"))
    assert published == SMALL.shared
    months = len({Year("x", 1, SMALL).day(d)[:7] for d in range(SMALL.days)})
    assert counts["exchange IndicatorReport.Recorded"] == months * (SMALL.units + 1)


def _count(url, table, where=None):
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            q = select(func.count()).select_from(table)
            return c.execute(q if where is None else q.where(where)).scalar()
    finally:
        engine.dispose()


def test_a_small_year_loads_into_districts_and_reaches_the_city(tmp_path):
    from services.education.projections import checkins, sessions
    from services.supervision.projections import rectifications
    from services.units.projections import people
    net = LocalNetwork(tmp_path, districts=("district-01", "district-02"), extra=FAST).create()
    nodes = {}
    try:
        expected = {}
        for d in net.districts:
            year = Year(d.node_id, 3, SMALL)
            _fp, counts = year.fingerprint()
            loaded = load(year, d.config)
            assert loaded == {s: sum(n for k, n in counts.items() if k.startswith(s + " "))
                              for s in ("units", "supervision", "education", "exchange")}
            url = lambda service: config.database_url(service, d.config)  # noqa: E731
            assert _count(url("units"), people) == SMALL.members
            assert _count(url("supervision"), rectifications) == SMALL.units * SMALL.findings_per_unit
            assert _count(url("education"), sessions) == SMALL.units * SMALL.sessions_per_unit
            assert _count(url("education"), checkins) == counts["education ReminderCheckIn.CheckedIn"]
            # signed into the outbox: the shared records and the figures for the city
            expected[d.node_id] = _count(url("exchange"), outbox)
            assert expected[d.node_id] == SMALL.shared + counts["exchange IndicatorReport.Recorded"]
        for node_id, local in net.nodes.items():
            nodes[node_id] = RunningNode(local).start()
        net.wait_bindings()
        city_db = config.database_url("exchange", net.city.config)

        def arrived():
            engine = make_engine(city_db)
            try:
                with engine.connect() as c:
                    got = Counter(dict(c.execute(
                        select(received.c.origin, func.count()).where(received.c.outcome == "applied")
                        .group_by(received.c.origin)).all()))
            finally:
                engine.dispose()
            return got if got == Counter(expected) else None
        wait_for(arrived, 60, 0.2, "every district's loaded records applied at the city")
        # the other district gets the shared records through the city
        other = config.database_url("exchange", net["district-02"].config)
        wait_for(lambda: _count(other, received, received.c.origin == "district-01") == SMALL.shared,
                 60, 0.2, "district-01's shared records at district-02")
    finally:
        for n in nodes.values():
            n.stop()
        net.destroy()
