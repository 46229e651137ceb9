"""Issue 10 item 5 on the district's node: every rung of the escalation ladder is an inbox
item for that rung's people; the district-office rung reaches the district's office even
when the district's tree hangs under a city unit; the city rung sends the case itself
(``Rectification.ReferredToCity``) - its cross-node journey is in
services/exchange/tests/e2e/test_oversight.py."""
from __future__ import annotations

import pytest

from services.supervision.domain import district_office_of, referral_trail
from tests.harness.supervision import ADMIN, EVIDENCE, INSPECTOR, VIEWER, unit_admin
from shared.errors import Forbidden, NotFound


def test_the_district_office_is_the_district_level_unit_not_the_city_unit_above_it():
    path = [{"unit_id": "city-gw", "level": "city"}, {"unit_id": "a-gw", "level": "district"},
            {"unit_id": "a-xj", "level": "unit"}]
    assert district_office_of(path) == "a-gw"
    assert district_office_of(path[1:]) == "a-gw"
    assert district_office_of([{"unit_id": "root", "level": "unit"}]) == "root"  # no district unit


def test_the_trail_sent_up_carries_dates_and_codes_only():
    trail = [{"on": "2024-03-11", "what": "overdue", "deadline": "2024-03-10", "days_overdue": 1,
              "submitted_by": "ua-u1"}]
    assert referral_trail(trail) == [{"on": "2024-03-11", "what": "overdue",
                                      "deadline": "2024-03-10", "days_overdue": 1}]


def _city_tree(node):
    """A district's tree mirrored under a city unit (as a node that also mirrors the
    city's 市直机关工委 would have it)."""
    from services.supervision import application as appl
    from tests.harness.supervision import units_event
    from shared.unittree import record_unit_event
    node.deliver(units_event("Unit.Registered", {
        "unit_id": "city-gw", "name": "市直机关工委", "kind": "city_authority", "level": "city",
        "parent_id": None}), record_unit_event, appl.on_unit_registered)
    node.add_unit("district", "city-gw", "district_authority", "district", name="某区区直机关工委")
    for u in ("u1", "u2"):
        node.add_unit(u)


