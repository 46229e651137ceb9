"""跟踪问效 and 推进会 in the console (supervision's task lists, tasks and meetings).

* 任务跟踪 (/tasks): every task of the user's units in three colours (逾期 / 临近时限 /
  按期推进), filtered by status or by overdue; the task lists with their progress.
  Inspectors and node-admins issue a task list (/tasks/new): each item with its standard,
  deadline and responsible unit, picked from the tree by name.
* A task (/tasks/<id>): the responsible unit's contact reports completion with evidence
  files; an inspector accepts or returns it, extends or cancels the task; the 督办 steps.
* 推进会 (/meetings): meetings of the responsible units with their decisions, each one a
  task shown with its colour; a meeting is recorded with the units present and decisions.

The services decide; a page only hides the buttons the user's role may not use.
"""
from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Response

from services.console.evidence_pages import MAX_FILES
from services.console.pages import INSPECTORS, _today, raise_forbidden, roots, tree
from services.console.web import WRITERS, describe, page
from services.supervision.evidence import MAX_EVIDENCE_BYTES, file_suffix
from shared.errors import BadInput, Forbidden, NotFound, QinglianError, Unauthenticated

ROWS = 5  # empty item / decision rows a new form offers


def _soon(web) -> int:
    return web.settings.due_soon_days


def _attempt(web, command: str, data: dict):
    """``web.attempt``; a task's deadline is its 时限 (the console's field names call a
    ``deadline`` 整改期限, the rectifications' word)."""
    result, errors = web.attempt("supervision", command, data)
    for key, text in (errors or {}).items():
        errors[key] = text.replace("整改期限", "时限")
    return result, errors


def _rows(web, *names) -> list[dict]:
    """Parallel form lists (one row each), rows left wholly blank dropped."""
    columns = [web.request.form.getlist(n) for n in names]
    out = []
    for values in zip(*columns):
        row = {n: v.strip() for n, v in zip(names, values)}
        if any(row.values()):
            out.append(row)
    return out


# -- 任务跟踪 ------------------------------------------------------------------------------------
@page("/tasks")
def tasks(web):
    status = web.arg("status") or None
    overdue = web.arg("overdue") == "1"
    list_id = web.arg("list") or None
    colours = {"red": 0, "yellow": 0, "green": 0}
    items, lists = [], []
    for root in roots(web):
        params = {"unit_id": root["unit_id"], "soon_days": _soon(web), "limit": 200,
                  "overdue_only": overdue}
        if status:
            params["status"] = status
        if list_id:
            params["list_id"] = list_id
        answer = web.query("supervision", "list_tasks", params)
        items += answer["items"]
        for c in colours:
            colours[c] += answer["colours"][c]
        lists += web.query("supervision", "list_task_lists", {"unit_id": root["unit_id"]})["lists"]
    order = {"red": 0, "yellow": 1, "green": 2}
    items.sort(key=lambda i: (order[i["colour"]], i["deadline"]))
    return web.render("tasks_list.html", items=items, lists=lists, colours=colours,
                      chosen_status=status or "", overdue=overdue, list_id=list_id,
                      inspector=web.can(*INSPECTORS))


@page("/tasks/new", methods=("GET", "POST"), roles=INSPECTORS)
def task_list_new(web):
    errors, values = {}, {}
    if web.request.method == "POST":
        values = web.request.form
        items = _rows(web, "item_title", "item_standard", "item_deadline", "item_unit")
        data = {"title": web.form("title"), "issuer_unit_id": web.form("issuer_unit_id"),
                "items": [{"title": r["item_title"], "standard": r["item_standard"],
                           "deadline": r["item_deadline"], "unit_id": r["item_unit"]}
                          for r in items]}
        result, errors = _attempt(web, "issue_task_list", data)
        if not errors:
            return web.redirect("/tasks?" + urlencode({"list": result["list_id"]}),
                                "已下达任务清单：%s（%d 项）" % (data["title"], len(items)))
    return web.render("tasks_new.html", status=400 if errors else 200, units=tree(web),
                      errors=errors or {}, values=values, rows=ROWS, today=_today(web).isoformat())


TASK_ACTIONS = {  # form action -> (command, its fields, what the person is told)
    "accept": ("accept_task", ("note",), "已验收办结"),
    "return": ("return_task", ("reason",), "已退回，继续推进"),
    "extend": ("extend_task_deadline", ("deadline", "reason"), "已延长时限"),
    "cancel": ("cancel_task", ("reason",), "已撤销任务"),
}


def _task_page(web, task_id, errors=None, status=200):
    task = web.query("supervision", "get_task", {"task_id": task_id})
    return web.render("tasks_detail.html", status=status, task=task, errors=errors or {},
                      inspector=web.can(*INSPECTORS))


@page("/tasks/<task_id>", methods=("GET", "POST"))
def task_detail(web, task_id):
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        action = TASK_ACTIONS.get(web.form("action"))
        if action is None:
            raise NotFound("没有这种操作")
        command, fields, done = action
        _r, errors = _attempt(web, command, dict({f: web.form(f) for f in fields}, task_id=task_id))
        if errors:
            return _task_page(web, task_id, errors, 400)
        return web.redirect("/tasks/%s" % task_id, done)
    return _task_page(web, task_id)


