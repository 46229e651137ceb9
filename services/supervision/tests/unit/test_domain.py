"""The pure domain: every rule an aggregate keeps, without a database."""
from __future__ import annotations

import pytest

from services.supervision.domain import (
    DEFAULT_DIMENSIONS, AssessmentRound, Checklist, DisciplineCounts, DisciplineRecord,
    EducationFacts, Finding, IndicatorSystem, Inspection, MicroPowerWatch, Rectification, RiskPoint,
    ScreeningSchedule, UnitIndicators, assess_level, days_overdue, due_escalations,
    education_compliance, ended_periods,
    months_in, next_period, period_bounds, period_of, rank, score_unit,
)
from services.supervision.settings import DEFAULT_LADDER, ConfigError, Settings
from shared.aggregate import Aggregate
from shared.errors import BadInput, RuleViolation
from datetime import date

RULES = Settings().risk_rules()


def replayed(agg: Aggregate) -> Aggregate:
    """The aggregate rebuilt from its own events, as a reload would (state is what the
    events say, nothing else)."""
    rows = [(e.event_type, n, e.data()) for n, e in enumerate(agg.collect_events(), start=1)]
    return type(agg).replay(agg.id, rows)


def types(agg: Aggregate) -> list[str]:
    return [e.event_type.split(".")[1] for e in agg.pending_events]


# -- periods ------------------------------------------------------------------------------
@pytest.mark.parametrize("day,cadence,period", [
    (date(2024, 2, 29), "monthly", "2024-02"), (date(2024, 5, 1), "quarterly", "2024-Q2"),
    (date(2024, 7, 1), "half_yearly", "2024-H2"), (date(2024, 12, 31), "yearly", "2024"),
])
def test_period_of(day, cadence, period):
    assert period_of(day, cadence) == period


def test_period_bounds_and_next():
    assert period_bounds("2024-Q1") == (date(2024, 1, 1), date(2024, 3, 31))
    assert period_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert period_bounds("2024-H2") == (date(2024, 7, 1), date(2024, 12, 31))
    assert period_bounds("2023") == (date(2023, 1, 1), date(2023, 12, 31))
    assert next_period("2024-Q4", "quarterly") == "2025-Q1"
    assert next_period("2024-12", "monthly") == "2025-01"
    assert months_in("2024-Q2") == ["2024-04", "2024-05", "2024-06"]


# -- checklist and inspection ----------------------------------------------------------------
def planned(criteria_version_checklist=None):
    checklist = criteria_version_checklist or Checklist.default()
    return Inspection.plan("i1", "u1", "一季度检查", "2024-03-05", checklist)


def full_scores(insp, score=25, note="ok"):
    return [{"criterion": c["code"], "score": score, "note": note} for c in insp.criteria]


def test_default_checklist_has_the_reports_four_criteria():
    c = Checklist.default()
    assert [x["name"] for x in c.criteria()] == ["规定动作全不全", "自选动作实不实",
                                                 "业务融合紧不紧", "问题整改快不快"]
    assert c.current == 1


def test_a_revision_is_a_new_version_and_old_ones_stay():
    c = replayed(Checklist.default())
    old = c.criteria()
    c.revise(c.title, old + [{"code": "coverage", "name": "基层站所覆盖全不全", "max_score": 10,
                             "description": ""}], "加一项")
    assert c.current == 2 and len(c.criteria()) == 5 and c.criteria(1) == old
    with pytest.raises(RuleViolation):
        c.revise(c.title, c.criteria(), "nothing")
    with pytest.raises(BadInput) as err:
        c.revise(c.title, old + [dict(old[0])], "dupe")
    assert "criteria" in err.value.fields


def test_an_inspection_is_scored_under_the_version_it_was_planned_with():
    c = Checklist.default()
    insp = planned(c)
    c.revise(c.title, c.criteria() + [{"code": "extra", "name": "新增", "max_score": 10,
                                       "description": ""}], "v2")
    with pytest.raises(BadInput) as err:
        insp.score([{"criterion": "extra", "score": 5, "note": "x"}])
    assert "不在第 1 版检查清单中" in err.value.fields["scores.0.criterion"][0]
    assert insp.checklist_version == 1


@pytest.mark.parametrize("score,note,field", [
    (26, "x", "scores.0.score"), (-1, "x", "scores.0.score"), (20, "", "scores.0.note"),
])
def test_scores_outside_the_scale_or_unexplained_deductions_are_refused(score, note, field):
    insp = planned()
    before = len(insp.pending_events)
    with pytest.raises(BadInput) as err:
        insp.score([{"criterion": "prescribed_actions", "score": score, "note": note}])
    assert field in err.value.fields
    assert len(insp.pending_events) == before  # nothing recorded


