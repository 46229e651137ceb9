"""The receiving side's per-origin ordering (pure: a fake clock, no broker)."""
from __future__ import annotations

from shared.federation.ordering import Offer, OriginSequencer


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_in_order_items_are_ready_one_by_one():
    s = OriginSequencer()
    assert s.offer("a", 1, "one") is Offer.READY
    assert s.take_ready("a") == [(1, "one")]
    s.applied("a", 1)
    assert s.offer("a", 2, "two") is Offer.READY
    assert s.ready_origins() == ["a"]


def test_duplicates_below_the_watermark_or_held_are_refused():
    s = OriginSequencer()
    s.load([("a", 5)])
    assert s.offer("a", 5, "x") is Offer.DUPLICATE
    assert s.offer("a", 3, "x") is Offer.DUPLICATE
    assert s.offer("a", 8, "x") is Offer.HELD
    assert s.offer("a", 8, "again") is Offer.DUPLICATE
    assert s.held_count("a") == 1


def test_a_hole_holds_successors_until_it_is_filled():
    clock = Clock()
    s = OriginSequencer(grace=0.25, clock=clock)
    assert s.offer("a", 3, "c") is Offer.HELD
    assert s.offer("a", 2, "b") is Offer.HELD
    assert s.take_ready("a") == []
    assert s.missing("a") == (1, 1)
    assert s.gaps() == []          # within the grace period: it may be in flight
    clock.t += 0.3
    assert s.gaps() == ["a"]       # now pull the feed
    assert s.offer("a", 1, "a") is Offer.READY
    assert s.take_ready("a") == [(1, "a"), (2, "b"), (3, "c")]
    s.applied("a", 3)
    assert s.gaps() == [] and s.held_count() == 0


def test_a_feed_page_closes_holes_that_were_not_ours():
    clock = Clock()
    s = OriginSequencer(grace=0.1, clock=clock)
    s.offer("a", 7, "g")
    clock.t += 1
    assert s.gaps() == ["a"]
    s.applied("a", 6)              # the feed: everything up to 6 is done (some not ours)
    assert s.gaps() == [] and s.take_ready("a") == [(7, "g")]


def test_origins_are_independent():
    s = OriginSequencer()
    s.offer("a", 2, "x")
    assert s.offer("b", 1, "y") is Offer.READY
    assert s.ready_origins() == ["b"]


def test_the_held_buffer_is_bounded():
    s = OriginSequencer(max_held=3)
    for seq in (5, 6, 7):
        assert s.offer("a", seq, seq) is Offer.HELD
    assert s.offer("a", 8, 8) is Offer.DROPPED   # the feed will supply it
    assert s.offer("a", 1, 1) is Offer.READY     # the next expected one always fits
    assert s.held_count() == 4


def test_repair_backs_off_to_a_ceiling_and_starts_again_once_the_hole_closes():
    now = [0.0]
    s = OriginSequencer(grace=0.25, ceiling=2.0, clock=lambda: now[0])
    s.offer("a", 3, "three")
    now[0] = 0.25
    assert s.gaps() == ["a"]
    waits = [s.repair_failed("a") for _ in range(6)]
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]  # doubling, never beyond the ceiling
    assert s.gaps() == []  # the wait restarts from the failed pull
    now[0] += 1.99
    assert s.gaps() == []
    now[0] += 0.01
    assert s.gaps() == ["a"]
    s.offer("a", 1, "one"), s.offer("a", 2, "two")
    s.take_ready("a")
    s.applied("a", 3)  # the hole closed: the next one starts from grace again
    s.offer("a", 5, "five")
    now[0] += 0.25
    assert s.gaps() == ["a"]


def test_held_items_beyond_the_origins_head_are_dropped_and_end_the_gap():
    s = OriginSequencer(grace=0.0)
    s.offer("a", 1_000_001, "far")
    s.offer("a", 3, "three")
    assert s.has_gap("a") and s.held_count("a") == 2
    assert s.beyond("a", head=5) == [1_000_001]
    assert s.held_count("a") == 1 and s.has_gap("a")  # 3 may still come: keep waiting
    assert s.beyond("a", head=2) == [3]
    assert s.held_count() == 0 and not s.has_gap("a") and s.gaps() == []
