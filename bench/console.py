"""Console benchmark (issue 8, Performance): the home page (工作台) and the rectification
board over real HTTP with a signed-in session, on a node holding 2,000 units, 10,000
rectifications and 50,000 events; each p50/p99 beside the same console process's
``GET /health`` measured on the same connection in the same run.

The node's history is seeded through the application layers straight into PostgreSQL
(what is measured is reading, not the seeding); then the units, supervision and console
services run as ``nameko run`` processes of their own and the load generator signs in
once and alternates a ``/health`` and a measured page on one keep-alive connection.
"""
from __future__ import annotations

import http.client
import os
import random
import re
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench.common import (
    AT_MOST, drop_vhost, free_port, judged, percentile, scratch_database, scratch_vhost,
    start_service, stop_service, wait_relay_idle, wanted,
)
from bench.supervision import synchronous_commit

FIGURES = ("console_home_p99_ms", "console_board_p99_ms")
NODE = "bench-console"
# QINGLIAN_BENCH_CONSOLE_SCALE < 1 shrinks the node (a quick check of the suite itself;
# the figures then say so in "scale" and are not the issue's)
SCALE = float(os.environ.get("QINGLIAN_BENCH_CONSOLE_SCALE", "1"))
UNITS, RECTIFICATIONS, EVENTS = (int(n * SCALE) for n in (2_000, 10_000, 50_000))
PASSWORD = "bench2026pw"
SAMPLES = 300


def batched(rt, app, actor, commands, size: int = 400) -> int:
    """Run ``(name, data)`` commands through the application's own handlers (validation,
    domain rules, read models), ``size`` of them per unit of work: the seeding is not
    what is measured, and one transaction per command made a full-scale node take over
    25 minutes on this machine. Returns how many ran."""
    n = 0
    for start in range(0, len(commands), size):
        with rt.unit_of_work(actor) as uow:
            for name, data in commands[start:start + size]:
                op = app.operation(name, "command")
                op.fn(uow, op.load(data))
                n += 1
    return n


