"""跟踪问效 and 推进会: the commands and queries of task tracking (registered on the
supervision ``app``; imported by ``application.py``).

* An inspector or node-admin issues a task list (任务清单) for a unit: every item has a
  standard (标准), a deadline (时限) and a responsible unit inside the issuer's subtree.
* The responsible unit's contact (unit-admin in scope, or a node-admin) reports completion
  with evidence (files in the node's evidence store, by reference); someone else - an
  inspector or node-admin who did not report it - accepts it or returns it.
* ``detect_task_overdue`` (timer, like ``detect_overdue``) flags open tasks past their
  deadline and takes the same escalation ladder, with the same grace periods and targets.
* A 推进会 records the responsible units present and its decisions; each decision is a
  task of the meeting's own list, tracked as above.
* A 专项整治 / 专项治理 campaign has a scope (a unit's subtree) and a period; findings in
  them are tagged to it with a 四风 category (recorded for it at once, or tagged later),
  and its progress is their rectifications' progress.

A command loads (its aggregates, the facts through ``uow.supervision``), lets the domain
decide (every rule is in ``domain.py``), saves and answers, as in ``application.py``.
"""
from __future__ import annotations

from services.supervision import queries as q
from services.supervision import schemas as s
from services.supervision.application import (
    INSPECTORS, READERS, _inspection_unit, _ladder_targets, _owner, _today, _today_of, app,
    record_finding,
)
from services.supervision.domain import (
    Campaign, Inspection, KeyPostRegister, Meeting, Task, TaskList, due_escalations, in_subtree,
    parse_date,
)
from shared.app import new_id
from shared.auth import WRITERS

PHASE_BATCH = 50  # records per write, as the other sweeps


_task_unit = _owner("task_id")
_list_unit = _owner("list_id")
_meeting_unit = _owner("meeting_id")
_campaign_unit = _owner("campaign_id")


def _assign(uow, task_list: TaskList, item: dict, field: str) -> Task:
    """A new task of ``task_list`` for ``item`` (its title, standard, deadline, unit)."""
    port = uow.supervision
    task_id = new_id(item.get("task_id"))
    return task_list.assign_task(task_id, port.unit(item["unit_id"]),
                                 port.path(task_list.issuer_unit_id) or "", item["title"],
                                 item["standard"], item["deadline"].isoformat(), _today(uow),
                                 field=field, taken=uow.exists(Task, task_id))


# -- task lists and tasks ------------------------------------------------------------------------
@app.command("issue_task_list", s.IssueTaskList, roles=INSPECTORS, scope="issuer_unit_id",
             status=201)
def issue_task_list(uow, d):
    """任务清单: every item with its standard, deadline and responsible unit."""
    issuer = uow.supervision.unit(d["issuer_unit_id"])
    list_id = new_id(d.get("list_id"))
    tl = TaskList.issue(list_id, d["title"], d["issuer_unit_id"], _today(uow), issuer=issuer,
                        taken=uow.exists(TaskList, list_id))
    made = [_assign(uow, tl, item, "items.%d.unit_id" % i) for i, item in enumerate(d["items"])]
    uow.save(tl, *made)
    return {"list_id": list_id, "task_ids": [m.id for m in made]}


@app.command("add_task", s.AddTask, roles=INSPECTORS, scope=_list_unit, status=201)
def add_task(uow, d):
    tl = uow.get(TaskList, d["list_id"])
    task = _assign(uow, tl, d, "unit_id")
    uow.save(tl, task)
    return {"list_id": tl.id, "task_id": task.id, "seq": tl.items}


@app.command("report_task_completion", s.ReportTaskCompletion, roles=WRITERS, scope=_task_unit)
def report_task_completion(uow, d):
    """The responsible unit reports it done, with evidence (references, never files)."""
    task = uow.get(Task, d["task_id"])
    task.report_completion(d["summary"], [dict(e) for e in d["evidence"]], _today(uow),
                           uow.actor.user_id)
    uow.save(task)
    return {"task_id": task.id, "status": task.status}


@app.command("accept_task", s.AcceptTask, roles=INSPECTORS, scope=_task_unit)
def accept_task(uow, d):
    task = uow.get(Task, d["task_id"])
    task.accept(d["note"], _today(uow), uow.actor.user_id)
    uow.save(task)
    return {"task_id": task.id, "status": task.status}


