"""Exchange rules without a database: joint problems' deadlines (issue 10, item 12), and
every rule a command decides with over the facts its handler read - owner, visibility,
audience, trusted peers, units, taken ids, what a sub-record may be added to (issue 12 §1)."""
from __future__ import annotations

import math

import pytest

from services.exchange import domain as d
from services.exchange.domain import JointProblem, problem_overdue
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation

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


# -- the commands' rules over the facts their handlers read (issue 12 §1) ---------------------
ME, CITY = "district-a", "city"


def _row(**over):
    """A record's row as a node has it (projections.SharedRecords)."""
    return dict({"record_id": "district-b/r1", "kind": "case", "owner": "district-b",
                 "sharing": "all", "recipients": [], "published": True, "status": "published"},
                **over)


def test_only_the_owner_node_changes_a_record():
    d.require_owner("district-a/c1", "case", ME, "可以改为提交补充内容")
    with pytest.raises(Forbidden) as err:
        d.require_owner("district-b/c1", "case", ME, "可以改为提交补充内容")
    assert err.value.message == "这条案例由其他节点创建，只有创建它的节点可以修改（可以改为提交补充内容）"
    assert err.value.fields == {"record_id": ["district-b/c1 属于节点 district-b"]}
    # the console shows a refusal's own message only if a person can read it (no ids)
    from services.console.web import _readable
    assert _readable(err.value.message)


def test_named_and_invited_nodes_must_be_trusted():
    d.require_trusted(["city", "district-b"], {"city", "district-b"}, "recipients")
    with pytest.raises(BadInput) as err:
        d.require_trusted(["city", "x", "y"], {"city"}, "invited_nodes")
    assert err.value.message == "未知的节点"
    assert err.value.fields == {"invited_nodes": ["不是本节点信任的节点：x, y"]}


def test_a_unit_named_is_one_of_this_node_in_use():
    assert d.own_unit_name({"name": "甲区x局", "active": True}, "a-xj") == "甲区x局"
    assert d.own_unit_name(None, None) is None  # no unit named: no name
    for unit in (None, {"name": "甲区x局", "active": False}):
        with pytest.raises(NotFound) as err:
            d.own_unit_name(unit, "a-xj", "units")
        assert err.value.message == "本节点没有单位「a-xj」"
        assert err.value.fields == {"units": ["没有这个在用的单位"]}


def test_a_node_adds_only_to_a_record_here_and_published():
    assert d.require_visible(_row(), "district-b/r1", "case")["owner"] == "district-b"
    for row, kind in ((None, "case"), (_row(kind="problem"), "case")):
        with pytest.raises(NotFound) as err:
            d.require_visible(row, "district-b/r1", kind)
        assert err.value.message == "本节点没有案例「district-b/r1」"
        assert err.value.fields == {"record_id": ["未共享给本节点"]}
    with pytest.raises(NotFound) as err:
        d.require_visible(None, "district-b/r1")
    assert err.value.message == "本节点没有记录「district-b/r1」"
    with pytest.raises(RuleViolation) as err:
        d.require_visible(_row(published=False, status="withdrawn"), "district-b/r1", "case")
    assert err.value.message == "案例「district-b/r1」尚未发布（当前为「已撤回」）"


def test_a_record_asked_for_is_one_this_node_has():
    assert d.require_known([{"event_type": "Case.Compiled"}], "district-b/r1")
    for nothing in (None, []):
        with pytest.raises(NotFound) as err:
            d.require_known(nothing, "district-b/r1")
        assert err.value.message == "本节点没有记录「district-b/r1」"


@pytest.mark.parametrize("kind,label", [("experience", "经验"), ("case", "案例"), ("activity", "活动"),
                                        ("exemplar", "典型"), ("problem", "难题"), ("comment", "评论"),
                                        ("contribution", "补充内容"), ("proposal", "方案")])
