"""跟踪问效 and 推进会 through the application layer on real databases (SQLite and
PostgreSQL): task lists, completion with evidence, overdue and the ladder, meetings whose
decisions are tracked tasks; refusals write nothing."""
from __future__ import annotations

import pytest

from tests.harness.supervision import (
    ADMIN, EVIDENCE, INSPECTOR, INSPECTOR_2, VIEWER, Node, unit_admin,
)
from services.supervision.tests.integration.test_application import must_fail
from shared.contracts import validate_message


def issue(node, items=None, issuer="district", actor=INSPECTOR):
    items = items or [
        {"unit_id": "u1", "title": "建立廉政风险台账", "standard": "每个岗位一张台账",
         "deadline": "2024-03-31"},
        {"unit_id": "u2-s1", "title": "开展警示教育", "standard": "全员参加、有签到",
         "deadline": "2024-04-30"}]
    return node.run("issue_task_list", {"title": "清廉机关建设重点任务", "issuer_unit_id": issuer,
                                        "items": items}, actor)


def test_a_task_list_is_tracked_to_completion_with_evidence(any_node, clock):
    node = any_node
    node.district()
    made = issue(node)
    t1, t2 = made["task_ids"]
    task = node.query("get_task", {"task_id": t1}, unit_admin("u1"))
    assert (task["standard"], task["deadline"], task["unit_id"], task["status"]) == (
        "每个岗位一张台账", "2024-03-31", "u1", "open")
    assert task["list"]["title"] == "清廉机关建设重点任务" and task["source"] == "task_list"
    # the unit reports it done with evidence; an inspector accepts it
    node.run("report_task_completion", {"task_id": t1, "summary": "已建立", "evidence": EVIDENCE},
             unit_admin("u1"))
    node.run("accept_task", {"task_id": t1, "note": "合格"}, INSPECTOR)
    done = node.query("get_task", {"task_id": t1})
    assert done["status"] == "accepted" and done["on_time"] is True
    assert done["evidence"][0]["sha256"] == "ab" * 32
    # the lists: per unit (subtree), per task list with its progress
    listed = node.query("list_tasks", {"unit_id": "u2"}, unit_admin("u2"))
    assert [i["task_id"] for i in listed["items"]] == [t2]
    lists = node.query("list_task_lists", {"unit_id": "district"})["lists"]
    assert lists[0]["by_status"] == {"accepted": 1, "open": 1} and lists[0]["items"] == 2
    for e in node.events():
        if e.event_type.startswith(("Task.", "TaskList.")):
            validate_message({"event_id": e.event_id, "position": e.position,
                              "stream_id": e.stream_id, "stream_type": e.stream_type,
                              "version": e.version, "type": e.event_type,
                              "schema_version": e.schema_version, "payload": e.payload,
                              "metadata": {"node": "n", "correlation_id": "c",
                                           "occurred_at": "2024-03-01T09:00:00+08:00"}})


