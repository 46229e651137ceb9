"""Per-origin ordering on the receiving side: dedupe, hold back, detect gaps.

Every origin numbers the envelopes it publishes 1, 2, 3 ... without gaps. A receiver
keeps, per origin, the *watermark*: the highest sequence number up to which it has
applied (or learnt from the origin's feed that it is not entitled to) everything. Then:

* ``seq <= watermark`` or already held: a duplicate (a federation link redelivers its
  unacknowledged prefetch when it restarts). Skipped, counted.
* ``seq == watermark + 1``: ready; with it, any held successors that are now contiguous.
* ``seq > watermark + 1``: held back, and the origin is marked as having a gap since
  now. Why not pull at once: the records of one origin reach a node over up to three
  links (one per exchange, module doc of ``broker``) that do not keep order between
  each other, so the missing number is often a few milliseconds behind. If it is still
  missing after ``grace`` seconds, the caller pulls the range from the origin's feed.
  (A district also sees holes where the origin published something not meant for it;
  the feed's ``through`` closes those.)

Repair backs off. A pull that leaves the hole open doubles that origin's wait before
the next one (``grace``, 2×, 4× ... up to ``ceiling`` seconds), so a hole the feed
cannot fill at once costs a pull every few minutes, not four a second; the wait starts
again from ``grace`` once the hole closes. A held item whose number is above the head
the origin's own signed feed reports can never be filled (the origin commits a record
to its feed before publishing it): ``beyond`` drops it, and the caller reports it.

Held items live in memory only, on purpose: the watermark in the database is the
truth, and anything above it can always be pulled again from the origin's feed. A
crash therefore loses nothing but the chance to skip a pull. ``max_held`` bounds the
memory a long outage could take; beyond it the newest items are dropped (the feed has
them).

Pure and single-threaded: the exchange service calls it from its one consumer thread.
"""
from __future__ import annotations

import time
from enum import Enum
from typing import Any, Callable, Iterable

__all__ = ["Offer", "OriginSequencer"]


class Offer(Enum):
    DUPLICATE = "duplicate"
    READY = "ready"
    HELD = "held"
    DROPPED = "dropped"  # held buffer full: the feed will supply it


class OriginSequencer:
    def __init__(self, grace: float = 0.25, max_held: int = 20_000,
                 clock: Callable[[], float] = time.monotonic, ceiling: float = 300.0):
        self.grace = grace
        self.ceiling = max(ceiling, grace)
        self.max_held = max_held
        self.clock = clock
        self.watermark: dict[str, int] = {}
        self.held: dict[str, dict[int, Any]] = {}
        self._gap_since: dict[str, float] = {}
        self._wait: dict[str, float] = {}  # current repair back-off, per origin
        self._held_count = 0

    def load(self, watermarks: Iterable[tuple[str, int]]) -> None:
        """Start from the database's watermarks (and nothing held)."""
        self.watermark = {origin: int(w) for origin, w in watermarks}
        self.held.clear()
        self._gap_since.clear()
        self._wait.clear()
        self._held_count = 0

    def offer(self, origin: str, seq: int, item: Any) -> Offer:
        w = self.watermark.get(origin, 0)
        held = self.held.setdefault(origin, {})
        if seq <= w or seq in held:
            return Offer.DUPLICATE
        if seq != w + 1 and self._held_count >= self.max_held:
            self.note_gap(origin)
            return Offer.DROPPED
        held[seq] = item
        self._held_count += 1
        if seq == w + 1:
            return Offer.READY
        self.note_gap(origin)
        return Offer.HELD

    def note_gap(self, origin: str) -> None:
        """Something after the watermark is known to be missing: pull after the wait."""
        self._gap_since.setdefault(origin, self.clock())

    def take_ready(self, origin: str) -> list[tuple[int, Any]]:
        """The contiguous run after the watermark, removed from the held buffer. The
        watermark moves only when the caller reports them applied (``applied``)."""
        held = self.held.get(origin) or {}
        out, nxt = [], self.watermark.get(origin, 0) + 1
        while nxt in held:
            out.append((nxt, held.pop(nxt)))
            nxt += 1
        self._held_count -= len(out)
        return out

    def applied(self, origin: str, through: int) -> None:
        """Everything up to ``through`` is applied (or known not to be ours)."""
        w = max(self.watermark.get(origin, 0), int(through))
        self.watermark[origin] = w
        held = self.held.get(origin) or {}
        for seq in [s for s in held if s <= w]:
            del held[seq]
            self._held_count -= 1
        if not held or min(held) == w + 1:
            self._gap_since.pop(origin, None)
            self._wait.pop(origin, None)
        else:
            # still a hole: restart the grace period from now, the next pull is due then
            self._gap_since[origin] = self.clock()

    def ready_origins(self) -> list[str]:
        return [o for o, held in self.held.items()
                if held and (self.watermark.get(o, 0) + 1) in held]

    def gaps(self) -> list[str]:
        """Origins whose hole has outlived the grace period: pull their feed."""
        now = self.clock()
        return [o for o, since in self._gap_since.items()
                if now - since >= self._wait.get(o, self.grace)]

    def repair_failed(self, origin: str) -> float:
        """A pull left the hole open: wait twice as long (at most ``ceiling``) before
        the next one. Returns the new wait."""
        wait = min(self._wait.get(origin, self.grace) * 2, self.ceiling)
        self._wait[origin] = wait
        self._gap_since[origin] = self.clock()
        return wait

    def has_gap(self, origin: str) -> bool:
        return origin in self._gap_since

    def beyond(self, origin: str, head: int) -> list[int]:
        """Drop the held items numbered above ``head``, the origin's own last number:
        nothing can fill the hole below them. Returns their numbers."""
        held = self.held.get(origin) or {}
        dropped = sorted(s for s in held if s > head)
        for seq in dropped:
            del held[seq]
        self._held_count -= len(dropped)
        if dropped and not held:
            self._gap_since.pop(origin, None)
            self._wait.pop(origin, None)
        return dropped

    def missing(self, origin: str) -> tuple[int, int] | None:
        """(first, last) missing sequence number below the lowest held item."""
        held = self.held.get(origin) or {}
        w = self.watermark.get(origin, 0)
        if not held:
            return None
        low = min(held)
        return (w + 1, low - 1) if low > w + 1 else None

    def held_count(self, origin: str | None = None) -> int:
        if origin is None:
            return self._held_count
        return len(self.held.get(origin) or {})
