"""跟踪问效 read side: task lists, tasks, 推进会 and their decisions (SQLAlchemy Core).

The tables share the supervision service's ``metadata``; the projections follow the same
rule as ``projections.py`` (handlers touch rows by key only, counters on parent rows give
child rows their keys). The query helpers are plain functions ``(conn, ...)``.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, case, func, select

from services.supervision.domain import (
    campaign_item_colour, campaign_state, days_overdue, task_colour, task_days_overdue,
)
from services.supervision.projections import JSON, metadata, rectifications
from shared.errors import NotFound
from shared.projections import Projection, on, startswith
from shared.unittree import require_unit, unit_directory as ud

task_lists = Table(
    "sv_task_lists", metadata,
    Column("list_id", String(100), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("issuer_unit_id", String(100), nullable=False, index=True),
    Column("issued_on", String(10), nullable=False),
    Column("source", String(20), nullable=False),
    Column("meeting_id", String(100)),
    Column("items", Integer, nullable=False, default=0),
)

tasks = Table(
    "sv_tasks", metadata,
    Column("task_id", String(100), primary_key=True),
    Column("list_id", String(100), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("standard", Text, nullable=False),
    Column("deadline", String(10), nullable=False),
    Column("assigned_on", String(10), nullable=False),
    Column("source", String(20), nullable=False),
    Column("meeting_id", String(100)),
    Column("status", String(20), nullable=False),
    Column("summary", Text),
    Column("evidence", JSON),            # [{path, sha256, size_bytes, description}]
    Column("reported_on", String(10)),
    Column("reported_by", String(100)),
    Column("accepted_on", String(10)),
    Column("on_time", Boolean),
    Column("returns", Integer, nullable=False, default=0),
    Column("last_reason", Text),
    Column("overdue", Boolean, nullable=False, default=False),
    Column("overdue_since", String(10)),
    Column("escalations", Integer, nullable=False, default=0),
    Column("escalation_step", Integer, nullable=False, default=0),
    Column("escalation_level", String(30)),
    Column("last_escalated_on", String(10)),
    Index("ix_sv_tasks_status_deadline", "status", "deadline"),
)

task_escalations = Table(
    "sv_task_escalations", metadata,
    Column("task_id", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("unit_id", String(100), nullable=False),
    Column("step", Integer, nullable=False),
    Column("level", String(30), nullable=False),
    Column("target", JSON, nullable=False),
    Column("days_overdue", Integer, nullable=False),
    Column("escalated_on", String(10), nullable=False),
    Column("deadline", String(10)),  # the deadline this rung was about (the inbox: current only)
)

meetings = Table(
    "sv_meetings", metadata,
    Column("meeting_id", String(100), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("convener_unit_id", String(100), nullable=False, index=True),
    Column("held_on", String(10), nullable=False),
    Column("unit_ids", JSON, nullable=False),
    Column("summary", Text, nullable=False),
    Column("list_id", String(100), nullable=False),
    Column("decisions", Integer, nullable=False, default=0),
)

meeting_decisions = Table(
    "sv_meeting_decisions", metadata,
    Column("meeting_id", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("unit_id", String(100), nullable=False),
    Column("task_id", String(100), nullable=False),
)


class Tracking(Projection):
    name = "sv_tracking"
    version = 2  # v2: sv_task_escalations.deadline (the escalation inbox's task items)
    tables = (task_lists, tasks, task_escalations, meetings, meeting_decisions)

    @on("TaskList.Issued")
    def issued(self, w, e):
        p = e.payload
        w.insert(task_lists, list_id=p["list_id"], title=p["title"],
                 issuer_unit_id=p["issuer_unit_id"], issued_on=p["issued_on"], source=p["source"],
                 meeting_id=p["meeting_id"], items=0)

    @on("TaskList.ItemAdded")
    def item_added(self, w, e):
        w.update(task_lists, {"list_id": e.payload["list_id"]}, items=e.payload["seq"])

    @on("Task.Assigned")
    def assigned(self, w, e):
        p = e.payload
        w.insert(tasks, task_id=p["task_id"], list_id=p["list_id"], seq=p["seq"],
                 unit_id=p["unit_id"], title=p["title"], standard=p["standard"],
                 deadline=p["deadline"], assigned_on=p["assigned_on"], source=p["source"],
                 meeting_id=p["meeting_id"], status="open", returns=0, overdue=False,
                 escalations=0, escalation_step=0)

    @on("Task.CompletionReported")
    def reported(self, w, e):
        p = e.payload
        w.update(tasks, {"task_id": p["task_id"]}, status="reported", summary=p["summary"],
                 evidence=p["evidence"], reported_on=p["reported_on"],
                 reported_by=p["reported_by"])

    @on("Task.Accepted")
    def accepted(self, w, e):
        p = e.payload
        w.update(tasks, {"task_id": p["task_id"]}, status="accepted",
                 accepted_on=p["accepted_on"], on_time=p["on_time"])

    @on("Task.Returned")
    def returned(self, w, e):
        p = e.payload
        row = w.get(tasks, task_id=p["task_id"])
        w.update(tasks, {"task_id": p["task_id"]}, status="open", reported_on=None,
                 returns=row["returns"] + 1, last_reason=p["reason"])

    @on("Task.DeadlineExtended")
    def extended(self, w, e):
        p = e.payload
        w.update(tasks, {"task_id": p["task_id"]}, deadline=p["deadline"],
                 last_reason=p["reason"], overdue=False, overdue_since=None,
                 escalation_step=0, escalation_level=None)

    @on("Task.Cancelled")
    def cancelled(self, w, e):
        p = e.payload
        w.update(tasks, {"task_id": p["task_id"]}, status="cancelled", last_reason=p["reason"])

    @on("Task.OverdueDetected")
    def overdue(self, w, e):
        p = e.payload
        w.update(tasks, {"task_id": p["task_id"]}, overdue=True, overdue_since=p["detected_on"])

    @on("Task.Escalated")
    def escalated(self, w, e):
        p = e.payload
        row = w.get(tasks, task_id=p["task_id"])
        seq = row["escalations"] + 1
        w.insert(task_escalations, task_id=p["task_id"], seq=seq, unit_id=p["unit_id"],
                 step=p["step"], level=p["level"], target=p["target"],
                 days_overdue=p["days_overdue"], escalated_on=p["escalated_on"],
                 deadline=p["deadline"])
        w.update(tasks, {"task_id": p["task_id"]}, escalations=seq, escalation_step=p["step"],
                 escalation_level=p["level"], last_escalated_on=p["escalated_on"])

    @on("Meeting.Held")
    def held(self, w, e):
        p = e.payload
        w.insert(meetings, meeting_id=p["meeting_id"], title=p["title"], kind=p["kind"],
                 convener_unit_id=p["convener_unit_id"], held_on=p["held_on"],
                 unit_ids=p["unit_ids"], summary=p["summary"],
                 list_id=p["list_id"], decisions=0)

    @on("Meeting.DecisionRecorded")
    def decision(self, w, e):
        p = e.payload
        w.insert(meeting_decisions, meeting_id=p["meeting_id"], seq=p["seq"], text=p["text"],
                 unit_id=p["unit_id"], task_id=p["task_id"])
        w.update(meetings, {"meeting_id": p["meeting_id"]}, decisions=p["seq"])


TRACKING = Tracking()


# -- queries -------------------------------------------------------------------------------------
def _unit(conn, unit_id):
    return require_unit(conn, ud, unit_id)


SOON_DAYS = 7  # "临近时限" unless the caller says otherwise (the console's due_soon_days)


def _task_out(row, today: str, soon_days: int = SOON_DAYS) -> dict:
    out = dict(row)
    out["evidence"] = out.get("evidence") or []
    out["days_overdue"] = task_days_overdue(out["deadline"], out["status"], out["reported_on"],
                                            today)
    out["colour"] = task_colour(out["deadline"], out["status"], today, soon_days)
    return out


def _names(conn, ids) -> dict:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(conn.execute(select(ud.c.unit_id, ud.c.name).where(ud.c.unit_id.in_(ids))).all())


def task(conn, task_id: str, today: str) -> dict:
    row = conn.execute(select(tasks, ud.c.name.label("unit_name"))
                       .select_from(tasks.join(ud, ud.c.unit_id == tasks.c.unit_id))
                       .where(tasks.c.task_id == task_id)).mappings().first()
    if row is None:
        raise NotFound("任务「%s」不存在" % task_id, {"task_id": ["不存在"]})
    out = _task_out(row, today)
    out["list"] = dict(conn.execute(select(task_lists).where(
        task_lists.c.list_id == row["list_id"])).mappings().first())
    out["escalation_history"] = [dict(e) for e in conn.execute(
        select(task_escalations).where(task_escalations.c.task_id == task_id)
        .order_by(task_escalations.c.seq)).mappings()]
    return out


def list_tasks(conn, unit_id, include_subtree, status, list_id, overdue_only, meeting_id,
               limit, offset, today, soon_days=SOON_DAYS) -> dict:
    """Tasks whose responsible unit is ``unit_id`` (or below it), soonest deadline first."""
    unit = _unit(conn, unit_id)
    where = [startswith(ud.c.path, unit["path"]) if include_subtree else tasks.c.unit_id == unit_id]
    if status:
        where.append(tasks.c.status == status)
    if list_id:
        where.append(tasks.c.list_id == list_id)
    if meeting_id:
        where.append(tasks.c.meeting_id == meeting_id)
    if overdue_only:
        where += [tasks.c.status == "open", tasks.c.deadline < today]
    base = tasks.join(ud, ud.c.unit_id == tasks.c.unit_id)
    total = conn.execute(select(func.count()).select_from(base).where(*where)).scalar()
    rows = conn.execute(select(tasks, ud.c.name.label("unit_name")).select_from(base).where(*where)
                        .order_by(tasks.c.deadline, tasks.c.task_id).limit(limit).offset(offset)
                        ).mappings().all()
    items = [_task_out(r, today, soon_days) for r in rows]
    # the three colours over every matching task (not only this page)
    soon = (date.fromisoformat(today) + timedelta(days=soon_days)).isoformat()
    is_open = tasks.c.status == "open"
    counted = conn.execute(select(
        func.sum(case((is_open & (tasks.c.deadline < today), 1), else_=0)),
        func.sum(case((is_open & (tasks.c.deadline >= today) & (tasks.c.deadline <= soon), 1),
                      else_=0))).select_from(base).where(*where)).one()
    red, yellow = int(counted[0] or 0), int(counted[1] or 0)
    return {"unit_id": unit_id, "total": total, "items": items,
            "colours": {"red": red, "yellow": yellow, "green": total - red - yellow}}


def list_task_lists(conn, unit_id, limit, offset) -> dict:
    """Task lists issued by ``unit_id`` or a unit below it, newest first, with progress."""
    unit = _unit(conn, unit_id)
    base = task_lists.join(ud, ud.c.unit_id == task_lists.c.issuer_unit_id)
    where = startswith(ud.c.path, unit["path"])
    rows = conn.execute(select(task_lists, ud.c.name.label("issuer_name")).select_from(base)
                        .where(where).order_by(task_lists.c.issued_on.desc(), task_lists.c.list_id)
                        .limit(limit).offset(offset)).mappings().all()
    out = []
    for row in rows:
        counts = dict(conn.execute(select(tasks.c.status, func.count()).where(
            tasks.c.list_id == row["list_id"]).group_by(tasks.c.status)).all())
        out.append(dict(row, by_status=counts))
    return {"unit_id": unit_id, "lists": out}


def meeting(conn, meeting_id: str, today: str) -> dict:
    row = conn.execute(select(meetings).where(meetings.c.meeting_id == meeting_id)
                       ).mappings().first()
    if row is None:
        raise NotFound("会议「%s」不存在" % meeting_id, {"meeting_id": ["不存在"]})
    out = dict(row)
    names = _names(conn, out["unit_ids"] + [out["convener_unit_id"]])
    out["units"] = [{"unit_id": u, "name": names.get(u, u)} for u in out["unit_ids"]]
    out["convener_name"] = names.get(out["convener_unit_id"], out["convener_unit_id"])
    by_task = {t["task_id"]: t for t in (
        _task_out(r, today) for r in conn.execute(
            select(tasks).where(tasks.c.meeting_id == meeting_id)).mappings())}
    out["decisions"] = [dict(d, unit_name=names.get(d["unit_id"], d["unit_id"]),
                             task=by_task.get(d["task_id"]))
                        for d in conn.execute(select(meeting_decisions).where(
                            meeting_decisions.c.meeting_id == meeting_id)
                            .order_by(meeting_decisions.c.seq)).mappings()]
    return out


def list_meetings(conn, unit_id, limit, offset) -> dict:
    """Meetings convened by ``unit_id`` or a unit below it, newest first."""
    unit = _unit(conn, unit_id)
    base = meetings.join(ud, ud.c.unit_id == meetings.c.convener_unit_id)
    rows = conn.execute(select(meetings, ud.c.name.label("convener_name")).select_from(base)
                        .where(startswith(ud.c.path, unit["path"]))
                        .order_by(meetings.c.held_on.desc(), meetings.c.meeting_id)
                        .limit(limit).offset(offset)).mappings().all()
    out = []
    for row in rows:
        done = conn.execute(select(func.count()).select_from(tasks).where(
            tasks.c.meeting_id == row["meeting_id"], tasks.c.status == "accepted")).scalar()
        out.append(dict(row, decisions_done=done))
    return {"unit_id": unit_id, "meetings": out}


# -- 专项整治 / 专项治理 ----------------------------------------------------------------------------
campaigns = Table(
    "sv_campaigns", metadata,
    Column("campaign_id", String(100), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("scope_unit_id", String(100), nullable=False, index=True),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("launched_on", String(10), nullable=False),
    Column("closed_on", String(10)),
    Column("summary", Text),
    Column("findings", Integer, nullable=False, default=0),
)

campaign_findings = Table(
    "sv_campaign_findings", metadata,
    Column("campaign_id", String(100), primary_key=True),
    Column("finding_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False),
    Column("four_winds", String(30)),
    Column("found_on", String(10), nullable=False),
    Column("tagged_on", String(10), nullable=False),
)


class Campaigns(Projection):
    name = "sv_campaigns"
    tables = (campaigns, campaign_findings)

    @on("Campaign.Launched")
    def launched(self, w, e):
        p = e.payload
        w.insert(campaigns, campaign_id=p["campaign_id"], title=p["title"], kind=p["kind"],
                 scope_unit_id=p["scope_unit_id"], starts_on=p["starts_on"], ends_on=p["ends_on"],
                 categories=p["categories"], description=p["description"],
                 launched_on=p["launched_on"], findings=0)

    @on("Campaign.FindingTagged")
    def tagged(self, w, e):
        p = e.payload
        w.insert(campaign_findings, campaign_id=p["campaign_id"], finding_id=p["finding_id"],
                 unit_id=p["unit_id"], four_winds=p["four_winds"], found_on=p["found_on"],
                 tagged_on=p["tagged_on"])
        row = w.get(campaigns, campaign_id=p["campaign_id"])
        w.update(campaigns, {"campaign_id": p["campaign_id"]}, findings=row["findings"] + 1)

    @on("Campaign.Closed")
    def closed(self, w, e):
        p = e.payload
        w.update(campaigns, {"campaign_id": p["campaign_id"]}, closed_on=p["closed_on"],
                 summary=p["summary"])


CAMPAIGNS = Campaigns()


def _campaign_row(conn, campaign_id: str) -> dict:
    row = conn.execute(select(campaigns, ud.c.name.label("scope_name"))
                       .select_from(campaigns.join(ud, ud.c.unit_id == campaigns.c.scope_unit_id))
                       .where(campaigns.c.campaign_id == campaign_id)).mappings().first()
    if row is None:
        raise NotFound("专项「%s」不存在" % campaign_id, {"campaign_id": ["不存在"]})
    return dict(row)


def campaign_progress(conn, campaign_id: str, today: str, soon_days: int = SOON_DAYS) -> dict:
    """A campaign and how far its findings' rectifications have come: totals, per 四风
    category and per unit (found / closed / open / overdue), each finding in colour."""
    r = rectifications
    out = _campaign_row(conn, campaign_id)
    out["state"] = campaign_state(out["starts_on"], out["ends_on"], out["closed_on"] is not None,
                                  today)
    rows = conn.execute(
        select(campaign_findings.c.finding_id, campaign_findings.c.four_winds,
               campaign_findings.c.found_on, r.c.description, r.c.severity, r.c.status,
               r.c.deadline, r.c.submitted_on, r.c.unit_id.label("owner_unit_id"),
               campaign_findings.c.unit_id, ud.c.name.label("unit_name"))
        .select_from(campaign_findings
                     .join(r, r.c.rect_id == campaign_findings.c.finding_id)
                     .join(ud, ud.c.unit_id == campaign_findings.c.unit_id))
        .where(campaign_findings.c.campaign_id == campaign_id)
        .order_by(r.c.deadline, campaign_findings.c.finding_id)).mappings().all()

    def blank():
        return {"found": 0, "closed": 0, "open": 0, "overdue": 0}
    totals, by_category, by_unit, items = blank(), {}, {}, []
    for row in rows:
        item = dict(row)
        item["colour"] = campaign_item_colour(row["deadline"], row["status"], today, soon_days)
        item["days_overdue"] = (days_overdue(row["deadline"], row["status"], row["submitted_on"],
                                             today) if row["deadline"] else 0)
        items.append(item)
        cat = by_category.setdefault(row["four_winds"] or "", blank())
        unit = by_unit.setdefault(row["unit_id"], dict(blank(), unit_id=row["unit_id"],
                                                       name=row["unit_name"]))
        for bucket in (totals, cat, unit):
            bucket["found"] += 1
            if row["status"] == "closed":
                bucket["closed"] += 1
            else:
                bucket["open"] += 1
                if item["colour"] == "red":
                    bucket["overdue"] += 1
    rate = lambda b: round(b["closed"] / b["found"], 4) if b["found"] else None  # noqa: E731
    for b in [totals, *by_category.values(), *by_unit.values()]:
        b["closure_rate"] = rate(b)
    out.update(totals=totals, items=items,
               by_category=[dict(v, four_winds=k or None) for k, v in sorted(by_category.items())],
               by_unit=sorted(by_unit.values(), key=lambda u: (-u["overdue"], -u["open"], u["name"])))
    return out


def list_campaigns(conn, unit_id: str, today: str, limit: int, offset: int) -> dict:
    """Campaigns whose scope is ``unit_id``, a unit above it or below it (a district's
    campaign concerns every unit in it), newest first, with their state."""
    unit = _unit(conn, unit_id)
    above = [u for u in unit["path"].strip("/").split("/") if u]
    scope = ud.alias("scope")
    rows = conn.execute(
        select(campaigns, scope.c.name.label("scope_name"))
        .select_from(campaigns.join(scope, scope.c.unit_id == campaigns.c.scope_unit_id))
        .where(startswith(scope.c.path, unit["path"]) | campaigns.c.scope_unit_id.in_(above))
        .order_by(campaigns.c.starts_on.desc(), campaigns.c.campaign_id)
        .limit(limit).offset(offset)).mappings().all()
    out = []
    for row in rows:
        closed = conn.execute(select(func.count()).select_from(
            campaign_findings.join(rectifications,
                                   rectifications.c.rect_id == campaign_findings.c.finding_id))
            .where(campaign_findings.c.campaign_id == row["campaign_id"],
                   rectifications.c.status == "closed")).scalar()
        out.append(dict(row, closed=closed,
                        state=campaign_state(row["starts_on"], row["ends_on"],
                                             row["closed_on"] is not None, today)))
    return {"unit_id": unit_id, "campaigns": out}


def untagged_findings(conn, campaign_id: str, limit: int = 200) -> list[dict]:
    """Findings in a campaign's scope and period not yet tagged to it (for the picker)."""
    r = rectifications
    c = _campaign_row(conn, campaign_id)
    scope = _unit(conn, c["scope_unit_id"])
    tagged = select(campaign_findings.c.finding_id).where(
        campaign_findings.c.campaign_id == campaign_id)
    return [dict(x) for x in conn.execute(
        select(r.c.rect_id.label("finding_id"), r.c.description, r.c.found_on,
               ud.c.name.label("unit_name"))
        .select_from(r.join(ud, ud.c.unit_id == r.c.finding_unit_id))
        .where(startswith(ud.c.path, scope["path"]), r.c.found_on >= c["starts_on"],
               r.c.found_on <= c["ends_on"], r.c.rect_id.not_in(tagged))
        .order_by(r.c.found_on.desc()).limit(limit)).mappings()]


