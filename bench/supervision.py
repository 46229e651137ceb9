"""Supervision benchmark: a district's dashboards and its as-of rebuild.

A district of 300 units with 5,000 findings (each a rectification) and 3,000 integrity-
risk points is seeded on PostgreSQL through the real application layer
(``Runtime`` + ``app.execute``, one command per unit of work, the mirror and the
units reaction as the service runs them) along a simulated first quarter: findings are
recorded day by day, about half are rectified (evidence submitted, then verified), the
overdue timer's command runs weekly so the escalation ladder climbs as it would, units
screen their risks, and an assessment round is opened and scored for the quarter.

Figures (bench/common.py form):

* ``dashboard_p99_ms`` - 99th percentile latency of the dashboard queries a district
  office opens all day, run through ``app.run_query`` (validation, authorisation and a
  read connection included) against the read models: the district's overdue list,
  one unit's three lists (问题清单 / 责任清单 / 整改清单), and the round's ranking
  (computed from recorded scores and facts: the round is still open, the worst case).
  Target <= 50 ms.
* ``asof_rebuild_events_per_s`` - the whole district (every read model a unit view,
  a ranking or a list needs) rebuilt from the log "as of" now, events replayed per
  second (median of three). Target >= 20,000.
"""
from __future__ import annotations

import random
import statistics
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bench.common import figure, percentile, rate

PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NODE = "bench-district"
UNITS = 300
FINDINGS = 5000
RISK_POINTS = 3000
CONTROLS = 1000
QUERY_ROUNDS = 200   # samples of each dashboard query
TZ = ZoneInfo("Asia/Shanghai")
START = date(2024, 1, 2)
END = date(2024, 4, 15)


class Clock:
    def __init__(self):
        self.now = datetime(2024, 1, 2, 9, 0, tzinfo=TZ)

    def __call__(self):
        return self.now

    def at(self, day: date, minute: int = 0) -> None:
        self.now = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ) + timedelta(minutes=minute)


def _units_event(n: int, payload: dict):
    import uuid
    from shared.events import StoredEvent
    return StoredEvent(n, str(uuid.uuid4()), "Unit:%s" % payload["unit_id"], "Unit", 1,
                       "Unit.Registered", 1, payload, {"node": NODE}, 0)


