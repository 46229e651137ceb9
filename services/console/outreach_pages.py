"""The console's education outreach pages: 廉政宣传周更新 (the content library and each
unit's weekly rotation), 廉洁通知 (notices on a calendar, receipts per unit), 廉政谈话 /
年轻干部 (talks due and overdue after promotions, young cadres' cadence) and 精准推送 (what
each unit is offered, coverage per risk point with its gaps).

They read and write through the education service only; people's names come from the
units service (education keeps ids, never names). Tags are words a person types (业务类型,
岗位, 风险点); units and people are always picked.
"""
from __future__ import annotations

import calendar
from datetime import date

from services.console import education_pages as edu  # its helpers, read at call time (cycle)
from services.console.pages import _today, raise_forbidden, roots, tree
from services.console.web import page
from shared.errors import BadInput, NotFound

TALK_ROLES = ("node-admin", "unit-admin", "inspector")


def _words(text: str) -> list[str]:
    """业务类型 / 岗位 / 风险点 typed as words separated by 、，, ; or new lines."""
    for sep in ("、", "，", "；", ";", "\n", "\r"):
        text = text.replace(sep, ",")
    return [w.strip() for w in text.split(",") if w.strip()]


def _tags_from_form(web) -> dict:
    """业务类型 and 岗位 typed as words; 廉政风险点 picked from supervision's register."""
    return {"business_types": _words(web.form("business_types")),
            "posts": _words(web.form("posts")),
            "risk_points": sorted(set(web.request.form.getlist("risk_points")))}


def register_names(web) -> list[str]:
    """The names of the risk points in supervision's 廉政风险点台账 the user sees (the
    picker for the risk-point tag: nobody types a risk point)."""
    names = set()
    for root in roots(web):
        for entry in web.query("education", "risk_point_register",
                               {"unit_id": root["unit_id"]})["risk_points"]:
            names.add(entry["name"])
    return sorted(names)


def _names(web) -> dict:
    return {u["unit_id"]: u["name"] for u in tree(web)}


def _iso_week(day: date) -> str:
    y, w, _ = day.isocalendar()
    return "%04d-W%02d" % (y, w)


def week_text(week: str) -> str:
    """2026-W49 -> 2026年第49周."""
    return "%s年第%d周" % (week[:4], int(week[6:8]))


# -- 廉政宣传周更新 ----------------------------------------------------------------------------------
@page("/publicity", methods=("GET", "POST"))
def publicity(web):
    today = _today(web)
    errors, values = {}, {}
    if web.request.method == "POST":
        action = web.form("action")
        if action in ("add", "retire", "retag"):
            if not web.can("node-admin"):
                raise_forbidden()
            if action == "add":
                values = {"kind": web.form("kind"), "title": web.form("title"),
                          "text": web.form("text"), "ref": web.form("ref")}
                _r, errors = web.attempt("education", "add_content",
                                         dict(values, tags=_tags_from_form(web)))
                done = "已加入内容库：%s" % values["title"]
            elif action == "retag":
                _r, errors = web.attempt("education", "retag_content", {
                    "item_id": web.form("item_id"), "tags": _tags_from_form(web)})
                done = "已修改标签"
            else:
                _r, errors = web.attempt("education", "retire_content", {
                    "item_id": web.form("item_id"), "reason": web.form("reason")})
                done = "已停用该内容"
            if not errors:
                return web.redirect("/publicity", done)
        else:
            raise NotFound("没有这种操作")
    kind = web.arg("kind")
    params = {"include_retired": web.arg("retired") == "1"}
    if kind:
        params["kind"] = kind
    items = web.query("education", "list_content", params)["items"]
    units = roots(web)
    root = edu._chosen_root(web, units)
    week = web.query("education", "publicity_week", {"unit_id": root["unit_id"]}) if root else None
    return web.render("publicity_library.html", status=400 if errors else 200, items=items,
                      kind=kind, retired=web.arg("retired") == "1", roots=units, root=root,
                      week=week, week_text=week_text, errors=errors, values=values,
                      today=today, register=register_names(web) if web.can("node-admin") else [])


