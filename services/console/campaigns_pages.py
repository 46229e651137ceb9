"""专项整治 / 专项治理 in the console (supervision's campaigns and their 四风 problems).

* 专项整治 (/campaigns): the campaigns that concern the user's units (scope, period, state,
  findings and how many are rectified); inspectors and node-admins launch one
  (/campaigns/new) over a unit picked by name, for a period, targeting 四风 categories -
  the new forms of 形式主义、官僚主义 among them.
* A campaign (/campaigns/<id>): its progress - totals, per 四风 category, per unit - and each
  finding in three colours; inspectors record a finding for it (it becomes a 限期整改 as
  every finding does), tag a finding already recorded in its scope and period, or close it
  with a summary.
"""
from __future__ import annotations

from services.console.pages import INSPECTORS, _today, raise_forbidden, roots, tree
from services.console.web import page
from shared.errors import NotFound


@page("/campaigns")
def campaigns(web):
    found = []
    for root in roots(web):
        found += web.query("supervision", "list_campaigns", {"unit_id": root["unit_id"]})["campaigns"]
    return web.render("campaigns_list.html", campaigns=found, inspector=web.can(*INSPECTORS))


@page("/campaigns/new", methods=("GET", "POST"), roles=INSPECTORS)
def campaign_new(web):
    errors, values = {}, {}
    if web.request.method == "POST":
        values = web.request.form
        data = {"title": web.form("title"), "kind": web.form("kind"),
                "scope_unit_id": web.form("scope_unit_id"), "starts_on": web.form("starts_on"),
                "ends_on": web.form("ends_on"), "categories": values.getlist("categories"),
                "description": web.form("description")}
        result, errors = web.attempt("supervision", "launch_campaign", data)
        if not errors:
            return web.redirect("/campaigns/%s" % result["campaign_id"],
                                "已部署专项：%s" % data["title"])
    return web.render("campaigns_new.html", status=400 if errors else 200, units=tree(web),
                      errors=errors or {}, values=values, today=_today(web).isoformat(),
                      chosen=set(values.getlist("categories")) if values else set())


@page("/campaigns/<campaign_id>", methods=("GET", "POST"))
def campaign_detail(web, campaign_id):
    errors, values = {}, {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        values = web.request.form
        action = web.form("action")
        if action == "finding":
            result, errors = web.attempt("supervision", "record_campaign_finding", {
                "campaign_id": campaign_id, "unit_id": web.form("unit_id"),
                "four_winds": web.form("four_winds"), "source": web.form("source"),
                "description": web.form("description"), "severity": web.form("severity"),
                "responsible_role": web.form("responsible_role"),
                "deadline": web.form("deadline"), "requirement": web.form("requirement")})
            done = "已记录问题并纳入本专项，转为限期整改"
        elif action == "tag":
            result, errors = web.attempt("supervision", "tag_campaign_finding", {
                "campaign_id": campaign_id, "finding_id": web.form("finding_id"),
                "four_winds": web.form("four_winds")})
            done = "已将问题纳入本专项"
        elif action == "close":
            result, errors = web.attempt("supervision", "close_campaign", {
                "campaign_id": campaign_id, "summary": web.form("summary")})
            done = "专项已总结收尾"
        else:
            raise NotFound("没有这种操作")
        if not errors:
            return web.redirect("/campaigns/%s" % campaign_id, done)
    p = web.query("supervision", "campaign_progress", {
        "campaign_id": campaign_id, "soon_days": web.settings.due_soon_days})
    units = tree(web) if web.can(*INSPECTORS) else []
    return web.render("campaigns_detail.html", status=400 if errors else 200, c=p, units=units,
                      errors=errors, values=values, inspector=web.can(*INSPECTORS),
                      today=_today(web).isoformat())
