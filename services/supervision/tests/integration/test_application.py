"""The application layer on a real database (SQLite; PostgreSQL too where marked
``any_node``): commands, queries, roles and scope, bad input, the clock-driven ladder,
as-of views, privacy of the four forms, and the event contracts."""
from __future__ import annotations

import io
import json
from datetime import datetime

import pytest
from openpyxl import load_workbook

from services.supervision.domain import DEFAULT_DIMENSIONS
from services.supervision.exports import unit_lists_report
from tests.harness.supervision import (
    ADMIN, EVIDENCE, INSPECTOR, INSPECTOR_2, VIEWER, Node, unit_admin,
)
from shared.aggregate import EVENT_TYPES
from shared.exports import content_disposition, render_csv, render_xlsx
from shared.contracts import validate_message

FEEDBACK = {"told": [{"role": "party_secretary", "name": "张三"}],
            "told_at": "2024-03-05T10:00:00+08:00", "summary": "当面反馈、限期整改"}


def scores_for(inspection, score=25, note="ok"):
    return [{"criterion": c["code"], "score": score, "note": note} for c in inspection["criteria"]]


def must_fail(node: Node, status: int, name: str, data=None, actor=ADMIN, kind="command"):
    """The call fails with ``status`` and leaves the log and every read model as they were."""
    before = node.state()
    err = node.fails(name, data, actor, kind)
    assert err.status == status, "%s: %s %s" % (name, err.status, err)
    assert node.state() == before, "%s wrote something although it failed" % name
    return err


# -- inspections -------------------------------------------------------------------------------
def test_inspection_planned_scored_fed_back_and_completed(node):
    node.district()
    insp = node.run("plan_inspection", {"unit_id": "u1", "title": "一季度检查督导",
                                        "planned_on": "2024-03-05", "inspectors": ["insp-1"]},
                    INSPECTOR)
    iid = insp["inspection_id"]
    assert (insp["checklist_version"], insp["status"]) == (1, "planned")
    assert [c["name"] for c in insp["criteria"]][0] == "规定动作全不全"
    f = node.finding("u1", source="inspection", inspection_id=iid, source_ref=None)
    must_fail(node, 409, "complete_inspection", {"inspection_id": iid}, INSPECTOR)
    node.run("score_inspection", {"inspection_id": iid, "scores": scores_for(insp, 20, "扣5分")},
             INSPECTOR)
    err = must_fail(node, 409, "complete_inspection", {"inspection_id": iid}, INSPECTOR)
    assert "现场反馈" in err.message
    node.run("give_feedback", dict(FEEDBACK, inspection_id=iid), INSPECTOR)
    done = node.run("complete_inspection", {"inspection_id": iid}, INSPECTOR)
    assert (done["status"], done["percent"], done["finding_count"]) == ("completed", 80.0, 1)
    assert [x["finding_id"] for x in done["findings"]] == [f["rect_id"]]
    assert done["feedback"][0]["told"] == [{"role": "party_secretary", "name": "张三"}]
    assert done["feedback"][0]["finding_ids"] == [f["rect_id"]]
    must_fail(node, 409, "score_inspection", {"inspection_id": iid, "scores": scores_for(insp)},
              INSPECTOR)
    must_fail(node, 409, "cancel_inspection", {"inspection_id": iid, "reason": "x"}, INSPECTOR)


def test_a_district_adds_a_criterion_and_old_inspections_keep_their_version(node):
    node.district()
    old = node.run("plan_inspection", {"unit_id": "u1", "title": "v1", "planned_on": "2024-03-05"},
                   INSPECTOR)
    criteria = node.query("get_checklist")["criteria"]
    criteria.append({"code": "grassroots", "name": "基层站所覆盖全不全", "max_score": 20,
                     "description": "督导是否延伸到基层站所"})
    assert node.run("revise_checklist", {"criteria": criteria, "note": "补短板"})["version"] == 2
    must_fail(node, 403, "revise_checklist", {"criteria": criteria, "note": "x"}, INSPECTOR)
    new = node.run("plan_inspection", {"unit_id": "u2", "title": "v2", "planned_on": "2024-03-06"},
                   INSPECTOR)
    assert (new["checklist_version"], len(new["criteria"])) == (2, 5)
    err = must_fail(node, 400, "score_inspection", {"inspection_id": old["inspection_id"], "scores": [
        {"criterion": "grassroots", "score": 10, "note": "x"}]}, INSPECTOR)
    assert "scores.0.criterion" in err.fields
    node.run("score_inspection", {"inspection_id": new["inspection_id"], "scores": [
        {"criterion": "grassroots", "score": 20}]}, INSPECTOR)
    assert node.query("get_checklist", {"version": 1})["versions"] == [1, 2]


@pytest.mark.parametrize("score,note,field", [
    (30, "x", "scores.0.score"), (-0.5, "x", "scores.0.score"), (10, "", "scores.0.note"),
])
def test_scoring_outside_the_scale_is_400_and_writes_nothing(node, score, note, field):
    node.district()
    insp = node.run("plan_inspection", {"unit_id": "u1", "title": "t", "planned_on": "2024-03-05"},
                    INSPECTOR)
    err = must_fail(node, 400, "score_inspection", {"inspection_id": insp["inspection_id"], "scores": [
        {"criterion": "prescribed_actions", "score": score, "note": note}]}, INSPECTOR)
    assert field in err.fields


