"""A separate writer process for the concurrent-writers test: `python -m tests.integration.kernel._writer URL NAME N`."""
import sys

from shared.db import make_engine
from shared.events import NewEvent
from shared.store import EventStore


def main(url: str, name: str, n: int) -> None:
    store = EventStore(make_engine(url))
    for i in range(1, n + 1):
        # alternate single events and small batches: both paths take the writer lock
        batch = [NewEvent("%s-%d" % (name, i), "W", 1, "W.Wrote", 1, {"writer": name, "i": i, "k": k})
                 for k in range(1 + i % 3)]
        for k, e in enumerate(batch):
            e.stream_id, e.version = "%s-%d" % (name, i), k + 1
        with store.engine.begin() as c:
            store.append(c, batch)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
