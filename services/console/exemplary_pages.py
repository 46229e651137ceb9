"""模范科室评选 in the console (the units service's, issue 10 #24): /exemplary and
/exemplary/<round_id>.

* /exemplary: the rounds of the user's units (year, organising unit, nominees, scores, status);
  a writer opens the year's round for a unit (title, how many exemplars).
* /exemplary/<round_id>: the nominees; a writer nominates a 内设科室、二级单位 or 窗口单位 below
  the organising unit (picked by name); 互比互查: a nominee's scores of another on 讲政治、
  守纪律、负责任、有效率 (scorer and nominee picked by name; the scorer never scores itself);
  the scores still to give; the standing (live while open); 结束评选 records the ranking and the
  exemplars, after which the page only shows them.

The services decide; the page only hides the forms the user's role may not use.
"""
from __future__ import annotations

from services.console.pages import _today, raise_forbidden, roots, tree
from services.console.web import page
from services.units.domain import EXEMPLARY_CRITERIA, EXEMPLARY_KINDS, EXEMPLARY_MAX_SCORE


@page("/exemplary", methods=("GET", "POST"))
def exemplary_rounds(web):
    errors, values = {}, {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        values = web.request.form
        exemplars = web.form("exemplars")
        result, errors = web.attempt("units", "open_exemplary_round", {
            "unit_id": web.form("unit_id"), "year": web.form("year"), "title": web.form("title"),
            "exemplars": int(exemplars) if exemplars.isdigit() else exemplars})
        if not errors:
            return web.redirect("/exemplary/%s" % result["round_id"], "已开启模范科室评选")
    listed = []
    for r in roots(web):
        listed += web.query("units", "list_exemplary_rounds", {"unit_id": r["unit_id"]})["rounds"]
    return web.render("exemplary_rounds.html", status=400 if errors else 200, rounds=listed,
                      units=[u for u in tree(web) if u["level"] != "section"],  # organisers: not a 科室
                      errors=errors or {}, values=values, year=_today(web).year)


@page("/exemplary/<round_id>", methods=("GET", "POST"))
def exemplary_round(web, round_id):
    errors, action = {}, None
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        action = web.form("action")
        if action == "nominate":
            if not web.form("nominee_unit_id"):
                errors = {"nominee_unit_id": "请选择参评单位"}
            else:
                _r, errors = web.attempt("units", "nominate_exemplary", {
                    "round_id": round_id, "nominee_unit_id": web.form("nominee_unit_id")})
            message = "已推荐参评单位"
        elif action == "score":
            scores = {}
            for c in EXEMPLARY_CRITERIA:
                text = web.form(c)
                try:
                    scores[c] = float(text) if text else None
                except ValueError:
                    errors[c] = "请填写数字"
            if not web.form("scorer_unit_id") or not web.form("nominee_unit_id"):
                errors["nominee_unit_id"] = "请选择评分单位和被评单位"
            if not errors:
                _r, errors = web.attempt("units", "score_exemplary", {
                    "round_id": round_id, "scorer_unit_id": web.form("scorer_unit_id"),
                    "nominee_unit_id": web.form("nominee_unit_id"),
                    "scores": {c: v for c, v in scores.items() if v is not None}})
            message = "已登记互比互查评分"
        else:
            action = "close"
            _r, errors = web.attempt("units", "close_exemplary_round", {"round_id": round_id})
            message = "评选已结束，结果已确定"
        if not errors:
            return web.redirect("/exemplary/%s" % round_id, message)
    r = web.query("units", "get_exemplary_round", {"round_id": round_id})
    mine = {u["unit_id"]: u for u in tree(web)}
    organiser = mine.get(r["unit_id"])
    nominated = {n["unit_id"] for n in r["nominees"]}
    eligible = [u for u in mine.values() if organiser and u["kind"] in EXEMPLARY_KINDS
                and u["path"].startswith(organiser["path"]) and u["unit_id"] != r["unit_id"]
                and u["unit_id"] not in nominated]
    scorers = [n for n in r["nominees"] if n["unit_id"] in mine]
    return web.render("exemplary_round.html", status=400 if errors else 200, r=r, errors=errors or {},
                      action=action, values=web.request.form if errors else {}, eligible=eligible,
                      scorers=scorers, criteria=EXEMPLARY_CRITERIA, max_score=EXEMPLARY_MAX_SCORE,
                      can_manage=web.writer and organiser is not None)
