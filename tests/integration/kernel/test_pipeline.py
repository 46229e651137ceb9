"""The PostgreSQL command path (issue 13 §3): a unit of work sends BEGIN with its first
statement; the append, the inline checkpoint's move and the read-model writes travel
with COMMIT (write-behind) - two round trips for load, append, update - or, when a
statement follows the append, in front of it; every guarantee of one transaction holds."""
import psycopg2.extensions as ext
import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select, text

from shared.aggregate import Aggregate
from shared.db import make_engine
from shared.projections import Projection, on, prepare
from shared.store import EventStore, checkpoints, events
from shared.uow import Runtime

SENT: list[str] = []


class _CountingCursor(ext.cursor):
    def execute(self, sql, params=None):
        SENT.append(sql if isinstance(sql, str) else sql.decode())
        return super().execute(sql, params)


class _CountingConnection(ext.connection):
    """Records every statement sent (a COMMIT in autocommit mode sends nothing, so the
    driver's own commit/rollback are not counted unless they reach the server)."""

    def cursor(self, *a, **kw):
        kw.setdefault("cursor_factory", _CountingCursor)
        return super().cursor(*a, **kw)

    def commit(self):
        if not self.autocommit and self.status != ext.STATUS_READY:
            SENT.append("COMMIT (driver)")
        return super().commit()


class Note(Aggregate):
    class Written(Aggregate.Event):
        note_id: str
        text: str

        def apply(self, n):
            n.text = self.text

    @classmethod
    def write(cls, id, text_):
        n = cls(id)
        n.trigger(cls.Written, note_id=id, text=text_)
        return n

    def rewrite(self, text_):
        self.trigger(self.Written, note_id=self.id, text=text_)


md = MetaData()
notes = Table("pipeline_notes", md, Column("note_id", String(50), primary_key=True),
              Column("text", String(200), nullable=False))
once = Table("pipeline_once", md, Column("text", String(200), primary_key=True))


class Notes(Projection):
    name = "pipeline_notes"
    tables = (notes, once)

    @on("Note.Written")
    def written(self, w, e):
        w.upsert(notes, {"note_id": e.payload["note_id"]}, text=e.payload["text"])
        if e.payload["text"].startswith("once:"):
            # a plain insert: the same text twice breaks the primary key
            w.insert(once, text=e.payload["text"])


@pytest.fixture
def rt(pg_url):
    engine = make_engine(pg_url, connect_args={"connection_factory": _CountingConnection})
    runtime = Runtime(engine, [Notes()], "test", "pipeline")
    runtime.create_schema()
    prepare(runtime.store, runtime.projections, runtime.inline_checkpoint)
    yield runtime
    engine.dispose()


def _write(rt, id_, text_, new=False):
    with rt.unit_of_work() as uow:
        note = Note.write(id_, text_) if new else uow.get(Note, id_)
        if not new:
            note.rewrite(text_)
        uow.save(note)


def _state(rt):
    with rt.engine.connect() as c:
        return (c.execute(select(func.count()).select_from(events)).scalar(),
                c.execute(select(checkpoints.c.position)
                          .where(checkpoints.c.name == rt.inline_checkpoint)).scalar(),
                dict(c.execute(select(notes.c.note_id, notes.c.text)).all()),
                sorted(r[0] for r in c.execute(select(once.c.text))))


def test_a_command_takes_two_round_trips(rt):
    _write(rt, "n1", "first", new=True)
    _write(rt, "n1", "second")  # the tail is now cached: the fast path
    SENT.clear()
    _write(rt, "n1", "third")
    assert len(SENT) == 2, SENT
    assert SENT[0].startswith("BEGIN; SELECT")
    write = SENT[1]
    assert write.startswith("LOCK TABLE events") and "UPDATE checkpoints" in write
    assert write.index("INSERT INTO events") < write.index("pipeline_notes") < write.index("COMMIT")
    assert write.endswith("COMMIT")
    count, cp, rows, _ = _state(rt)
    assert (count, cp, rows) == (3, 3, {"n1": "third"})


def test_a_statement_after_save_runs_under_the_lock_and_sees_the_append(rt):
    _write(rt, "n1", "first", new=True)
    with rt.unit_of_work() as uow:
        note = uow.get(Note, "n1")
        note.rewrite("second")
        stored = uow.save(note)
        SENT.clear()
        # the planned append goes first (taking the writer lock), then this read
        head = uow.conn.execute(select(func.max(events.c.position))).scalar()
        assert SENT[0].startswith("LOCK TABLE events") and "SELECT max" in SENT[-1]
        assert head == stored[-1].position == 2
        assert uow.conn.execute(select(notes.c.text)).scalar() == "second"
    assert _state(rt)[:3] == (2, 2, {"n1": "second"})


