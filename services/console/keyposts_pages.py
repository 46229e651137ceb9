"""重点岗位 / 一把手 监督 in the console (supervision's key-post register).

* /key-posts: the posts flagged as 一把手 or 重点岗位 in the user's units, each with its risk
  points by level and the inspections that looked at it; the risk points and the
  inspections filtered to those posts (or to one kind); for an assessment round, each
  unit's key-post figures as the 政治生态研判 report carries them.
* Inspectors and node-admins flag a post (the unit picked by name, the post named as the
  unit names it), clear a flag with a reason, and focus an inspection on a flagged post.
"""
from __future__ import annotations

from services.console.pages import INSPECTORS, raise_forbidden, roots, tree
from services.console.web import page
from shared.errors import NotFound

ACTIONS = {  # form action -> (command, its fields, what the person is told)
    "flag": ("flag_key_post", ("unit_id", "post", "kind", "reason"), "已标记岗位"),
    "clear": ("clear_key_post", ("unit_id", "post", "reason"), "已取消标记"),
    "focus": ("focus_inspection", ("inspection_id", "post"), "检查已聚焦该岗位"),
}


@page("/key-posts", methods=("GET", "POST"))
def key_posts(web):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        action = ACTIONS.get(web.form("action"))
        if action is None:
            raise NotFound("没有这种操作")
        command, fields, done = action
        _r, errors = web.attempt("supervision", command, {f: web.form(f) for f in fields})
        if not errors:
            return web.redirect("/key-posts", done)
    kind = web.arg("kind") or None
    round_id = web.arg("round") or None
    posts, risks, inspections, planned = [], [], [], []
    for root in roots(web):
        params = {"unit_id": root["unit_id"]}
        if kind:
            params["kind"] = kind
        posts += web.query("supervision", "key_posts", params)["posts"]
        risks += web.query("supervision", "key_post_risk_points", params)["risk_points"]
        inspections += web.query("supervision", "key_post_inspections", params)["inspections"]
        if web.can(*INSPECTORS):
            planned += web.query("supervision", "list_inspections", {
                "unit_id": root["unit_id"], "status": "planned", "limit": 200})["items"]
    rounds = web.query("supervision", "list_rounds", {})["rounds"]
    assessment = (web.query("supervision", "key_post_assessment", {"round_id": round_id})["units"]
                  if round_id else None)
    return web.render("keyposts.html", status=400 if errors else 200, posts=posts, risks=risks,
                      inspections=inspections, planned=planned, rounds=rounds,
                      round_id=round_id or "", assessment=assessment, kind=kind or "",
                      units=tree(web) if web.can(*INSPECTORS) else [], errors=errors,
                      inspector=web.can(*INSPECTORS))
