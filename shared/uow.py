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
from types import SimpleNamespace
from typing import Callable, Iterable, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from shared.aggregate import EVENT_TYPES, Aggregate
from shared.db import Pipeline, pipelined, readonly
from shared.errors import ConcurrencyError
from shared.events import NewEvent, StoredEvent, canonical_json, upcasters
from shared.projections import Projection, apply_inline, plan_inline
from shared.store import GUESS_FAILED, EventStore, snapshots, tracking

UNIQUE_VIOLATION = "23505"

A = TypeVar("A", bound=Aggregate)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Extensions(SimpleNamespace):
    """``rt.ext``: a service's extensions by name (``rt.ext.federation``), each built once
    per container from its ``Application``'s declaration (``@app.extension``)."""

    def get(self, name: str, default=None):
        """The extension, or ``default`` where it is not built (a runtime made by hand:
        tests, scripts; a command that works without it asks this way)."""
        return self.__dict__.get(name, default)


class RuntimeState:
    """``rt.state``: the values a service keeps in memory between its commands, per runtime
    (so per process, never shared, lost at restart). The kernel builds one, empty, for every
    runtime - the provider's and one made by hand alike; each value is declared by the
    service's ``Application`` (``@app.runtime_state(name)``) and made on first use through
    ``app.state_of(rt, name)``: nothing a service keeps is an undeclared runtime attribute."""

    __slots__ = ("_values",)

    def __init__(self):
        self._values: dict[str, object] = {}

    def value(self, name: str, factory: Callable[[], object]):
        """The value named ``name``, made by ``factory()`` the first time it is asked for."""
        if name not in self._values:
            self._values[name] = factory()
        return self._values[name]


