"""Every shared record keeps its audience across commands (issue 11, A5).

A command loads its aggregate by replaying the stream, edits it, and the new event takes
the audience the replayed aggregate remembers. ``Attendance.Recorded`` forgot it, so a
correction went out as node-only: 39 attendees at the district, 40 elsewhere, for ever.

Per record kind: any sequence of edits (hypothesis, bounded and seeded), each one a
command of its own (a fresh replay in between), and a replica that sees only what
leaves the node (every event not ``node``) ends in the same state as the origin
whenever the origin's record is shared.
"""
from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings, strategies as st

from services.exchange import domain as d
from shared.errors import BadInput, RuleViolation

OWNER = "district-a"


def replay(cls, rid, events):
    return cls.replay(rid, [(type(e).event_type, i + 1, copy.deepcopy(e.data()))
                            for i, e in enumerate(events)])


def _content(**over):
    return dict({"unit_id": "a-xj", "unit_name": "甲区x局", "title": "标题", "summary": "摘要",
                 "body": "正文", "business_type": "监督", "topics": [], "attachments": [],
                 "category": "四风", "facts": "事实", "analysis": "分析", "lessons": ["教训"],
                 "tags": [], "theme": "主题", "description": "说明",
                 "starts_at": "2026-03-01T09:00:00Z", "ends_at": "2026-03-01T11:00:00Z",
                 "location": "会议室", "invited_nodes": ["district-b"], "section": "科室",
                 "indicators": {"x": 1}, "period": "2026-01", "context": "背景",
                 "deadline": "2026-06-30"}, **over)


_REFERRAL = {"unit_id": "a-xj", "unit_name": "甲区x局", "rect_id": "r-1", "description": "逾期未整改",
             "severity": "general", "source": "inspection", "found_on": "2026-01-10",
             "deadline": "2026-03-01", "days_overdue": 95, "referred_on": "2026-06-04",
             "trail": [{"on": "2026-06-04", "what": "escalated", "step": 4, "level": "city",
                        "days_overdue": 95}]}
_UNIT = {"unit_id": "a-xj", "name": "甲区x局", "kind": "government_dept", "level": "unit",
         "parent_id": None, "active": True, "demonstration_site": False, "pilot_flags": []}


def _share(level):
    def op(agg, n):
        agg.share(level, ["city"] if level == "named" else [])
    return op


def _withdraw(agg, n):
    agg.withdraw("不再共享 %d" % n)


ROOT_OPS = [_share("all"), _share("city"), _share("named"), _withdraw]