def test_complete_needs_every_score_and_the_on_site_feedback():
    insp = planned()
    insp.note_finding("f1")
    with pytest.raises(RuleViolation, match="尚未评分"):
        insp.complete("2024-03-06")
    insp.score(full_scores(insp, 25))
    with pytest.raises(RuleViolation, match="现场反馈"):
        insp.complete("2024-03-06")
    with pytest.raises(RuleViolation, match="不是在本次检查中记录的"):
        insp.give_feedback([{"role": "party_secretary", "name": "张三"}], "2024-03-05T10:00:00+08:00",
                           ["f9"], "x")
    insp.give_feedback([{"role": "party_secretary", "name": "张三"}], "2024-03-05T10:00:00+08:00",
                       None, "当面反馈")
    insp.complete("2024-03-06")
    done = replayed(insp)
    assert done.status == "completed"
    with pytest.raises(RuleViolation, match="已完成"):
        done.score(full_scores(done))
    with pytest.raises(RuleViolation):
        done.note_finding("f2")


def test_feedback_events_are_private_and_completion_totals():
    insp = planned()
    insp.score(full_scores(insp, 20, "扣分"))
    insp.give_feedback([{"role": "unit_head", "name": "王五"}], "2024-03-05T10:00:00+08:00", [], "无问题")
    insp.complete("2024-03-05")
    done = insp.pending_events[-1]
    assert Inspection.FeedbackGiven.private is True
    assert (done.total_score, done.max_score, done.percent) == (80, 100, 80.0)


def test_an_inspection_with_findings_cannot_be_cancelled():
    insp = planned()
    insp.note_finding("f1")
    with pytest.raises(RuleViolation, match="不能取消"):
        insp.cancel("改期")
    other = planned()
    other.cancel("改期")
    assert replayed(other).status == "cancelled"


def test_inspection_source_and_inspection_id_go_together():
    with pytest.raises(BadInput):
        Finding.record("f1", "u1", "inspection", "x", "general", "2024-03-01")
    with pytest.raises(BadInput):
        Finding.record("f1", "u1", "audit", "x", "general", "2024-03-01", inspection_id="i1")


# -- rectification lifecycle ---------------------------------------------------------------------
EVIDENCE = [{"path": "u1/ab/x.pdf", "sha256": "ab" * 32, "size_bytes": 1, "description": ""}]


def opened(deadline="2024-03-31"):
    f = Finding.record("f1", "u1", "audit", "公款吃喝", "serious", "2024-03-01")
    # pending events kept: replayed() below rebuilds from the whole history
    return Rectification.open(f, "u1", "unit_head", deadline, "2024-03-01")


def test_deadline_before_the_finding_is_bad_input():
    f = Finding.record("f1", "u1", "audit", "x", "general", "2024-03-01")
    with pytest.raises(BadInput) as err:
        Rectification.open(f, "u1", "unit_head", "2024-02-01", "2024-03-01")
    assert "deadline" in err.value.fields


def test_lifecycle_open_evidence_rejected_evidence_verified_reopened():
    r = opened()
    assert r.status == "open"
    r.submit_evidence(EVIDENCE, "报告", "2024-03-20", "ua-u1")
    assert r.status == "evidence_submitted"
    r.reject("材料不全", "2024-03-21", "insp-1")
    assert r.status == "open"
    r.submit_evidence(EVIDENCE, "补充", "2024-04-02", "ua-u1")
    r.verify("2024-04-03", "insp-1", "")
    assert r.status == "closed" and r.pending_events[-1].on_time is False  # evidence came late
    r.reopen("问题反弹", "2024-06-30", "2024-05-01")
    assert r.status == "open" and r.deadline == "2024-06-30"
    again = replayed(r)
    assert (again.status, again.deadline, again.escalation_step) == ("open", "2024-06-30", 0)
    assert types(opened()) == ["Opened"]
    assert Rectification.EvidenceSubmitted.private is True


@pytest.mark.parametrize("setup,action,message", [
    ([], lambda r: r.verify("2024-03-20", "insp-1", ""), "尚未提交整改材料"),
    ([], lambda r: r.reject("x", "2024-03-20", "insp-1"), "尚未提交整改材料"),
    (["submit"], lambda r: r.submit_evidence(EVIDENCE, "", "2024-03-21", "ua-u1"), "等待核查"),
    (["submit"], lambda r: r.verify("2024-03-21", "ua-u1", ""), "自己提交的"),
    (["submit", "verify"], lambda r: r.verify("2024-03-22", "insp-1", ""), "已经销号"),
    (["submit", "verify"], lambda r: r.submit_evidence(EVIDENCE, "", "2024-03-22", "ua-u1"),
     "已销号"),
    (["submit", "verify"], lambda r: r.extend_deadline("2024-05-01", "x", "2024-03-22"), "已销号"),
    ([], lambda r: r.reopen("x", "2024-05-01", "2024-03-20"), "只有已销号的整改"),
    (["submit", "verify"], lambda r: r.reopen("x", "2024-03-01", "2024-03-22"), "已经过去"),
    ([], lambda r: r.extend_deadline("2024-03-30", "x", "2024-03-20"), "延期后的期限必须晚于"),
    ([], lambda r: r.extend_deadline("2024-04-10", "x", "2024-04-20"), "已经过去"),
])
def test_rejected_transitions_record_nothing(setup, action, message):
    r = opened()
    if "submit" in setup:
        r.submit_evidence(EVIDENCE, "", "2024-03-20", "ua-u1")
    if "verify" in setup:
        r.verify("2024-03-21", "insp-1", "")
    before = (len(r.pending_events), r.status, r.version)
    with pytest.raises(RuleViolation, match=message):
        action(r)
    assert (len(r.pending_events), r.status, r.version) == before


