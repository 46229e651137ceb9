"""Issue 10 #13 for supervision: the figures published for 上下互比 stand for a month and
are provisional (暂定) while it is open - running, then SUPERVISION_INDICATOR_GRACE_DAYS -
so an entry recorded late still changes them; the publication timer republishes them by
itself, then once as final. The application layer on a real database (SQLite and
PostgreSQL), the clock set by the test; the city's side is in the exchange's
test_oversight."""
from __future__ import annotations

import pytest

from tests.harness.supervision import Node


@pytest.fixture
def node(db_url, clock):
    n = Node(db_url, clock, {"SUPERVISION_INDICATOR_GRACE_DAYS": 3})
    n.district(("u1",))
    yield n
    n.close()


def march(node):
    """u1's and the district's last figures published for March 2024."""
    return [[e.payload for e in node.events(t + ".Published") if e.payload["unit_id"] == uid
             and e.payload.get("period") == "2024-03"][-1] for t, uid in
            (("UnitIndicators", "u1"), ("DistrictIndicators", "district"))]


def test_a_month_is_provisional_then_final_and_a_late_entry_republishes_it(node, clock):
    clock.set("2024-03-20")
    assert node.run("publish_indicators")["months"] == {"2024-03": "provisional"}
    unit, district = march(node)
    assert (unit["provisional"], unit["findings_total"], district["provisional"]) == (True, 0, True)

    clock.set("2024-04-02")  # March is over: its grace period runs to 3 April
    node.finding("u1", found_on="2024-03-29", deadline="2024-04-30")  # March's, entered late
    node.finding("u1", found_on="2024-04-01", deadline="2024-04-30")  # April's
    out = node.run("publish_indicators")
    assert out["months"] == {"2024-03": "provisional", "2024-04": "provisional"}
    unit, district = march(node)
    assert (unit["provisional"], unit["findings_total"], district["findings_total"]) == (True, 1, 1)
    april = [e.payload for e in node.events("UnitIndicators.Published")
             if e.payload["unit_id"] == "u1" and e.payload["period"] == "2024-04"][-1]
    assert april["findings_total"] == 2

    clock.set("2024-04-03T23:30")
    assert node.run("publish_indicators")["units"] == 0  # still the grace period: nothing new
    clock.set("2024-04-04T00:30")  # grace over: March published once more, final
    out = node.run("publish_indicators")
    assert out["months"] == {"2024-03": "final", "2024-04": "provisional"}
    unit, district = march(node)
    assert (unit["provisional"], unit["findings_total"], district["provisional"]) == (False, 1, False)
    head = node.head()
    assert node.run("publish_indicators")["months"] == {"2024-04": "provisional"}
    assert node.head() == head  # a closed month is left as it is, nothing written again
