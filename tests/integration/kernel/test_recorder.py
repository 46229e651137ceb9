"""One recorder suite, run against both back-ends (SQLite and PostgreSQL)."""
import pytest
from sqlalchemy import text

from shared.errors import ConcurrencyError, NotFound
from shared.events import NewEvent
from shared.store import EventStore, stream_history


def ev(stream, version, n=0, etype="Thing.Happened"):
    return NewEvent(stream, "Thing", version, etype, 1, {"n": n, "名称": "清廉"}, {"node": "t"})


@pytest.fixture
def store(db_url, engine_for):
    s = EventStore(engine_for(db_url))
    s.create_schema()
    return s


def append(store, events):
    with store.engine.begin() as c:
        return store.append(c, events)


def test_append_assigns_gap_free_positions_and_reads_back(store):
    first = append(store, [ev("a", 1), ev("a", 2)])
    second = append(store, [ev("b", 1, 7)])
    assert [e.position for e in first + second] == [1, 2, 3]
    with store.engine.connect() as c:
        rows = store.read_stream_rows(c, "a")
        assert [(r[0], r[1]) for r in rows] == [("Thing.Happened", 1), ("Thing.Happened", 2)]
        everything = store.read_all(c, after=0)
        assert [e.stream_id for e in everything] == ["a", "a", "b"]
        assert everything[2].payload == {"n": 7, "名称": "清廉"}
        assert everything[0].metadata == {"node": "t"}
        assert store.head(c) == 3


def test_read_all_from_a_position_with_limit_and_upper_bound(store):
    append(store, [ev("s", i) for i in range(1, 11)])
    with store.engine.connect() as c:
        assert [e.position for e in store.read_all(c, after=4, limit=3)] == [5, 6, 7]
        assert [e.position for e in store.read_all(c, after=7, upto_position=9)] == [8, 9]
        assert [e.position for e in store.iter_all(c, after=0, page=3)] == list(range(1, 11))


def test_stream_history_is_one_records_events_oldest_first_or_404(store):
    """The ``history`` query of units, supervision and education: one stream, decoded."""
    append(store, [ev("Thing:t1", 1, 1), ev("Other:t1", 1, 5), ev("Thing:t1", 2, 2, "Thing.Changed")])
    with store.engine.connect() as c:
        assert stream_history(c, "Thing", "t1") == {"stream_id": "Thing:t1", "events": [
            {"type": "Thing.Happened", "version": 1, "schema_version": 1,
             "payload": {"n": 1, "名称": "清廉"}},
            {"type": "Thing.Changed", "version": 2, "schema_version": 1,
             "payload": {"n": 2, "名称": "清廉"}}]}
        # the stream id given (an aggregate's stream_id_for), the record named as asked
        assert stream_history(c, "Alias", "t1", "Other:t1") == {"stream_id": "Other:t1", "events": [
            {"type": "Thing.Happened", "version": 1, "schema_version": 1,
             "payload": {"n": 5, "名称": "清廉"}}]}
        with pytest.raises(NotFound) as missing:
            stream_history(c, "Thing", "t2")
        assert missing.value.message == "no Thing t2" and missing.value.status == 404
        with pytest.raises(NotFound, match="no Alias t1"):
            stream_history(c, "Alias", "t1")
        assert store.head(c) == 3  # a read: nothing written


def test_version_conflict_is_a_concurrency_error_and_writes_nothing(store):
    append(store, [ev("a", 1), ev("a", 2)])
    with pytest.raises(ConcurrencyError):
        append(store, [ev("b", 1), ev("a", 2, n=99)])  # b is fine, a@2 is taken
    with store.engine.connect() as c:
        assert store.head(c) == 2  # the whole batch was refused, b included
        assert store.read_stream_rows(c, "b") == []


def test_next_append_after_a_conflict_has_no_gap(store):
    append(store, [ev("a", 1)])
    with pytest.raises(ConcurrencyError):
        append(store, [ev("a", 1)])
    assert [e.position for e in append(store, [ev("a", 2)])] == [2]


def test_hash_chain_verifies(store):
    append(store, [ev("a", i) for i in range(1, 6)])
    with store.engine.connect() as c:
        result = store.verify(c)
    assert result.ok and result.checked == 5


@pytest.mark.parametrize("column,value", [("payload", '{"n":666}'), ("event_type", "Thing.Forged"),
                                          ("meta", '{"node":"evil"}'), ("version", 9)])