@page("/tasks/<task_id>/complete", methods=("POST",), roles=WRITERS)
def task_complete(web, task_id):
    """报告完成: the evidence files go to supervision's store first, then the report."""
    task = web.query("supervision", "get_task", {"task_id": task_id})
    files = [f for f in web.request.files.getlist("file") if f.filename]
    try:
        if not web.form("summary"):
            raise BadInput("请填写完成情况", {"summary": ["必填"]})
        if not files:
            raise BadInput("请选择佐证材料", {"file": ["至少选择一个文件"]})
        if len(files) > MAX_FILES:
            raise BadInput("文件过多", {"file": ["一次至多 %d 个文件" % MAX_FILES]})
        for f in files:
            file_suffix(f.filename)
        bodies = [f.read(MAX_EVIDENCE_BYTES + 1) for f in files]
        if any(len(b) > MAX_EVIDENCE_BYTES for b in bodies) or not all(bodies):
            raise BadInput("文件过大或为空", {"file": ["每个文件至多 %d MB，且不能为空"
                                                   % (MAX_EVIDENCE_BYTES // 2**20)]})
        items = []
        for f, body in zip(files, bodies):
            ref = web.service.supervision.store_evidence(
                unit_id=task["unit_id"], filename=f.filename,
                content_b64=base64.b64encode(body).decode("ascii"), actor=web._proof())
            items.append(dict(ref, description=f.filename[:500]))
        web.command("supervision", "report_task_completion", {
            "task_id": task_id, "summary": web.form("summary"), "evidence": items})
    except (Forbidden, NotFound, Unauthenticated):
        raise
    except QinglianError as exc:
        errors = describe(exc)
        if {"_schema", "filename", "content_b64"} & set(errors):
            for key in ("_schema", "filename", "content_b64"):
                errors.pop(key, None)
            errors["file"] = exc.message
        return _task_page(web, task_id, errors, 400)
    return web.redirect("/tasks/%s" % task_id, "已报告完成，等待验收")


@page("/tasks/<task_id>/evidence/<prefix>/<name>")
def task_evidence(web, task_id, prefix, name):
    item = web.service.supervision.task_evidence_file(
        task_id=task_id, path="%s/%s" % (prefix, name), actor=web._proof())
    filename = item.get("description") or name
    return Response(base64.b64decode(item["content_b64"]), mimetype="application/octet-stream",
                    headers={"Content-Disposition": "attachment; filename*=UTF-8''%s" % quote(filename)})


# -- 推进会 ---------------------------------------------------------------------------------------
@page("/meetings")
def meetings(web):
    found = []
    for root in roots(web):
        found += web.query("supervision", "list_meetings", {"unit_id": root["unit_id"]})["meetings"]
    return web.render("tasks_meetings.html", meetings=found, inspector=web.can(*INSPECTORS))


@page("/meetings/new", methods=("GET", "POST"), roles=INSPECTORS)
def meeting_new(web):
    errors, values = {}, {}
    if web.request.method == "POST":
        values = web.request.form
        decisions = _rows(web, "dec_text", "dec_standard", "dec_deadline", "dec_unit")
        data = {"title": web.form("title"), "kind": web.form("kind"),
                "convener_unit_id": web.form("convener_unit_id"), "held_on": web.form("held_on"),
                "unit_ids": web.request.form.getlist("unit_ids"), "summary": web.form("summary"),
                "decisions": [{"text": r["dec_text"], "standard": r["dec_standard"],
                               "deadline": r["dec_deadline"], "unit_id": r["dec_unit"]}
                              for r in decisions]}
        result, errors = _attempt(web, "hold_meeting", data)
        if not errors:
            return web.redirect("/meetings/%s" % result["meeting_id"],
                                "已记录会议，%d 项议定事项已转为跟踪任务" % len(decisions))
    return web.render("tasks_meeting_new.html", status=400 if errors else 200, units=tree(web),
                      errors=errors or {}, values=values, rows=ROWS,
                      chosen=set(values.getlist("unit_ids")) if values else set(),
                      today=_today(web).isoformat())


@page("/meetings/<meeting_id>", methods=("GET", "POST"))
def meeting_detail(web, meeting_id):
    errors = {}
    if web.request.method == "POST":
        if not web.can(*INSPECTORS):
            raise_forbidden()
        _r, errors = _attempt(web, "add_meeting_decision", {
            "meeting_id": meeting_id, "text": web.form("text"), "unit_id": web.form("unit_id"),
            "standard": web.form("standard"), "deadline": web.form("deadline")})
        if not errors:
            return web.redirect("/meetings/%s" % meeting_id, "已增加议定事项，并转为跟踪任务")
    m = web.query("supervision", "get_meeting", {"meeting_id": meeting_id})
    return web.render("tasks_meeting.html", status=400 if errors else 200, m=m, errors=errors,
                      inspector=web.can(*INSPECTORS), soon=_soon(web))
