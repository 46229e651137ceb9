"""The console's 五联五互 pages: one workspace per 联 (经验联享, 案例联编, 活动联办, 典型联树,
难题联解), each listing this node's records beside those other nodes shared with it,
every one named by its origin node in Chinese (``QINGLIAN_NODE_NAMES``).

They read and write through the exchange service only (its queries ``shared_feed``,
``own_drafts``, ``get_record``, ``record_history``, ``trusted_nodes`` and its commands).
The service decides: what the owner may do (edit, merge, accept, report the outcome)
is offered on the owner's node only, what others add (contributions, sign-ups,
endorsements, proposals, comments, 学习借鉴) on the other nodes, and a viewer gets no
buttons at all. Record ids appear only in addresses: every unit and node is picked.
"""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from services.console.pages import _today, raise_forbidden, tree
from services.console.web import describe, page
from services.exchange.domain import (
    DEADLINE_STATES, SHARING_LEVELS, deadline_state, owner_of, who_sees,
)
from shared import config
from shared.errors import BadInput, Forbidden, NotFound, QinglianError, Unauthenticated

WRITERS = ("node-admin", "unit-admin")
NODE_ADMIN = ("node-admin",)

# kind -> (address segment, workspace title)
KINDS = {
    "experience": ("experiences", "经验联享"),
    "case": ("cases", "案例联编"),
    "activity": ("activities", "活动联办"),
    "exemplar": ("exemplars", "典型联树"),
    "problem": ("problems", "难题联解"),
}
BY_SEGMENT = {seg: kind for kind, (seg, _title) in KINDS.items()}
COLOURS = {"overdue": "red", "due_soon": "yellow", "on_track": "green", "done": "green"}
# the exchange's field names as these forms call them (beside web.FIELD_NAMES)
FIELDS = {
    "sharing": "共享范围", "recipients": "指定单位", "title": "标题", "summary": "摘要",
    "body": "正文", "business_type": "业务类型", "topics": "主题", "category": "类别",
    "facts": "基本案情", "analysis": "剖析", "lessons": "举一反三", "tags": "标签",
    "theme": "活动主题", "description": "说明", "starts_at": "开始时间", "ends_at": "结束时间",
    "location": "地点", "invited_nodes": "受邀单位", "headcount": "人数", "text": "内容",
    "contribution_type": "补充类型", "indicators": "指标", "period": "期间", "section": "科室或窗口",
    "context": "难题情况", "deadline": "期限", "detail": "方案内容", "results": "成效",
    "measures": "措施", "resolved_on": "解决日期", "comment": "推荐理由", "note": "说明",
    "units": "参加单位", "merge_contributions": "合并的补充内容", "proposal_id": "方案",
    "reason": "原因", "unit_id": "单位",
}


# -- nodes and their names --------------------------------------------------------------------
class Nodes:
    """The trusted nodes as this page names them."""

    def __init__(self, web):
        answer = web.query("exchange", "trusted_nodes")
        self.me = answer["this_node"]
        self.city = answer["city"]
        self.names = config.node_names(web.dep.container.config)
        self.all = [dict(n, name=self.name(n["node_id"])) for n in answer["nodes"]]
        self.others = [n for n in self.all if not n["this_node"]]

    def name(self, node_id: str | None, fallback: str | None = None) -> str:
        if node_id in self.names:
            return self.names[node_id]
        return fallback or "未命名节点"

    def names_of(self, ids) -> str:
        return "、".join(self.name(n) for n in ids)

    def sentences(self) -> dict[str, str]:
        """For each sharing level: exactly who will see a record of this node."""
        me, city = self.name(self.me), self.name(self.city) if self.city else None
        everyone = [n["node_id"] for n in self.all]
        out = {"node": "只有本单位（%s）能看到，不发送给任何其他单位。" % me}
        if self.city and self.city != self.me:
            out["city"] = "本单位（%s）和市级（%s）能看到，其他区看不到。" % (me, city)
        else:
            out["city"] = "本单位就是市级（%s）：只有本单位能看到，与“本单位”相同。" % me
        out["all"] = "市级和各区都能看到：%s。" % self.names_of(
            who_sees("all", [], self.me, self.city, everyone))
        out["named"] = "只有本单位（%s）和下面勾选的单位能看到。" % me
        return out

    def audience(self, record: dict) -> str:
        """Who sees a published record now, as a sentence."""
        if not record.get("published", True):
            return "尚未共享：只有本单位（%s）能看到。" % self.name(record["owner"], record.get("unit_name"))
        seen = who_sees(record["sharing"], record["recipients"], record["owner"], self.city,
                        [n["node_id"] for n in self.all])
        return "%s：%s能看到。" % (SHARING_LEVELS.label(record["sharing"]), self.names_of(seen))


