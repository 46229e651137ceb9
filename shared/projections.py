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

import gc
import io

from collections import OrderedDict
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from typing import Callable, Iterable

from sqlalchemy import MetaData, Table, and_, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ClauseElement

from shared.db import Pipeline, make_engine, readonly
from shared.events import StoredEvent
from shared.store import EventStore


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
    def event_types(self):
        return self._handlers.keys()

    def handles(self, event_type: str) -> bool:
        return event_type in self._handlers

    def handle(self, w, event: StoredEvent) -> None:
        attr = self._handlers.get(event.event_type)
        if attr is not None:
            getattr(self, attr)(w, event)


def startswith(column, prefix: str):
    """``column LIKE 'prefix%'`` with the prefix's own wildcards escaped."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return column.like(like, escape="\\")


_PRIMARY_KEYS: dict[Table, tuple[str, ...]] = {}


def primary_key(table: Table) -> tuple[str, ...]:
    pk = _PRIMARY_KEYS.get(table)
    if pk is None:  # asked once per row written in a rebuild: computed once per table
        pk = _PRIMARY_KEYS[table] = tuple(c.name for c in table.primary_key.columns)
    return pk


_BLANK_ROWS: dict[Table, dict] = {}


def _blank_row(table: Table) -> dict:
    """Every column of ``table`` at its scalar default (else None), built once per table."""
    row = _BLANK_ROWS.get(table)
    if row is None:
        row = _BLANK_ROWS[table] = {
            c.name: c.default.arg if c.default is not None and c.default.is_scalar else None
            for c in table.columns}
    return row


def _where(table: Table, key: dict):
    return and_(*[table.c[k] == v for k, v in key.items()])


_STATEMENTS: dict[tuple, object] = {}


def _statement(kind: str, table: Table, keys: tuple, cols: tuple, pg: bool = False):
    """Build each statement shape once, with bind parameters ("k_"/"v_" prefixed), and
    reuse it: on the command path constructing SQL costs more than running it."""
    sig = (kind, table.name, id(table), keys, cols, pg)
    stmt = _STATEMENTS.get(sig)
    if stmt is None:
        where = and_(True, *[table.c[k] == bindparam("k_" + k) for k in keys])
        if kind == "get":
            stmt = select(table).where(where)
        elif kind == "update":
            stmt = table.update().where(where).values({c: bindparam("v_" + c) for c in cols})
        elif kind == "delete":
            stmt = delete(table).where(where)
        elif kind == "insert":
            stmt = table.insert().values({c: bindparam("v_" + c) for c in cols})
        _STATEMENTS[sig] = stmt
    return stmt


def _params(key: dict, values: dict) -> dict:
    p = {"k_" + k: v for k, v in key.items()}
    p.update({"v_" + k: v for k, v in values.items()})
    return p


_RENDERED: dict[tuple, tuple[str, bool] | None] = {}


def _rendered(sig: tuple, build, dialect) -> tuple[str, bool] | None:
    """A write statement compiled once to the driver's SQL text, or None if it cannot be
    sent deferred (a column needing SQLAlchemy's bind processing)."""
    hit = _RENDERED.get(sig, False)
    if hit is False:
        compiled = build().compile(dialect=dialect)
        hit = _RENDERED[sig] = None if compiled._bind_processors else (compiled.string, True)
    return hit


def _scalar_defaults(table: Table, values: dict) -> dict | None:
    """``values`` with every omitted column's scalar default filled in (what SQLAlchemy
    would add at execution); None if a column has a callable default."""
    out = dict(values)
    for c in table.columns:
        if c.name in out or c.default is None:
            continue
        if not c.default.is_scalar:
            return None
        out[c.name] = c.default.arg
    return out


class LiveWriter:
    """Writes straight to the database in the caller's transaction.

    ``defer``: on PostgreSQL under a ``shared.db.Pipeline`` (a unit of work), a write is
    rendered and handed to the pipeline, which sends it in front of the next statement
    that needs the database or with COMMIT: a read-model write costs no round trip of
    its own. A read (``get``/``find``) goes through the connection, so every earlier
    write reaches the database before it - a handler reads what it wrote."""

    def __init__(self, conn: Connection, defer: bool = False, sink: list | None = None,
                 remember: bool = False):
        self.conn = conn
        self._pg = conn.dialect.name == "postgresql"
        self._pipe = Pipeline.of(conn) if ((defer or sink is not None) and self._pg) else None
        # ``sink`` (plan_inline): rendered writes are collected here, reads are refused
        self._sink = sink
        # ``remember``: (table, primary key) -> the row as this writer last read or wrote
        # it (None: absent), so a handler reading a row an earlier event of the same
        # commit wrote (a draft published at once: Drafted inserts, Published reads it
        # back) is answered without a SELECT. Only where every write to these tables in
        # the transaction goes through this writer (``apply_inline``'s own writer).
        self._rows: dict[tuple, dict | None] | None = {} if remember else None
        # and, where no pipeline defers the writes (SQLite), its INSERTs are held until
        # the next statement that is not one, or ``flush``: an UPDATE by the full key of
        # a row still held is folded into its INSERT (a draft published at once is one
        # INSERT, not an INSERT and an UPDATE of every column), and consecutive INSERTs
        # into one table go as one executemany. Anything else - a read the remembered
        # rows cannot answer, a delete, an upsert, an update of another row - sends the
        # held INSERTs first, in their order, so every statement sees what came before.
        self._held: list[tuple[Table, dict]] | None = \
            [] if remember and self._pipe is None and sink is None else None

    @property
    def planning(self) -> bool:
        """Only rendering what the events would write (``plan_inline``): the plan may be
        dropped and the events applied live instead, so a handler must not act on the side."""
        return self._sink is not None

    def _deferred(self, sig: tuple, build, params: dict) -> bool:
        if self._pipe is None:
            return False
        rendered = _rendered(sig, build, self.conn.dialect)
        if rendered is None:
            if self._sink is not None:
                raise _NotPlannable()
            return False
        if self._sink is not None:
            self._sink.append(self._pipe.render(rendered[0], params))
        else:
            self._pipe.defer(rendered[0], params)
        return True

    def _read(self):
        if self._sink is not None:
            raise _NotPlannable()

    def _key(self, table: Table, key: dict) -> tuple | None:
        """The remembered-row key of a full primary key, else None."""
        if self._rows is None:
            return None
        pk = primary_key(table)
        if len(key) != len(pk):
            return None
        try:
            return (table,) + tuple(key[c] for c in pk)
        except KeyError:
            return None

    def _forget(self, table: Table) -> None:
        """A write by a partial key (or one whose result is not known): forget the
        table's remembered rows."""
        if self._rows:
            for k in [k for k in self._rows if k[0] is table]:
                del self._rows[k]

    def flush(self) -> None:
        """Send the INSERTs held so far (see ``_held``), in order."""
        held, i = self._held, 0
        if not held:
            return
        self._held = []
        while i < len(held):
            table, values = held[i]
            cols = tuple(values)
            j = i + 1
            while j < len(held) and held[j][0] is table and tuple(held[j][1]) == cols:
                j += 1
            stmt = _statement("insert", table, (), cols)
            if j == i + 1:
                self.conn.execute(stmt, _params({}, values))
            else:
                self.conn.execute(stmt, [_params({}, v) for _t, v in held[i:j]])
            i = j

    def get(self, table: Table, **key) -> dict | None:
        self._read()
        k = self._key(table, key)
        if k is not None and k in self._rows:
            row = self._rows[k]
            return dict(row) if row is not None else None
        self.flush()
        stmt = _statement("get", table, tuple(key), ())
        row = self.conn.execute(stmt, _params(key, {})).mappings().first()
        if k is not None:
            self._rows[k] = dict(row) if row else None
        return dict(row) if row else None

    def find(self, table: Table, **filters) -> list[dict]:
        self._read()
        self.flush()
        q = select(table)
        if filters:
            q = q.where(_where(table, filters))
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def find_prefix(self, table: Table, column: str, prefix: str) -> list[dict]:
        """Rows whose ``column`` starts with ``prefix`` (materialised tree paths)."""
        self._read()
        self.flush()
        q = select(table).where(startswith(table.c[column], prefix))
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def insert(self, table: Table, **values) -> None:
        if self._pipe is not None:
            full = _scalar_defaults(table, values)
            if full is not None:
                cols = tuple(full)
                stmt = _statement("insert", table, (), cols)
                if self._deferred(("insert", id(table), cols), lambda: stmt, _params({}, full)):
                    self._wrote_row(table, values)
                    return
        self._read()  # not deferrable: under a plan that is a refusal
        if self._held is not None and not any(isinstance(v, ClauseElement) for v in values.values()):
            self._held.append((table, dict(values)))
        else:
            self.flush()
            self.conn.execute(_statement("insert", table, (), tuple(values)), _params({}, values))
        self._wrote_row(table, values)

    def _wrote_row(self, table: Table, values: dict) -> None:
        """Remember an inserted row as a SELECT would give it: every column, the
        omitted ones at their scalar defaults (forgotten if one has another default)."""
        if self._rows is None:
            return
        k = self._key(table, {c: values[c] for c in primary_key(table) if c in values})
        if k is None:
            return
        full = _scalar_defaults(table, values)
        if full is None or any(isinstance(v, ClauseElement) for v in values.values()) or any(
                c.server_default is not None and c.name not in values for c in table.columns):
            self._rows.pop(k, None)
            return
        row = dict(_blank_row(table))
        row.update(full)
        self._rows[k] = row

    def upsert(self, table: Table, key: dict, **values) -> None:
        if self._rows:
            self._rows.pop(self._key(table, key), None)
        if self._pipe is not None:
            full = _scalar_defaults(table, {**key, **values})
            if full is not None:
                cols, upd = tuple(full), tuple(values)

                def build():
                    ins = postgresql.insert(table).values({c: bindparam("v_" + c) for c in cols})
                    pk = list(primary_key(table))
                    if upd:
                        return ins.on_conflict_do_update(
                            index_elements=pk, set_={c: bindparam("u_" + c) for c in upd})
                    return ins.on_conflict_do_nothing(index_elements=pk)
                params = _params({}, full)
                params.update({"u_" + c: values[c] for c in upd})
                if self._deferred(("upsert", id(table), cols, upd), build, params):
                    return
        self._read()
        self.flush()
        ins = (postgresql.insert if self._pg else sqlite.insert)(table).values(**key, **values)
        if values:
            ins = ins.on_conflict_do_update(index_elements=list(primary_key(table)), set_=values)
        else:
            ins = ins.on_conflict_do_nothing(index_elements=list(primary_key(table)))
        self.conn.execute(ins)

    def update(self, table: Table, key: dict, **values) -> None:
        held = self._held_insert(table, key, values)
        if held is not None:
            held.update(values)  # the row is not in the database yet: its INSERT says it
        else:
            stmt = _statement("update", table, tuple(key), tuple(values))
            params = _params(key, values)
            if not self._deferred(("update", id(table), tuple(key), tuple(values)), lambda: stmt, params):
                self._read()
                self.flush()
                self.conn.execute(stmt, params)
        if self._rows:
            k = self._key(table, key)
            if k is None:
                self._forget(table)
            elif self._rows.get(k) is not None:
                if any(isinstance(v, ClauseElement) for v in values.values()):
                    del self._rows[k]  # computed by the database: read it back
                else:
                    self._rows[k] = dict(self._rows[k], **values)

    def _held_insert(self, table: Table, key: dict, values: dict) -> dict | None:
        """The values of the held INSERT of the row ``key`` names (its full primary key),
        if an UPDATE of it to plain ``values`` can be folded into it; else None."""
        if not self._held or self._key(table, key) is None or \
                any(isinstance(v, ClauseElement) for v in values.values()):
            return None
        for t, held in reversed(self._held):
            if t is table and all(held.get(c) == v for c, v in key.items()):
                return held
        return None

    def delete(self, table: Table, **key) -> None:
        stmt = _statement("delete", table, tuple(key), ())
        params = _params(key, {})
        if not self._deferred(("delete", id(table), tuple(key)), lambda: stmt, params):
            self._read()
            self.flush()
            self.conn.execute(stmt, params)
        if self._rows:
            k = self._key(table, key)
            if k is None:
                self._forget(table)
            else:
                self._rows[k] = None


class _Buffered:
    """One table's rows in a ``BufferedWriter``, and what it needs to handle them."""

    __slots__ = ("rows", "columns", "index", "blank", "key_of", "pk", "same")

    def __init__(self, table: Table, rows: dict, strings: dict):
        self.rows = rows
        self.same = strings.setdefault  # a string equal to one held already: that one
        self.columns = tuple(c.name for c in table.columns)
        self.index = {c: i for i, c in enumerate(self.columns)}
        blank = _blank_row(table)
        self.blank = [blank[c] for c in self.columns]
        pk = primary_key(table)
        self.key_of = itemgetter(*pk)  # the key of a dict of values (C-level)
        self.pk = frozenset(pk)

    def new(self, values: dict) -> list:
        """A row from ``values``, the other columns at their defaults (a value for no
        column dropped, as ever)."""
        row = self.blank.copy()
        self.set(row, values)
        return row

    def set(self, row: list, values: dict) -> None:
        index, same = self.index, self.same
        for c, v in values.items():
            i = index.get(c)
            if i is not None:
                row[i] = same(v, v) if v.__class__ is str else v

    def as_dict(self, row: list) -> dict:
        return dict(zip(self.columns, row))

    def matches(self, row: list, filters: dict) -> bool:
        index = self.index
        for c, v in filters.items():
            i = index.get(c)
            if (row[i] if i is not None else None) != v:
                return False
        return True


class BufferedWriter:
    """Keeps rows in memory keyed by primary key (its value; a tuple of values for a
    compound key); ``flush`` writes them in bulk.

    A rebuild holds every row until its flush (a district's year: 670,000 rows, 7
    million values), so a row is held compactly: as the list of its column values in
    the table's order, not as a dict (a quarter of the memory; ``get`` and ``find``
    hand out dicts), and a string value as the one equal string already held (decoded
    from each event's JSON, the same dates, units, states and texts were 7 million
    strings, 600,000 of them different). Each table's key getter, column positions and
    blank row are looked up once: a rebuild calls the writer a few times per event, a
    million times over."""

    def __init__(self):
        self.rows: dict[str, dict] = {}  # table name -> key -> row (list)
        self.tables: dict[str, Table] = {}
        self._of: dict[Table, _Buffered] = {}
        self._strings: dict[str, str] = {}

    def _table(self, table: Table) -> _Buffered:
        of = self._of.get(table)
        if of is None:
            rows = self.rows.get(table.name)
            if rows is None:
                rows = self.rows[table.name] = {}
                self.tables[table.name] = table
            of = self._of[table] = _Buffered(self.tables[table.name], rows, self._strings)
        return of

    def get(self, table: Table, **key) -> dict | None:
        t = self._table(table)
        row = t.rows.get(t.key_of(key))
        return t.as_dict(row) if row is not None else None

    def find(self, table: Table, **filters) -> list[dict]:
        t = self._table(table)
        return [t.as_dict(r) for r in t.rows.values() if t.matches(r, filters)]

    def find_prefix(self, table: Table, column: str, prefix: str) -> list[dict]:
        t = self._table(table)
        i = t.index.get(column)
        return [t.as_dict(r) for r in t.rows.values()
                if ((r[i] if i is not None else None) or "").startswith(prefix)]

    def insert(self, table: Table, **values) -> None:
        t = self._table(table)
        t.rows[t.key_of(values)] = t.new(values)

    def upsert(self, table: Table, key: dict, **values) -> None:
        t = self._table(table)
        k = t.key_of(key)
        existing = t.rows.get(k)
        if existing is None:
            t.rows[k] = t.new({**key, **values})
        else:
            t.set(existing, values)

    def update(self, table: Table, key: dict, **values) -> None:
        t = self._table(table)
        if key.keys() == t.pk:
            existing = t.rows.get(t.key_of(key))
            if existing is not None:
                t.set(existing, values)
            return
        for r in t.rows.values():  # update by a non-key filter
            if t.matches(r, key):
                t.set(r, values)

    def delete(self, table: Table, **key) -> None:
        t = self._table(table)
        if t.pk <= key.keys():
            t.rows.pop(t.key_of(key), None)
            return
        for k in [k for k, r in t.rows.items() if t.matches(r, key)]:
            del t.rows[k]

    def flush(self, conn: Connection, tables: Iterable[Table], chunk: int = 5000) -> None:
        """Write the rows of ``tables`` (by name: the tables of another metadata with
        the same columns will do, as ``build_as_of``'s)."""
        for table in tables:
            rows = self.rows.get(table.name)
            if not rows:
                continue
            t = self._table(self.tables[table.name])
            cols = [c.name for c in table.columns]
            held = rows.values()
            if cols != list(t.columns):  # the same columns in another order
                positions = [t.index[c] for c in cols]
                held = [[r[i] for i in positions] for r in held]
            if conn.dialect.name == "postgresql":
                _copy_into(conn, table, held)
                continue
            held = list(held)
            for i in range(0, len(held), chunk):
                conn.execute(table.insert(), [dict(zip(cols, r)) for r in held[i:i + chunk]])


COPY_ROWS = 10_000  # rows whose text one COPY statement carries


def _copy_into(conn: Connection, table: Table, rows: Iterable, name: str | None = None,
               blocking: bool = False) -> None:
    """PostgreSQL bulk load for a rebuild's flush: ``COPY`` where the driver allows it
    (a rebuild of a million events writes its rows several times faster than by
    statements), else psycopg2's execute_values, 1,000 rows per statement (psycopg2
    refuses COPY under eventlet's wait callback, i.e. inside a nameko service; with
    ``blocking`` the callback is set aside for the COPY itself, see below). Values
    go through each column type's bind processing either way (``JSONText``). ``name``:
    another table of the same columns to write into. ``rows``: each row's values in
    the table's column order.

    The rows are processed and turned into text ``COPY_ROWS`` at a time, so only one
    chunk's copy of them is ever held beside the rows themselves (all at once, the
    processed copies and the text of a district's 670,000 rows came to a third of the
    memory of the rows)."""
    import psycopg2.extensions
    from psycopg2.extras import execute_values
    columns = list(table.columns)
    cols = [c.name for c in columns]
    procs = {i: p for i, p in enumerate(c.type.bind_processor(conn.dialect) for c in columns)
             if p is not None}

    def values():
        if not procs:
            yield from rows
            return
        for r in rows:
            t = list(r)
            for i, p in procs.items():
                t[i] = p(t[i])
            yield t

    cur = conn.connection.driver_connection.cursor()
    names = ", ".join('"%s"' % c for c in cols)
    target = name or table.name
    wait = psycopg2.extensions.get_wait_callback()
    try:
        if wait is None or blocking:
            # a value COPY's text form does not take where an INSERT would cast it (3.0
            # into an integer column): the statements below, from the savepoint
            cur.execute("SAVEPOINT copy_into")
            try:
                chunks = iter(rows)
                while True:
                    chunk = list(islice(chunks, COPY_ROWS))
                    if not chunk:
                        break
                    text = _copy_lines(chunk, procs)
                    # ``blocking`` (a catching-up node's page, shared.batching.insert_rows):
                    # the wait callback is unset for the COPY alone, so the whole process
                    # waits for it instead of this green thread only. Safe because nothing
                    # between unsetting and restoring yields: no other green thread can
                    # run, and so none can find the callback missing (native threads here
                    # never use the database). Worth it: for a page's 6,000 rows COPY took
                    # 19 ms of this process's CPU against execute_values' 45 (the text
                    # built here, and no per-value adaptation), and PostgreSQL less too.
                    if wait is not None:
                        psycopg2.extensions.set_wait_callback(None)
                    try:
                        cur.copy_expert('COPY "%s" (%s) FROM STDIN' % (target, names),
                                        io.StringIO(text))
                    finally:
                        if wait is not None:
                            psycopg2.extensions.set_wait_callback(wait)
                cur.execute("RELEASE SAVEPOINT copy_into")
                return
            except psycopg2.DataError:
                cur.execute("ROLLBACK TO SAVEPOINT copy_into")
        execute_values(cur, 'INSERT INTO "%s" (%s) VALUES %%s' % (target, names),
                       values(), page_size=1000)
    finally:
        cur.close()


def _copy_lines(chunk: list, procs: dict) -> str:
    """Rows (sequences of values in column order) as COPY's text, each column's values
    through its type's bind processing (``procs``: by column index) first. Column by
    column: a column of strings none of which needs escaping (most of them), or of
    integers, is converted by a scan in C instead of a call per value (a catching-up
    page's records: 12.5-16.3 -> 8.3-10.4 ms per 1,000 rows in-process)."""
    cols = []
    for i, col in enumerate(zip(*chunk)):
        p = procs.get(i)
        if p is not None:
            col = list(map(p, col))
        kinds = set(map(type, col))
        if kinds == {str}:
            joined = "".join(col)
            if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
                col = list(map(_copy_text, col))
        elif kinds == {int}:
            col = list(map(str, col))
        else:
            col = list(map(_copy_text, col))
        cols.append(col)
    return "\n".join(map("\t".join, zip(*cols))) + "\n"


def _copy_text(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, (int, float)):
        return repr(value)
    s = value if isinstance(value, str) else str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


# -- running projections ---------------------------------------------------------------
def apply_inline(store: EventStore, conn: Connection, projections: list[Projection],
                 new_events: list[StoredEvent], checkpoint: str, writer=None,
                 checkpoint_moved: bool = False) -> None:
    """Bring a service's projections up to the events just appended, in the same
    transaction.

    Runs while the appending transaction still holds the log's writer lock, so no other
    writer can slip events in between. All inline projections of a service move
    together, so they share one checkpoint: the common case is one conditional UPDATE
    per commit, whatever the number of projections - or none, when the append already
    moved it in its own statement (``checkpoint_moved``, see ``EventStore.append_moving``).
    If the checkpoint is not where this batch starts (someone appended without
    projections), they catch up from the log.
    ``writer`` replaces the ``LiveWriter`` (e.g. a ``shared.batching.BatchWriter`` for a
    large batch); it is flushed before returning. The default writer defers its writes
    to the unit of work's pipeline where there is one (``LiveWriter``).
    """
    if not new_events or not projections:
        return
    first, last = new_events[0].position, new_events[-1].position
    w = writer if writer is not None else LiveWriter(conn, defer=True, remember=True)
    if not checkpoint_moved and not store.move_checkpoint(
            conn, checkpoint, first - 1, last, new_events[-1].recorded_at_us):
        cp = store.get_checkpoint(conn, checkpoint) or 0
        _apply(projections, w, store.iter_all(conn, after=cp, upto_position=first - 1))
        store.set_checkpoint(conn, checkpoint, last)
    _apply(projections, w, new_events)
    w.flush()  # a given writer's buffer, or what the LiveWriter held back


class _NotPlannable(Exception):
    """A handler needs the database (a read, or a write that cannot be rendered)."""


def plan_inline(conn: Connection, projections: list[Projection],
                new_events: list[StoredEvent]) -> list[str] | None:
    """The read-model writes these events cause, rendered, without touching the database
    - or None if a handler needs to read it (then the events are applied live). Handlers
    only ever act through their writer, so running them here has no other effect."""
    sink: list[str] = []
    try:
        _apply(projections, LiveWriter(conn, sink=sink), new_events)
    except _NotPlannable:
        return None
    return sink


def _apply(projections: list[Projection], w, events_) -> int:
    n = 0
    for ev in events_:
        for p in projections:
            if ev.event_type in p._handlers:
                p.handle(w, ev)
        n += 1
    return n


def prepare(store: EventStore, projections: list[Projection], checkpoint: str) -> None:
    """Start-up: make every projection current before the service takes requests.

    A projection that has never been built here (or whose ``version`` changed) is
    rebuilt; the others catch up from the shared inline checkpoint to the head.
    """
    with readonly(store.engine.connect()) as conn:
        built = {p.name: store.get_checkpoint(conn, p.checkpoint_name) is not None for p in projections}
        shared = store.get_checkpoint(conn, checkpoint)
    if shared is not None:
        catch_up(store, [p for p in projections if built[p.name]], checkpoint)
    for p in projections:
        if shared is None or not built[p.name]:
            rebuild(store, p, init_checkpoint=checkpoint)


def catch_up(store: EventStore, projections: list[Projection], checkpoint: str) -> int:
    """Apply what was appended after the shared checkpoint (under the writer lock)."""
    with store.engine.begin() as conn:
        head, _ = store.lock(conn)
        cp = store.get_checkpoint(conn, checkpoint) or 0
        if cp >= head:
            return 0
        n = _apply(projections, LiveWriter(conn), store.iter_all(conn, after=cp))
        store.set_checkpoint(conn, checkpoint, head)
    return n


@contextmanager
def _no_cycle_collector():
    """A replay keeps every row it builds (a million events: some 670,000 dicts and what
    they hold) and frees what it decodes by reference counting alone, so the cyclic
    collector finds nothing - but with the heap growing under it, it traverses that heap
    again and again: half the CPU of a million-event rebuild. Off for the replay and the
    flush, back on afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _replay(store: EventStore, conn: Connection, projections, w: BufferedWriter, after: int,
            upto_position: int, until_us=None, progress=None) -> int:
    """Apply the events in (after, upto_position] that these projections handle."""
    # event type -> the projections' handlers of it, in their order: one lookup an event
    handlers: dict[str, list] = {}
    for p in projections:
        for event_type, attr in p._handlers.items():
            handlers.setdefault(event_type, []).append(getattr(p, attr))
    if not handlers:
        return 0
    n = 0
    for ev in store.iter_all(conn, after=after, page=5000, upto_position=upto_position,
                             until_us=until_us, event_types=handlers.keys(), replay=True):
        for handle in handlers[ev.event_type]:
            handle(w, ev)
        n += 1
        if progress and n % 5000 == 0:
            progress(ev.position)
    return n


def rebuild(store: EventStore, projection: Projection, progress: Callable | None = None,
            init_checkpoint: str | None = None) -> int:
    """Rebuild a projection's tables from the whole log; returns the position reached.

    Phase 1 replays into memory without blocking writers. Phase 2 takes the writer
    lock, replays whatever was appended meanwhile, swaps the table contents and moves
    the checkpoint - so writers wait only for the final flush, and the read model is
    never seen half-built (the delete and the inserts commit together).
    """
    return rebuild_many(store, [projection], progress, init_checkpoint)


def rebuild_many(store: EventStore, projections: list[Projection],
                 progress: Callable | None = None, init_checkpoint: str | None = None) -> int:
    """``rebuild`` of several projections in one pass over the log: each event is read
    and decoded once and handed to every projection that handles it (one by one, a
    service of thirteen read models read its million events thirteen times, most of
    the reads scanning past events of other types); one transaction swaps them all."""
    if not projections:
        return 0
    w = BufferedWriter()
    with _no_cycle_collector():
        with readonly(store.engine.connect()) as conn:
            head = store.head(conn)
            _replay(store, conn, projections, w, 0, head, progress=progress)
        with store.engine.begin() as conn:
            last, _ = store.lock(conn)
            _replay(store, conn, projections, w, head, last)
            for projection in projections:
                for table in reversed(projection.tables):
                    conn.execute(delete(table))
            for projection in projections:
                w.flush(conn, projection.tables)
                # the marker says "built, as of this position"; live updates then move the
                # service's shared inline checkpoint (created here on first start)
                store.set_checkpoint(conn, projection.checkpoint_name, last)
            if init_checkpoint and store.get_checkpoint(conn, init_checkpoint) is None:
                store.set_checkpoint(conn, init_checkpoint, last)
    if progress:
        progress(last)
    return last


def build_as_of(store: EventStore, projections: list[Projection], position: int | None = None,
                until_us: int | None = None) -> Engine:
    """Replay the log up to a position or a time into a private in-memory database
    holding the projections' tables; run the usual query functions against it."""
    w = BufferedWriter()
    engine = make_engine("sqlite://")
    md = MetaData()
    unique = {t.name: t for p in projections for t in p.tables}
    tables = [t.to_metadata(md) for t in unique.values()]
    md.create_all(engine)
    with _no_cycle_collector():
        with readonly(store.engine.connect()) as conn:
            upto = position if position is not None else store.head(conn)
            _replay(store, conn, projections, w, 0, upto, until_us=until_us)
        with engine.begin() as conn:
            w.flush(conn, tables)
    return engine


# as-of views already built, newest last: (log, projections, position, time) -> engine
_AS_OF_VIEWS: "OrderedDict[tuple, Engine]" = OrderedDict()
AS_OF_VIEWS_KEPT = 8  # a view of 5,000 units is a few MB


@contextmanager
def as_of_view(store: EventStore, projections: list[Projection], position: int | None = None,
               until_us: int | None = None):
    """A connection to the projections' tables as they stood at a log position or a time.

    The log is append-only, so the view of a position at or below the head never changes:
    it is built once (``build_as_of``) and kept, and the next request for the same
    moment - a dashboard asked again, the next page of a list - reads it from memory
    instead of replaying the log. A position beyond the head is the head (so a view is
    never cached before its events exist)."""
    with readonly(store.engine.connect()) as conn:
        head = store.head(conn)
        upto = head if position is None else min(position, head)
        if until_us is not None:
            upto = min(upto, store.position_at(conn, until_us))
    key = (str(store.engine.url), tuple(t.name for p in projections for t in p.tables), upto, until_us)
    engine = _AS_OF_VIEWS.get(key)
    if engine is None:
        engine = build_as_of(store, projections, position=upto, until_us=until_us)
        _AS_OF_VIEWS[key] = engine
        while len(_AS_OF_VIEWS) > AS_OF_VIEWS_KEPT:
            _AS_OF_VIEWS.popitem(last=False)[1].dispose()
    else:
        _AS_OF_VIEWS.move_to_end(key)
    with engine.connect() as c:
        yield c
