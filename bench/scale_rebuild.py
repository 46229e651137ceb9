"""Issue 13's ``scale_rebuild_events_per_s``: a district's supervision read models
rebuilt from 1,000,000 events on PostgreSQL, by the product's own path, with its memory.

The log: a district's year (300 units; findings and their rectifications with evidence,
verification, rejections, overdue and escalation; inspections scored against the
checklist; integrity-risk points assessed, with controls added and reviewed; quarterly
screenings; the unit tree as the mirror records it), made by the supervision domain's
own aggregates (``Finding.record``, ``Rectification.open`` ... so every payload has the
real shape and passes its declared fields) and encoded as ``EventStore`` encodes an
append (``_rows``: canonical JSON, the hash chain), then loaded with ``COPY`` - seeding
through commands would take hours. Seeded, deterministic; kept as a ``pg_dump`` in
``var/bench/cache/scale-rebuild-<key>.dump`` (key: the generator, the supervision domain and the
store's encoding), so a later run restores it in seconds.

Measured: ``qinglian projections rebuild --service supervision`` as its own process
(every projection of the service, as an operator runs it), events in the log / wall
seconds; peak RSS from the kernel (``wait4``, by a small launcher process: see
``_LAUNCHER``). Baseline, interleaved round by round: the floor of that work - the raw
decoded read of the same events (each projection's own filter, as the rebuild reads
them) plus one ``COPY`` of every row the rebuild produced into same-shaped tables, one
transaction.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from contextlib import contextmanager

from bench.common import AT_LEAST, ROOT, Timer, judged, rate, raw_decoded_read

EVENTS = 1_000_000
UNITS = 300
NODE = "scale-district"
YEAR = date(2025, 1, 1)
ROUNDS = 3


@contextmanager
def blocking_driver():
    """psycopg2 without eventlet's wait callback (the bench process is monkey-patched):
    COPY refuses to run under it; nothing else runs in this process meanwhile."""
    import psycopg2.extensions
    saved = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(saved)


def floor_write(engine, projections, rows: dict) -> float:
    """Seconds to write ``rows`` (projection -> table -> rows) by COPY, in one
    transaction, into ``floor_<table>`` copies (same columns, keys and indexes) emptied
    first - what a rebuild's flush cannot go below."""
    from sqlalchemy import text

    from shared.projections import _copy_into
    # each row's values in column order, as the rebuild's writer holds them
    values = {t.name: [[r[c.name] for c in t.columns] for r in rows[p.name].get(t.name, ())]
              for p in projections for t in p.tables}
    with blocking_driver():
        with engine.begin() as conn:
            for p in projections:
                for t in p.tables:
                    conn.execute(text('CREATE TABLE IF NOT EXISTS "floor_%s" (LIKE "%s" INCLUDING ALL)'
                                      % (t.name, t.name)))
        with Timer() as timer:
            with engine.begin() as conn:
                for p in projections:
                    for t in p.tables:
                        conn.execute(text('DELETE FROM "floor_%s"' % t.name))
                        if values[t.name]:
                            _copy_into(conn, t, values[t.name], name="floor_" + t.name)
    return timer.seconds


