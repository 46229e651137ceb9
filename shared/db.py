"""Engines for the two back-ends, and throw-away databases for tests and benchmarks."""
from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Text, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from shared.events import json_encoder


class JSONText(TypeDecorator):
    """A read-model column holding a JSON value (a list, a dict...), stored as ``TEXT``.

    Handlers and queries pass and get the values themselves; the column type serialises
    them (UTF-8 as is, keys in the order given) and parses them back, so no projection or
    query calls ``json.dumps``/``json.loads`` by hand.

    Why ``TEXT`` underneath and not SQLAlchemy's ``JSON`` DDL: on PostgreSQL that is
    ``json``, which has no equality operator (``DISTINCT``, ``UNION``, ``GROUP BY`` and
    ``=`` on such a column fail), and psycopg2 decodes only real ``json`` columns - the
    read models of every existing node are ``TEXT`` (``create_all`` never alters a
    table, not in a rebuild either), so their rows would come back as strings. With
    ``TEXT``, an existing node's rows read as before, a new or rebuilt node's tables are
    the same as an old one's, and the in-memory rebuild and "as of" engines (SQLite)
    hold the same text.

    The text is ``json.dumps(value, ensure_ascii=False)`` unless told otherwise: a column
    that was written by hand in another form declares that form (``sort_keys``,
    ``ensure_ascii``, ``compact`` - ``shared.events.canonical_json`` is
    ``JSONText(sort_keys=True, compact=True)``), so what it stores stays byte for byte what
    it stored before: rows an older node wrote and rows written now compare, group and
    hash the same in SQL, and no read model has to be rebuilt.
    """

    impl = Text
    cache_ok = True

    def __init__(self, sort_keys: bool = False, ensure_ascii: bool = False, compact: bool = False):
        super().__init__()
        # attributes named as the arguments: SQLAlchemy builds the type's cache key from them
        self.sort_keys, self.ensure_ascii, self.compact = sort_keys, ensure_ascii, compact
        # built once (shared.events.json_encoder): paid per row a rebuild writes
        self._encode = json_encoder(sort_keys, ensure_ascii, compact)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return self._encode(value)

    def bind_processor(self, dialect):
        # process_bind_param without TypeDecorator's wrapper around it (Text has no
        # processor of its own): one call less per value, and bulk writes (a page's
        # COPY, a rebuild's flush) process every JSON value of every row
        encode = self._encode

        def process(value):
            return None if value is None else encode(value)
        return process

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)

    def process_literal_param(self, value, dialect):
        return self.process_bind_param(value, dialect)


def is_sqlite(engine_or_url) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(str(engine_or_url))
    return url.get_backend_name() == "sqlite"


LOCK_TIMEOUT = "5s"


