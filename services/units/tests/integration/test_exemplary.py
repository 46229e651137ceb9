"""模范科室评选 (issue 10 #24) through the units application on SQLite and PostgreSQL: a round
per unit and year, nominations among its sections, secondary units and windows, 互比互查 scores
between them (never of oneself, every criterion within its range), the result (ranking,
exemplars), a closed round immutable; every refused request writes nothing."""
from __future__ import annotations

import pytest

from services.units.domain import exemplary_ranking, score_errors
from services.units.tests.integration.test_pledges import ADMIN, NODE, Node, refused
from shared.auth import UNIT_ADMIN, VIEWER, Actor
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation

S = {"politics": 24, "discipline": 23, "responsibility": 22, "efficiency": 21}


@pytest.fixture
def node(db_url):
    n = Node(db_url)
    n.run("register_unit", {"unit_id": "dist", "name": "X区直机关工委", "kind": "district_authority",
                            "level": "district", "parent_id": None})
    n.run("register_unit", {"unit_id": "fin", "name": "财政局", "kind": "government_dept", "level": "unit",
                            "parent_id": "dist"})
    n.run("register_unit", {"unit_id": "fina", "name": "财政局二", "kind": "government_dept", "level": "unit",
                            "parent_id": "dist"})
    for uid, name, kind in (("fin-office", "办公室", "section"), ("fin-budget", "预算科", "section"),
                            ("fin-centre", "财政服务中心", "secondary_unit"), ("fin-window", "政务服务窗口", "window_unit")):
        n.run("register_unit", {"unit_id": uid, "name": name, "kind": kind,
                                "level": "section" if kind == "section" else "unit", "parent_id": "fin"})
    n.run("register_unit", {"unit_id": "fina-x", "name": "他局科室", "kind": "section", "level": "section",
                            "parent_id": "fina"})
    yield n
    n.engine.dispose()


def test_scores_and_the_ranking_are_pure_rules():
    assert score_errors(S) == {}
    assert score_errors({**S, "politics": 26, "efficiency": None}) == {
        "politics": ["「讲政治」应在 0 至 25 分之间"], "efficiency": ["请为「有效率」打分"]}
    rows = exemplary_ranking(["a", "b", "c", "d"], [
        {"scorer_unit_id": "b", "nominee_unit_id": "a", "scores": S},
        {"scorer_unit_id": "c", "nominee_unit_id": "a", "scores": {**S, "politics": 20}},
        {"scorer_unit_id": "a", "nominee_unit_id": "b", "scores": {**S, "politics": 22}},
        {"scorer_unit_id": "a", "nominee_unit_id": "c", "scores": {**S, "politics": 22}}])
    # equal totals share a rank; the unscored come last without one
    assert [(r["unit_id"], r["total"], r["rank"]) for r in rows] == \
        [("a", 88.0, 1), ("b", 88.0, 1), ("c", 88.0, 1), ("d", None, None)]
    assert rows[0]["averages"]["politics"] == 22.0 and rows[0]["scored_by"] == 2
    rows = exemplary_ranking(["a", "b"], [{"scorer_unit_id": "b", "nominee_unit_id": "a", "scores": S},
                                          {"scorer_unit_id": "a", "nominee_unit_id": "b", "scores": {**S, "politics": 25}}])
    assert [(r["unit_id"], r["total"], r["rank"]) for r in rows] == [("b", 91.0, 1), ("a", 90.0, 2)]


def _round(node, actor=ADMIN):
    rid = node.run("open_exemplary_round", {"unit_id": "fin", "year": 2026, "title": "2026年度模范科室评选",
                                            "exemplars": 1}, actor)["round_id"]
    for u in ("fin-office", "fin-budget", "fin-window"):
        node.run("nominate_exemplary", {"round_id": rid, "nominee_unit_id": u}, actor)
    return rid


def test_a_round_from_nominations_to_its_result(node):
    ua = Actor("ua-fin", (UNIT_ADMIN,), "fin", NODE)
    rid = _round(node, ua)
    pairs = {("fin-office", "fin-budget"): 24, ("fin-office", "fin-window"): 20, ("fin-budget", "fin-office"): 22,
             ("fin-budget", "fin-window"): 21, ("fin-window", "fin-office"): 23, ("fin-window", "fin-budget"): 25}
    for (a, b), p in pairs.items():
        node.run("score_exemplary", {"round_id": rid, "scorer_unit_id": a, "nominee_unit_id": b,
                                     "scores": {**S, "politics": p}}, Actor("ua-" + a, (UNIT_ADMIN,), a, NODE))
    got = node.ask("get_exemplary_round", {"round_id": rid}, Actor("v", (VIEWER,), None, NODE))
    assert got["pending"] == [] and [n["name"] for n in got["nominees"]] == ["办公室", "预算科", "政务服务窗口"]
    assert [(r["name"], r["total"], r["rank"]) for r in got["ranking"]] == \
        [("预算科", 90.5, 1), ("办公室", 88.5, 2), ("政务服务窗口", 86.5, 3)]
    assert node.run("close_exemplary_round", {"round_id": rid}, ua) == {"round_id": rid, "selected": ["fin-budget"]}
    got = node.ask("get_exemplary_round", {"round_id": rid})
    assert got["status"] == "closed" and got["selected"] == [{"unit_id": "fin-budget", "name": "预算科"}]
    assert [r["selected"] for r in got["ranking"]] == [True, False, False]
    listed = node.ask("list_exemplary_rounds", {"unit_id": "dist"})["rounds"]
    assert [(r["title"], r["unit_name"], r["nominees"], r["scores"], r["status"]) for r in listed] == \
        [("2026年度模范科室评选", "财政局", 3, 6, "closed")]
    # closed: final
    e = refused(node, RuleViolation, "nominate_exemplary", {"round_id": rid, "nominee_unit_id": "fin-centre"}, ua)
    assert e.fields == {"round_id": ["评选已结束"]}
    refused(node, RuleViolation, "close_exemplary_round", {"round_id": rid}, ua)


