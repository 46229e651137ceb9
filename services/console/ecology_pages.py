"""政治生态研判 in the console, beyond the ranking: the indicator system's versions and its
editor (node-admins), opening a round over a unit's departments, the manual scores
(实地走访、个别座谈、查看资料), collecting the platform's facts and finalising.

Weights are entered as percentages (a person's way) and sent as fractions; the codes
the service keys indicators by are never typed: an existing dimension or indicator
keeps its code (a hidden field), a new one gets a generated one. Whether the weights
add up, whether a score is in range, who may do what: the supervision service decides.
"""
from __future__ import annotations

import secrets
from datetime import date

from services.console.pages import INSPECTORS, NODE_ADMIN, _today, raise_forbidden, tree
from services.console.web import page
from services.supervision.domain import FACT_SOURCES
from shared.errors import NotFound

MAX_DIMENSIONS = 20
MAX_INDICATORS = 30   # per dimension, as the editor lays them out
BLANK_INDICATORS = 2  # empty rows offered under each dimension


def _new_code(prefix: str) -> str:
    return "%s_%s" % (prefix, secrets.token_hex(4))


def _percent(raw: str, field: str, errors: dict) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        errors[field] = "权重: 请填写数字（百分比）"
        return None
    return round(value / 100.0, 6)


def _number(raw: str, field: str, what: str, errors: dict) -> float | None:
    try:
        return float(raw)
    except ValueError:
        errors[field] = "%s: 请填写数字" % what
        return None


# -- the indicator system -----------------------------------------------------------------------------
def _dimensions_from_form(web) -> tuple[list[dict], dict]:
    """The editor's blocks: ``d<n>_*`` a dimension, ``d<n>_i<m>_*`` its indicators; a
    block or row without a name is left out."""
    form, errors, out = web.request.form, {}, []
    for n in range(MAX_DIMENSIONS + 1):
        name = (form.get("d%d_name" % n) or "").strip()
        if not name:
            continue
        dim = {"code": form.get("d%d_code" % n) or _new_code("dim"), "name": name,
               "weight": _percent(form.get("d%d_weight" % n) or "", "d%d_weight" % n, errors),
               "indicators": []}
        for m in range(MAX_INDICATORS + BLANK_INDICATORS):
            key = "d%d_i%d_" % (n, m)
            ind_name = (form.get(key + "name") or "").strip()
            if not ind_name:
                continue
            dim["indicators"].append({
                "code": form.get(key + "code") or _new_code("ind"), "name": ind_name,
                "weight": _percent(form.get(key + "weight") or "", key + "weight", errors),
                "source": form.get(key + "source") or "manual",
                "max_score": _number(form.get(key + "max") or "100", key + "max", "满分", errors)})
        if not dim["indicators"]:
            errors["d%d_name" % n] = "「%s」下至少要有一项指标" % name
        out.append(dim)
    if not out:
        errors["dimensions"] = "指标体系: 至少要有一个维度"
    return out, errors


def _system(web, version: int | None = None) -> dict:
    params = {"version": version} if version else {}
    return web.query("supervision", "get_indicator_system", params)


@page("/ecology/system", methods=("GET", "POST"))
def ecology_system(web):
    errors, dimensions = {}, None
    if web.request.method == "POST":
        if not web.can(*NODE_ADMIN):
            raise_forbidden()
        dimensions, errors = _dimensions_from_form(web)
        if not errors:
            data = {"dimensions": dimensions, "note": web.form("note"),
                    "effective_from": web.form("effective_from")}
            result, errors = web.attempt("supervision", "revise_indicator_system", data)
            if not errors:
                return web.redirect("/ecology/system", "已发布指标体系第 %d 版" % result["version"])
        else:
            errors.setdefault("_", "输入有误，请按提示修改后再提交")
    version = web.arg("version")
    current = _system(web)
    shown = _system(web, int(version)) if version.isdigit() else current
    editing = dimensions if dimensions is not None else current["dimensions"]
    return web.render("ecology_system.html", status=400 if errors else 200, current=current,
                      shown=shown, editing=editing, errors=errors, sources=FACT_SOURCES,
                      blank_indicators=BLANK_INDICATORS, today=_today(web).isoformat(),
                      note=web.form("note"), admin=web.can(*NODE_ADMIN))