def test_batch_planning(node):
    node.district(("u1", "u2", "u3"))
    batch = node.run("plan_inspection_batch", {"unit_ids": ["u1", "u2", "u3"], "title": "专项督导",
                                               "planned_on": "2024-03-10"}, INSPECTOR)
    assert len(batch["inspections"]) == 3
    listed = node.query("list_inspections", {"unit_id": "district"}, VIEWER)
    assert listed["total"] == 3 and {i["batch_id"] for i in listed["items"]} == {batch["batch_id"]}
    first = batch["inspections"][0]["inspection_id"]
    assert node.run("cancel_inspection", {"inspection_id": first, "reason": "改期"},
                    INSPECTOR)["status"] == "cancelled"
    got = node.query("get_inspection", {"inspection_id": first}, unit_admin("u1"))
    assert (got["status"], got["cancel_reason"], got["batch_id"]) == ("cancelled", "改期", batch["batch_id"])
    assert node.fails("get_inspection", {"inspection_id": first}, unit_admin("u2"), "query").status == 403
    assert node.query("list_inspections", {"unit_id": "district", "status": "planned"})["total"] == 2
    must_fail(node, 404, "plan_inspection_batch", {"unit_ids": ["u1", "nope"], "title": "x",
                                                   "planned_on": "2024-03-10"}, INSPECTOR)
    must_fail(node, 400, "plan_inspection_batch", {"unit_ids": ["u1", "u1"], "title": "x",
                                                   "planned_on": "2024-03-10"}, INSPECTOR)


