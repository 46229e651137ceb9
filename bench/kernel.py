"""Kernel benchmark: every figure beside a raw baseline measured in the same run.

Runs on PostgreSQL (the production back-end) in a throw-away database, and on a
throw-away RabbitMQ vhost. Names and form: see bench/common.py and issue 2.
"""
from __future__ import annotations

import json
import statistics
import time
import uuid

import requests
from kombu import Connection, Exchange, Producer, Queue
from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint
from bench.common import Timer, figure, percentile, rate
from shared.db import create_database, drop_database, make_engine
from shared.events import NewEvent, canonical_json, now_us
from shared.relay import Relay
from shared.store import EventStore, events

PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
RABBIT_API = "http://127.0.0.1:15672/api"

# the raw baseline writes rows of the same shape into a table of the same shape
# (same columns, primary key, unique (stream_id, version) and time index)
raw_metadata = MetaData()
raw_events = Table(
    "raw_events", raw_metadata,
    *[Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
      for c in events.columns],
    UniqueConstraint("stream_id", "version", name="uq_raw_events_stream_version"),
    Index("ix_raw_events_recorded_at", "recorded_at_us"),
)


def _row(i: int) -> dict:
    payload = canonical_json({"unit_id": "u%d" % i, "name": "单位%d" % i, "kind": "government_dept"})
    return {"position": i, "event_id": str(uuid.uuid4()), "stream_id": "Unit:u%d" % i,
            "stream_type": "Unit", "version": 1, "event_type": "Unit.Registered",
            "schema_version": 1, "payload": payload, "meta": '{"node":"bench"}',
            "recorded_at_us": now_us(), "hash": "0" * 64}


def _new(i: int, stream: str | None = None, version: int = 1) -> NewEvent:
    return NewEvent(stream or "Unit:u%d" % i, "Unit", version, "Unit.Registered", 1,
                    {"unit_id": "u%d" % i, "name": "单位%d" % i, "kind": "government_dept"},
                    {"node": "bench"})


def _interleaved(pairs: int, measure_baseline, measure_value) -> tuple[float, float]:
    """Alternate baseline and measured rounds and take medians.

    The machine is shared: load that arrives mid-run would otherwise fall entirely on
    whichever side happened to run second."""
    base, value = [], []
    for r in range(pairs):
        first, second = (measure_baseline, measure_value) if r % 2 == 0 else (measure_value, measure_baseline)
        a, b = first(r), second(r)
        (base, value)[0 if first is measure_baseline else 1].append(a)
        (value, base)[0 if first is measure_baseline else 1].append(b)
    return statistics.median(base), statistics.median(value)


def bench_append(store: EventStore, rounds=8, n_single=250, n_batches=25) -> dict:
    engine = store.engine
    counter = iter(range(1, 10**9))

    def raw_single(_):
        with Timer() as t:
            for _i in range(n_single):
                with engine.begin() as c:
                    c.execute(raw_events.insert(), _row(next(counter)))
        return rate(n_single, t.seconds)

    def our_single(_):
        with Timer() as t:
            for _i in range(n_single):
                with engine.begin() as c:
                    store.append(c, [_new(next(counter))])
        return rate(n_single, t.seconds)

    def raw_batch(_):
        with Timer() as t:
            for _b in range(n_batches):
                with engine.begin() as c:
                    c.execute(raw_events.insert(), [_row(next(counter)) for _k in range(100)])
        return rate(n_batches * 100, t.seconds)

    def our_batch(_):
        with Timer() as t:
            for _b in range(n_batches):
                with engine.begin() as c:
                    store.append(c, [_new(next(counter)) for _k in range(100)])
        return rate(n_batches * 100, t.seconds)

    raw_s, single = _interleaved(rounds, raw_single, our_single)
    raw_b, batch = _interleaved(rounds, raw_batch, our_batch)
    return {
        "append_single": figure(single, "events/s", 0.8, baseline=raw_s),
        "append_batch100": figure(batch, "events/s", 0.6, baseline=raw_b),
    }


