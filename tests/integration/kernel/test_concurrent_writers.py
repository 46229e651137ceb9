"""Concurrent writers in separate processes: positions stay gap-free in commit order,
and a reader tailing the log during the writes sees every event exactly once."""
import subprocess
import sys
import time
from pathlib import Path

from shared.store import EventStore

REPO = Path(__file__).resolve().parents[3]
WRITERS, PER_WRITER = 4, 150


def test_concurrent_writers_and_a_tailing_reader(db_url, engine_for):
    store = EventStore(engine_for(db_url))
    store.create_schema()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.kernel._writer", db_url, "w%d" % i,
                               str(PER_WRITER)], cwd=str(REPO)) for i in range(WRITERS)]
    seen, after = [], 0
    deadline = time.monotonic() + 120
    # tail while the writers run: a reader that skipped a position committed late
    # would never come back for it
    while time.monotonic() < deadline:
        running = any(p.poll() is None for p in procs)
        with store.engine.connect() as c:
            batch = store.read_all(c, after=after, limit=200)
        for e in batch:
            seen.append(e)
            after = e.position
        if not batch and not running:
            break
        if not batch:
            time.sleep(0.01)
    assert all(p.wait(10) == 0 for p in procs)

    expected = sum(1 + i % 3 for i in range(1, PER_WRITER + 1)) * WRITERS
    positions = [e.position for e in seen]
    assert positions == list(range(1, expected + 1)), "gap, repeat or reordering seen by the tail"
    assert len({e.event_id for e in seen}) == expected
    # each batch is contiguous: no other writer's event landed inside it
    by_stream = {}
    for e in seen:
        by_stream.setdefault(e.stream_id, []).append(e.position)
    for stream, pos in by_stream.items():
        assert pos == list(range(pos[0], pos[0] + len(pos))), "batch of %s interleaved" % stream
    with store.engine.connect() as c:
        assert store.verify(c).ok
