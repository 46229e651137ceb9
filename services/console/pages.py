"""The console's pages: each reads and writes through the services, nothing else."""
from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import eventlet
from nameko.exceptions import UnknownService
from werkzeug.wrappers import Response

from services.console.signin import OUTCOMES, Refusal
from services.console.web import (
    LOGIN_COOKIE, SESSION_COOKIE, WRITERS, describe, new_csrf_cookie, page,
)
from services.supervision.domain import RECTIFICATION_STATUSES
from shared import labels
from shared.errors import BadInput, NotFound, QinglianError

NODE_ADMIN = ("node-admin",)
INSPECTORS = ("node-admin", "inspector")


def _today(web) -> date:
    return datetime.now(ZoneInfo(web.settings.timezone)).date()


def _safe_next(target: str) -> str:
    # only a path on this console: never an absolute address (open redirect)
    return target if target.startswith("/") and not target.startswith("//") else "/"


# -- assets and health --------------------------------------------------------------------------
@page("/static/<path:path>", public=True, csrf="none")
def static(web, path):
    return web.static(path)


# -- sign-in ----------------------------------------------------------------------------------
@page("/login", methods=("GET", "POST"), public=True, csrf="login")
def login(web):
    nonce = web.request.cookies.get(LOGIN_COOKIE) or new_csrf_cookie()
    web.cookies.append((LOGIN_COOKIE, nonce, {"max_age": 3600}))
    next_url = _safe_next(web.arg("next") or web.form("next") or "/")
    if web.request.method == "GET":
        return web.render("login.html", nonce=nonce, next_url=next_url, user_id="")
    user_id = web.form("user_id")
    try:
        if not user_id or not web.form("password"):
            raise ValueError("请输入用户名和密码")
        web.dep.signin.attempt(user_id, web.request.form.get("password", ""), web.client)
    except Refusal as r:
        return web.render("login.html", status=429, nonce=nonce, next_url=next_url,
                          user_id=user_id, message=r.message())
    except ValueError as exc:
        return web.render("login.html", status=401, nonce=nonce, next_url=next_url,
                          user_id=user_id, message=str(exc))
    s = web.settings
    token = web.users.open_session(user_id, min(s.idle_seconds, s.absolute_seconds),
                                   s.absolute_seconds, client=web.client)
    web.cookies.append((SESSION_COOKIE, token, {}))
    return web.redirect(next_url)


@page("/logout", methods=("POST",))
def logout(web):
    web.users.end_session(web.token)
    web.dep.signin.record(web.actor.user_id, web.client, "logout")
    web.cookies.append((SESSION_COOKIE, "", {"expires": 0}))
    return web.redirect("/login", "您已退出登录")


@page("/account", methods=("GET", "POST"))
def account(web):
    errors = {}
    if web.request.method == "POST":
        if not web.users.check_password(web.actor.user_id, web.request.form.get("old_password", "")):
            errors["old_password"] = "原密码不正确"
        elif web.request.form.get("new_password") != web.request.form.get("new_password2"):
            errors["new_password2"] = "两次输入的新密码不一致"
        else:
            try:
                web.users.set_password(web.actor.user_id, web.request.form.get("new_password", ""))
                return web.redirect("/account", "密码已修改")
            except BadInput as exc:
                errors = describe(exc)
    return web.render("account.html", status=400 if errors else 200, errors=errors)


# -- units: pickers read the tree once -----------------------------------------------------------
def roots(web) -> list[dict]:
    return web.query("units", "root_units")["units"]


