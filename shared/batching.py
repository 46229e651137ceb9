"""Applying a batch of events to the read models with few statements.

The exchange service's catching-up node applies replicas a thousand at a time, in one
transaction. Through
the kernel's ``LiveWriter`` every ``insert``/``get`` is its own statement (~50 µs each
in SQLAlchemy here, five per received record): that alone caps catch-up at about
4,000 events/s. ``BatchWriter`` offers the same writer interface to the same projection
handlers, but

* keeps inserted rows in memory and writes them with one bulk insert per table at
  ``flush`` (``insert_rows``; inside the same transaction, before commit);
* answers ``get`` from those rows, or from rows ``prefetch``-ed in one ``IN`` query
  for the batch's record ids, or else from the database;
* runs everything else (updates of rows already in the database, deletes by a
  partial key, ``find``, ``upsert``) as the ``LiveWriter`` would, after flushing what
  is pending for that table, so that no statement can miss a pending row.

The result is the one ``LiveWriter`` gives (tests apply the same events both ways and
compare the tables); rows reach the database later within the transaction, which no
handler can observe. Pass one to ``UnitOfWork.append_events(..., writer=...)``;
ordinary commands keep the ``LiveWriter``.
"""
from __future__ import annotations

from operator import itemgetter

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from shared.projections import LiveWriter, _copy_into, primary_key

_PKS: dict[int, tuple[str, ...]] = {}


_BLANKS: dict[int, dict] = {}
_INSERTS: dict[tuple, tuple] = {}
_PROCESSORS: dict[tuple, dict] = {}
_PREFETCH: dict[tuple, tuple] = {}


def one_of(column, dialect) -> tuple[object, int]:
    """(a condition "``column`` is one of the bound ``ids``", how many ids to bind at a
    time). On PostgreSQL ``column = ANY(:ids)``: one array parameter, which the driver
    adapts in C, where an expanding ``IN`` is rendered by SQLAlchemy with a parameter
    per id on every execution (0.7 against 1.3-1.5 ms for 500 ids); SQLite has no
    arrays, and caps a statement's parameters: ``IN``, 500 at a time."""
    if dialect.name == "postgresql":
        from sqlalchemy import func
        from sqlalchemy.dialects.postgresql import ARRAY
        return column == func.any(bindparam("ids", type_=ARRAY(column.type))), 5000
    return column.in_(bindparam("ids", expanding=True)), 500


def _prefetch_sql(table: Table, col: str, dialect) -> tuple[object, int]:
    """``SELECT * FROM table WHERE col`` is one of the ids (``one_of``), built once per
    table and dialect: every applied batch prefetches, and a batch of one record paid
    for building it each time."""
    key = (id(table), dialect.name)
    hit = _PREFETCH.get(key)
    if hit is None:
        cond, per = one_of(table.c[col], dialect)
        hit = _PREFETCH[key] = (select(table).where(cond), per)
    return hit


def _blank(table: Table) -> dict:
    """Every column with its default: what a row is before ``insert`` fills it in."""
    row = _BLANKS.get(id(table))
    if row is None:
        row = _BLANKS[id(table)] = {
            c.name: (c.default.arg if c.default is not None and c.default.is_scalar else None)
            for c in table.columns}
    return row


def _insert_sql(table: Table, dialect) -> tuple[str, list[str], bool]:
    """The driver-level INSERT of every column, compiled once per table and dialect."""
    key = (id(table), dialect.name)
    hit = _INSERTS.get(key)
    if hit is None:
        compiled = table.insert().values({c.name: c.name for c in table.columns}).compile(
            dialect=dialect, column_keys=[c.name for c in table.columns])
        names = list(compiled.positiontup or []) if compiled.positional else \
            [c.name for c in table.columns]
        hit = _INSERTS[key] = (str(compiled), names, bool(compiled.positional))
    return hit


def _bind_processors(table: Table, dialect) -> dict:
    """What SQLAlchemy would do to a value of the project's own column types before the
    driver sees it (``shared.db.JSONText`` serialises there), once per table and dialect;
    the built-in types' processors do what the driver does anyway, and this is the hot
    path of a batch."""
    key = (id(table), dialect.name)
    procs = _PROCESSORS.get(key)
    if procs is None:
        procs = _PROCESSORS[key] = {
            c.name: p for c in table.columns if isinstance(c.type, TypeDecorator)
            and (p := c.type.bind_processor(dialect)) is not None}
    return procs


def _values(rows: list[dict], names: list[str], procs: dict) -> list:
    """Each row's values in ``names``' order, the column types' serialisation applied:
    one C-level ``itemgetter`` per row, and a call only for the columns that have a
    processor (copying each row dict with its processed values, as before, was ~6 % of
    a catching-up node's applying). The caller's rows are not changed (read back)."""
    get = itemgetter(*names)
    out = [get(r) for r in rows] if len(names) > 1 else [(r[names[0]],) for r in rows]
    at = [(i, procs[n]) for i, n in enumerate(names) if n in procs]
    if at:
        for k, t in enumerate(out):
            t = list(t)
            for i, p in at:
                t[i] = p(t[i])
            out[k] = t
    return out


# from this many rows a PostgreSQL insert goes by COPY (a catching-up node's page):
# below it, the savepoint around the COPY and the process-wide wait cost more than the
# statement's quoting (a live consumer's batch is a record or a few)
COPY_MIN_ROWS = 200