# -- rounds ---------------------------------------------------------------------------------------
HALVES = (("H1", "上半年"), ("H2", "下半年"))
QUARTERS = (("Q1", "第一季度"), ("Q2", "第二季度"), ("Q3", "第三季度"), ("Q4", "第四季度"))


def period_options(today: date) -> list[tuple[str, str]]:
    """The periods a round may be opened for, newest first: this and last year, their
    halves and quarters, each with its Chinese name (2026年第四季度)."""
    out = []
    for year in (today.year, today.year - 1):
        out.append(("%d" % year, "%d年" % year))
        out += [("%d-%s" % (year, code), "%d年%s" % (year, text)) for code, text in HALVES]
        out += [("%d-%s" % (year, code), "%d年%s" % (year, text)) for code, text in QUARTERS]
    return out


def period_label(period: str) -> str:
    names = dict(HALVES + QUARTERS)
    if len(period) == 4:
        return "%s年" % period
    year, part = period.split("-", 1)
    if part in names:
        return "%s年%s" % (year, names[part])
    return "%s年%d月" % (year, int(part)) if part.isdigit() else period


@page("/ecology/rounds", methods=("GET", "POST"))
def ecology_rounds(web):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        result, errors = web.attempt("supervision", "open_round", {
            "title": web.form("title"), "period": web.form("period"),
            "unit_id": web.form("unit_id")})
        if not errors:
            return web.redirect("/ecology/rounds/%s" % result["round_id"],
                                "已开启研判轮次，共 %d 个被研判单位" % result["units"])
    rounds = web.query("supervision", "list_rounds")["rounds"]
    return web.render("ecology_rounds.html", status=400 if errors else 200, rounds=rounds,
                      units=tree(web), periods=period_options(_today(web)),
                      period_label=period_label, errors=errors,
                      inspector=web.can(*INSPECTORS), values=web.request.form)


def _manual(dimensions: list[dict]) -> list[dict]:
    return [dict(i, dimension=d["name"]) for d in dimensions for i in d["indicators"]
            if i["source"] == "manual"]


def _scores_from_form(web, ranking: dict) -> tuple[list[dict], dict]:
    """``s_<unit>_<indicator>`` cells; a blank cell is not (yet) scored."""
    errors, out = {}, []
    manual = _manual(ranking["round"]["dimensions"])
    for entry in ranking["ranking"]:
        for ind in manual:
            key = "s_%s_%s" % (entry["unit_id"], ind["code"])
            raw = web.form(key)
            if not raw:
                continue
            value = _number(raw, key, "%s「%s」" % (entry["unit_name"] or "", ind["name"]), errors)
            if value is not None and (entry.get("manual") or {}).get(ind["code"]) != value:
                out.append({"unit_id": entry["unit_id"], "indicator": ind["code"], "score": value})
    return out, errors


@page("/ecology/rounds/<round_id>", methods=("GET", "POST"))
def ecology_round(web, round_id):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        action = web.form("action")
        if action == "scores":
            ranking = web.query("supervision", "round_ranking", {"round_id": round_id})
            scores, errors = _scores_from_form(web, ranking)
            if not errors and not scores:
                return web.redirect("/ecology/rounds/%s" % round_id, "评分没有变化")
            if not errors:
                _r, errors = web.attempt("supervision", "record_round_scores",
                                         {"round_id": round_id, "scores": scores})
            done = "已保存 %d 项人工评分" % len(scores)
        elif action == "collect":
            _r, errors = web.attempt("supervision", "collect_round_facts", {"round_id": round_id})
            done = "已采集平台数据"
        elif action == "finalize":
            _r, errors = web.attempt("supervision", "finalize_round", {"round_id": round_id})
            done = "研判结果已定稿"
        else:
            raise NotFound("没有这种操作")
        if errors:
            errors.setdefault("_", "输入有误，请按提示修改后再提交")
        else:
            return web.redirect("/ecology/rounds/%s" % round_id, done)
    ranking = web.query("supervision", "round_ranking", {"round_id": round_id})
    entries = sorted(ranking["ranking"], key=lambda e: e["unit_name"] or "")
    return web.render("ecology_round.html", status=400 if errors else 200, ranking=ranking,
                      rnd=ranking["round"], entries=entries, manual=_manual(ranking["round"]["dimensions"]),
                      period_label=period_label, errors=errors, inspector=web.can(*INSPECTORS),
                      posted=web.request.form if errors else {})


__all__ = ["ecology_system", "ecology_rounds", "ecology_round", "period_options", "period_label"]