# kind -> (class, create(rid), [edits]); an edit that the rules refuse is skipped
KINDS = {
    "experience": (d.Experience, lambda rid: d.Experience.draft(rid, _content()), ROOT_OPS + [
        lambda a, n: a.edit({"title": "标题 %d" % n})]),
    "case": (d.Case, lambda rid: d.Case.compile(rid, _content()), ROOT_OPS + [
        lambda a, n: a.revise({"summary": "摘要 %d" % n}, [], "修订")]),
    "activity": (d.JointActivity, lambda rid: d.JointActivity.plan(rid, _content()), ROOT_OPS + [
        lambda a, n: a.reschedule("2026-03-%02dT09:00:00Z" % (n % 27 + 2),
                                  "2026-03-%02dT11:00:00Z" % (n % 27 + 2), "礼堂", "改期"),
        lambda a, n: a.report_outcome("成效 %d" % n, ["结果"]),
        lambda a, n: a.cancel("取消")]),
    "exemplar": (d.Exemplar, lambda rid: d.Exemplar.nominate(rid, _content()), ROOT_OPS + [
        lambda a, n: a.update_indicators({"x": n + 2}, "2026-02")]),
    "problem": (d.JointProblem, lambda rid: d.JointProblem.post(rid, _content(), "2026-01-01"), ROOT_OPS + [
        lambda a, n: a.extend_deadline("2026-07-%02d" % (n % 28 + 1), "延期", "2026-01-01"),
        lambda a, n: a.accept("district-b/p-%d" % n, "district-b", "采纳"),
        lambda a, n: a.resolve("解决", ["结果"], ["措施"], "2026-08-01")]),
    "signup": (d.SignUp, lambda rid: d.SignUp.register(
        rid, "named", ["city", "district-b"], "district-b/act-1", "a-xj", "甲区x局", 3), [
        lambda s, n: s.change(n + 4),
        lambda s, n: s.withdraw("不去了"),
        lambda s, n: s.register_again("named", ["city", "district-b"], "甲区x局", n + 1)]),
    "attendance": (d.Attendance, lambda rid: d.Attendance.record(
        rid, "all", [], "district-b/act-1",
        [{"unit_id": "a-xj", "unit_name": "甲区x局", "attendees": 40}], "出席"), [
        lambda a, n: a.correct([{"unit_id": "a-xj", "unit_name": "甲区x局",
                                 "attendees": 39 - n}], "更正")]),
    "indicators": (d.IndicatorReport, lambda rid: d.IndicatorReport.record(
        rid, "city", "education", "unit", "a-xj", "甲区x局", "2026-01", {"x": 1}), [
        lambda r, n: r.update("education", "unit", "a-xj", "甲区x局", "2026-01", {"x": n + 2})]),
    # append-only sub-records: one event each, which must still set the audience
    "learned": (d.LearnedFrom, lambda rid: d.LearnedFrom.mark(
        rid, "all", [], "district-b/exp-1", "a-xj", "甲区x局", "学到了"), []),
    "comment": (d.Comment, lambda rid: d.Comment.post(
        rid, "city", [], "case", "district-b/case-1", "district-b/case-1", "评论", "a-xj",
        "甲区x局", None), []),
    "contribution": (d.Contribution, lambda rid: d.Contribution.add(
        rid, "all", [], "district-b/case-1", "analysis", "补充", "a-xj", "甲区x局"), []),
    "endorsement": (d.Endorsement, lambda rid: d.Endorsement.give(
        rid, "all", [], "district-b/ex-1", "赞同", "a-xj", "甲区x局"), []),
    "proposal": (d.Proposal, lambda rid: d.Proposal.submit(
        rid, "named", ["district-b"], "district-b/p-1", "方案", "细节", "a-xj", "甲区x局"), []),
    # 督办 (issue 10 #5): the referred case follows the district's rectification
    "escalation": (d.EscalatedCase, lambda rid: d.EscalatedCase.refer(rid, _REFERRAL), ROOT_OPS + [
        lambda c, n: c.progress("Rectification.DeadlineExtended", {
            "deadline": "2026-07-%02d" % (n % 28 + 1), "extended_on": "2026-06-%02d" % (n % 28 + 1)}),
        lambda c, n: c.progress("Rectification.Rejected", {"rejected_on": "2026-06-%02d" % (n % 28 + 1)}),
        lambda c, n: c.progress("Rectification.Verified", {"verified_on": "2026-08-%02d" % (n % 28 + 1)})]),
    "followup": (d.FollowUp, lambda rid: d.FollowUp.record(
        rid, "named", ["district-b"], "district-b/esc-1", "a-xj", "甲区x局",
        sorted(d.FOLLOW_UP_ACTIONS)[0], "请说明进展", "2026-06-01", None), []),
    # the unit register the city reads (issue 10 #6)
    "register": (d.UnitRegister, lambda rid: d.UnitRegister.record(rid, [_UNIT]), [
        lambda r, n: r.update([dict(_UNIT, name="甲区x局 %d" % n)])]),
}


def test_every_shared_aggregate_is_covered():
    classes = {cls for cls, _, _ in KINDS.values()}
    shared = {c for c in vars(d).values()
              if isinstance(c, type) and issubclass(c, d.SharedAggregate)
              and c not in (d.SharedAggregate, d.Record, d.SubRecord)}
    assert shared == classes


def visible(agg) -> bool:
    return not isinstance(agg, d.Record) or getattr(agg, "published", False)


def state(agg) -> dict:
    s = agg.snapshot_state()
    return {k: v for k, v in s.items() if k != "version"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_replica_agrees_after_any_sequence_of_edits(kind):
    cls, create, ops = KINDS[kind]

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(st.lists(st.integers(min_value=0, max_value=max(len(ops) - 1, 0)), max_size=12))
    def run(choices):
        rid = "%s/%s-1" % (OWNER, kind)
        agg = create(rid)
        log = agg.collect_events()
        for n, i in enumerate(choices if ops else []):
            agg = replay(cls, rid, log)  # each edit is a command of its own
            try:
                ops[i](agg, n)
            except (RuleViolation, BadInput):
                continue
            new = agg.collect_events()
            for e in new:
                assert "sharing" in e.data()
            log += new
        origin = replay(cls, rid, log)
        shipped = [e for e in log if e.data()["sharing"] != "node"]
        if not visible(origin):
            return
        replica = replay(cls, rid, shipped)
        assert state(replica) == state(origin)

    run()


def test_attendance_correction_keeps_its_sharing():
    """The seen defect, spelt out: a replayed attendance corrects at its level."""
    a = d.Attendance.record("district-a/att-1", "all", [], "district-b/act-1",
                            [{"unit_id": "a-xj", "unit_name": "甲区x局", "attendees": 40}], "")
    loaded = replay(d.Attendance, a.id, a.collect_events())
    loaded.correct([{"unit_id": "a-xj", "unit_name": "甲区x局", "attendees": 39}], "更正")
    [corrected] = loaded.collect_events()
    assert (corrected.sharing, corrected.recipients) == ("all", [])