# -- helpers -------------------------------------------------------------------------------------
def _errors(exc: QinglianError) -> dict:
    errors = describe(exc)
    for field in list(errors):
        if field in FIELDS and field != "_":
            errors[field] = "%s: %s" % (FIELDS[field], errors[field].split(": ", 1)[-1])
    return errors


def attempt(web, name: str, data: dict):
    """``web.attempt`` with these forms' field names (blank fields are values not given)."""
    data = {k: v for k, v in data.items() if v != "" and v is not None}
    try:
        return web.command("exchange", name, data), None
    except (Forbidden, NotFound, Unauthenticated):
        raise
    except QinglianError as exc:
        return None, _errors(exc)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    return [w.strip() for w in re.split(r"[,，、;；\s]+", text or "") if w.strip()]


def _moment(web, name: str) -> str:
    """The picker's 年-月-日 时:分 in the users' zone, as ISO with its offset."""
    value = web.form(name)
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        raise BadInput("时间格式有误", {name: ["请按 年-月-日 时:分 填写，如 2026-12-20 14:30"]}) from None
    return moment.replace(tzinfo=ZoneInfo(web.settings.timezone)).isoformat()


def _count(web, name: str, low: int = 0) -> int:
    value = web.form(name)
    if not value.isdigit() or int(value) < low:
        raise BadInput("人数有误", {name: ["请填写%s整数" % ("正" if low else "不小于 0 的")]})
    return int(value)


def _sharing(web) -> dict:
    level = web.form("sharing")
    return {"sharing": level, "recipients": web.request.form.getlist("recipients")
            if level == "named" else []}


def _href(record_id: str, kind: str) -> str:
    return "/exchange/%s/%s" % (KINDS[kind][0], record_id)


def _with_origin(nodes: Nodes, item: dict) -> dict:
    item["origin_name"] = nodes.name(item["owner"], None)
    item["mine"] = item["owner"] == nodes.me
    return item


def _deadline(web, record: dict) -> dict:
    status = record["status"]
    deadline = (record.get("content") or {}).get("deadline")
    state = deadline_state(status, deadline, _today(web).isoformat(), web.settings.due_soon_days)
    return {"state": state, "label": DEADLINE_STATES.label(state), "colour": COLOURS[state],
            "deadline": deadline}


# -- create: the fields each kind's form sends ------------------------------------------------------
def _new_data(web, kind: str, nodes: Nodes) -> dict:
    unit = web.form("unit_id")
    if kind == "experience":
        return {"unit_id": unit, "title": web.form("title"), "summary": web.form("summary"),
                "body": web.form("body"), "business_type": web.form("business_type"),
                "topics": _words(web.form("topics"))}
    if kind == "case":
        return {"unit_id": unit, "title": web.form("title"), "category": web.form("category"),
                "summary": web.form("summary"), "facts": web.form("facts"),
                "analysis": web.form("analysis"), "lessons": _lines(web.form("lessons")),
                "tags": _words(web.form("tags"))}
    if kind == "activity":
        return {"unit_id": unit, "title": web.form("title"), "theme": web.form("theme"),
                "description": web.form("description"), "location": web.form("location"),
                "starts_at": _moment(web, "starts_at"), "ends_at": _moment(web, "ends_at"),
                "invited_nodes": [n for n in web.request.form.getlist("invited_nodes")
                                  if n in {o["node_id"] for o in nodes.others}]}
    if kind == "exemplar":
        return {"unit_id": unit, "category": web.form("category"), "title": web.form("title"),
                "section": web.form("section"), "description": web.form("description"),
                "period": web.form("period"), "indicators": _indicators(web)}
    return {"unit_id": unit, "title": web.form("title"), "context": web.form("context"),
            "deadline": web.form("deadline"), "tags": _words(web.form("tags"))}


