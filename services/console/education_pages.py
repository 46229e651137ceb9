"""The console's education pages: 廉洁提醒日打卡, 警示教育月月行 and 学习教育日历.

Like every page, they read and write through the education service only. Check-ins are
shown per party organisation (coverage), never per person: the page for a member shows
their own streak, the pages for admins show units, so nobody ranks people by taps.
"""
from __future__ import annotations

import calendar
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.console import checkins
from services.console.pages import _today, _unit, raise_forbidden, roots, tree
from services.console.web import page
from shared.errors import BadInput, NotFound, RuleViolation

COVERAGE_ROLES = ("node-admin", "unit-admin", "inspector")
MONTHS = range(1, 13)


def _period(today: date) -> str:
    return "%04d-%02d" % (today.year, today.month)


def _months_back(today: date, n: int) -> list[str]:
    """This month and the n-1 before it, newest first (the month picker's choices)."""
    y, m, out = today.year, today.month, []
    for _ in range(n):
        out.append("%04d-%02d" % (y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out


def _reminder(web, on: str | None = None) -> dict | None:
    try:
        return web.query("education", "todays_reminder", {"on": on} if on else {})
    except NotFound:
        return None


# -- 廉洁提醒日打卡: the member's page (phone first) -------------------------------------------------
@page("/checkin", methods=("GET", "POST"), session="service")
def checkin(web):
    message, error = None, None
    if web.request.method == "POST":
        try:
            # sent together with the check-ins arriving meanwhile, the session checked
            # by education (checkins.py); web.actor is looked up only below, for a refusal
            done = checkins.check_in_own(web)
            if done["duplicate"]:
                message = "今天已经打过卡了，不重复计数"
            else:
                message = "打卡成功，已连续打卡 %d 天" % done["streak"]
        except NotFound:
            error = "您的账号未登记为本节点的党员，无法打卡。请联系本单位管理员。"
        except RuleViolation:
            error = "今天的廉洁提醒尚未发布，请稍后再来。"
        if message:
            return web.redirect("/checkin", message)
    streak = web.query("education", "member_streak", {"person_id": web.actor.user_id})
    checked_today = streak["last_day"] == _today(web).isoformat()
    return web.render("checkin.html", status=409 if error else 200, reminder=_reminder(web),
                      streak=streak, checked_today=checked_today, today=_today(web),
                      message=error, coverage_link=web.can(*COVERAGE_ROLES))


# -- coverage per unit (admins) ------------------------------------------------------------------
def _chosen_root(web, units: list[dict]) -> dict | None:
    chosen = web.arg("unit_id")
    return next((u for u in units if u["unit_id"] == chosen), units[0] if units else None)


def _day_arg(web, today: date) -> str:
    value = web.arg("on") or today.isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadInput("日期格式应为 年-月-日") from None


def _month_arg(web, today: date) -> str:
    value = web.arg("period") or _period(today)
    try:
        date.fromisoformat(value + "-01")
    except ValueError:
        raise BadInput("月份格式应为 年-月") from None
    return value


@page("/checkin/coverage", methods=("GET", "POST"), roles=COVERAGE_ROLES)
def checkin_coverage(web):
    today = _today(web)
    errors, values = {}, {}
    if web.request.method == "POST":  # the node-admin sets a day's one-line reminder
        if not web.can("node-admin"):
            raise_forbidden()
        values = {"on": web.form("on"), "text": web.form("text")}
        _r, errors = web.attempt("education", "set_daily_reminder", values)
        if not errors:
            return web.redirect("/checkin/coverage", "已设置%s的廉洁提醒" % values["on"])
    units = roots(web)
    root = _chosen_root(web, units)
    daily = monthly = None
    try:
        day, period = _day_arg(web, today), _month_arg(web, today)
    except BadInput as exc:
        errors = errors or {"_": exc.message}
        day, period = today.isoformat(), _period(today)
    if root:
        daily = web.query("education", "checkin_daily", {"unit_id": root["unit_id"], "on": day})
        monthly = web.query("education", "checkin_monthly",
                            {"unit_id": root["unit_id"], "period": period})
    recent = _months_back(today, 12)
    if period not in recent:
        recent.append(period)
    return web.render("checkin_coverage.html", status=400 if errors else 200, roots=units,
                      recent_months=recent,
                      root=root, day=day, period=period, daily=daily, monthly=monthly,
                      errors=errors, values=values, today=today.isoformat())


# -- 警示教育月月行 --------------------------------------------------------------------------------
def month_state(period: str, current: str, held: bool | None) -> str:
    """held / missed / in_progress / future: a month not over yet is never missed."""
    if period > current:
        return "future"
    if held:
        return "held"
    return "in_progress" if period == current else "missed"


STATE_TEXT = {"held": "已开展", "missed": "未开展", "in_progress": "进行中", "future": "未到"}


def warning_grid(web, unit_id: str, year: int, today: date) -> tuple[list[dict], dict]:
    """Rows: each party organisation with its twelve months' state; and per month the
    service's answer (missed list), for the months that have begun."""
    current = _period(today)
    answers = {}
    for m in MONTHS:
        period = "%04d-%02d" % (year, m)
        if period <= current:
            answers[period] = web.query("education", "warning_education_compliance",
                                        {"unit_id": unit_id, "period": period})
    # a year still to come: the organisations are today's
    listed = answers or {current: web.query("education", "warning_education_compliance",
                                            {"unit_id": unit_id, "period": current})}
    rows: dict[str, dict] = {}
    for period, answer in listed.items():
        for u in answer["units"]:
            row = rows.setdefault(u["unit_id"], {"name": u["name"], "kind": u["kind"], "months": {}})
            row["months"][period] = u["held"]
    grid = []
    for row in rows.values():
        cells = []
        for m in MONTHS:
            period = "%04d-%02d" % (year, m)
            state = month_state(period, current, row["months"].get(period))
            cells.append({"period": period, "month": m, "state": state, "text": STATE_TEXT[state]})
        grid.append(dict(row, cells=cells))
    return grid, answers


@page("/warning-education")
def warning_education(web):
    today = _today(web)
    units = roots(web)
    root = _chosen_root(web, units)
    errors = {}
    try:
        year = int(web.arg("year") or today.year)
        if not 2000 <= year <= 2100:
            raise ValueError
    except ValueError:
        errors, year = {"_": "年份应为四位数字，例如 %d" % today.year}, today.year
    default_month = today.month if year == today.year else 12
    try:
        month = int(web.arg("month") or default_month)
        if month not in MONTHS:
            raise ValueError
    except ValueError:
        errors, month = errors or {"_": "月份应为 1 至 12"}, default_month
    grid, answers = warning_grid(web, root["unit_id"], year, today) if root else ([], {})
    chosen = "%04d-%02d" % (year, month)
    return web.render("warning_education.html", status=400 if errors else 200, roots=units,
                      root=root, year=year, month=month, grid=grid, chosen=chosen,
                      answer=answers.get(chosen),
                      chosen_state=month_state(chosen, _period(today), None),
                      months=MONTHS, errors=errors)


# -- 学习教育日历 ----------------------------------------------------------------------------------
FIELD_TEXTS = {  # what a session kind requires, as the person reads it (the service says it in codes)
    "discussion": "大家议：廉政微党课须填写讨论情况",
    "leader_comment": "领导评：廉政微党课须填写领导点评",
    "activities": "专题党日须包含全部“四共”内容",
    "speaker": "廉政微党课须填写主讲人岗位",
    "scheduled_at": "请填写日期（年-月-日）和时间（时:分）",
}


def _explain(errors: dict) -> dict:
    for field, text in FIELD_TEXTS.items():
        if field in errors:
            errors[field] = text
    return errors


def _month_weeks(year: int, month: int) -> list[list[date | None]]:
    return [[d if d.month == month else None for d in week]
            for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)]


def _ym(web, today: date) -> tuple[int, int, dict]:
    try:
        year, month = int(web.arg("year") or today.year), int(web.arg("month") or today.month)
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise ValueError
        return year, month, {}
    except ValueError:
        return today.year, today.month, {"_": "年份应为四位数字，月份应为 1 至 12"}


def _scheduled_at(web) -> str | None:
    """年-月-日 and 时:分 in the users' zone, as the service's ISO instant (None if unreadable)."""
    try:
        at = datetime.strptime("%s %s" % (web.form("day"), web.form("time") or "09:00"),
                               "%Y-%m-%d %H:%M")
    except ValueError:
        return None
    return at.replace(tzinfo=ZoneInfo(web.settings.timezone)).isoformat()


@page("/calendar", methods=("GET", "POST"))
def study_calendar(web):
    today = _today(web)
    errors = {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        data = {"kind": web.form("kind"), "title": web.form("title"),
                "organiser_unit_id": web.form("organiser_unit_id"),
                "scheduled_at": _scheduled_at(web)}
        if web.form("speaker_post"):
            data["speaker"] = {"post": web.form("speaker_post")}
        if web.form("material_title") or web.form("material_ref"):
            data["materials"] = [{"title": web.form("material_title"), "ref": web.form("material_ref")}]
        from services.console.outreach_pages import _tags_from_form
        tags = _tags_from_form(web)  # 精准推送: what the session addresses (risk points picked)
        if any(tags.values()):
            data["tags"] = tags
        if data["scheduled_at"] is None:
            errors = {"_": "输入有误，请按提示修改后再提交", "scheduled_at": FIELD_TEXTS["scheduled_at"]}
        else:
            result, errors = web.attempt("education", "plan_session", data)
        if not errors:
            day = date.fromisoformat(result["local_date"])
            return web.redirect("/calendar?year=%d&month=%d" % (day.year, day.month),
                                "已计划：%s" % data["title"])
        errors = _explain(errors)
    year, month, bad = _ym(web, today)
    errors = errors or bad
    units = tree(web)
    names = {u["unit_id"]: u["name"] for u in units}
    period = "%04d-%02d" % (year, month)
    by_day: dict[str, list] = {}
    for root in roots(web):
        listed = web.query("education", "list_sessions", {"unit_id": root["unit_id"], "period": period})
        for s in listed["organised"]:
            s["organiser"] = names.get(s["organiser_unit_id"], "")
            by_day.setdefault(s["local_date"], []).append(s)
    prev_m = (year, month - 1) if month > 1 else (year - 1, 12)
    next_m = (year, month + 1) if month < 12 else (year + 1, 1)
    from services.console.outreach_pages import register_names
    return web.render("calendar.html", status=400 if errors else 200, year=year, month=month,
                      weeks=_month_weeks(year, month), by_day=by_day, today=today, units=units,
                      prev_m=prev_m, next_m=next_m, errors=errors, values=web.request.form,
                      register=register_names(web) if web.writer else [])


@page("/calendar/sessions/<session_id>", methods=("GET", "POST"))
def study_session(web, session_id):
    errors = {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        action = web.form("action")
        if action == "hold":
            # roster or headcount: people ticked by name are the roster, else the number
            roster = web.request.form.getlist("roster")
            try:
                headcount = None if roster else int(web.form("headcount"))
            except ValueError:
                headcount = None
            data = {"session_id": session_id,
                    "attendance": {"roster": roster} if roster else {"headcount": headcount},
                    "discussion": web.form("discussion") or None,
                    "leader_comment": web.form("leader_comment") or None,
                    "activities": web.request.form.getlist("activities")}
            if not roster and headcount is None:
                errors = {"_": "输入有误，请按提示修改后再提交",
                          "headcount": "参加人数: 请填写整数，或勾选参加人员"}
            else:
                _r, errors = web.attempt("education", "hold_session", data)
            done = "已记录为已开展"
        elif action == "cancel":
            _r, errors = web.attempt("education", "cancel_session",
                                     {"session_id": session_id, "reason": web.form("reason")})
            done = "已取消"
        else:
            raise NotFound("没有这种操作")
        if not errors:
            return web.redirect("/calendar/sessions/%s" % session_id, done)
        errors = _explain(errors)
    session = web.query("education", "get_session", {"session_id": session_id})
    organiser = _unit(web, session["organiser_unit_id"])["name"]
    people = web.query("units", "list_people", {"unit_id": session["organiser_unit_id"]})["people"] \
        if web.writer and session["status"] == "planned" else []
    return web.render("study_session.html", status=400 if errors else 200, s=session,
                      organiser=organiser, people=people, errors=errors, values=web.request.form)
