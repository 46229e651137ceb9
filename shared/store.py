"""The event store: one append-only log per service database (SQLAlchemy 2 Core).

Guarantees, and how they are kept:

* **Gap-free positions in commit order.** Positions are not taken from a sequence
  (a rolled-back transaction would leave a hole, and two transactions could commit
  out of sequence order, so a tailing reader that saw 11 before 10 committed would
  skip 10 for ever). Instead a writer takes the log's writer lock inside its own
  transaction and computes ``last position + 1``. The lock is held until commit, so
  the next writer sees this writer's rows or waits: commit order = position order.
  PostgreSQL: ``LOCK TABLE events IN EXCLUSIVE MODE`` (readers, which take ACCESS
  SHARE, are not blocked) with ``lock_timeout`` so a stuck writer makes others fail
  fast with ``StoreBusy`` rather than pile up. SQLite: ``BEGIN IMMEDIATE`` (see
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
    UniqueConstraint, select, func,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.db import is_sqlite
from shared.errors import ConcurrencyError, StoreBusy
from shared.events import NewEvent, StoredEvent, canonical_json, now_us

GENESIS = "0" * 64
LOCK_TIMEOUT = "5s"

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

snapshots = Table(
    "snapshots", metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
)


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

    def create_schema(self, extra: Iterable[MetaData] = ()) -> None:
        metadata.create_all(self.engine)
        for md in extra:
            md.create_all(self.engine)

    # -- writing -----------------------------------------------------------------------
    def lock(self, conn: Connection) -> tuple[int, str]:
        """Take the log's writer lock for this transaction; return (last position, last hash)."""
        tail_sql = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"
        try:
            if self.sqlite:
                row = conn.exec_driver_sql(tail_sql).first()
            else:
                # One round trip: the lock and the tail read travel together (the
                # single-event append is dominated by round trips and the commit).
                row = conn.exec_driver_sql(
                    "SET LOCAL lock_timeout = '%s'; LOCK TABLE events IN EXCLUSIVE MODE; %s"
                    % (LOCK_TIMEOUT, tail_sql)
                ).first()
        except OperationalError as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy("the event log is busy (writer lock timeout); try again") from exc
            raise
        return (row[0], row[1]) if row else (0, GENESIS)

    def append(self, conn: Connection, new_events: list[NewEvent],
               recorded_at_us: int | None = None) -> list[StoredEvent]:
        if not new_events:
            return []
        last_position, last_hash = self.lock(conn)
        recorded = recorded_at_us or now_us()
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
        try:
            conn.execute(events.insert(), rows)
        except IntegrityError as exc:
            raise ConcurrencyError(
                "stream %s was changed by someone else (version conflict); reload and retry"
                % new_events[0].stream_id
            ) from exc
        return stored

    # -- reading -----------------------------------------------------------------------
    def read_stream_rows(self, conn: Connection, stream_id: str, after_version: int = 0):
        """Raw ``(event_type, version, schema_version, payload_text)`` rows: the reload
        path decodes them itself, without building intermediate objects."""
        return conn.execute(
            select(events.c.event_type, events.c.version, events.c.schema_version,
                   events.c.payload)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        ).all()

    def stream_version(self, conn: Connection, stream_id: str) -> int:
        v = conn.execute(select(func.max(events.c.version))
                         .where(events.c.stream_id == stream_id)).scalar()
        return v or 0

    def read_all(self, conn: Connection, after: int = 0, limit: int = 1000,
                 upto_position: int | None = None, until_us: int | None = None
                 ) -> list[StoredEvent]:
        q = select(events).where(events.c.position > after)
        if upto_position is not None:
            q = q.where(events.c.position <= upto_position)
        if until_us is not None:
            q = q.where(events.c.recorded_at_us <= until_us)
        q = q.order_by(events.c.position).limit(limit)
        loads = json.loads
        return [
            StoredEvent(r.position, r.event_id, r.stream_id, r.stream_type, r.version,
                        r.event_type, r.schema_version, loads(r.payload), loads(r.meta),
                        r.recorded_at_us, r.hash)
            for r in conn.execute(q)
        ]

    def iter_all(self, conn: Connection, after: int = 0, page: int = 1000,
                 upto_position: int | None = None, until_us: int | None = None
                 ) -> Iterator[StoredEvent]:
        while True:
            batch = self.read_all(conn, after, page, upto_position, until_us)
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
        return conn.execute(select(checkpoints.c.position)
                            .where(checkpoints.c.name == name)).scalar()

    def set_checkpoint(self, conn: Connection, name: str, position: int) -> None:
        res = conn.execute(checkpoints.update().where(checkpoints.c.name == name)
                           .values(position=position, updated_at_us=now_us()))
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