def _indicators(web) -> dict:
    out = {}
    for name, value in zip(web.request.form.getlist("indicator_name"),
                           web.request.form.getlist("indicator_value")):
        name, value = name.strip(), value.strip()
        if not name and not value:
            continue
        try:
            out[name] = float(value)
        except ValueError:
            raise BadInput("指标有误", {"indicators": ["「%s」的数值不是数字" % name]}) from None
        if not name:
            raise BadInput("指标有误", {"indicators": ["每个数值都要写明指标名称"]})
    return out


COMMANDS = {"experience": "draft_experience", "case": "compile_case", "activity": "plan_activity",
            "exemplar": "nominate_exemplar", "problem": "post_problem"}
ID_FIELDS = {"experience": "experience_id", "case": "case_id", "activity": "activity_id",
             "exemplar": "exemplar_id", "problem": "problem_id"}


# -- the list of one 联 ------------------------------------------------------------------------------
@page("/exchange/<segment>", methods=("GET", "POST"))
def exchange_list(web, segment):
    kind = BY_SEGMENT.get(segment)
    if kind is None:
        raise NotFound("页面不存在")
    nodes = Nodes(web)
    errors = {}
    if web.request.method == "POST":
        if not web.can(*WRITERS):
            raise_forbidden()
        try:
            data = _new_data(web, kind, nodes)
            if web.form("publish") == "1":
                data["share"] = _sharing(web)
            result, errors = attempt(web, COMMANDS[kind], data)
        except BadInput as exc:
            result, errors = None, _errors(exc)
        if not errors:
            rid = result[ID_FIELDS[kind]]
            return web.redirect(_href(rid, kind), "已发布" if web.form("publish") == "1"
                                else "草稿已保存（尚未共享）")
    origin = web.arg("origin")
    params = {"kind": kind, "limit": 100}
    if origin:
        params["origin"] = origin
    feed = [_with_origin(nodes, i) for i in web.query("exchange", "shared_feed", params)["items"]]
    drafts = [_with_origin(nodes, i) for i in
              web.query("exchange", "own_drafts", {"kind": kind})["items"]] if web.can(*WRITERS) else []
    if kind == "problem":
        for item in feed + drafts:
            item["due"] = _deadline(web, web.query("exchange", "get_record",
                                                   {"record_id": item["record_id"]}))
    # the filter is passed as chosen_origin: the template's ``origin`` is the macro naming a
    # record's origin, which would hide it (the picker then never showed the choice)
    return web.render("exchange_list.html", status=400 if errors else 200, kind=kind,
                      title=KINDS[kind][1], segment=segment, feed=feed, drafts=drafts,
                      nodes=nodes, chosen_origin=origin, units=tree(web) if web.can(*WRITERS) else [],
                      sentences=nodes.sentences(), errors=errors, values=web.request.form,
                      href=_href, today=_today(web).isoformat())