def test_an_id_names_one_record(kind, label):
    d.require_new(kind, "district-a/x", False)
    with pytest.raises(Conflict) as err:
        d.require_new(kind, "district-a/x", True, "x_id")
    assert type(err.value) is Conflict and err.value.message == "%s「district-a/x」已存在" % label
    assert err.value.fields == {"x_id": ["已被占用"]}
    with pytest.raises(Conflict) as err:
        d.require_new(kind, "district-a/x", True)
    assert err.value.fields == {}


def test_indicators_are_finite_and_whole_numbers_ints():
    out = d.numbers({"a": 3.0, "b": 0.25, "c": 7})
    assert out == {"a": 3, "b": 0.25, "c": 7} and type(out["a"]) is int
    for bad in (math.inf, math.nan):
        with pytest.raises(BadInput) as err:
            d.numbers({"a": 1, "b": bad})
        assert err.value.message == "指标必须是有限的数值" and err.value.fields == {"indicators": ["b"]}


@pytest.mark.parametrize("sharing,recipients,audience,sub", [
    ("all", [], {"*"}, ("all", [])),
    ("node", [], {"district-b"}, ("node", [])),
    ("city", [], {"district-b", CITY}, ("named", ["city", "district-b"])),
    ("named", [ME], {"district-b", ME}, ("named", ["district-b"])),
])
def test_what_a_node_adds_reaches_the_records_audience(sharing, recipients, audience, sub):
    row = _row(sharing=sharing, recipients=recipients)
    assert d.audience_of(row, CITY) == audience
    assert d.may_see(row, ME, CITY) is ("*" in audience or ME in audience)
    assert d.sub_audience(row, ME, CITY) == sub
    # the record's owner adding to its own record shared only with the city's view
    own = _row(owner=ME, sharing="city")
    assert d.sub_audience(own, ME, None) == ("node", [])


def _activity(invited=("district-b",)):
    return d.JointActivity.plan("district-a/act-1", {
        "unit_id": "a-xj", "unit_name": "甲区x局", "title": "专题党日", "theme": "主题",
        "description": "说明", "location": "会议室", "invited_nodes": list(invited),
        "starts_at": "2026-03-01T09:00:00Z", "ends_at": "2026-03-01T11:00:00Z"})


def test_the_invited_nodes_must_see_the_activity():
    a = _activity()
    for sharing in ("all", "named"):
        a.check_audience(sharing, ME, CITY)
    for sharing in ("node", "city"):
        with pytest.raises(RuleViolation) as err:
            a.check_audience(sharing, ME, CITY)
        assert err.value.fields == {"sharing": ["请设为“市区共享”或“指定单位”共享（受邀节点：district-b）"]}
    assert err.value.message == "按「上报市级」共享时，受邀节点看不到该活动"
    _activity(invited=[CITY]).check_audience("city", ME, CITY)  # the city sees what goes up to it
    _activity(invited=[]).check_audience("node", ME, CITY)
    d.Experience.draft("district-a/e1", {}).check_audience("node", ME, CITY)  # other kinds: nothing


def test_an_activity_takes_part_until_completed_or_cancelled():
    for status in ("planned", "announced"):
        d.require_activity_open(status)
    for status, label in (("completed", "已完成"), ("cancelled", "已取消")):
        with pytest.raises(RuleViolation) as err:
            d.require_activity_open(status)
        assert err.value.message == "该活动当前为「%s」" % label


def test_a_unit_signs_up_once_and_again_after_withdrawing():
    first = d.SignUp.sign_up(None, "district-a/s1", "all", [], "district-b/act-1", "a-xj",
                             "甲区x局", 5)
    assert first.active and first.headcount == 5
    with pytest.raises(Conflict) as err:
        d.SignUp.sign_up(first, "district-a/s1", "all", [], "district-b/act-1", "a-xj", "甲区x局", 6)
    assert type(err.value) is Conflict and err.value.message == "单位「a-xj」已报名，请改为修改人数"
    first.withdraw("有事")
    again = d.SignUp.sign_up(first, "district-a/s1", "all", [], "district-b/act-1", "a-xj", "甲区x局", 6)
    assert again is first and again.active and again.headcount == 6
    d.SignUp.require_signed_up(True, "a-xj", "district-b/act-1")
    with pytest.raises(NotFound) as err:
        d.SignUp.require_signed_up(False, "a-xj", "district-b/act-1")
    assert err.value.message == "单位「a-xj」未报名「district-b/act-1」"


