"""The relay's loop (shared.relay.Relay.run): after a batch that was not full it pauses
COALESCE_S, so the commits of the pause go out together; after a full batch (a backlog)
it goes on at once; with nothing to send it waits to be woken (IdleBackoff). The batches
themselves - broker, checkpoint - are tested in tests/integration/kernel/test_relay.py."""
from __future__ import annotations

import shared.relay as relay_module
from shared.db import make_engine
from shared.relay import COALESCE_S, Relay
from shared.store import EventStore


class Scripted(Relay):
    """run_once returns the batch sizes given, then stops the loop."""

    def __init__(self, sizes, log):
        super().__init__(EventStore(make_engine("sqlite://")), "amqp://unused//", "t",
                         batch_size=10)
        self.sizes, self.log = list(sizes), log
        self.check_broker = lambda: None  # no broker here: the loop's policy is the subject

    def run_once(self):
        n = self.sizes.pop(0)
        self.log.append(("batch", n))
        return n


def test_pauses_after_a_partial_batch_not_after_a_full_one(monkeypatch):
    log: list = []
    monkeypatch.setattr(relay_module.time, "sleep", lambda s: log.append(("pause", s)))
    relay = Scripted([3, 10, 2, 0], log)
    relay.run(lambda: not relay.sizes, lambda s: log.append(("wait", s)))
    assert log == [("batch", 3), ("pause", COALESCE_S), ("batch", 10), ("batch", 2),
                   ("pause", COALESCE_S), ("batch", 0), ("wait", 0.05)]
    assert COALESCE_S <= 0.1  # what an inter-service event may wait at most, added


def test_no_pause_when_coalescing_is_off(monkeypatch):
    log: list = []
    monkeypatch.setattr(relay_module.time, "sleep", lambda s: log.append(("pause", s)))
    relay = Scripted([3, 0], log)
    relay.run(lambda: not relay.sizes, lambda s: log.append(("wait", s)), coalesce=0)
    assert log == [("batch", 3), ("batch", 0), ("wait", 0.05)]