# -- one record ----------------------------------------------------------------------------------
def _action(web, kind: str, record: dict, nodes: Nodes):
    """The command a detail page's form asks for: (result, errors) or Redirect."""
    action, rid, mine = web.form("action"), record["record_id"], record["owner"] == nodes.me
    if action == "publish":
        return attempt(web, "share_record", dict(_sharing(web), kind=kind, record_id=rid))
    if action == "withdraw":
        return attempt(web, "withdraw_record", {"kind": kind, "record_id": rid,
                                                "reason": web.form("reason")})
    if action == "comment":
        return attempt(web, "post_comment", {"parent_kind": kind, "parent_id": rid,
                                             "text": web.form("text"),
                                             "unit_id": web.form("unit_id")})
    if kind == "experience" and action == "learned":
        return attempt(web, "mark_learned", {"experience_id": rid, "unit_id": web.form("unit_id"),
                                             "note": web.form("note")})
    if kind == "experience" and action == "edit" and mine:
        return attempt(web, "edit_experience", {
            "experience_id": rid, "title": web.form("title"), "summary": web.form("summary"),
            "body": web.form("body"), "business_type": web.form("business_type")})
    if kind == "case" and action == "contribute":
        return attempt(web, "contribute_to_case", {
            "case_id": rid, "contribution_type": web.form("contribution_type"),
            "text": web.form("text"), "unit_id": web.form("unit_id")})
    if kind == "case" and action == "revise" and mine:
        data = {"case_id": rid, "note": web.form("note"),
                "merge_contributions": web.request.form.getlist("merge")}
        for field in ("title", "category", "summary", "facts", "analysis"):
            data[field] = web.form(field)
        if web.form("lessons"):
            data["lessons"] = _lines(web.form("lessons"))
        return attempt(web, "revise_case", data)
    if kind == "activity" and action == "sign_up":
        return attempt(web, "sign_up", {"activity_id": rid, "unit_id": web.form("unit_id"),
                                        "headcount": _count(web, "headcount", 1)})
    if kind == "activity" and action == "headcount":
        return attempt(web, "change_headcount", {"activity_id": rid,
                                                 "unit_id": web.form("unit_id"),
                                                 "headcount": _count(web, "headcount", 1)})
    if kind == "activity" and action == "withdraw_sign_up":
        return attempt(web, "withdraw_sign_up", {"activity_id": rid,
                                                 "unit_id": web.form("unit_id"),
                                                 "reason": web.form("reason")})
    if kind == "activity" and action == "attendance":
        if not web.can(*NODE_ADMIN):
            raise_forbidden()
        units = [{"unit_id": u["unit_id"], "attendees": _count(web, "attendees_%s" % u["unit_id"])}
                 for u in tree(web) if web.form("attendees_%s" % u["unit_id"])]
        return attempt(web, "record_attendance", {"activity_id": rid, "units": units,
                                                  "note": web.form("note")})
    if kind == "activity" and action == "outcome" and mine:
        return attempt(web, "report_outcome", {"activity_id": rid, "summary": web.form("summary"),
                                               "results": _lines(web.form("results"))})
    if kind == "activity" and action == "cancel" and mine:
        return attempt(web, "cancel_activity", {"activity_id": rid, "reason": web.form("reason")})
    if kind == "exemplar" and action == "endorse":
        return attempt(web, "endorse_exemplar", {"exemplar_id": rid, "comment": web.form("comment"),
                                                 "unit_id": web.form("unit_id")})
    if kind == "exemplar" and action == "indicators" and mine:
        return attempt(web, "update_exemplar_indicators", {
            "exemplar_id": rid, "indicators": _indicators(web), "period": web.form("period")})
    if kind == "problem" and action == "propose":
        return attempt(web, "propose_solution", {"problem_id": rid, "summary": web.form("summary"),
                                                 "detail": web.form("detail"),
                                                 "unit_id": web.form("unit_id")})
    if kind == "problem" and action == "accept" and mine:
        return attempt(web, "accept_proposal", {"problem_id": rid,
                                                "proposal_id": web.form("proposal_id"),
                                                "note": web.form("note")})
    if kind == "problem" and action == "resolve" and mine:
        return attempt(web, "record_resolution", {
            "problem_id": rid, "summary": web.form("summary"),
            "results": _lines(web.form("results")), "measures": _lines(web.form("measures")),
            "resolved_on": web.form("resolved_on") or _today(web).isoformat()})
    if kind == "problem" and action == "extend" and mine:
        return attempt(web, "extend_problem_deadline", {"problem_id": rid,
                                                        "deadline": web.form("deadline"),
                                                        "reason": web.form("reason")})
    raise NotFound("没有这种操作")


