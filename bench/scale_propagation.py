"""Issue 13's ``scale_propagation_p99_s`` and its growth: a city and N districts
(``tooling.citynet.CityNetwork``: vhosts of the local broker, federated as in
production, each node's exchange service its own ``nameko run`` process on its own
SQLite files), every district publishing shared records at RATE a second at once.

Only the exchange service runs on each node: shared records are made, signed,
published, received, checked and applied by it alone (the other services neither send
nor receive them), and four services on 12 nodes would be 48 processes on 2 cores.

Each district's records are ``draft_experience`` commands shared with everyone, sent
over its HTTP API by an open-loop client (each record when due, RATE/s per district,
at most CONCURRENCY in flight). A record travels district → city (one federation
link) → every other district (the city's links down). From: the time the origin
recorded it (its outbox's ``recorded_at_us``, taken when the command's unit of work
began - so the command's own time counts). Visible: committed in the receiver's
database - the benchmark polls every node's ``federation_inbox`` watermarks every
POLL_S (a record is visible once its origin's watermark there reaches its number), so
up to POLL_S of polling counts too. The first WARMUP_S seconds of records are left out.

* ``to_city``: until the record is visible at the city.
* ``everywhere`` (the figure): until it is visible at the city *and* at every other
  district (the slowest receiver: "city → every district").

The origins must commit what was asked: below 90 % of N × RATE records a second
(``offered_per_s``, from the outbox's own times) the figure is "not measured".

Lost: counted per node once every node holds everything, or DRAIN_S after the last
send: every record each origin's outbox holds, against what each other node applied
from it (a record not applied by then counts, whether late or lost: the run cannot
tell). CPU: each process's own accounting (``/proc``), less its idle CPU measured
over IDLE_S before the records start (``cpu_per_record``).

Baseline, in the same run and at the same time: the broker's own federated round trip
of a bare message of the same size (``RawPath``): published with a confirm in
district-01's vhost, consumed in the city's vhost (one hop) and in the last
district's (two hops, through the city), by exchanges federated over the same
upstreams, at RATE/s beside the records. Judged: the figure's p99 against the two-hop
raw p99.

Growth (``scale_propagation_growth``): the figure at 2, 5 and 11 districts, (p99 at 11
/ p99 at 2) / (11 / 2), as ``scale_city_compare_growth``.
"""
from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path

import eventlet

from bench.common import AT_MOST, FAILED, MET, PREFIX, judged, percentile, rate

RATE = 20            # shared records a second per district
SECONDS = 30         # of publishing, after WARMUP_S
WARMUP_S = 3
POLL_S = 0.05
DRAIN_S = 180
IDLE_S = 5           # each process's idle CPU measured this long before publishing
GROWTH = (2, 5, 11)
BASE_PORT = int(__import__("os").environ.get("QINGLIAN_BENCH_SCALE_PORT", "18800"))
RAW_EXCHANGE = "qlbench.raw"
UNITS = 10           # units per district the records are about
CONCURRENCY = 8      # commands in flight per district, at most


