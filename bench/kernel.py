"""Kernel benchmark: every figure beside a raw baseline measured in the same run,
interleaved with it (bench/common.py).

Runs on PostgreSQL (the production back-end) in a throw-away database, and on a
throw-away RabbitMQ vhost.

* ``append_single`` / ``append_batch100`` - the event store's append vs a raw
  SQLAlchemy Core insert of rows of the same shape into a table of the same shape
  (the floor: an append cannot write less).
* ``reload_10k`` - an aggregate loaded from a 10,000-event stream vs the raw decoded
  read of the same rows (fetch + ``json.loads``, nothing applied: the floor).
* ``projection_rebuild`` - the units tree rebuilt from 20,000 registrations vs the
  floor of that work: the raw decoded read of the same events plus a raw batch insert
  of the rows the rebuild produced, into a table of the same shape, in one transaction.
* ``relay_confirmed`` - the relay (AMQP transaction per batch) vs raw kombu publishing
  with a confirm per message, both into a bound durable queue: the peer it replaces.
* ``rpc_command`` - a units command through nameko RPC on SQLite (load, decide, append,
  reply) vs a trivial RPC method of the same service: the peer with every cost but the
  command's own.
* ``rpc_command_postgresql`` - the same command on PostgreSQL vs a trivial RPC whose
  worker does one raw single-row insert transaction (the floor of a durable write).
"""
from __future__ import annotations

import json
import statistics
import time
import uuid

from kombu import Connection, Exchange, Producer, Queue
from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint

from bench.common import (
    AT_LEAST, Timer, drop_vhost, interleaved, judged, percentile, rate, raw_decoded_read,
    raw_insert, scratch_database, scratch_vhost, table_rows, wanted,
)
from shared.db import drop_database, make_engine
from shared.events import NewEvent, canonical_json, now_us
from shared.relay import Relay
from shared.store import EventStore, events

FIGURES = ("append_single", "append_batch100", "reload_10k", "projection_rebuild",
           "relay_confirmed", "rpc_command", "rpc_command_postgresql")

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


def bench_append(store: EventStore, only, rounds=8, n_single=250, n_batches=25) -> dict:
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

    out = {}
    if wanted(only, "append_single"):
        raw_s, single = interleaved(rounds, raw_single, our_single)
        out["append_single"] = judged(single, "events/s", raw_s, "raw Core single-row insert", 0.8)
    if wanted(only, "append_batch100"):
        raw_b, batch = interleaved(rounds, raw_batch, our_batch)
        out["append_batch100"] = judged(batch, "events/s", raw_b, "raw Core 100-row insert", 0.6)
    return out


def bench_reload(store: EventStore, n=10_000, pairs=5) -> dict:
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

    def reload_once(_=None):
        with rt.unit_of_work() as uow:
            with Timer() as t:
                unit = uow.get(Unit, "big")
        assert unit.version == n
        return rate(n, t.seconds)

    def raw_decoded_once(_=None):
        with rt.read() as c:
            with Timer() as t:
                rows = store.read_stream_rows(c, stream)
                decoded = [json.loads(r[3]) for r in rows]
        assert len(decoded) == n
        return rate(n, t.seconds)
    reload_once()  # warm caches
    raw, value = interleaved(pairs, raw_decoded_once, reload_once)
    return {"reload_10k": judged(value, "events/s", raw, "raw decoded read of the stream", 0.6,
                                 quiet_machine_target="≥ 100,000 events/s")}


def bench_rebuild(url: str, n_units=20_000, pairs=3) -> dict:
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

    def ours(_=None):
        with Timer() as t:
            rebuild(rt.store, tree)
        return rate(head, t.seconds)

    ours()  # warm; and the rows the floor writes are the ones a rebuild leaves
    rows = table_rows(rt.engine, tree.tables)

    def floor(_):
        n, read_s = raw_decoded_read(rt.engine, tree.event_types)
        return rate(n, read_s + raw_insert(rt.engine, tree.tables, rows, copy=True))
    base, value = interleaved(pairs, floor, ours)
    rt.engine.dispose()
    return {"projection_rebuild": judged(
        value, "events/s", base, "raw decoded read + batch insert", 0.5,
        quiet_machine_target="≥ 20,000 events/s", events=head,
        rows=sum(len(v) for v in rows.values()))}


