"""Exchange rules without a database: joint problems' deadlines (issue 10, item 12)."""
from __future__ import annotations

import pytest

from services.exchange.domain import JointProblem, problem_overdue
from shared.errors import BadInput, RuleViolation

CONTENT = {"unit_id": "a-gw", "unit_name": "区直机关工委", "title": "难题", "context": "背景",
           "deadline": "2026-06-30", "tags": []}


def test_a_problem_posted_with_a_deadline_already_past_is_refused():
    with pytest.raises(BadInput) as err:
        JointProblem.post("p1", dict(CONTENT, deadline="2026-05-31"), "2026-06-01")
    assert "期限已过" in err.value.message and "deadline" in err.value.fields
    assert JointProblem.post("p1", CONTENT, "2026-06-30").deadline == "2026-06-30"  # today is fine


def test_an_extension_into_the_past_is_refused():
    p = JointProblem.post("district-a/p1", CONTENT, "2026-06-01")
    p.share("all", [])
    with pytest.raises(BadInput):  # later than the old deadline, but already past
        p.extend_deadline("2026-07-15", "延期", "2026-08-01")
    with pytest.raises(RuleViolation):
        p.extend_deadline("2026-06-15", "延期", "2026-06-02")
    p.extend_deadline("2026-09-30", "延期", "2026-08-01")
    assert p.deadline == "2026-09-30"


@pytest.mark.parametrize("status,deadline,today,overdue", [
    ("open", "2026-06-30", "2026-06-30", False),          # due today: not yet
    ("open", "2026-06-30", "2026-07-01", True),
    ("solution_accepted", "2026-06-30", "2026-07-01", True),  # accepted, not yet resolved
    ("resolved", "2026-06-30", "2026-07-01", False),
    ("withdrawn", "2026-06-30", "2026-07-01", False),
    ("open", None, "2026-07-01", False),
])
def test_overdue_is_unresolved_past_the_deadline(status, deadline, today, overdue):
    assert problem_overdue(status, deadline, today) is overdue