@app.command("return_task", s.ReturnTask, roles=INSPECTORS, scope=_task_unit)
def return_task(uow, d):
    task = uow.get(Task, d["task_id"])
    task.return_(d["reason"], _today(uow), uow.actor.user_id)
    uow.save(task)
    return {"task_id": task.id, "status": task.status}


@app.command("extend_task_deadline", s.ExtendTask, roles=INSPECTORS, scope=_task_unit)
def extend_task_deadline(uow, d):
    task = uow.get(Task, d["task_id"])
    task.extend_deadline(d["deadline"].isoformat(), d["reason"], _today(uow))
    uow.save(task)
    return {"task_id": task.id, "deadline": task.deadline}


@app.command("cancel_task", s.CancelTask, roles=INSPECTORS, scope=_task_unit)
def cancel_task(uow, d):
    task = uow.get(Task, d["task_id"])
    task.cancel(d["reason"], _today(uow))
    uow.save(task)
    return {"task_id": task.id, "status": task.status}


@app.command("detect_task_overdue", s.Empty, roles=INSPECTORS, phased=True)
def detect_task_overdue(steps, d):
    """Run by the timer: open tasks past their deadline are flagged once and every
    escalation step now due is taken (the rectifications' ladder and targets). Running it
    twice changes nothing the second time. Phased as ``detect_overdue``."""
    with steps.read() as conn:
        reads = q.SupervisionReadPort(conn)
        settings = steps.rt.settings
        today = _today_of(conn, steps.rt)
        day = parse_date(today)
        cache, todo = {}, []
        for row in reads.overdue_tasks(today):
            days = (day - parse_date(row.deadline)).days
            if row.overdue and not due_escalations(settings.ladder, days, row.escalation_step):
                continue
            todo.append(row.task_id)
            _ladder_targets(reads, row.unit_id, settings, cache)
    detected = escalated = 0
    for start in range(0, len(todo), PHASE_BATCH):
        with steps.unit_of_work() as uow:
            reads = app.bind_ports(uow).supervision
            changed = []
            for task_id in todo[start:start + PHASE_BATCH]:
                task = uow.get(Task, task_id)
                before = task.overdue
                if task.detect_overdue(today, settings.ladder,
                                       _ladder_targets(reads, task.unit_id, settings, cache),
                                       reads.unit_name(task.unit_id)):
                    detected += not before
                    escalated += sum(1 for e in task.pending_events
                                     if e.event_type == "Task.Escalated")
                    changed.append(task)
            if changed:
                uow.save(*changed)
    return {"checked_on": today, "overdue_detected": detected, "escalations": escalated}


@app.query("get_task", s.TaskRef, roles=READERS, scope=_task_unit, runtime=True)
def get_task(conn, d, actor, rt):
    """A task with its list, standard, deadline, completion, evidence references and
    escalations; ``days_overdue`` counted to today."""
    return q.task(conn, d["task_id"], _today_of(conn, rt))


@app.query("list_tasks", s.ListTasks, roles=READERS, scope="unit_id", runtime=True)
def list_tasks(conn, d, actor, rt):
    """Tasks a unit (and, by default, the units below it) is responsible for, soonest
    deadline first; ``overdue_only`` for the open ones past their deadline."""
    return q.list_tasks(conn, d["unit_id"], d["include_subtree"], d["status"], d["list_id"],
                        d["overdue_only"], d["meeting_id"], d["limit"], d["offset"],
                        _today_of(conn, rt), d["soon_days"])


@app.query("list_task_lists", s.ListRef, roles=READERS, scope="unit_id")
def list_task_lists(conn, d, actor):
    return q.list_task_lists(conn, d["unit_id"], d["limit"], d["offset"])


# -- 推进会 -----------------------------------------------------------------------------------------
@app.command("hold_meeting", s.HoldMeeting, roles=INSPECTORS, scope="convener_unit_id",
             status=201)