def test_overdue_tasks_are_flagged_and_escalated_like_rectifications(any_node, clock):
    node = any_node
    node.district()
    t1, t2 = issue(node)["task_ids"]
    clock.set("2024-03-25")  # t1 due within 7 days, t2 later
    assert node.query("list_tasks", {"unit_id": "district"})["colours"] == {
        "red": 0, "yellow": 1, "green": 1}
    clock.set("2024-04-01")
    first = node.run("detect_task_overdue", {}, INSPECTOR)
    assert (first["overdue_detected"], first["escalations"]) == (1, 1)
    assert node.run("detect_task_overdue", {}, INSPECTOR)["escalations"] == 0  # idempotent
    clock.set("2024-05-15")
    later = node.run("detect_task_overdue", {}, INSPECTOR)
    # t1 takes unit head, office and city (45 days); t2 is 15 days late: owner, head, office
    assert later["overdue_detected"] == 1 and later["escalations"] == 6
    task = node.query("get_task", {"task_id": t1})
    assert task["days_overdue"] == 45 and task["escalation_level"] == "city"
    assert [e["level"] for e in task["escalation_history"]] == [
        "owner_unit", "unit_head", "district_office", "city"]
    assert task["escalation_history"][2]["target"] == {"unit_id": "district"}
    overdue = node.query("list_tasks", {"unit_id": "district", "overdue_only": True})
    assert overdue["total"] == 2
    assert [i["colour"] for i in overdue["items"]] == ["red", "red"]
    assert overdue["colours"] == {"red": 2, "yellow": 0, "green": 0}
    # an extension starts again; completion reported pauses the count
    node.run("extend_task_deadline", {"task_id": t2, "deadline": "2024-06-30", "reason": "调整"})
    node.run("report_task_completion", {"task_id": t1, "summary": "补办", "evidence": EVIDENCE},
             unit_admin("u1"))
    clock.set("2024-05-20")
    assert node.query("get_task", {"task_id": t1})["days_overdue"] == 45
    assert node.query("list_tasks", {"unit_id": "district", "overdue_only": True})["total"] == 0


def test_a_meeting_records_units_and_decisions_each_a_tracked_task(any_node, clock):
    node = any_node
    node.district(("u1", "u2", "u3"))
    held = node.run("hold_meeting", {
        "title": "清廉机关建设联席推进会", "convener_unit_id": "district", "held_on": "2024-03-01",
        "unit_ids": ["u1", "u2"], "summary": "通报进展，研究难点",
        "decisions": [{"text": "建立联合督查机制", "unit_id": "u1", "standard": "出台制度文件",
                       "deadline": "2024-03-20"}]}, INSPECTOR)
    added = node.run("add_meeting_decision", {
        "meeting_id": held["meeting_id"], "text": "开展互查", "unit_id": "u2",
        "standard": "互查报告", "deadline": "2024-04-15"}, INSPECTOR)
    m = node.query("get_meeting", {"meeting_id": held["meeting_id"]}, VIEWER)
    assert [u["unit_id"] for u in m["units"]] == ["u1", "u2"]
    assert [(d["text"], d["unit_id"], d["task"]["status"]) for d in m["decisions"]] == [
        ("建立联合督查机制", "u1", "open"), ("开展互查", "u2", "open")]
    assert m["decisions"][1]["task_id"] == added["task_id"]
    task = node.query("get_task", {"task_id": held["task_ids"][0]})
    assert task["source"] == "meeting" and task["meeting_id"] == held["meeting_id"]
    clock.set("2024-03-25")
    node.run("detect_task_overdue", {}, INSPECTOR)
    m = node.query("get_meeting", {"meeting_id": held["meeting_id"]})
    assert m["decisions"][0]["task"]["overdue"] is True
    assert node.query("list_meetings", {"unit_id": "district"})["meetings"][0]["decisions"] == 2
    assert node.query("list_tasks", {"unit_id": "district",
                                     "meeting_id": held["meeting_id"]})["total"] == 2


@pytest.fixture
def scene(node):
    node.district(("u1", "u2", "u3"))
    made = issue(node)
    node.run("report_task_completion", {"task_id": made["task_ids"][1], "summary": "已办",
                                        "evidence": EVIDENCE}, ADMIN)
    held = node.run("hold_meeting", {"title": "推进会", "convener_unit_id": "district",
                                     "held_on": "2024-03-01", "unit_ids": ["u1"]}, INSPECTOR)
    return {"t1": made["task_ids"][0], "t2": made["task_ids"][1], "list": made["list_id"],
            "meeting": held["meeting_id"]}