DONE = {"publish": "已按所选范围共享", "withdraw": "已撤回共享", "comment": "评论已发表",
        "learned": "已标记为学习借鉴", "edit": "已修改", "contribute": "补充内容已提交给案例所属单位",
        "revise": "已保存新的修订版", "sign_up": "已报名", "headcount": "已修改报名人数",
        "withdraw_sign_up": "已撤回报名", "attendance": "已登记本单位的参加情况",
        "outcome": "已登记活动成效", "cancel": "活动已取消", "endorse": "已推荐",
        "indicators": "已更新指标", "propose": "方案已提交", "accept": "已采纳该方案",
        "resolve": "已登记解决结果", "extend": "已延长期限"}


def _revisions(history: list[dict], contributions: dict) -> list[dict]:
    """Each revision once: the owner's node has the draft (Compiled), the others first hear
    of a case when it is published, with the revision it had then."""
    out, seen = [], set()
    for e in history:
        if e["event_type"] not in ("Case.Compiled", "Case.Published", "Case.Revised"):
            continue
        p = e["payload"]
        revision = p.get("revision", 1)
        if revision in seen:
            continue
        seen.add(revision)
        out.append({"revision": revision, "at": e["occurred_at"],
                    "note": p.get("note") or ("编写初稿" if revision == 1 else "发布"),
                    "merged": [contributions[c] for c in p.get("merged_now", [])
                               if c in contributions]})
    return out


@page("/exchange/<segment>/<node>/<slug>", methods=("GET", "POST"))
def exchange_record(web, segment, node, slug):
    kind = BY_SEGMENT.get(segment)
    if kind is None or owner_of("%s/%s" % (node, slug)) is None:
        raise NotFound("页面不存在")
    rid = "%s/%s" % (node, slug)
    nodes = Nodes(web)
    errors = {}
    if web.request.method == "POST":
        if not web.can(*WRITERS):
            raise_forbidden()
        record = web.query("exchange", "get_record", {"record_id": rid})
        try:
            _result, errors = _action(web, kind, record, nodes)
        except BadInput as exc:
            errors = _errors(exc)
        if not errors:
            return web.redirect(_href(rid, kind), DONE.get(web.form("action"), "已保存"))
    record = web.query("exchange", "get_record", {"record_id": rid})
    if record["kind"] != kind:
        raise NotFound("记录不存在或不在您的管理范围内")
    _with_origin(nodes, record)
    subs = record.get("sub_records", {})
    for items in subs.values():
        for s in items:
            _with_origin(nodes, s)
    history = web.query("exchange", "record_history", {"record_id": rid})["events"]
    contributions = {c["id"]: c for c in subs.get("contribution", [])}
    units = tree(web) if web.can(*WRITERS) else []
    mine_units = {u["unit_id"] for u in units}
    signups_here = [s for s in subs.get("signup", []) if s["owner"] == nodes.me
                    and s["status"] == "active" and s["unit_id"] in mine_units]
    by_node = {}
    for s in subs.get("signup", []):
        if s["status"] == "active":
            n = by_node.setdefault(s["owner"], {"name": s["origin_name"], "units": [],
                                                "headcount": 0, "attended": None})
            n["units"].append(s)
            n["headcount"] += s["headcount"]
    for a in subs.get("attendance", []):
        n = by_node.setdefault(a["owner"], {"name": a["origin_name"], "units": [],
                                            "headcount": 0, "attended": None})
        n["attended"] = a
    return web.render(
        "exchange_record.html", status=400 if errors else 200, kind=kind, title=KINDS[kind][1],
        segment=segment, r=record, c=record["content"], subs=subs, nodes=nodes,
        mine=record["owner"] == nodes.me, units=units, errors=errors, values=web.request.form,
        sentences=nodes.sentences(), audience=nodes.audience(record),
        revisions=_revisions(history, contributions) if kind == "case" else [],
        due=_deadline(web, record) if kind == "problem" else None, by_node=by_node,
        signups_here=signups_here, today=_today(web).isoformat())