def hold_meeting(uow, d):
    """联席推进会: the responsible units present, what was decided; each decision becomes a
    task (standard, deadline, one of the units present) of the meeting's own list."""
    port = uow.supervision
    convener = port.unit(d["convener_unit_id"])
    meeting_id = new_id(d.get("meeting_id"))
    today = _today(uow)
    m = Meeting.hold(meeting_id, d["title"], d["kind"], d["convener_unit_id"],
                     d["held_on"].isoformat(), d["unit_ids"], d["summary"], today,
                     convener=convener,
                     taken=uow.exists(Meeting, meeting_id) or uow.exists(TaskList, meeting_id),
                     units=(port.unit(unit_id) for unit_id in d["unit_ids"]))
    tl = TaskList.issue(m.list_id, "%s 议定事项" % d["title"], d["convener_unit_id"], today,
                        source="meeting", meeting_id=meeting_id)
    made = []
    for i, dec in enumerate(d["decisions"]):
        m.check_decision_unit(dec["unit_id"], "decisions.%d.unit_id" % i)
        task = _assign(uow, tl, {"title": dec["text"], **dec}, "decisions.%d.unit_id" % i)
        m.record_decision(dec["text"], dec["unit_id"], task.id)
        made.append(task)
    uow.save(m, tl, *made)
    return {"meeting_id": meeting_id, "list_id": tl.id, "task_ids": [x.id for x in made]}


@app.command("add_meeting_decision", s.AddDecision, roles=INSPECTORS, scope=_meeting_unit,
             status=201)
def add_meeting_decision(uow, d):
    m = uow.get(Meeting, d["meeting_id"])
    m.check_decision_unit(d["unit_id"])
    tl = uow.get(TaskList, m.list_id)
    task = _assign(uow, tl, {"title": d["text"], **d}, "unit_id")
    seq = m.record_decision(d["text"], d["unit_id"], task.id)
    uow.save(m, tl, task)
    return {"meeting_id": m.id, "seq": seq, "task_id": task.id}


@app.query("get_meeting", s.MeetingRef, roles=READERS, scope=_meeting_unit, runtime=True)
def get_meeting(conn, d, actor, rt):
    """A meeting with its units and each decision with its task's status and colour facts."""
    return q.meeting(conn, d["meeting_id"], _today_of(conn, rt))


@app.query("list_meetings", s.ListRef, roles=READERS, scope="unit_id")
def list_meetings(conn, d, actor):
    return q.list_meetings(conn, d["unit_id"], d["limit"], d["offset"])


# -- 专项整治 / 专项治理 ----------------------------------------------------------------------------
def _tag(uow, campaign: Campaign, finding_id: str, four_winds):
    port = uow.supervision
    finding = port.finding(finding_id)
    in_scope = in_subtree(finding["path"], port.path(campaign.scope_unit_id))
    campaign.tag(finding_id, in_scope, finding["unit_id"], finding["found_on"], four_winds,
                 _today(uow))


@app.command("launch_campaign", s.LaunchCampaign, roles=INSPECTORS, scope="scope_unit_id",
             status=201)
def launch_campaign(uow, d):
    """专项整治 / 专项治理 over a unit and everything below it, for a period, targeting
    some 四风 categories (or any)."""
    scope = uow.supervision.unit(d["scope_unit_id"])
    campaign_id = new_id(d.get("campaign_id"))
    c = Campaign.launch(campaign_id, d["title"], d["kind"], d["scope_unit_id"],
                        d["starts_on"].isoformat(), d["ends_on"].isoformat(), d["categories"],
                        d["description"], _today(uow), scope=scope,
                        taken=uow.exists(Campaign, campaign_id))
    uow.save(c)
    return {"campaign_id": campaign_id}


@app.command("tag_campaign_finding", s.TagFinding, roles=INSPECTORS, scope=_campaign_unit)
def tag_campaign_finding(uow, d):
    """A finding already recorded joins the campaign, with its 四风 category."""
    c = uow.get(Campaign, d["campaign_id"])
    _tag(uow, c, d["finding_id"], d["four_winds"])
    uow.save(c)
    return {"campaign_id": c.id, "finding_id": d["finding_id"]}


@app.command("record_campaign_finding", s.RecordCampaignFinding, roles=INSPECTORS,
             scope="unit_id", status=201)
def record_campaign_finding(uow, d):
    """record_finding (the finding and its 限期整改) and its tagging in one transaction."""
    d = dict(d)
    campaign_id, four_winds = d.pop("campaign_id"), d.pop("four_winds")
    c = uow.get(Campaign, campaign_id)
    out = record_finding(uow, d)
    _tag(uow, c, out["rect_id"], four_winds)
    uow.save(c)
    return dict(out, campaign_id=campaign_id, four_winds=four_winds)