@pytest.mark.parametrize("status,name,data,actor,field", [
    (400, "issue_task_list", lambda s: {"title": "x", "issuer_unit_id": "district", "items": [
        {"unit_id": "u1", "title": "x", "standard": "y", "deadline": "2024-02-01"}]}, INSPECTOR,
     "deadline"),
    (400, "issue_task_list", lambda s: {"title": "x", "issuer_unit_id": "u1", "items": [
        {"unit_id": "u2", "title": "x", "standard": "y", "deadline": "2024-05-01"}]}, INSPECTOR,
     "items.0.unit_id"),
    (400, "issue_task_list", lambda s: {"title": "x", "issuer_unit_id": "district", "items": []},
     INSPECTOR, "items"),
    (404, "issue_task_list", lambda s: {"title": "x", "issuer_unit_id": "district", "items": [
        {"unit_id": "nope", "title": "x", "standard": "y", "deadline": "2024-05-01"}]}, INSPECTOR,
     None),
    (400, "report_task_completion", lambda s: {"task_id": s["t1"], "summary": "x", "evidence": []},
     ADMIN, "evidence"),
    (403, "report_task_completion", lambda s: {"task_id": s["t1"], "summary": "x",
                                               "evidence": EVIDENCE}, unit_admin("u2"), None),
    (403, "issue_task_list", lambda s: {"title": "x", "issuer_unit_id": "district", "items": [
        {"unit_id": "u1", "title": "x", "standard": "y", "deadline": "2024-05-01"}]}, VIEWER, None),
    (409, "accept_task", lambda s: {"task_id": s["t1"]}, INSPECTOR, None),       # nothing reported
    (409, "accept_task", lambda s: {"task_id": s["t2"]}, ADMIN, None),           # own report
    (409, "extend_task_deadline", lambda s: {"task_id": s["t1"], "deadline": "2024-03-30",
                                             "reason": "x"}, INSPECTOR, "deadline"),
    (403, "accept_task", lambda s: {"task_id": s["t2"]}, unit_admin("u2"), None),
    (400, "add_meeting_decision", lambda s: {"meeting_id": s["meeting"], "text": "x",
                                             "unit_id": "u2", "standard": "y",
                                             "deadline": "2024-05-01"}, INSPECTOR, "unit_id"),
    (400, "hold_meeting", lambda s: {"title": "x", "convener_unit_id": "district",
                                     "held_on": "2024-03-01", "unit_ids": ["u1"], "decisions": [
                                         {"text": "x", "unit_id": "u3", "standard": "y",
                                          "deadline": "2024-05-01"}]}, INSPECTOR,
     "decisions.0.unit_id"),
    (400, "hold_meeting", lambda s: {"title": "x", "convener_unit_id": "district",
                                     "held_on": "2024-03-09", "unit_ids": ["u1"]}, INSPECTOR,
     "held_on"),
    (404, "accept_task", lambda s: {"task_id": "nope"}, INSPECTOR, "task_id"),
    # an id in use is a 409 Conflict, as for every other record
    (409, "issue_task_list", lambda s: {"list_id": s["list"], "title": "x",
                                        "issuer_unit_id": "district", "items": [
        {"unit_id": "u1", "title": "x", "standard": "y", "deadline": "2024-05-01"}]}, INSPECTOR,
     "list_id"),
    (409, "hold_meeting", lambda s: {"meeting_id": s["meeting"], "title": "x",
                                     "convener_unit_id": "district", "held_on": "2024-03-01",
                                     "unit_ids": ["u1"]}, INSPECTOR, "meeting_id"),
])
def test_refusals_are_chinese_and_write_nothing(node, scene, status, name, data, actor, field):
    err = must_fail(node, status, name, data(scene), actor)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.message), err.message
    if field:
        assert field in (err.fields or {}), err.fields


def test_a_unit_admin_reads_only_their_subtree(node, scene):
    must_fail(node, 403, "get_task", {"task_id": scene["t1"]}, unit_admin("u2"), kind="query")
    must_fail(node, 403, "list_tasks", {"unit_id": "district"}, unit_admin("u1"), kind="query")
    assert node.query("list_tasks", {"unit_id": "u1"}, unit_admin("u1"))["total"] == 1
