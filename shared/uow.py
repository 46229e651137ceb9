"""Unit of work and repository: one transaction for a command or a handled event.

Everything a worker does - loading aggregates, appending their events, updating
read models, writing the consumer's tracking row - happens in one database
transaction, committed when the work succeeds and rolled back when it fails. The
relay publishes from the log afterwards, so there is no "publish after commit" to lose.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Callable, Iterable, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from shared.aggregate import EVENT_TYPES, Aggregate
from shared.db import pipelined, readonly
from shared.errors import ConcurrencyError
from shared.events import NewEvent, StoredEvent, canonical_json, upcasters
from shared.projections import Projection, apply_inline
from shared.store import EventStore, snapshots, tracking

A = TypeVar("A", bound=Aggregate)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Runtime:
    """What one service needs to run units of work against its database.

    Built once per service container (in a DependencyProvider's ``setup``) and shared
    by every worker; holds no per-request state.
    """

    def __init__(self, engine: Engine, projections: Iterable[Projection] = (),
                 node_id: str = "local", service: str = "",
                 clock: Callable[[], datetime] = utc_now, extra_metadata=()):
        self.engine = engine
        self.store = EventStore(engine)
        self.projections = list(projections)
        self.node_id = node_id
        self.service = service
        self.clock = clock
        self.extra_metadata = list(extra_metadata)
        # called with the stored events after every commit that appended some
        # (wakes the relay, counts metrics); must not raise
        self.after_commit: list[Callable[[list[StoredEvent]], None]] = []
        self.inline_checkpoint = "inline:%s" % (service or "default")

    def create_schema(self) -> None:
        mds = {id(t.metadata): t.metadata for p in self.projections for t in p.tables}
        mds.update({id(md): md for md in self.extra_metadata})
        self.store.create_schema(mds.values())

    def unit_of_work(self, actor=None, correlation_id: str | None = None,
                     causation_id: str | None = None) -> "UnitOfWork":
        return UnitOfWork(self, actor, correlation_id, causation_id)

    def read(self):
        """A read-only connection (context manager) for queries."""
        return readonly(self.engine.connect())


class UnitOfWork:
    def __init__(self, rt: Runtime, actor=None, correlation_id=None, causation_id=None):
        self.rt = rt
        self.actor = actor
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self.causation_id = causation_id
        self.appended: list[StoredEvent] = []
        # If-Match: the version the caller last saw of the record it is changing; the
        # first aggregate loaded must still be at it (an edit made on stale data is
        # refused with 409 instead of silently overwriting someone else's change)
        self.expected_version: int | None = None
        self.conn = None
        self._tx = None

    # -- transaction -------------------------------------------------------------------
    def __enter__(self) -> "UnitOfWork":
        self.conn = self.rt.engine.connect()
        self._tx = self.conn.begin()
        self._pipeline = None
        if not self.rt.store.sqlite:
            # PostgreSQL: BEGIN rides on the first statement, read-model writes on the
            # next statement or on COMMIT (shared.db.Pipeline) - a command that loads,
            # appends and updates its read model costs three round trips, not six.
            # The transaction is the same single transaction as before.
            self._pipeline = pipelined(self.conn)
            self._pipeline.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self._rollback(exc_type, exc, tb)
        finally:
            self.conn.close()

    def _rollback(self, exc_type=None, exc=None, tb=None) -> None:
        if self._pipeline is not None:
            pipeline, self._pipeline = self._pipeline, None
            try:
                pipeline.__exit__(exc_type or RuntimeError, exc or RuntimeError("rollback"), tb)
            except BaseException:
                pass  # the error being handled is the one to report
        self._tx.rollback()

    def commit(self) -> None:
        if self._pipeline is not None:
            pipeline, self._pipeline = self._pipeline, None
            try:
                pipeline.__exit__(None, None, None)  # deferred writes + COMMIT, one round trip
            except BaseException:
                self._tx.rollback()
                raise
        self._tx.commit()
        if self.appended:
            for hook in self.rt.after_commit:
                hook(self.appended)

    @property
    def now(self) -> datetime:
        return self.rt.clock()

    # -- aggregates ----------------------------------------------------------------------
    def get(self, cls: type[A], id: str) -> A:
        """Load an aggregate (raises NotFound): snapshot if any, then newer events."""
        stream_id = cls.stream_id_for(id)
        start, after = None, 0
        if cls.snapshot_every:
            snap = self.conn.execute(
                snapshots.select().where(snapshots.c.stream_id == stream_id)).first()
            if snap is not None:
                start, after = cls.from_snapshot(json.loads(snap.state)), snap.version
        rows = self.rt.store.read_stream_rows(self.conn, stream_id, after)
        agg = cls.replay(id, _decode(rows), start)
        if self.expected_version is not None:
            expected, self.expected_version = self.expected_version, None
            if agg.version != expected:
                raise ConcurrencyError(
                    "记录 %s %s 当前为第 %d 版，您修改的是第 %d 版，请重新加载后再试"
                    % (cls.stream_type, id, agg.version, expected))
        return agg

    def exists(self, cls: type[Aggregate], id: str) -> bool:
        return self.rt.store.stream_version(self.conn, cls.stream_id_for(id)) > 0

    def metadata(self) -> dict:
        actor = self.actor
        meta = {
            "node": self.rt.node_id,
            "correlation_id": self.correlation_id,
            "occurred_at": self.now.isoformat(),
        }
        if actor is not None:
            meta["actor"] = actor.user_id
        if self.causation_id:
            meta["causation_id"] = self.causation_id
        return meta

    def save(self, *aggregates: Aggregate) -> list[StoredEvent]:
        new: list[NewEvent] = []
        meta = self.metadata()
        for agg in aggregates:
            pending = agg.collect_events()
            base = agg.version - len(pending)
            for i, ev in enumerate(pending):
                new.append(NewEvent(agg.stream_id, agg.stream_type, base + i + 1,
                                    ev.event_type, ev.schema_version, ev.data(), meta))
        stored, moved = self._append(new, int(self.now.timestamp() * 1_000_000))
        # read models move with the log, still under the writer lock: a query later in
        # this unit of work (or right after the command) sees what was just recorded
        apply_inline(self.rt.store, self.conn, self.rt.projections, stored,
                     self.rt.inline_checkpoint, checkpoint_moved=moved)
        for agg in aggregates:
            every = agg.snapshot_every
            if every and agg.version // every > (agg.version - _count(stored, agg)) // every:
                self._snapshot(agg)
        return stored

    def append_events(self, new: list[NewEvent], recorded_at_us: int | None = None,
                      writer=None) -> list[StoredEvent]:
        """Append events built elsewhere - replicas received from another node, with
        their own ids and versions - and bring the read models along, as ``save`` does.
        ``writer``: see ``apply_inline``."""
        stored, moved = self._append(new, recorded_at_us or int(self.now.timestamp() * 1_000_000))
        apply_inline(self.rt.store, self.conn, self.rt.projections, stored,
                     self.rt.inline_checkpoint, writer, checkpoint_moved=moved)
        return stored

    def _append(self, new: list[NewEvent], recorded_at_us: int):
        """Append; the shared inline checkpoint moves in the same statement where it can."""
        stored, moved = self.rt.store.append_moving(
            self.conn, new, recorded_at_us,
            self.rt.inline_checkpoint if self.rt.projections else None)
        self.appended.extend(stored)
        return stored, moved

    def _snapshot(self, agg: Aggregate) -> None:
        values = dict(version=agg.version, state=canonical_json(agg.snapshot_state()),
                      recorded_at_us=int(self.now.timestamp() * 1_000_000))
        ins = (postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert)
        self.conn.execute(ins(snapshots).values(stream_id=agg.stream_id, **values)
                          .on_conflict_do_update(index_elements=["stream_id"], set_=values))

    # -- idempotent consumers ------------------------------------------------------------
    def track(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handled ``event_id``; False if it already had.

        ON CONFLICT DO NOTHING rather than catching IntegrityError: on PostgreSQL a
        failed statement would poison the whole transaction.
        """
        ins = (postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert)
        res = self.conn.execute(
            ins(tracking).values(consumer=consumer, event_id=event_id,
                                 processed_at_us=int(self.now.timestamp() * 1_000_000))
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"]))
        return res.rowcount == 1


def _count(stored: list[StoredEvent], agg: Aggregate) -> int:
    return sum(1 for e in stored if e.stream_id == agg.stream_id)


def _decode(rows):
    loads, types = json.loads, EVENT_TYPES
    for event_type, version, schema_version, payload in rows:
        data = loads(payload)
        current = types[event_type].schema_version
        if schema_version != current:
            data = upcasters.upcast(event_type, schema_version, current, data)
        yield event_type, version, data
