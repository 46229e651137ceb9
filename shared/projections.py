"""Read models built from the log: inline on every commit, rebuildable, and "as of".

A projection is a class with SQL tables and handlers:

    class UnitTree(Projection):
        name = "unit_tree"
        tables = (unit_rows,)

        @on("Unit.Registered")
        def registered(self, w, event):
            w.upsert(unit_rows, {"unit_id": event.payload["unit_id"]}, name=...)

Handlers never write SQL themselves; they call the writer ``w``
(``get/find/insert/upsert/update/delete``). The same handler code then runs three ways:

* live, inside the command's transaction (``LiveWriter``: one statement per call),
  so a query right after a command sees its effect;
* rebuilding, against an in-memory buffer flushed in bulk at the end
  (``BufferedWriter``): a full rebuild is a replay plus a few batch inserts;
* as of a past position or time: the same buffer, flushed into a private in-memory
  SQLite database that the ordinary query functions then read.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable

from sqlalchemy import MetaData, Table, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from shared.db import make_engine, readonly
from shared.events import StoredEvent
from shared.store import EventStore, checkpoints


def on(*event_types: str):
    """Mark a projection method as the handler of one or more event types."""
    def deco(fn):
        fn._handles = event_types
        return fn
    return deco


class Projection:
    name: str = ""
    version: int = 1  # bump when the tables' shape or meaning changes: forces a rebuild
    tables: tuple[Table, ...] = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        handlers = {}
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                for t in getattr(fn, "_handles", ()):
                    handlers[t] = attr
        cls._handlers = handlers

    @property
    def checkpoint_name(self) -> str:
        return "projection:%s:v%d" % (self.name, self.version)

    @property
    def event_types(self) -> set[str]:
        return set(self._handlers)

    def handle(self, w, event: StoredEvent) -> None:
        attr = self._handlers.get(event.event_type)
        if attr is not None:
            getattr(self, attr)(w, event)


def startswith(column, prefix: str):
    """``column LIKE 'prefix%'`` with the prefix's own wildcards escaped."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return column.like(like, escape="\\")


def _pk(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.primary_key.columns)


def _where(table: Table, key: dict):
    return and_(*[table.c[k] == v for k, v in key.items()])


