"""Joint problems' deadlines are tracked (issue 10, item 12), across a city and two
districts: a deadline already past is refused with nothing written; past its deadline an
unresolved problem is overdue on its owner's node and shown so on every node; once a
solution is accepted, no node can propose another."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from services.exchange.federation import outbox
from tests.harness import wait_for
from shared import config
from shared.errors import BadInput, RuleViolation

ALL = {"sharing": "all", "recipients": []}


def _today():
    return datetime.now(ZoneInfo(config.timezone_name())).date()


def _staged(node) -> int:
    with node.runtime.engine.connect() as conn:
        return len(conn.execute(select(outbox.c.envelope)).all())


def test_a_deadline_already_past_is_refused_and_nothing_is_written(network):
    a = network["district-a"]
    head, staged = a.query("federation_status"), _staged(a)
    with a.runtime.read() as c:
        before = a.runtime.store.head(c)
    yesterday = (_today() - timedelta(days=1)).isoformat()
    with pytest.raises(BadInput) as err:
        a.execute("post_problem", {"problem_id": "late-deadline", "unit_id": "a-gw", "title": "难题",
                                   "context": "背景", "deadline": yesterday, "share": ALL})
    assert "期限已过" in err.value.message and list(err.value.fields) == ["deadline"]
    with a.runtime.read() as c:
        assert a.runtime.store.head(c) == before
    assert a.record("district-a/late-deadline") is None and _staged(a) == staged
    assert a.query("federation_status") == head


def test_overdue_is_flagged_on_the_owner_and_shown_everywhere_then_no_more_proposals(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    deadline = (_today() + timedelta(days=1)).isoformat()
    pid = a.execute("post_problem", {"problem_id": "deadline-tracked", "unit_id": "a-gw",
                                     "title": "基层台账减负口径", "context": "请明确口径。",
                                     "deadline": deadline, "share": ALL})["problem_id"]
    nodes = (a, city, b)
    for node in nodes:
        wait_for(lambda n=node: n.record(pid), what="the problem at %s" % node.node_id)
        assert node.record(pid)["overdue"] is False
    p_b = b.execute("propose_solution", {"problem_id": pid, "unit_id": "b-xj", "summary": "清单式减负",
                                         "detail": "列出可不再报送的台账。"})["proposal_id"]
    wait_for(lambda: (a.record(pid)["sub_records"].get("proposal")), what="the proposal at district-a")
    # three days on, nobody has solved it: overdue at the owner and on every other node
    later = datetime.now(timezone.utc) + timedelta(days=3)
    saved = [n.runtime.clock for n in nodes]
    try:
        for node in nodes:
            node.runtime.clock = lambda: later
        assert [n.record(pid)["overdue"] for n in nodes] == [True, True, True]
        a.execute("accept_proposal", {"problem_id": pid, "proposal_id": p_b, "note": "采纳"})
        for node in nodes:
            wait_for(lambda n=node: n.record(pid)["status"] == "solution_accepted",
                     what="the acceptance at %s" % node.node_id)
            assert node.record(pid)["overdue"] is True  # accepted is not yet resolved
        # a proposal after the solution was accepted is refused wherever it is tried
        for node, unit in ((city, "city-gw"), (b, "b-xj"), (a, "a-gw")):
            with pytest.raises(RuleViolation):
                node.execute("propose_solution", {"problem_id": pid, "unit_id": unit,
                                                  "summary": "迟到的方案", "detail": "d"})
        a.execute("record_resolution", {"problem_id": pid, "summary": "清单式减负",
                                        "results": ["取消台账7项"], "measures": ["清单公布"],
                                        "resolved_on": later.date().isoformat()})
        for node in nodes:
            wait_for(lambda n=node: n.record(pid)["status"] == "resolved",
                     what="the resolution at %s" % node.node_id)
            assert node.record(pid)["overdue"] is False
        assert [len(n.record(pid)["sub_records"]["proposal"]) for n in nodes] == [1, 1, 1]
    finally:
        for node, clock in zip(nodes, saved):
            node.runtime.clock = clock