@page("/publicity/units/<unit_id>", methods=("GET", "POST"))
def publicity_unit(web, unit_id):
    errors = {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        data = {"unit_id": unit_id}
        chosen = web.request.form.getlist("item_ids")
        if web.form("action") == "manual":
            if not chosen:
                errors = {"_": "输入有误，请按提示修改后再提交", "item_ids": "请至少选择一条内容"}
            data["item_ids"] = chosen
        if not errors:
            result, errors = web.attempt("education", "rotate_publicity", data)
        if not errors:
            done = ("已更新本周展示内容" if result["changed"] else "本周已有展示内容，未作改动")
            return web.redirect("/publicity/units/%s" % unit_id, done)
    unit = web.query("units", "get_unit", {"unit_id": unit_id})
    history = web.query("education", "publicity_history", {"unit_id": unit_id, "limit": 52})["weeks"]
    library = [i for i in web.query("education", "list_content", {})["items"]
               if i["kind"] in ("slogan", "image", "short_text")]
    by_id = {i["item_id"]: i for i in web.query("education", "list_content",
                                                {"include_retired": True})["items"]}
    this_week = _iso_week(_today(web))
    return web.render("publicity_unit.html", status=400 if errors else 200, unit=unit,
                      history=history, library=library, by_id=by_id, this_week=this_week,
                      week_text=week_text, errors=errors)


# -- 廉洁通知 ------------------------------------------------------------------------------------
def _month_weeks(year: int, month: int) -> list[list[date | None]]:
    return [[d if d.month == month else None for d in week]
            for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)]


@page("/notices", methods=("GET", "POST"))
def notices(web):
    today = _today(web)
    errors, values = {}, {}
    if web.request.method == "POST":
        if not web.can("node-admin"):
            raise_forbidden()
        values = {k: web.form(k) for k in ("title", "body", "send_on", "occasion", "occasion_date")}
        result, errors = web.attempt("education", "schedule_notice", values)
        if not errors:
            return web.redirect("/notices/%s" % result["notice_id"],
                                "已安排通知：%s" % values["title"])
    try:
        period = edu._month_arg(web, today)
    except BadInput as exc:
        errors, period = errors or {"_": exc.message}, edu._period(today)
    year, month = int(period[:4]), int(period[5:7])
    listed = web.query("education", "list_notices", {})["notices"]
    by_day: dict[str, list] = {}
    for n in listed:
        by_day.setdefault(n["send_on"], []).append(dict(n, mark="send"))
        if n.get("occasion_date") and n["occasion_date"] != n["send_on"]:
            by_day.setdefault(n["occasion_date"], []).append(dict(n, mark="occasion"))
    receipts = {}
    for n in listed:
        if n["status"] == "sent":
            receipts[n["notice_id"]] = web.query("education", "notice_receipts",
                                                 {"notice_id": n["notice_id"]})
    prev_m = "%04d-%02d" % ((year, month - 1) if month > 1 else (year - 1, 12))
    next_m = "%04d-%02d" % ((year, month + 1) if month < 12 else (year + 1, 1))
    return web.render("notices_calendar.html", status=400 if errors else 200,
                      notices=listed, by_day=by_day, receipts=receipts, year=year, month=month,
                      weeks=_month_weeks(year, month), today=today, prev_m=prev_m, next_m=next_m,
                      errors=errors, values=values)


def _my_units(web) -> set[str]:
    """Units the signed-in user may acknowledge for (their subtree; node-admins: all)."""
    if not web.writer:
        return set()
    return {u["unit_id"] for u in tree(web)}


@page("/notices/<notice_id>", methods=("GET", "POST"))
def notice(web, notice_id):
    errors = {}
    if web.request.method == "POST":
        action = web.form("action")
        if action == "acknowledge":
            if not web.writer:
                raise_forbidden()
            _r, errors = web.attempt("education", "acknowledge_notice",
                                     {"notice_id": notice_id, "unit_id": web.form("unit_id")})
            done = "已回执：收到通知"
        elif action == "cancel":
            if not web.can("node-admin"):
                raise_forbidden()
            _r, errors = web.attempt("education", "cancel_notice",
                                     {"notice_id": notice_id, "reason": web.form("reason")})
            done = "已取消该通知"
        else:
            raise NotFound("没有这种操作")
        if not errors:
            return web.redirect("/notices/%s" % notice_id, done)
    found = [n for n in web.query("education", "list_notices", {})["notices"]
             if n["notice_id"] == notice_id]
    if not found:
        raise NotFound("通知不存在")
    n = found[0]
    receipts = web.query("education", "notice_receipts", {"notice_id": notice_id}) \
        if n["status"] == "sent" else None
    mine = _my_units(web)
    return web.render("notices_detail.html", status=400 if errors else 200, n=n,
                      receipts=receipts, mine=mine, errors=errors)