class Runtime:
    """What one service needs to run units of work against its database.

    Built once per service container (in a DependencyProvider's ``setup``) and shared
    by every worker; holds no per-request state.

    ``settings`` and ``ext`` are the one home of what is the service's own: its settings
    (``Application(settings=...)``, parsed from the config at start-up) and its extensions
    (``rt.ext.<name>``). A runtime made by hand is given the settings its commands read.
    ``state`` (``RuntimeState``) holds what a service remembers between commands in this
    process. The attributes are fixed (``__slots__``): a service cannot hang more on it.
    """

    __slots__ = ("engine", "store", "projections", "node_id", "service", "clock",
                 "extra_metadata", "after_commit", "inline_checkpoint", "settings", "ext", "state")

    def __init__(self, engine: Engine, projections: Iterable[Projection] = (),
                 node_id: str = "local", service: str = "",
                 clock: Callable[[], datetime] = utc_now, extra_metadata=(), settings=None):
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
        self.settings = settings
        self.ext = Extensions()
        self.state = RuntimeState()

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
        # set by ``Application.bind_ports``: the application's ``check_scope`` (see below)
        self.authorizer = None
        self._tx = None
        self._pipeline = None
        # write-behind (PostgreSQL): (events, time, guessed stored, tail, rendered writes)
        # of the one append not sent yet; see save
        self._pending = None

    def check_scope(self, roles: tuple, unit_id: str | None, actor=None) -> None:
        """Authorise ``actor`` (default: this unit of work's) for ``roles`` on ``unit_id``,
        the unit-admin subtree rule included, as the application that bound this unit of
        work decides it (``Application.check_scope``, on this transaction): what a command
        that touches a second unit (a move's new parent) or acts for someone else asks,
        instead of handing the connection to the application itself."""
        if self.authorizer is None:
            raise RuntimeError("no application bound this unit of work (Application.bind_ports)")
        self.authorizer(self.conn, self.actor if actor is None else actor, roles, unit_id)

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
            try:
                if self._pending is not None:
                    self._commit_pending()
            except BaseException as exc:
                self._rollback(type(exc), exc, exc.__traceback__)  # closes the pipeline too
                raise
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
                    "记录「%s」当前为第 %d 版，您修改的是第 %d 版，请重新加载后再试"
                    % (id, agg.version, expected))
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
        recorded = int(self.now.timestamp() * 1_000_000)
        planned = self._write_behind(aggregates, new, recorded)
        if planned is not None:
            return planned
        stored, moved = self._append(new, recorded)
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

    # -- write-behind (PostgreSQL) ---------------------------------------------------------
    def _write_behind(self, aggregates, new: list[NewEvent], recorded: int):
        """Plan the append instead of sending it, when that is safe; returns the events
        as they will be stored, or None (then the append is sent now).

        Why: the append, its checkpoint move, its read-model writes and COMMIT can then
        travel in ONE round trip at commit - a command costs two (load; write + commit),
        fewer than a raw insert transaction's three. Safe only when

        * this transaction has written nothing yet: if the guess fails at COMMIT the
          transaction is lost, and it must be redone from these events alone;
        * the read-model writes need no read (``plan_inline``), and no snapshot is due;
        * the process has a cached tail to guess positions from.

        Anything executed on the connection before commit sends the plan first
        (``Pipeline.pending``), so a later statement runs under the writer lock, sees the
        events and the read models, exactly as if the append had been sent by ``save``.
        Reads of the stream under READ COMMITTED were never one snapshot with the write:
        the version check of ``(stream_id, version)`` is what protects the decision, and
        it holds in the redo too."""
        pipe = Pipeline.of(self.conn) if self._pipeline is not None else None
        if (pipe is None or pipe.wrote or pipe.pending is not None or not self.rt.projections
                or not new or any(a.snapshot_every for a in aggregates)):
            return None
        guess = self.rt.store.guess(new, recorded)
        if guess is None:
            return None
        guessed, tail = guess
        writes = plan_inline(self.conn, self.rt.projections, guessed)
        if writes is None:
            return None
        self._pending = (new, recorded, guessed, tail, writes)
        pipe.pending = self._send_pending
        self.appended.extend(guessed)
        return guessed

    def _send_pending(self) -> None:
        """Another statement comes before commit: send the planned append now, in this
        transaction (the ordinary path; its writes go in front of that statement)."""
        new, recorded, guessed, tail, writes = self._pending
        self._pending = None
        stored, moved = self.rt.store.append_moving(
            self.conn, new, recorded, self.rt.inline_checkpoint, guessed=guessed)
        if moved and stored[0].position == tail[0] + 1:
            pipe = Pipeline.of(self.conn)
            pipe.deferred.extend(writes)  # planned on exactly these positions
            pipe.wrote = True
        else:
            apply_inline(self.rt.store, self.conn, self.rt.projections, stored,
                         self.rt.inline_checkpoint, checkpoint_moved=moved)

    def _commit_pending(self) -> None:
        """The planned append, its checkpoint, its read-model writes and COMMIT in one
        round trip. If the guess was wrong (another writer moved the tail or the
        checkpoint) the database refuses the whole transaction; it held only these
        events' effects, so they are written again in a new one, the ordinary way."""
        new, recorded, guessed, tail, writes = self._pending
        self._pending = None
        pipe = Pipeline.of(self.conn)
        pipe.pending = None
        store = self.rt.store
        sql = store.guessed_append_sql(guessed, tail, self.rt.inline_checkpoint, pipe.render)
        try:
            pipe.commit(sql, *writes)
        except Exception as exc:
            code = getattr(exc, "pgcode", None)
            store.forget_tail()
            if code == UNIQUE_VIOLATION and getattr(getattr(exc, "diag", None), "constraint_name",
                                                    None) == "uq_events_stream_version":
                raise ConcurrencyError("记录 %s 已被他人修改（版本冲突），请重新加载后再试"
                                       % new[0].stream_id) from exc
            if code != GUESS_FAILED:
                raise
            # the redo: a new transaction (the pipeline sends BEGIN again), lock, tail
            stored, moved = store.append_moving(self.conn, new, recorded,
                                                self.rt.inline_checkpoint, guessed=guessed)
            apply_inline(store, self.conn, self.rt.projections, stored,
                         self.rt.inline_checkpoint, checkpoint_moved=moved)
            return  # the pipeline's own COMMIT follows
        store.remember_tail(guessed)

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