def make_engine(url: str, lock_timeout: str = LOCK_TIMEOUT, **kw) -> Engine:
    """An engine whose transactions suit the event store.

    SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` so two writers
    never both read the log's tail and then race to upgrade to a write lock (that
    would be SQLITE_BUSY mid-transaction, or worse, two rows computed from one tail).
    Read-only work passes ``execution_options(sqlite_readonly=True)`` and gets a plain
    deferred ``BEGIN``. WAL lets readers run beside the one writer.
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        # Writers wait at most 5 s for the log's writer lock (shared.store): a stuck
        # transaction then fails the others fast (StoreBusy, 503) instead of piling up.
        # Set per connection so no statement pays a SET round trip.
        connect_args = kw.pop("connect_args", {})
        connect_args.setdefault("options", "-c lock_timeout=%s" % lock_timeout)
        kw["connect_args"] = connect_args
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 20)
        # No pre-ping: it is a round trip on every checkout, i.e. on every command. A
        # connection that died (database restart) fails one request with a clear error
        # and is discarded by the pool; recycling bounds how old a connection gets.
        kw.setdefault("pool_recycle", 1800)
        engine = create_engine(url, **kw)
        event.listen(engine, "before_cursor_execute", _through_pipeline, retval=True)
        return engine

    memory = u.database in (None, "", ":memory:")
    if memory:
        # one connection shared by every greenthread, or each would see its own empty db
        kw.setdefault("poolclass", StaticPool)
    else:
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = kw.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30)
    engine = create_engine(url, connect_args=connect_args, **kw)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL" if not memory else "PRAGMA synchronous=OFF")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # straight to the driver: this runs for every unit of work
        raw = conn.connection.driver_connection
        raw.execute("BEGIN" if conn.get_execution_options().get("sqlite_readonly") else "BEGIN IMMEDIATE")

    return engine


class Pipeline:
    """A PostgreSQL unit of work that sends fewer round trips (see ``shared.uow``).

    psycopg2 normally sends ``BEGIN`` on its own before a transaction's first statement
    and ``COMMIT`` on its own at the end, and each read-model write is one more round
    trip: on a loaded machine each of those waits for the database process to be
    scheduled, and a command paid six. Under a pipeline the driver connection is in
    autocommit mode and this object opens and closes the transaction itself:

    * ``BEGIN`` travels in front of the transaction's first statement;
    * writes whose answer nobody reads (read-model updates) are kept, already rendered,
      and sent in front of the next statement that needs the database - or with
      ``COMMIT`` - so the order the database sees is the order they were made.

    Why this keeps the transaction's guarantees: every statement of the unit of work
    still runs between one BEGIN and one COMMIT on one connection, in issue order; a
    deferred write that fails makes the statement it travels with fail (the unit of
    work then rolls back, as it would have). Only statements issued through the
    SQLAlchemy connection or ``send`` are covered, so code that wants the driver's
    cursor inside a unit of work must go through ``send`` (``EventStore`` does).
    """

    KEY = "qinglian.pipeline"

    def __init__(self, raw):
        self.raw = raw
        self.begun = False
        self.deferred: list[str] = []
        # has this transaction written anything yet (deferred or sent)?
        self.wrote = False
        # an append planned but not sent (``shared.uow``, write-behind): a callable that
        # sends it; run before any other statement, so whatever follows runs under the
        # log's writer lock exactly as if the append had been sent when it was made
        self.pending = None

    @classmethod
    def of(cls, conn) -> "Pipeline | None":
        return conn.info.get(cls.KEY)

    def render(self, sql: str, params) -> str:
        return self.raw.cursor().mogrify(sql, params).decode()

    def defer(self, sql: str, params) -> None:
        self.deferred.append(self.render(sql, params))
        self.wrote = True

    def _prefix(self) -> str:
        parts = [] if self.begun else ["BEGIN"]
        parts.extend(self.deferred)
        self.begun, self.deferred = True, []
        return "; ".join(parts)

    def before(self, statement: str, parameters, executemany: bool = False) -> str:
        """The statement to send instead of ``statement`` (with BEGIN and deferred writes)."""
        if self.pending is not None:
            send_pending, self.pending = self.pending, None
            send_pending()
        if not self.wrote and _writes_or_locks(statement):
            self.wrote = True
        if self.begun and not self.deferred:
            return statement
        prefix = self._prefix()
        if executemany or "%" in prefix:
            # a prefix cannot ride on an executemany (it would run once per row), nor be
            # pasted before a statement the driver may %-format (a rendered value holding
            # "%" would be read as a placeholder): it goes on its own
            self.raw.cursor().execute(prefix)
            return statement
        return prefix + "; " + statement

    def send(self, sql: str, params=None):
        """Run one statement on the driver's cursor under the pipeline; returns the cursor."""
        cur = self.raw.cursor()
        cur.execute(self.before(sql, params), params)
        return cur

    def commit(self, *last: str) -> None:
        """COMMIT, with the deferred writes and ``last`` (rendered statements) in front of
        it: one round trip. On an error the transaction is rolled back and it is raised."""
        if self.pending is not None:
            raise AssertionError("an append is still pending at COMMIT")
        if self.begun or self.deferred or last:
            sql = "; ".join(([] if self.begun else ["BEGIN"]) + self.deferred + list(last) + ["COMMIT"])
            self.begun, self.deferred = True, []
            try:
                self.raw.cursor().execute(sql)
            except BaseException:
                self.rollback()
                raise
        self.begun, self.deferred, self.wrote = False, [], False

    def rollback(self) -> None:
        self.deferred, self.pending, self.wrote = [], None, False
        if self.begun:
            self.begun = False
            self.raw.cursor().execute("ROLLBACK")


def _writes_or_locks(statement: str) -> bool:
    """Anything but a plain read counts as writing: a row lock (FOR UPDATE/SHARE) or an
    advisory lock taken in the transaction would be lost if write-behind had to redo
    the append in a new one (``shared.uow``)."""
    head = statement.lstrip()[:6].upper()
    if head != "SELECT":
        return True
    upper = statement.upper()
    return " FOR UPDATE" in upper or " FOR SHARE" in upper or "ADVISORY" in upper


def _through_pipeline(conn, cursor, statement, parameters, context, executemany):
    pipe = conn.info.get(Pipeline.KEY)
    if pipe is not None:
        statement = pipe.before(statement, parameters, executemany)
    return statement, parameters


@contextmanager
def pipelined(conn):
    """Run a PostgreSQL transaction on ``conn`` (a fresh SQLAlchemy connection, nothing
    executed yet) under a ``Pipeline``; yields it. Commits on success, rolls back on error.
    The connection goes back to the pool in the driver's ordinary (non-autocommit) mode."""
    raw = conn.connection.driver_connection
    raw.autocommit = True  # no BEGIN of the driver's own: the pipeline sends it with the first statement
    pipe = Pipeline(raw)
    conn.info[Pipeline.KEY] = pipe
    try:
        yield pipe
        pipe.commit()
    except BaseException:
        try:
            pipe.rollback()
        except Exception:  # the connection itself failed: the pool discards it
            conn.invalidate()
        raise
    finally:
        conn.info.pop(Pipeline.KEY, None)
        if not conn.invalidated:
            raw.autocommit = False


def readonly(conn):
    """Mark a connection as read-only (SQLite: deferred BEGIN; PostgreSQL: no-op)."""
    return conn.execution_options(sqlite_readonly=True)


# -- throw-away PostgreSQL databases ---------------------------------------------------
def _admin_engine(server_url: str) -> Engine:
    u = make_url(server_url).set(database="postgres")
    return create_engine(u, isolation_level="AUTOCOMMIT", poolclass=None)


def create_database(server_url: str, prefix: str = "qlt") -> str:
    """Create a uniquely named database on the server of ``server_url``; return its URL."""
    name = "%s_%s" % (prefix, uuid.uuid4().hex[:12])
    admin = _admin_engine(server_url)
    with admin.connect() as c:
        c.execute(text('CREATE DATABASE "%s"' % name))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    u = make_url(url)
    admin = _admin_engine(url)
    with admin.connect() as c:
        c.execute(text('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % u.database))
    admin.dispose()