def bench_relay(store: EventStore, vhost_uri: str, pairs=4, n=4_000, n_raw=1_000) -> dict:
    """Both sides publish persistent messages into a bound durable queue, so the broker
    really writes them (an exchange with no queue confirms without persisting); the
    queue is purged between rounds so neither side pays for the other's backlog."""
    exchange = Exchange("bench.events", type="topic", durable=True)
    queue = Queue("bench-consumer", exchange=exchange, routing_key="#", durable=True)
    relay = Relay(store, vhost_uri, "bench", batch_size=500)
    with Connection(vhost_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=exchange, serializer="json")
        exchange(producer.channel).declare()
        bound = queue(producer.channel)
        bound.declare()
        relay.drain(timeout=300)  # publish what the other figures left
        bound.purge()
        body = _new(1).__dict__
        counter = iter(range(10**9))

        def raw(_):
            with Timer() as t:
                for _i in range(n_raw):
                    producer.publish(body, routing_key="Unit.Registered", delivery_mode=2)
            bound.purge()
            return rate(n_raw, t.seconds)

        def ours(_):
            with store.engine.begin() as c:
                for _k in range(0, n, 1000):
                    base = next(counter) * 1000
                    store.append(c, [_new(base + j, stream="Relay:%d" % (base + j)) for j in range(1000)])
            with Timer() as t:
                published = relay.drain(timeout=300)
            bound.purge()
            return rate(published, t.seconds)
        base, value = interleaved(pairs, raw, ours)
    relay.close()
    return {"relay_confirmed": judged(value, "events/s", base, "kombu publish, confirm each", 2.0)}