# -- the district's year -------------------------------------------------------------------
def _year(n_events: int, seed: int = 13):
    """(day index, aggregate) lives in the order they would be recorded; yields
    (day, stream_id, stream_type, [(event_type, schema_version, payload)])."""
    from services.supervision.domain import (
        DEFAULT_CRITERIA, FINDING_SOURCES, RESPONSIBLE_ROLES, RISK_CATEGORIES, SEVERITIES,
        Checklist, Finding, Inspection, Rectification, RiskPoint, ScreeningSchedule,
    )
    from services.supervision.settings import DEFAULT_LADDER, POST_FLAGS, Settings
    from shared.unittree import UnitMirror
    rng = random.Random(seed)
    rules = Settings().risk_rules()
    units = ["u%03d" % i for i in range(UNITS)]
    sources = [s for s in FINDING_SOURCES if s != "inspection"]
    flags = list(POST_FLAGS)
    count = 0

    def iso(day: int) -> str:
        return (YEAR + timedelta(days=day)).isoformat()

    def life(day, agg):
        nonlocal count
        evs = agg.collect_events()
        count += len(evs)
        return (day, agg.stream_id, agg.stream_type,
                [(e.event_type, e.schema_version, e.data()) for e in evs])

    tree = [("district", "某区区直机关工委", "district_authority", "district", None)] + [
        (u, "单位%s" % u, "government_dept", "unit", "district") for u in units]
    for unit_id, name, kind, level, parent in tree:
        m = UnitMirror(unit_id)
        m.trigger(UnitMirror.Registered, unit_id=unit_id, name=name, kind=kind, level=level,
                  parent_id=parent)
        yield life(0, m)
    checklist = Checklist.default()
    yield life(0, checklist)
    for u in units:
        yield life(0, ScreeningSchedule.establish(u, "quarterly", iso(0)))
    i = 0
    while count < n_events:
        i += 1
        unit = units[i % UNITS]
        kind = i % 10
        day = min(330, int(330 * count / n_events))
        if kind < 6:  # a finding and its rectification
            fid = "f%06d" % i
            f = Finding.record(fid, unit, rng.choice(sources),
                               "问题%06d：公务接待、差旅报销或台账管理不规范" % i,
                               rng.choice(list(SEVERITIES)), iso(day))
            yield life(day, f)
            deadline = day + rng.randint(10, 45)
            r = Rectification.open(f, unit, rng.choice(list(RESPONSIBLE_ROLES)), iso(deadline),
                                   iso(day), "限期整改并报送佐证材料")
            if rng.random() < 0.2:
                r.detect_overdue(iso(deadline + 16), DEFAULT_LADDER, {})
            if rng.random() < 0.75:
                sha = "%064x" % rng.getrandbits(256)
                r.submit_evidence([{"path": "%s/%s.pdf" % (sha[:2], sha), "sha256": sha,
                                    "size_bytes": rng.randint(10_000, 900_000),
                                    "description": "整改报告"}], "已整改", iso(day + 20),
                                  "ua-%s" % unit)
                if rng.random() < 0.1:
                    r.reject("佐证材料不全", iso(day + 22), "insp-1")
                else:
                    r.verify(iso(day + 22), "insp-2", "核查属实")
            yield life(day, r)
        elif kind < 9:  # an integrity-risk point, assessed, with controls reviewed
            rid = "rp%06d" % i
            p = RiskPoint.identify(rid, unit, "岗位%06d：审批环节自由裁量空间大" % i,
                                   rng.choice(list(RISK_CATEGORIES)), post="科员岗",
                                   post_flags=rng.sample(flags, rng.randint(0, 2)),
                                   identified_on=iso(day))
            p.assess(rng.randint(1, 5), rng.randint(1, 5), rules, iso(day), "insp-1")
            for c in range(2):
                cid = "c%d" % c
                p.add_control(cid, "落实双人审批、全程留痕", "科长", iso(day + 90), iso(day))
                if rng.random() < 0.6:
                    p.review_control(cid, iso(day + 90), rng.random() < 0.8, "有效",
                                     iso(day + 180))
            yield life(day, p)
        else:  # an inspection scored against the checklist, with feedback
            ins = Inspection.plan("ins%06d" % i, unit, "清廉机关建设专项督导", iso(day), checklist,
                                  inspectors=["insp-1", "insp-2"])
            ins.score([{"criterion": c["code"], "score": c["max_score"] - (k % 2) * 3,
                        "note": "台账不全" if k % 2 else ""}
                       for k, c in enumerate(DEFAULT_CRITERIA)])
            yield life(day, ins)
    del rng


def seed(url: str, n_events: int = EVENTS) -> int:
    """Write the year into the events table of ``url`` by COPY (schema created first)."""
    from services.supervision.application import app
    from shared.db import make_engine
    from shared.events import NewEvent
    from shared.store import GENESIS, _EVENT_COLUMNS
    from shared.uow import Runtime
    engine = make_engine(url)
    rt = Runtime(engine, app.projections, NODE, "supervision")
    rt.create_schema()
    store = rt.store
    position, last_hash, buf, n = 0, GENESIS, io.StringIO(), 0
    versions: dict[str, int] = {}

    def esc(v) -> str:
        s = str(v)
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    raw = engine.raw_connection()
    with blocking_driver():
        cur = raw.cursor()

        def flush():
            buf.seek(0)
            cur.copy_expert("COPY events (%s) FROM STDIN" % ", ".join(_EVENT_COLUMNS), buf)
            buf.seek(0)
            buf.truncate()
        for day, stream_id, stream_type, evs in _year(n_events):
            at = datetime(YEAR.year, YEAR.month, YEAR.day, 1, tzinfo=timezone.utc) + timedelta(days=day)
            base = versions.get(stream_id, 0)
            meta = {"node": NODE, "correlation_id": "%s#%d" % (stream_id, base),
                    "occurred_at": at.isoformat(), "actor": "bench-seed"}
            new = [NewEvent(stream_id, stream_type, base + k + 1, t, v, p, meta,
                            event_id=hashlib.md5(("%s/%d" % (stream_id, base + k + 1)).encode()).hexdigest())
                   for k, (t, v, p) in enumerate(evs)]
            versions[stream_id] = base + len(new)
            rows, _ = store._rows(new, position, last_hash, int(at.timestamp() * 1_000_000))
            position, last_hash = rows[-1]["position"], rows[-1]["hash"]
            for r in rows:  # only the JSON texts can hold a tab, newline or backslash
                buf.write("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" % (
                    r["position"], r["event_id"], r["stream_id"], r["stream_type"], r["version"],
                    r["event_type"], r["schema_version"], esc(r["payload"]), esc(r["meta"]),
                    r["recorded_at_us"], r["hash"]))
            n += len(rows)
            if buf.tell() > 8 << 20:
                flush()
        flush()
        cur.execute("ANALYZE events")
        raw.commit()
    raw.close()
    engine.dispose()
    return n


