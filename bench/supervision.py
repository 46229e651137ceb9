"""Supervision benchmark: a district's dashboards and its as-of rebuild.

A district of 300 units with 5,000 findings (each a rectification) and 3,000 integrity-
risk points is seeded on PostgreSQL through the real application layer
(``Runtime`` + ``app.execute``, one command per unit of work, the mirror and the
units reaction as the service runs them) along a simulated first quarter: findings are
recorded day by day, about half are rectified (evidence submitted, then verified), the
overdue timer's command runs weekly so the escalation ladder climbs as it would, units
screen their risks, and an assessment round is opened and scored for the quarter.

Figures (bench/common.py):

* ``dashboard_p99_ms`` - 99th percentile latency of the dashboard queries a district
  office opens all day, over HTTP (``GET /api/<query>`` with a bearer token) against
  the supervision service running as ``nameko run`` on the seeded database: the
  district's overdue list, one unit's three lists (问题清单 / 责任清单 / 整改清单, as
  that unit's unit-admin), and the round's ranking (computed from recorded scores and
  facts: the round is still open, the worst case). Baseline: ``GET /health`` of the same
  process (one indexed read), alternated request by request on the same connection -
  the peer that pays HTTP, the worker pool and a database round trip, everything but
  the query's own work. Quiet-machine target p99 <= 50 ms.
* ``asof_rebuild_events_per_s`` - the whole district (every read model a unit view,
  a ranking or a list needs) rebuilt from the log "as of" now into a private in-memory
  database, events replayed per second. Baseline: the floor of that work - the raw
  decoded read of the same events (same filter) plus a raw batch insert of the rows the
  rebuild produced into the same kind of database; three rounds each, interleaved.
  Quiet-machine target >= 20,000 events/s.
"""
from __future__ import annotations

import random
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import (
    AT_LEAST, AT_MOST, drop_vhost, free_port, interleaved, judged, paired_latencies, percentile,
    rate, raw_decoded_read, raw_insert, scratch_database, scratch_vhost, start_service,
    stop_service, table_rows, wait_relay_idle, wanted,
)

