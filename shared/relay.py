"""The outbox relay: the event log *is* the outbox.

The relay tails the log from its own checkpoint and publishes each event to the
service's nameko events exchange (``<service>.events``, topic, routing key = event
type), so any nameko ``@event_handler(service, type)`` receives it.

Why batches in an AMQP transaction: the checkpoint may only move past an event once
the broker has taken responsibility for it. Waiting for one publisher confirm per
message caps a publisher at ~2.5k msg/s here; ``tx.commit`` after a batch is one round
trip for the whole batch, and RabbitMQ answers ``commit-ok`` only once every message
of the batch is routed (and, for durable queues, persisted). Only then is the
checkpoint written. A crash between the broker's ``commit-ok`` and our checkpoint write
republishes that batch on restart: delivery is at-least-once by design, and consumers
dedupe by event id (``UnitOfWork.track``).

Why one relay per log: two relays would not lose anything, but would double the
traffic. On PostgreSQL a session advisory lock elects one; with SQLite there is one
process per file anyway.
"""
from __future__ import annotations

import json
import logging
import os
import posix
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import unquote, urlparse

import amqp
from kombu import Connection as AmqpConnection, Exchange
from sqlalchemy import bindparam, func, select, text

from shared import logs
from shared.db import make_engine, readonly
from shared.logs import well_formed
from shared.events import now_us
from shared.store import EventStore, checkpoints, events

log = logging.getLogger(__name__)
YIELD_EVERY = 100  # messages framed between two yields (publish_batch)


class Outgoing(NamedTuple):
    position: int
    event_id: str
    event_type: str
    recorded_at_us: int
    body: bytes
    correlation_id: str | None = None


def after_checkpoint(name_param: str = "cp_name"):
    """The position a checkpoint holds (0 before its first move), as a scalar subquery:
    a publisher's batch query reads its checkpoint in the same statement as the rows
    after it - one statement a batch, not two (the checkpoint's own read was most of
    what a batch of one event cost the relay, docs/scaling.md)."""
    return func.coalesce(select(checkpoints.c.position)
                         .where(checkpoints.c.name == bindparam(name_param))
                         .scalar_subquery(), 0)


_OUTGOING = (
    select(events.c.position, events.c.event_id, events.c.stream_id, events.c.stream_type,
           events.c.version, events.c.event_type, events.c.schema_version, events.c.payload,
           events.c.meta, events.c.recorded_at_us)
    .where(events.c.position > after_checkpoint())
    .order_by(events.c.position).limit(bindparam("limit"))
)


def _outgoing(r) -> Outgoing:
    """The message body (contracts/envelope.schema.json) spliced from the stored text.

    Payload and metadata are stored as canonical JSON already: decoding them only to
    encode them again was most of the relay's work."""
    dumps = json.dumps
    body = ('{"event_id":%s,"position":%d,"stream_id":%s,"stream_type":%s,"version":%d,'
            '"type":%s,"schema_version":%d,"payload":%s,"metadata":%s}' % (
                dumps(r.event_id), r.position, dumps(r.stream_id, ensure_ascii=False),
                dumps(r.stream_type), r.version, dumps(r.event_type), r.schema_version,
                r.payload, r.meta))
    return Outgoing(r.position, r.event_id, r.event_type, r.recorded_at_us, body.encode("utf-8"),
                    correlation_of(r.meta))


def correlation_of(meta: str | None) -> str | None:
    """The correlation id in a stored metadata text, without decoding all of it (the
    relay's hot path); it becomes the message's AMQP ``correlation_id`` property."""
    i = meta.find('"correlation_id":"') if meta else -1
    if i < 0:
        return None
    start = i + len('"correlation_id":"')
    return well_formed(meta[start:meta.find('"', start)])


def events_exchange(service: str) -> Exchange:
    # the same declaration nameko's EventDispatcher uses, so both sides agree
    return Exchange("%s.events" % service, type="topic", durable=True, auto_delete=False)


class BrokerWatch:
    """Called while a publisher is idle: (re)connects and reads whatever the broker
    sent, at most every ``every`` seconds, so a broker that went away (or came back) is
    noticed - and shown in ``qinglian_broker_connected`` - without waiting for the next
    event. Raises when the broker is unreachable (the caller's retry loop handles it)."""

    def __init__(self, connect: Callable[[], AmqpConnection], every: float = 5.0):
        self.connect = connect
        self.every = every
        self._at = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self._at < self.every:
            return
        self._at = time.monotonic()
        try:
            self.connect().drain_events(timeout=0.01)  # a connection.close arrives here
        except socket.timeout:
            pass