def _cache_key() -> str:
    """What the seeded log depends on: the generator and the code that encodes events."""
    import inspect
    h = hashlib.sha256()
    h.update(inspect.getsource(_year).encode())
    h.update(inspect.getsource(seed).encode())
    for f in ("services/supervision/domain.py", "services/supervision/settings.py",
              "shared/aggregate.py", "shared/events.py", "shared/store.py", "shared/unittree.py"):
        h.update((ROOT / f).read_bytes())
    h.update(str(EVENTS).encode())
    return h.hexdigest()[:16]


def seeded(url: str, var_dir: str, n_events: int = EVENTS) -> tuple[int, float, str | None]:
    """(events, seconds, restored-from) - from the cache's dump when it matches."""
    import shutil
    from sqlalchemy.engine import make_url
    cache = Path(var_dir) / "bench" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    dump = cache / ("scale-rebuild-%s.dump" % _cache_key())
    u = make_url(url)
    pg_args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    have = shutil.which("pg_dump") and shutil.which("pg_restore")
    t0 = time.perf_counter()
    if have and dump.exists() and n_events == EVENTS:
        subprocess.run(["pg_restore", *pg_args, "-d", u.database, "--no-owner", str(dump)],
                       check=True, capture_output=True)
        from shared.db import make_engine
        engine = make_engine(url)
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
            n = c.exec_driver_sql("SELECT count(*) FROM events").scalar()
        engine.dispose()
        return n, time.perf_counter() - t0, dump.name
    n = seed(url, n_events)
    seconds = time.perf_counter() - t0
    if have and n_events == EVENTS:
        for old in cache.glob("scale-rebuild-*.dump"):
            old.unlink()
        subprocess.run(["pg_dump", *pg_args, "-Fc", "-Z1", "-f", str(dump), u.database],
                       check=True, capture_output=True)
    return n, seconds, None


# -- the measurement ---------------------------------------------------------------------------
# Started from a small launcher process, which times it and reports its peak RSS (wait4):
# Linux counts a child's peak from its parent's size at the fork, and this process holds
# the rebuilt rows after the first round (1.3 GiB) - every later round reported that.
_LAUNCHER = """
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def rebuild_in_own_process(url: str, folder: Path) -> tuple[float, float]:
    """``qinglian projections rebuild --service supervision``: (seconds, peak RSS MiB)."""
    env = dict(os.environ, SUPERVISION_DATABASE_URL=url, NODE_ID=NODE,
               QINGLIAN_VAR=str(folder))
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "tooling.cli",
                           "projections", "rebuild", "--service", "supervision"],
                          cwd=str(ROOT), env=env, capture_output=True, text=True)
    seconds, peak_kib, code = (proc.stdout.split() if proc.returncode == 0 else ("", "", "?"))
    if code != "0":
        raise RuntimeError("qinglian projections rebuild failed: %s" % proc.stderr[-2000:])
    return float(seconds), int(peak_kib) / 1024.0  # Linux: KiB


def run(var_dir: str = "var", n_events: int = EVENTS) -> dict:
    """The figure, in a scratch database removed afterwards (also when it fails)."""
    from bench.common import scratch_database
    from shared.db import drop_database
    url = scratch_database("scale_rebuild")
    try:
        return measure(url, var_dir, n_events)
    finally:
        drop_database(url)


def measure(url: str, var_dir: str, n_events: int = EVENTS, rounds: int = ROUNDS) -> dict:
    from services.supervision.application import app
    from bench.common import table_rows
    from shared.db import make_engine
    n, seed_s, restored = seeded(url, var_dir, n_events)
    folder = Path(var_dir) / "bench" / "scale-rebuild"
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        ours, floors, rss = [], [], []
        rows = None
        for r in range(rounds):
            seconds, peak = rebuild_in_own_process(url, folder)
            ours.append(rate(n, seconds))
            rss.append(peak)
            if rows is None:
                rows = {p.name: table_rows(engine, p.tables) for p in app.projections}
            # the floor: one read of every event the read models handle, one COPY of the rows
            types = set().union(*(p.event_types for p in app.projections))
            _, read_s = raw_decoded_read(engine, types)
            floors.append(rate(n, read_s + floor_write(engine, app.projections, rows)))
    finally:
        engine.dispose()
    value, base = sorted(ours)[len(ours) // 2], sorted(floors)[len(floors) // 2]
    return {"scale_rebuild_events_per_s": judged(
        value, "events/s", base, "raw decoded read + batch insert", 0.5, AT_LEAST,
        quiet_machine_target="≥ 50,000 events/s", events=n,
        rows=sum(len(v) for t in rows.values() for v in t.values()),
        peak_rss_mib=round(max(rss)), rounds=[round(x) for x in ours],
        baseline_rounds=[round(x) for x in floors], seed_seconds=round(seed_s, 1),
        seed_restored_from=restored, projections=len(app.projections))}
