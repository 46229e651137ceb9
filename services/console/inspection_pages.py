"""检查督导 in the console, beyond one inspection: planning a batch (the same inspection for
several units chosen from the tree) and the checklist (评分表) with its versions, revised
by node-admins. An inspection keeps the checklist version it was planned under; the
supervision service decides what is allowed.
"""
from __future__ import annotations

import secrets

from services.console.pages import INSPECTORS, NODE_ADMIN, _today, raise_forbidden, roots, tree
from services.console.web import page

MAX_CRITERIA = 50
BLANK_CRITERIA = 2


@page("/inspections/batch", methods=("POST",))
def inspection_batch(web):
    if not web.can(*INSPECTORS):
        raise_forbidden()
    unit_ids = [u for u in web.request.form.getlist("unit_ids") if u]
    data = {"unit_ids": unit_ids, "title": web.form("title"), "planned_on": web.form("planned_on")}
    if not unit_ids:
        errors = {"unit_ids": "被检查单位: 至少选择一个单位", "_": "输入有误，请按提示修改后再提交"}
    else:
        result, errors = web.attempt("supervision", "plan_inspection_batch", data)
        if not errors:
            return web.redirect("/inspections?batch=%s" % result["batch_id"],
                                "已批量计划 %d 次检查（检查清单第 %d 版）"
                                % (len(result["inspections"]), result["checklist_version"]))
    items = []
    for root in roots(web):
        items += web.query("supervision", "list_inspections", {
            "unit_id": root["unit_id"], "include_subtree": True, "limit": 200})["items"]
    return web.render("inspections.html", status=400, items=items, units=tree(web), errors={},
                      batch_errors=errors, batch_values=web.request.form,
                      inspector=web.can(*INSPECTORS), today=_today(web).isoformat())


# -- the checklist and its versions -------------------------------------------------------------------
def _criteria_from_form(web) -> tuple[list[dict], dict]:
    form, errors, out = web.request.form, {}, []
    for n in range(MAX_CRITERIA + BLANK_CRITERIA):
        name = (form.get("c%d_name" % n) or "").strip()
        if not name:
            continue
        raw = (form.get("c%d_max" % n) or "").strip()
        try:
            max_score = float(raw)
        except ValueError:
            errors["c%d_max" % n] = "「%s」的满分: 请填写数字" % name
            max_score = None
        criterion = {"code": form.get("c%d_code" % n) or "c_%s" % secrets.token_hex(4),
                     "name": name, "max_score": max_score}
        description = (form.get("c%d_description" % n) or "").strip()
        if description:
            criterion["description"] = description
        out.append(criterion)
    if not out:
        errors["criteria"] = "考核标准: 至少要有一项"
    return out, errors


@page("/checklists", methods=("GET", "POST"))
def checklists(web):
    errors, editing = {}, None
    if web.request.method == "POST":
        if not web.can(*NODE_ADMIN):
            raise_forbidden()
        editing, errors = _criteria_from_form(web)
        if not errors:
            result, errors = web.attempt("supervision", "revise_checklist", {
                "criteria": editing, "note": web.form("note"), "title": web.form("title")})
            if not errors:
                return web.redirect("/checklists", "已发布检查清单第 %d 版" % result["version"])
        else:
            errors.setdefault("_", "输入有误，请按提示修改后再提交")
    current = web.query("supervision", "get_checklist")
    version = web.arg("version")
    shown = (web.query("supervision", "get_checklist", {"version": int(version)})
             if version.isdigit() else current)
    return web.render("inspection_checklists.html", status=400 if errors else 200,
                      current=current, shown=shown,
                      editing=editing if editing is not None else current["criteria"],
                      blank=BLANK_CRITERIA, errors=errors, admin=web.can(*NODE_ADMIN),
                      note=web.form("note"), title=web.form("title") or current["title"])