def seed(units_rt, sv_rt, rng: random.Random) -> dict:
    """2,000 units (a district, 40 bureaus, sections and stations below them) in the units
    service and its mirror in supervision; 10,000 findings, each a rectification; deadline
    extensions until the two logs hold 50,000 events together. Every event is made by
    the services' own command and consumer code, a few hundred per transaction."""
    from services.supervision.application import app as sv_app, on_unit_registered
    from services.units.application import app as units_app
    from shared.auth import Actor
    from shared.events import StoredEvent
    from shared.unittree import record_unit_event

    admin = Actor("bench-admin", ("node-admin",), None, NODE)
    tree = [("district", None, "district_authority", "district", "某区直机关工委")]
    bureaus = ["b%02d" % i for i in range(max(2, min(40, UNITS // 50)))]
    tree += [(b, "district", "government_dept", "unit", "区第%d局" % i) for i, b in enumerate(bureaus)]
    leaves_from = len(tree)
    n = 0
    while len(tree) < UNITS:
        parent = bureaus[n % len(bureaus)]
        tree.append(("%s-s%d" % (parent, n), parent, "section" if n % 3 else "grassroots_station",
                     "section", "第%d科室" % n))
        n += 1
    registrations = [{"unit_id": uid, "name": name, "kind": kind, "level": level, "parent_id": parent}
                     for uid, parent, kind, level, name in tree]
    commands = batched(units_rt, units_app, admin, [("register_unit", d) for d in registrations])
    for start in range(0, len(registrations), 400):  # the mirror, as supervision's consumer does
        with sv_rt.unit_of_work(admin) as uow:
            for i, data in enumerate(registrations[start:start + 400], start + 1):
                ev = StoredEvent(i, str(uuid.uuid4()), "Unit:%s" % data["unit_id"], "Unit", 1,
                                 "Unit.Registered", 1, data, {"node": NODE}, 0)
                record_unit_event(uow, ev)
                on_unit_registered(uow, ev)
    leaves = [u[0] for u in tree[leaves_from:]]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the services' day
    rect_ids = ["f%05d" % i for i in range(RECTIFICATIONS)]
    findings = []
    for i, rect in enumerate(rect_ids):
        deadline = today + timedelta(days=rng.randint(-30, 120))
        findings.append(("record_finding", {
            "finding_id": rect, "unit_id": rng.choice(leaves), "source": "audit",
            "description": "问题%d：台账不全" % i, "deadline": max(deadline, today).isoformat(),
            "requirement": "限期整改", "responsible_role": "unit_head"}))
    commands += batched(sv_rt, sv_app, admin, findings)

    def head(rt):
        with rt.read() as c:
            return rt.store.head(c)
    # each extension is one event: as many as the 50,000 still need
    missing = max(0, EVENTS - head(units_rt) - head(sv_rt))
    commands += batched(sv_rt, sv_app, admin, [("extend_deadline", {
        "rect_id": rect_ids[i % len(rect_ids)],
        "deadline": (today + timedelta(days=200 + i // len(rect_ids))).isoformat(),
        "reason": "延期"}) for i in range(missing)])
    return {"units": len(tree), "rectifications": len(rect_ids), "seed_commands": commands,
            "events": head(units_rt) + head(sv_rt), "scale": SCALE}


class SeedCache:
    """The seeded node (its units and supervision databases) as ``pg_dump`` files under
    ``var/bench/cache/``, keyed by this file and the code that decides what the seeding
    writes (the two services' domain, application, projections and schemas, and
    ``shared/``); their queries are left out of the key, so a change to how pages read
    restores the same node in seconds. Without ``pg_dump``/``pg_restore``, always seeds."""

    STATE = ("domain.py", "application.py", "projections.py", "schemas.py", "settings.py")

    def __init__(self, var):
        import hashlib
        import shutil as sh
        from pathlib import Path
        root = Path(__file__).resolve().parent.parent
        files = [Path(__file__), *(root / "shared").rglob("*.py")]
        for service in ("units", "supervision"):
            files += [root / "services" / service / f for f in self.STATE]
        h = hashlib.sha256(("%s" % SCALE).encode())
        for f in sorted(files):
            if "tests" not in f.parts and f.exists():
                h.update(f.read_bytes())
        self.folder = Path(var) / "bench" / "cache"
        self.key = "console-%s" % h.hexdigest()[:16]
        self.tools = bool(sh.which("pg_dump") and sh.which("pg_restore"))

    @staticmethod
    def _libpq(url: str) -> str:
        from sqlalchemy.engine import make_url
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def restore(self, urls: dict) -> dict | None:
        import json
        import subprocess
        from sqlalchemy import create_engine, text
        meta = self.folder / (self.key + ".json")
        dumps = {name: self.folder / ("%s-%s.dump" % (self.key, name)) for name in urls}
        if not (self.tools and meta.exists() and all(d.exists() for d in dumps.values())):
            return None
        for name, url in urls.items():
            subprocess.run(["pg_restore", "--no-owner", "-d", self._libpq(url), str(dumps[name])],
                           check=True, capture_output=True)
            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as c:
                c.execute(text("ANALYZE"))  # a restored database has no planner statistics
            engine.dispose()
        return dict(json.loads(meta.read_text()), restored_from=self.key)

    def save(self, urls: dict, seeded: dict) -> None:
        import json
        import subprocess
        if not self.tools:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("console-*"):  # one cached node: this code's
            old.unlink()
        for name, url in urls.items():
            subprocess.run(["pg_dump", "-Fc", "-f", str(self.folder / ("%s-%s.dump" % (self.key, name))),
                            self._libpq(url)], check=True, capture_output=True)
        (self.folder / (self.key + ".json")).write_text(json.dumps(seeded, ensure_ascii=False))


class Session:
    """One keep-alive connection carrying the console's session cookie."""

    def __init__(self, port: int):
        self.port, self.conn, self.cookie = port, None, ""

    def request(self, method: str, path: str, body: str | None = None, headers=None):
        h = {"Cookie": self.cookie} if self.cookie else {}
        h.update(headers or {})
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        return resp.status, resp.getheader("Set-Cookie") or "", resp.read()

    def sign_in(self, user: str, password: str) -> None:
        status, cookie, page = self.request("GET", "/login")
        nonce = re.search(rb'name="_csrf" value="([^"]+)"', page).group(1).decode()
        self.cookie = cookie.split(";")[0]
        from urllib.parse import urlencode
        status, cookie, _ = self.request("POST", "/login", urlencode(
            {"_csrf": nonce, "user_id": user, "password": password, "next": "/"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303 or "ql_session=" not in cookie:
            raise RuntimeError("console sign-in failed: %d" % status)
        self.cookie = re.search(r"ql_session=[^;]+", cookie).group(0)


def measure(port: int, path: str) -> dict:
    s = Session(port)
    s.sign_in("bench-admin", PASSWORD)
    health, page = [], []
    for i in range(SAMPLES + 20):  # the first 20 of each warm caches and are not counted
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            status, _, body = s.request("GET", "/health" if side == 0 else path)
            ms = (time.perf_counter() - t0) * 1000
            if status != 200:
                raise RuntimeError("%s answered %d: %s" % (path, status, body[:300]))
            if i >= 20:
                (health if side == 0 else page).append(ms)
            if side == 1:
                page_bytes = len(body)
    return {"p99": percentile(page, 99), "p50": percentile(page, 50),
            "health_p99": percentile(health, 99), "health_p50": percentile(health, 50),
            "samples": len(page), "bytes": page_bytes}


def run(var_dir: str = "var", only=None) -> dict:
    import shutil
    import tempfile
    from pathlib import Path

    from services.supervision.application import app as sv_app
    from services.supervision.settings import Settings, register
    from services.units.application import app as units_app
    from shared.auth import UserDirectory
    from shared.db import drop_database, make_engine
    from shared.uow import Runtime

    rng = random.Random(20261201)
    units_url, sv_url = scratch_database("console_units"), scratch_database("console_sv")
    node_url = scratch_database("console_node")
    vhost, vhost_uri = scratch_vhost("console")
    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    procs, results, seeded = [], {}, None
    try:
        engines = [make_engine(units_url), make_engine(sv_url)]
        units_rt = Runtime(engines[0], units_app.projections, NODE, "units")
        sv_rt = Runtime(engines[1], sv_app.projections, NODE, "supervision")
        t0 = time.perf_counter()
        cache = SeedCache(Path(var_dir))
        seeded = cache.restore({"units": units_url, "supervision": sv_url})
        if seeded is None:
            units_rt.create_schema()
            sv_rt.create_schema()
            register(engines[1], Settings())
            for url in (units_url, sv_url):  # not measured: need not wait for the WAL flush
                synchronous_commit(url, "off")
            seeded = seed(units_rt, sv_rt, rng)
            for url in (units_url, sv_url):
                synchronous_commit(url, None)
            cache.save({"units": units_url, "supervision": sv_url}, seeded)
        seeded["seed_seconds"] = round(time.perf_counter() - t0, 1)
        for e in engines:
            e.dispose()
        users = UserDirectory(make_engine(node_url), NODE)
        users.create_schema()
        users.add_user("bench-admin", "压测管理员", ["node-admin"])
        users.set_password("bench-admin", PASSWORD)
        users.engine.dispose()
        base = {"AMQP_URI": vhost_uri, "NODE_ID": NODE, "QINGLIAN_VAR": str(folder),
                "NODE_DATABASE_URL": node_url, "UNITS_DATABASE_URL": units_url,
                "SUPERVISION_DATABASE_URL": sv_url}
        for name, target, extra in (
                ("units", "services.units.service:UnitsService", {}),
                ("supervision", "services.supervision.service:SupervisionService", {}),
                ("console", "services.console.service:ConsoleService", {})):
            port = free_port()
            procs.append(start_service(target, dict(base, WEB_SERVER_ADDRESS="127.0.0.1:%d" % port,
                                                    **extra), folder, name))
            if name == "console":
                console_port = port
        wait_relay_idle(units_url, "units", 900)  # the seeded history is not part of the day
        wait_relay_idle(sv_url, "supervision", 900)
        for figure, path in (("console_home_p99_ms", "/"), ("console_board_p99_ms", "/rectifications")):
            if wanted(only, figure):
                results[figure] = measure(console_port, path)
    finally:
        for p in procs:
            stop_service(p)
        drop_vhost(vhost)
        for url in (units_url, sv_url, node_url):
            drop_database(url)
    shutil.rmtree(folder, ignore_errors=True)
    figures = {}
    for figure, m in results.items():
        figures[figure] = judged(
            m["p99"], "ms", m["health_p99"], "console GET /health p99, same process", 30.0, AT_MOST,
            quiet_machine_target="≤ 150 ms", p50_ms=round(m["p50"], 2),
            baseline_p50_ms=round(m["health_p50"], 2), samples=m["samples"], page_bytes=m["bytes"],
            **{k: v for k, v in seeded.items()})
    return figures