def seed(rt, clock: Clock, rng: random.Random) -> dict:
    """The simulated quarter; returns what the measurements need."""
    from services.supervision.application import app, on_unit_registered
    from shared.auth import Actor
    from shared.unittree import record_unit_event

    admin = Actor("bench-admin", ("node-admin",), None, NODE)
    inspectors = [Actor("insp-%d" % i, ("inspector",), None, NODE) for i in range(4)]
    kinds = ["government_dept"] * 6 + ["party_committee_dept", "subdistrict", "window_unit",
                                       "law_enforcement", "grassroots_station", "secondary_unit"]
    units = ["u%03d" % i for i in range(UNITS)]
    clock.at(START)
    # the unit tree as the mirror records it (and the reaction that schedules screening)
    payloads = [{"unit_id": "district", "name": "某区区直机关工委", "kind": "district_authority",
                 "level": "district", "parent_id": None}]
    payloads += [{"unit_id": u, "name": "单位%s" % u, "kind": rng.choice(kinds), "level": "unit",
                  "parent_id": "district"} for u in units]
    for i in range(0, len(payloads), 50):
        with rt.unit_of_work(admin) as uow:
            for n, p in enumerate(payloads[i:i + 50], start=i + 1):
                ev = _units_event(n, p)
                record_unit_event(uow, ev)
                on_unit_registered(uow, ev)

    def run(name, data, actor=admin):
        return app.execute(rt, name, data, actor)

    # the quarter as a timeline of (day, order, command, data, actor)
    sources = ["audit", "financial", "public_report", "department_to_department",
               "community_to_department", "enterprise_to_department", "judicial"]
    # one inspection per unit in February (one batch command); each finds one problem
    clock.at(date(2024, 2, 1))
    batch = run("plan_inspection_batch", {"unit_ids": units, "title": "清廉机关建设专项督导",
                                          "planned_on": "2024-02-05"}, inspectors[0])
    inspection_of = {i["unit_id"]: i["inspection_id"] for i in batch["inspections"]}
    timeline = []
    span = (date(2024, 3, 31) - START).days
    for i in range(FINDINGS):
        found = START + timedelta(days=int(span * i / FINDINGS))
        unit = rng.choice(units)
        deadline = found + timedelta(days=rng.randint(10, 45))
        fid = "f%05d" % i
        finding = {"source": rng.choice(sources)}
        if found >= date(2024, 2, 5) and i % 16 == 0:
            finding = {"source": "inspection", "inspection_id": inspection_of[unit]}
        timeline.append((found, 0, "record_finding", {
            "finding_id": fid, "unit_id": unit, **finding,
            "description": "问题%05d：公务接待、差旅报销或台账管理不规范" % i,
            "severity": rng.choice(["minor", "general", "general", "serious"]),
            "responsible_role": rng.choice(["unit_head", "party_secretary", "discipline_member"]),
            "deadline": deadline.isoformat(), "found_on": found.isoformat(),
            "requirement": "限期整改并报送佐证材料"}, rng.choice(inspectors)))
        if rng.random() < 0.55:
            submitted = found + timedelta(days=rng.randint(3, 50))
            ua = Actor("ua-%s" % unit, ("unit-admin",), unit, NODE)
            evidence = [{"path": "%s/%s.pdf" % (unit, fid), "sha256": "%064x" % rng.getrandbits(256),
                         "size_bytes": rng.randint(10_000, 900_000), "description": "整改报告"}]
            timeline.append((submitted, 1, "submit_evidence", {"rect_id": fid, "evidence": evidence}, ua))
            decided = submitted + timedelta(days=rng.randint(1, 5))
            if rng.random() < 0.1:
                timeline.append((decided, 2, "reject_rectification",
                                 {"rect_id": fid, "reason": "佐证材料不全"}, rng.choice(inspectors)))
            else:
                timeline.append((decided, 2, "verify_rectification", {"rect_id": fid},
                                 rng.choice(inspectors)))
    for i in range(RISK_POINTS):
        day = START + timedelta(days=int(60 * i / RISK_POINTS))
        unit = rng.choice(units)
        flags = rng.sample(["concentrated_power", "fund_intensive", "resource_rich"], rng.randint(0, 2))
        timeline.append((day, 0, "identify_risk_point", {
            "risk_point_id": "r%05d" % i, "unit_id": unit, "description": "风险点%05d：审批、采购或资金拨付环节" % i,
            "category": rng.choice(["post_duty", "procedure", "external", "political"]),
            "post": "岗位%d" % rng.randint(1, 12), "post_flags": flags,
            "likelihood": rng.randint(1, 5), "impact": rng.randint(1, 5)},
            Actor("ua-%s" % unit, ("unit-admin",), unit, NODE)))
        if i < CONTROLS:
            timeline.append((day + timedelta(days=1), 1, "add_control", {
                "risk_point_id": "r%05d" % i, "control_id": "c1", "measure": "双人审批、定期轮岗",
                "owner_post": "分管领导", "review_date": "2024-06-30"}, admin))
    for unit in units:
        if rng.random() < 0.8:  # a fifth of the units never screen: the report's problem #1
            day = START + timedelta(days=rng.randint(10, 85))
            timeline.append((day, 0, "record_screening", {
                "unit_id": unit, "summary": "一季度廉政风险排查", "risk_points_reviewed": rng.randint(3, 20),
                "screened_on": day.isoformat()}, admin))
    day = START
    while day <= END:  # the overdue timer's command, run weekly
        timeline.append((day, 9, "detect_overdue", {}, admin))
        day += timedelta(days=7)
    timeline.sort(key=lambda x: (x[0], x[1]))
    commands = 0
    for n, (day, _, name, data, actor) in enumerate(timeline):
        if day > END:
            continue
        clock.at(day, n % 480)
        run(name, data, actor)
        commands += 1
    clock.at(END, 600)
    run("detect_overdue", {})
    rnd = run("open_round", {"round_id": "2024-Q1", "title": "2024年一季度政治生态研判",
                             "period": "2024-Q1", "unit_id": "district"}, inspectors[0])
    run("collect_round_facts", {"round_id": "2024-Q1"}, inspectors[0])
    manual = ("unity", "enterprise", "life_meeting", "civilisation", "integrity_culture")
    run("record_round_scores", {"round_id": "2024-Q1", "scores": [
        {"unit_id": u, "indicator": c, "score": rng.randint(60, 100)} for u in units for c in manual]},
        inspectors[0])
    run("publish_indicators", {})
    return {"units": units, "round_id": rnd["round_id"], "commands": commands + 5}