def test_attendance_is_not_recorded_for_a_cancelled_activity():
    d.Attendance.check(_row(kind="activity", status="completed"))
    with pytest.raises(RuleViolation) as err:
        d.Attendance.check(_row(kind="activity", status="cancelled"))
    assert err.value.message == "该活动已取消"


def test_a_unit_marks_an_experience_learnt_once():
    d.LearnedFrom.check("a-xj", "district-b/e1", False)
    with pytest.raises(Conflict) as err:
        d.LearnedFrom.check("a-xj", "district-b/e1", True)
    assert err.value.message == "单位「a-xj」已将「district-b/e1」标记为学习过"


def test_a_comment_on_a_proposal_needs_the_proposal_and_a_reply_its_discussion():
    proposal = {"sub_kind": "proposal", "record_id": "district-b/p1", "parent_id": "district-b/p1"}
    assert d.Comment.on_proposal(proposal, "district-c/pr1") is proposal
    for row in (None, dict(proposal, sub_kind="comment")):
        with pytest.raises(NotFound) as err:
            d.Comment.on_proposal(row, "district-c/pr1")
        assert err.value.message == "本节点没有方案「district-c/pr1」"
    comment = {"sub_kind": "comment", "record_id": "district-b/p1"}
    d.Comment.check_reply(comment, "district-b/p1")
    for row in (None, dict(comment, sub_kind="proposal"), dict(comment, record_id="district-b/p2")):
        with pytest.raises(BadInput) as err:
            d.Comment.check_reply(row, "district-b/p1")
        assert err.value.message == "回复的对象不是本讨论中的评论"
        assert err.value.fields == {"reply_to": ["「district-b/p1」下没有这条评论"]}


def test_a_revision_merges_only_contributions_to_its_case():
    ok = {"sub_kind": "contribution", "parent_id": "district-a/c1"}
    d.Case.check_merge("district-a/c1", [("district-b/k1", ok)])
    for row in (None, dict(ok, sub_kind="comment"), dict(ok, parent_id="district-a/c2")):
        with pytest.raises(BadInput) as err:
            d.Case.check_merge("district-a/c1", [("district-b/k1", ok), ("district-b/k2", row)])
        assert err.value.message == "不是该案例的补充内容"
        assert err.value.fields == {"merge_contributions": ["「district-b/k2」不是「district-a/c1」的补充内容"]}


def test_contributions_and_endorsements_come_from_other_nodes():
    d.Contribution.check(_row(), ME)
    with pytest.raises(RuleViolation) as err:
        d.Contribution.check(_row(owner=ME), ME)
    assert err.value.message == "该案例属于本节点：请直接修订，而不是提交补充"
    exemplar = _row(kind="exemplar", record_id="district-b/x1")
    d.Endorsement.check(exemplar, ME, False)
    with pytest.raises(RuleViolation) as err:
        d.Endorsement.check(dict(exemplar, owner=ME), ME, False)
    assert err.value.message == "节点不能为自己的典型点赞推荐"
    with pytest.raises(Conflict) as err:  # once per node
        d.Endorsement.check(exemplar, ME, True)
    assert type(err.value) is Conflict and err.value.message == "本节点已推荐过「district-b/x1」"


