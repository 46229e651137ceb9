"""Federation benchmark: a district and the city as vhosts of the local RabbitMQ, their
exchange services as nameko containers in this process, SQLite stores under var/.

* ``propagation_p50_s`` / ``propagation_p99_s``: a district commits a shared record
  (``draft_experience`` published 'all') at a steady 100 per second; the time until it
  is in the city's read model. "In the read model" is the city's commit of the
  replica: projections are updated inline in that same transaction, so the commit
  hook (``Runtime.after_commit``) fires exactly when a query would first see it. The
  path timed: outbox row -> publisher (AMQP tx) -> federation link -> city inbox ->
  verify, check, order -> append + projections -> commit. Baseline: a raw AMQP round
  trip over the same path on the broker - a message of the same size published (with
  a confirm) to a bench exchange in the district's vhost, federated to the city's vhost
  by the same upstream, consumed from a queue there, at the same 100/s, in blocks
  alternated with the records' blocks. The floor: what the link alone costs.
* ``catchup_events_per_s``: the city is stopped, the district publishes 10,000
  records, the city's inbox queue is deleted (it missed them: nothing waits for it on
  AMQP) and the city is started again. Rate = 10,000 / time from its first applied page
  until its watermark for the district reaches the district's head - all of it pulled
  from the district's signed feed, verified and applied; three rounds, the median.
  Baseline: after each round, the same node's rebuild of that read model (the shared
  feed) from its own log - no network, no signatures, no log appends: the ceiling a
  catch-up could approach. On a machine so busy that the suite has used ``BUDGET_S``
  before a round starts, fewer rounds are run (``rounds`` in the JSON lists them).
"""
import logging
import shutil
import time
from pathlib import Path

import eventlet

from bench.common import AT_LEAST, AT_MOST, Timer, judged, offered_shortfall, percentile, rate, wanted

FIGURES = ("propagation_p50_s", "propagation_p99_s", "catchup_events_per_s")
RATE = 100          # events per second, steady
WARMUP = 50
SAMPLES = 1500      # 15 s at 100/s (and as many raw round trips)
BLOCK = 150         # records, then raw messages, alternately
CATCHUP = 10_000
ROUNDS = 3          # catch-up rounds (the machine is shared: the median is reported)
BUDGET_S = 400      # no new catch-up round after this many seconds (the suite stays under 10 min)
RAW_EXCHANGE = "qlbench.raw"


class RawLink:
    """The baseline's path: ``RAW_EXCHANGE`` in both vhosts, the city's federated from the
    district's through the upstream the topology already defined (a policy for this
    exchange alone; the link's own user allowed to read it as it reads the record
    exchanges), a queue in the city's vhost bound to it, and a consumer that notes when
    each message arrived."""

    def __init__(self, net, body_size: int):
        from kombu import Connection, Exchange, Queue
        admin, city, district = net.admin, net.city, net.districts[0]
        for vhost in (city.vhost, district.vhost):
            admin.declare_exchange(vhost, RAW_EXCHANGE)
        topology = net.topology
        if topology.link_users:  # the up-link's own login may read this exchange too
            admin.grant_link_user(district.vhost, topology.link_user_name(district, city),
                                  (*topology.up_exchanges, RAW_EXCHANGE), city.vhost)
        admin._call("PUT", "policies", city.vhost, "qlbench-federate-raw", json={
            "pattern": "^qlbench\\.raw$", "definition": {"federation-upstream-set": "all"},
            "priority": 10, "apply-to": "exchanges"})
        admin.wait_for_links(city.vhost, [district.node_id], 30, exchange=RAW_EXCHANGE)
        exchange = Exchange(RAW_EXCHANGE, type="topic", durable=True)
        self.queue = Queue("qlbench-raw", exchange=exchange, routing_key="#", durable=False,
                           auto_delete=True)
        self.consumer_conn = Connection(city.amqp_uri)
        self.consumer = self.consumer_conn.Consumer([self.queue], callbacks=[self._arrived],
                                                    accept=None)
        self.consumer.consume()
        deadline = time.monotonic() + 30  # the binding travels upstream asynchronously
        while not any(b.get("source") == RAW_EXCHANGE and b["destination"].startswith("federation: ")
                      for b in admin._call("GET", "bindings", district.vhost)):
            if time.monotonic() > deadline:
                raise TimeoutError("the raw bench binding did not reach the district's broker")
            time.sleep(0.1)
        self.publisher_conn = Connection(district.amqp_uri, transport_options={"confirm_publish": True})
        self.producer = self.publisher_conn.Producer(exchange=exchange)
        self.body = b"x" * body_size
        self.arrived: dict[str, float] = {}
        self.stopped = False
        self.thread = eventlet.spawn(self._drain)

    def _arrived(self, body, message):
        self.arrived[message.properties.get("message_id")] = time.perf_counter()
        message.ack()

    def _drain(self):
        import socket
        while not self.stopped:
            try:
                self.consumer_conn.drain_events(timeout=0.2)
            except socket.timeout:
                pass

    def publish(self, message_id: str) -> None:
        self.producer.publish(self.body, routing_key="raw.bench", delivery_mode=2,
                              message_id=message_id, content_type="application/octet-stream")

    def close(self):
        self.stopped = True
        self.thread.wait()
        self.consumer.cancel()
        self.consumer_conn.release()
        self.publisher_conn.release()