def bench_reload(store: EventStore, n=10_000) -> tuple[dict, float]:
    from services.units.domain import Unit
    from shared.uow import Runtime
    stream = "Unit:big"
    with store.engine.begin() as c:
        first = NewEvent(stream, "Unit", 1, "Unit.Registered", 1,
                         {"unit_id": "big", "name": "x局", "kind": "government_dept", "level": "unit",
                          "parent_id": "qu"}, {"node": "bench"})
        rest = [NewEvent(stream, "Unit", v, "Unit.Renamed", 1, {"unit_id": "big", "name": "x局%d" % v},
                         {"node": "bench"}) for v in range(2, n + 1)]
        for k in range(0, n, 1000):
            store.append(c, ([first] if k == 0 else []) + rest[max(0, k - 1):k + 999])
    rt = Runtime(store.engine, [], "bench", "bench")

    def reload_once():
        with rt.unit_of_work() as uow:
            with Timer() as t:
                unit = uow.get(Unit, "big")
        assert unit.version == n
        return rate(n, t.seconds)

    def raw_decoded_once():
        with rt.read() as c:
            with Timer() as t:
                rows = store.read_stream_rows(c, stream)
                decoded = [json.loads(r[3]) for r in rows]
        assert len(decoded) == n
        return rate(n, t.seconds)
    reload_once()  # warm caches
    value = max(reload_once() for _ in range(3))
    raw = max(raw_decoded_once() for _ in range(3))
    return {"reload_10k": figure(value, "events/s", 100_000)}, raw


def bench_rebuild(url: str, n_units=20_000) -> dict:
    from services.units.application import app
    from services.units.domain import Unit
    from shared.projections import rebuild
    from shared.uow import Runtime
    rt = Runtime(make_engine(url), app.projections, "bench", "units")
    rt.create_schema()
    with rt.unit_of_work() as uow:
        uow.save(Unit.register("qu", "区", "district_authority", "district", None))
    for b in range(0, n_units, 500):  # seeding: 500 registrations per transaction
        with rt.unit_of_work() as uow:
            units = [Unit.register("u%d" % i, "单位%d" % i, "government_dept", "unit", "qu")
                     for i in range(b, b + 500)]
            uow.save(*units)
    with rt.read() as c:
        head = rt.store.head(c)
    tree = rt.projections[0]
    with Timer() as t:
        rebuild(rt.store, tree)
    rt.engine.dispose()
    return {"projection_rebuild": figure(rate(head, t.seconds), "events/s", 20_000)}


def bench_relay(store: EventStore, vhost_uri: str, n=10_000, n_raw=2_000) -> dict:
    """Both sides publish persistent messages into a bound durable queue, so the broker
    really writes them (an exchange with no queue confirms without persisting)."""
    exchange = Exchange("bench.events", type="topic", durable=True)
    queue = Queue("bench-consumer", exchange=exchange, routing_key="#", durable=True)
    with Connection(vhost_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=exchange, serializer="json")
        exchange(producer.channel).declare()
        queue(producer.channel).declare()
        body = _new(1).__dict__
        with Timer() as t:
            for i in range(n_raw):
                producer.publish(body, routing_key="Unit.Registered", delivery_mode=2)
        raw = rate(n_raw, t.seconds)
    relay = Relay(store, vhost_uri, "bench", batch_size=500)
    relay.drain(timeout=120)  # publish what the append benchmark left
    with store.engine.begin() as c:
        for k in range(0, n, 1000):
            store.append(c, [_new(k + j, stream="Relay:%d" % (k + j)) for j in range(1000)])
    with Timer() as t:
        published = relay.drain(timeout=300)
    relay.close()
    return {"relay_confirmed": figure(rate(published, t.seconds), "events/s", 2.0, baseline=raw)}