class RawPath:
    """The floor: ``RAW_EXCHANGE`` in district-01's, the city's and the last district's
    vhosts, the city's federated from district-01's and the last district's from the
    city's over the upstreams the topology defined (a policy for this exchange alone;
    each link's own user allowed to read it), a queue in the city's and in the last
    district's vhost, and a consumer noting when each message arrived at each."""

    def __init__(self, net, body_size: int):
        from kombu import Connection, Exchange, Queue
        admin, city = net.admin, net.city
        first, far = net.districts[0], net.districts[-1]
        topology = net.topology
        for vhost in (first.vhost, city.vhost, far.vhost):
            admin.declare_exchange(vhost, RAW_EXCHANGE)
        if topology.link_users:
            admin.grant_link_user(first.vhost, topology.link_user_name(first, city),
                                  (*topology.up_exchanges, RAW_EXCHANGE), city.vhost)
            admin.grant_link_user(city.vhost, topology.link_user_name(city, far),
                                  (*topology.down_exchanges(far.node_id), RAW_EXCHANGE), far.vhost)
        for vhost, upstream in ((city.vhost, first.node_id), (far.vhost, city.node_id)):
            admin._call("PUT", "policies", vhost, "qlbench-federate-raw", json={
                "pattern": "^qlbench\\.raw$", "definition": {"federation-upstream": upstream},
                "priority": 10, "apply-to": "exchanges"})
        admin.wait_for_links(city.vhost, [first.node_id], 30, exchange=RAW_EXCHANGE)
        admin.wait_for_links(far.vhost, [city.node_id], 30, exchange=RAW_EXCHANGE)
        exchange = Exchange(RAW_EXCHANGE, type="topic", durable=True)
        self.arrived: dict[str, dict[str, float]] = {"city": {}, "far": {}}
        self.conns, self.consumers = [], []
        for where, node in (("city", city), ("far", far)):
            conn = Connection(node.amqp_uri)
            queue = Queue("qlbench-raw-%s" % where, exchange=exchange, routing_key="#",
                          durable=False, auto_delete=True)
            consumer = conn.Consumer([queue], callbacks=[self._arrived(where)], accept=None)
            consumer.consume()
            self.conns.append(conn)
            self.consumers.append(consumer)
        deadline = time.monotonic() + 30  # the bindings travel upstream asynchronously

        def bound(vhost):
            return any(b.get("source") == RAW_EXCHANGE and b["destination"].startswith("federation: ")
                       for b in admin._call("GET", "bindings", vhost))
        while not (bound(first.vhost) and bound(city.vhost)):
            if time.monotonic() > deadline:
                raise TimeoutError("the raw bench bindings did not reach the upstream brokers")
            time.sleep(0.1)
        self.publisher_conn = Connection(first.amqp_uri, transport_options={"confirm_publish": True})
        self.producer = self.publisher_conn.Producer(exchange=exchange)
        self.body = b"x" * body_size
        self.sent: dict[str, float] = {}
        self.stopped = False
        self.threads = [eventlet.spawn(self._drain, c) for c in self.conns]

    def _arrived(self, where):
        def on(body, message):
            self.arrived[where][message.properties.get("message_id")] = time.perf_counter()
            message.ack()
        return on

    def _drain(self, conn):
        import socket
        while not self.stopped:
            try:
                conn.drain_events(timeout=0.2)
            except socket.timeout:
                pass

    def publish(self, message_id: str) -> None:
        self.sent[message_id] = time.perf_counter()
        self.producer.publish(self.body, routing_key="raw.bench", delivery_mode=2,
                              message_id=message_id, content_type="application/octet-stream")

    def latencies(self, where: str) -> tuple[list[float], int]:
        got = self.arrived[where]
        lat = [got[m] - t for m, t in self.sent.items() if m in got]
        return lat, len(self.sent) - len(lat)

    def close(self):
        self.stopped = True
        for t in self.threads:
            t.wait()
        for c in self.consumers:
            c.cancel()
        for c in self.conns + [self.publisher_conn]:
            c.release()


def _seed_units(node) -> None:
    """The district's units in its exchange's unit mirror (the records name them), as
    the units service's events would have put them there."""
    from services.exchange.application import app
    from shared import config
    from shared.auth import Actor
    from shared.db import make_engine
    from shared.events import StoredEvent
    from shared.uow import Runtime
    from shared.unittree import record_unit_event
    if node.level != "district":
        return
    rt = Runtime(make_engine(config.database_url("exchange", node.config)), app.projections,
                 node.node_id, "exchange")
    rt.create_schema()
    with rt.unit_of_work(Actor("bench", ("node-admin",), None, node.node_id)) as uow:
        for u in range(UNITS):
            uid = "%s-u%02d" % (node.node_id, u)
            record_unit_event(uow, StoredEvent(0, uid, "Unit:%s" % uid, "Unit", 1, "Unit.Registered", 1,
                                               {"unit_id": uid, "name": "单位%02d" % u,
                                                "kind": "government_dept", "level": "district",
                                                "parent_id": None}, {}, 0))
    rt.engine.dispose()