def test_tampering_is_pinpointed_to_the_row(store, column, value):
    append(store, [ev("a", i) for i in range(1, 6)])
    with store.engine.begin() as c:
        c.execute(text("UPDATE events SET %s = :v WHERE position = 3" % column), {"v": value})
    with store.engine.connect() as c:
        result = store.verify(c)
    assert not result.ok
    assert result.first_bad_position == 3
    assert result.checked == 2


def test_a_deleted_row_breaks_the_chain(store):
    append(store, [ev("a", i) for i in range(1, 6)])
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE position = 4"))
    with store.engine.connect() as c:
        result = store.verify(c)
    assert not result.ok and result.first_bad_position == 4


def test_rewriting_a_row_and_its_hash_is_caught_at_the_next_row(store):
    from shared.store import chain_hash
    append(store, [ev("a", i) for i in range(1, 4)])
    with store.engine.begin() as c:
        r1 = c.execute(text("SELECT hash FROM events WHERE position = 1")).scalar()
        r2 = c.execute(text("SELECT * FROM events WHERE position = 2")).mappings().one()
        forged = chain_hash(r1, 2, r2["event_id"], r2["stream_id"], r2["stream_type"], r2["version"],
                            r2["event_type"], r2["schema_version"], '{"n":1}', r2["meta"],
                            r2["recorded_at_us"])
        c.execute(text("UPDATE events SET payload = :p, hash = :h WHERE position = 2"),
                  {"p": '{"n":1}', "h": forged})
    with store.engine.connect() as c:
        result = store.verify(c)
    assert not result.ok and result.first_bad_position == 3


def test_checkpoints(store):
    with store.engine.begin() as c:
        assert store.get_checkpoint(c, "p") is None
        store.set_checkpoint(c, "p", 5)
        store.set_checkpoint(c, "p", 9)
    with store.engine.connect() as c:
        assert store.get_checkpoint(c, "p") == 9


def test_position_at_a_time(store):
    with store.engine.begin() as c:
        store.append(c, [ev("a", 1)], recorded_at_us=1_000_000)
    with store.engine.begin() as c:
        store.append(c, [ev("a", 2)], recorded_at_us=2_000_000)
    with store.engine.connect() as c:
        assert store.position_at(c, 1_500_000) == 1
        assert store.position_at(c, 2_000_000) == 2
        assert store.position_at(c, 10) == 0


def test_two_writers_with_stale_tails_keep_the_chain(db_url, engine_for, store):
    """Each store caches the tail it last wrote; interleaved writers make those caches
    stale, and a rolled-back append leaves one pointing at a row that never existed."""
    other = EventStore(engine_for(db_url))
    append(store, [ev("a", 1)])
    append(other, [ev("b", 1)])
    append(store, [ev("a", 2)])  # store's cached tail (1) is stale: falls back
    conn = store.engine.connect()
    tx = conn.begin()
    store.append(conn, [ev("a", 3)])  # caches position 4 ...
    tx.rollback()  # ... which never commits
    conn.close()
    append(other, [ev("b", 2)])  # position 4, another hash
    append(store, [ev("a", 3)])  # cached (4, wrong hash): must not chain onto it
    with store.engine.connect() as c:
        assert [e.position for e in store.read_all(c)] == [1, 2, 3, 4, 5]
        assert store.verify(c).ok


def test_a_writer_that_cannot_get_the_lock_in_time_gets_store_busy(pg_url):
    from shared.db import make_engine
    from shared.errors import StoreBusy
    holder = EventStore(make_engine(pg_url))
    holder.create_schema()
    waiter = EventStore(make_engine(pg_url, lock_timeout="200ms"))
    with holder.engine.begin() as c:
        holder.lock(c)  # a stuck writer
        with pytest.raises(StoreBusy):
            append(waiter, [ev("a", 1)])
    assert [e.position for e in append(waiter, [ev("a", 1)])] == [1]
    holder.engine.dispose()
    waiter.engine.dispose()


def test_large_batches_take_the_locked_path_and_stay_gap_free(store):
    append(store, [ev("a", 1)])
    append(store, [ev("b", v) for v in range(1, 41)])  # above FAST_PATH_MAX
    append(store, [ev("a", 2)])
    with store.engine.connect() as c:
        assert [e.position for e in store.read_all(c, limit=100)] == list(range(1, 43))
        assert store.verify(c).ok