class LiveWriter:
    """Writes straight to the database in the caller's transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._pg = conn.dialect.name == "postgresql"

    def get(self, table: Table, **key) -> dict | None:
        row = self.conn.execute(select(table).where(_where(table, key))).mappings().first()
        return dict(row) if row else None

    def find(self, table: Table, **filters) -> list[dict]:
        q = select(table)
        if filters:
            q = q.where(_where(table, filters))
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def find_prefix(self, table: Table, column: str, prefix: str) -> list[dict]:
        """Rows whose ``column`` starts with ``prefix`` (materialised tree paths)."""
        q = select(table).where(startswith(table.c[column], prefix))
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def insert(self, table: Table, **values) -> None:
        self.conn.execute(table.insert().values(**values))

    def upsert(self, table: Table, key: dict, **values) -> None:
        ins = (postgresql.insert if self._pg else sqlite.insert)(table).values(**key, **values)
        if values:
            ins = ins.on_conflict_do_update(index_elements=list(_pk(table)), set_=values)
        else:
            ins = ins.on_conflict_do_nothing(index_elements=list(_pk(table)))
        self.conn.execute(ins)

    def update(self, table: Table, key: dict, **values) -> None:
        self.conn.execute(table.update().where(_where(table, key)).values(**values))

    def delete(self, table: Table, **key) -> None:
        self.conn.execute(delete(table).where(_where(table, key)))


class BufferedWriter:
    """Keeps rows in dicts keyed by primary key; ``flush`` writes them in bulk."""

    def __init__(self):
        self.rows: dict[str, dict[tuple, dict]] = {}
        self.tables: dict[str, Table] = {}

    def _rows(self, table: Table) -> dict[tuple, dict]:
        rows = self.rows.get(table.name)
        if rows is None:
            rows = self.rows[table.name] = {}
            self.tables[table.name] = table
        return rows

    @staticmethod
    def _key(table: Table, values: dict) -> tuple:
        return tuple(values[c] for c in _pk(table))

    def get(self, table: Table, **key) -> dict | None:
        row = self._rows(table).get(self._key(table, key))
        return dict(row) if row is not None else None

    def find(self, table: Table, **filters) -> list[dict]:
        return [dict(r) for r in self._rows(table).values()
                if all(r.get(k) == v for k, v in filters.items())]

    def find_prefix(self, table: Table, column: str, prefix: str) -> list[dict]:
        return [dict(r) for r in self._rows(table).values()
                if (r.get(column) or "").startswith(prefix)]

    def _complete(self, table: Table, values: dict) -> dict:
        row = {}
        for c in table.columns:
            if c.name in values:
                row[c.name] = values[c.name]
            elif c.default is not None and c.default.is_scalar:
                row[c.name] = c.default.arg
            else:
                row[c.name] = None
        return row

    def insert(self, table: Table, **values) -> None:
        self._rows(table)[self._key(table, values)] = self._complete(table, values)

    def upsert(self, table: Table, key: dict, **values) -> None:
        rows = self._rows(table)
        k = self._key(table, key)
        existing = rows.get(k)
        if existing is None:
            rows[k] = self._complete(table, {**key, **values})
        else:
            existing.update(values)

    def update(self, table: Table, key: dict, **values) -> None:
        rows = self._rows(table)
        if len(key) == len(_pk(table)) and all(c in key for c in _pk(table)):
            existing = rows.get(self._key(table, key))
            if existing is not None:
                existing.update(values)
            return
        for r in rows.values():  # update by a non-key filter
            if all(r.get(c) == v for c, v in key.items()):
                r.update(values)

    def delete(self, table: Table, **key) -> None:
        rows = self._rows(table)
        if all(c in key for c in _pk(table)):
            rows.pop(self._key(table, key), None)
            return
        for k in [k for k, r in rows.items() if all(r.get(c) == v for c, v in key.items())]:
            del rows[k]

    def flush(self, conn: Connection, tables: Iterable[Table], chunk: int = 5000) -> None:
        for table in tables:
            rows = list(self.rows.get(table.name, {}).values())
            for i in range(0, len(rows), chunk):
                conn.execute(table.insert(), rows[i:i + chunk])


# -- running projections ---------------------------------------------------------------
def apply_inline(store: EventStore, conn: Connection, projections: Iterable[Projection],
                 new_events: list[StoredEvent]) -> None:
    """Bring each projection up to the events just appended, in the same transaction.

    Runs while the appending transaction still holds the log's writer lock, so no
    other writer can slip events in between the checkpoint and ours. The common case
    is one conditional UPDATE of the checkpoint; a projection that is behind (new, or
    its checkpoint lost) catches up from the log first.
    """
    if not new_events:
        return
    first, last = new_events[0].position, new_events[-1].position
    w = LiveWriter(conn)
    for p in projections:
        name = p.checkpoint_name
        moved = conn.execute(
            checkpoints.update()
            .where(checkpoints.c.name == name, checkpoints.c.position == first - 1)
            .values(position=last, updated_at_us=new_events[-1].recorded_at_us)
        ).rowcount
        if not moved:
            cp = store.get_checkpoint(conn, name) or 0
            for ev in store.iter_all(conn, after=cp, upto_position=first - 1):
                p.handle(w, ev)
            store.set_checkpoint(conn, name, last)
        for ev in new_events:
            p.handle(w, ev)


def catch_up(store: EventStore, projection: Projection) -> int:
    """Start-up: a projection with no checkpoint is rebuilt; one behind catches up."""
    with readonly(store.engine.connect()) as conn:
        cp = store.get_checkpoint(conn, projection.checkpoint_name)
    if cp is None:
        return rebuild(store, projection)
    with store.engine.begin() as conn:
        store.lock(conn)
        cp = store.get_checkpoint(conn, projection.checkpoint_name) or 0
        w, n, last = LiveWriter(conn), 0, cp
        for ev in store.iter_all(conn, after=cp):
            projection.handle(w, ev)
            n, last = n + 1, ev.position
        if n:
            store.set_checkpoint(conn, projection.checkpoint_name, last)
    return n


def _replay(store: EventStore, conn: Connection, projections, w: BufferedWriter, after: int,
            upto_position=None, until_us=None, progress=None) -> tuple[int, int]:
    n, last = 0, after
    types = set().union(*(p.event_types for p in projections)) if projections else set()
    for ev in store.iter_all(conn, after=after, page=5000, upto_position=upto_position,
                             until_us=until_us):
        last = ev.position
        if ev.event_type in types:
            for p in projections:
                p.handle(w, ev)
        n += 1
        if progress and n % 5000 == 0:
            progress(n)
    return n, last


def rebuild(store: EventStore, projection: Projection, progress: Callable | None = None) -> int:
    """Rebuild a projection's tables from the whole log.

    Phase 1 replays into memory without blocking writers. Phase 2 takes the writer
    lock, replays whatever was appended meanwhile, swaps the table contents and moves
    the checkpoint - so writers wait only for the final flush, and the read model is
    never seen half-built (the delete and the inserts commit together).
    """
    w = BufferedWriter()
    with readonly(store.engine.connect()) as conn:
        n, last = _replay(store, conn, [projection], w, 0, progress=progress)
    with store.engine.begin() as conn:
        store.lock(conn)
        m, last = _replay(store, conn, [projection], w, last)
        for table in reversed(projection.tables):
            conn.execute(delete(table))
        w.flush(conn, projection.tables)
        store.set_checkpoint(conn, projection.checkpoint_name, last)
    if progress:
        progress(n + m)
    return n + m


def build_as_of(store: EventStore, projections: list[Projection], position: int | None = None,
                until_us: int | None = None) -> Engine:
    """Replay the log up to a position or a time into a private in-memory database
    holding the projections' tables; run the usual query functions against it."""
    w = BufferedWriter()
    with readonly(store.engine.connect()) as conn:
        _replay(store, conn, projections, w, 0, upto_position=position, until_us=until_us)
    engine = make_engine("sqlite://")
    md = MetaData()
    unique = {t.name: t for p in projections for t in p.tables}
    tables = [t.to_metadata(md) for t in unique.values()]
    md.create_all(engine)
    with engine.begin() as conn:
        w.flush(conn, tables)
    return engine