def test_proposals_while_the_problem_is_open_and_the_one_accepted_is_for_it():
    d.Proposal.check(_row(kind="problem", status="open"))
    with pytest.raises(RuleViolation) as err:
        d.Proposal.check(_row(kind="problem", status="solution_accepted"))
    assert err.value.message == "该难题当前为「已采纳方案」，不再接受方案"
    proposal = {"sub_kind": "proposal", "parent_id": "district-a/p1", "owner": "district-b"}
    assert d.JointProblem.proposal_of(proposal, "district-b/pr1", "district-a/p1") is proposal
    for row in (None, dict(proposal, sub_kind="comment"), dict(proposal, parent_id="district-a/p2")):
        with pytest.raises(BadInput) as err:
            d.JointProblem.proposal_of(row, "district-b/pr1", "district-a/p1")
        assert err.value.message == "不是该难题的方案"
        assert err.value.fields == {"proposal_id": ["本节点没有方案「district-b/pr1」（难题「district-a/p1」）"]}


def test_a_report_takes_the_period_the_unit_and_the_numbers_only():
    assert d.figures_taken("unit", {"unit_id": "a-xj", "period": "2026-05", "name": "某人",
                                    "findings_total": 4.0, "provisional": True, "closure_rate": 0.5}) \
        == ("2026-05", "a-xj", {"findings_total": 4, "provisional": 1, "closure_rate": 0.5})
    # a district's figures name no unit; the month of as_of; an indicators object wins
    assert d.figures_taken("district", {"unit_id": "a-xj", "as_of": "2026-05-31T16:00:00Z",
                                        "indicators": {"x": 1, "note": "文字"}, "y": 2}) \
        == ("2026-05", None, {"x": 1})
    for payload in ({"period": "2026-05", "note": "文字"}, {"findings_total": 1}, None,
                    {"period": 202605, "x": 1}):
        assert d.figures_taken("unit", payload) is None
    assert d.indicator_figures({"x": math.inf, "y": True, "period": "2026-05"}) == {"y": 1}


# -- with this node's education service (education_link.py) -----------------------------------
SESSION = {"session_id": "s1", "slug": "sx-1", "organiser_unit_id": "c-gw", "title": "上下联学",
           "theme": "警示教育", "scheduled_at": "2026-03-01T02:00:00Z",
           "nodes": [CITY, "district-a", "district-x"]}


def test_a_session_shared_with_nodes_is_an_activity_named_to_the_trusted_ones():
    a = d.JointActivity.for_session("city/sx-1", SESSION, CITY, {CITY, "district-a"},
                                    {"name": "市直机关工委", "active": True})
    assert (a.sharing, a.recipients, a.invited_nodes) == ("named", ["district-a"], ["district-a"])
    assert (a.unit_name, a.theme, a.starts_at, a.ends_at, a.status) == (
        "市直机关工委", "警示教育", "2026-03-01T02:00:00Z", "2026-03-01T02:00:00Z", "announced")
    assert a.description == "上下联学（警示教育，由city组织）"
    # no trusted node left: nothing, and the organiser unit is not asked for
    assert d.JointActivity.for_session("city/sx-1", SESSION, CITY, {CITY}, None) is None
    with pytest.raises(NotFound):
        d.JointActivity.for_session("city/sx-1", SESSION, CITY, {"district-a"}, None)


def test_a_participation_counts_for_a_joint_activity_this_node_sees():
    row = _row(kind="activity", status="announced")
    assert d.Attendance.takes_participation(row)
    for other in (None, dict(row, kind="case"), dict(row, published=False),
                  dict(row, status="cancelled")):
        assert not d.Attendance.takes_participation(other)


def test_attendance_units_follow_each_participation():
    units = [{"unit_id": "b", "unit_name": "乙", "attendees": 3}]
    added = d.Attendance.units_with(units, "a", True, "甲", "5")
    assert added == [{"unit_id": "a", "unit_name": "甲", "attendees": 5}, units[0]]
    assert d.Attendance.units_with(added, "a", True, "甲", 6)[0]["attendees"] == 6  # corrected
    assert d.Attendance.units_with(added, "a", False, None, 0) == units              # no longer
    assert d.Attendance.units_with(units, "a", False, None, 0) == units
    assert units == [{"unit_id": "b", "unit_name": "乙", "attendees": 3}]          # not changed