def bench_rpc(url: str, vhost_uri: str, tmp_var: str, calls=600, units=100,
              floor: bool = False) -> dict:
    """A units command through nameko RPC (load, decide, append, reply) against a trivial
    RPC method of the same service, in the same process and run. Commands rename units
    round-robin (as an office's edits spread over its units), not one hot aggregate.

    ``floor`` (PostgreSQL): the baseline is instead a trivial RPC whose worker does one
    raw single-row insert transaction into the same database (SQLAlchemy Core on the
    same pool settings: BEGIN, INSERT of an event-shaped row, COMMIT with
    ``synchronous_commit`` on) - the physical floor of a durable write, so the ratio
    says what the command costs beyond writing at all. The trivial RPC's rate is kept
    beside (``trivial_rpc_calls_per_s``)."""
    import eventlet
    eventlet.monkey_patch()
    from shared.service import NodeContainer
    from nameko.rpc import rpc
    from nameko.standalone.rpc import ClusterRpcProxy
    from services.units.service import UnitsService

    floor_engine = make_engine(url) if floor else None
    if floor:
        raw_events.create(floor_engine, checkfirst=True)
    floor_rows = iter(range(1, 10**9))

    class BenchUnits(UnitsService):
        @rpc
        def ping(self):
            return 1

        @rpc
        def insert_one(self):
            with floor_engine.begin() as c:
                c.execute(raw_events.insert(), _row(next(floor_rows)))
            return 1

    cfg = {"AMQP_URI": vhost_uri, "UNITS_DATABASE_URL": url, "NODE_ID": "bench", "QINGLIAN_VAR": tmp_var,
           "WEB_SERVER_ADDRESS": "127.0.0.1:0", "QINGLIAN_RELAY": "off"}
    actor = rpc_actor(cfg, "bench", ["node-admin"])
    container = NodeContainer(BenchUnits, cfg)
    container.start()
    try:
        with ClusterRpcProxy(cfg) as n:
            n.units.register_unit({"unit_id": "qu2", "name": "区", "kind": "district_authority",
                                   "level": "district"}, actor=actor)
            for u in range(units):
                n.units.register_unit({"unit_id": "rpc-%d" % u, "name": "x", "kind": "government_dept",
                                       "level": "unit", "parent_id": "qu2"}, actor=actor)
            for _ in range(50):
                n.units.ping()
                if floor:
                    n.units.insert_one()
            lat_ping, lat_cmd, trivial_rates = [], [], []
            chunk = calls // 6

            def pings(_):
                with Timer() as t:
                    for _i in range(chunk):
                        s = time.perf_counter()
                        (n.units.insert_one if floor else n.units.ping)()
                        lat_ping.append(time.perf_counter() - s)
                if floor:  # the trivial RPC's rate too, in the same round
                    with Timer() as t2:
                        for _i in range(chunk // 2):
                            n.units.ping()
                    trivial_rates.append(rate(chunk // 2, t2.seconds))
                return rate(chunk, t.seconds)

            def commands(r):
                with Timer() as t:
                    for i in range(chunk):
                        s = time.perf_counter()
                        n.units.rename_unit({"unit_id": "rpc-%d" % (i % units),
                                             "name": "x局%d-%d" % (r, i)}, actor=actor)
                        lat_cmd.append(time.perf_counter() - s)
                return rate(chunk, t.seconds)
            ping_rate, cmd_rate = interleaved(6, pings, commands)
    finally:
        container.stop()
        if floor_engine is not None:
            floor_engine.dispose()
    extra = {"trivial_rpc_calls_per_s": round(statistics.median(trivial_rates), 1)} if floor else {}
    if floor:
        name, target = "trivial RPC + one raw insert transaction", 0.8
    else:
        name, target = "trivial RPC of the same service", 0.7
    return judged(cmd_rate, "calls/s", ping_rate, name, target, AT_LEAST, **extra,
                  p50_ms=round(percentile(lat_cmd, 50) * 1000, 2),
                  p99_ms=round(percentile(lat_cmd, 99) * 1000, 2),
                  baseline_p50_ms=round(percentile(lat_ping, 50) * 1000, 2),
                  baseline_p99_ms=round(percentile(lat_ping, 99) * 1000, 2))


def rpc_actor(cfg: dict, user_id: str, roles: list[str]) -> dict:
    """The ``actor`` an RPC caller passes: a token credential (``{"token": ...}``) issued
    through the node's user directory, authenticated by the service as HTTP's bearer
    token is."""
    from shared import config
    from shared.auth import UserDirectory
    engine = make_engine(config.node_database_url(cfg))
    try:
        users = UserDirectory(engine, cfg["NODE_ID"])
        users.create_schema()
        user_id = "%s-%s" % (user_id, uuid.uuid4().hex[:6])
        users.add_user(user_id, user_id, roles)
        return {"token": users.issue_token(user_id, "bench")}
    finally:
        engine.dispose()


def run(var_dir: str = "var", only=None) -> dict:
    import tempfile
    urls, vhost = [], None
    try:
        figures = {}
        if wanted(only, "append_single", "append_batch100", "reload_10k", "relay_confirmed"):
            urls.append(scratch_database("kernel"))
            store = EventStore(make_engine(urls[-1]))
            store.create_schema()
            raw_events.create(store.engine)
            figures.update(bench_append(store, only))
            if wanted(only, "reload_10k"):
                figures.update(bench_reload(store))
            if wanted(only, "relay_confirmed"):
                vhost, vhost_uri = scratch_vhost("kernel")
                figures.update(bench_relay(store, vhost_uri))
            store.engine.dispose()
        if wanted(only, "projection_rebuild"):
            urls.append(scratch_database("kernel"))
            figures.update(bench_rebuild(urls[-1]))
        if wanted(only, "rpc_command", "rpc_command_postgresql"):
            if vhost is None:
                vhost, vhost_uri = scratch_vhost("kernel")
            tmp = tempfile.mkdtemp()
            if wanted(only, "rpc_command"):  # the embedded default back-end (what `make run` uses)
                figures["rpc_command"] = bench_rpc("sqlite:///%s/units.db" % tmp, vhost_uri, tmp)
            if wanted(only, "rpc_command_postgresql"):
                urls.append(scratch_database("kernel"))
                figures["rpc_command_postgresql"] = bench_rpc(urls[-1], vhost_uri, tmp, floor=True)
    finally:
        if vhost:
            drop_vhost(vhost)
        for u in urls:
            drop_database(u)
    return {k: figures[k] for k in FIGURES if k in figures and wanted(only, k)}
