"""专项整治 / 专项治理 and 四风: campaigns with a scope and a period, findings tagged to them
with a 四风 category, progress from their rectifications - in the pure domain and through
the application layer on real databases (SQLite and PostgreSQL); refusals write nothing."""
from __future__ import annotations

import pytest

from services.supervision.domain import (
    CAMPAIGN_KINDS, FOUR_WINDS, Campaign, campaign_item_colour, campaign_state,
)
from tests.harness.supervision import ADMIN, EVIDENCE, INSPECTOR, INSPECTOR_2, VIEWER, unit_admin
from services.supervision.tests.integration.test_application import must_fail
from shared.errors import BadInput, RuleViolation
from shared.labels import catalogue


# -- domain ------------------------------------------------------------------------------------
def test_four_winds_include_the_new_forms_and_are_in_the_catalogue():
    cat = catalogue()
    assert cat["supervision.FOUR_WINDS"] is FOUR_WINDS
    assert "文山会海" in FOUR_WINDS.label("formalism_new")
    assert "推诿扯皮" in FOUR_WINDS.label("bureaucratism_new")
    assert cat["supervision.CAMPAIGN_KINDS"] is CAMPAIGN_KINDS


def test_a_campaign_takes_findings_in_its_scope_period_and_categories_once():
    c = Campaign.launch("c1", "整治形式主义官僚主义", "rectification", "qu", "2024-03-01",
                        "2024-06-30", ["formalism_new", "bureaucratism_new"], "", "2024-03-01")
    with pytest.raises(BadInput) as exc:
        c.tag("f1", False, "x", "2024-03-05", "formalism_new", "2024-03-05")
    assert "unit_id" in exc.value.fields
    with pytest.raises(BadInput) as exc:
        c.tag("f1", True, "u1", "2024-02-28", "formalism_new", "2024-03-05")
    assert "found_on" in exc.value.fields
    with pytest.raises(BadInput) as exc:
        c.tag("f1", True, "u1", "2024-03-05", "hedonism", "2024-03-05")
    assert "four_winds" in exc.value.fields
    c.tag("f1", True, "u1", "2024-03-05", "formalism_new", "2024-03-05")
    with pytest.raises(RuleViolation):
        c.tag("f1", True, "u1", "2024-03-05", "formalism_new", "2024-03-05")
    c.close("阶段总结", "2024-07-01")
    with pytest.raises(RuleViolation):
        c.tag("f2", True, "u1", "2024-03-06", None, "2024-07-02")
    with pytest.raises(BadInput):
        Campaign.launch("c2", "x", "governance", "qu", "2024-03-01", "2024-02-01", [], "",
                        "2024-01-01")


def test_states_and_colours():
    assert campaign_state("2024-03-01", "2024-06-30", False, "2024-02-01") == "upcoming"
    assert campaign_state("2024-03-01", "2024-06-30", False, "2024-06-30") == "running"
    assert campaign_state("2024-03-01", "2024-06-30", False, "2024-07-01") == "ended"
    assert campaign_state("2024-03-01", "2024-06-30", True, "2024-05-01") == "closed"
    assert campaign_item_colour("2024-03-31", "open", "2024-04-01", 7) == "red"
    assert campaign_item_colour("2024-03-31", "evidence_submitted", "2024-04-01", 7) == "green"
    assert campaign_item_colour("2024-03-31", "open", "2024-03-28", 7) == "yellow"


# -- application -----------------------------------------------------------------------------
def launch(node, **kw):
    data = {"title": "整治形式主义官僚主义专项", "scope_unit_id": "u1", "starts_on": "2024-03-01",
            "ends_on": "2024-06-30", "categories": ["formalism_new", "bureaucratism_new"]}
    data.update(kw)
    return node.run("launch_campaign", data, INSPECTOR)["campaign_id"]


def campaign_finding(node, campaign_id, unit_id="u1", four_winds="formalism_new", **kw):
    data = {"campaign_id": campaign_id, "four_winds": four_winds, "unit_id": unit_id,
            "source": "audit", "description": "材料报送过多、过度留痕",
            "responsible_role": "unit_head", "deadline": "2024-03-31"}
    data.update(kw)
    return node.run("record_campaign_finding", data, INSPECTOR)