def test_due_escalations_follow_the_ladder():
    assert [n for n, _ in due_escalations(DEFAULT_LADDER, 0, 0)] == [1]
    assert [n for n, _ in due_escalations(DEFAULT_LADDER, 7, 1)] == [2]
    assert [n for n, _ in due_escalations(DEFAULT_LADDER, 40, 0)] == [1, 2, 3, 4]
    assert due_escalations(DEFAULT_LADDER, 40, 4) == []


def test_days_overdue_keep_counting_after_the_last_rung_and_stop_at_the_evidence():
    # the report's case: the last rung was taken at 93 days; a year on it is 312, not 93
    assert days_overdue("2024-01-01", "open", None, "2024-04-03") == 93
    assert days_overdue("2024-01-01", "open", None, "2024-11-08") == 312
    # rejected evidence sends it back to open: counting to today again
    assert days_overdue("2024-01-01", "open", "2024-02-01", "2024-11-08") == 312
    assert days_overdue("2024-01-01", "evidence_submitted", "2024-02-01", "2024-11-08") == 31
    assert days_overdue("2024-01-01", "closed", "2024-02-01", "2024-11-08") == 31
    assert days_overdue("2024-01-01", "open", None, "2023-12-30") == 0


def test_overdue_detection_is_idempotent_and_climbs_step_by_step():
    r = opened("2024-03-31")
    targets = {"owner_unit": {"unit_id": "u1"}}
    assert r.detect_overdue("2024-03-31", DEFAULT_LADDER, targets) == 0  # due today: not late
    assert r.detect_overdue("2024-04-01", DEFAULT_LADDER, targets) == 2  # overdue + step 1
    assert r.detect_overdue("2024-04-01", DEFAULT_LADDER, targets) == 0  # twice: nothing
    assert r.detect_overdue("2024-04-06", DEFAULT_LADDER, targets) == 0  # 6 days: not yet
    assert r.detect_overdue("2024-04-07", DEFAULT_LADDER, targets) == 1  # 7 days: unit head
    steps = [(e.step, e.level) for e in r.pending_events if e.event_type.endswith("Escalated")]
    assert steps == [(1, "owner_unit"), (2, "unit_head")]
    back = replayed(r)
    assert (back.overdue, back.escalation_step) == (True, 2)
    assert back.detect_overdue("2024-04-07", DEFAULT_LADDER, targets) == 0


def test_evidence_pauses_the_ladder_and_an_extension_restarts_it():
    r = opened("2024-03-31")
    r.detect_overdue("2024-04-01", DEFAULT_LADDER, {})
    r.submit_evidence(EVIDENCE, "", "2024-04-02", "ua-u1")
    assert r.detect_overdue("2024-05-30", DEFAULT_LADDER, {}) == 0
    r.reject("不到位", "2024-04-03", "insp-1")
    r.extend_deadline("2024-04-30", "需要时间", "2024-04-03")
    assert (r.overdue, r.escalation_step) == (False, 0)
    assert r.detect_overdue("2024-04-30", DEFAULT_LADDER, {}) == 0
    assert r.detect_overdue("2024-05-01", DEFAULT_LADDER, {}) == 2


# -- risk points ----------------------------------------------------------------------------------
@pytest.mark.parametrize("l,i,flags,level", [
    (1, 1, [], "low"), (2, 3, [], "low"), (2, 4, [], "medium"), (3, 4, [], "medium"),
    (3, 5, [], "high"), (5, 5, [], "high"),
    # weighted up: 3×4 = 12 (medium) × 1.4 with two flags = 16.8 (high)
    (3, 4, ["concentrated_power", "fund_intensive"], "high"),
    (2, 3, ["resource_rich"], "low"), (2, 3, ["resource_rich", "fund_intensive"], "medium"),
])
def test_risk_level_on_the_default_5x5(l, i, flags, level):
    assert assess_level(l, i, flags, RULES)["level"] == level


def test_risk_scale_is_configurable_and_enforced():
    rules = Settings.from_config({"SUPERVISION_RISK_SCALE": 3}).risk_rules()
    assert assess_level(3, 3, [], rules)["level"] == "high"
    assert assess_level(2, 2, [], rules)["level"] == "medium"   # 4/9 ≥ 0.32
    with pytest.raises(BadInput) as err:
        assess_level(4, 1, [], rules)
    assert err.value.fields == {"likelihood": ["须在 1 到 3 之间"]}
    with pytest.raises(BadInput):
        assess_level(0, 6, [], RULES)