def bench_rpc(url: str, vhost_uri: str, tmp_var: str, calls=600, units=100) -> dict:
    """A units command through nameko RPC (load, decide, append, reply) against a trivial
    RPC method of the same service, in the same process and run. Commands rename units
    round-robin (as an office's edits spread over its units), not one hot aggregate."""
    import eventlet
    eventlet.monkey_patch()
    from nameko.containers import ServiceContainer
    from nameko.rpc import rpc
    from nameko.standalone.rpc import ClusterRpcProxy
    from services.units.service import UnitsService

    class BenchUnits(UnitsService):
        @rpc
        def ping(self):
            return 1

    cfg = {"AMQP_URI": vhost_uri, "UNITS_DATABASE_URL": url, "NODE_ID": "bench", "QINGLIAN_VAR": tmp_var,
           "WEB_SERVER_ADDRESS": "127.0.0.1:0", "QINGLIAN_RELAY": "off"}
    container = ServiceContainer(BenchUnits, cfg)
    container.start()
    actor = {"user_id": "bench", "roles": ["node-admin"], "node": "bench"}
    try:
        with ClusterRpcProxy(cfg) as n:
            n.units.register_unit({"unit_id": "qu2", "name": "区", "kind": "district_authority",
                                   "level": "district"}, actor=actor)
            for u in range(units):
                n.units.register_unit({"unit_id": "rpc-%d" % u, "name": "x", "kind": "government_dept",
                                       "level": "unit", "parent_id": "qu2"}, actor=actor)
            for _ in range(50):
                n.units.ping()
            lat_ping, lat_cmd = [], []
            chunk = calls // 6

            def pings(_):
                with Timer() as t:
                    for _i in range(chunk):
                        s = time.perf_counter()
                        n.units.ping()
                        lat_ping.append(time.perf_counter() - s)
                return rate(chunk, t.seconds)

            def commands(r):
                with Timer() as t:
                    for i in range(chunk):
                        s = time.perf_counter()
                        n.units.rename_unit({"unit_id": "rpc-%d" % (i % units),
                                             "name": "x局%d-%d" % (r, i)}, actor=actor)
                        lat_cmd.append(time.perf_counter() - s)
                return rate(chunk, t.seconds)
            ping_rate, cmd_rate = _interleaved(6, pings, commands)
    finally:
        container.stop()
    f = figure(cmd_rate, "calls/s", 0.7, baseline=ping_rate)
    f["p50_ms"] = round(percentile(lat_cmd, 50) * 1000, 2)
    f["p99_ms"] = round(percentile(lat_cmd, 99) * 1000, 2)
    f["baseline_p50_ms"] = round(percentile(lat_ping, 50) * 1000, 2)
    f["baseline_p99_ms"] = round(percentile(lat_ping, 99) * 1000, 2)
    return f


def _vhost():
    name = "qlbench-%s" % uuid.uuid4().hex[:8]
    requests.put("%s/vhosts/%s" % (RABBIT_API, name), auth=("guest", "guest"), timeout=10).raise_for_status()
    requests.put("%s/permissions/%s/guest" % (RABBIT_API, name), auth=("guest", "guest"), timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    return name, AMQP.rstrip("/") + "/" + name


def run(var_dir: str = "var") -> dict:
    import tempfile
    url = create_database(PG_SERVER, "qlbench")
    url2 = create_database(PG_SERVER, "qlbench")
    url3 = create_database(PG_SERVER, "qlbench")
    vhost, vhost_uri = _vhost()
    try:
        store = EventStore(make_engine(url))
        store.create_schema()
        raw_events.create(store.engine)
        figures = {}
        figures.update(bench_append(store))
        reload, raw_decoded = bench_reload(store)
        # for context: fetching and decoding the same rows, without applying them
        reload["reload_10k"]["raw_decoded_events_per_s"] = round(raw_decoded)
        figures.update(reload)
        figures.update(bench_rebuild(url2))
        figures.update(bench_relay(store, vhost_uri))
        store.engine.dispose()
        tmp = tempfile.mkdtemp()
        # the embedded default back-end (what `make run` uses), then PostgreSQL
        figures["rpc_command"] = bench_rpc("sqlite:///%s/units.db" % tmp, vhost_uri, tmp)
        figures["rpc_command_postgresql"] = bench_rpc(url3, vhost_uri, tmp)
    finally:
        requests.delete("%s/vhosts/%s" % (RABBIT_API, vhost), auth=("guest", "guest"), timeout=10)
        for u in (url, url2, url3):
            drop_database(u)
    return figures