# -- 廉政谈话 / 年轻干部 ------------------------------------------------------------------------------
def _person_names(web, person_ids) -> dict:
    names = {}
    for pid in sorted(set(person_ids)):
        try:
            names[pid] = web.query("units", "get_person", {"person_id": pid})["name"]
        except NotFound:
            names[pid] = "（人员已不在名册）"
    return names


def talk_state(t: dict) -> str:
    if t["status"] == "held":
        return "held"
    return "overdue" if t["overdue"] else "scheduled"


@page("/talks", methods=("GET", "POST"), roles=TALK_ROLES)
def talks(web):
    today = _today(web)
    errors, values = {}, {}
    if web.request.method == "POST":
        action = web.form("action")
        values = dict(web.request.form)
        if action == "talk":
            _r, errors = web.attempt("education", "record_talk_held", {
                "talk_id": web.form("talk_id"), "held_on": web.form("held_on"),
                "conducted_by": web.form("conducted_by"), "note": web.form("note")})
            done = "已登记廉政谈话"
        elif action == "young":
            if not web.writer:
                raise_forbidden()
            _r, errors = web.attempt("education", "record_young_cadre_education", {
                "person_id": web.form("person_id"), "on": web.form("on"),
                "topic": web.form("topic")})
            done = "已登记年轻干部教育"
        else:
            raise NotFound("没有这种操作")
        if not errors:
            return web.redirect("/talks", done)
    names = _names(web)
    listed, young = [], []
    for root in roots(web):
        listed += web.query("education", "list_talks", {"unit_id": root["unit_id"]})["talks"]
        young += web.query("education", "young_cadre_programme",
                           {"unit_id": root["unit_id"]})["young_cadres"]
    people = _person_names(web, [t["person_id"] for t in listed] + [y["person_id"] for y in young])
    order = {"overdue": 0, "scheduled": 1, "held": 2}
    for t in listed:
        t["state"] = talk_state(t)
        t["days_left"] = (date.fromisoformat(t["due_on"]) - today).days
    listed.sort(key=lambda t: (order[t["state"]], t["due_on"]))
    for y in young:
        y["days_left"] = (date.fromisoformat(y["next_due_on"]) - today).days
        y["late"] = y["overdue"] or y["days_left"] < 0
    young.sort(key=lambda y: (not y["late"], y["next_due_on"]))
    counts = {s: sum(1 for t in listed if t["state"] == s) for s in order}
    return web.render("talks.html", status=400 if errors else 200, talks=listed, young=young,
                      people=people, names=names, counts=counts, today=today,
                      young_overdue=sum(1 for y in young if y["late"]),
                      errors=errors, values=values, can_record=web.can(*TALK_ROLES))


# -- 精准推送 ------------------------------------------------------------------------------------
def point_name(point) -> str:
    """A risk point as the page names it: its words, or the register's name for it."""
    if isinstance(point, dict):
        return (point.get("name") or point.get("title") or point.get("label")
                or point_name(point.get("risk_point") or ""))
    return str(point)


@page("/tailoring", methods=("GET", "POST"))
def tailoring(web):
    today = _today(web)
    errors = {}
    units = tree(web)
    unit_id = web.arg("unit_id") or web.form("unit_id")
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        _r, errors = web.attempt("education", "set_unit_profile", {
            "unit_id": unit_id, "business_types": _words(web.form("business_types")),
            "posts": _words(web.form("posts"))})
        if not errors:
            return web.redirect("/tailoring?unit_id=%s" % unit_id, "已保存单位画像")
    names = {u["unit_id"]: u["name"] for u in units}
    if unit_id and unit_id not in names:
        raise NotFound("单位不存在或不在您的管理范围内")
    offer = web.query("education", "offer_for_unit", {"unit_id": unit_id, "limit": 20}) \
        if unit_id else None
    try:
        period = edu._month_arg(web, today)
    except BadInput as exc:
        errors, period = errors or {"_": exc.message}, edu._period(today)
    coverage = []
    for root in roots(web):
        answer = web.query("education", "risk_point_coverage",
                           {"unit_id": root["unit_id"], "period": period})
        coverage.append(dict(answer, root_name=root["name"]))
    months = []
    y, m = today.year, today.month
    for _ in range(12):
        months.append("%04d-%02d" % (y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return web.render("tailoring.html", status=400 if errors else 200, units=units,
                      unit_id=unit_id, unit_name=names.get(unit_id, ""), offer=offer,
                      coverage=coverage, period=period, months=months, names=names,
                      point_name=point_name, errors=errors)