# -- rectification ------------------------------------------------------------------------------
def test_rectification_lifecycle_and_every_refused_transition(any_node):
    node = any_node
    node.district()
    f = node.finding("u1", deadline="2024-03-31", source="public_report", source_ref="12345来信")
    rid = f["rect_id"]
    assert (f["status"], f["unit_id"], f["responsible_role"], f["source"]) == (
        "open", "u1", "unit_head", "public_report")
    err = must_fail(node, 409, "verify_rectification", {"rect_id": rid}, INSPECTOR)
    assert "尚未提交整改材料" in err.message
    must_fail(node, 409, "reject_rectification", {"rect_id": rid, "reason": "x"}, INSPECTOR)
    must_fail(node, 409, "reopen_rectification", {"rect_id": rid, "reason": "x",
                                                  "deadline": "2024-05-01"}, INSPECTOR)
    node.run("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE, "note": "整改报告"},
             unit_admin("u1"))
    must_fail(node, 409, "submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, unit_admin("u1"))
    node.run("reject_rectification", {"rect_id": rid, "reason": "佐证材料不全"}, INSPECTOR)
    r = node.query("get_rectification", {"rect_id": rid})
    assert (r["status"], r["rejections"], r["last_reason"]) == ("open", 1, "佐证材料不全")
    assert r["evidence"][0]["verdict"] == "rejected"
    # a node-admin may submit too - and then may not verify their own evidence (四眼原则)
    node.run("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, ADMIN)
    must_fail(node, 409, "verify_rectification", {"rect_id": rid}, ADMIN)
    node.run("verify_rectification", {"rect_id": rid, "note": "已销号"}, INSPECTOR)
    r = node.query("get_rectification", {"rect_id": rid})
    assert (r["status"], r["on_time"], r["verified_on"]) == ("closed", True, "2024-03-01")
    assert [e["verdict"] for e in r["evidence"]] == ["rejected", "accepted"]
    assert r["evidence"][1]["items"][0]["sha256"] == "ab" * 32
    for name, data in (("verify_rectification", {"rect_id": rid}),
                       ("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}),
                       ("extend_deadline", {"rect_id": rid, "deadline": "2024-06-01", "reason": "x"}),
                       ("reopen_rectification", {"rect_id": rid, "reason": "x",
                                                 "deadline": "2024-02-01"})):
        must_fail(node, 409, name, data, INSPECTOR if name != "submit_evidence" else unit_admin("u1"))
    node.run("reopen_rectification", {"rect_id": rid, "reason": "问题反弹", "deadline": "2024-06-30"},
             INSPECTOR)
    r = node.query("get_rectification", {"rect_id": rid})
    assert (r["status"], r["deadline"], r["reopened"], r["on_time"]) == ("open", "2024-06-30", 1, None)
    must_fail(node, 409, "extend_deadline", {"rect_id": rid, "deadline": "2024-06-01", "reason": "x"},
              INSPECTOR)
    node.run("extend_deadline", {"rect_id": rid, "deadline": "2024-07-31", "reason": "涉及制度修订"},
             INSPECTOR)
    assert node.query("get_rectification", {"rect_id": rid})["deadline"] == "2024-07-31"
    must_fail(node, 404, "verify_rectification", {"rect_id": "nope"}, INSPECTOR)


def test_finding_rules(node):
    node.district()
    node.add_unit("u9", "u2")
    must_fail(node, 409, "record_finding", {"unit_id": "u1", "source": "audit", "description": "x",
                                            "responsible_role": "unit_head", "deadline": "2024-04-01",
                                            "owner_unit_id": "u2"}, INSPECTOR)
    f = node.finding("u2", owner_unit_id="u9", deadline="2024-04-01")
    assert (f["unit_id"], f["finding_unit_id"]) == ("u9", "u2")
    insp = node.run("plan_inspection", {"unit_id": "u1", "title": "t", "planned_on": "2024-03-01"},
                    INSPECTOR)
    must_fail(node, 409, "record_finding", {
        "unit_id": "u2", "source": "inspection", "inspection_id": insp["inspection_id"],
        "description": "x", "responsible_role": "unit_head", "deadline": "2024-04-01"}, INSPECTOR)
    must_fail(node, 400, "record_finding", {"unit_id": "u1", "source": "audit", "description": "x",
                                            "responsible_role": "unit_head", "deadline": "2024-04-01",
                                            "found_on": "2024-03-02"}, INSPECTOR)
    must_fail(node, 409, "record_finding", {"unit_id": "u1", "finding_id": f["rect_id"],
                                            "source": "audit", "description": "x",
                                            "responsible_role": "unit_head",
                                            "deadline": "2024-04-01"}, INSPECTOR)


# -- roles and scope ----------------------------------------------------------------------------------
@pytest.fixture
def scene(node):
    node.district()
    f = node.finding("u1")
    node.run("submit_evidence", {"rect_id": f["rect_id"], "evidence": EVIDENCE}, unit_admin("u1"))
    rp = node.run("identify_risk_point", {"unit_id": "u1", "description": "采购", "category": "post_duty",
                                          "likelihood": 2, "impact": 2}, unit_admin("u1"))
    insp = node.run("plan_inspection", {"unit_id": "u1", "title": "t", "planned_on": "2024-03-01"},
                    INSPECTOR)
    return {"rect": f["rect_id"], "risk": rp["risk_point_id"], "insp": insp["inspection_id"]}


@pytest.mark.parametrize("name,data,actor", [
    # a unit-admin outside the owner's subtree
    ("submit_evidence", lambda s: {"rect_id": s["rect"], "evidence": EVIDENCE}, unit_admin("u2")),
    ("identify_risk_point", lambda s: {"unit_id": "u1", "description": "x", "category": "external"},
     unit_admin("u2")),
    ("assess_risk_point", lambda s: {"risk_point_id": s["risk"], "likelihood": 1, "impact": 1},
     unit_admin("u2")),
    ("record_screening", lambda s: {"unit_id": "u1", "summary": "x"}, unit_admin("u1-s1")),
    # a unit-admin never verifies, plans or records findings - not even for their own unit
    ("verify_rectification", lambda s: {"rect_id": s["rect"]}, unit_admin("u1")),
    ("reject_rectification", lambda s: {"rect_id": s["rect"], "reason": "x"}, unit_admin("district")),
    ("record_finding", lambda s: {"unit_id": "u1", "source": "audit", "description": "x",
                                  "responsible_role": "unit_head", "deadline": "2024-04-01"},
     unit_admin("u1")),
    ("plan_inspection", lambda s: {"unit_id": "u1", "title": "t", "planned_on": "2024-03-01"},
     unit_admin("u1")),
    # viewers write nothing; inspectors do not submit a unit's evidence
    ("submit_evidence", lambda s: {"rect_id": s["rect"], "evidence": EVIDENCE}, VIEWER),
    ("submit_evidence", lambda s: {"rect_id": s["rect"], "evidence": EVIDENCE}, INSPECTOR),
    ("score_inspection", lambda s: {"inspection_id": s["insp"], "scores": [
        {"criterion": "prescribed_actions", "score": 1, "note": "x"}]}, VIEWER),
    ("detect_overdue", lambda s: {}, VIEWER),
    ("publish_indicators", lambda s: {}, INSPECTOR),
    ("revise_indicator_system", lambda s: {"dimensions": [dict(d) for d in DEFAULT_DIMENSIONS],
                                           "note": "x"}, INSPECTOR),
])
def test_roles_and_scope_are_403_and_write_nothing(node, scene, name, data, actor):
    must_fail(node, 403, name, data(scene), actor)


@pytest.mark.parametrize("name,params,actor", [
    ("unit_view", {"unit_id": "u1"}, unit_admin("u2")),
    ("overdue_list", {"unit_id": "district"}, unit_admin("u1")),
    ("unit_lists", {"unit_id": "u2"}, unit_admin("u1")),
    ("get_rectification", "rect", unit_admin("u2")),
    ("history", {"stream": "Rectification", "id": "x"}, VIEWER),
])
def test_queries_outside_the_subtree_are_403(node, scene, name, params, actor):
    if params == "rect":
        params = {"rect_id": scene["rect"]}
    assert node.fails(name, params, actor, kind="query").status == 403


def test_a_unit_admin_works_in_their_subtree(node, scene):
    ua = unit_admin("u1")
    assert node.query("unit_view", {"unit_id": "u1-s1"}, ua)["unit"]["unit_id"] == "u1-s1"
    node.run("record_screening", {"unit_id": "u1", "summary": "一季度排查"}, ua)
    node.run("add_control", {"risk_point_id": scene["risk"], "measure": "双人审批",
                             "owner_post": "科长", "review_date": "2024-06-30"}, ua)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,data,fields", [
    ("record_finding", {"unit_id": "u1", "source": "rumour", "description": "",
                        "responsible_role": "boss", "deadline": "soon", "extra": 1},
     {"source", "description", "responsible_role", "deadline", "extra"}),
    ("record_finding", {"unit_id": "u1", "source": "audit", "description": "x",
                        "responsible_role": "unit_head", "deadline": "2024-02-01"}, {"deadline"}),
    ("record_finding", {"unit_id": "u1", "source": "inspection", "description": "x",
                        "responsible_role": "unit_head", "deadline": "2024-04-01"}, {"inspection_id"}),
    ("submit_evidence", {"rect_id": "r", "evidence": [{"path": "../etc/passwd", "sha256": "xyz"}]},
     {"evidence"}),
    ("submit_evidence", {"rect_id": "r", "evidence": []}, {"evidence"}),
    ("identify_risk_point", {"unit_id": "u1", "description": "x", "category": "post_duty",
                             "likelihood": 6, "impact": 2}, {"likelihood"}),
    ("identify_risk_point", {"unit_id": "u1", "description": "x", "category": "post_duty",
                             "likelihood": 3}, {"impact"}),
    ("identify_risk_point", {"unit_id": "u1", "description": "x", "category": "post_duty",
                             "micro_power_list_id": "u2/窗口岗"}, {"micro_power_list_id"}),
    ("identify_risk_point", {"unit_id": "u1", "description": "x", "category": "nope",
                             "post_flags": ["famous"]}, {"category", "post_flags"}),
    ("open_round", {"title": "x", "period": "2024-Q5", "unit_id": "district"}, {"period"}),
    ("open_round", {"title": "x", "period": "2024-Q1", "unit_id": "district", "unit_ids": ["u1"]},
     {"_schema"}),
    ("revise_indicator_system", {"dimensions": [{"code": "a", "name": "A", "weight": 0.5, "indicators": [
        {"code": "b", "name": "B", "weight": 1.0}]}], "note": "x"}, {"dimensions"}),
    ("record_discipline", {"unit_id": "u1", "form": 5, "person_name": "", "measure": "x",
                           "summary": "x", "handled_on": "2024-13-01"},
     {"form", "person_name", "handled_on"}),
    ("record_screening", {"unit_id": "u1", "summary": "x", "screened_on": "2024-03-02"},
     {"screened_on"}),
])
def test_bad_input_is_400_with_field_messages_and_writes_nothing(node, name, data, fields):
    node.district()
    actor = INSPECTOR if name in ("record_discipline",) else ADMIN
    err = must_fail(node, 400, name, data, actor)
    assert fields <= set(err.fields), err.fields


# -- overdue and escalation ---------------------------------------------------------------------------
def test_overdue_is_detected_on_the_clock_and_escalated_once_per_step(any_node, clock):
    node = any_node
    node.district()
    late = node.finding("u1", deadline="2024-03-10")["rect_id"]
    awaiting = node.finding("u2", deadline="2024-03-10")["rect_id"]
    node.run("submit_evidence", {"rect_id": awaiting, "evidence": EVIDENCE}, unit_admin("u2"))
    fine = node.finding("u2", deadline="2024-12-31")["rect_id"]
    clock.set("2024-03-10")
    assert node.run("detect_overdue")["overdue_detected"] == 0
    clock.set("2024-03-11")
    first = node.run("detect_overdue", {}, INSPECTOR)
    assert (first["overdue_detected"], first["escalations"]) == (1, 1)
    head = node.head()
    assert node.run("detect_overdue")["escalations"] == 0 and node.head() == head  # idempotent
    clock.set("2024-03-17")
    node.run("detect_overdue")
    r = node.query("get_rectification", {"rect_id": late})
    assert [(e["step"], e["level"]) for e in r["escalations"]] == [(1, "owner_unit"), (2, "unit_head")]
    assert r["escalations"][1]["target"] == {"unit_id": "u1", "roles": ["unit_head", "discipline_member"]}
    clock.set("2024-04-09")
    node.run("detect_overdue")
    r = node.query("get_rectification", {"rect_id": late})
    assert [e["level"] for e in r["escalations"]][2:] == ["district_office", "city"]
    assert r["escalations"][2]["target"] == {"unit_id": "district"}
    assert r["escalations"][3]["target"] == {"city": True}
    assert node.query("get_rectification", {"rect_id": awaiting})["overdue"] is False
    assert node.query("get_rectification", {"rect_id": fine})["overdue"] is False
    listed = node.query("overdue_list", {"unit_id": "district"}, VIEWER)
    assert [(i["rect_id"], i["escalation_level"], i["days_overdue"]) for i in listed["items"]] == [
        (late, "city", 30)]
    assert node.query("overdue_list", {"unit_id": "district", "level": "unit_head"})["total"] == 0
    assert node.query("district_indicators", {"unit_id": "district"})["escalated_to_city"] == 1
    assert len(node.events("Rectification.Escalated")) == 4


def test_the_ladder_and_its_grace_periods_are_configuration(sqlite_url, clock):
    node = Node(sqlite_url, clock, {"SUPERVISION_ESCALATION_LADDER": [
        {"level": "unit_head", "after_days": 3}, {"level": "district_office", "after_days": 5}]})
    try:
        node.district()
        rid = node.finding("u1", deadline="2024-03-02")["rect_id"]
        clock.set("2024-03-04")
        assert node.run("detect_overdue")["escalations"] == 0  # 2 days: overdue, no step yet
        clock.set("2024-03-05")
        node.run("detect_overdue")
        clock.set("2024-03-07")
        node.run("detect_overdue")
        esc = node.query("get_rectification", {"rect_id": rid})["escalations"]
        assert [(e["step"], e["level"], e["days_overdue"]) for e in esc] == [
            (1, "unit_head", 3), (2, "district_office", 5)]
    finally:
        node.close()


# -- risk points and screening ----------------------------------------------------------------------------
def test_risk_points_assessed_weighted_reassessed_and_controlled(node):
    node.district()
    rp = node.run("identify_risk_point", {
        "unit_id": "u1", "description": "政府采购评审专家抽取", "category": "post_duty", "post": "采购岗",
        "micro_power_list_id": "u1/采购岗", "micro_power_steps": ["专家抽取"],
        "post_flags": ["fund_intensive", "concentrated_power"], "likelihood": 3, "impact": 4},
        unit_admin("u1"))
    assert (rp["score"], rp["weight"], rp["level"], rp["colour"]) == (12, 1.4, "high", "red")
    again = node.run("assess_risk_point", {"risk_point_id": rp["risk_point_id"], "likelihood": 2,
                                           "impact": 2, "post_flags": []}, INSPECTOR)
    assert (again["level"], again["assessments"]) == ("low", 2)
    must_fail(node, 400, "assess_risk_point", {"risk_point_id": rp["risk_point_id"],
                                               "likelihood": 6, "impact": 1}, INSPECTOR)
    point = node.query("get_risk_point", {"risk_point_id": rp["risk_point_id"]})
    assert [h["level"] for h in point["history"]] == ["high", "low"]
    assert point["history"][0]["rules"]["scale"] == 5
    node.run("add_control", {"risk_point_id": rp["risk_point_id"], "control_id": "c1",
                             "measure": "专家随机抽取、全程录像", "owner_post": "采购科科长",
                             "review_date": "2024-06-30"}, unit_admin("u1"))
    node.run("review_control", {"risk_point_id": rp["risk_point_id"], "control_id": "c1",
                                "effective": True, "next_review_date": "2024-09-30"})
    point = node.query("get_risk_point", {"risk_point_id": rp["risk_point_id"]})
    assert point["control_measures"][0]["review_date"] == "2024-09-30"
    node.run("identify_risk_point", {"unit_id": "u2", "description": "x", "category": "external",
                                     "likelihood": 5, "impact": 5})
    listed = node.query("list_risk_points", {"unit_id": "district", "level": "high"}, VIEWER)
    assert [p["unit_id"] for p in listed["items"]] == ["u2"]
    node.run("retire_risk_point", {"risk_point_id": rp["risk_point_id"], "reason": "岗位撤并"})
    must_fail(node, 409, "assess_risk_point", {"risk_point_id": rp["risk_point_id"],
                                               "likelihood": 1, "impact": 1})


def test_new_units_get_a_schedule_and_missed_screening_is_flagged(node, clock):
    node.district()
    status = node.query("screening_status", {"unit_id": "district"})
    # departments are scheduled (quarterly by default); sections are screened with them
    assert {i["unit_id"]: (i["cadence"], i["due_on"]) for i in status["items"]} == {
        "u1": ("quarterly", "2024-03-31"), "u2": ("quarterly", "2024-03-31")}
    assert node.run("record_screening", {"unit_id": "u1", "summary": "一季度排查",
                                         "risk_points_reviewed": 12})["status"] == "on_time"
    clock.set("2024-04-01")
    assert node.run("detect_overdue")["screenings_flagged"] == 1
    assert node.run("detect_overdue")["screenings_flagged"] == 0
    overdue = node.query("screening_status", {"unit_id": "district", "overdue_only": True})
    assert [i["unit_id"] for i in overdue["items"]] == ["u2"]
    assert node.query("unit_view", {"unit_id": "u2"})["own"]["screening_overdue"] is True
    clock.set("2024-04-15")
    assert node.run("record_screening", {"unit_id": "u2", "summary": "补查"})["status"] == "late"
    assert node.query("screening_status", {"unit_id": "district", "overdue_only": True})["total"] == 0
    node.run("set_screening_cadence", {"unit_id": "u2", "cadence": "monthly"})
    must_fail(node, 409, "establish_screening", {"unit_id": "u2"})
    # a unit closed down (撤并) is no longer flagged
    from shared.unittree import record_unit_event
    from tests.harness.supervision import units_event
    node.deliver(units_event("Unit.Deactivated", {"unit_id": "u2", "reason": "撤并"}, version=2),
                 record_unit_event)
    clock.set("2024-07-01")  # u1 missed Q2; u2 (monthly since April) would be late too
    assert node.run("detect_overdue")["screenings_flagged"] == 1
    assert node.query("screening_status", {"unit_id": "u1", "overdue_only": True})["total"] == 1


def test_window_units_without_a_published_micro_power_list_are_flagged(node):
    node.district()
    node.add_unit("w1", kind="window_unit")
    node.add_unit("z1", kind="law_enforcement")
    gaps = node.query("micro_power_gaps", {"unit_id": "district"})
    assert [g["unit_id"] for g in gaps["missing"]] == ["w1", "z1"]
    node.publish_micro_power("w1", "窗口受理岗")
    node.publish_micro_power("w1", "窗口受理岗", version=2)
    gaps = node.query("micro_power_gaps", {"unit_id": "district"})
    assert [g["unit_id"] for g in gaps["missing"]] == ["z1"]
    assert gaps["published"][0]["lists"] == ["w1/窗口受理岗"]
    # a list published before the unit's registration reached us still counts
    node.publish_micro_power("w2", "执法岗")
    node.add_unit("w2", kind="law_enforcement")
    assert [g["unit_id"] for g in node.query("micro_power_gaps", {"unit_id": "district"})["missing"]] == ["z1"]


# -- the three lists and their files ---------------------------------------------------------------------
def test_three_lists_as_data_csv_and_xlsx(node):
    node.district()
    f = node.finding("u1", requirement="一个月内完成制度修订")
    rp = node.run("identify_risk_point", {"unit_id": "u1", "description": "财务报销审核",
                                          "category": "procedure", "post": "会计岗",
                                          "likelihood": 3, "impact": 3})
    node.run("add_control", {"risk_point_id": rp["risk_point_id"], "measure": "报销双签",
                             "owner_post": "财务科长", "review_date": "2024-06-30"})
    lists = node.query("unit_lists", {"unit_id": "u1"}, unit_admin("u1"))
    assert [lists[k]["title"] for k in ("problems", "responsibilities", "rectifications")] == [
        "问题清单", "责任清单", "整改清单"]
    assert {r["kind"] for r in lists["problems"]["rows"]} == {"问题", "廉政风险点"}
    assert {r["kind"] for r in lists["responsibilities"]["rows"]} == {"整改责任", "防控责任"}
    fix = lists["rectifications"]["rows"][0]
    assert (fix["ref"], fix["status"], fix["responsible"], fix["requirement"]) == (
        f["rect_id"], "整改中", "单位负责人", "一个月内完成制度修订")
    csv_bytes = render_csv(lists["problems"])
    assert csv_bytes.startswith(b"\xef\xbb\xbf") and "问题/风险描述" in csv_bytes.decode("utf-8-sig")
    report, stem = unit_lists_report(lists, ["problems", "responsibilities", "rectifications"],
                                     "district-a", datetime.fromisoformat("2024-03-01T09:00+08:00"))
    wb = load_workbook(io.BytesIO(render_xlsx(report)))
    assert wb.sheetnames == ["问题清单", "责任清单", "整改清单"]
    assert wb["整改清单"].cell(row=1, column=1).value == "单位u1 整改清单（截至2024年3月1日）"
    assert wb["整改清单"].cell(row=2, column=3).value == "问题"
    assert wb["整改清单"].cell(row=3, column=3).value == "公务接待超标准"
    assert "filename*=UTF-8''" in content_disposition(stem + ".csv")


# -- political-ecology assessment ----------------------------------------------------------------------------
def manual_scores(node, round_id, units, base=80):
    dims = node.query("round_ranking", {"round_id": round_id})["round"]["dimensions"]
    codes = [i["code"] for d in dims for i in d["indicators"] if i["source"] == "manual"]
    return [{"unit_id": u, "indicator": c, "score": base + n} for n, u in enumerate(units) for c in codes]


def education_event(unit_id, period, held, coverage, talks):
    from tests.harness.supervision import units_event
    ev = units_event("EducationIndicators.Published", {
        "unit_id": unit_id, "period": period, "warning_education_held": held,
        "checkin_coverage": coverage, "talks_on_time_rate": talks})
    return ev


def test_an_assessment_round_scored_ranked_and_reported(node, clock):
    from services.supervision.application import on_education_indicators
    node.district(("u1", "u2", "u3"))
    node.deliver(education_event("u1", "2024-03", True, 0.9, 1.0), on_education_indicators)
    node.deliver(education_event("u2", "2024-03", False, 0.5, None), on_education_indicators)
    closed = node.finding("u1", deadline="2024-03-20")["rect_id"]
    node.run("submit_evidence", {"rect_id": closed, "evidence": EVIDENCE}, unit_admin("u1"))
    node.run("verify_rectification", {"rect_id": closed}, INSPECTOR)
    node.finding("u2", deadline="2024-03-20")
    rnd = node.run("open_round", {"title": "2024年一季度政治生态研判", "period": "2024-Q1",
                                  "unit_id": "district"}, INSPECTOR)
    assert rnd["units"] == 3 and rnd["system_version"] == 1
    clock.set("2024-03-25")
    node.run("detect_overdue")
    node.run("collect_round_facts", {"round_id": rnd["round_id"]}, INSPECTOR)
    must_fail(node, 409, "finalize_round", {"round_id": rnd["round_id"]}, INSPECTOR)
    must_fail(node, 400, "record_round_scores", {"round_id": rnd["round_id"], "scores": [
        {"unit_id": "u1", "indicator": "closure_rate", "score": 100}]}, INSPECTOR)
    node.run("record_round_scores", {"round_id": rnd["round_id"],
                                     "scores": manual_scores(node, rnd["round_id"], ["u1", "u2", "u3"])},
             INSPECTOR)
    # the district re-weights afterwards: this round is still scored under version 1
    dims = node.query("get_indicator_system")["dimensions"]
    dims[0]["weight"], dims[1]["weight"], dims[2]["weight"] = 0.2, 0.4, 0.4
    assert node.run("revise_indicator_system", {"dimensions": dims, "note": "调整权重"})["version"] == 2
    final = node.run("finalize_round", {"round_id": rnd["round_id"]}, INSPECTOR)["ranking"]
    assert [e["unit_id"] for e in final][0] == "u1"
    u1 = final[0]
    assert u1["dimensions"]["integrity_building"] == pytest.approx(
        (0.25 * 100 + 0.2 * 100 + 0.15 * 97.0) / 0.6, abs=0.01)  # no screening due, no inspection
    assert u1["total"] == pytest.approx(0.5 * u1["dimensions"]["integrity_building"] + 0.3 * 80 + 0.2 * 80,
                                        abs=0.01)
    ranking = node.query("round_ranking", {"round_id": rnd["round_id"]}, VIEWER)
    assert ranking["round"]["system_version"] == 1 and ranking["ranking"][0]["unit_name"] == "单位u1"
    report = node.query("assessment_report", {"round_id": rnd["round_id"]})
    assert report["text"][0].startswith("2024年一季度政治生态研判")
    assert any(line.startswith("需重点关注") for line in report["text"])
    must_fail(node, 409, "record_round_scores", {"round_id": rnd["round_id"], "scores": [
        {"unit_id": "u1", "indicator": "unity", "score": 1}]}, INSPECTOR)
    next_round = node.run("open_round", {"title": "二季度", "period": "2024-Q2",
                                         "unit_ids": ["u1", "u2"]}, INSPECTOR)
    assert next_round["system_version"] == 2
    listed = node.query("list_rounds", {}, VIEWER)["rounds"]
    assert sorted((r["period"], r["status"], r["system_version"]) for r in listed) == [
        ("2024-Q1", "finalized", 1), ("2024-Q2", "open", 2)]


def test_education_facts_are_recorded_once_per_change(node):
    from services.supervision.application import on_education_indicators
    node.district()
    node.deliver(education_event("u1", "2024-03", True, 0.9, None), on_education_indicators)
    node.deliver(education_event("u1", "2024-03", True, 0.9, None), on_education_indicators)
    node.deliver(education_event("u1", "2024-03", True, 1.0, None), on_education_indicators)
    assert len(node.events("EducationFacts.Recorded")) == 2
    with pytest.raises(Exception) as err:
        node.deliver(education_event("u1", "2024-3", "yes", 2, None), on_education_indicators)
    assert set(err.value.fields) == {"period", "warning_education_held", "checkin_coverage"}


# -- as of -----------------------------------------------------------------------------------------------
def test_as_of_replay_equals_the_state_captured_at_that_date(any_node, clock):
    node = any_node
    node.district(("u1", "u2", "u3"))
    rid = node.finding("u1", deadline="2024-03-10")["rect_id"]
    node.finding("u2", deadline="2024-03-31")
    node.run("identify_risk_point", {"unit_id": "u2", "description": "x", "category": "external",
                                     "likelihood": 4, "impact": 4})
    rnd = node.run("open_round", {"title": "研判", "period": "2024-Q1", "unit_id": "district"},
                   INSPECTOR)["round_id"]
    node.run("record_round_scores", {"round_id": rnd, "scores": manual_scores(node, rnd, ["u1", "u2"])},
             INSPECTOR)
    clock.set("2024-03-12")
    node.run("detect_overdue")
    captured = {
        "view": node.query("unit_view", {"unit_id": "district"}),
        "overdue": node.query("overdue_list", {"unit_id": "district"}),
        "lists": node.query("unit_lists", {"unit_id": "u1", "include_subtree": True}),
        "ranking": node.query("round_ranking", {"round_id": rnd}),
    }
    # the world moves on
    clock.set("2024-03-20")
    node.run("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, unit_admin("u1"))
    node.run("verify_rectification", {"rect_id": rid}, INSPECTOR)
    node.run("record_round_scores", {"round_id": rnd, "scores": manual_scores(node, rnd, ["u3"], 50)},
             INSPECTOR)
    node.run("identify_risk_point", {"unit_id": "u1", "description": "y", "category": "external",
                                     "likelihood": 1, "impact": 1})
    node.add_unit("u4")
    assert node.query("unit_view", {"unit_id": "district"}) != captured["view"]
    for key, name, params in (("view", "unit_view", {"unit_id": "district"}),
                              ("overdue", "overdue_list", {"unit_id": "district"}),
                              ("lists", "unit_lists", {"unit_id": "u1", "include_subtree": True}),
                              ("ranking", "round_ranking", {"round_id": rnd})):
        past = node.query(name, dict(params, as_of="2024-03-12"), VIEWER)
        assert past.pop("as_of") == "2024-03-12"
        assert past == captured[key], key
    assert node.query("overdue_list", {"unit_id": "district", "as_of": "2024-03-11"})["total"] == 0


# -- four forms of discipline ---------------------------------------------------------------------------
def test_four_forms_are_for_inspectors_only_and_only_counts_leave(node, clock):
    node.district()
    record = {"unit_id": "u1", "form": 1, "person_name": "李某某", "post": "科员", "measure": "谈话提醒",
              "summary": "工作日午间饮酒被群众反映", "handled_on": "2024-02-20"}
    for who in (VIEWER, unit_admin("u1"), ADMIN):
        must_fail(node, 403, "record_discipline", record, who)
        assert node.fails("list_discipline_records", {}, who, kind="query").status == 403
    node.run("record_discipline", record, INSPECTOR)
    node.run("record_discipline", dict(record, form=2, person_name="赵某", summary="违规发放津贴",
                                       measure="党内警告"), INSPECTOR_2)
    wrong = node.run("record_discipline", dict(record, person_name="误录"), INSPECTOR)
    node.run("void_discipline_record", {"record_id": wrong["record_id"], "reason": "重复录入"}, INSPECTOR)
    must_fail(node, 403, "void_discipline_record", {"record_id": wrong["record_id"], "reason": "x"}, ADMIN)
    assert len(node.query("list_discipline_records", {"period": "2024-Q1"}, INSPECTOR)["records"]) == 3
    counts = node.query("discipline_counts", {}, VIEWER)
    assert counts == {"periods": [{"period": "2024-Q1", "form_1": 1, "form_2": 1, "form_3": 0,
                                   "form_4": 0, "total": 2}]}
    node.run("publish_indicators")
    published = node.events("DisciplineCounts.Published")
    assert [e.payload for e in published] == [{"period": "2024-Q1", "form_1": 1, "form_2": 1,
                                               "form_3": 0, "form_4": 0, "total": 2,
                                               "published_on": "2024-03-01"}]
    secrets = ("李某某", "赵某", "误录", "饮酒", "津贴", "谈话提醒", "党内警告", "科员")
    for ev in node.events():
        text = json.dumps(ev.payload, ensure_ascii=False)
        if EVENT_TYPES[ev.event_type].private:
            continue
        assert not any(s in text for s in secrets), ev.event_type
    assert all(EVENT_TYPES[e.event_type].private for e in node.events()
               if e.event_type.startswith("DisciplineRecord."))


# -- publishing and contracts -------------------------------------------------------------------------------
def test_indicators_are_published_when_they_change(node, clock):
    node.district()
    node.add_unit("w1", kind="window_unit")
    node.finding("u1", deadline="2024-03-05")
    first = node.run("publish_indicators")
    assert (first["units"], first["districts"]) == (6, 1)
    assert node.run("publish_indicators") == {"as_of": "2024-03-01", "units": 0, "districts": 0,
                                              "discipline_periods": 0,
                                              "months": {"2024-03": "provisional"}}
    clock.set("2024-03-06")
    node.run("detect_overdue")
    again = node.run("publish_indicators")
    assert (again["units"], again["districts"]) == (1, 1)
    unit = [e.payload for e in node.events("UnitIndicators.Published") if e.payload["unit_id"] == "u1"]
    assert (unit[-1]["overdue_count"], unit[-1]["closure_rate"], unit[-1]["timeliness_rate"]) == (1, 0.0, 0.0)
    district = node.events("DistrictIndicators.Published")[-1].payload
    # the district root itself is not one of its units
    assert (district["units"], district["overdue_count"], district["micro_power_missing_units"]) == (5, 1, 1)


def test_every_event_recorded_matches_its_contract(node, clock):
    node.district()
    node.add_unit("w1", kind="window_unit")
    node.publish_micro_power("w1", "窗口受理岗")
    insp = node.run("plan_inspection", {"unit_id": "u1", "title": "t", "planned_on": "2024-03-01"},
                    INSPECTOR)
    f = node.finding("u1", source="inspection", inspection_id=insp["inspection_id"], source_ref=None)
    node.run("score_inspection", {"inspection_id": insp["inspection_id"], "scores": scores_for(insp)},
             INSPECTOR)
    node.run("give_feedback", dict(FEEDBACK, inspection_id=insp["inspection_id"]), INSPECTOR)
    node.run("complete_inspection", {"inspection_id": insp["inspection_id"]}, INSPECTOR)
    rp = node.run("identify_risk_point", {"unit_id": "u1", "description": "x", "category": "external",
                                          "post_flags": ["resource_rich"], "likelihood": 2, "impact": 3})
    node.run("add_control", {"risk_point_id": rp["risk_point_id"], "control_id": "c1", "measure": "m",
                             "owner_post": "p", "review_date": "2024-04-01"})
    node.run("record_discipline", {"unit_id": "u1", "form": 3, "person_name": "某", "measure": "m",
                                   "summary": "s", "handled_on": "2024-03-01"}, INSPECTOR)
    clock.set("2024-04-20")
    node.run("detect_overdue")
    node.run("submit_evidence", {"rect_id": f["rect_id"], "evidence": EVIDENCE}, unit_admin("u1"))
    node.run("verify_rectification", {"rect_id": f["rect_id"]}, INSPECTOR)
    rnd = node.run("open_round", {"title": "r", "period": "2024-Q1", "unit_id": "district"},
                   INSPECTOR)["round_id"]
    node.run("collect_round_facts", {"round_id": rnd}, INSPECTOR)
    node.run("record_round_scores", {"round_id": rnd, "scores": manual_scores(node, rnd, ["u1", "u2", "w1"])},
             INSPECTOR)
    node.run("finalize_round", {"round_id": rnd}, INSPECTOR)
    node.run("publish_indicators")
    seen = set()
    for ev in node.events():
        validate_message(ev.to_message())
        seen.add(ev.event_type)
    assert {"Inspection.FeedbackGiven", "Rectification.Escalated", "AssessmentRound.Finalized",
            "DisciplineCounts.Published", "MicroPowerWatch.ListPublished",
            "ScreeningSchedule.OverdueFlagged"} <= seen


def test_lists_filters_and_history(node):
    node.district()
    a = node.finding("u1", source="audit")["rect_id"]
    node.finding("u1-s1", source="judicial")
    node.run("submit_evidence", {"rect_id": a, "evidence": EVIDENCE}, unit_admin("u1"))
    listed = node.query("list_rectifications", {"unit_id": "u1"}, unit_admin("u1"))
    assert listed["total"] == 2
    assert node.query("list_rectifications", {"unit_id": "u1", "include_subtree": False})["total"] == 1
    only = node.query("list_rectifications", {"unit_id": "u1", "status": "evidence_submitted"})
    assert [i["rect_id"] for i in only["items"]] == [a]
    assert node.query("list_rectifications", {"unit_id": "u1", "source": "judicial"})["total"] == 1
    hist = node.query("history", {"stream": "Rectification", "id": a}, INSPECTOR)
    assert [e["type"] for e in hist["events"]] == ["Rectification.Opened",
                                                   "Rectification.EvidenceSubmitted"]
    assert node.fails("history", {"stream": "DisciplineRecord", "id": "x"}, INSPECTOR,
                      kind="query").status == 400
    # the defaults are shown before anything is recorded, and recorded on first use
    assert node.query("get_indicator_system")["versions"] == []
    assert node.query("get_checklist", {}, VIEWER)["versions"] == []
    node.run("plan_inspection", {"unit_id": "u1", "title": "t", "planned_on": "2024-03-01"}, INSPECTOR)
    assert node.query("get_checklist", {}, VIEWER)["versions"] == [1]


def test_the_mirror_waits_for_a_parent_before_placing_a_unit(node):
    from shared.unittree import record_unit_event as record_unit_event_in_tree_order
    from tests.harness.supervision import units_event
    from shared.unittree import MirrorBehind
    child = units_event("Unit.Registered", {"unit_id": "u2", "name": "y局", "kind": "government_dept",
                                            "level": "unit", "parent_id": "qu"})
    root = units_event("Unit.Registered", {"unit_id": "qu", "name": "区", "kind": "district_authority",
                                           "level": "district", "parent_id": None})
    before = node.state()
    with pytest.raises(MirrorBehind):
        node.deliver(child, record_unit_event_in_tree_order)
    assert node.state() == before
    node.deliver(root, record_unit_event_in_tree_order)
    node.deliver(child, record_unit_event_in_tree_order)
    assert node.query("unit_view", {"unit_id": "qu"})["units"][1]["unit_id"] == "u2"