def test_campaign_progress_per_category_and_unit(any_node, clock):
    node = any_node
    node.district()
    cid = launch(node)
    a = campaign_finding(node, cid)["rect_id"]
    b = campaign_finding(node, cid, unit_id="u1-s1", four_winds="bureaucratism_new",
                         description="群众办事推诿扯皮", deadline="2024-04-30")["rect_id"]
    other = node.finding("u1", deadline="2024-05-06")["rect_id"]  # recorded outside the campaign
    node.run("tag_campaign_finding", {"campaign_id": cid, "finding_id": other,
                                      "four_winds": "formalism_new"}, INSPECTOR)
    # the rectification of a is done and accepted
    node.run("submit_evidence", {"rect_id": a, "evidence": EVIDENCE}, unit_admin("u1"))
    node.run("verify_rectification", {"rect_id": a}, INSPECTOR_2)
    clock.set("2024-05-02")
    p = node.query("campaign_progress", {"campaign_id": cid}, VIEWER)
    assert p["state"] == "running" and p["scope_name"] == "单位u1"
    assert p["totals"] == {"found": 3, "closed": 1, "open": 2, "overdue": 1,
                           "closure_rate": round(1 / 3, 4)}
    cats = {c["four_winds"]: c for c in p["by_category"]}
    assert (cats["formalism_new"]["found"], cats["formalism_new"]["closed"]) == (2, 1)
    assert cats["bureaucratism_new"]["overdue"] == 1
    units = {u["unit_id"]: u for u in p["by_unit"]}
    assert units["u1-s1"]["overdue"] == 1 and units["u1"]["found"] == 2
    colours = {i["finding_id"]: i["colour"] for i in p["items"]}
    assert colours == {a: "green", b: "red", other: "yellow"}
    assert p["untagged"] == []
    listed = node.query("list_campaigns", {"unit_id": "u1-s1"})["campaigns"]
    assert [(c["campaign_id"], c["closed"]) for c in listed] == [(cid, 1)]
    assert node.query("list_campaigns", {"unit_id": "u2"})["campaigns"] == []
    node.run("close_campaign", {"campaign_id": cid, "summary": "阶段总结"}, INSPECTOR)
    assert node.query("campaign_progress", {"campaign_id": cid})["state"] == "closed"


@pytest.fixture
def scene(node):
    node.district()
    cid = launch(node)
    other = node.finding("u2", deadline="2024-05-31")["rect_id"]
    return {"c": cid, "u2_finding": other}


@pytest.mark.parametrize("status,name,data,actor,field", [
    (400, "record_campaign_finding", lambda s: {
        "campaign_id": s["c"], "four_winds": "formalism_new", "unit_id": "u2", "source": "audit",
        "description": "x", "responsible_role": "unit_head", "deadline": "2024-03-31"},
     INSPECTOR, "unit_id"),                                            # outside the scope
    (400, "record_campaign_finding", lambda s: {
        "campaign_id": s["c"], "four_winds": "hedonism", "unit_id": "u1", "source": "audit",
        "description": "x", "responsible_role": "unit_head", "deadline": "2024-03-31"},
     INSPECTOR, "four_winds"),                                         # not a targeted category
    (400, "record_campaign_finding", lambda s: {
        "campaign_id": s["c"], "four_winds": "nope", "unit_id": "u1", "source": "audit",
        "description": "x", "responsible_role": "unit_head", "deadline": "2024-03-31"},
     INSPECTOR, "four_winds"),
    (400, "tag_campaign_finding", lambda s: {"campaign_id": s["c"], "finding_id": s["u2_finding"]},
     INSPECTOR, "unit_id"),
    (400, "launch_campaign", lambda s: {"title": "x", "scope_unit_id": "u1",
                                        "starts_on": "2024-03-01", "ends_on": "2024-02-01"},
     INSPECTOR, "ends_on"),
    (403, "launch_campaign", lambda s: {"title": "x", "scope_unit_id": "u1",
                                        "starts_on": "2024-03-01", "ends_on": "2024-05-01"},
     unit_admin("u1"), None),
    (404, "tag_campaign_finding", lambda s: {"campaign_id": s["c"], "finding_id": "nope"},
     INSPECTOR, "finding_id"),
    (404, "close_campaign", lambda s: {"campaign_id": "nope", "summary": "x"}, ADMIN,
     "campaign_id"),
    (409, "launch_campaign", lambda s: {"campaign_id": s["c"], "title": "x",
                                        "scope_unit_id": "u1", "starts_on": "2024-03-01",
                                        "ends_on": "2024-05-01"}, INSPECTOR, "campaign_id"),
])
def test_refusals_are_chinese_and_write_nothing(node, scene, status, name, data, actor, field):
    err = must_fail(node, status, name, data(scene), actor)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.message), err.message
    if field:
        assert field in (err.fields or {}), err.fields