def test_reassessment_keeps_history_and_records_its_rules():
    p = RiskPoint.identify("r1", "u1", "采购审批", "post_duty", post="采购岗",
                           post_flags=["fund_intensive"])
    p.assess(4, 4, RULES, "2024-03-01", "insp-1")
    p.assess(2, 2, RULES, "2024-06-01", "insp-1", post_flags=[])
    assessed = [e for e in p.pending_events if e.event_type == "RiskPoint.Assessed"]
    assert [(e.seq, e.level, e.weight) for e in assessed] == [(1, "high", 1.2), (2, "low", 1.0)]
    assert assessed[0].rules == RULES
    back = replayed(p)
    assert (back.assessments, back.level, back.post_flags) == (2, "low", [])


def test_controls_and_retirement():
    p = replayed(RiskPoint.identify("r1", "u1", "x", "procedure"))
    p.add_control("c1", "双人审批", "科长", "2024-06-30", "2024-03-01")
    with pytest.raises(RuleViolation):
        p.add_control("c1", "again", "科长", "2024-06-30", "2024-03-01")
    with pytest.raises(RuleViolation):
        p.add_control("c2", "x", "科长", "2024-02-01", "2024-03-01")
    with pytest.raises(RuleViolation):
        p.review_control("c9", "2024-03-02", True, "", "2024-06-30")
    with pytest.raises(RuleViolation):
        p.review_control("c1", "2024-03-02", True, "", "2024-03-01")
    p.review_control("c1", "2024-03-02", True, "", "2024-09-30")
    p.retire("岗位撤销", "2024-03-03")
    with pytest.raises(RuleViolation, match="已停用"):
        p.assess(1, 1, RULES, "2024-03-04", "x")
    with pytest.raises(BadInput):
        RiskPoint.identify("r2", "u1", "x", "procedure", micro_power_steps=["受理"])


def test_a_control_past_its_review_date_is_flagged_once_until_reviewed():
    p = RiskPoint.identify("r1", "u1", "x", "procedure")
    p.add_control("c1", "双人审批", "科长", "2024-06-30", "2024-03-01")
    p.add_control("c2", "定期轮岗", "副局长", "2024-09-30", "2024-03-01")
    assert p.flag_overdue_reviews("2024-06-30") == 0  # due on the day, not past it
    assert p.flag_overdue_reviews("2024-07-01") == 1
    flag = p.pending_events[-1]
    assert (flag.control_id, flag.owner_post, flag.review_date, flag.flagged_on) == (
        "c1", "科长", "2024-06-30", "2024-07-01")
    back = replayed(p)
    assert back.flag_overdue_reviews("2024-07-15") == 0  # once per review date
    back.review_control("c1", "2024-07-20", False, "未落实", "2024-12-31")
    assert back.flag_overdue_reviews("2024-10-01") == 1  # c2 now; c1 has a new date
    assert back.flag_overdue_reviews("2025-01-01") == 1  # c1 again, past its new date
    back.retire("岗位撤销", "2025-01-02")
    assert back.flag_overdue_reviews("2026-01-01") == 0


# -- screening ---------------------------------------------------------------------------------------
def test_screening_on_time_extra_overdue_and_late():
    s = ScreeningSchedule.establish("u1", "quarterly", "2024-02-10")
    assert (s.due_period, s.due_on) == ("2024-Q1", "2024-03-31")
    assert s.record("2024-03-01", 3, 1, "一季度") == "on_time"
    assert (s.due_period, s.due_on) == ("2024-Q2", "2024-06-30")
    assert s.record("2024-03-20", 0, 0, "加查") == "extra"
    assert s.due_period == "2024-Q2"
    assert s.detect_overdue("2024-06-30") == 0
    assert s.detect_overdue("2024-07-01") == 1
    assert s.detect_overdue("2024-07-02") == 0  # flagged once
    assert s.record("2024-10-15", 0, 0, "补查") == "late"
    late = s.pending_events[-1]
    assert (late.missed_periods, late.next_period) == (1, "2025-Q1")  # Q3 missed, Q4 covered
    back = replayed(s)
    assert (back.overdue, back.due_on) == (False, "2025-03-31")


def test_a_monthly_schedule_flags_every_missed_month_not_only_the_latest():
    assert ended_periods("2024-01", "monthly", "2024-04-01") == ["2024-01", "2024-02", "2024-03"]
    assert ended_periods("2024-01", "monthly", "2024-01-31") == []
    s = ScreeningSchedule.establish("u1", "monthly", "2024-01-05")
    assert s.detect_overdue("2024-02-01") == 1
    assert s.detect_overdue("2024-02-20") == 0  # January is flagged already
    # the timer missed March's end: April 2 catches up with February and March
    assert s.detect_overdue("2024-04-02") == 2
    assert [e.due_period for e in s.pending_events
            if e.event_type.endswith("OverdueFlagged")] == ["2024-01", "2024-02", "2024-03"]
    assert [e.due_on for e in s.pending_events][-1] == "2024-03-31"
    back = replayed(s)
    assert back.detect_overdue("2024-04-30") == 0 and back.flagged_through == "2024-03"
    assert back.record("2024-04-10", 0, 0, "补查") == "late"
    assert back.flagged_through is None and back.detect_overdue("2024-04-30") == 0
    assert back.detect_overdue("2024-06-01") == 1  # May: a fresh flag


