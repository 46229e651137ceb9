"""Flat combining: concurrent requests of one process share one call.

A request hands its item to a ``Combiner`` and waits for its own answer. The request
that finds no call on its way sends one with whatever has queued (its own item
first), through whatever ``send`` it brought (its own worker's RPC proxy, say); when
the answers are in, every request of that call gets its own, and the next request
still waiting, if any, sends the next call with everything that queued meanwhile.
Nothing waits for a batch to fill: a lone request is a call of one, and a call
leaves as soon as the one before it has been answered - so the calls grow with the
load and cost nothing when there is none.

If the call fails as a whole, every request of that call gets that error, and no
item is sent twice: one call holds it. ``send(items) -> outcomes`` answers one
outcome per item, in order; an outcome that is an exception is raised to that
item's request only.

Plain ``threading`` primitives: green under eventlet (``nameko run``, the tests).
No thread of its own: the requests do the sending.
"""
from __future__ import annotations

import threading
from typing import Callable


class _Waiting:
    __slots__ = ("item", "wake", "outcome", "answered", "lead")

    def __init__(self, item):
        self.item = item
        self.wake = threading.Event()
        self.outcome = None
        self.answered = False
        self.lead = False  # this request sends the next call


class Combiner:
    def __init__(self, max_batch: int = 200):
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._sending = False
        self.calls = 0     # calls sent, and the largest (tests, profiling)
        self.largest = 0

    def submit(self, send: Callable[[list], list], item):
        """``item``'s outcome from a call of ``send`` (raised if it is an exception)."""
        me = _Waiting(item)
        with self._lock:
            self._queue.append(me)
            if not self._sending:
                self._sending = me.lead = True
        while not me.answered:
            if me.lead:
                me.lead = False
                self._send(send)
                continue
            me.wake.wait()
            me.wake.clear()
        if isinstance(me.outcome, BaseException):
            raise me.outcome
        return me.outcome

    def _send(self, send) -> None:
        with self._lock:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        try:
            outcomes = send([w.item for w in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError("a combined call answered %d of %d" % (len(outcomes), len(batch)))
        except BaseException as exc:  # noqa: BLE001 - every request of the call is told
            outcomes = [exc] * len(batch)
            if not isinstance(exc, Exception):
                self._answer(batch, outcomes)
                raise
        self._answer(batch, outcomes)

    def _answer(self, batch, outcomes) -> None:
        self.calls += 1
        self.largest = max(self.largest, len(batch))
        for w, outcome in zip(batch, outcomes):
            w.outcome, w.answered = outcome, True
        with self._lock:
            nxt = self._queue[0] if self._queue else None
            if nxt is not None:
                nxt.lead = True
            else:
                self._sending = False
        # the next call's sender is woken first: it sends what has queued and waits for
        # that answer while this call's requests finish their responses (woken after it,
        # they run in the order woken) - the previous order held the next call back
        # until every request of this one had answered its client
        if nxt is not None:
            nxt.wake.set()
        for w in batch:
            w.wake.set()
