"""重点岗位 / 一把手 supervision: posts flagged as 一把手 or key posts, risk points and
inspections filtered to them, and their counts in the ecology assessment - in the pure
domain and through the application layer on real databases; refusals write nothing."""
from __future__ import annotations

import pytest

from services.supervision.domain import KEY_POST_KINDS, KeyPostRegister
from tests.harness.supervision import ADMIN, INSPECTOR, VIEWER, unit_admin
from services.supervision.tests.integration.test_application import must_fail
from shared.errors import BadInput, RuleViolation
from shared.labels import catalogue


def test_one_top_leader_per_unit_and_inspections_focus_on_flagged_posts():
    assert catalogue()["supervision.KEY_POST_KINDS"].label("top_leader") == "一把手"
    r = KeyPostRegister.start("u1")
    r.flag("局长", "top_leader", "主要负责人", "2024-03-01")
    r.flag("财务科科长", "key_post", "资金密集", "2024-03-01")
    with pytest.raises(RuleViolation):
        r.flag("副局长", "top_leader", "", "2024-03-01")
    with pytest.raises(RuleViolation):
        r.flag("局长", "top_leader", "", "2024-03-01")
    with pytest.raises(BadInput) as exc:
        r.focus_inspection("i1", "u1", "办公室主任", "2024-03-02")
    assert "post" in exc.value.fields
    with pytest.raises(BadInput):
        r.focus_inspection("i1", "u2", "局长", "2024-03-02")
    r.focus_inspection("i1", "u1", " 局长 ", "2024-03-02")
    r.clear("财务科科长", "岗位调整", "2024-03-03")
    rows = [(e.event_type, n, e.data()) for n, e in enumerate(r.collect_events(), start=1)]
    again = KeyPostRegister.replay("u1", rows)
    assert again.posts == {"局长": "top_leader"} and again.focused == [["i1", "局长"]]
    assert tuple(KEY_POST_KINDS) == ("top_leader", "key_post")


def setup(node):
    node.district()
    node.run("flag_key_post", {"unit_id": "u1", "post": "局长", "kind": "top_leader"}, INSPECTOR)
    node.run("flag_key_post", {"unit_id": "u2", "post": "采购岗", "kind": "key_post",
                               "reason": "资金密集"}, INSPECTOR)
    top = node.run("identify_risk_point", {"unit_id": "u1", "post": "局长", "description": "重大事项决策",
                                           "category": "post_duty", "likelihood": 4, "impact": 5},
                   INSPECTOR)["risk_point_id"]
    buy = node.run("identify_risk_point", {"unit_id": "u2", "post": "采购岗", "description": "采购",
                                           "category": "procedure", "likelihood": 2, "impact": 2},
                   INSPECTOR)["risk_point_id"]
    other = node.run("identify_risk_point", {"unit_id": "u1", "post": "司机", "description": "公车",
                                             "category": "post_duty", "likelihood": 1, "impact": 1},
                     INSPECTOR)["risk_point_id"]
    insp = node.run("plan_inspection", {"unit_id": "u1", "title": "一把手履职专项检查",
                                        "planned_on": "2024-03-10"}, INSPECTOR)["inspection_id"]
    plain = node.run("plan_inspection", {"unit_id": "u1", "title": "日常检查",
                                         "planned_on": "2024-03-11"}, INSPECTOR)["inspection_id"]
    node.run("focus_inspection", {"inspection_id": insp, "post": "局长"}, INSPECTOR)
    return {"top": top, "buy": buy, "other": other, "insp": insp, "plain": plain}


def test_risk_points_and_inspections_filtered_to_key_posts_and_in_the_assessment(any_node, clock):
    node = any_node
    ids = setup(node)
    posts = node.query("key_posts", {"unit_id": "district"}, VIEWER)["posts"]
    assert [(p["unit_id"], p["post"], p["kind"], p["risk_points"]) for p in posts] == [
        ("u1", "局长", "top_leader", 1), ("u2", "采购岗", "key_post", 1)]
    assert posts[0]["risk_levels"] == {"high": 1} and posts[0]["inspections"][0]["inspection_id"] == ids["insp"]
    rps = node.query("key_post_risk_points", {"unit_id": "district"})["risk_points"]
    assert [r["risk_point_id"] for r in rps] == [ids["top"], ids["buy"]]  # not the driver's
    leaders = node.query("key_post_risk_points", {"unit_id": "district", "kind": "top_leader"})
    assert [r["risk_point_id"] for r in leaders["risk_points"]] == [ids["top"]]
    insps = node.query("key_post_inspections", {"unit_id": "u1"}, unit_admin("u1"))["inspections"]
    assert [i["inspection_id"] for i in insps] == [ids["insp"]]
    # the ecology assessment: a round over the district's units shows their key-post counts
    rnd = node.run("open_round", {"title": "2024年一季度政治生态研判", "period": "2024-Q1",
                                  "unit_id": "district"}, INSPECTOR)["round_id"]
    report = node.query("assessment_report", {"round_id": rnd})
    by_unit = {u["unit_id"]: u for u in report["key_posts"]}
    assert by_unit["u1"]["top_leader_posts"] == ["局长"] and by_unit["u1"]["risk_high"] == 1
    assert by_unit["u1"]["inspections"] == 1 and by_unit["u2"]["key_posts"] == ["采购岗"]
    assert by_unit["u2"]["risk_low"] == 1 and by_unit["u2"]["inspections"] == 0
    assert node.query("key_post_assessment", {"round_id": rnd})["units"] == report["key_posts"]
    # a flag cleared: the post's risk points are no longer among them
    node.run("clear_key_post", {"unit_id": "u2", "post": "采购岗", "reason": "岗位撤并"}, INSPECTOR)
    rps = node.query("key_post_risk_points", {"unit_id": "district"})["risk_points"]
    assert [r["risk_point_id"] for r in rps] == [ids["top"]]


@pytest.fixture
def scene(node):
    return setup(node)


@pytest.mark.parametrize("status,name,data,actor,field", [
    (409, "flag_key_post", lambda s: {"unit_id": "u1", "post": "副局长", "kind": "top_leader"},
     INSPECTOR, "post"),
    (400, "flag_key_post", lambda s: {"unit_id": "u1", "post": "x", "kind": "boss"}, INSPECTOR,
     "kind"),
    (403, "flag_key_post", lambda s: {"unit_id": "u1", "post": "x", "kind": "key_post"},
     unit_admin("u1"), None),
    (404, "flag_key_post", lambda s: {"unit_id": "nope", "post": "x", "kind": "key_post"},
     INSPECTOR, None),
    (400, "focus_inspection", lambda s: {"inspection_id": s["plain"], "post": "司机"}, INSPECTOR,
     "post"),
    (409, "focus_inspection", lambda s: {"inspection_id": s["insp"], "post": "局长"}, INSPECTOR,
     "post"),
    (409, "clear_key_post", lambda s: {"unit_id": "u1", "post": "司机", "reason": "x"}, ADMIN,
     "post"),
])
def test_refusals_are_chinese_and_write_nothing(node, scene, status, name, data, actor, field):
    err = must_fail(node, status, name, data(scene), actor)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.message), err.message
    if field:
        assert field in (err.fields or {}), err.fields


def test_a_unit_admin_reads_only_their_subtree(node, scene):
    must_fail(node, 403, "key_posts", {"unit_id": "district"}, unit_admin("u1"), kind="query")
    assert [p["post"] for p in node.query("key_posts", {"unit_id": "u1"},
                                          unit_admin("u1"))["posts"]] == ["局长"]