def test_refused_requests_write_nothing(node):
    ua = Actor("ua-fin", (UNIT_ADMIN,), "fin", NODE)
    rid = _round(node, ua)
    e = refused(node, Conflict, "open_exemplary_round", {"unit_id": "fin", "year": 2026, "title": "再开", "exemplars": 1}, ua)
    assert e.fields == {"year": ["本年度已有评选"]}
    e = refused(node, RuleViolation, "nominate_exemplary", {"round_id": rid, "nominee_unit_id": "fin-office"}, ua)
    assert e.fields == {"nominee_unit_id": ["已被推荐"]}
    e = refused(node, RuleViolation, "nominate_exemplary", {"round_id": rid, "nominee_unit_id": "fina-x"})
    assert e.fields == {"nominee_unit_id": ["须是本单位的下级单位"]}
    e = refused(node, RuleViolation, "nominate_exemplary", {"round_id": rid, "nominee_unit_id": "fin"})
    assert e.fields == {"nominee_unit_id": ["须是本单位的下级单位"]}
    node.run("register_unit", {"unit_id": "fin-sub", "name": "下属局", "kind": "government_dept", "level": "unit",
                               "parent_id": "fin"})
    e = refused(node, RuleViolation, "nominate_exemplary", {"round_id": rid, "nominee_unit_id": "fin-sub"})
    assert e.fields == {"nominee_unit_id": ["只能推荐内设科室、二级单位或窗口单位"]}
    score = {"round_id": rid, "scorer_unit_id": "fin-office", "nominee_unit_id": "fin-office", "scores": S}
    e = refused(node, RuleViolation, "score_exemplary", score)
    assert e.fields == {"nominee_unit_id": ["不能给本单位打分"]}
    e = refused(node, RuleViolation, "score_exemplary", {**score, "nominee_unit_id": "fin-budget",
                                                          "scores": {**S, "discipline": 30}})
    assert e.fields == {"discipline": ["「守纪律」应在 0 至 25 分之间"]}
    e = refused(node, RuleViolation, "score_exemplary", {**score, "nominee_unit_id": "fin-budget",
                                                          "scores": {"politics": 20}})
    assert set(e.fields) == {"discipline", "responsibility", "efficiency"}
    e = refused(node, RuleViolation, "score_exemplary", {**score, "scorer_unit_id": "fin-centre",
                                                          "nominee_unit_id": "fin-budget"})
    assert e.fields == {"scorer_unit_id": ["评分单位须是参评单位"]}
    e = refused(node, BadInput, "score_exemplary", {**score, "nominee_unit_id": "fin-budget",
                                                    "scores": {**S, "looks": 1}})
    assert "scores" in e.fields
    node.run("score_exemplary", {**score, "nominee_unit_id": "fin-budget"})
    e = refused(node, RuleViolation, "score_exemplary", {**score, "nominee_unit_id": "fin-budget"})
    assert e.fields == {"nominee_unit_id": ["已评过分"]}
    e = refused(node, RuleViolation, "close_exemplary_round", {"round_id": rid}, ua)
    assert "未被评分" in str(e)
    # roles and scope: the scorer's own unit-admin only; viewers never
    refused(node, Forbidden, "score_exemplary", {**score, "nominee_unit_id": "fin-window"},
            Actor("ua-b", (UNIT_ADMIN,), "fin-budget", NODE))
    refused(node, Forbidden, "open_exemplary_round", {"unit_id": "fin", "year": 2027, "title": "x", "exemplars": 1},
            Actor("v", (VIEWER,), None, NODE))
    refused(node, Forbidden, "nominate_exemplary", {"round_id": rid, "nominee_unit_id": "fin-centre"},
            Actor("ua-o", (UNIT_ADMIN,), "fina", NODE))
    e = refused(node, NotFound, "score_exemplary", {**score, "round_id": "exr-2026-none"})
    assert "round_id" in e.fields
