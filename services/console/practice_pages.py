"""清廉机关实践 in the console (the education service's): 我为清廉机关建设献一策,
集中廉政承诺 and 典型案例通报.

* 献一策 (/suggestions): the year's suggestions of the user's units with their handling
  (待受理 / 已受理 / 办理中 / 已答复) and adoption, counted per unit (采纳率); a writer records
  a member's suggestion (unit, then the member picked by name); a suggestion's page
  (/suggestions/<id>) takes its 受理, 办理 notes and 答复 with whether it was adopted.
* 集中廉政承诺 (/pledges): per unit and year, its party secretaries and 纪检委员 and who has
  pledged (覆盖率), units with nobody to pledge; the pledges with their witnesses; a writer
  records a pledge (the person picked by name among the unit's secretaries and 纪检委员, the
  text, the enterprise and resident representatives who witnessed it).
* 典型案例通报 (/case-bulletins): the typical cases circulated to the user's units, with how
  many have studied each and how many are past the deadline; writers and inspectors
  circulate one (a case on offer picked by title, or typed) to a unit's subtree. A bulletin's
  page (/case-bulletins/<id>) lists who has studied it and who has not (逾期未学 in red); a
  unit-admin records their unit's study (date, headcount, 举一反三).
* 群众监督: a unit's public 微权力清单 page links to /public/units/<id>/report, where anyone
  (no sign-in) files a complaint or report - no personal data required, CSRF-safe with a
  double-submit token like the sign-in form, limited per client address - relayed to
  supervision by the console's own viewer user; inspectors handle the queue (/public-reports):
  转为问题 (a finding with source 群众监督 and its rectification) or 不予受理.

The services decide; a page only hides the buttons the user's role may not use.
"""
from __future__ import annotations

from urllib.parse import urlencode

from services.console.pages import _today, raise_forbidden, roots, tree
from shared import config
from services.console.web import WRITERS, describe, page
from services.units.domain import PLEDGE_ROLES
from shared.errors import BadInput, NotFound


def _year(web) -> int:
    value = web.arg("year") or web.form("year")
    return int(value) if value.isdigit() and 2000 <= int(value) <= 2100 else _today(web).year


def _names(web, unit_ids) -> dict[str, str]:
    """person_id -> name for the people of these units (the console shows names, never ids)."""
    names = {}
    for unit_id in sorted(set(unit_ids)):
        for p in web.query("units", "list_people", {"unit_id": unit_id})["people"]:
            names[p["person_id"]] = p["name"]
    return names