def test_cadence_change():
    s = ScreeningSchedule.establish("u1", "quarterly", "2024-02-10")
    with pytest.raises(RuleViolation):
        s.change_cadence("quarterly", "2024-02-11")
    s.change_cadence("monthly", "2024-02-11")
    assert (s.due_period, s.due_on) == ("2024-02", "2024-02-29")


def test_micro_power_watch_in_either_order():
    w = MicroPowerWatch.start("w1")
    w.list_published("w1/受理岗", "受理岗", 1, "2024-03-01")
    w.require("window_unit", "2024-03-02")
    back = replayed(w)
    assert back.required and back.published == ["w1/受理岗"]


# -- political ecology -----------------------------------------------------------------------------------
def test_default_indicator_system_is_the_reports_three_dimensions():
    s = IndicatorSystem.default()
    assert [d["name"] for d in s.dimensions()] == ["清廉机关建设情况", "领导班子团结干事创业情况",
                                                   "精神文明创建情况"]


def test_weights_must_add_up():
    dims = [dict(d, indicators=[dict(i) for i in d["indicators"]]) for d in DEFAULT_DIMENSIONS]
    dims[0]["weight"] = 0.9
    dims[1]["indicators"][0]["weight"] = 0.9
    with pytest.raises(BadInput) as err:
        IndicatorSystem.define("s", "t", dims)
    assert set(err.value.fields) == {"dimensions", "dimensions.1.indicators"}


def test_score_unit_renormalises_missing_facts():
    dims = [{"code": "a", "name": "A", "weight": 0.5, "indicators": [
                {"code": "x", "name": "X", "weight": 0.5, "source": "manual", "max_score": 10},
                {"code": "y", "name": "Y", "weight": 0.5, "source": "education_compliance",
                 "max_score": 100}]},
            {"code": "b", "name": "B", "weight": 0.5, "indicators": [
                {"code": "z", "name": "Z", "weight": 1.0, "source": "manual", "max_score": 100}]}]
    s = score_unit(dims, {"x": 8, "z": 60}, {"y": None})
    assert s == {"total": 70.0, "dimensions": {"a": 80.0, "b": 60.0}, "missing": ["y"]}
    s = score_unit(dims, {"x": 8, "z": 60}, {"y": 100.0})
    assert s["total"] == 75.0


def test_rank_is_competition_ranking():
    scored = {u: {"total": t, "dimensions": {}, "missing": []}
              for u, t in (("a", 90), ("b", 95), ("c", 90), ("d", None), ("e", 80))}
    assert [(x["unit_id"], x["rank"]) for x in rank(scored)] == [
        ("b", 1), ("a", 2), ("c", 2), ("e", 4), ("d", None)]


def test_a_round_keeps_its_weights_and_its_rules():
    system = IndicatorSystem.default()
    rnd = AssessmentRound.open("r1", "研判", "2024-Q1", system, ["u1", "u2"], "2024-04-01")
    dims = [dict(d, indicators=[dict(i) for i in d["indicators"]]) for d in system.dimensions()]
    dims[0]["weight"], dims[1]["weight"] = 0.7, 0.1
    system.revise(system.title, dims, "调权重", "2024-04-02")
    assert rnd.dimensions[0]["weight"] == 0.5
    with pytest.raises(BadInput) as err:
        rnd.record_scores([{"unit_id": "u1", "indicator": "closure_rate", "score": 5},
                           {"unit_id": "u9", "indicator": "unity", "score": 5},
                           {"unit_id": "u1", "indicator": "unity", "score": 101}], "insp")
    assert set(err.value.fields) == {"scores.0.indicator", "scores.1.unit_id", "scores.2.score"}
    with pytest.raises(RuleViolation, match="采集平台数据"):
        rnd.finalize("2024-04-03")
    rnd.collect_facts({"u1": {"closure_rate": 100.0}}, "2024-04-03")
    with pytest.raises(RuleViolation, match="人工评分未填写"):
        rnd.finalize("2024-04-03")
    manual = [c for d in rnd.dimensions for c in d["indicators"] if c["source"] == "manual"]
    rnd.record_scores([{"unit_id": u, "indicator": c["code"], "score": 80}
                       for u in ("u1", "u2") for c in manual], "insp")
    ranking = rnd.finalize("2024-04-03")
    assert [x["unit_id"] for x in ranking] == ["u1", "u2"]
    with pytest.raises(RuleViolation, match="不能再修改"):
        rnd.record_scores([{"unit_id": "u1", "indicator": "unity", "score": 1}], "insp")


