"""跟踪问效 and 推进会 in the pure domain: tasks, their overdue ladder, meetings' decisions."""
from __future__ import annotations

import pytest

from services.supervision.domain import (
    MEETING_KINDS, TASK_SOURCES, TASK_STATUSES, Meeting, Task, TaskList, task_colour,
    task_days_overdue,
)
from services.supervision.settings import DEFAULT_LADDER
from shared.errors import BadInput, RuleViolation
from shared.labels import catalogue

EVIDENCE = [{"path": "ab/" + "ab" * 32 + ".pdf", "sha256": "ab" * 32, "size_bytes": 1,
             "description": "台账"}]
TARGETS = {"owner_unit": {"unit_id": "u1"}, "unit_head": {"unit_id": "u1", "roles": ["unit_head"]},
           "district_office": {"unit_id": "qu"}, "city": {"counts_only": True}}


def a_task(deadline="2024-03-31", today="2024-03-01") -> Task:
    tl = TaskList.issue("l1", "清廉机关建设重点任务", "qu", today)
    seq = tl.add_item("t1")
    return Task.assign("t1", tl, seq, "u1", "建立廉政风险台账", "每个岗位一张台账", deadline, today)


def replayed(agg):
    rows = [(e.event_type, n, e.data()) for n, e in enumerate(agg.collect_events(), start=1)]
    return type(agg).replay(agg.id, rows)


def test_enums_are_in_the_label_catalogue():
    cat = catalogue()
    assert cat["supervision.TASK_STATUSES"] is TASK_STATUSES
    assert cat["supervision.TASK_SOURCES"] is TASK_SOURCES
    assert cat["supervision.MEETING_KINDS"].label("joint_promotion") == "联席推进会"


def test_a_task_carries_standard_deadline_and_unit_and_refuses_a_past_deadline():
    t = a_task()
    e = t.pending_events[0].data()
    assert (e["standard"], e["deadline"], e["unit_id"], e["seq"]) == (
        "每个岗位一张台账", "2024-03-31", "u1", 1)
    tl = TaskList.issue("l2", "x", "qu", "2024-03-01")
    with pytest.raises(BadInput) as exc:
        Task.assign("t2", tl, 1, "u1", "x", "y", "2024-02-28", "2024-03-01")
    assert "deadline" in exc.value.fields


def test_completion_needs_evidence_and_someone_else_accepts():
    t = a_task()
    with pytest.raises(BadInput):
        t.report_completion("做完了", [], "2024-03-20", "ua-u1")
    t.report_completion("已建立台账", EVIDENCE, "2024-03-20", "ua-u1")
    with pytest.raises(RuleViolation):
        t.report_completion("再报", EVIDENCE, "2024-03-21", "ua-u1")
    with pytest.raises(RuleViolation, match="自己"):
        t.accept("", "2024-03-21", "ua-u1")
    t.accept("合格", "2024-03-21", "insp-1")
    assert t.status == "accepted" and t.pending_events[-1].on_time is True
    assert replayed(t).status == "accepted"
    with pytest.raises(RuleViolation):
        t.extend_deadline("2024-05-01", "晚了", "2024-03-22")


def test_returned_completion_goes_back_to_open():
    t = a_task()
    t.report_completion("已建立台账", EVIDENCE, "2024-03-20", "ua-u1")
    t.return_("台账缺岗位", "2024-03-21", "insp-1")
    assert t.status == "open" and t.reported_on is None
    t.report_completion("补齐了", EVIDENCE, "2024-04-02", "ua-u1")
    t.accept("", "2024-04-03", "insp-1")
    assert t.pending_events[-1].on_time is False  # the completion came after the deadline


def test_overdue_task_takes_the_rectification_ladder_once_per_step():
    t = a_task()
    assert t.detect_overdue("2024-03-31", DEFAULT_LADDER, TARGETS) == 0
    assert t.detect_overdue("2024-04-01", DEFAULT_LADDER, TARGETS) == 2  # flag + owner unit
    assert t.detect_overdue("2024-04-01", DEFAULT_LADDER, TARGETS) == 0
    # head, office, city - and the city rung refers the task itself (once)
    assert t.detect_overdue("2024-05-15", DEFAULT_LADDER, TARGETS, "x局") == 4
    escalated = [e for e in t.pending_events if e.event_type == "Task.Escalated"]
    assert [e.level for e in escalated] == ["owner_unit", "unit_head", "district_office", "city"]
    assert escalated[-1].target == {"counts_only": True}
    referral = t.pending_events[-1]
    assert referral.event_type == "Task.ReferredToCity" and not referral.private
    assert (referral.unit_name, referral.standard, referral.days_overdue, referral.referred_on) == (
        "x局", a_task().standard, 45, "2024-05-15")
    assert [(e["what"], e.get("level")) for e in referral.trail] == [
        ("overdue", None), ("escalated", "owner_unit"), ("escalated", "unit_head"),
        ("escalated", "district_office"), ("escalated", "city")]
    # an extension starts a fresh ladder from the new deadline
    t.extend_deadline("2024-06-30", "汛期", "2024-05-15")
    assert (t.overdue, t.escalation_step) == (False, 0)
    assert t.detect_overdue("2024-06-30", DEFAULT_LADDER, TARGETS) == 0


def test_the_ladder_pauses_while_completion_awaits_acceptance():
    t = a_task()
    t.report_completion("已建立台账", EVIDENCE, "2024-04-03", "ua-u1")
    assert t.detect_overdue("2024-05-01", DEFAULT_LADDER, TARGETS) == 0
    assert task_days_overdue("2024-03-31", "reported", "2024-04-03", "2024-05-01") == 3
    assert task_days_overdue("2024-03-31", "open", None, "2024-05-01") == 31
    assert task_days_overdue("2024-03-31", "accepted", "2024-04-03", "2024-05-01") == 0


def test_a_meeting_decision_goes_to_a_unit_that_took_part():
    m = Meeting.hold("m1", "第一次联席推进会", "joint_promotion", "qu", "2024-03-01",
                     ["u1", "u2"], "研究整改", "2024-03-01")
    assert m.list_id == "m1"
    with pytest.raises(BadInput) as exc:
        m.record_decision("建立制度", "u3", "t9")
    assert "unit_id" in exc.value.fields
    assert m.record_decision("建立制度", "u2", "t9") == 1
    assert replayed(m).decisions == 1
    with pytest.raises(BadInput):
        Meeting.hold("m2", "x", "regular", "qu", "2024-03-02", ["u1"], "", "2024-03-01")
    with pytest.raises(BadInput):
        Meeting.hold("m3", "x", "regular", "qu", "2024-03-01", ["u1", "u1"], "", "2024-03-01")
    assert "joint_promotion" in MEETING_KINDS


def test_three_colours():
    assert task_colour("2024-03-31", "open", "2024-04-01", 7) == "red"
    assert task_colour("2024-03-31", "open", "2024-03-24", 7) == "yellow"
    assert task_colour("2024-03-31", "open", "2024-03-23", 7) == "green"
    assert task_colour("2024-03-31", "accepted", "2024-04-09", 7) == "green"