# -- 我为清廉机关建设献一策 -------------------------------------------------------------------------
@page("/suggestions", methods=("GET", "POST"))
def suggestions(web):
    year = _year(web)
    units = tree(web)
    errors, values = {}, {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        values = web.request.form
        data = {"unit_id": web.form("unit_id"), "proposer_id": web.form("proposer_id"),
                "title": web.form("title"), "content": web.form("content")}
        result, errors = web.attempt("education", "submit_suggestion", data)
        if not errors:
            return web.redirect("/suggestions/%s" % result["suggestion_id"],
                                "已登记建议：%s" % data["title"])
    status = web.arg("status") or None
    items, summaries = [], []
    for root in roots(web):
        params = {"unit_id": root["unit_id"], "year": year}
        if status:
            params["status"] = status
        items += web.query("education", "list_suggestions", params)["suggestions"]
        summaries.append(web.query("education", "suggestion_summary",
                                   {"unit_id": root["unit_id"], "year": year}) | {"root_name": root["name"]})
    names = _names(web, (i["unit_id"] for i in items))
    chosen_unit = values.get("unit_id") if values else None
    people = (web.query("units", "list_people", {"unit_id": chosen_unit})["people"]
              if chosen_unit else [])
    return web.render("practices_suggestions.html", status=400 if errors else 200, year=year,
                      items=items, summaries=summaries, names=names, units=units, errors=errors or {},
                      values=values, people=people, chosen_status=status or "")


SUGGESTION_ACTIONS = {  # form action -> (command, its fields, what the person is told)
    "accept": ("accept_suggestion", ("handler",), "已受理"),
    "progress": ("progress_suggestion", ("note",), "已记录办理情况"),
    "answer": ("answer_suggestion", ("reply", "outcome"), "已答复"),
}


@page("/suggestions/<suggestion_id>", methods=("GET", "POST"))
def suggestion_detail(web, suggestion_id):
    errors = {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        action = SUGGESTION_ACTIONS.get(web.form("action"))
        if action is None:
            raise NotFound("没有这种操作")
        command, fields, done = action
        data = {"suggestion_id": suggestion_id, **{f: web.form(f) for f in fields}}
        _r, errors = web.attempt("education", command, data)
        if not errors:
            return web.redirect("/suggestions/%s" % suggestion_id, done)
    sg = web.query("education", "get_suggestion", {"suggestion_id": suggestion_id})
    proposer = _names(web, [sg["unit_id"]]).get(sg["proposer_id"], "（已调离的人员）")
    return web.render("practices_suggestion.html", status=400 if errors else 200, sg=sg,
                      proposer=proposer, errors=errors or {},
                      back="/suggestions?" + urlencode({"year": sg["year"]}))


# -- 集中廉政承诺 ---------------------------------------------------------------------------------
WITNESS_ROWS = 4  # witness rows the form offers


@page("/pledges", methods=("GET", "POST"))
def pledges(web):
    year = _year(web)
    errors, values = {}, {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        values = web.request.form
        person_id, _sep, role = web.form("signer").partition("|")
        witnesses = [{"kind": k, "name": n.strip(), "organisation": o.strip() or None}
                     for k, n, o in zip(web.request.form.getlist("w_kind"), web.request.form.getlist("w_name"),
                                        web.request.form.getlist("w_org")) if n.strip()]
        data = {"person_id": person_id, "role": role, "pledged_on": web.form("pledged_on"),
                "text": web.form("text"), "occasion": web.form("occasion"), "witnesses": witnesses}
        if not person_id:
            errors = {"person_id": "请选择承诺人"}
        else:
            result, errors = web.attempt("units", "record_pledge", data)
        if not errors:
            return web.redirect("/pledges?" + urlencode({"year": result["year"]}),
                                "已登记廉政承诺（%d 年度）" % result["year"])
    coverage = [web.query("units", "pledge_coverage", {"unit_id": r["unit_id"], "year": year})
                | {"root_name": r["name"]} for r in roots(web)]
    listed = []
    for r in roots(web):
        listed += web.query("units", "list_pledges", {"unit_id": r["unit_id"], "year": year})["pledges"]
    chosen_unit = values.get("unit_id") if values else None
    return web.render("practices_pledges.html", status=400 if errors else 200, year=year,
                      coverage=coverage, pledges=listed, units=tree(web), errors=errors or {},
                      values=values, signers=_signers(web, chosen_unit) if chosen_unit else [],
                      rows=WITNESS_ROWS, today=_today(web).isoformat())


def _signers(web, unit_id) -> list[dict]:
    """The unit's party secretaries and 纪检委员: the people who pledge (picked by name)."""
    out = []
    for p in web.query("units", "list_people", {"unit_id": unit_id})["people"]:
        for role in PLEDGE_ROLES:
            if role in (p.get("roles") or ()):
                out.append({"value": "%s|%s" % (p["person_id"], role), "name": p["name"], "role": role})
    return out


@page("/pledges/signers")
def pledge_signers(web):
    """htmx: the chosen unit's party secretaries and 纪检委员, by name."""
    unit_id = web.arg("unit_id")
    return web.render("practices_pledge_signers.html", signers=_signers(web, unit_id) if unit_id else [])


@page("/pledges/<int:year>/<person_id>")
def pledge_detail(web, year, person_id):
    p = web.query("units", "get_pledge", {"pledge_id": "%d/%s" % (year, person_id)})
    return web.render("practices_pledge.html", p=p)


# -- 典型案例通报 ---------------------------------------------------------------------------------
BULLETIN_ISSUERS = WRITERS + ("inspector",)


@page("/case-bulletins", methods=("GET", "POST"))
def case_bulletins(web):
    errors, values = {}, {}
    if web.request.method == "POST":
        if not web.can(*BULLETIN_ISSUERS):
            raise_forbidden()
        values = web.request.form
        data = {k: web.form(k) for k in ("issuer_unit_id", "scope_unit_id", "case_ref", "title",
                                         "summary", "requirements", "due_on")}
        result, errors = web.attempt("education", "issue_case_bulletin", data)
        if not errors:
            return web.redirect("/case-bulletins/%s" % result["bulletin_id"],
                                "已通报至 %d 个单位" % result["recipients"])
    listed = []
    for r in roots(web):
        for b in web.query("education", "list_case_bulletins", {"unit_id": r["unit_id"]})["bulletins"]:
            listed.append(b | {"root_id": r["unit_id"]})
    can_issue = web.can(*BULLETIN_ISSUERS)
    return web.render("practices_bulletins.html", status=400 if errors else 200, bulletins=listed,
                      errors=errors or {}, values=values, can_issue=can_issue,
                      units=tree(web) if can_issue else [],
                      cases=web.query("education", "bulletin_cases")["cases"] if can_issue else [],
                      node_names=config.node_names(web.dep.container.config),
                      today=_today(web).isoformat())


@page("/case-bulletins/<bulletin_id>", methods=("GET", "POST"))
def case_bulletin(web, bulletin_id):
    errors = {}
    if web.request.method == "POST":
        if not web.writer:
            raise_forbidden()
        data = {"bulletin_id": bulletin_id, "unit_id": web.form("unit_id"),
                "studied_on": web.form("studied_on"), "headcount": web.form("headcount"),
                "note": web.form("note")}
        _r, errors = web.attempt("education", "record_case_study", data)
        if not errors:
            return web.redirect("/case-bulletins/%s" % bulletin_id, "已登记学习情况")
    answers = [web.query("education", "case_bulletin_receipts",
                         {"bulletin_id": bulletin_id, "unit_id": r["unit_id"]}) for r in roots(web)]
    b = answers[0]["bulletin"] if answers else None
    if b is None:
        raise NotFound("没有这份通报")
    mine = {u["unit_id"] for u in tree(web)} if web.writer else set()
    return web.render("practices_bulletin.html", status=400 if errors else 200, b=b, answers=answers,
                      mine=mine, errors=errors or {}, today=_today(web).isoformat())


# -- 群众监督: the public page's complaint form, and the inspectors' queue ----------------------
INTAKE_USER = "public-intake"  # the console's own node user (a viewer) relaying the public's reports
_intake: dict = {}
_recent: dict[tuple, list[float]] = {}  # (node, client address) -> its accepted reports' times


def _intake_proof(web) -> dict:
    """The actor proof the console relays a public report with: a viewer of its own, created
    once (the public page has no session; the service still checks a token)."""
    token = _intake.get(id(web.users))
    if token is None:
        if web.users.get(INTAKE_USER) is None:
            web.users.add_user(INTAKE_USER, "群众监督（公开页面）", ["viewer"], None)
        token = _intake[id(web.users)] = web.users.issue_token(INTAKE_USER, label="public-page")
    return {"token": token}


def _over_limit(web, now: float) -> bool:
    """More than the allowed reports from this client address in the last hour."""
    key = (id(web.users), web.client)
    times = _recent[key] = [t for t in _recent.get(key, []) if now - t < 3600]
    return len(times) >= web.settings.public_reports_per_hour


@page("/public/units/<unit_id>/report", methods=("GET", "POST"), public=True, csrf="login")
def public_report(web, unit_id):
    """投诉举报 on a unit's published 微权力清单: no sign-in, no personal data required, a
    double-submit CSRF token (as the sign-in form), a limit per client address."""
    import time
    from services.console.web import LOGIN_COOKIE, new_csrf_cookie
    published = web.query("units", "published_micro_power", {"unit_id": unit_id}, public=True)
    nonce = web.request.cookies.get(LOGIN_COOKIE) or new_csrf_cookie()
    web.cookies.append((LOGIN_COOKIE, nonce, {"max_age": 3600}))
    errors, values, done, status = {}, {}, None, 200
    if web.request.method == "POST":
        values = web.request.form
        now = time.time()
        if _over_limit(web, now):
            errors, status = {"_": "提交过于频繁，请一小时后再试。"}, 429
        else:
            data = {"unit_id": unit_id, "kind": web.form("kind"), "content": web.form("content"),
                    "post": web.form("post"), "contact": web.form("contact")}
            data = {k: v for k, v in data.items() if v != ""}
            proxy = web.service.supervision
            try:
                done = proxy.execute(command="submit_public_report", data=data, actor=_intake_proof(web))
                _recent.setdefault((id(web.users), web.client), []).append(now)
            except BadInput as exc:
                errors, status = describe(exc), 400
    return web.render("practices_public_report.html", status=status, published=published, nonce=nonce,
                      errors=errors, values=values, done=done, unit_id=unit_id)


@page("/public-reports", methods=("GET", "POST"), roles=("node-admin", "inspector"))
def public_reports(web):
    errors, chosen = {}, None
    if web.request.method == "POST":
        chosen = web.form("report_id")
        if web.form("action") == "convert":
            data = {"report_id": chosen, "responsible_role": web.form("responsible_role"),
                    "deadline": web.form("deadline"), "severity": web.form("severity"),
                    "requirement": web.form("requirement")}
            result, errors = web.attempt("supervision", "convert_public_report", data)
            if not errors:
                return web.redirect("/rectifications/%s" % result["finding_id"], "已转为问题并限期整改")
        else:
            _r, errors = web.attempt("supervision", "dismiss_public_report",
                                     {"report_id": chosen, "reason": web.form("reason")})
            if not errors:
                return web.redirect("/public-reports", "已不予受理")
    status = web.arg("status") or "received"
    reports = []
    for r in roots(web):
        reports += web.query("supervision", "list_public_reports",
                             {"unit_id": r["unit_id"], "status": status})["reports"]
    return web.render("practices_public_reports.html", status=400 if errors else 200, reports=reports,
                      errors=errors or {}, chosen=chosen, chosen_status=status,
                      today=_today(web).isoformat())