@app.command("close_campaign", s.CloseCampaign, roles=INSPECTORS, scope=_campaign_unit)
def close_campaign(uow, d):
    c = uow.get(Campaign, d["campaign_id"])
    c.close(d["summary"], _today(uow))
    uow.save(c)
    return {"campaign_id": c.id, "closed": True}


@app.query("campaign_progress", s.CampaignProgress, roles=READERS, scope=_campaign_unit,
           runtime=True)
def campaign_progress(conn, d, actor, rt):
    """A campaign with its findings' rectifications: totals, per 四风 category, per unit,
    each finding in three colours; ``untagged``: findings in scope and period not in it."""
    out = q.campaign_progress(conn, d["campaign_id"], _today_of(conn, rt), d["soon_days"])
    out["untagged"] = q.untagged_findings(conn, d["campaign_id"])
    return out


@app.query("list_campaigns", s.ListRef, roles=READERS, scope="unit_id", runtime=True)
def list_campaigns(conn, d, actor, rt):
    """Campaigns that concern a unit: scoped to it, above it or below it."""
    return q.list_campaigns(conn, d["unit_id"], _today_of(conn, rt), d["limit"], d["offset"])


# -- 重点岗位 / 一把手 -------------------------------------------------------------------------------
def _register(uow, unit_id: str) -> KeyPostRegister:
    return (uow.get(KeyPostRegister, unit_id) if uow.exists(KeyPostRegister, unit_id)
            else KeyPostRegister.start(unit_id))


@app.command("flag_key_post", s.FlagKeyPost, roles=INSPECTORS, scope="unit_id")
def flag_key_post(uow, d):
    """A post of a unit is its 一把手 (one per unit) or a 重点岗位."""
    unit = uow.supervision.unit(d["unit_id"])
    reg = _register(uow, d["unit_id"])
    reg.flag(d["post"], d["kind"], d["reason"], _today(uow), unit=unit)
    uow.save(reg)
    return {"unit_id": reg.id, "posts": reg.posts}


@app.command("clear_key_post", s.ClearKeyPost, roles=INSPECTORS, scope="unit_id")
def clear_key_post(uow, d):
    reg = _register(uow, d["unit_id"])
    reg.clear(d["post"], d["reason"], _today(uow))
    uow.save(reg)
    return {"unit_id": reg.id, "posts": reg.posts}


@app.command("focus_inspection", s.FocusInspection, roles=INSPECTORS, scope=_inspection_unit)
def focus_inspection(uow, d):
    """检查聚焦: an inspection looks at one of its unit's flagged posts."""
    insp = uow.get(Inspection, d["inspection_id"])
    reg = _register(uow, insp.unit_id)
    reg.focus_inspection(insp.id, insp.unit_id, d["post"], _today(uow))
    uow.save(reg)
    return {"inspection_id": insp.id, "post": d["post"].strip()}


@app.query("key_posts", s.KeyPostQuery, roles=READERS, scope="unit_id")
def key_posts(conn, d, actor):
    """Flagged posts (``kind``: top_leader 一把手 / key_post 重点岗位) with their risk points
    by level and the inspections that looked at them."""
    return q.list_key_posts(conn, d["unit_id"], d["include_subtree"], d["kind"])


@app.query("key_post_risk_points", s.KeyPostQuery, roles=READERS, scope="unit_id")
def key_post_risk_points(conn, d, actor):
    """廉政风险点 filtered to the flagged posts (or one kind of them)."""
    return q.key_post_risk_points(conn, d["unit_id"], d["include_subtree"], d["kind"])


@app.query("key_post_inspections", s.KeyPostQuery, roles=READERS, scope="unit_id")
def key_post_inspections(conn, d, actor):
    """检查督导 filtered to the inspections focused on flagged posts."""
    return q.key_post_inspections_list(conn, d["unit_id"], d["include_subtree"], d["kind"])


@app.query("key_post_assessment", s.KeyPostAssessment, roles=READERS)
def key_post_assessment(conn, d, actor):
    """Per unit of an assessment round: its 一把手 / key posts and their supervision counts
    (also in assessment_report as ``key_posts``)."""
    return {"round_id": d["round_id"], "units": q.key_post_assessment(conn, d["round_id"])}