class Watermarks:
    """Every node's ``federation_inbox`` read every POLL_S: for each (node, origin) the
    times its watermark moved, to tell when a number became visible there."""

    def __init__(self, net):
        from shared import config
        from shared.db import make_engine
        self.engines = {n.node_id: make_engine(config.database_url("exchange", n.config))
                        for n in net.nodes.values()}
        self.moves: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self.stopped = False
        self.thread = eventlet.spawn(self._run)

    def _run(self):
        from sqlalchemy import select

        from services.exchange.federation import inbox
        from shared.db import readonly
        while not self.stopped:
            for node, engine in self.engines.items():
                try:
                    with readonly(engine.connect()) as conn:
                        rows = conn.execute(select(inbox.c.origin, inbox.c.applied_through)).all()
                except Exception:  # noqa: BLE001 - a node busy writing: read it next time
                    continue
                now = time.time()
                for origin, w in rows:
                    moves = self.moves.setdefault((node, origin), [])
                    if not moves or moves[-1][1] != w:
                        moves.append((now, w))
            eventlet.sleep(POLL_S)

    def visible_at(self, node: str, origin: str, seq: int) -> float | None:
        import bisect
        moves = self.moves.get((node, origin), [])
        i = bisect.bisect_left([w for _t, w in moves], seq)
        return moves[i][0] if i < len(moves) else None

    def close(self):
        self.stopped = True
        self.thread.wait()
        for e in self.engines.values():
            e.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/<pid>/stat``)."""
    import os
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """User + system CPU seconds this process (the bench client) has used so far."""
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _outbox(engine) -> dict[str, tuple[int, float]]:
    """experience id -> (its Published envelope's number, when the origin recorded it:
    wall-clock seconds), from an origin's outbox."""
    from sqlalchemy import select

    from services.exchange.federation import outbox
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.origin_seq, outbox.c.envelope, outbox.c.recorded_at_us)
                            .where(outbox.c.event_type == "Experience.Published")).all()
    return {env["payload"]["experience_id"]: (seq, at / 1e6) for seq, env, at in rows}


