"""跟踪问效 and 推进会 in the pure domain: tasks, their overdue ladder, meetings' decisions;
and the other practices' rules (专项, 重点岗位, 群众监督), each given the facts it needs."""
from __future__ import annotations

import pytest

from services.supervision.domain import (
    MEETING_KINDS, TASK_SOURCES, TASK_STATUSES, Campaign, KeyPostRegister, Meeting,
    PublicReport, Task, TaskList, in_subtree, require_responsible, task_colour, task_days_overdue,
)
from services.supervision.settings import DEFAULT_LADDER
from shared.errors import BadInput, Conflict, RuleViolation
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


# -- the facts the practices' commands read, given to the rules -----------------------------------
def unit(unit_id, path, active=True) -> dict:
    """A unit directory row, as the read port answers it."""
    return {"unit_id": unit_id, "path": path, "active": active, "name": unit_id}


QU, U1, U2 = unit("qu", "/qu/"), unit("u1", "/qu/u1/"), unit("u2", "/qu/u2/")
ELSEWHERE = unit("x1", "/other/x1/")
CLOSED = unit("u9", "/qu/u9/", active=False)


def test_in_subtree_reads_the_directory_paths():
    assert in_subtree("/qu/u1/", "/qu/") and in_subtree("/qu/", "/qu/")
    assert not in_subtree("/qu/", "/qu/u1/") and not in_subtree("/qux/", "/qu/")
    assert not in_subtree(None, "/qu/")  # a unit not in the directory
    assert in_subtree("/qu/u1/", None) is in_subtree("/qu/u1/", "") is True


def test_a_responsible_unit_is_in_use_and_below_the_issuer():
    assert require_responsible(U1, QU["path"], "unit_id") is U1
    with pytest.raises(BadInput, match="管辖范围") as exc:
        require_responsible(ELSEWHERE, QU["path"], "items.0.unit_id")
    assert exc.value.fields == {"items.0.unit_id": ["不在下达单位之下"]}
    with pytest.raises(RuleViolation, match="已停用") as exc:
        require_responsible(CLOSED, QU["path"], "unit_ids.1")
    assert exc.value.fields == {"unit_ids.1": ["已停用"]}


def test_a_task_list_is_issued_by_a_unit_in_use_under_a_free_id():
    with pytest.raises(RuleViolation) as exc:
        TaskList.issue("l1", "x", "u9", "2024-03-01", issuer=CLOSED)
    assert exc.value.fields == {"issuer_unit_id": ["已停用"]}
    # a taken id is a 409, as every other record's id in every service
    with pytest.raises(Conflict, match="任务清单「l1」已存在") as exc:
        TaskList.issue("l1", "x", "qu", "2024-03-01", issuer=QU, taken=True)
    assert (type(exc.value), exc.value.fields) == (Conflict, {"list_id": ["已被占用"]})
    tl = TaskList.issue("l1", "x", "qu", "2024-03-01", issuer=QU)
    assert [e.event_type for e in tl.pending_events] == ["TaskList.Issued"]


def test_a_list_assigns_a_task_to_a_unit_below_its_issuer_under_a_free_id():
    tl = TaskList.issue("l1", "x", "qu", "2024-03-01")
    refused = [
        (dict(unit=ELSEWHERE, field="items.2.unit_id"), BadInput, {"items.2.unit_id": ["不在下达单位之下"]}),
        (dict(unit=CLOSED), RuleViolation, {"unit_id": ["已停用"]}),
        (dict(unit=U1, taken=True), Conflict, {"task_id": ["已被占用"]}),
        (dict(unit=U1, deadline="2024-02-28"), BadInput, {"deadline": ["不得早于今天"]}),
    ]
    for facts, error, fields in refused:
        facts = {"deadline": "2024-03-31", **facts}
        with pytest.raises(error) as exc:
            tl.assign_task("t1", facts.pop("unit"), QU["path"], "建立台账", "每岗一张",
                           facts.pop("deadline"), "2024-03-01", **facts)
        assert exc.value.fields == fields
    # only the deadline is checked after the item is counted (the command then records nothing)
    assert tl.items == 1
    tl = TaskList.issue("l2", "x", "qu", "2024-03-01")
    task = tl.assign_task("t2", U2, QU["path"], "建立台账", "每岗一张", "2024-03-31", "2024-03-01")
    assert (task.unit_id, tl.items, task.pending_events[0].seq) == ("u2", 1, 1)


