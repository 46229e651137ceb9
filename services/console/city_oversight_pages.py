"""督办 in the console (issue 9, the city's views; issue 10 item 5).

At the city: the rectifications the districts escalated to the city - what, which unit of
which district, how late (counted to today), the trail of the escalation ladder and of
what happened since - and, for the ones still open, a form to record that the city is
following it up (督办方式, what it asks, by when). At a district: the same cases of its
own, with the city's follow-ups as they arrived. Below, on every node, this node's own
escalation inbox: every rung of the ladder (责任单位, 单位负责人/纪检委员, 区直机关工委) as an
item for that rung's unit.

Everything is read from and written to the services (exchange ``oversight_cases``,
``follow_up_escalation``; supervision ``escalation_inbox``): the page keeps nothing. The
form is offered to writers (node-admin, unit-admin) on the city's node only; the service
refuses anything else.
"""
from __future__ import annotations

from services.console.exchange_pages import Nodes, attempt
from services.console.pages import tree
from services.console.web import page
from services.exchange.domain import ESCALATION_STATUSES, ESCALATION_TRAIL, FOLLOW_UP_ACTIONS
from services.supervision.settings import ESCALATION_LEVELS

WRITERS = ("node-admin", "unit-admin")


def _trail(entries: list[dict]) -> list[dict]:
    """The trail as a person reads it: 日期 + 经过 (+ 层级 / 新期限 / 逾期天数)."""
    out = []
    for t in entries:
        words = ESCALATION_TRAIL.label(t.get("what"))
        if t.get("level"):
            words += "：%s" % ESCALATION_LEVELS.label(t["level"])
        if t.get("what") in ("extended", "reopened") and t.get("deadline"):
            words += "，新期限 %s" % t["deadline"]
        if t.get("days_overdue"):
            words += "（逾期 %d 天）" % t["days_overdue"]
        out.append({"on": t.get("on"), "text": words})
    return out


@page("/oversight", methods=("GET", "POST"))
def oversight(web):
    nodes = Nodes(web)
    at_city = nodes.city is not None and nodes.me == nodes.city
    status = web.arg("status") or "open"
    if status not in ("open", "closed", "all"):
        status = "open"
    errors, form_case = {}, None
    if web.request.method == "POST":
        form_case = web.form("case_id")
        result, errors = attempt(web, "follow_up_escalation", {
            "case_id": form_case, "unit_id": web.form("unit_id"), "action": web.form("action"),
            "note": web.form("note"), "respond_by": web.form("respond_by")})
        if result is not None:
            return web.redirect("/oversight?status=%s" % status,
                                flash="已登记督办：该区将在本区节点上看到。")
    answer = web.query("exchange", "oversight_cases", {"status": status})
    cases = []
    for c in answer["items"]:
        cases.append(dict(c, origin_name=nodes.name(c["origin"]), trail_text=_trail(c["trail"]),
                          status_label=ESCALATION_STATUSES.label(c["status"])))
    inbox = web.query("supervision", "escalation_inbox", {})
    can_follow = at_city and web.can(*WRITERS)
    units = tree(web) if can_follow else []
    return web.render("oversight.html", status=400 if errors else 200, cases=cases, answer=answer, at_city=at_city,
                      can_follow=can_follow, units=units, scope=status, errors=errors or {},
                      form_case=form_case, form=web.request.form if errors else {},
                      actions=FOLLOW_UP_ACTIONS.options(), inbox=inbox,
                      levels=ESCALATION_LEVELS, city_name=nodes.name(nodes.city) if nodes.city else "市级")