def measure(districts: int, var_dir: str = "var", seconds: float = SECONDS,
            profile: dict[str, str] | None = None) -> dict:
    """One run at ``districts`` districts: latencies, losses and the raw floor."""
    from tooling.citynet import Api, CityNetwork
    root = Path(var_dir) / "bench" / ("scale-propagation-%d" % districts)
    if root.exists():
        shutil.rmtree(root)
    net = CityNetwork(root, districts, BASE_PORT, services=("exchange",),
                      prefix="%s-prop-%s" % (PREFIX.replace("_", "-"), uuid.uuid4().hex[:4]),
                      extra={"FEDERATION_SYNC_SECONDS": 3600}, service_users=False,
                      cpu_profile=profile)
    watch = raw = None
    try:
        net.start(before_start=_seed_units)
        watch = Watermarks(net.net)
        raw = RawPath(net.net, body_size=1500)
        lateness: list[float] = []
        answered: list[float] = []  # each command's round trip, as the client saw it
        errors: list[str] = []
        sessions = {d: [Api(d, a.base, net.tokens[d]) for _ in range(CONCURRENCY)]
                    for (d, _s), a in net.api.items()}

        def post(d: str, k: int):
            api = sessions[d].pop()
            t = time.perf_counter()
            try:
                api.post("draft_experience", {
                    "experience_id": "p-%05d" % k, "unit_id": "%s-u%02d" % (d, k % UNITS),
                    "title": "经验 %d" % k, "summary": "聚焦责任抓落实，推动清廉机关建设。",
                    "body": "示范点建设经验做法：台账规范、流程公开、群众评议。" * 3,
                    "business_type": "示范点建设", "topics": ["示范点"],
                    "share": {"sharing": "all", "recipients": []}})
            except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                errors.append("%s: %s" % (d, exc))
            finally:
                answered.append(time.perf_counter() - t)
                sessions[d].append(api)

        def district_client(d: str, t0: float, n: int):
            # open loop: each record is sent when due, whether or not the last one has
            # been answered (at most CONCURRENCY in flight per district). Green threads,
            # not bench.common.OpenLoop: its asyncio loop would hold up the watermark
            # poller and the raw link's consumers, which run beside on eventlet's hub.
            pool = eventlet.GreenPool(CONCURRENCY)
            for k in range(n):
                delay = t0 + k / RATE - time.perf_counter()
                if delay > 0:
                    eventlet.sleep(delay)
                pool.spawn_n(post, d, k)
                lateness.append(max(0.0, time.perf_counter() - (t0 + k / RATE)))
            pool.waitall()

        def raw_client(t0: float, n: int):
            for k in range(n):
                delay = t0 + k / RATE - time.perf_counter()
                if delay > 0:
                    eventlet.sleep(delay)
                raw.publish("raw-%06d" % k)

        n = int((WARMUP_S + seconds) * RATE)
        # what each process costs doing nothing (timers, polls), to take off its total
        idle0, t_idle = {node: cpu_seconds(proc.pid) for node, _s, proc in net.procs}, time.time()
        eventlet.sleep(IDLE_S)
        cpu0 = {node: cpu_seconds(proc.pid) for node, _s, proc in net.procs}
        idle_rate = {node: (cpu0[node] - idle0[node]) / (time.time() - t_idle) for node in cpu0}
        t_cpu0 = time.time()
        client0 = _own_cpu_seconds()
        t0 = time.perf_counter() + 0.5
        t0_wall = time.time() + 0.5
        clients = [eventlet.spawn(district_client, d, t0, n) for d in net.districts]
        clients.append(eventlet.spawn(raw_client, t0, n))
        for c in clients:
            c.wait()
        t_end = time.time()
        # the client's own CPU while it sent (this process: the senders, the raw path, the
        # watermark poller): near 1.0 it could not send faster whatever the nodes did
        client_cores = (_own_cpu_seconds() - client0) / max(1e-9, t_end - t_cpu0)
        # drain: every node has everything its peers' outboxes hold, or DRAIN_S passed
        heads = {d: _outbox(watch.engines[d]) for d in net.districts}
        deadline = time.monotonic() + DRAIN_S
        # the processes' CPU is read once every record is visible everywhere, not when
        # the raw path's last message is in: a raw message the broker lost kept the run
        # waiting DRAIN_S, and the idle rate taken off over those idle minutes (measured
        # over IDLE_S after start, a little above a long quiet spell's) ate into the
        # records' own CPU - such runs showed a third less per record than the others
        cpu_end = None
        while time.monotonic() < deadline:
            visible = all(watch.visible_at(node, d, max((v[0] for v in h.values()), default=0))
                          is not None for d, h in heads.items() for node in net.node_ids if node != d)
            if visible and cpu_end is None:
                cpu_end = ({node: cpu_seconds(proc.pid) for node, _s, proc in net.procs}, time.time())
            if visible and len(raw.arrived["far"]) >= len(raw.sent):
                break
            eventlet.sleep(0.2)
        watch.close()
        if cpu_end is None:
            cpu_end = ({node: cpu_seconds(proc.pid) for node, _s, proc in net.procs}, time.time())
        busy_s = cpu_end[1] - t_cpu0
        cpu = {node: round(max(0.0, cpu_end[0][node] - cpu0[node] - idle_rate[node] * busy_s), 2)
               for node in cpu_end[0]}
        want, have = net.expected_records(), net.held_records()
        lost_per_node = {node: sum(max(0, w - have[node].get(o, 0)) for o, w in want[node].items())
                         for node in net.node_ids}
        missing_where = _missing_where(net, lost_per_node) if any(lost_per_node.values()) else {}
        applied_per_node = {node: sum(have[node].get(o, 0) for o in want[node]) for node in net.node_ids}
        skip = WARMUP_S * RATE
        to_city, everywhere, committed = [], [], []
        for d, records in heads.items():
            for rid, (seq, at) in records.items():
                committed.append(at)
                if int(rid.rsplit("-", 1)[1]) < skip:
                    continue
                at_city = watch.visible_at("city", d, seq)
                at_all = [watch.visible_at(node, d, seq) for node in net.node_ids if node != d]
                if at_city is not None:
                    to_city.append(at_city - at)
                if all(a is not None for a in at_all):
                    everywhere.append(max(at_all) - at)
        committed.sort()
        window = committed[-1] - committed[0] if len(committed) > 1 else 0.0
        raw_city, raw_city_lost = raw.latencies("city")
        raw_far, raw_far_lost = raw.latencies("far")
        return {"districts": districts, "to_city": to_city, "everywhere": everywhere,
                "raw_city": raw_city[skip:], "raw_far": raw_far[skip:],
                "raw_lost": raw_city_lost + raw_far_lost, "sent": n * districts,
                "committed": len(committed), "errors": errors[:5], "error_count": len(errors),
                "lost_per_node": lost_per_node, "applied_per_node": applied_per_node,
                "missing_where": missing_where,
                "cpu_s": cpu, "idle_cpu_per_s": {k: round(v, 3) for k, v in idle_rate.items()},
                "offered_per_s": round(rate(len(committed), window), 1),
                "intended_per_s": RATE * districts,
                "sender_late_p99_ms": round(percentile(lateness, 99) * 1000, 1),
                "command_p50_ms": round(percentile(answered, 50) * 1000, 1) if answered else None,
                "command_p99_ms": round(percentile(answered, 99) * 1000, 1) if answered else None,
                "client_cores": round(client_cores, 2),
                "publish_s": round(t_end - t0_wall, 1)}
    finally:
        if raw is not None:
            raw.close()
        if watch is not None and not watch.stopped:
            watch.close()
        left = net.stop()
        if left:
            logging.getLogger(__name__).warning("left behind: %s", ", ".join(left))


