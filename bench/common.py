"""What every benchmark shares: the suite registry, the selection a command line makes,
the verdict, the machine calibration line, and the one result form.

A verdict is never an absolute number: the machine is shared, and a neighbour's load
moves an absolute figure as much as the code does. Each figure is measured beside a
*baseline* taken in the same run, interleaved with it (so load that arrives mid-run falls
on both), and judged by ``ratio = value / baseline`` against a ``target_ratio``:

* ``goal: "at_least"`` - rates (events/s, calls/s): the ratio must reach the target;
* ``goal: "at_most"`` - latencies and losses: the ratio must not exceed it.

The absolute targets of earlier issues are kept beside as ``quiet_machine_target``: what
the figure should read on an idle machine, not what decides. A load test whose client
could not offer the intended rate measured nothing, and says so (``"not measured"``).

``var/bench/<suite>.json``::

    {"suite": ..., "selection": [...] | null, "machine": ..., "calibration": {...},
     "figures": {"<name>": {"value", "unit", "baseline", "baseline_name", "ratio",
                            "target_ratio", "goal", "quiet_machine_target", "verdict", ...}}}
"""
from __future__ import annotations

import http.client
import json
import os
import platform
import statistics
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

PG_SERVER = os.environ.get("QINGLIAN_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("QINGLIAN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API = "http://127.0.0.1:15672/api"
# every database and vhost a run creates starts with this (and is removed afterwards)
PREFIX = os.environ.get("QINGLIAN_BENCH_PREFIX", "qlbench")

# name -> module exposing FIGURES (the names it can measure) and run(var_dir, only).
# The scale suite (issue 13) and the console's add themselves here.
SUITES = {
    "kernel": "bench.kernel",
    "supervision": "bench.supervision",
    "education": "bench.education",
    "federation": "bench.federation",
    "console": "bench.console",
    "scale": "bench.scale",
}

MET, FAILED, NOT_MEASURED = "met", "failed", "not measured"
AT_LEAST, AT_MOST = "at_least", "at_most"
OFFERED_SHARE = 0.9        # below 90 % of the intended rate, the load was not offered
CLIENT_LAG_MS = 10.0       # a free client sending this late (median) was starved itself


def catalogue(args=()) -> dict:
    """suite -> the figure names it can measure (each module's FIGURES). With ``args``,
    only the suites they name are imported (the others map to ``()``), so one suite's
    module need not import for another to run."""
    import importlib
    named = {a.partition(".")[0] for a in args}
    return {name: tuple(importlib.import_module(path).FIGURES) if not named or name in named else ()
            for name, path in SUITES.items()}


class SelectionError(ValueError):
    """A command line naming a suite or figure that does not exist."""


# -- selection ---------------------------------------------------------------------------------
def parse_selection(args, catalogue: dict) -> list[tuple[str, frozenset | None]]:
    """``[]`` -> every suite; ``kernel`` -> that suite; ``kernel.reload_10k`` -> one figure.

    ``catalogue`` maps suite -> its figure names. Returns (suite, figures or None = all)
    in the order first named, figures of one suite merged."""
    if not args:
        return [(s, None) for s in catalogue]
    chosen: dict[str, set | None] = {}
    for arg in args:
        suite, _, name = arg.partition(".")
        if suite not in catalogue:
            raise SelectionError("未知的基准套件 %r（可选：%s）" % (suite, "、".join(catalogue)))
        if name and name not in catalogue[suite]:
            raise SelectionError("套件 %s 没有指标 %r（可选：%s）"
                                 % (suite, name, "、".join(catalogue[suite])))
        if not name or (suite in chosen and chosen[suite] is None):
            chosen[suite] = None
        else:
            chosen.setdefault(suite, set()).add(name)
    return [(s, None if f is None else frozenset(f)) for s, f in chosen.items()]


def wanted(only, *names: str) -> bool:
    """Does the selection ask for any of these figures (``only`` None = all)?"""
    return only is None or any(n in only for n in names)


# -- verdicts ----------------------------------------------------------------------------------
def verdict(ratio: float | None, target_ratio: float, goal: str, not_measured: str | None = None) -> str:
    if not_measured or ratio is None:
        return NOT_MEASURED
    if goal == AT_LEAST:
        return MET if ratio >= target_ratio else FAILED
    if goal == AT_MOST:
        return MET if ratio <= target_ratio else FAILED
    raise ValueError("goal must be %r or %r" % (AT_LEAST, AT_MOST))


def judged(value: float, unit: str, baseline: float, baseline_name: str, target_ratio: float,
           goal: str = AT_LEAST, quiet_machine_target: str | None = None,
           not_measured: str | None = None, **extra) -> dict:
    """One figure in the result form (module doc). ``not_measured`` is the reason a run
    measured nothing (e.g. the rate was not offered); the figure then has no verdict."""
    ratio = value / baseline if baseline else None
    f = {"value": _round(value), "unit": unit, "baseline": _round(baseline),
         "baseline_name": baseline_name, "ratio": None if ratio is None else round(ratio, 4),
         "target_ratio": target_ratio, "goal": goal, "quiet_machine_target": quiet_machine_target}
    f["verdict"] = verdict(ratio, target_ratio, goal, not_measured or (None if baseline else
                                                                     "baseline was zero"))
    if f["verdict"] == NOT_MEASURED:
        f["not_measured"] = not_measured or "baseline was zero"
    f.update(extra)
    return f


def offered_shortfall(intended_rps: float, offered_rps: float, client_lag_ms: float,
                      baseline_offered_rps: float | None = None) -> str | None:
    """Why a paced load run measured nothing, or None if it did.

    * The baseline (the same node's trivial endpoint, paced at the same rate from the
      same clients) was sent less than 90 % of the intended rate: this machine cannot
      carry the load at all right now, whatever the code does.
    * Or the measured side was sent less than 90 % of the rate *and* the shortfall was
      the client's own: a connection was free and the request due, yet it went out late
      (median lag over ``CLIENT_LAG_MS``) - the load generator did not get the CPU.

    A server that held every connection while its trivial endpoint kept up lowers the
    offered rate too, but then requests wait for a connection, not for the client
    (latency is counted from when each was due): that is the code's result, judged."""
    share = OFFERED_SHARE * intended_rps
    if baseline_offered_rps is not None and baseline_offered_rps < share:
        return ("本机无法承载计划负载：同一运行的基线也只发出 %.0f 次/秒（计划 %.0f 次/秒）"
                % (baseline_offered_rps, intended_rps))
    if offered_rps >= share or client_lag_ms <= CLIENT_LAG_MS:
        return None
    return ("客户端未能按计划施压：计划 %.0f 次/秒，实际发出 %.0f 次/秒（空闲连接上的发送延迟中位数 %.1f ms）"
            % (intended_rps, offered_rps, client_lag_ms))


def _round(v):
    return None if v is None else round(v, 4)


# -- measuring ---------------------------------------------------------------------------------
def percentile(samples, p) -> float:
    s = sorted(samples)
    if not s:
        return 0.0
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def interleaved(pairs: int, measure_baseline, measure_value) -> tuple[float, float]:
    """Alternate baseline and measured rounds (``fn(round) -> float``), return the medians
    (baseline, value): load that arrives mid-run falls on both sides, not on whichever
    happened to run second."""
    base, value = [], []
    for r in range(pairs):
        if r % 2 == 0:
            base.append(measure_baseline(r))
            value.append(measure_value(r))
        else:
            value.append(measure_value(r))
            base.append(measure_baseline(r))
    return statistics.median(base), statistics.median(value)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


# -- the floor of a rebuild: read and decode the events, write the rows ---------------------------
def raw_decoded_read(engine, event_types=None, until_us=None, page=5000) -> tuple[int, float]:
    """Fetch the events a replay would (same filter, same pages) and ``json.loads`` each
    payload, applying nothing. Returns (events, seconds)."""
    from sqlalchemy import select

    from shared.db import readonly
    from shared.store import events
    q = select(events.c.position, events.c.event_type, events.c.payload)
    if event_types is not None:
        q = q.where(events.c.event_type.in_(sorted(event_types)))
    if until_us is not None:
        q = q.where(events.c.recorded_at_us <= until_us)
    n, after = 0, 0
    with readonly(engine.connect()) as conn:
        t0 = time.perf_counter()
        while True:
            rows = conn.execute(q.where(events.c.position > after)
                                .order_by(events.c.position).limit(page)).all()
            for r in rows:
                json.loads(r[2])
            n += len(rows)
            if len(rows) < page:
                break
            after = rows[-1][0]
        seconds = time.perf_counter() - t0
    return n, seconds


def table_rows(engine, tables) -> dict[str, list[dict]]:
    """Every row of these tables (what a rebuild left), by table name."""
    from sqlalchemy import select
    with engine.connect() as conn:
        return {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in tables}


def raw_insert(engine, tables, rows: dict, copy: bool = False) -> float:
    """Seconds to write ``rows`` into tables of the same shape in one transaction, by the
    driver's bulk path (psycopg2 ``execute_values``, 1,000 rows a statement; SQLite
    ``executemany``) - emptying them first, as a rebuild swaps contents. ``copy``
    (PostgreSQL): into ``floor_<name>`` copies with the same columns, keys and indexes
    (created once), leaving the real tables alone."""
    from sqlalchemy import text
    names = {t.name: ("floor_" + t.name if copy else t.name) for t in tables}
    if copy and engine.dialect.name != "postgresql":
        raise ValueError("floor copies are made with PostgreSQL's CREATE TABLE ... LIKE")
    if copy:
        with engine.begin() as conn:
            for source, target in names.items():
                conn.execute(text('CREATE TABLE IF NOT EXISTS "%s" (LIKE "%s" INCLUDING ALL)'
                                  % (target, source)))
    with Timer() as timer:
        with engine.begin() as conn:
            for table in tables:
                target, batch = names[table.name], rows.get(table.name) or []
                conn.execute(text('DELETE FROM "%s"' % target))
                if not batch:
                    continue
                cols = [c.name for c in table.columns]
                if conn.dialect.name == "postgresql":
                    from psycopg2.extras import execute_values
                    cur = conn.connection.driver_connection.cursor()
                    try:
                        execute_values(cur, 'INSERT INTO "%s" (%s) VALUES %%s' % (
                            target, ", ".join('"%s"' % c for c in cols)),
                            [tuple(r[c] for c in cols) for r in batch], page_size=1000)
                    finally:
                        cur.close()
                else:
                    conn.execute(table.insert(), batch)
    return timer.seconds


class Client:
    """One keep-alive HTTP/1.1 connection (http.client: the load generator must spend
    less CPU per request than the server it measures)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer %s" % token
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None  # the server closed an idle connection: reconnect once
                if attempt:
                    raise
        raise AssertionError("unreachable")


class OpenLoop:
    """An open-loop load generator: request ``i`` is due at ``t0 + i / rate`` whatever
    the answers before it did, and its latency counts from when it was due - a server
    falling behind shows in full (no coordinated omission). One asyncio loop on raw
    keep-alive HTTP/1.1 connections (a thread per client, as ``Client`` takes, spends
    more CPU than a 2-core machine running the server can spare at 500/s: the previous
    threaded client offered 7 of 500/s).

    ``connections`` are opened before the clock starts; a due request takes a free one
    (it waits for one if none is free: still counted from due). A POST is never sent
    twice: a connection that fails carries the request as failed (status 0) and is
    reopened for the next. ``results[i]``: (status, headers {lower name: [values]},
    body, ms since due, ms since sent, client lag ms) - the lag being how late it went
    out although it was due and a connection was free: the generator's own shortfall."""

    def __init__(self, port: int, rate: float, connections: int):
        self.port, self.rate, self.connections = port, rate, connections

    def run(self, jobs) -> "tuple[list, float]":
        """``jobs``: (method, path, body or None, headers dict). Returns (results, the
        rate actually offered: requests sent per second from the first to the last).

        The loop runs in a Python process of its own (``serve``), not in the bench's:
        the bench is monkey-patched by eventlet (bench/__main__.py), and there asyncio's
        selector is eventlet's green ``select``, which registers every connection with
        the hub and removes it again on each turn of the loop - 85 % of the generator's
        samples (py-spy, 4 December), about 0.75 of a core at 500 requests/s on a
        2-core machine whose other core runs the servers under test. Its own process
        also keeps the bench's heap (modules, the members' sessions, earlier results)
        out of its garbage collector's full collections, which paused the loop for
        45-80 ms some 40 times a check-in run, each pause counted as the server's."""
        import subprocess
        import sys
        spec = {"port": self.port, "rate": self.rate, "connections": self.connections,
                "jobs": [[m, path, body.decode("latin-1") if isinstance(body, bytes) else body,
                          headers or {}] for m, path, body, headers in jobs]}
        done = subprocess.run([sys.executable, "-c", "from bench.common import OpenLoop; OpenLoop.serve()"],
                              input=json.dumps(spec).encode(), capture_output=True, cwd=str(ROOT))
        if done.returncode:
            raise RuntimeError("the load generator failed: %s" % done.stderr.decode()[-2000:])
        out = json.loads(done.stdout)
        return [None if r is None else (r[0], r[1], r[2].encode("latin-1"), r[3], r[4], r[5])
                for r in out["results"]], out["offered"]

    @staticmethod
    def serve() -> None:
        """The generator's process: the spec as JSON on stdin, (results, offered) as
        JSON on stdout, bodies as latin-1 text. No eventlet here; the collector is off
        for the run (its garbage is a few thousand requests' worth)."""
        import asyncio
        import gc
        import sys
        spec = json.load(sys.stdin.buffer)
        gen = OpenLoop(spec["port"], spec["rate"], spec["connections"])
        gc.disable()
        results, offered = asyncio.run(gen._run([tuple(j) for j in spec["jobs"]]))
        json.dump({"offered": offered,
                   "results": [None if r is None else [r[0], r[1], r[2].decode("latin-1"), *r[3:]]
                               for r in results]}, sys.stdout)

    async def _connect(self):
        import asyncio
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def _run(self, jobs):
        import asyncio
        loop = asyncio.get_running_loop()
        free: asyncio.Queue = asyncio.Queue()
        for _ in range(min(self.connections, len(jobs))):
            free.put_nowait((await self._connect(), loop.time()))
        results: list = [None] * len(jobs)
        sent_at = [0.0] * len(jobs)
        t0 = loop.time() + 0.2
        tasks = []
        for i, job in enumerate(jobs):
            due = t0 + i / self.rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            conn, freed = await free.get()
            tasks.append(asyncio.ensure_future(self._one(i, job, due, freed, conn, free,
                                                         results, sent_at)))
        await asyncio.gather(*tasks)
        while not free.empty():
            (_, writer), _ = free.get_nowait()
            writer.close()
        span = max(sent_at) - t0
        return results, ((len(jobs) - 1) / span if span > 0 else float(self.rate))

    async def _one(self, i, job, due, freed, conn, free, results, sent_at):
        import asyncio
        loop = asyncio.get_running_loop()
        method, path, body, headers = job
        data = body.encode() if isinstance(body, str) else (body or b"")
        head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % self.port,
                "Content-Length: %d" % len(data)]
        head += ["%s: %s" % kv for kv in (headers or {}).items()]
        reader, writer = conn
        sent = sent_at[i] = loop.time()
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            status, got, content = await self._response(reader)
            keep = "close" not in ",".join(got.get("connection", [])).lower()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, got, content, keep = 0, {}, b"", False
        done = loop.time()
        results[i] = (status, got, content, (done - due) * 1000, (done - sent) * 1000,
                      max(0.0, sent - max(due, freed)) * 1000)
        if not keep:
            writer.close()
            try:
                conn = await self._connect()
            except OSError:
                return  # the server is gone: the requests still due wait on the others
        free.put_nowait((conn, loop.time()))

    @staticmethod
    async def _response(reader):
        status_line = await reader.readline()
        if not status_line:
            raise ValueError("connection closed")
        status = int(status_line.split()[1])
        got: dict = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            got.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(got.get("content-length", ["0"])[0])
        return status, got, (await reader.readexactly(length)) if length else b""


ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(target: str, config: dict, folder: Path, name: str, timeout: float = 90.0):
    """``nameko run`` of one service as its own process (the load generator must not
    share the server's interpreter), answering ``/health`` on the config's
    WEB_SERVER_ADDRESS; its log goes to ``folder/<name>-server.log``. Returns the Popen.
    Its container is the deployed one (deploy/config.yaml's SERVICE_CONTAINER_CLS), so it
    runs the workers the service is deployed with (``<SERVICE>_MAX_WORKERS``)."""
    import subprocess
    import sys

    import requests
    cfg = Path(folder) / ("%s-bench.yaml" % name)
    from shared.config import CONTAINER_CLS
    cfg.write_text(json.dumps(dict({  # JSON is YAML
        "LOGGING": {"version": 1, "root": {"level": "WARNING", "handlers": ["err"]},
                    "handlers": {"err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}}},
        "SERVICE_CONTAINER_CLS": CONTAINER_CLS,  # as deployed: the service's own max_workers
    }, **config)))
    log = Path(folder) / ("%s-server.log" % name)
    proc = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(cfg), target],
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    url = "http://%s/health" % config["WEB_SERVER_ADDRESS"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited: %s" % (target, log.read_text()[-2000:]))
        try:
            if requests.get(url, timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("%s did not answer /health within %.0f s" % (target, timeout))


def stop_service(proc) -> None:
    import subprocess
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_relay_idle(url: str, service: str, timeout: float = 120.0) -> float:
    """Wait until a service's relay has published what was seeded before it started (a
    history is not part of the day being measured). Returns the seconds waited."""
    from sqlalchemy import func, select

    from shared.db import make_engine
    from shared.store import checkpoints, events
    engine = make_engine(url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            with engine.connect() as c:
                head = c.execute(select(func.max(events.c.position))).scalar() or 0
                done = c.execute(select(checkpoints.c.position)
                                 .where(checkpoints.c.name == "relay:%s" % service)).scalar() or 0
            if done >= head:
                return time.monotonic() - started
            time.sleep(0.25)
        raise RuntimeError("the %s relay did not publish the seeded events within %.0f s"
                           % (service, timeout))
    finally:
        engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The process's children now (a service's relay process, QINGLIAN_RELAY=process)."""
    try:
        return [int(k) for k in Path("/proc/%d/task/%d/children" % (pid, pid)).read_text().split()]
    except OSError:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """``cpu_seconds`` of the process and of its children now: a service with its relay
    in a child costs both."""
    return cpu_seconds(pid) + sum(cpu_seconds(k) for k in child_pids(pid))


def paired_latencies(port: int, trivial, measured, pairs: int) -> tuple[list, list, list]:
    """Closed loop on one keep-alive connection, alternating a trivial request and a
    measured one (``trivial`` = (method, path, token); ``measured(i)`` -> (label, method,
    path, token)): the trivial endpoint of the same process is the peer of every request
    there, with load that comes and goes falling on both. Returns (trivial ms, measured
    ms, [(label, ms)]). A non-200 answer is an error, not a sample."""
    client = Client(port)
    trivial_ms, measured_ms, labelled = [], [], []
    for i in range(pairs):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            label, method, path, token = ("", *trivial) if side == 0 else measured(i)
            t0 = time.perf_counter()
            status, body = client.request(method, path, token=token)
            ms = (time.perf_counter() - t0) * 1000
            if status != 200:
                raise RuntimeError("%s %s answered %d: %s" % (method, path, status, body[:300]))
            if side == 0:
                trivial_ms.append(ms)
            else:
                measured_ms.append(ms)
                labelled.append((label, ms))
    return trivial_ms, measured_ms, labelled


# -- scratch resources (named with PREFIX, removed by the caller) -------------------------------
def scratch_database(suite: str) -> str:
    from shared.db import create_database
    return create_database(PG_SERVER, "%s_%s" % (PREFIX.replace("-", "_"), suite))


def scratch_vhost(suite: str) -> tuple[str, str]:
    import requests
    name = "%s-%s-%s" % (PREFIX.replace("_", "-"), suite, uuid.uuid4().hex[:8])
    auth = ("guest", "guest")
    for url, body in (("%s/vhosts/%s" % (RABBIT_API, name), None),
                      ("%s/permissions/%s/guest" % (RABBIT_API, name),
                       {"configure": ".*", "write": ".*", "read": ".*"})):
        _management(lambda: requests.put(url, auth=auth, timeout=60, json=body).raise_for_status())
    return name, AMQP.rstrip("/") + "/" + name


def _management(call, attempts: int = 3):
    """A call of the broker's management API, retried: on a loaded machine it has taken
    longer than 10 s to answer (a full-scale run then failed before or after measuring)."""
    import requests
    for attempt in range(attempts):
        try:
            return call()
        except requests.RequestException:
            if attempt == attempts - 1:
                raise
            time.sleep(2 * (attempt + 1))


def drop_vhost(name: str) -> None:
    """Remove a scratch vhost; if the loaded broker's management API still does not
    answer, the run keeps its figures and says which vhost is left to remove by hand."""
    import sys

    import requests
    try:
        _management(lambda: requests.delete("%s/vhosts/%s" % (RABBIT_API, name),
                                            auth=("guest", "guest"), timeout=60))
    except requests.RequestException as exc:
        print("bench: could not remove vhost %s (%s); remove it by hand" % (name, exc), file=sys.stderr)


# -- the machine -------------------------------------------------------------------------------
PY_LOOP_STEPS = 10_000_000
PG_COMMITS = 200


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return "%s, %d cores, %.0f GiB, Python %s" % (cpu, os.cpu_count() or 0, mem,
                                                  platform.python_version())


def _cpu_times() -> list[int]:
    try:
        return [int(x) for x in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return []


def calibrate(pg_url: str) -> dict:
    """The machine's state right now, by two fixed loops: a pure-Python loop (CPU, steal
    included) and single-row inserts each committed with ``synchronous_commit = on`` in
    a throw-away database (the WAL fsync every command pays). Two runs compare honestly
    only beside these."""
    from sqlalchemy import text

    from shared.db import make_engine
    load = os.getloadavg()[0]
    before = _cpu_times()
    t0 = time.perf_counter()
    x = 0
    for i in range(PY_LOOP_STEPS):
        x += i
    py_s = time.perf_counter() - t0
    after = _cpu_times()
    delta = [b - a for a, b in zip(before, after)]
    steal = 100.0 * delta[7] / sum(delta) if len(delta) > 7 and sum(delta) else 0.0
    engine = make_engine(pg_url)
    try:
        with engine.begin() as c:
            c.execute(text("CREATE TABLE calibration (n integer PRIMARY KEY, at double precision)"))
            fsync = c.execute(text("SHOW fsync")).scalar()
        t0 = time.perf_counter()
        for n in range(PG_COMMITS):
            with engine.begin() as c:
                c.execute(text("SET LOCAL synchronous_commit = on"))
                c.execute(text("INSERT INTO calibration VALUES (:n, :at)"), {"n": n, "at": time.time()})
        pg_s = time.perf_counter() - t0
        with engine.begin() as c:
            c.execute(text("DROP TABLE calibration"))
    finally:
        engine.dispose()
    return {"python_loop_steps": PY_LOOP_STEPS, "python_loop_s": round(py_s, 3),
            "pg_commits": PG_COMMITS, "pg_commits_s": round(pg_s, 3), "pg_fsync": fsync,
            "cpu_steal_percent": round(steal, 1), "load_average_1m": round(load, 2),
            "cores": os.cpu_count()}


def calibration_line(c: dict) -> str:
    return ("calibration: %s-step Python loop %.2f s (steal %.0f %%), %d fsync'd PostgreSQL "
            "single-row commits %.2f s (%.1f ms each, fsync=%s), load average %.2f on %s cores"
            % (format(c["python_loop_steps"], ","), c["python_loop_s"], c["cpu_steal_percent"],
               c["pg_commits"], c["pg_commits_s"], 1000 * c["pg_commits_s"] / c["pg_commits"],
               c["pg_fsync"], c["load_average_1m"], c["cores"]))


# -- the result ------------------------------------------------------------------------------
def report(suite: str, figures: dict, calibration: dict, selection=None) -> dict:
    return {"suite": suite, "selection": sorted(selection) if selection else None,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "calibration": calibration, "figures": figures}


def write(result: dict, var: str | None = None) -> Path:
    folder = Path(var or os.environ.get("QINGLIAN_VAR", "var")) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("%s.json" % result["suite"])
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return path


def _num(v) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return format(round(v), ",")
    return "%.3g" % v


def table(result: dict) -> str:
    head = "%-26s %12s %-9s %12s %-36s %8s %8s  %-12s %s" % (
        "figure", "value", "unit", "baseline", "baseline is", "ratio", "target", "verdict",
        "quiet machine")
    lines = ["", "%s  (%s)" % (result["suite"], result["machine"]),
             calibration_line(result["calibration"]), head]
    for name, f in result["figures"].items():
        target = ("≥ " if f["goal"] == AT_LEAST else "≤ ") + _num(f["target_ratio"])
        lines.append("%-26s %12s %-9s %12s %-36s %8s %8s  %-12s %s" % (
            name, _num(f["value"]), f["unit"], _num(f["baseline"]), f["baseline_name"][:36],
            _num(f["ratio"]), target, f["verdict"], f.get("quiet_machine_target") or "-"))
        if f.get("not_measured"):
            lines.append("%26s   not measured: %s" % ("", f["not_measured"]))
    return "\n".join(lines)


def details(result: dict) -> str:
    """The figures' extra fields (percentiles, counts), one line each."""
    core = {"value", "unit", "baseline", "baseline_name", "ratio", "target_ratio", "goal",
            "quiet_machine_target", "verdict", "not_measured"}
    out = []
    for name, f in result["figures"].items():
        extra = {k: v for k, v in f.items() if k not in core}
        if extra:
            out.append("  %s: %s" % (name, ", ".join("%s=%s" % kv for kv in extra.items())))
    return "\n".join(out)