def tree(web, include_inactive: bool = False) -> list[dict]:
    """Every unit the user sees, in tree order (path), with its depth below the top."""
    out = []
    for root in roots(web):
        cursor = None
        while True:  # the service answers a page at a time
            params = {"unit_id": root["unit_id"], "include_inactive": include_inactive,
                      "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            answer = web.query("units", "list_units", params)
            out += answer["units"]
            cursor = answer.get("next")
            if not cursor:
                break
    if out:
        top = min(u["depth"] for u in out)
        for u in out:
            u["indent"] = u["depth"] - top
    return out


def _nested(units: list[dict]) -> list[dict]:
    by_id = {u["unit_id"]: dict(u, children=[]) for u in units}
    top = []
    for u in by_id.values():
        parent = by_id.get(u.get("parent_id"))
        (parent["children"] if parent else top).append(u)
    return top


# -- 工作台 -------------------------------------------------------------------------------------
@page("/")
def home(web):
    """工作台: counts by colour over every open rectification (counted by supervision's
    database, however many), the most urgent ones, the units with the most overdue, and
    the year's 责任书 still unsigned (how many, and the first few)."""
    today = _today(web)
    period = str(today.year)
    totals = {"red": 0, "yellow": 0, "green": 0}
    todos, per_unit, letters_unsigned, units_with_open = [], [], 0, 0
    # the header's user record is a read of the node's database: made in a greenthread of
    # its own while the services answer, not after them (Web.user keeps it for the template)
    user = eventlet.spawn(lambda: web.user)
    tops = roots(web)  # asked once: every query below is sent before any answer is read
    asked = [(web.query_async("supervision", "rectification_overview", {
                  "unit_id": root["unit_id"], "soon_days": web.settings.due_soon_days,
                  "limit": HOME_ITEMS, "units_limit": HOME_UNITS}),
              web.query_async("units", "letter_coverage", {
                  "unit_id": root["unit_id"], "period": period, "limit": HOME_LETTERS}),
              # 跟踪问效: open tasks, soonest deadline (so the overdue) first, in the same colours
              web.query_async("supervision", "list_tasks", {
                  "unit_id": root["unit_id"], "status": "open",
                  "soon_days": web.settings.due_soon_days, "limit": HOME_ITEMS}))
             for root in tops]  # all sent at once, then read
    # the other services' to-dos: education's inbox (notices, talks, young cadres, 月月行 ...),
    # controls past their review date and overdue screenings - each read if the role may
    inbox = web.query_async("education", "my_inbox", {"limit": HOME_ITEMS})
    risk = [(web.query_async("supervision", "control_reviews_due", {
                 "unit_id": root["unit_id"], "limit": HOME_ITEMS}),
             web.query_async("supervision", "screening_status", {
                 "unit_id": root["unit_id"], "overdue_only": True, "limit": HOME_ITEMS}))
            for root in tops]
    for overview_reply, coverage_reply, tasks_reply in asked:
        overview = overview_reply.result()
        for colour in totals:
            totals[colour] += overview["totals"][colour]
        units_with_open += overview["units_with_open"]
        per_unit += overview["per_unit"]
        for item in overview["urgent"]:
            todos.append({"kind": "整改", "title": item.get("description", ""),
                          "unit": item.get("unit_name", ""), "due": item.get("deadline"),
                          "colour": item["colour"], "href": "/rectifications/%s" % item["rect_id"]})
        cov = coverage_reply.result()
        letters_unsigned += cov["total"] - cov["signed"]
        for u in cov["unsigned"]:
            todos.append({"kind": "责任书", "title": "%s年度责任书未签订" % period, "unit": u["name"],
                          "due": None, "colour": "yellow", "href": "/letters?period=%s" % period})
        for item in tasks_reply.result()["items"]:
            todos.append({"kind": "任务", "title": item["title"], "unit": item.get("unit_name", ""),
                          "due": item["deadline"], "colour": item["colour"],
                          "href": "/tasks/%s" % item["task_id"]})
    todos += _other_todos(web, inbox, risk, today)
    order = {"red": 0, "yellow": 1, "green": 2}
    todos.sort(key=lambda t: (order[t["colour"]], t["due"] or "9999"))
    per_unit.sort(key=lambda u: (-u["red"], -u["yellow"], u["name"]))
    user.wait()  # read (or its error raised) before the template asks for it
    return web.render("home.html", todos=todos, totals=totals, per_unit=per_unit[:HOME_UNITS],
                      units_with_open=units_with_open, letters_unsigned=letters_unsigned,
                      period=period, today=today)


HOME_ITEMS, HOME_UNITS, HOME_LETTERS = 20, 20, 10  # what the home page lists (all are counted)

# where each inbox kind is dealt with, and the kinds that are overdue by what they are
INBOX_PAGES = {"notice": "/notices", "case_bulletin": "/case-bulletins", "talk_due": "/talks",
               "talk_overdue": "/talks", "talk_escalated": "/talks",
               "young_cadre_overdue": "/talks", "publicity": "/publicity",
               "warning_education_missed": "/warning-education"}
OVERDUE_KINDS = {"talk_overdue", "talk_escalated", "young_cadre_overdue",
                 "warning_education_missed"}


def _colour(due: str | None, today: date, soon_days: int) -> str:
    if due and due < today.isoformat():
        return "red"
    if due and due <= (today + timedelta(days=soon_days)).isoformat():
        return "yellow"
    return "green"


def _answer(reply):
    """A reply's answer, or None where the role may not ask it or the service is absent."""
    try:
        return reply.result()
    except (QinglianError, UnknownService):
        return None


def _other_todos(web, inbox_reply, risk_replies, today: date) -> list[dict]:
    """Education's inbox items, controls past review and overdue screenings as 工作台 rows.
    A query the user's role may not make is left out (the services stay the authority)."""
    todos = []
    inbox = _answer(inbox_reply)
    items = inbox["items"] if inbox else []
    asked = {u: web.query_async("units", "get_unit", {"unit_id": u})
             for u in sorted({i["unit_id"] for i in items})}
    names = {}
    for unit_id, reply in asked.items():
        unit = _answer(reply)
        names[unit_id] = unit["name"] if unit else ""  # never the id: names only
    for item in items:
        kind = item["kind"]
        colour = "red" if kind in OVERDUE_KINDS else _colour(
            item.get("due_on"), today, web.settings.due_soon_days)
        title = item["title"] if kind != "young_cadre_overdue" else "年轻干部定期教育已逾期"
        todos.append({"kind": labels.label("education.INBOX_KINDS", kind), "title": title,
                      "unit": names[item["unit_id"]], "due": item.get("due_on"),
                      "colour": colour, "href": INBOX_PAGES.get(kind, "/")})
    for controls_reply, screenings_reply in risk_replies:
        for item in (_answer(controls_reply) or {"items": []})["items"]:
            todos.append({"kind": "防控措施待复核", "title": "%s：%s" % (
                item.get("risk_point") or "", item.get("measure") or ""),
                "unit": item.get("unit_name", ""), "due": item.get("review_date"),
                "colour": "red", "href": "/risk?unit_id=%s" % item["unit_id"]})
        for item in (_answer(screenings_reply) or {"items": []})["items"]:  # overdue only
            todos.append({"kind": "廉政风险排查逾期", "title": "廉政风险点排查未按期开展",
                          "unit": item.get("unit_name", ""), "due": item.get("due_on"),
                          "colour": "red", "href": "/risk?unit_id=%s" % item["unit_id"]})
    return todos


# -- 单位与责任 ------------------------------------------------------------------------------------
@page("/units")
def units_page(web):
    units = tree(web, include_inactive=web.arg("inactive") == "1")
    return web.render("units.html", nested=_nested(units), units=units, errors={})


@page("/units/new", methods=("GET", "POST"), roles=WRITERS)
def unit_new(web):
    units = tree(web)
    errors = {}
    if web.request.method == "POST":
        data = {"name": web.form("name"), "kind": web.form("kind"), "level": web.form("level"),
                "parent_id": web.form("parent_id") or None}
        result, errors = web.attempt("units", "register_unit", data)
        if not errors:
            return web.redirect("/units/%s" % result["unit_id"], "已登记单位：%s" % data["name"])
    return web.render("unit_new.html", status=400 if errors else 200, units=units,
                      errors=errors or {}, values=web.request.form)


def _unit(web, unit_id: str) -> dict:
    return web.query("units", "get_unit", {"unit_id": unit_id})


@page("/units/<unit_id>")
def unit_detail(web, unit_id):
    unit = _unit(web, unit_id)
    people = web.query("units", "list_people", {"unit_id": unit_id})["people"]
    documents = web.query("units", "list_documents", {"unit_id": unit_id})["documents"]
    return web.render("unit_detail.html", unit=unit, people=people, documents=documents,
                      units=tree(web), errors={})


def _unit_action(web, unit_id, command, data, done):
    result, errors = web.attempt("units", command, dict(data, unit_id=unit_id))
    if errors:
        unit = _unit(web, unit_id)
        return web.render("unit_detail.html", status=400, unit=unit, units=tree(web),
                          people=web.query("units", "list_people", {"unit_id": unit_id})["people"],
                          documents=web.query("units", "list_documents",
                                              {"unit_id": unit_id})["documents"],
                          errors=errors)
    return web.redirect("/units/%s" % unit_id, done)


@page("/units/<unit_id>/rename", methods=("POST",), roles=WRITERS)
def unit_rename(web, unit_id):
    return _unit_action(web, unit_id, "rename_unit", {"name": web.form("name")}, "已改名")


@page("/units/<unit_id>/move", methods=("POST",), roles=WRITERS)
def unit_move(web, unit_id):
    return _unit_action(web, unit_id, "move_unit", {"parent_id": web.form("parent_id")},
                        "已调整上级单位")


@page("/units/<unit_id>/deactivate", methods=("POST",), roles=NODE_ADMIN)
def unit_deactivate(web, unit_id):
    return _unit_action(web, unit_id, "deactivate_unit", {"reason": web.form("reason")},
                        "已撤销该单位")


@page("/units/<unit_id>/people", methods=("POST",), roles=WRITERS)
def person_new(web, unit_id):
    return _unit_action(web, unit_id, "register_person",
                        {"name": web.form("name"), "post": web.form("post"),
                         "young_cadre": web.form("young_cadre") == "1"}, "已登记人员")


@page("/people/<person_id>/roles", methods=("POST",), roles=WRITERS)
def person_role(web, person_id):
    person = web.query("units", "get_person", {"person_id": person_id})
    result, errors = web.attempt("units", "assign_role", {
        "person_id": person_id, "role": web.form("role"), "part_time": web.form("part_time") == "1"})
    return web.redirect("/units/%s" % person["unit_id"],
                        "已设置职务" if not errors else "未能设置职务：%s" % "；".join(errors.values()))


@page("/people/options")
def people_options(web):
    """htmx: the people of the chosen unit, by name (nobody types an id)."""
    unit_id = web.arg("unit_id")
    people = web.query("units", "list_people", {"unit_id": unit_id})["people"] if unit_id else []
    return web.render("people_options.html", people=people)


# -- 责任书 ----------------------------------------------------------------------------------
@page("/letters", methods=("GET", "POST"))
def letters(web):
    period = web.arg("period") or web.form("period") or str(_today(web).year)
    units = tree(web)
    errors = {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        action = web.form("action")
        if action == "issue":
            data = {"period": period, "issuer_unit_id": web.form("issuer_unit_id"),
                    "target_unit_id": web.form("target_unit_id"),
                    "signatory_role": web.form("signatory_role"), "content": web.form("content")}
            _r, errors = web.attempt("units", "issue_letter", data)
            done = "已下达责任书"
        elif action == "sign":
            data = {"period": period, "target_unit_id": web.form("target_unit_id"),
                    "signed_on": _today(web).isoformat(), "signatory_role": web.form("signatory_role")}
            _r, errors = web.attempt("units", "sign_letter", data)
            done = "已签订责任书"
        else:
            data = {"period": period, "target_unit_id": web.form("target_unit_id"),
                    "reason": web.form("reason")}
            _r, errors = web.attempt("units", "revoke_letter", data)
            done = "已撤回责任书"
        if not errors:
            return web.redirect("/letters?period=%s" % period, done)
    coverage = [web.query("units", "letter_coverage", {"unit_id": r["unit_id"], "period": period})
                | {"root_name": r["name"]} for r in roots(web)] if not errors or units else []
    return web.render("letters.html", status=400 if errors else 200, period=period, units=units,
                      coverage=coverage, errors=errors)


def raise_forbidden():
    from shared.errors import Forbidden
    raise Forbidden("您的角色只能查看，不能修改")


# -- 微权力清单 ----------------------------------------------------------------------------------
@page("/micro-power")
def micro_power(web):
    unit_id = web.arg("unit_id")
    units = tree(web)
    published = None
    if unit_id:
        published = web.query("units", "published_micro_power", {"unit_id": unit_id}, public=True)
    return web.render("micro_power.html", units=units, unit_id=unit_id, published=published)


def _content(web) -> dict:
    steps = []
    names = web.request.form.getlist("step_name")
    posts = web.request.form.getlist("step_post")
    limits = web.request.form.getlist("step_limit")
    for name, post, limit in zip(names, posts, limits):
        if name.strip() or post.strip():
            steps.append({"name": name.strip(), "responsible_post": post.strip(),
                          "time_limit": limit.strip() or None})
    duties = [line.strip() for line in web.form("duties").splitlines() if line.strip()]
    return {"duties": duties, "power_boundary": web.form("power_boundary"), "steps": steps,
            "accountability": web.form("accountability") or None}


@page("/micro-power/edit", methods=("GET", "POST"), roles=WRITERS)
def micro_power_edit(web):
    unit_id, post = web.arg("unit_id") or web.form("unit_id"), web.arg("post") or web.form("post")
    existing, errors = None, {}
    if unit_id and post:
        try:
            existing = web.query("units", "get_micro_power", {"unit_id": unit_id, "post": post})
        except NotFound:
            existing = None
    if web.request.method == "POST":
        data = {"unit_id": unit_id, "post": post, "content": _content(web)}
        command = "edit_micro_power" if existing else "draft_micro_power"
        _r, errors = web.attempt("units", command, data)
        if not errors and web.form("publish") == "1":
            _r, errors = web.attempt("units", "publish_micro_power", {
                "unit_id": unit_id, "post": post, "published_on": _today(web).isoformat()})
        if not errors:
            return web.redirect("/micro-power?unit_id=%s" % unit_id,
                                "已发布" if web.form("publish") == "1" else "草稿已保存")
    draft = existing["draft"] if existing else None
    return web.render("micro_power_edit.html", status=400 if errors else 200, units=tree(web),
                      unit_id=unit_id, post=post, draft=draft, errors=errors)


@page("/public/units/<unit_id>/micro-power", public=True, csrf="none")
def public_micro_power(web, unit_id):
    published = web.query("units", "published_micro_power", {"unit_id": unit_id}, public=True)
    return web.render("public_micro_power.html", published=published,
                      qr_url="/public/units/%s/micro-power/qr.svg" % unit_id)


def public_address(web, unit_id: str) -> str:
    base = web.settings.public_url or web.request.host_url.rstrip("/")
    return "%s/public/units/%s/micro-power" % (base, unit_id)


@page("/public/units/<unit_id>/micro-power/qr.svg", public=True, csrf="none")
def public_micro_power_qr(web, unit_id):
    import segno
    web.query("units", "published_micro_power", {"unit_id": unit_id}, public=True)  # 404 if none
    out = io.BytesIO()
    segno.make(public_address(web, unit_id), error="m").save(out, kind="svg", scale=6, border=2)
    return Response(out.getvalue(), mimetype="image/svg+xml")


# -- 整改 ---------------------------------------------------------------------------------------
STATUSES = RECTIFICATION_STATUSES  # the board's columns, in the domain's order


BOARD_PAGE = 50  # items per column and page; every column's count is the database's


@page("/rectifications")
def rectifications(web):
    """整改看板: per status its count and one page, earliest deadline first (closed ones
    latest verified first); 更多 pages one column."""
    status = web.arg("status")
    status = status if status in STATUSES else None
    try:
        offset = max(0, int(web.arg("offset") or 0)) if status else 0
    except ValueError:
        offset = 0
    columns = {s: {"total": 0, "red": 0, "yellow": 0, "green": 0, "items": [],
                   "next_offset": None, "offset": offset} for s in STATUSES}
    asked = [web.query_async("supervision", "rectification_board", {
        "unit_id": root["unit_id"], "soon_days": web.settings.due_soon_days,
        "status": status, "limit": BOARD_PAGE, "offset": offset}) for root in roots(web)]
    for reply in asked:
        board = reply.result()
        for s, col in board["columns"].items():
            mine = columns[s]
            for k in ("total", "red", "yellow", "green"):
                mine[k] += col[k]
            mine["items"] += col["items"]
            if col["next_offset"] is not None:
                mine["next_offset"] = col["next_offset"]
    shown = [status] if status else list(STATUSES)
    return web.render("rectifications.html", columns=columns, statuses=shown, paged=status,
                      page_size=BOARD_PAGE)


RECT_ACTIONS = {  # form action -> (command, the fields it takes, what the person is told)
    "verify": ("verify_rectification", ("note",), "已验收销号"),
    "reject": ("reject_rectification", ("reason",), "已退回重新整改"),
    "extend": ("extend_deadline", ("deadline", "reason"), "已延长整改期限"),
    "reopen": ("reopen_rectification", ("reason", "deadline"), "已重新打开"),
}


@page("/rectifications/<rect_id>", methods=("GET", "POST"))
def rectification(web, rect_id):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        action = RECT_ACTIONS.get(web.form("action"))
        if action is None:
            raise NotFound("没有这种操作")
        command, fields, done = action
        data = dict({f: web.form(f) for f in fields}, rect_id=rect_id)
        _r, errors = web.attempt("supervision", command, data)
        if not errors:
            return web.redirect("/rectifications/%s" % rect_id, done)
    rect = web.query("supervision", "get_rectification", {"rect_id": rect_id})
    return web.render("rectification.html", status=400 if errors else 200, rect=rect,
                      errors=errors, inspector=web.can(*INSPECTORS))


# -- 用户与登录 (node-admins) --------------------------------------------------------------------
@page("/admin/users", methods=("GET", "POST"), roles=NODE_ADMIN)
def admin_users(web):
    errors = {}
    if web.request.method == "POST":
        user_id, action = web.form("user_id"), web.form("action")
        try:
            if web.users.get(user_id) is None:
                raise NotFound("没有这个用户")
            if action == "reset":
                web.users.set_password(user_id, web.request.form.get("password", ""))
                done = "已重置密码"
            elif action == "disable":
                if user_id == web.actor.user_id:
                    raise BadInput("不能停用自己的账号")
                web.users.set_disabled(user_id, True)
                done = "已停用用户"
            elif action == "enable":
                web.users.set_disabled(user_id, False)
                done = "已启用用户"
            elif action == "revoke":
                web.users.revoke_tokens(user_id, web.form("token_id") or None)
                done = "已撤销令牌"
            else:
                raise BadInput("未知操作")
            return web.redirect("/admin/users", done)
        except QinglianError as exc:
            errors = describe(exc)
    people = web.users.list_users()
    for u in people:
        u["tokens"] = web.users.list_tokens(u["user_id"])
        u["roles_list"] = u["roles"].split(",")
    return web.render("admin_users.html", status=400 if errors else 200, people=people,
                      records=web.dep.signin.recent(100), outcomes=OUTCOMES, errors=errors)



# -- 廉政风险 -------------------------------------------------------------------------------------
@page("/risk")
def risk(web):
    points = []
    for root in roots(web):
        points += web.query("supervision", "list_risk_points", {
            "unit_id": root["unit_id"], "include_subtree": True, "limit": 500})["items"]
    cells = {}
    for p in points:
        if p.get("likelihood") and p.get("impact"):
            key = (p["likelihood"], p["impact"])
            cells[key] = cells.get(key, 0) + 1
    # every cell coloured by likelihood × impact; its label: how many points sit there
    heat = [[i - 1, l - 1, l * i, cells.get((l, i), 0)] for l in range(1, 6) for i in range(1, 6)]
    return web.render("risk.html", points=points, heat=heat)


# -- 政治生态研判 -----------------------------------------------------------------------------------
def _as_of(web) -> str | None:
    """The picker's 年-月-日 [时:分:秒] in the users' zone, as the services' ISO form."""
    value = web.arg("as_of")
    if not value:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value).isoformat()
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadInput("截至日期的格式应为 年-月-日 时:分:秒") from None
    return moment.replace(tzinfo=ZoneInfo(web.settings.timezone)).isoformat()


@page("/ecology")
def ecology(web):
    rounds = web.query("supervision", "list_rounds")["rounds"]
    round_id = web.arg("round_id") or (rounds[0]["round_id"] if rounds else "")
    ranking, as_of, errors, key_posts = None, None, {}, None
    try:
        as_of = _as_of(web)
    except BadInput as exc:
        errors = {"_": exc.message}
    if round_id:
        params = {"round_id": round_id}
        if as_of:
            params["as_of"] = as_of
        try:
            ranking = web.query("supervision", "round_ranking", params)
            if not as_of:  # 重点岗位 / 一把手 supervision: the live report's figures only
                key_posts = web.query("supervision", "assessment_report",
                                      {"round_id": round_id}).get("key_posts")
        except BadInput as exc:
            errors = describe(exc)
    return web.render("ecology.html", status=400 if errors else 200, rounds=rounds,
                      round_id=round_id, ranking=ranking, as_of=as_of or "", key_posts=key_posts,
                      as_of_input=web.arg("as_of") if as_of else "", errors=errors,
                      units=tree(web))


def _exported_at(web):
    return datetime.now(ZoneInfo(web.settings.timezone))


@page("/ecology/<round_id>/ranking.xlsx")
def ecology_ranking_xlsx(web, round_id):
    from services.supervision.exports import assessment_report
    from shared.exports import download
    data = web.query("supervision", "assessment_report", {"round_id": round_id})
    report, stem = assessment_report(data, web.dep.node_id, _exported_at(web))
    return download(report, "xlsx", stem)


LISTS = {"problems": "问题清单", "responsibilities": "责任清单", "rectifications": "整改清单"}


@page("/ecology/lists.xlsx")
def ecology_lists_xlsx(web):
    from services.supervision.exports import unit_lists_report
    from shared.exports import download
    which = web.arg("list")
    if which not in LISTS:
        raise NotFound("没有这种清单")
    params = {"unit_id": web.arg("unit_id"), "include_subtree": True}
    data = web.query("supervision", "unit_lists", params)
    report, stem = unit_lists_report(data, [which], web.dep.node_id, _exported_at(web))
    return download(report, "xlsx", stem)


# -- 检查督导 -------------------------------------------------------------------------------------
@page("/inspections", methods=("GET", "POST"))
def inspections(web):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        result, errors = web.attempt("supervision", "plan_inspection", {
            "unit_id": web.form("unit_id"), "title": web.form("title"),
            "planned_on": web.form("planned_on")})
        if not errors:
            return web.redirect("/inspections/%s" % result["inspection_id"], "已计划检查")
    items = []
    for root in roots(web):
        items += web.query("supervision", "list_inspections", {
            "unit_id": root["unit_id"], "include_subtree": True, "limit": 200})["items"]
    return web.render("inspections.html", status=400 if errors else 200, items=items,
                      units=tree(web), errors=errors, inspector=web.can(*INSPECTORS),
                      today=_today(web).isoformat())


@page("/inspections/<inspection_id>", methods=("GET", "POST"))
def inspection(web, inspection_id):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        action = web.form("action")
        insp = web.query("supervision", "get_inspection", {"inspection_id": inspection_id})
        if action == "score":
            scores = []
            for c in insp["criteria"]:
                if web.form("score_%s" % c["code"]):
                    entry = {"criterion": c["code"], "score": web.form("score_%s" % c["code"])}
                    if web.form("note_%s" % c["code"]):
                        entry["note"] = web.form("note_%s" % c["code"])
                    scores.append(entry)
            _r, errors = web.attempt("supervision", "score_inspection",
                                     {"inspection_id": inspection_id, "scores": scores})
            if errors and "note" in errors:  # the service: a deduction needs a note
                errors["note"] = "扣分须写明扣分说明"
            done = "已记录评分"
        elif action == "finding":
            _r, errors = web.attempt("supervision", "record_finding", {
                "unit_id": insp["unit_id"], "source": "inspection", "inspection_id": inspection_id,
                "description": web.form("description"), "severity": web.form("severity"),
                "deadline": web.form("deadline"), "requirement": web.form("requirement"),
                "responsible_role": web.form("responsible_role")})
            done = "已记录问题，并转为整改事项"
        elif action == "feedback":
            now = datetime.now(ZoneInfo(web.settings.timezone)).isoformat()
            _r, errors = web.attempt("supervision", "give_feedback", {
                "inspection_id": inspection_id, "summary": web.form("summary"), "told_at": now,
                "told": [{"role": web.form("told_role"), "name": web.form("told_name")}]})
            done = "已记录现场反馈"
        elif action == "complete":
            _r, errors = web.attempt("supervision", "complete_inspection",
                                     {"inspection_id": inspection_id})
            done = "检查已完成"
        else:
            raise NotFound("没有这种操作")
        if not errors:
            return web.redirect("/inspections/%s" % inspection_id, done)
    insp = web.query("supervision", "get_inspection", {"inspection_id": inspection_id})
    scores = {s["criterion"]: s for s in insp["scores"]}
    # who is told on site is picked by name from the unit's people (or typed when not listed)
    people = (web.query("units", "list_people", {"unit_id": insp["unit_id"]})["people"]
              if web.can(*INSPECTORS) and insp["status"] == "planned" else [])
    return web.render("inspection.html", status=400 if errors else 200, insp=insp, scores=scores,
                      errors=errors, inspector=web.can(*INSPECTORS), today=_today(web).isoformat(),
                      people=people)


from services.console import education_pages  # noqa: E402,F401 - registers the education pages
from services.console import evidence_pages  # noqa: E402,F401 - registers the evidence pages
from services.console import discipline_pages  # noqa: E402,F401 - registers the 四种形态 page
from services.console import outreach_pages  # noqa: E402,F401 - 宣传周更新, 廉洁通知, 廉政谈话, 精准推送
from services.console import status_pages  # noqa: E402,F401 - registers the 节点状态 page
from services.console import exchange_pages  # noqa: E402,F401 - registers the 五联五互 pages
from services.console import lists_pages  # noqa: E402,F401 - registers the 单位与责任 list and people pages
from services.console import ecology_pages  # noqa: E402,F401 - registers the 政治生态研判 editor pages
from services.console import inspection_pages  # noqa: E402,F401 - registers batch planning and the checklist pages
from services.console import tasks_pages  # noqa: E402,F401 - 任务跟踪 (跟踪问效) and 推进会
from services.console import city_pages  # noqa: E402,F401 - registers the city's 上下互比 page
from services.console import campaigns_pages  # noqa: E402,F401 - 专项整治 (四风)
from services.console import practice_pages  # noqa: E402,F401 - 献一策, 廉政承诺, 典型案例通报
from services.console import keyposts_pages  # noqa: E402,F401 - 重点岗位与一把手监督
from services.console import roster_pages  # noqa: E402,F401 - 纪检委员 roster (选优配强)
from services.console import exemplary_pages  # noqa: E402,F401 - 模范科室评选
from services.console import city_oversight_pages  # noqa: E402,F401 - 督办 (city and districts)
from services.console import relief_pages  # noqa: E402,F401 - 基层减负