# -- education, discipline, published figures ----------------------------------------------------------
def test_education_compliance_and_only_changes_are_recorded():
    assert education_compliance(True, 1.0, 1.0) == 100.0
    assert education_compliance(False, 0.5, None) == round(100 * 0.15 / 0.7, 2)
    e = EducationFacts.start("u1", "2024-03")
    assert e.record("u1", "2024-03", True, 0.8, None, "ev1") is True
    assert e.record("u1", "2024-03", True, 0.8, None, "ev2") is False
    assert len(e.pending_events) == 1


def test_discipline_records_are_private_and_counts_carry_numbers_only():
    rec = DisciplineRecord.record("d1", "u1", 1, "张三", None, "科员", "谈话提醒", "迟到早退",
                                  "2024-05-02", "2024-05-03", "insp-1")
    assert rec.period == "2024-Q2" and DisciplineRecord.Recorded.private
    with pytest.raises(BadInput):
        DisciplineRecord.record("d2", "u1", 5, "x", None, None, "x", "x", "2024-05-02",
                                "2024-05-03", "i")
    with pytest.raises(BadInput):
        DisciplineRecord.record("d2", "u1", 1, "x", None, None, "x", "x", "2024-05-04",
                                "2024-05-03", "i")
    counts = DisciplineCounts.start("2024-Q2")
    assert counts.publish({1: 2, 2: 1}, "2024-05-03") is True
    assert counts.publish({1: 2, 2: 1}, "2024-05-04") is False
    payload = counts.pending_events[0].data()
    assert payload == {"period": "2024-Q2", "form_1": 2, "form_2": 1, "form_3": 0, "form_4": 0,
                       "total": 3, "published_on": "2024-05-03"}
    assert DisciplineCounts.Published.private is False


def test_unit_indicators_publish_only_changes_per_month_and_mark():
    p = UnitIndicators.start("u1")
    figures = {k: 0 for k in UnitIndicators.FIGURES}
    assert p.publish(figures, "2024-03-01", "2024-03", True) is True
    p = replayed(p)
    assert p.publish(figures, "2024-03-02", "2024-03", True) is False
    assert p.publish(figures, "2024-04-01", "2024-04", True) is True    # a new month
    assert p.publish(figures, "2024-04-06", "2024-03", False) is True   # March final
    assert p.pending_events[-1].data()["provisional"] is False
    # a publication recorded before months were explicit: the month of as_of, final
    old = UnitIndicators.start("u2")
    UnitIndicators.Published(unit_id="u2", as_of="2024-02-10", **figures).apply(old)
    assert old.published("2024-02") == (figures, False)


def test_a_running_month_and_those_still_provisional_are_published():
    from datetime import date
    from services.supervision.domain import indicator_months
    assert indicator_months(date(2024, 3, 20), set(), 5) == [("2024-03", True)]
    assert indicator_months(date(2024, 4, 3), {"2024-03"}, 5) == [("2024-03", True), ("2024-04", True)]
    assert indicator_months(date(2024, 4, 6), {"2024-03", "2024-04"}, 5) == [
        ("2024-03", False), ("2024-04", True)]
    assert indicator_months(date(2024, 4, 1), {"2024-03"}, 0) == [("2024-03", False), ("2024-04", True)]


# -- settings -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("config,key", [
    ({"SUPERVISION_ESCALATION_LADDER": [{"level": "owner_unit", "after_days": 5},
                                        {"level": "unit_head", "after_days": 2}]}, "after_days"),
    ({"SUPERVISION_ESCALATION_LADDER": [{"level": "nobody", "after_days": 0}]}, "level"),
    ({"SUPERVISION_ESCALATION_LADDER": "not json"}, "JSON"),
    ({"SUPERVISION_RISK_SCALE": 1}, "2 to 10"),
    ({"SUPERVISION_RISK_THRESHOLDS": {"high": 0.3, "medium": 0.5}}, "medium < high"),
    ({"SUPERVISION_POST_FLAG_WEIGHTS": {"famous": 1}}, "famous"),
    ({"SUPERVISION_SCREENING_CADENCE": "weekly"}, "quarterly"),
    ({"SUPERVISION_INDICATOR_GRACE_DAYS": "x"}, "SUPERVISION_INDICATOR_GRACE_DAYS"),
    ({"SUPERVISION_INDICATOR_GRACE_DAYS": 40}, "0 to 31"),
])
def test_bad_settings_stop_the_service_with_the_key_named(config, key):
    with pytest.raises(ConfigError, match=key):
        Settings.from_config(config)


def test_settings_from_json_text():
    s = Settings.from_config({"SUPERVISION_ESCALATION_LADDER":
                              '[{"level": "owner_unit", "after_days": 1}, {"level": "city", "after_days": 9}]',
                              "SUPERVISION_SCREENING_CADENCE": "monthly"})
    assert [x["level"] for x in s.ladder] == ["owner_unit", "city"]
    assert s.screening_cadence == "monthly"
    assert (s.indicator_grace_days, Settings.from_config(
        {"SUPERVISION_INDICATOR_GRACE_DAYS": "0"}).indicator_grace_days) == (5, 0)