def _missing_where(net, lost_per_node: dict) -> dict:
    """Where the records a node lacks are when the run stops waiting, read before the
    vhosts go (a record not applied is late or lost; this tells which): per such node,
    the messages its inbox queue holds and the city's buffer queues for its links hold
    (ready + unacknowledged: late), what its consumer holds back in memory behind a
    hole, and any of its links not running."""
    from services.exchange.federation import INBOX_QUEUE
    admin, city = net.net.admin, net.net.city
    out = {}
    try:
        city_queues = admin.queues(city.vhost)
    except Exception as exc:  # noqa: BLE001 - a diagnostic: say why it is missing
        return {"error": str(exc)[:200]}
    for node, lost in lost_per_node.items():
        if not lost:
            continue
        vhost = net.net[node].vhost
        try:
            queues = admin.queues(vhost)
            links = admin.link_status(vhost)
        except Exception as exc:  # noqa: BLE001
            out[node] = {"error": str(exc)[:200]}
            continue
        inbox_q = next((q for q in queues if q["name"] == INBOX_QUEUE), {})
        buffers = [q for q in city_queues if q["name"].startswith("federation:")
                   and (":%s:" % vhost) in q["name"]]
        out[node] = {
            "inbox_queue": inbox_q.get("messages_ready", 0) + inbox_q.get("messages_unacknowledged", 0),
            "city_buffers": sum(q.get("messages_ready", 0) + q.get("messages_unacknowledged", 0)
                                for q in buffers),
            "links_not_running": sorted("%s/%s:%s" % (l.get("upstream"), l.get("exchange"), l.get("status"))
                                        for l in links if l.get("status") != "running"),
            "held": _held(net, node)}
    return out


def _held(net, node: str):
    """What the node's consumer holds back behind holes (``/federation/status``)."""
    import requests
    api = net.api[(node, "exchange")]
    try:
        r = requests.get("%s/federation/status" % api.base, timeout=30,
                         headers={"Authorization": "Bearer %s" % net.tokens[node]})
        return sum(o.get("held", 0) for o in r.json().get("inbox", []))
    except Exception as exc:  # noqa: BLE001 - a diagnostic
        return str(exc)[:100]


def cpu_per_record(r: dict) -> dict:
    """What the run's records cost in CPU, from the processes' own accounting (less
    what each costs idle, measured over IDLE_S before): at the
    city per record applied, at a district per record of its own (command, signing,
    publishing) plus per record applied from the others - and so what N districts at
    RATE would ask of the machine (``cpu_demand_cores``), whatever its neighbours do."""
    n = r["districts"]
    own = r["committed"] / n if n else 0
    city_ms = 1000 * r["cpu_s"]["city"] / max(1, r["applied_per_node"]["city"])
    d_cpu = [r["cpu_s"][d] for d in r["cpu_s"] if d != "city"]
    d_applied = [r["applied_per_node"][d] for d in r["applied_per_node"] if d != "city"]
    # a district's CPU = own records x a + applied x b; with every district alike, b is
    # taken as the city's per-applied cost (the same receive path) and a is the rest
    a_ms = (1000 * sum(d_cpu) - city_ms * sum(d_applied)) / max(1, own * n)
    demand = RATE * n * (a_ms + n * city_ms) / 1000
    return {"cpu_s_per_node": r["cpu_s"], "idle_cpu_per_s": r["idle_cpu_per_s"],
            "cpu_ms_per_applied_record": round(city_ms, 2),
            "cpu_ms_per_own_record": round(a_ms, 2), "cpu_demand_cores": round(demand, 2)}


def _p99(xs):
    return percentile(xs, 99) if xs else 0.0


def growth_steps(value: str | None, default=GROWTH) -> tuple[int, ...]:
    """``QINGLIAN_BENCH_SCALE_DISTRICTS=2`` (or ``2,5``): run only these district counts
    (a profile or a before/after at 2 districts takes minutes, not the 11's half hour);
    unset or empty: ``GROWTH``. The growth figure needs two counts, else not measured."""
    if not value or not value.strip():
        return tuple(default)
    try:
        steps = tuple(sorted({int(x) for x in value.split(",") if x.strip()}))
    except ValueError:
        raise ValueError("QINGLIAN_BENCH_SCALE_DISTRICTS 应为以逗号分隔的区数，收到 %r" % value) from None
    if not steps or steps[0] < 1:
        raise ValueError("QINGLIAN_BENCH_SCALE_DISTRICTS 应为以逗号分隔的区数，收到 %r" % value)
    return steps