class IdleBackoff:
    """How long a polling publisher waits when it found nothing: ``first``, doubling
    after each empty look up to ``ceiling``, back to ``first`` once it finds work.

    Why: every commit in the process wakes its publishers at once (``Runtime.after_commit``),
    so the poll is only for what another process appended (a second process of the same
    service on PostgreSQL, a command-line tool). Polling every 50 ms for ever cost an
    idle node two queries per loop, 40 a second per publisher - on the scale network
    (1 + 11 exchange processes, each with a relay and an outbox publisher) as much
    CPU as applying the records did. Another process's append now waits at most
    ``ceiling`` after a quiet spell, and ``first`` while traffic flows."""

    def __init__(self, first: float = 0.05, ceiling: float = 1.0):
        self.first, self.ceiling = first, max(first, ceiling)
        self.current = first

    def found(self) -> None:
        self.current = self.first

    def empty(self) -> float:
        """The wait after an empty look (the next one waits longer)."""
        wait, self.current = self.current, min(self.current * 2, self.ceiling)
        return wait


class Relay:
    def __init__(self, store: EventStore, amqp_uri: str, service: str,
                 batch_size: int = 1000, name: str | None = None,
                 on_published: Callable[[int], None] | None = None,
                 on_connection: Callable[[bool], None] | None = None):
        self.store = store
        self.amqp_uri = amqp_uri
        # who publishes: the broker checks it against the login (shared.brokerusers)
        self.login = unquote(urlparse(amqp_uri).username or "guest")
        self.service = service
        self.exchange = events_exchange(service)
        self.batch_size = batch_size
        self.name = name or "relay:%s" % service
        self.on_published = on_published  # (events the broker confirmed)
        self.on_connection = on_connection  # (connected?) whenever that changes
        self.check_broker = BrokerWatch(lambda: (self._channel_ready(), self._conn)[1])
        self._conn: AmqpConnection | None = None
        self._channel = None
        self._lock_conn = None
        self._leader = False

    # -- broker connection ----------------------------------------------------------------
    def _channel_ready(self):
        """A channel in transaction mode on which the exchange is declared."""
        if self._channel is None:
            self._conn = AmqpConnection(self.amqp_uri, heartbeat=0, connect_timeout=5)
            channel = self._conn.channel()
            self.exchange(channel).declare()
            channel.tx_select()
            self._channel = channel
            if self.on_connection:
                self.on_connection(True)
        return self._channel


    def close(self) -> None:
        try:
            if self._conn is not None:
                self._conn.release()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass
        if self._channel is not None and self.on_connection:
            self.on_connection(False)
        self._conn = self._channel = None
        if self._lock_conn is not None:
            try:
                # invalidate, not close: a pooled connection would keep its session,
                # and with it the advisory lock
                self._lock_conn.invalidate()
                self._lock_conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._lock_conn = None
        self._leader = False

    # -- leadership ------------------------------------------------------------------------
    def acquire_leadership(self) -> bool:
        """PostgreSQL: hold a session advisory lock for as long as we relay."""
        if self.store.sqlite or self._leader:
            return True
        if self._lock_conn is None:
            self._lock_conn = self.store.engine.connect()
        key = zlib.crc32(self.name.encode()) & 0x7FFFFFFF
        got = self._lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        self._lock_conn.commit()
        self._leader = bool(got)
        return self._leader

    # -- one batch --------------------------------------------------------------------------
    def pending(self) -> list[Outgoing]:
        """The next batch after the checkpoint (one statement: ``after_checkpoint``)."""
        with readonly(self.store.engine.connect()) as conn:
            rows = conn.execute(_OUTGOING, {"cp_name": self.name, "limit": self.batch_size}).all()
        return [_outgoing(r) for r in rows]

    def lag(self) -> tuple[int, float]:
        """(events the broker has not confirmed, age in seconds of the oldest of them),
        from the log's head and this relay's checkpoint: true whether or not the relay
        is running, and (0, 0.0) when caught up."""
        with readonly(self.store.engine.connect()) as conn:
            position = self.store.get_checkpoint(conn, self.name) or 0
            head = self.store.head(conn)
            if head <= position:
                return 0, 0.0
            oldest = conn.execute(select(events.c.recorded_at_us)
                                  .where(events.c.position > position)
                                  .order_by(events.c.position).limit(1)).scalar()
        return head - position, max(0.0, (now_us() - oldest) / 1e6) if oldest else 0.0

    def publish_batch(self, batch: list[Outgoing]) -> None:
        """Publish a batch and commit it on the broker.

        Straight onto the channel (kombu's Producer would re-encode and re-declare per
        message): the body is the JSON nameko's event handlers decode."""
        channel = self._channel_ready()
        exchange = self.exchange.name
        # the batch's frames go to the socket in one write, not one each (a third of the
        # relay's time was those writes): py-amqp's frame writer hands each frame to
        # the transport's ``_write``, which collects a copy here (the frame is a view of
        # a buffer py-amqp reuses). Nothing is sent if a publish fails, and the broker
        # routes none of it before ``tx_commit`` anyway, so the batch stays
        # all-or-nothing as before.
        transport = channel.connection.transport
        send, frames = transport._write, []
        transport._write = lambda data: frames.append(bytes(data))
        try:
            for i, ev in enumerate(batch):
                if i and not i % YIELD_EVERY:
                    # let the process's other green threads in (under eventlet framing
                    # 1,000 messages never waits, and a catching-up node's applying
                    # thread, its PostgreSQL answer there, waited for it every time);
                    # the channel is this relay's own, so nothing else writes between
                    time.sleep(0)
                channel.basic_publish(
                    amqp.Message(ev.body, content_type="application/json",
                                 content_encoding="utf-8", delivery_mode=2,
                                 message_id=ev.event_id, correlation_id=ev.correlation_id,
                                 user_id=self.login,
                                 application_headers={"qinglian.position": ev.position}),
                    exchange=exchange, routing_key=ev.event_type)
        finally:
            transport._write = send
        transport.write(b"".join(frames))
        channel.tx_commit()  # broker has every message of the batch now

    def run_once(self) -> int:
        batch = self.pending()
        if not batch:
            return 0
        self.publish_batch(batch)
        last = batch[-1].position
        with self.store.engine.begin() as conn:
            self.store.set_checkpoint(conn, self.name, last)
        if self.on_published:
            self.on_published(len(batch))
        return len(batch)

    def drain(self, timeout: float = 30.0) -> int:
        """Publish until the log is exhausted (tests, benchmarks, shutdown)."""
        total, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.run_once()
            total += n
            if n == 0:
                return total
        return total

    def run(self, should_stop: Callable[[], bool], wait: Callable[[float], None],
            idle_wait: float = 0.05, idle_ceiling: float = 1.0) -> None:
        """Loop until ``should_stop``; ``wait(t)`` sleeps or returns early when woken.
        Idle, it looks again after ``idle_wait``, then ever less often up to
        ``idle_ceiling`` (``IdleBackoff``)."""
        backoff = 0.5
        idle = IdleBackoff(idle_wait, idle_ceiling)
        while not should_stop():
            try:
                if not self.acquire_leadership():
                    wait(2.0)
                    continue
                if self.run_once() == 0:
                    self.check_broker()
                    wait(idle.empty())
                else:
                    idle.found()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - broker or db down: retry, never die
                log.warning("relay %s: %s; retrying in %.1fs", self.name, exc, backoff)
                self.close()
                wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.close()