# -- the service layer's rules, decided here from the facts it reads (issue 12 §1) -------------------
from services.supervision.domain import (  # noqa: E402
    education_payload, follow_new_unit, inbox_scope, ladder_targets, require_active,
    require_not_future, require_owner_within,
)
from shared.errors import Conflict, Forbidden, NotFound  # noqa: E402


def unit_row(unit_id, path, active=True, level="unit"):
    return {"unit_id": unit_id, "path": path, "active": active, "level": level}


def refused(cls, fn, *args, **kwargs):
    """The error ``fn`` raises, which must be exactly ``cls`` (a RuleViolation is a Conflict)."""
    with pytest.raises(cls) as err:
        fn(*args, **kwargs)
    assert type(err.value) is cls
    return err.value


def test_nothing_new_is_recorded_for_a_deactivated_unit():
    row = unit_row("u1", "/d/u1/")
    assert require_active(row) is row
    err = refused(RuleViolation, require_active, dict(row, active=False), "owner_unit_id")
    assert (err.message, err.fields, err.status) == ("单位「u1」已停用", {"owner_unit_id": ["已停用"]}, 409)


def test_a_day_after_today_is_refused():
    require_not_future("2024-03-01", "2024-03-01", "found_on")
    err = refused(BadInput, require_not_future, "2024-03-02", "2024-03-01", "screened_on")
    assert (err.message, err.fields, err.status) == (
        "screened_on 晚于今天", {"screened_on": ["晚于今天（2024-03-01）"]}, 400)


def test_a_rectification_is_owned_by_the_unit_of_the_finding_or_one_below():
    unit = unit_row("u1", "/d/u1/")
    require_owner_within(unit, unit)
    require_owner_within(unit, unit_row("s1", "/d/u1/s1/"))
    err = refused(RuleViolation, require_owner_within, unit, unit_row("u2", "/d/u2/"))
    assert err.message == "整改责任单位必须是被查出问题的单位或其下级单位"
    assert err.fields == {"owner_unit_id": ["不是「u1」或其下级单位"]}


def test_only_the_default_checklist_and_indicator_system_exist_before_they_are_defined():
    assert Checklist.default_for("default").current == 1
    assert IndicatorSystem.default_for("political-ecology").current == 1
    err = refused(NotFound, Checklist.default_for, "mine")
    assert (err.message, err.status) == ("检查清单「mine」不存在", 404)
    assert refused(NotFound, IndicatorSystem.default_for, "mine").message == "指标体系「mine」不存在"


def test_taken_ids_are_refused_before_any_other_rule():
    checklist = Checklist.default()
    err = refused(Conflict, Inspection.plan, "i1", "u1", "检查", "2024-03-05", checklist, taken=True)
    assert (err.message, err.fields) == ("检查「i1」已存在", {"inspection_id": ["已被占用"]})
    # an inspection-sourced finding without its inspection would be BadInput: taken comes first
    err = refused(Conflict, Finding.record, "f1", "u1", "inspection", "x", "general", "2024-03-01",
                  taken=True)
    assert (err.message, err.fields) == ("问题「f1」已存在", {"finding_id": ["已被占用"]})
    err = refused(Conflict, RiskPoint.identify, "r1", "u1", "x", "procedure",
                  micro_power_steps=["受理"], taken=True)
    assert (err.message, err.fields) == ("风险点「r1」已存在", {"risk_point_id": ["已被占用"]})
    err = refused(Conflict, ScreeningSchedule.establish, "u1", "quarterly", "2024-02-10", taken=True)
    assert (err.message, err.fields) == ("单位「u1」已有排查计划", {})
    system = IndicatorSystem.default()
    err = refused(Conflict, AssessmentRound.open, "r1", "研判", "2024-Q1", system, [], "2024-04-01",
                  taken=True)
    assert (err.message, err.fields) == ("考核轮次「r1」已存在", {"round_id": ["已被占用"]})
    err = refused(Conflict, DisciplineRecord.record, "d1", "u1", 5, "x", None, None, "x", "x",
                  "2024-05-02", "2024-05-01", "insp-1", taken=True)
    assert (err.message, err.fields) == ("记录「d1」已存在", {"record_id": ["已被占用"]})
    # and with the id free each is made as before
    assert Inspection.plan("i1", "u1", "检查", "2024-03-05", checklist).status == "planned"
    assert ScreeningSchedule.establish("u1", "quarterly", "2024-02-10").cadence == "quarterly"


def test_an_inspection_notes_only_findings_of_the_unit_it_inspected():
    insp = planned()
    err = refused(RuleViolation, insp.note_finding, "f1", "u2")
    assert (err.message, err.fields) == ("检查「i1」属于单位「u1」", {"inspection_id": ["检查的是另一个单位"]})
    assert insp.pending_events[-1].event_type == "Inspection.Planned"  # nothing noted
    insp.note_finding("f1", "u1")
    assert insp.findings == ["f1"]