# -- 重点岗位 / 一把手 -------------------------------------------------------------------------------
key_posts = Table(
    "sv_key_posts", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("post", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("flagged_on", String(10), nullable=False),
)

key_post_inspections = Table(
    "sv_key_post_inspections", metadata,
    Column("unit_id", String(100), primary_key=True),
    Column("post", String(200), primary_key=True),
    Column("inspection_id", String(100), primary_key=True),
    Column("focused_on", String(10), nullable=False),
)


class KeyPosts(Projection):
    name = "sv_key_posts"
    tables = (key_posts, key_post_inspections)

    @on("KeyPostRegister.PostFlagged")
    def flagged(self, w, e):
        p = e.payload
        w.upsert(key_posts, {"unit_id": p["unit_id"], "post": p["post"]}, kind=p["kind"],
                 reason=p["reason"], flagged_on=p["flagged_on"])

    @on("KeyPostRegister.FlagCleared")
    def cleared(self, w, e):
        w.delete(key_posts, unit_id=e.payload["unit_id"], post=e.payload["post"])

    @on("KeyPostRegister.InspectionFocused")
    def focused(self, w, e):
        p = e.payload
        w.insert(key_post_inspections, unit_id=p["unit_id"], post=p["post"],
                 inspection_id=p["inspection_id"], focused_on=p["focused_on"])


KEY_POSTS = KeyPosts()


def _flagged(conn, unit_id, include_subtree, kind):
    unit = _unit(conn, unit_id)
    where = [startswith(ud.c.path, unit["path"]) if include_subtree
             else key_posts.c.unit_id == unit_id]
    if kind:
        where.append(key_posts.c.kind == kind)
    return where


def list_key_posts(conn, unit_id, include_subtree, kind) -> dict:
    """Flagged posts with their risk points (active, by level) and the inspections that
    looked at them."""
    from services.supervision.projections import inspections, risk_points
    where = _flagged(conn, unit_id, include_subtree, kind)
    rows = conn.execute(select(key_posts, ud.c.name.label("unit_name"))
                        .select_from(key_posts.join(ud, ud.c.unit_id == key_posts.c.unit_id))
                        .where(*where).order_by(ud.c.path, key_posts.c.kind.desc(),
                                                key_posts.c.post)).mappings().all()
    out = []
    for row in rows:
        levels = dict(conn.execute(
            select(func.coalesce(risk_points.c.level, "unassessed"), func.count())
            .where(risk_points.c.unit_id == row["unit_id"], risk_points.c.post == row["post"],
                   risk_points.c.status == "active")
            .group_by(func.coalesce(risk_points.c.level, "unassessed"))).all())
        insp = conn.execute(
            select(inspections.c.inspection_id, inspections.c.title, inspections.c.planned_on,
                   inspections.c.status, inspections.c.percent)
            .select_from(key_post_inspections.join(
                inspections, inspections.c.inspection_id == key_post_inspections.c.inspection_id))
            .where(key_post_inspections.c.unit_id == row["unit_id"],
                   key_post_inspections.c.post == row["post"])
            .order_by(inspections.c.planned_on.desc())).mappings().all()
        out.append(dict(row, risk_levels=levels, risk_points=sum(levels.values()),
                        inspections=[dict(i) for i in insp]))
    return {"unit_id": unit_id, "posts": out}


def key_post_risk_points(conn, unit_id, include_subtree, kind) -> dict:
    """Active risk points on flagged posts, highest weighted score first."""
    from services.supervision.projections import risk_points as rp
    where = _flagged(conn, unit_id, include_subtree, kind) + [rp.c.status == "active"]
    rows = conn.execute(
        select(rp.c.risk_point_id, rp.c.unit_id, rp.c.post, rp.c.description, rp.c.category,
               rp.c.level, rp.c.weighted_score, key_posts.c.kind, ud.c.name.label("unit_name"))
        .select_from(rp.join(key_posts, (key_posts.c.unit_id == rp.c.unit_id)
                             & (key_posts.c.post == rp.c.post))
                     .join(ud, ud.c.unit_id == rp.c.unit_id))
        .where(*where).order_by(rp.c.weighted_score.desc(), rp.c.risk_point_id)).mappings().all()
    return {"unit_id": unit_id, "risk_points": [dict(r) for r in rows]}


def key_post_inspections_list(conn, unit_id, include_subtree, kind) -> dict:
    """Inspections focused on flagged posts, newest first."""
    from services.supervision.projections import inspections
    where = _flagged(conn, unit_id, include_subtree, kind)
    rows = conn.execute(
        select(inspections.c.inspection_id, inspections.c.title, inspections.c.planned_on,
               inspections.c.status, inspections.c.percent, inspections.c.findings,
               key_post_inspections.c.post, key_posts.c.kind, ud.c.name.label("unit_name"))
        .select_from(key_post_inspections
                     .join(key_posts, (key_posts.c.unit_id == key_post_inspections.c.unit_id)
                           & (key_posts.c.post == key_post_inspections.c.post))
                     .join(inspections, inspections.c.inspection_id
                           == key_post_inspections.c.inspection_id)
                     .join(ud, ud.c.unit_id == key_post_inspections.c.unit_id))
        .where(*where).order_by(inspections.c.planned_on.desc())).mappings().all()
    return {"unit_id": unit_id, "inspections": [dict(r) for r in rows]}


def key_post_assessment(conn, round_id: str) -> list[dict]:
    """政治生态研判: per unit of a round, the supervision of its 一把手 and key posts - how
    many are flagged, their active risk points by level, the inspections in the round's
    period that looked at them and how many of those are completed."""
    from services.supervision.domain import period_bounds
    from services.supervision.projections import inspections, risk_points as rp, round_units, rounds
    rnd = conn.execute(select(rounds.c.period).where(rounds.c.round_id == round_id)).first()
    if rnd is None:
        raise NotFound("研判轮次「%s」不存在" % round_id, {"round_id": ["不存在"]})
    start, end = (d.isoformat() for d in period_bounds(rnd.period))
    out = []
    for (unit_id, name) in conn.execute(
            select(round_units.c.unit_id, ud.c.name)
            .select_from(round_units.join(ud, ud.c.unit_id == round_units.c.unit_id))
            .where(round_units.c.round_id == round_id).order_by(ud.c.path)).all():
        posts = dict(conn.execute(select(key_posts.c.post, key_posts.c.kind)
                                  .where(key_posts.c.unit_id == unit_id)).all())
        levels = dict(conn.execute(
            select(func.coalesce(rp.c.level, "unassessed"), func.count())
            .select_from(rp.join(key_posts, (key_posts.c.unit_id == rp.c.unit_id)
                                 & (key_posts.c.post == rp.c.post)))
            .where(rp.c.unit_id == unit_id, rp.c.status == "active")
            .group_by(func.coalesce(rp.c.level, "unassessed"))).all())
        insp = conn.execute(
            select(inspections.c.inspection_id, inspections.c.status).distinct()
            .select_from(key_post_inspections.join(
                inspections, inspections.c.inspection_id == key_post_inspections.c.inspection_id))
            .where(key_post_inspections.c.unit_id == unit_id,
                   inspections.c.planned_on >= start, inspections.c.planned_on <= end)).all()
        out.append({"unit_id": unit_id, "name": name,
                    "top_leader_posts": sorted(p for p, k in posts.items() if k == "top_leader"),
                    "key_posts": sorted(p for p, k in posts.items() if k == "key_post"),
                    "risk_high": levels.get("high", 0), "risk_medium": levels.get("medium", 0),
                    "risk_low": levels.get("low", 0), "risk_unassessed": levels.get("unassessed", 0),
                    "inspections": len(insp),
                    "inspections_completed": sum(1 for i in insp if i.status == "completed")})
    return out