# -- the relay in its own process (QINGLIAN_RELAY=process) ---------------------------------
class RelayProcess:
    """A service's relay run as a child process of the service (``python -m shared.relay``),
    supervised by a thread of the service process.

    Why: in the service process the relay and the service's own work share one
    interpreter lock. A node catching up a day's feeds applies each page and then
    re-publishes every replica of it to ``<service>.events`` (docs/scaling.md): the relay
    was a third of that process's CPU, on the same core as the applying. In its own
    process it runs on another core. It is the same ``Relay`` - the same checkpoint,
    batches, AMQP transaction and advisory lock - so the contract (one message per event,
    in log order, at-least-once with the checkpoint) is the same.

    The pipe between the two: after each of its commits the service writes a byte to the
    child's stdin, so the child looks at once, as the in-process relay is woken (its own
    ``IdleBackoff`` poll remains for what other processes append); the child writes
    ``published N`` and ``connected 0|1`` lines to its stdout, which the service counts
    in its metrics. The child stops when its stdin closes - when the service stops, and
    when it dies - so no orphan relay outlives its service (nor holds the lock)."""

    STOP_SECONDS = 10.0  # a batch being published finishes, or is redone by the next relay

    def __init__(self, database_url: str, amqp_uri: str, service: str, node: str,
                 on_published: Callable[[int], None] | None = None,
                 on_connection: Callable[[bool], None] | None = None):
        self.spec = {"database_url": database_url, "amqp_uri": amqp_uri, "service": service,
                     "node": node}
        self.on_published = on_published
        self.on_connection = on_connection
        self.proc = None
        self._wake_fd: int | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self):
        root = str(Path(__file__).resolve().parents[1])  # so `-m shared.relay` finds this tree
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p))
        # the wake-up pipe is a bare descriptor written with ``posix.write``, not a
        # file object: eventlet's green write retries EPIPE for ever, so a wake-up
        # written to a child that has just died would hang the service's thread
        read_end, self._wake_fd = os.pipe()
        proc = subprocess.Popen([sys.executable, "-m", "shared.relay"], stdin=read_end,
                                stdout=subprocess.PIPE, env=env)
        os.close(read_end)
        # the database URL and broker login on the pipe, not on the command line (ps shows
        # that); one short line fits the pipe's buffer, so this write does not wait
        posix.write(self._wake_fd, json.dumps(self.spec).encode("utf-8") + b"\n")
        os.set_blocking(self._wake_fd, False)
        return proc

    def _poke(self) -> None:
        try:
            posix.write(self._wake_fd, b"w")
        except OSError:  # full of wake-ups it has not read (enough), or it exited (the
            pass         # loop's poll() says so next)

    def _close_pipe(self) -> None:
        """Once: the descriptor's number may be reused after it is closed."""
        if self._wake_fd is not None:
            fd, self._wake_fd = self._wake_fd, None
            os.close(fd)

    def _read(self, proc) -> None:
        for line in proc.stdout:
            kind, _, value = line.decode("utf-8", "replace").strip().partition(" ")
            if kind == "published" and self.on_published:
                self.on_published(int(value))
            elif kind == "connected" and self.on_connection:
                self.on_connection(value == "1")

    def run(self, should_stop: Callable[[], bool], woken: Callable[[float], bool]) -> None:
        """Keep the child running until ``should_stop``; ``woken(t)`` is True when the
        service committed something within ``t`` seconds. A child that exits is started
        again (after 0.5 s, doubling up to 5 s while it keeps failing)."""
        backoff = 0.5
        while not should_stop():
            started = time.monotonic()
            proc = self.proc = self._spawn()
            reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
            reader.start()
            try:
                while not should_stop() and proc.poll() is None:
                    if woken(1.0) and not should_stop():
                        self._poke()
            finally:
                self._end(proc)
            reader.join(1.0)
            if self.on_connection:
                self.on_connection(False)
            if should_stop():
                return
            log.warning("relay process for %s exited (%s); starting it again in %.1fs",
                        self.spec["service"], proc.returncode, backoff)
            time.sleep(backoff)
            backoff = 0.5 if time.monotonic() - started > 60 else min(backoff * 2, 5.0)

    def stop(self) -> None:
        if self.proc is not None:
            self._end(self.proc)

    def _end(self, proc) -> None:
        self._close_pipe()  # the child's signal to stop after its batch
        try:
            proc.wait(self.STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    """The child side of ``RelayProcess``: the spec on the first line of stdin, then a
    byte per wake-up; stops at the end of stdin."""

    stdin = sys.stdin.buffer
    spec = json.loads(stdin.readline())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logs.process_defaults.update(service=spec["service"], node=spec["node"], task="relay")
    wake, stop = threading.Event(), threading.Event()

    def listen():
        while stdin.read1(4096):
            wake.set()
        stop.set()
        wake.set()

    threading.Thread(target=listen, daemon=True).start()
    out, out_lock = sys.stdout, threading.Lock()

    def report(line: str) -> None:
        with out_lock:
            try:
                out.write(line + "\n")
                out.flush()
            except OSError:  # the service is gone: stdin's end stops us next
                pass

    def wait(seconds: float) -> None:
        wake.wait(seconds)
        wake.clear()

    store = EventStore(make_engine(spec["database_url"]))
    relay = Relay(store, spec["amqp_uri"], spec["service"],
                  on_published=lambda n: report("published %d" % n),
                  on_connection=lambda up: report("connected %d" % up))
    try:
        relay.run(stop.is_set, wait)
    finally:
        store.engine.dispose()


if __name__ == "__main__":
    main()
