"""Outages: a link removed, a node's services stopped, while 1,000 records are
published. Afterwards every node has exactly the 1,000, applied in origin order, each
once - what AMQP did not bring was pulled from the origin's signed feed."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from services.exchange.federation import received
from tests.harness import wait_for
from shared.store import events

N = 1000


def publish_experiences(node, n: int, prefix: str) -> list[str]:
    ids = []
    for i in range(n):
        ids.append(node.execute("draft_experience", {
            "experience_id": "%s-%04d" % (prefix, i), "unit_id": "a-xj",
            "title": "清廉机关示范点建设经验 %d" % i, "summary": "聚焦责任抓落实。",
            "body": "组织区直机关学习示范点建设经验做法。", "business_type": "示范点建设",
            "topics": ["示范点"], "share": {"sharing": "all", "recipients": []}})["experience_id"])
    return ids


def _all_ids(node, origin, prefix):
    """Record ids of ``origin``'s records starting with ``prefix`` in the node's feed table."""
    from services.exchange.projections import records
    with node.runtime.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(
            select(records.c.record_id).where(records.c.owner == origin,
                                              records.c.record_id.like("%s/%s%%" % (origin, prefix)))))


def assert_exactly_once_in_order(node, origin: str, ids: list[str], prefix: str):
    assert _all_ids(node, origin, prefix) == sorted(ids)
    with node.runtime.engine.connect() as conn:
        rows = conn.execute(select(received.c.origin_seq, received.c.position, received.c.outcome)
                            .where(received.c.origin == origin)
                            .order_by(received.c.origin_seq)).all()
        # no event twice in this node's log
        dupes = conn.execute(select(events.c.event_id, func.count()).group_by(events.c.event_id)
                             .having(func.count() > 1)).all()
    assert dupes == []
    assert all(r.outcome == "applied" for r in rows)
    positions = [r.position for r in rows]
    # origin order: each origin sequence number landed after the previous one
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    seqs = [r.origin_seq for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def applied_via(node, origin: str) -> Counter:
    with node.runtime.engine.connect() as conn:
        return Counter(dict(conn.execute(select(received.c.via, func.count())
                                         .where(received.c.origin == origin)
                                         .group_by(received.c.via)).all()))


def test_link_removed_while_1000_published_then_restored(fresh_network):
    net, nodes = fresh_network
    a, city, b = nodes["district-a"], nodes["city"], nodes["district-b"]
    # district-b's links go (their buffer queues with them: AMQP loses these records)
    # and district-b stops pulling feeds until the link is back - a node cut off
    b.provider.runtime.ext.consumer._next_sync = float("inf")
    net.unlink("district-b")
    ids = publish_experiences(a, N, "outage")
    wait_for(lambda: len(_all_ids(city, "district-a", "outage")) == N, timeout=60,
             what="the city to have all %d in realtime" % N)
    assert _all_ids(b, "district-a", "outage") == []

    net.relink()
    net.wait_bindings()
    b.provider.runtime.ext.consumer._next_sync = 0  # the periodic sync of a node that is back
    wait_for(lambda: len(_all_ids(b, "district-a", "outage")) == N, timeout=60,
             what="district-b to catch up")
    for node in (city, b):
        assert_exactly_once_in_order(node, "district-a", ids, "outage")
    assert applied_via(b, "district-a")["feed"] == N  # repaired by pull, not AMQP
    # the city took each exactly once, whichever way came first (AMQP, or its own
    # periodic pull while this test process kept the consumer busy)
    assert sum(applied_via(city, "district-a").values()) == N


def test_node_services_stopped_while_1000_published(fresh_network):
    net, nodes = fresh_network
    a, city, b = nodes["district-a"], nodes["city"], nodes["district-b"]
    first = publish_experiences(a, 5, "before")
    wait_for(lambda: len(_all_ids(b, "district-a", "before")) == 5, what="a warm start at district-b")
    b.stop()  # district-b is offline; its broker (and durable inbox queue) stays up
    ids = publish_experiences(a, N, "offline")
    wait_for(lambda: len(_all_ids(city, "district-a", "offline")) == N, timeout=60,
             what="the city in realtime")
    b.start()
    wait_for(lambda: len(_all_ids(b, "district-a", "offline")) == N, timeout=60,
             what="district-b to catch up after restart")
    assert_exactly_once_in_order(b, "district-a", first + ids, "")
    assert_exactly_once_in_order(city, "district-a", first + ids, "")
