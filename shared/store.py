"""The event store: one append-only log per service database (SQLAlchemy 2 Core).

Guarantees, and how they are kept:

* **Gap-free positions in commit order.** Positions are not taken from a sequence
  (a rolled-back transaction would leave a hole, and two transactions could commit
  out of sequence order, so a tailing reader that saw 11 before 10 committed would
  skip 10 for ever). Instead a writer takes the log's writer lock inside its own
  transaction and computes ``last position + 1``. The lock is held until commit, so
  the next writer sees this writer's rows or waits: commit order = position order.
  PostgreSQL: ``LOCK TABLE events IN EXCLUSIVE MODE`` (readers, which take ACCESS
  SHARE, are not blocked) under a 5 s ``lock_timeout`` (set on every connection by
  ``shared.db.make_engine``) so a stuck writer makes others fail fast with
  ``StoreBusy`` rather than pile up. SQLite: ``BEGIN IMMEDIATE`` (see
  ``shared.db``), which is the database's single writer lock.
* **Optimistic concurrency.** ``(stream_id, version)`` is unique. A command that loaded
  version 4 appends version 5; if another writer got there first the insert fails and
  the caller gets ``ConcurrencyError`` - never a lost update.
* **Tamper evidence.** Each row's hash covers its content and the previous row's hash;
  ``verify`` walks the chain and names the first row that does not match.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Iterator

from sqlalchemy import (
    BigInteger, Column, Index, Integer, MetaData, SmallInteger, String, Table, Text,
    UniqueConstraint, bindparam, select, func,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.db import Pipeline, is_sqlite
from shared.errors import ConcurrencyError, NotFound, StoreBusy
from shared.events import NewEvent, StoredEvent, canonical_json, now_us

GENESIS = "0" * 64
# Batches up to this size use the one-round-trip path (and its cached SQL text); for
# bigger ones the extra round trip to read the tail does not matter.
FAST_PATH_MAX = 16

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_type", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(150), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    Index("ix_events_recorded_at", "recorded_at_us"),
)

# Where each projection, relay and consumer has got to in this log.
checkpoints = Table(
    "checkpoints", metadata,
    Column("name", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# Idempotent consumers: one row per (consumer, event id), written in the same
# transaction as whatever handling the event caused.
tracking = Table(
    "tracking", metadata,
    Column("consumer", String(150), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("processed_at_us", BigInteger, nullable=False),
)

# Events a consumer gave up on (one that cannot be parsed, or one failing every retry
# for a reason that is not the database being busy): kept here for ops to inspect
# (`qinglian events dead-letters`), never acknowledged and dropped unseen.
dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(150), nullable=False),
    Column("event_id", String(64)),
    Column("body", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_at_us", BigInteger, nullable=False),
)

snapshots = Table(
    "snapshots", metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
)


# Statements built once: constructing them per call costs more than running them on
# SQLite (SQLAlchemy derives a cache key from each new construct).
_INSERT_EVENTS = events.insert()
_STREAM_VERSION = select(func.max(events.c.version)).where(events.c.stream_id == bindparam("stream_id"))
_GET_CHECKPOINT = select(checkpoints.c.position).where(checkpoints.c.name == bindparam("cp_name"))
# built once: every relay and publisher batch moves a checkpoint, and building the UPDATE
# per call cost more than running it (the scale bench's profile of the exchange's relay)
_SET_CHECKPOINT = (checkpoints.update().where(checkpoints.c.name == bindparam("cp_name"))
                   .values(position=bindparam("cp_position"), updated_at_us=bindparam("cp_at")))


# The hottest statements go straight to the driver's cursor: through SQLAlchemy each
# costs ~25 µs of Python before the database sees it, more than SQLite takes to run it.
_RAW = {
    "read_stream": ("SELECT event_type, version, schema_version, payload FROM events "
                    "WHERE stream_id = {stream_id} AND version > {after} ORDER BY version"),
    "move_checkpoint": ("UPDATE checkpoints SET position = {new_position}, updated_at_us = {at} "
                        "WHERE name = {cp_name} AND position = {expected}"),
}
_EVENT_COLUMNS = [c.name for c in events.columns]
_RAW["insert"] = "INSERT INTO events (%s) VALUES (%s)" % (
    ", ".join(_EVENT_COLUMNS), ", ".join("{%s}" % c for c in _EVENT_COLUMNS))


def _raw_sql(name: str, sqlite: bool) -> str:
    style = ":%s" if sqlite else "%%(%s)s"
    return _RAW[name].format_map(_Style(style))


class _Style(dict):
    def __init__(self, style):
        super().__init__()
        self.style = style

    def __missing__(self, key):
        return self.style % key


_PARAM_NAMES: list[list[tuple[str, str]]] = []


def _param_names(n_rows: int) -> list[list[tuple[str, str]]]:
    """("payload", "payload_3") pairs per row, built once (formatted on every append otherwise)."""
    while len(_PARAM_NAMES) < n_rows:
        i = len(_PARAM_NAMES)
        _PARAM_NAMES.append([(c, "%s_%d" % (c, i)) for c in _EVENT_COLUMNS])
    return _PARAM_NAMES[:n_rows]


def _fast_insert_sql(n_rows: int, has_tail: bool, checkpoint: bool = False,
                     strict: bool = False) -> str:
    cols = _EVENT_COLUMNS
    values = ", ".join("(%s)" % ", ".join("%%(%s_%d)s" % (c, i) for c in cols) for i in range(n_rows))
    # the last row's hash covers its position and the whole chain before it: if it is
    # the hash we cached, the tail is exactly the row we cached (one backward index step)
    guard = ("(SELECT hash FROM events ORDER BY position DESC LIMIT 1) = %(last_hash)s"
             if has_tail else "NOT EXISTS (SELECT 1 FROM events)")
    insert = ("INSERT INTO events (%s) SELECT * FROM (VALUES %s) AS v WHERE %s"
              % (", ".join(cols), values, guard))
    # lock_timeout is set per connection (shared.db), so the lock needs no SET LOCAL here
    if not checkpoint:
        return "LOCK TABLE events IN EXCLUSIVE MODE; " + insert
    # The inline projections' checkpoint moves in the same statement, and only if the
    # rows went in and it stood exactly where this batch starts (else the caller catches
    # the projections up from the log, as before). Both run under the lock taken first.
    return ("LOCK TABLE events IN EXCLUSIVE MODE; "
            "WITH ins AS (%s RETURNING 1), "
            "cp AS (UPDATE checkpoints SET position = %%(cp_to)s, updated_at_us = %%(cp_at)s "
            "WHERE name = %%(cp_name)s AND position = %%(cp_from)s AND EXISTS (SELECT 1 FROM ins) "
            "RETURNING 1) "
            "SELECT %s" % (insert, _STRICT if strict else
                           "(SELECT count(*) FROM ins), (SELECT count(*) FROM cp)"))


# ``strict``: the statement travels with COMMIT (shared.uow, write-behind), so nothing may
# follow it if the guess was wrong: a division by zero (SQLSTATE 22012) aborts the whole
# transaction when the rows did not go in or the checkpoint did not move.
_STRICT = "1 / (SELECT count(*) FROM cp)"
GUESS_FAILED = "22012"


def chain_hash(prev: str, position: int, event_id: str, stream_id: str, stream_type: str,
               version: int, event_type: str, schema_version: int, payload: str,
               meta: str, recorded_at_us: int) -> str:
    """sha256 over the previous hash and every stored column, length-prefixed so
    that no two different rows can serialise to the same bytes."""
    h = hashlib.sha256()
    for part in (prev, str(position), event_id, stream_id, stream_type, str(version),
                 event_type, str(schema_version), str(recorded_at_us), payload, meta):
        b = part.encode("utf-8")
        h.update(b"%d:" % len(b))
        h.update(b)
    return h.hexdigest()


class _ReplayedEvent(StoredEvent):
    """An event read for a replay into read models, its metadata decoded when a handler
    first asks for it: most handlers never do, and decoding it was a fifth of reading
    an event. Only projection handlers see it (it does not compare equal to a
    ``StoredEvent`` of the same row)."""

    @property
    def metadata(self) -> dict:
        meta = self.__dict__["metadata"]
        if meta.__class__ is str:
            meta = self.__dict__["metadata"] = json.loads(meta)
        return meta

    @metadata.setter
    def metadata(self, value) -> None:
        self.__dict__["metadata"] = value


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_position: int | None = None
    reason: str = ""


class EventStore:
    """Append and read one log. Methods take the caller's connection so the append,
    the projection updates and tracking rows share one transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self._sql = {name: _raw_sql(name, self.sqlite) for name in _RAW}
        self._integrity_errors = (IntegrityError, engine.dialect.dbapi.IntegrityError)
        self._fast_sql: dict[tuple[int, bool], str] = {}
        # (position, hash) of the last row this process appended: see _append_on_cached_tail
        self._tail: tuple[int, str] | None = None

    def create_schema(self, extra: Iterable[MetaData] = ()) -> None:
        for md in (metadata, *extra):
            md.create_all(self.engine)
            # create_all skips a table that exists, and so its indexes: one added to a
            # read model later is made here at start-up, before any request is served
            for table in md.sorted_tables:
                for index in table.indexes:
                    index.create(self.engine, checkfirst=True)

    # -- writing -----------------------------------------------------------------------
    def lock(self, conn: Connection) -> tuple[int, str]:
        """Take the log's writer lock for this transaction; return (last position, last hash)."""
        tail_sql = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"
        try:
            if self.sqlite:
                cur = self._cursor(conn)
                cur.execute(tail_sql)
                row = cur.fetchone()
            else:
                # One round trip: the lock and the tail read travel together (the
                # single-event append is dominated by round trips and the commit).
                row = conn.exec_driver_sql(
                    "LOCK TABLE events IN EXCLUSIVE MODE; %s" % tail_sql).first()
        except OperationalError as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy("系统繁忙（事件日志写锁等待超时），请稍后重试") from exc
            raise
        return (row[0], row[1]) if row else (0, GENESIS)

    def _rows(self, new_events: list[NewEvent], last_position: int, last_hash: str,
              recorded: int) -> tuple[list[dict], list[StoredEvent]]:
        rows, stored = [], []
        dumps = canonical_json
        for i, ev in enumerate(new_events):
            position = last_position + 1 + i
            payload = dumps(ev.payload)
            meta = dumps(ev.metadata)
            last_hash = chain_hash(last_hash, position, ev.event_id, ev.stream_id,
                                   ev.stream_type, ev.version, ev.event_type,
                                   ev.schema_version, payload, meta, recorded)
            rows.append({
                "position": position, "event_id": ev.event_id, "stream_id": ev.stream_id,
                "stream_type": ev.stream_type, "version": ev.version,
                "event_type": ev.event_type, "schema_version": ev.schema_version,
                "payload": payload, "meta": meta, "recorded_at_us": recorded,
                "hash": last_hash,
            })
            stored.append(StoredEvent(position, ev.event_id, ev.stream_id, ev.stream_type,
                                      ev.version, ev.event_type, ev.schema_version,
                                      ev.payload, ev.metadata, recorded, last_hash))
        return rows, stored

    def append(self, conn: Connection, new_events: list[NewEvent],
               recorded_at_us: int | None = None) -> list[StoredEvent]:
        return self.append_moving(conn, new_events, recorded_at_us)[0]

    def append_moving(self, conn: Connection, new_events: list[NewEvent],
                      recorded_at_us: int | None = None, checkpoint: str | None = None,
                      guessed: list[StoredEvent] | None = None) -> tuple[list[StoredEvent], bool]:
        """Append; and if ``checkpoint`` is given, try to move it from just before the
        first new position to the last one in the same round trip (PostgreSQL fast path).
        Returns (stored events, whether the checkpoint was moved). ``guessed``: the events
        ``guess`` returned for these, corrected in place and returned (their holders
        see the real positions)."""
        if not new_events:
            return [], False
        recorded = recorded_at_us or now_us()
        moved = False
        try:
            stored = None
            if not self.sqlite and self._tail is not None and len(new_events) <= FAST_PATH_MAX:
                stored, moved = self._append_on_cached_tail(conn, new_events, recorded, checkpoint,
                                                            guessed)
            if stored is None:
                last_position, last_hash = self.lock(conn)
                rows, stored = self._rows(new_events, last_position, last_hash, recorded)
                if len(rows) == 1:
                    self._execute(conn, self._sql["insert"], rows[0])
                elif not self.sqlite:
                    # a catching-up node's page of replicas: one multi-row INSERT on the
                    # driver's cursor (the lock above began the transaction); through
                    # SQLAlchemy's insertmanyvalues the parameters' handling cost as much
                    from shared.batching import insert_rows
                    insert_rows(conn, events, rows)
                else:
                    conn.execute(_INSERT_EVENTS, rows)
                if guessed is not None:
                    for g, real in zip(guessed, stored):
                        g.position, g.hash = real.position, real.hash
                    stored = guessed
        except self._integrity_errors as exc:
            raise ConcurrencyError(
                "记录 %s 已被他人修改（版本冲突），请重新加载后再试"
                % new_events[0].stream_id
            ) from exc
        if not self.sqlite:
            # Why a cache of the tail is safe: it is only ever a guess that the guarded
            # INSERT checks under the lock (see _append_on_cached_tail); if this
            # transaction rolls back, the next append's guard fails and reads the tail.
            self._tail = (stored[-1].position, stored[-1].hash)
        return stored, moved

    def guess(self, new_events: list[NewEvent], recorded: int):
        """(the events as they would be stored on the cached tail, that tail), computed
        without the database (PostgreSQL; None without a cached tail or for a big batch)."""
        if self.sqlite or self._tail is None or len(new_events) > FAST_PATH_MAX:
            return None
        tail = self._tail
        return self._rows(new_events, *tail, recorded)[1], tail

    def guessed_append_sql(self, guessed: list[StoredEvent], tail: tuple[int, str],
                           checkpoint: str, render) -> str:
        """The strict one-statement append of ``guess``'s events on ``tail``, rendered by
        ``render(sql, params)``: it fails with SQLSTATE ``GUESS_FAILED`` unless the log's
        tail is still ``tail`` and the checkpoint stood just before the first of them."""
        last_position, prev = tail
        params = {"last_hash": prev, "cp_name": checkpoint, "cp_from": last_position,
                  "cp_to": guessed[-1].position, "cp_at": guessed[-1].recorded_at_us}
        dumps = canonical_json
        for names, ev in zip(_param_names(len(guessed)), guessed):
            row = {"position": ev.position, "event_id": ev.event_id, "stream_id": ev.stream_id,
                   "stream_type": ev.stream_type, "version": ev.version,
                   "event_type": ev.event_type, "schema_version": ev.schema_version,
                   "payload": dumps(ev.payload), "meta": dumps(ev.metadata),
                   "recorded_at_us": ev.recorded_at_us, "hash": ev.hash}
            for c, name in names:
                params[name] = row[c]
        key = (len(guessed), bool(last_position), True, True)
        sql = self._fast_sql.get(key)
        if sql is None:
            sql = self._fast_sql[key] = _fast_insert_sql(*key)
        return render(sql, params)

    def forget_tail(self) -> None:
        """The cached tail may name a row that was never committed: read it next time."""
        self._tail = None

    def remember_tail(self, stored: list[StoredEvent]) -> None:
        if stored and not self.sqlite:
            self._tail = (stored[-1].position, stored[-1].hash)

    def _append_on_cached_tail(self, conn, new_events, recorded, checkpoint=None, guessed=None):
        """PostgreSQL fast path: lock and insert in one round trip, guessing the tail.

        Why: a single-event append is dominated by round trips. This process usually
        wrote the last row itself, so it can compute positions and hashes from its
        cached tail and send lock + insert together. The INSERT only takes effect if the
        tail is exactly what we cached (same last position AND same hash - a row we
        cached may have been rolled back and another written at its position); else it
        inserts nothing and, still holding the lock, we fall back to reading the tail.
        Returns (stored or None, checkpoint moved).
        """
        last_position, last_hash = self._tail
        rows, stored = self._rows(new_events, last_position, last_hash, recorded)
        if guessed is not None:  # the holders' objects, with this tail's positions
            for g, real in zip(guessed, stored):
                g.position, g.hash = real.position, real.hash
            stored = guessed
        params = {"last_hash": last_hash}
        for names, row in zip(_param_names(len(rows)), rows):
            for c, name in names:
                params[name] = row[c]
        if checkpoint is not None:
            params.update(cp_name=checkpoint, cp_from=last_position, cp_to=stored[-1].position,
                          cp_at=recorded)
        key = (len(rows), bool(last_position), checkpoint is not None, False)
        sql = self._fast_sql.get(key)
        if sql is None:
            sql = self._fast_sql[key] = _fast_insert_sql(*key)
        try:
            if checkpoint is None:
                inserted, moved = conn.exec_driver_sql(sql, params).rowcount, 0
            else:
                inserted, moved = conn.exec_driver_sql(sql, params).first()
        except OperationalError as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy("系统繁忙（事件日志写锁等待超时），请稍后重试") from exc
            raise
        if inserted != len(rows):
            return None, False
        return stored, bool(moved)

    # -- reading -----------------------------------------------------------------------
    def read_stream_rows(self, conn: Connection, stream_id: str, after_version: int = 0):
        """Raw ``(event_type, version, schema_version, payload_text)`` rows: the reload
        path decodes them itself, without building intermediate objects."""
        return self._execute(conn, self._sql["read_stream"],
                             {"stream_id": stream_id, "after": after_version}).fetchall()

    def stream_version(self, conn: Connection, stream_id: str) -> int:
        return conn.execute(_STREAM_VERSION, {"stream_id": stream_id}).scalar() or 0

    def read_all(self, conn: Connection, after: int = 0, limit: int = 1000,
                 upto_position: int | None = None, until_us: int | None = None,
                 event_types=None, replay: bool = False) -> list[StoredEvent]:
        """Events after a position in log order. ``replay``: read for projection
        handlers (a rebuild, an as-of view) - see ``_ReplayedEvent``."""
        q = select(events).where(events.c.position > after)
        if event_types is not None:
            # replays ask only for what their projections handle: the rest is neither
            # sent nor decoded
            q = q.where(events.c.event_type.in_(sorted(event_types)))
        if upto_position is not None:
            q = q.where(events.c.position <= upto_position)
        if until_us is not None:
            q = q.where(events.c.recorded_at_us <= until_us)
        q = q.order_by(events.c.position).limit(limit)
        loads = json.loads
        # rows unpacked as tuples: a Row's attribute access costs more than the decoding
        # on a replay of a million events
        rows = conn.execute(q).tuples()
        if replay:
            return [
                _ReplayedEvent(position, event_id, stream_id, stream_type, version, event_type,
                               schema_version, loads(payload), meta, recorded_at_us, hash_)
                for (position, event_id, stream_id, stream_type, version, event_type,
                     schema_version, payload, meta, recorded_at_us, hash_) in rows
            ]
        return [
            StoredEvent(position, event_id, stream_id, stream_type, version, event_type,
                        schema_version, loads(payload), loads(meta), recorded_at_us, hash_)
            for (position, event_id, stream_id, stream_type, version, event_type, schema_version,
                 payload, meta, recorded_at_us, hash_) in rows
        ]

    def iter_all(self, conn: Connection, after: int = 0, page: int = 1000,
                 upto_position: int | None = None, until_us: int | None = None,
                 event_types=None, replay: bool = False) -> Iterator[StoredEvent]:
        while True:
            batch = self.read_all(conn, after, page, upto_position, until_us, event_types, replay)
            if not batch:
                return
            yield from batch
            after = batch[-1].position
            if len(batch) < page:
                return

    def head(self, conn: Connection) -> int:
        return conn.execute(select(func.max(events.c.position))).scalar() or 0

    def position_at(self, conn: Connection, until_us: int) -> int:
        """The last position recorded at or before a time (for as-of by date)."""
        return conn.execute(select(func.max(events.c.position))
                            .where(events.c.recorded_at_us <= until_us)).scalar() or 0

    # -- checkpoints ---------------------------------------------------------------------
    def get_checkpoint(self, conn: Connection, name: str) -> int | None:
        return conn.execute(_GET_CHECKPOINT, {"cp_name": name}).scalar()

    def move_checkpoint(self, conn: Connection, name: str, expected: int, position: int,
                        at_us: int) -> bool:
        """Move a checkpoint only if it is at ``expected``; False if it was not."""
        cur = self._execute(conn, self._sql["move_checkpoint"],
                            {"cp_name": name, "expected": expected, "new_position": position,
                             "at": at_us})
        return cur.rowcount == 1

    @staticmethod
    def _cursor(conn: Connection):
        """The driver cursor inside the caller's transaction (SQLAlchemy began it)."""
        return conn.connection.driver_connection.cursor()

    def _execute(self, conn: Connection, sql: str, params):
        """One statement on the driver's cursor; under a PostgreSQL ``Pipeline`` (a unit
        of work) it carries the pipeline's BEGIN and deferred writes in front of it."""
        pipe = None if self.sqlite else Pipeline.of(conn)
        if pipe is not None:
            return pipe.send(sql, params)
        cur = self._cursor(conn)
        cur.execute(sql, params)
        return cur

    def set_checkpoint(self, conn: Connection, name: str, position: int) -> None:
        res = conn.execute(_SET_CHECKPOINT, {"cp_name": name, "cp_position": position,
                                             "cp_at": now_us()})
        if not res.rowcount:
            conn.execute(checkpoints.insert().values(name=name, position=position,
                                                      updated_at_us=now_us()))

    # -- tamper evidence ------------------------------------------------------------------
    def verify(self, conn: Connection, page: int = 5000, progress=None) -> VerifyResult:
        prev, expected_position, checked = GENESIS, 1, 0
        after = 0
        while True:
            rows = conn.execute(
                select(events).where(events.c.position > after)
                .order_by(events.c.position).limit(page)
            ).all()
            if not rows:
                return VerifyResult(True, checked)
            for r in rows:
                if r.position != expected_position:
                    return VerifyResult(False, checked, expected_position,
                                        "position %d is missing" % expected_position)
                h = chain_hash(prev, r.position, r.event_id, r.stream_id, r.stream_type,
                               r.version, r.event_type, r.schema_version, r.payload,
                               r.meta, r.recorded_at_us)
                if h != r.hash:
                    return VerifyResult(False, checked, r.position,
                                        "hash mismatch: row content or chain changed")
                prev, expected_position = r.hash, expected_position + 1
                checked += 1
            after = rows[-1].position
            if progress:
                progress(checked)


def stream_history(conn: Connection, stream: str, record_id: str,
                   stream_id: str | None = None) -> dict:
    """A service's ``history`` query: every event of one record's stream, oldest first
    (who, when, what), payloads as the log holds them; 404 when the stream has none.
    ``stream_id`` defaults to ``stream:record_id`` (``Aggregate.stream_id_for``'s shape)."""
    stream_id = stream_id or "%s:%s" % (stream, record_id)
    rows = EventStore(conn.engine).read_stream_rows(conn, stream_id)
    if not rows:
        raise NotFound("no %s %s" % (stream, record_id))
    return {"stream_id": stream_id, "events": [
        {"type": t, "version": v, "schema_version": sv, "payload": json.loads(p)}
        for t, v, sv, p in rows]}