FIGURES = ("dashboard_p99_ms", "asof_rebuild_events_per_s")
NODE = "bench-district"
UNITS = 300
FINDINGS = 5000
RISK_POINTS = 3000
CONTROLS = 1000
QUERY_ROUNDS = 200   # samples of each dashboard query (and as many of /health)
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
            sha = "%064x" % rng.getrandbits(256)  # a reference as the evidence store makes it
            evidence = [{"path": "%s/%s.pdf" % (sha[:2], sha), "sha256": sha,
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


def measure_dashboard(port: int, tokens: dict, units, round_id, rng: random.Random) -> dict:
    from urllib.parse import urlencode
    queries = []
    for _ in range(QUERY_ROUNDS):
        queries.append(("overdue_list", {"unit_id": "district"}, tokens["viewer"]))
        unit = rng.choice(units)
        queries.append(("unit_lists", {"unit_id": unit}, tokens[unit]))
        queries.append(("round_ranking", {"round_id": round_id}, tokens["viewer"]))
    rng.shuffle(queries)

    def measured(i):
        name, params, token = queries[i]
        return name, "GET", "/api/%s?%s" % (name, urlencode(params)), token
    trivial = ("GET", "/health", None)
    paired_latencies(port, trivial, measured, 30)  # warm the pool and the statement caches
    health, every, labelled = paired_latencies(port, trivial, measured, len(queries))
    by_name: dict[str, list] = {}
    for name, ms in labelled:
        by_name.setdefault(name, []).append(ms)
    return {"p99": percentile(every, 99), "p50": percentile(every, 50),
            "health_p99": percentile(health, 99), "health_p50": percentile(health, 50),
            "per_query_p99": {k: round(percentile(v, 99), 2) for k, v in by_name.items()},
            "samples": len(every)}


def measure_asof(rt, pairs=3) -> dict:
    from services.supervision.projections import VIEW_PROJECTIONS, ROUND_PROJECTIONS
    from shared.db import make_engine
    from shared.projections import build_as_of
    projections = list({id(p): p for p in VIEW_PROJECTIONS + ROUND_PROJECTIONS}.values())
    tables = list({t.name: t for p in projections for t in p.tables}.values())
    types = set().union(*(p.event_types for p in projections))
    with rt.read() as c:
        head = rt.store.head(c)
    until = int(rt.clock().timestamp() * 1_000_000)
    rows = {}

    def ours(_=None):
        t0 = time.perf_counter()
        engine = build_as_of(rt.store, projections, until_us=until)
        seconds = time.perf_counter() - t0
        rows.update(table_rows(engine, tables))
        engine.dispose()
        return rate(head, seconds)

    def floor(_):
        n, read_s = raw_decoded_read(rt.engine, types, until_us=until)
        from sqlalchemy import MetaData
        target = make_engine("sqlite://")
        md = MetaData()
        copies = [t.to_metadata(md) for t in tables]
        t0 = time.perf_counter()
        md.create_all(target)
        seconds = read_s + (time.perf_counter() - t0) + raw_insert(target, copies, rows)
        target.dispose()
        return rate(head, seconds)
    ours()  # warm, and the rows the floor writes
    base, value = interleaved(pairs, floor, ours)
    return {"rate": value, "floor": base, "events": head,
            "rows": sum(len(v) for v in rows.values())}


class SeedCache:
    """The seeded quarter as a ``pg_dump`` under ``var/bench/cache/``, keyed by the source
    of this file, the supervision service and the kernel: the seeding is not what is
    measured and takes minutes, so a later run with the same code restores it in seconds
    (and any code change seeds afresh). Without ``pg_dump``/``pg_restore``, always seeds."""

    def __init__(self, var: Path):
        import hashlib
        import shutil as sh
        root = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for f in sorted([Path(__file__), *(root / "services" / "supervision").rglob("*.py"),
                         *(root / "shared").rglob("*.py")]):
            if "tests" not in f.parts:
                h.update(f.read_bytes())
        self.folder = var / "bench" / "cache"
        self.dump = self.folder / ("supervision-%s.dump" % h.hexdigest()[:16])
        self.tools = bool(sh.which("pg_dump") and sh.which("pg_restore"))

    @staticmethod
    def _libpq(url: str) -> str:
        from sqlalchemy.engine import make_url
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def restore(self, url: str) -> dict | None:
        import json
        import subprocess
        meta = self.dump.with_suffix(".json")
        if not (self.tools and self.dump.exists() and meta.exists()):
            return None
        subprocess.run(["pg_restore", "--no-owner", "-d", self._libpq(url), str(self.dump)],
                       check=True, capture_output=True)
        from sqlalchemy import create_engine, text
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text("ANALYZE"))  # a restored database has no planner statistics yet
        engine.dispose()
        return dict(json.loads(meta.read_text()), restored_from=self.dump.name)

    def save(self, url: str, seeded: dict) -> None:
        import json
        import subprocess
        if not self.tools:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("supervision-*"):  # one cached quarter: this code's
            old.unlink()
        subprocess.run(["pg_dump", "-Fc", "-f", str(self.dump), self._libpq(url)],
                       check=True, capture_output=True)
        self.dump.with_suffix(".json").write_text(json.dumps(seeded, ensure_ascii=False))


def synchronous_commit(url: str, value: str | None) -> None:
    """Set (or with None reset) the database's default for new connections."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    name = make_url(url).database
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text('ALTER DATABASE "%s" %s' % (
            name, "RESET synchronous_commit" if value is None else "SET synchronous_commit = %s" % value)))
    admin.dispose()


def issue_tokens(node_url: str, units) -> dict:
    """A viewer's token, and one unit-admin token per unit (scoped to it)."""
    from shared.auth import UserDirectory
    from shared.db import make_engine
    engine = make_engine(node_url)
    users = UserDirectory(engine, NODE)
    users.create_schema()
    users.add_user("bench-viewer", "看板", ["viewer"])
    tokens = {"viewer": users.issue_token("bench-viewer", "bench")}
    for unit in units:
        users.add_user("ua-%s" % unit, "单位管理员", ["unit-admin"], unit)
        tokens[unit] = users.issue_token("ua-%s" % unit, "bench")
    engine.dispose()
    return tokens


def run(var_dir: str = "var", only=None) -> dict:
    import shutil
    import tempfile

    from services.supervision.application import app
    from services.supervision.settings import Settings
    from shared.db import drop_database, make_engine
    from shared.uow import Runtime

    url, node_url = scratch_database("supervision"), scratch_database("supervision_node")
    vhost, vhost_uri = scratch_vhost("supervision")
    folder = Path(tempfile.mkdtemp(prefix="supervision-bench-"))
    clock = Clock()
    proc, dash, asof = None, None, None
    engine = None
    try:
        t0 = time.perf_counter()
        cache = SeedCache(Path(var_dir))
        seeded = cache.restore(url)
        if seeded is None:
            # the quarter's 14,000 commits are not what is measured: they need not wait
            # for the WAL flush (set back before anything is timed)
            synchronous_commit(url, "off")
            engine = make_engine(url)
            rt = Runtime(engine, app.projections, NODE, "supervision", clock=clock,
                         settings=Settings())
            rt.create_schema()
            seeded = seed(rt, clock, random.Random(20240415))
            engine.dispose()
            synchronous_commit(url, None)
            cache.save(url, seeded)
        clock.at(END, 600)  # where the quarter ends (seed's last commands)
        seed_s = time.perf_counter() - t0
        engine = make_engine(url)
        rt = Runtime(engine, app.projections, NODE, "supervision", clock=clock, settings=Settings())
        if wanted(only, "asof_rebuild_events_per_s"):
            asof = measure_asof(rt)
        if wanted(only, "dashboard_p99_ms"):
            tokens = issue_tokens(node_url, seeded["units"])
            port = free_port()
            proc = start_service("services.supervision.service:SupervisionService", {
                "AMQP_URI": vhost_uri, "NODE_ID": NODE, "QINGLIAN_VAR": str(folder),
                "SUPERVISION_DATABASE_URL": url, "NODE_DATABASE_URL": node_url,
                "WEB_SERVER_ADDRESS": "127.0.0.1:%d" % port}, folder, "supervision")
            wait_relay_idle(url, "supervision")  # the seeded quarter is not part of the day
            dash = measure_dashboard(port, tokens, seeded["units"], seeded["round_id"], random.Random(7))
    finally:
        if proc is not None:
            stop_service(proc)
        if engine is not None:
            engine.dispose()
        drop_vhost(vhost)
        drop_database(url)
        drop_database(node_url)
    shutil.rmtree(folder, ignore_errors=True)  # kept (with the server's log) only if the run failed
    figures = {}
    if dash:
        figures["dashboard_p99_ms"] = judged(
            dash["p99"], "ms", dash["health_p99"], "GET /health p99, same process", 15.0, AT_MOST,
            quiet_machine_target="≤ 50 ms", p50_ms=round(dash["p50"], 2),
            baseline_p50_ms=round(dash["health_p50"], 2), samples=dash["samples"],
            per_query_p99_ms=dash["per_query_p99"])
    if asof:
        figures["asof_rebuild_events_per_s"] = judged(
            asof["rate"], "events/s", asof["floor"], "raw decoded read + batch insert", 0.25, AT_LEAST,
            quiet_machine_target="≥ 20,000 events/s", events=asof["events"], rows=asof["rows"],
            seed_commands=seeded["commands"], seed_seconds=round(seed_s, 1),
            seed_restored_from=seeded.get("restored_from"))
    return figures