def measure_dashboard(rt, units, round_id, rng: random.Random) -> dict:
    from services.supervision.application import app
    from shared.auth import Actor
    viewer = Actor("bench-viewer", ("viewer",), None, NODE)
    queries = []
    for _ in range(QUERY_ROUNDS):
        queries.append(("overdue_list", {"unit_id": "district"}, viewer))
        unit = rng.choice(units)
        queries.append(("unit_lists", {"unit_id": unit},
                        Actor("ua-%s" % unit, ("unit-admin",), unit, NODE)))
        queries.append(("round_ranking", {"round_id": round_id}, viewer))
    rng.shuffle(queries)
    for name, params, actor in queries[:30]:  # warm the pool and the statement caches
        app.run_query(rt, name, params, actor)
    by_name: dict[str, list] = {}
    for name, params, actor in queries:
        t0 = time.perf_counter()
        app.run_query(rt, name, params, actor)
        by_name.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
    every = [ms for v in by_name.values() for ms in v]
    return {"p99": percentile(every, 99), "p50": percentile(every, 50),
            "per_query_p99": {k: round(percentile(v, 99), 2) for k, v in by_name.items()},
            "samples": len(every)}


def measure_asof(rt) -> dict:
    from services.supervision.projections import VIEW_PROJECTIONS, ROUND_PROJECTIONS
    from shared.projections import build_as_of
    projections = list({id(p): p for p in VIEW_PROJECTIONS + ROUND_PROJECTIONS}.values())
    with rt.read() as c:
        head = rt.store.head(c)
    until = int(rt.clock().timestamp() * 1_000_000)
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        engine = build_as_of(rt.store, projections, until_us=until)
        seconds = time.perf_counter() - t0
        engine.dispose()
        rates.append(rate(head, seconds))
    return {"rate": statistics.median(rates), "events": head}


def run(var_dir: str = "var") -> dict:
    from services.supervision.application import app
    from services.supervision.settings import Settings, register
    from shared.db import create_database, drop_database, make_engine
    from shared.uow import Runtime

    rng = random.Random(20240415)
    url = create_database(PG_SERVER, "qlbench_sv")
    clock = Clock()
    engine = make_engine(url)
    try:
        rt = Runtime(engine, app.projections, NODE, "supervision", clock=clock)
        rt.create_schema()
        register(engine, Settings())
        t0 = time.perf_counter()
        seeded = seed(rt, clock, rng)
        seed_s = time.perf_counter() - t0
        dash = measure_dashboard(rt, seeded["units"], seeded["round_id"], rng)
        asof = measure_asof(rt)
    finally:
        engine.dispose()
        drop_database(url)
    dashboard = figure(dash["p99"], "ms", 50, lower_is_better=True)
    dashboard.update(p50_ms=round(dash["p50"], 2), samples=dash["samples"],
                     per_query_p99_ms=dash["per_query_p99"])
    rebuild = figure(asof["rate"], "events/s", 20000)
    rebuild.update(events=asof["events"], seed_commands=seeded["commands"],
                   seed_seconds=round(seed_s, 1))
    return {"dashboard_p99_ms": dashboard, "asof_rebuild_events_per_s": rebuild}


if __name__ == "__main__":
    import eventlet
    eventlet.monkey_patch()
    from bench.common import table, write
    results = run()
    print(table("supervision", results))
    print("written to %s" % write("supervision", results))