def test_a_risk_point_names_only_its_own_units_micro_power_list():
    err = refused(BadInput, RiskPoint.identify, "r1", "u1", "x", "procedure",
                  micro_power_list_id="u2/窗口岗", taken=True)  # checked before the id
    assert (err.message, err.fields) == ("不是本单位的微权力清单",
                                         {"micro_power_list_id": ["必须是「u1/岗位」的形式"]})
    p = RiskPoint.identify("r1", "u1", "x", "procedure", micro_power_list_id="u1/窗口岗",
                           micro_power_steps=["受理"])
    assert p.pending_events[0].micro_power_list_id == "u1/窗口岗"


def test_a_round_for_a_subtree_assesses_its_department_level_units():
    subtree = [unit_row("d", "/d/", level="district"), unit_row("u1", "/d/u1/"),
               unit_row("s1", "/d/u1/s1/", level="section"), unit_row("u2", "/d/u2/")]
    assert AssessmentRound.units_under("d", subtree) == ["u1", "u2"]
    assert AssessmentRound.units_under("u1", subtree[1:3]) == []


def test_a_new_unit_gets_a_screening_schedule_by_level_and_a_watch_by_kind():
    assert follow_new_unit("unit", "government_dept", scheduled=False) == (True, False)
    assert follow_new_unit("unit", "window_unit", scheduled=True) == (False, True)
    assert follow_new_unit("section", "law_enforcement", scheduled=False) == (False, True)
    assert follow_new_unit("district", "party_committee_dept", scheduled=False) == (False, False)


def test_the_ladder_reaches_the_owner_its_head_the_district_office_and_the_city():
    path = [{"unit_id": "city", "level": "city"}, {"unit_id": "gw", "level": "district"},
            {"unit_id": "u1", "level": "unit"}]
    assert ladder_targets("u1", path) == {
        "owner_unit": {"unit_id": "u1"},
        "unit_head": {"unit_id": "u1", "roles": ["unit_head", "discipline_member"]},
        "district_office": {"unit_id": "gw"}, "city": {"city": True}}
    assert ladder_targets("u1", path, "office")["district_office"] == {"unit_id": "office"}


def inbox(unit_id=None, unit_path=None, include_subtree=True, scope_path=None, scoped=False,
          privileged=False, unit_admin=False):
    return inbox_scope(unit_id, unit_path, include_subtree, scoped=scoped, scope_path=scope_path,
                       privileged=privileged, unit_admin=unit_admin)


def test_the_escalation_inbox_shows_a_unit_admin_their_subtree_and_the_others_the_node():
    admin = dict(scoped=True, scope_path="/d/u1/", unit_admin=True)
    assert inbox(**admin) == ("/d/u1/", None)
    assert inbox(privileged=True) == (None, None)
    assert inbox(privileged=True, unit_admin=True, scoped=True, scope_path="/d/u1/") == (None, None)
    assert inbox("s1", "/d/u1/s1/", **admin) == ("/d/u1/s1/", None)
    assert inbox("s1", "/d/u1/s1/", include_subtree=False, **admin) == (None, "s1")
    assert inbox("u2", "/d/u2/", privileged=True) == ("/d/u2/", None)
    err = refused(Forbidden, inbox, "u2", "/d/u2/", **admin)
    assert (err.message, err.status) == ("单位「u2」不在您的管理范围内", 403)
    err = refused(NotFound, inbox, "zz", None, **admin)
    assert (err.message, err.fields) == ("单位「zz」不存在", {"unit_id": ["不存在"]})
    # a scope unit the directory does not hold: nothing to show, before anything else
    err = refused(Forbidden, inbox, "zz", None, scoped=True, scope_path=None, unit_admin=True)
    assert err.message == "您的管理范围内没有单位"
    assert inbox(scoped=True, scope_path=None, privileged=True) == (None, None)


def education_event(**changes):
    return dict({"unit_id": "u1", "period": "2024-03", "warning_education_held": True,
                 "checkin_coverage": 0.5, "talks_on_time_rate": None}, **changes)


def test_the_education_services_indicators_are_checked_against_their_contract():
    good = education_event()
    assert education_payload(good) is good
    assert education_payload(education_event(checkin_coverage=1, talks_on_time_rate=0.25))
    err = refused(BadInput, education_payload, education_event(
        unit_id="", period="2024-13", warning_education_held=1, checkin_coverage=True,
        talks_on_time_rate=1.5))
    assert err.message == "收到的教育指标事件内容与约定的格式不符"
    assert err.fields == {"unit_id": ["a unit id"], "period": ["YYYY-MM"],
                          "warning_education_held": ["true or false"],
                          "checkin_coverage": ["a share 0..1"],
                          "talks_on_time_rate": ["a share 0..1, or null"]}
    assert refused(BadInput, education_payload, {}).fields.keys() == {
        "unit_id", "period", "warning_education_held", "checkin_coverage"}