def test_every_rung_is_an_inbox_item_for_its_people_and_the_city_gets_the_case(node, clock):
    _city_tree(node)
    rid = node.finding("u1", deadline="2024-03-10", description="公务接待超标准",
                       requirement="退还超标准费用")["rect_id"]
    other = node.finding("u2", deadline="2024-12-31")["rect_id"]
    clock.set("2024-03-11")
    node.run("detect_overdue")
    mine = node.query("escalation_inbox", {}, unit_admin("u1"))
    assert [(i["rect_id"], i["level"], i["unit_id"]) for i in mine["items"]] == [(rid, "owner_unit", "u1")]
    assert mine["items"][0]["description"] == "公务接待超标准" and mine["items"][0]["days_overdue"] == 1
    assert node.query("escalation_inbox", {}, unit_admin("u2"))["total"] == 0
    clock.set("2024-03-18")
    node.run("detect_overdue")
    levels = [(i["level"], i["audience"]) for i in node.query("escalation_inbox", {"unit_id": "u1"})["items"]]
    assert levels == [("unit_head", "单位负责人、纪检委员"), ("owner_unit", "整改责任单位")]
    clock.set("2024-03-26")
    node.run("detect_overdue")
    office = node.query("escalation_inbox", {"unit_id": "district"}, VIEWER)
    assert [(i["level"], i["owner_unit_id"]) for i in office["items"]] == [("district_office", "u1")]
    assert node.query("escalation_inbox", {"unit_id": "city-gw"})["total"] == 0
    rect = node.query("get_rectification", {"rect_id": rid})
    assert rect["escalations"][2]["target"] == {"unit_id": "district"}
    # the city rung: the case goes up, once; nothing in the district's inbox for it
    assert node.events("Rectification.ReferredToCity") == []
    clock.set("2024-04-10")
    node.run("detect_overdue")
    node.run("detect_overdue")
    (referred,) = node.events("Rectification.ReferredToCity")
    p = referred.payload
    assert (p["rect_id"], p["unit_id"], p["unit_name"], p["description"], p["requirement"],
            p["days_overdue"], p["deadline"]) == (rid, "u1", "单位u1", "公务接待超标准",
                                                  "退还超标准费用", 31, "2024-03-10")
    assert [(t["what"], t.get("level")) for t in p["trail"]] == [
        ("overdue", None), ("escalated", "owner_unit"), ("escalated", "unit_head"),
        ("escalated", "district_office"), ("escalated", "city")]
    everything = node.query("escalation_inbox", {})
    assert everything["by_level"] == {"owner_unit": 1, "unit_head": 1, "district_office": 1}
    assert everything["items"][0]["days_overdue"] == 31
    # closing the rectification empties the inbox; the other one never entered it
    node.run("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, unit_admin("u1"))
    assert node.query("escalation_inbox", {})["total"] == 3  # paused, still the unit's to see
    node.run("verify_rectification", {"rect_id": rid}, INSPECTOR)
    assert node.query("escalation_inbox", {})["total"] == 0
    assert all(i["rect_id"] != other for i in everything["items"])


def test_an_extension_starts_a_fresh_ladder_and_empties_the_inbox(node, clock):
    _city_tree(node)
    rid = node.finding("u1", deadline="2024-03-10")["rect_id"]
    clock.set("2024-03-20")
    node.run("detect_overdue")
    assert node.query("escalation_inbox", {"unit_id": "u1"})["total"] == 2
    node.run("extend_deadline", {"rect_id": rid, "deadline": "2024-04-30", "reason": "需招标"}, INSPECTOR)
    assert node.query("escalation_inbox", {"unit_id": "u1"})["total"] == 0


def test_a_unit_admin_reads_only_inside_their_scope_and_nothing_is_written(node, clock):
    _city_tree(node)
    node.finding("u1", deadline="2024-03-10")
    clock.set("2024-03-11")
    node.run("detect_overdue")
    before = node.state()
    with pytest.raises(Forbidden) as err:
        node.query("escalation_inbox", {"unit_id": "u1"}, unit_admin("u2"))
    assert "不在您的管理范围内" in err.value.message
    with pytest.raises(NotFound):
        node.query("escalation_inbox", {"unit_id": "nowhere"}, ADMIN)
    assert node.state() == before


def test_an_overdue_task_reaches_each_rungs_inbox_until_accepted_or_extended(any_node, clock):
    """跟踪问效: ``Task.Escalated`` feeds the same inbox (``kind`` task, 任务), each rung's
    item for that rung's people; accepted or extended, the task leaves the inbox."""
    node = any_node
    _city_tree(node)
    t1, t2 = node.run("issue_task_list", {"title": "重点任务", "issuer_unit_id": "district", "items": [
        {"unit_id": "u1", "title": "建立廉政风险台账", "standard": "每个岗位一张台账",
         "deadline": "2024-03-10"},
        {"unit_id": "u2", "title": "开展警示教育", "standard": "全员参加",
         "deadline": "2024-03-10"}]}, INSPECTOR)["task_ids"]
    clock.set("2024-03-11")
    node.run("detect_task_overdue", {}, INSPECTOR)
    mine = node.query("escalation_inbox", {}, unit_admin("u1"))
    assert [(i["kind"], i["task_id"], i["level"], i["unit_id"]) for i in mine["items"]] == [
        ("task", t1, "owner_unit", "u1")]
    item = mine["items"][0]
    assert (item["kind_label"], item["description"], item["standard"], item["days_overdue"],
            item["audience"]) == ("任务", "建立廉政风险台账", "每个岗位一张台账", 1, "整改责任单位")
    clock.set("2024-03-26")
    node.run("detect_task_overdue", {}, INSPECTOR)
    office = node.query("escalation_inbox", {"unit_id": "district"}, VIEWER)
    assert sorted((i["level"], i["owner_unit_id"]) for i in office["items"]) == [
        ("district_office", "u1"), ("district_office", "u2")]
    assert [i["level"] for i in node.query("escalation_inbox", {"unit_id": "u1"})["items"]] == [
        "unit_head", "owner_unit"]
    assert node.query("escalation_inbox", {"unit_id": "city-gw"})["total"] == 0
    assert node.query("escalation_inbox", {})["by_level"] == {
        "owner_unit": 2, "unit_head": 2, "district_office": 2}
    # reported: still there (paused); accepted: gone. Extended: gone, a fresh ladder.
    node.run("report_task_completion", {"task_id": t1, "summary": "已建立", "evidence": EVIDENCE},
             unit_admin("u1"))
    assert node.query("escalation_inbox", {}, unit_admin("u1"))["total"] == 2  # owner, head
    node.run("accept_task", {"task_id": t1, "note": "合格"}, INSPECTOR)
    assert node.query("escalation_inbox", {}, unit_admin("u1"))["total"] == 0
    node.run("extend_task_deadline", {"task_id": t2, "deadline": "2024-04-30", "reason": "需协调"},
             INSPECTOR)
    assert node.query("escalation_inbox", {})["total"] == 0