def test_a_meeting_is_convened_by_a_unit_in_use_of_units_below_it_under_a_free_id():
    def hold(**facts):
        return Meeting.hold("m1", "联席推进会", "joint_promotion", "qu", "2024-03-01",
                            [u["unit_id"] for u in facts.get("units", ())], "研究整改",
                            "2024-03-01", **facts)
    with pytest.raises(RuleViolation) as exc:
        hold(convener=CLOSED)
    assert exc.value.fields == {"convener_unit_id": ["已停用"]}
    with pytest.raises(Conflict, match="会议「m1」已存在") as exc:
        hold(convener=QU, taken=True)
    assert (type(exc.value), exc.value.fields) == (Conflict, {"meeting_id": ["已被占用"]})
    with pytest.raises(BadInput) as exc:
        hold(convener=QU, units=[U1, ELSEWHERE])
    assert exc.value.fields == {"unit_ids.1": ["不在下达单位之下"]}
    with pytest.raises(RuleViolation) as exc:
        hold(convener=QU, units=[CLOSED, U1])
    assert exc.value.fields == {"unit_ids.0": ["已停用"]}
    # the units are checked as they are read: the first refused one stops the reading
    read = []

    def rows():
        for u in (CLOSED, U1):
            read.append(u["unit_id"])
            yield u
    with pytest.raises(RuleViolation):
        Meeting.hold("m1", "x", "regular", "qu", "2024-03-01", ["u9", "u1"], "", "2024-03-01",
                     convener=QU, units=rows())
    assert read == ["u9"]
    m = hold(convener=QU, units=[U1, U2])
    assert m.unit_ids == ["u1", "u2"]


def test_a_campaign_is_launched_over_a_unit_in_use_under_a_free_id():
    def launch(**facts):
        return Campaign.launch("c1", "专项整治", "rectification", "qu", "2024-03-01", "2024-06-30",
                               ["formalism"], "", "2024-03-01", **facts)
    with pytest.raises(RuleViolation) as exc:
        launch(scope=CLOSED)
    assert exc.value.fields == {"scope_unit_id": ["已停用"]}
    with pytest.raises(Conflict, match="专项「c1」已存在") as exc:
        launch(scope=QU, taken=True)
    assert (type(exc.value), exc.value.fields) == (Conflict, {"campaign_id": ["已被占用"]})
    assert launch(scope=QU).categories == ["formalism"]


def test_a_campaign_tags_a_finding_of_its_scope_and_period_once():
    c = Campaign.launch("c1", "专项整治", "rectification", "qu", "2024-03-01", "2024-06-30",
                        ["formalism"], "", "2024-03-01")

    def tag(unit_path="/qu/u1/", found_on="2024-03-05", four_winds="formalism", finding="f1"):
        c.tag(finding, in_subtree(unit_path, "/qu/"), "u1", found_on, four_winds, "2024-03-10")
    for facts, error, fields in [
        (dict(unit_path="/other/x1/"), BadInput, {"unit_id": ["不在专项范围内"]}),
        (dict(unit_path=None), BadInput, {"unit_id": ["不在专项范围内"]}),  # not in the directory
        (dict(found_on="2024-02-28"), BadInput, {"found_on": ["不在专项期间内"]}),
        (dict(four_winds="hedonism"), BadInput, {"four_winds": ["不是本专项的类别"]}),
    ]:
        with pytest.raises(error) as exc:
            tag(**facts)
        assert exc.value.fields == fields
    assert c.pending_events[1:] == []
    tag()
    with pytest.raises(RuleViolation, match="已纳入"):
        tag()
    c.close("总结", "2024-06-30")
    with pytest.raises(RuleViolation, match="已总结收尾"):
        tag(finding="f2")
    assert c.findings == ["f1"]


def test_a_key_post_is_flagged_for_a_unit_in_use():
    reg = KeyPostRegister.start("u9")
    with pytest.raises(RuleViolation) as exc:
        reg.flag("局长", "top_leader", "一把手", "2024-03-01", unit=CLOSED)
    assert exc.value.fields == {"unit_id": ["已停用"]}
    assert reg.pending_events == []
    reg = KeyPostRegister.start("u1")
    reg.flag("局长", "top_leader", "一把手", "2024-03-01", unit=U1)
    assert reg.posts == {"局长": "top_leader"}


def test_a_public_report_is_about_a_unit_in_use_and_is_handled_once():
    with pytest.raises(RuleViolation) as exc:
        PublicReport.receive("r1", "u9", "complaint", "门难进", None, None, "2024-03-01", unit=CLOSED)
    assert exc.value.fields == {"unit_id": ["已停用"]}
    r = PublicReport.receive("r1", "u1", "complaint", "门难进", None, None, "2024-03-01", unit=U1)
    r.convert("f1", "2024-03-02", "insp-1")
    for handle in (lambda: r.convert("f2", "2024-03-03", "insp-1"),
                   lambda: r.dismiss("重复", "2024-03-03", "insp-1")):
        with pytest.raises(RuleViolation, match="已转为问题") as exc:
            handle()
        assert exc.value.fields == {"report_id": ["已转为问题"]}
    assert [e.event_type for e in r.pending_events] == ["PublicReport.Received",
                                                        "PublicReport.Converted"]