def run(var_dir, only=None) -> dict:
    import uuid

    from shared.service import NodeContainer
    from nameko.testing.utils import get_extension
    from bench.common import PREFIX
    from services.exchange.application import app, save_and_share
    from services.exchange.domain import Experience
    from services.exchange.federation import INBOX_QUEUE
    from tooling.localnet import LocalNetwork
    from services.exchange.service import ExchangeService
    from shared.service import EventSourcing
    from shared.auth import Actor
    from shared.events import StoredEvent
    from shared import config
    from shared.db import make_engine
    from shared.projections import rebuild
    from shared.uow import Runtime
    from shared.unittree import record_unit_event

    logging.getLogger("services.exchange.federation").setLevel(logging.ERROR)
    root = Path(var_dir) / "bench" / "federation-nodes"
    if root.exists():
        shutil.rmtree(root)
    # sync: only the start-up pull (the catch-up); realtime is AMQP alone
    net = LocalNetwork(root, districts=("district-a",), extra={"FEDERATION_SYNC_SECONDS": 3600},
                       prefix="%s-fed-%s" % (PREFIX.replace("_", "-"), uuid.uuid4().hex[:6]))
    net.create()
    containers = {}

    def start(node_id):
        c = NodeContainer(ExchangeService, net[node_id].config)
        c.start()
        containers[node_id] = c
        return get_extension(c, EventSourcing)

    figures = {}
    started = time.monotonic()
    try:
        city, district = start("city"), start("district-a")
        actor = Actor("bench", ("node-admin",), None, "district-a")
        with district.runtime.unit_of_work(actor) as uow:
            record_unit_event(uow, StoredEvent(0, "u1", "Unit:a-xj", "Unit", 1, "Unit.Registered", 1,
                                               {"unit_id": "a-xj", "name": "甲区x局", "kind": "government_dept",
                                                "level": "district", "parent_id": None}, {}, 0))
        net.wait_bindings(60)
        if wanted(only, "propagation_p50_s", "propagation_p99_s"):
            figures.update(propagation(net, city, district, actor, only))
        if wanted(only, "catchup_events_per_s"):
            from services.exchange.federation import PUBLISHER_CHECKPOINT
            containers.pop("city").stop()
            rounds, rebuilds = [], []
            for r in range(ROUNDS):
                if r and time.monotonic() - started > BUDGET_S:
                    break  # a busy machine: fewer rounds (the JSON lists them)
                batch = 200
                for b in range(0, CATCHUP, batch):
                    with district.runtime.unit_of_work(actor) as uow:
                        for i in range(b, b + batch):
                            exp = Experience.draft("district-a/missed-%d-%05d" % (r, i), {
                                "unit_id": "a-xj", "unit_name": "甲区x局", "title": "错过的经验 %d" % i,
                                "summary": "s", "body": "b", "business_type": "示范点建设",
                                "topics": ["示范点"], "attachments": []})
                            exp.share("all", [])
                            save_and_share(uow, exp)
                with district.runtime.read() as conn:
                    head = district.runtime.ext.federation.outbox_head(conn)
                # let the district finish publishing them (the burst is not what is measured)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with district.runtime.read() as conn:
                        if (district.runtime.store.get_checkpoint(conn, PUBLISHER_CHECKPOINT) or 0) >= head:
                            break
                    eventlet.sleep(0.1)
                # what waited for the city on AMQP is gone: it missed these for good
                net.admin._call("DELETE", "queues", net.city.vhost, INBOX_QUEUE, missing_ok=True)
                rounds.append(catch_up_in_own_process(net, root, head))
                # the baseline, right after: the same read model rebuilt from the node's own log
                engine = make_engine(config.database_url("exchange", net.city.config))
                rt = Runtime(engine, app.projections, "city", "exchange")
                with rt.read() as conn:
                    log_head = rt.store.head(conn)
                shared = [p for p in rt.projections if p.name == "exchange_records"][0]
                with Timer() as t_rebuild:
                    rebuild(rt.store, shared)
                engine.dispose()
                rebuilds.append(rate(log_head, t_rebuild.seconds))
            rounds.sort(key=lambda f: f["value"])
            values = [round(f["value"]) for f in rounds]
            catch = dict(rounds[len(rounds) // 2])
            figures["catchup_events_per_s"] = judged(
                catch.pop("value"), "events/s", sorted(rebuilds)[len(rebuilds) // 2],
                "local rebuild of the same read model", 0.4, AT_LEAST,
                quiet_machine_target="≥ 5,000 events/s", rounds=values,
                baseline_rounds=[round(x) for x in rebuilds], **catch)
    finally:
        for c in containers.values():
            c.stop()
        net.destroy()
    return {k: figures[k] for k in FIGURES if k in figures and wanted(only, k)}


def propagation(net, city, district, actor, only) -> dict:
    """Records and raw messages at RATE/s, in alternate blocks of BLOCK."""
    arrived: dict[str, float] = {}

    def seen(events):
        now = time.perf_counter()
        for e in events:
            if e.event_type == "Experience.Published":
                arrived[e.payload["experience_id"]] = now
    city.runtime.after_commit.append(seen)
    sent: dict[str, float] = {}
    raw_sent: dict[str, float] = {}

    def publish(i: int) -> str:
        return district.app.execute(district.runtime, "draft_experience", {
            "experience_id": "bench-%05d" % i, "unit_id": "a-xj", "title": "经验 %d" % i,
            "summary": "聚焦责任抓落实", "body": "示范点建设经验做法。", "business_type": "示范点建设",
            "topics": ["示范点"], "share": {"sharing": "all", "recipients": []}}, actor)["experience_id"]

    lateness = []  # ms each record was sent after it was due: the sender's own shortfall

    def paced(n, send):
        t0 = time.perf_counter()
        for k in range(n):
            delay = t0 + k / RATE - time.perf_counter()
            if delay > 0:
                eventlet.sleep(delay)
            elif send is record:
                lateness.append(-delay * 1000)
            send()
        return rate(n, time.perf_counter() - t0)

    for i in range(WARMUP):
        sent[publish(i)] = time.perf_counter()
    eventlet.sleep(1.0)
    raw = RawLink(net, body_size=_envelope_size(district))
    try:
        counter, raw_counter = iter(range(WARMUP, 10**6)), iter(range(10**6))
        offered, raw_offered = [], []

        def record():
            rid = publish(next(counter))
            sent[rid] = time.perf_counter()

        def raw_message():
            mid = "raw-%06d" % next(raw_counter)
            raw_sent[mid] = time.perf_counter()
            raw.publish(mid)
        for b in range(SAMPLES // BLOCK):
            first, second = (record, raw_message) if b % 2 == 0 else (raw_message, record)
            for fn in (first, second):
                (offered if fn is record else raw_offered).append(paced(BLOCK, fn))
        total = WARMUP + SAMPLES
        deadline = time.monotonic() + 60
        while (len(arrived) < total or len(raw.arrived) < len(raw_sent)) and time.monotonic() < deadline:
            eventlet.sleep(0.05)
    finally:
        city.runtime.after_commit.remove(seen)
        raw.close()
    ids = ["district-a/bench-%05d" % i for i in range(WARMUP, WARMUP + SAMPLES)]
    lat = [arrived[r] - sent[r] for r in ids if r in arrived]
    raw_lat = [raw.arrived[m] - t for m, t in raw_sent.items() if m in raw.arrived]
    lag = percentile(lateness + [0.0] * (SAMPLES - len(lateness)), 50)
    common = dict(samples=len(lat), lost=len(ids) - len(lat), baseline_samples=len(raw_lat),
                  baseline_lost=len(raw_sent) - len(raw_lat), intended_per_s=RATE,
                  offered_per_s=round(min(offered), 1), baseline_offered_per_s=round(min(raw_offered), 1),
                  sender_lag_p50_ms=round(lag, 2),
                  not_measured=offered_shortfall(RATE, min(offered), lag, min(raw_offered)))
    return {
        "propagation_p50_s": judged(percentile(lat, 50), "s", percentile(raw_lat, 50),
                                    "raw AMQP round trip p50, same link", 50.0, AT_MOST,
                                    quiet_machine_target="≤ 0.25 s", **common),
        "propagation_p99_s": judged(percentile(lat, 99), "s", percentile(raw_lat, 99),
                                    "raw AMQP round trip p99, same link", 50.0, AT_MOST,
                                    quiet_machine_target="≤ 0.25 s", **common),
    }


def _envelope_size(district) -> int:
    """Bytes of one published record's envelope (the raw messages are as large)."""
    from sqlalchemy import text
    with district.runtime.read() as conn:
        try:
            n = conn.execute(text("SELECT max(length(envelope)) FROM federation_outbox")).scalar()
        except Exception:  # noqa: BLE001 - the outbox's layout is the exchange service's
            n = None
    return int(n or 1500)


def catch_up_in_own_process(net, root: Path, head: int) -> dict:
    """Start the city as its own ``nameko run`` process (a node is its own process on
    its own machine; here it gets the second core) and watch its inbox watermark for
    the district from outside, in its database. The rate is taken from its first
    applied page to the last, so the process start-up is not counted as catch-up;
    the whole rejoin time is reported beside it."""
    import os
    import subprocess
    import sys

    from sqlalchemy import select

    from services.exchange.federation import inbox
    from shared import config
    from shared.db import make_engine, readonly

    repo = Path(__file__).resolve().parent.parent
    cfg = root / "nameko.yaml"
    cfg.write_text((repo / "deploy" / "config.yaml").read_text(encoding="utf-8")
                   + "\nFEDERATION_SYNC_SECONDS: 3600\n", encoding="utf-8")
    env = dict(os.environ, **{k: str(v) for k, v in net.city.config.items()})
    log = open(root / "city.log", "ab")
    engine = make_engine(config.database_url("exchange", net.city.config))

    def watermark() -> int:
        with readonly(engine.connect()) as conn:
            return conn.execute(select(inbox.c.applied_through)
                                .where(inbox.c.origin == "district-a")).scalar() or 0

    start_w = watermark()
    t_spawn = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(cfg),
                             "services.exchange.service:ExchangeService"],
                            env=env, cwd=str(repo), stdout=log, stderr=log)
    try:
        first = None
        deadline = time.monotonic() + 180
        w = start_w
        while time.monotonic() < deadline and proc.poll() is None:
            w = watermark()
            now = time.perf_counter()
            if first is None and w > start_w:
                first = (now, w)
            if w >= head:
                break
            eventlet.sleep(0.01)
        done = time.perf_counter()
    finally:
        proc.terminate()
        proc.wait(30)
        engine.dispose()
    caught_up = w >= head and first is not None and done > first[0]
    value = rate(head - first[1], done - first[0]) if caught_up else 0.0
    return {"value": value, "missed_events": head - start_w, "rejoin_total_s": round(done - t_spawn, 2)}