def insert_rows(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Insert ``rows`` (every column given) on the driver's cursor, inside the
    connection's transaction: going through SQLAlchemy costs more per row than SQLite's
    insert itself. On PostgreSQL one multi-row INSERT per 1,000 rows (psycopg2's
    ``execute_values``): its ``executemany`` is one statement, and one round trip, per
    row - on a busy machine a catching-up node's 4,000 rows a page took 10-45 s so;
    from ``COPY_MIN_ROWS`` rows by COPY (``shared.projections._copy_into``, even under
    eventlet), which costs this process less than half the CPU of building those
    statements."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        names = [c.name for c in table.columns]
        get = itemgetter(*names)
        # (the column types' processing is _copy_into's)
        _copy_into(conn, table, [get(r) for r in rows], blocking=True)
        return
    sql, names, positional = _insert_sql(table, conn.dialect)
    procs = _bind_processors(table, conn.dialect)
    cur = conn.connection.driver_connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            from psycopg2.extras import execute_values
            quote = conn.dialect.identifier_preparer.quote
            execute_values(cur, "INSERT INTO %s (%s) VALUES %%s" % (
                quote(table.name), ", ".join(quote(n) for n in names)),
                _values(rows, names, procs), page_size=1000)
        elif positional:
            cur.executemany(sql, _values(rows, names, procs))
        else:  # new dicts: the caller's rows stay as handlers wrote them (they are read back)
            cur.executemany(sql, [{**r, **{n: p(r[n]) for n, p in procs.items()}} for r in rows]
                            if procs else rows)
    finally:
        cur.close()


def _pk(table: Table) -> tuple[str, ...]:
    """The table's primary-key column names (cached: asked for on every call)."""
    cols = _PKS.get(id(table))
    if cols is None:
        cols = _PKS[id(table)] = primary_key(table)
    return cols


class BatchWriter:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.live = LiveWriter(conn)
        # table name -> {pk tuple: row dict} inserted, not yet written (insertion order)
        self.pending: dict[str, dict[tuple, dict]] = {}
        self.tables: dict[str, Table] = {}
        # table name -> {pk tuple: row dict or None}: known database state
        self.known: dict[str, dict[tuple, dict | None]] = {}

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _pk_of(table: Table, values: dict) -> tuple | None:
        cols = _pk(table)
        if set(values) >= set(cols) and len(values) == len(cols):
            return tuple(values[c] for c in cols)
        return None

    def _flush_table(self, table: Table) -> None:
        rows = self.pending.pop(table.name, None)
        if not rows:
            return
        insert_rows(self.conn, table, list(rows.values()))
        # written rows are database state now
        known = self.known.setdefault(table.name, {})
        for key, row in rows.items():
            known[key] = row

    def flush(self) -> None:
        for name in list(self.pending):
            self._flush_table(self.tables[name])

    def prefetch(self, table: Table, ids) -> None:
        """Load the rows of a single-column-key table for these ids in one query;
        ids not found are remembered as absent."""
        (col,) = _pk(table)
        ids = sorted(set(i for i in ids if i is not None))
        known = self.known.setdefault(table.name, {})
        stmt, per = _prefetch_sql(table, col, self.conn.dialect)
        for i in range(0, len(ids), per):
            chunk = ids[i:i + per]
            found = {r[col]: dict(r) for r in self.conn.execute(stmt, {"ids": chunk}).mappings()}
            for rid in chunk:
                known[(rid,)] = found.get(rid)

    # -- the writer interface --------------------------------------------------------------
    def get(self, table: Table, **key) -> dict | None:
        pk = self._pk_of(table, key)
        if pk is not None:
            pending = self.pending.get(table.name, {})
            if pk in pending:
                return dict(pending[pk])
            known = self.known.get(table.name, {})
            if pk in known:
                row = known[pk]
                return dict(row) if row is not None else None
        self._flush_table(table)
        return self.live.get(table, **key)

    def insert(self, table: Table, **values) -> None:
        # (a catching-up page inserts 4,000 rows here: no generator, no setdefault's
        # spare dict, the row built in one step)
        name, cols = table.name, _pk(table)
        pk = (values.get(cols[0]),) if len(cols) == 1 else tuple([values.get(c) for c in cols])
        self.tables[name] = table
        pending = self.pending.get(name)
        if pending is None:
            pending = self.pending[name] = {}
        known = self.known.get(name)
        if pk in pending or (known is not None and known.get(pk) is not None):
            # what LiveWriter would raise at once: a duplicate key
            self._flush_table(table)
            self.live.insert(table, **values)
            return
        pending[pk] = {**_blank(table), **values}

    def update(self, table: Table, key: dict, **values) -> None:
        pk = self._pk_of(table, key)
        pending = self.pending.get(table.name, {})
        if pk is not None and pk in pending:
            pending[pk].update(values)
            return
        if pk is None:
            self._flush_table(table)
        self.live.update(table, key, **values)
        known = self.known.get(table.name, {})
        if pk is not None and known.get(pk) is not None:
            known[pk] = dict(known[pk], **values)
        elif pk is None:
            known.clear()  # a multi-row update: forget what we thought we knew

    def delete(self, table: Table, **key) -> None:
        pk = self._pk_of(table, key)
        pending = self.pending.get(table.name, {})
        if pk is not None:
            pending.pop(pk, None)
        else:
            self._flush_table(table)
        self.live.delete(table, **key)
        known = self.known.get(table.name, {})
        if pk is not None:
            known[pk] = None
        else:
            known.clear()

    def upsert(self, table: Table, key: dict, **values) -> None:
        self._flush_table(table)
        self.live.upsert(table, key, **values)
        self.known.get(table.name, {}).pop(self._pk_of(table, key), None)

    def find(self, table: Table, **filters) -> list[dict]:
        self._flush_table(table)
        return self.live.find(table, **filters)

    def find_prefix(self, table: Table, column: str, prefix: str) -> list[dict]:
        self._flush_table(table)
        return self.live.find_prefix(table, column, prefix)