def test_read_in_the_same_unit_of_work_sees_the_deferred_write(rt):
    with rt.unit_of_work() as uow:
        uow.save(Note.write("n1", "百分之100% 完成"))  # a "%" in a deferred write
        assert uow.conn.execute(select(notes.c.text)).scalar() == "百分之100% 完成"
        uow.save(Note.write("n2", "两条"))
    assert _state(rt)[2] == {"n1": "百分之100% 完成", "n2": "两条"}


def test_a_failing_deferred_write_rolls_back_the_whole_command(rt):
    _write(rt, "n1", "once:a", new=True)
    before = _state(rt)
    with pytest.raises(Exception) as info:
        _write(rt, "n1", "once:a")  # the read model refuses it only at COMMIT
    assert "pipeline_once" in str(info.value) or "duplicate" in str(info.value)
    assert _state(rt) == before, "an event, checkpoint or row of the failed command stayed"
    # the process's cached tail named the rolled-back row: the next append finds out
    _write(rt, "n1", "after")
    count, cp, rows, _ = _state(rt)
    assert (count, cp, rows) == (2, 2, {"n1": "after"})
    with rt.engine.connect() as c:
        assert rt.store.verify(c).ok


def test_another_writer_moves_the_tail_and_the_checkpoint(rt, pg_url):
    _write(rt, "n1", "one", new=True)
    # another process (its own store, no projections) appends: our cached tail is stale
    # and the shared checkpoint is behind the log
    other = EventStore(make_engine(pg_url))
    with other.engine.begin() as c:
        other.append(c, [_new("n9")])
    other.engine.dispose()
    _write(rt, "n1", "two")
    count, cp, rows, _ = _state(rt)
    assert (count, cp) == (3, 3)
    assert rows == {"n1": "two", "n9": "elsewhere"}  # caught up from the log
    with rt.engine.connect() as c:
        assert rt.store.verify(c).ok


def test_connections_go_back_to_the_pool_as_they_came(rt):
    _write(rt, "n1", "once:x", new=True)
    with pytest.raises(Exception):
        _write(rt, "n1", "once:x")
    with rt.engine.connect() as c:
        raw = c.connection.driver_connection
        assert raw.autocommit is False
        assert c.execute(text("SELECT 1")).scalar() == 1
        assert raw.status == ext.STATUS_IN_TRANSACTION  # the driver began one, as ever


def _new(id_):
    from shared.events import NewEvent
    return NewEvent("Note:%s" % id_, "Note", 1, "Note.Written", 1,
                    {"note_id": id_, "text": "elsewhere"}, {"node": "other"})


def test_two_commands_on_one_version_the_second_is_refused_and_writes_nothing(rt):
    from shared.errors import ConcurrencyError
    _write(rt, "n1", "first", new=True)
    a, b = rt.unit_of_work(), rt.unit_of_work()
    with a:
        with pytest.raises(ConcurrencyError):
            with b:
                na, nb = a.get(Note, "n1"), b.get(Note, "n1")
                na.rewrite("by a")
                nb.rewrite("by b")
                a.save(na)
                b.save(nb)  # both planned on the same tail; b commits after a below
                a.commit()
                a._tx = a.conn.begin()  # (the outer block's own commit then has nothing to do)
    assert _state(rt)[:3] == (2, 2, {"n1": "by a"})
    with rt.engine.connect() as c:
        assert rt.store.verify(c).ok


def test_a_locking_read_before_save_keeps_the_append_in_that_transaction(rt):
    _write(rt, "n1", "first", new=True)
    _write(rt, "n1", "second")
    with rt.unit_of_work() as uow:
        note = uow.get(Note, "n1")
        uow.conn.execute(select(notes.c.text).where(notes.c.note_id == "n1").with_for_update())
        note.rewrite("third")
        SENT.clear()
        uow.save(note)
        # no write-behind: the row lock would not survive a redo in a new transaction
        assert any(s.startswith("LOCK TABLE events") for s in SENT), SENT
    assert _state(rt)[:3] == (3, 3, {"n1": "third"})