def run(var_dir: str = "var", only=None, growth=None, seconds: float = SECONDS) -> dict:
    import os
    growth = growth or growth_steps(os.environ.get("QINGLIAN_BENCH_SCALE_DISTRICTS"))
    logging.getLogger("services.exchange.federation").setLevel(logging.ERROR)
    # QINGLIAN_BENCH_PYSPY=<file>.svg|.txt: the city and district-01 recorded by py-spy
    # (flame graph, or raw collapsed stacks), into <file>-<node>-<N>.<ext>
    spy = os.environ.get("QINGLIAN_BENCH_PYSPY")
    runs = {}
    for n in growth:
        stem, ext = os.path.splitext(spy or "")
        profile = {node: "%s-%s-%d%s" % (stem, node, n, ext) for node in ("city", "district-01")} \
            if spy else None
        runs[n] = measure(n, var_dir, seconds, profile)
    top, low = growth[-1], growth[0]
    r = runs[top]
    lost = sum(r["lost_per_node"].values())
    common = dict(districts=top, per_district_per_s=RATE, seconds=seconds,
                  services_per_node="exchange", database="sqlite",
                  to_city_p99_s=round(_p99(r["to_city"]), 3),
                  to_city_p50_s=round(percentile(r["to_city"], 50), 3),
                  everywhere_p50_s=round(percentile(r["everywhere"], 50), 3),
                  samples=len(r["everywhere"]), sent=r["sent"], lost=lost,
                  lost_per_node=r["lost_per_node"], missing_where=r["missing_where"],
                  command_errors=r["error_count"],
                  offered_per_s=r["offered_per_s"], intended_per_s=r["intended_per_s"],
                  sender_late_p99_ms=r["sender_late_p99_ms"], command_p50_ms=r["command_p50_ms"],
                  command_p99_ms=r["command_p99_ms"], client_cores=r["client_cores"],
                  committed=r["committed"],
                  raw_one_hop_p99_s=round(_p99(r["raw_city"]), 4), raw_lost=r["raw_lost"],
                  **cpu_per_record(r))
    not_measured = None
    if r["offered_per_s"] < 0.9 * r["intended_per_s"]:
        not_measured = ("客户端未能按计划发出：计划 %d 条/秒，实际 %.0f 条/秒"
                        % (r["intended_per_s"], r["offered_per_s"]))
    if not r["everywhere"]:
        not_measured = "没有一条记录在所有节点上可见"
    figures = {"scale_propagation_p99_s": judged(
        _p99(r["everywhere"]), "s", _p99(r["raw_far"]), "raw federated round trip p99, two hops", 50.0, AT_MOST,
        quiet_machine_target="≤ 0.5 s, none lost", not_measured=not_measured, **common)}
    if lost and figures["scale_propagation_p99_s"]["verdict"] == MET:
        figures["scale_propagation_p99_s"]["verdict"] = FAILED  # none may be lost
    p99 = {n: _p99(runs[n]["everywhere"]) for n in growth}
    raw99 = {n: _p99(runs[n]["raw_far"]) for n in growth}
    growth_value = (p99[top] / p99[low]) / (top / low) if p99[low] else 0.0
    short = [str(n) for n in growth if runs[n]["offered_per_s"] < 0.9 * runs[n]["intended_per_s"]]
    figures["scale_propagation_growth"] = judged(
        growth_value, "× linear", 1.0, "linear growth in districts (1.0)", 1.0, AT_MOST,
        quiet_machine_target="≤ 1.0 × linear",
        not_measured=("只运行了 %d 个区，增长需要两种区数" % top) if top == low else
        ("%s 个区的运行未能按计划发出" % "、".join(short)) if short else None,
        cpu_demand_cores={str(n): cpu_per_record(runs[n])["cpu_demand_cores"] for n in growth},
        floor_growth=round((raw99[top] / raw99[low]) / (top / low), 3) if raw99[low] else None,
        p99_s={str(n): round(p99[n], 3) for n in growth},
        to_city_p99_s={str(n): round(_p99(runs[n]["to_city"]), 3) for n in growth},
        raw_two_hop_p99_s={str(n): round(raw99[n], 4) for n in growth},
        lost={str(n): sum(runs[n]["lost_per_node"].values()) for n in growth},
        offered_per_s={str(n): runs[n]["offered_per_s"] for n in growth})
    return {k: v for k, v in figures.items() if only is None or k in only}
