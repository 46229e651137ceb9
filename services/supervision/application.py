"""The supervision service layer: each command and query, its input schema and who may run it.

Roles (see docs/supervision.md for the full table):
* inspectors (``inspector``, and ``node-admin``) plan and score inspections, record
  findings, verify or reject rectification evidence, run assessment rounds;
* a ``unit-admin`` works only inside their unit subtree: submits evidence for the
  rectifications their units own, identifies and assesses their risk points, records
  screenings - and never verifies anything;
* 四种形态 records are the ``inspector`` role's alone (a node-admin without it is refused);
* any role may read dashboards, lists and the counts of the four forms.

A command loads what its rules need (its aggregates with ``uow.get``, the read models'
facts through the read port ``uow.supervision``: ``queries.SupervisionReadPort``), lets
the domain decide (every rule is in ``domain.py``: the aggregates' methods and the pure
functions they are given the facts for), saves and answers. Queries read with
``queries.py``. The practices' operations (跟踪问效, 推进会, 专项, 重点岗位; 群众监督) are
sections of this module, after the service's own.
"""
from __future__ import annotations

from datetime import date, datetime, time

from services.supervision import queries as q
from services.supervision import schemas as s
from services.supervision.domain import (
    DEFAULT_CHECKLIST_ID, DEFAULT_INDICATOR_SYSTEM_ID, AssessmentRound, Campaign, Checklist,
    DisciplineCounts, DisciplineRecord, DistrictIndicators, EducationFacts, Finding,
    IndicatorSystem, Inspection, KeyPostRegister, Meeting, MicroPowerWatch, PublicReport,
    Rectification, RiskPoint, ScreeningSchedule, Task, TaskList, UnitIndicators, due_escalations,
    education_payload, follow_new_unit, in_subtree, inbox_scope, indicator_months,
    ladder_targets, parse_date, period_bounds, require_active, require_not_future,
    require_owner_within,
)
from services.supervision.projections import PROJECTIONS, ROUND_PROJECTIONS, VIEW_PROJECTIONS
from services.supervision.settings import settings_from_config
from shared.app import Application, new_id
from shared.auth import ANY_ROLE, INSPECTOR, NODE_ADMIN, UNIT_ADMIN, VIEWER, WRITERS
from shared.events import iso_to_us
from shared.projections import as_of_view
from shared.store import EventStore, stream_history
from shared.unittree import directory_path

app = Application("supervision", unit_path=directory_path, settings=settings_from_config)
app.projections = PROJECTIONS
app.read_port("supervision", q.SupervisionReadPort)

INSPECTORS = (NODE_ADMIN, INSPECTOR)
RISK_WRITERS = (NODE_ADMIN, UNIT_ADMIN, INSPECTOR)
DISCIPLINE = (INSPECTOR,)  # deliberately not node-admin: see docs/supervision.md
READERS = (NODE_ADMIN, UNIT_ADMIN, INSPECTOR, VIEWER)


# -- helpers --------------------------------------------------------------------------------
def _today(uow) -> str:
    """Today in the users' time zone, from the unit of work's (controllable) clock."""
    return uow.now.astimezone(uow.rt.settings.tz).date().isoformat()


def _today_of(conn, rt) -> str:
    """The same for a query (``runtime=True``) or a phased command: the runtime's clock."""
    return rt.clock().astimezone(rt.settings.tz).date().isoformat()


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _owner(key: str):
    """A scope function: the unit that owns the record named by ``key`` (404 if none)."""
    def scope(conn, data):
        return q.owner_unit(conn, key, data[key])
    scope.__name__ = "%s_owner" % key
    return scope


_inspection_unit = _owner("inspection_id")
_rect_unit = _owner("rect_id")
_risk_unit = _owner("risk_point_id")
_discipline_unit = _owner("record_id")


def _load_or_default(uow, cls, id_: str):
    """The aggregate, or the built-in default (``cls.default_for``: recorded as its first
    event) when the district has not defined its own yet. Returns (aggregate, created)."""
    if uow.exists(cls, id_):
        return uow.get(cls, id_), False
    return cls.default_for(id_), True


def as_of_us(value: str, tz) -> int:
    """A date means the end of that day in the users' time zone; a date-time is exact."""
    if len(value) == 10:
        day = date.fromisoformat(value)
        dt = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=tz)
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return iso_to_us(dt.isoformat())


def _as_of_day(value: str, tz) -> str:
    """The users' calendar day an ``as_of`` value falls on."""
    if len(value) == 10:
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz).date().isoformat()


def _maybe_as_of(conn, rt, d, projections, fn):
    """Run ``fn(conn)`` on the live read models, or on the models rebuilt from the log up
    to ``as_of`` (the same query code either way; the day ends in the node's time zone)."""
    if not d.get("as_of"):
        return fn(conn)
    until = as_of_us(d["as_of"], rt.settings.tz)
    with as_of_view(EventStore(conn.engine), projections, until_us=until) as c:
        out = fn(c)
    out["as_of"] = d["as_of"]
    return out


# -- checklists -------------------------------------------------------------------------------
@app.command("revise_checklist", s.ReviseChecklist, roles=(NODE_ADMIN,))
def revise_checklist(uow, d):
    """Add or change criteria: a new checklist version. Inspections already planned keep
    the version they were planned with. A new checklist id starts at version 1."""
    cid = d["checklist_id"]
    if uow.exists(Checklist, cid):
        checklist = uow.get(Checklist, cid)
    elif cid == DEFAULT_CHECKLIST_ID:
        checklist = Checklist.default()
    else:
        checklist = Checklist.define(cid, d["title"] or cid, d["criteria"])
        uow.save(checklist)
        return {"checklist_id": cid, "version": checklist.current}
    checklist.revise(d["title"] or checklist.title, d["criteria"], d["note"])
    uow.save(checklist)
    return {"checklist_id": cid, "version": checklist.current}


@app.query("get_checklist", s.ChecklistRef)
def get_checklist(conn, d, actor):
    """A checklist version (the latest by default), with the list of its versions."""
    return q.checklist_or_default(conn, d["checklist_id"], d["version"])


# -- inspections ---------------------------------------------------------------------------------
def _plan(uow, unit_id, d, checklist, inspection_id=None, batch_id=None):
    require_active(uow.supervision.unit(unit_id))
    iid = new_id(inspection_id)
    return Inspection.plan(iid, unit_id, d["title"], d["planned_on"].isoformat(), checklist,
                           batch_id, d["inspectors"], taken=uow.exists(Inspection, iid))


@app.command("plan_inspection", s.PlanInspection, roles=INSPECTORS, scope="unit_id", status=201)
def plan_inspection(uow, d):
    """检查督导: plan a visit to one unit under the current checklist version."""
    checklist, created = _load_or_default(uow, Checklist, d["checklist_id"])
    insp = _plan(uow, d["unit_id"], d, checklist, d["inspection_id"])
    uow.save(*([checklist] if created else []), insp)
    return uow.supervision.inspection(insp.id)


@app.command("plan_inspection_batch", s.PlanInspectionBatch, roles=INSPECTORS, status=201)
def plan_inspection_batch(uow, d):
    """Plan the same inspection for a batch of units (one inspection each, one batch id)."""
    checklist, created = _load_or_default(uow, Checklist, d["checklist_id"])
    batch_id = new_id(d["batch_id"])
    planned = [_plan(uow, unit_id, d, checklist, batch_id=batch_id) for unit_id in d["unit_ids"]]
    uow.save(*([checklist] if created else []), *planned)
    return {"batch_id": batch_id, "checklist_version": checklist.current,
            "inspections": [{"inspection_id": i.id, "unit_id": i.unit_id} for i in planned]}


@app.command("score_inspection", s.ScoreInspection, roles=INSPECTORS, scope=_inspection_unit)
def score_inspection(uow, d):
    """Score criteria (0..max of the version planned with); a deduction needs a note."""
    insp = uow.get(Inspection, d["inspection_id"])
    insp.score(d["scores"])
    uow.save(insp)
    return {"inspection_id": insp.id, "scores": insp.scores}


@app.command("give_feedback", s.GiveFeedback, roles=INSPECTORS, scope=_inspection_unit)
def give_feedback(uow, d):
    """现场反馈: record who at the unit was told about which findings, and when."""
    insp = uow.get(Inspection, d["inspection_id"])
    insp.give_feedback(d["told"], d["told_at"].isoformat(), d["finding_ids"], d["summary"])
    uow.save(insp)
    return {"inspection_id": insp.id, "fed_back": insp.fed_back}


@app.command("complete_inspection", s.InspectionRef, roles=INSPECTORS, scope=_inspection_unit)
def complete_inspection(uow, d):
    """Close the visit: every criterion scored, every finding fed back on site."""
    insp = uow.get(Inspection, d["inspection_id"])
    insp.complete(_today(uow))
    uow.save(insp)
    return uow.supervision.inspection(insp.id)


@app.command("cancel_inspection", s.CancelInspection, roles=INSPECTORS, scope=_inspection_unit)
def cancel_inspection(uow, d):
    insp = uow.get(Inspection, d["inspection_id"])
    insp.cancel(d["reason"])
    uow.save(insp)
    return {"inspection_id": insp.id, "status": insp.status}


@app.query("get_inspection", s.InspectionRef, roles=READERS, scope=_inspection_unit)
def get_inspection(conn, d, actor):
    return q.inspection(conn, d["inspection_id"])


@app.query("list_inspections", s.ListInspections, roles=READERS, scope="unit_id")
def list_inspections(conn, d, actor):
    return q.list_inspections(conn, d["unit_id"], d["include_subtree"], d["status"], d["limit"],
                              d["offset"])


# -- findings and rectification ------------------------------------------------------------------------
@app.command("record_finding", s.RecordFinding, roles=INSPECTORS, scope="unit_id", status=201)
def record_finding(uow, d):
    """A finding from any source; it becomes a rectification (限期整改) at once."""
    today = _today(uow)
    unit = require_active(uow.supervision.unit(d["unit_id"]))
    owner_id = d["owner_unit_id"] or d["unit_id"]
    owner = require_active(uow.supervision.unit(owner_id), "owner_unit_id")
    require_owner_within(unit, owner)
    found_on = _iso(d["found_on"]) or today
    require_not_future(found_on, today, "found_on")
    finding_id = new_id(d["finding_id"])
    finding = Finding.record(finding_id, d["unit_id"], d["source"], d["description"],
                             d["severity"], found_on, d["inspection_id"], d["source_ref"],
                             d["category"], taken=uow.exists(Finding, finding_id))
    rect = Rectification.open(finding, owner_id, d["responsible_role"], d["deadline"].isoformat(),
                              found_on, d["requirement"])
    also = []
    if d["inspection_id"]:
        insp = uow.get(Inspection, d["inspection_id"])
        insp.note_finding(finding_id, d["unit_id"])
        also.append(insp)
    uow.save(finding, rect, *also)
    return uow.supervision.rectification(finding_id, today)


@app.command("submit_evidence", s.SubmitEvidence, roles=WRITERS, scope=_rect_unit)
def submit_evidence(uow, d):
    """整改佐证: references (path + sha256) to files in the evidence store, never the files.
    A unit-admin may do this only for rectifications owned inside their subtree."""
    rect = uow.get(Rectification, d["rect_id"])
    rect.submit_evidence([dict(e) for e in d["evidence"]], d["note"], _today(uow),
                         uow.actor.user_id)
    uow.save(rect)
    return {"rect_id": rect.id, "status": rect.status}


@app.command("verify_rectification", s.VerifyRectification, roles=INSPECTORS, scope=_rect_unit)
def verify_rectification(uow, d):
    """验收销号: accept the evidence and close. Not by whoever submitted it."""
    rect = uow.get(Rectification, d["rect_id"])
    rect.verify(_today(uow), uow.actor.user_id, d["note"])
    uow.save(rect)
    return {"rect_id": rect.id, "status": rect.status}


@app.command("reject_rectification", s.RejectRectification, roles=INSPECTORS, scope=_rect_unit)
def reject_rectification(uow, d):
    """Send it back to open with the reason (整改不到位)."""
    rect = uow.get(Rectification, d["rect_id"])
    rect.reject(d["reason"], _today(uow), uow.actor.user_id)
    uow.save(rect)
    return {"rect_id": rect.id, "status": rect.status}


@app.command("reopen_rectification", s.ReopenRectification, roles=INSPECTORS, scope=_rect_unit)
def reopen_rectification(uow, d):
    """A closed rectification comes back (the problem recurred), with a new deadline."""
    rect = uow.get(Rectification, d["rect_id"])
    rect.reopen(d["reason"], d["deadline"].isoformat(), _today(uow))
    uow.save(rect)
    return {"rect_id": rect.id, "status": rect.status, "deadline": rect.deadline}


@app.command("extend_deadline", s.ExtendDeadline, roles=INSPECTORS, scope=_rect_unit)
def extend_deadline(uow, d):
    """延期: a later deadline with a reason; the escalation ladder starts again from it."""
    rect = uow.get(Rectification, d["rect_id"])
    rect.extend_deadline(d["deadline"].isoformat(), d["reason"], _today(uow))
    uow.save(rect)
    return {"rect_id": rect.id, "deadline": rect.deadline}


def _ladder_targets(port: q.SupervisionReadPort, owner_unit_id: str, settings,
                    cache: dict) -> dict:
    """Who each ladder level reaches for a record owned by ``owner_unit_id``
    (``domain.ladder_targets``), worked out once per owner and sweep."""
    if owner_unit_id not in cache:
        cache[owner_unit_id] = ladder_targets(owner_unit_id, port.path_units(owner_unit_id),
                                              settings.district_office_unit_id)
    return cache[owner_unit_id]


PUBLISH_BATCH = 50  # records per write: the writer lock is held for one batch at a time


@app.command("detect_overdue", s.Empty, roles=INSPECTORS, phased=True)
def detect_overdue(steps, d):
    """Run by the timer: overdue rectifications and screenings become events, and every
    escalation step now due is taken. Running it twice changes nothing the second time.
    Phased (shared.app.Steps): what is due and whom each ladder level reaches are worked
    out on a read connection; the records are then loaded, decided and appended
    ``PUBLISH_BATCH`` at a time, each checked again under the lock."""
    with steps.read() as conn:
        reads = q.SupervisionReadPort(conn)
        settings = steps.rt.settings
        today = _today_of(conn, steps.rt)
        day = parse_date(today)
        cache, todo = {}, []  # (record class, id)
        for row in reads.overdue_rectifications(today):
            # skip without loading what has nothing new due (most rows on most days)
            days = (day - parse_date(row.deadline)).days
            if row.overdue and not due_escalations(settings.ladder, days, row.escalation_step):
                continue
            todo.append((Rectification, row.rect_id))
            _ladder_targets(reads, row.unit_id, settings, cache)  # whom each ladder level reaches
        todo.extend((ScreeningSchedule, unit_id) for unit_id in reads.screenings_due(today))
        todo.extend((RiskPoint, rp_id) for rp_id in reads.reviews_overdue(today))
    detected = escalated = 0
    flagged = {ScreeningSchedule: 0, RiskPoint: 0}  # records flagged by the date alone
    for start in range(0, len(todo), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:
            reads = app.bind_ports(uow).supervision
            changed = []
            for cls, rid in todo[start:start + PUBLISH_BATCH]:
                agg = uow.get(cls, rid)
                if cls in flagged:
                    n = (agg.detect_overdue(today) if cls is ScreeningSchedule
                         else agg.flag_overdue_reviews(today))
                    if n:
                        flagged[cls] += n
                        changed.append(agg)
                    continue
                before = agg.overdue
                # a unit that took the rectification over since is looked up now
                if agg.detect_overdue(today, settings.ladder,
                                      _ladder_targets(reads, agg.unit_id, settings, cache),
                                      reads.referral_case(rid)):
                    detected += not before
                    escalated += sum(1 for e in agg.pending_events
                                     if e.event_type == "Rectification.Escalated")
                    changed.append(agg)
            if changed:
                uow.save(*changed)
    return {"checked_on": today, "overdue_detected": detected, "escalations": escalated,
            "screenings_flagged": flagged[ScreeningSchedule],
            "control_reviews_flagged": flagged[RiskPoint]}


@app.query("get_rectification", s.RectRef, roles=READERS, scope=_rect_unit, runtime=True)
def get_rectification(conn, d, actor, rt):
    """A finding with its rectification, evidence references and escalations."""
    return q.rectification(conn, d["rect_id"], _today_of(conn, rt))


@app.query("list_rectifications", s.ListRectifications, roles=READERS, scope="unit_id",
           runtime=True)
def list_rectifications(conn, d, actor, rt):
    return q.list_rectifications(conn, d["unit_id"], d["include_subtree"], d["status"],
                                 d["source"], d["limit"], d["offset"], _today_of(conn, rt))


@app.query("rectification_overview", s.RectificationOverview, roles=READERS, scope="unit_id",
           runtime=True)
def rectification_overview(conn, d, actor, rt):
    """工作台: a subtree's open rectifications counted by colour, the most urgent, the worst units.

    Colours: overdue / due within ``soon_days`` / on course, counted by the database over
    the whole subtree; ``limit`` most urgent (earliest deadline), ``units_limit`` units
    with the most overdue then due soon."""
    return q.rectification_overview(conn, d["unit_id"], _today_of(conn, rt), d["soon_days"],
                                    d["limit"], d["units_limit"])


@app.query("rectification_board", s.RectificationBoard, roles=READERS, scope="unit_id",
           runtime=True)
def rectification_board(conn, d, actor, rt):
    """整改看板: per status its count, its colours and one page of its rectifications.

    Open and awaiting ones earliest deadline first, closed ones latest verified first;
    ``status`` with ``offset`` pages one column."""
    return q.rectification_board(conn, d["unit_id"], _today_of(conn, rt), d["soon_days"],
                                 d["status"], d["limit"], d["offset"])


@app.query("overdue_list", s.OverdueList, roles=READERS, scope="unit_id", runtime=True)
def overdue_list(conn, d, actor, rt):
    """Overdue rectifications in a subtree, oldest deadline first, with their ladder step;
    days overdue counted to today (to the ``as_of`` day for a past view)."""
    today = _as_of_day(d["as_of"], rt.settings.tz) if d.get("as_of") else _today_of(conn, rt)
    return _maybe_as_of(conn, rt, d, VIEW_PROJECTIONS, lambda c: q.overdue_list(
        c, d["unit_id"], d["level"], d["limit"], d["offset"], today))


@app.query("escalation_inbox", s.EscalationInbox, roles=READERS, runtime=True)
def escalation_inbox(conn, d, actor, rt):
    """The escalation ladder's inbox: one item per rung reached (owner unit, unit head and
    纪检委员, district office) for the unit that rung reaches, while the rectification is
    not closed or the 跟踪问效 task not accepted/cancelled (``kind``); ``days_overdue``
    counted to today. A unit-admin sees their subtree's."""
    unit_id = d["unit_id"]
    scope_path, exact = inbox_scope(
        unit_id, q.unit_path(conn, unit_id) if unit_id is not None else None, d["include_subtree"],
        scoped=bool(actor.unit_scope),
        scope_path=q.unit_path(conn, actor.unit_scope) if actor.unit_scope else None,
        privileged=actor.has(NODE_ADMIN, INSPECTOR, VIEWER), unit_admin=actor.has(UNIT_ADMIN))
    out = q.escalation_inbox(conn, scope_path, exact, d["limit"], _today_of(conn, rt))
    out["unit_id"] = d["unit_id"]
    return out


# -- integrity-risk points -------------------------------------------------------------------------------
@app.command("identify_risk_point", s.IdentifyRiskPoint, roles=RISK_WRITERS, scope="unit_id",
             status=201)
def identify_risk_point(uow, d):
    """辨识: a risk point of a unit or one of its posts (optionally assessed at once)."""
    today = _today(uow)
    require_active(uow.supervision.unit(d["unit_id"]))
    rp_id = new_id(d["risk_point_id"])
    point = RiskPoint.identify(rp_id, d["unit_id"], d["description"], d["category"], d["post"],
                               d["micro_power_list_id"], d["micro_power_steps"], d["post_flags"],
                               today, taken=uow.exists(RiskPoint, rp_id))
    if d["likelihood"] is not None:
        point.assess(d["likelihood"], d["impact"], uow.rt.settings.risk_rules(), today,
                     uow.actor.user_id)
    uow.save(point)
    return uow.supervision.risk_point(rp_id)


@app.command("assess_risk_point", s.AssessRiskPoint, roles=RISK_WRITERS, scope=_risk_unit)
def assess_risk_point(uow, d):
    """评估 / 再评估: likelihood × impact on the configured scale; history is kept."""
    point = uow.get(RiskPoint, d["risk_point_id"])
    result = point.assess(d["likelihood"], d["impact"], uow.rt.settings.risk_rules(),
                          _today(uow), uow.actor.user_id, d["note"], d["post_flags"])
    uow.save(point)
    return {"risk_point_id": point.id, "assessments": point.assessments, **result}


@app.command("add_control", s.AddControl, roles=RISK_WRITERS, scope=_risk_unit, status=201)
def add_control(uow, d):
    """防控措施 with its owner post and review date."""
    point = uow.get(RiskPoint, d["risk_point_id"])
    control_id = new_id(d["control_id"])
    point.add_control(control_id, d["measure"], d["owner_post"], d["review_date"].isoformat(),
                      _today(uow))
    uow.save(point)
    return {"risk_point_id": point.id, "control_id": control_id}


@app.command("review_control", s.ReviewControl, roles=RISK_WRITERS, scope=_risk_unit)
def review_control(uow, d):
    point = uow.get(RiskPoint, d["risk_point_id"])
    point.review_control(d["control_id"], _today(uow), d["effective"], d["note"],
                         d["next_review_date"].isoformat())
    uow.save(point)
    return {"risk_point_id": point.id, "control_id": d["control_id"]}


@app.command("retire_risk_point", s.RetireRiskPoint, roles=RISK_WRITERS, scope=_risk_unit)
def retire_risk_point(uow, d):
    point = uow.get(RiskPoint, d["risk_point_id"])
    point.retire(d["reason"], _today(uow))
    uow.save(point)
    return {"risk_point_id": point.id, "status": "retired"}


@app.query("list_risk_points", s.ListRiskPoints, roles=READERS, scope="unit_id")
def list_risk_points(conn, d, actor):
    """Active risk points, highest weighted score first, with red / yellow / green."""
    return q.list_risk_points(conn, d["unit_id"], d["include_subtree"], d["level"], d["limit"],
                              d["offset"])


@app.query("get_risk_point", s.RiskPointRef, roles=READERS, scope=_risk_unit)
def get_risk_point(conn, d, actor):
    """A risk point with every assessment it has had and its controls."""
    return q.risk_point(conn, d["risk_point_id"])


# -- screening --------------------------------------------------------------------------------------------
def _establish(uow, unit_id: str, cadence: str | None, taken: bool = False) -> ScreeningSchedule:
    return ScreeningSchedule.establish(unit_id, cadence or uow.rt.settings.screening_cadence,
                                       _today(uow), taken=taken)


@app.command("establish_screening", s.EstablishScreening, roles=(NODE_ADMIN,), scope="unit_id",
             status=201)
def establish_screening(uow, d):
    """A screening schedule for a unit that has none (new units get one automatically)."""
    require_active(uow.supervision.unit(d["unit_id"]))
    sched = _establish(uow, d["unit_id"], d["cadence"], uow.exists(ScreeningSchedule, d["unit_id"]))
    uow.save(sched)
    return {"unit_id": sched.id, "cadence": sched.cadence, "due_on": sched.due_on}


@app.command("set_screening_cadence", s.SetCadence, roles=(NODE_ADMIN,), scope="unit_id")
def set_screening_cadence(uow, d):
    sched = uow.get(ScreeningSchedule, d["unit_id"])
    sched.change_cadence(d["cadence"], _today(uow))
    uow.save(sched)
    return {"unit_id": sched.id, "cadence": sched.cadence, "due_on": sched.due_on}


@app.command("record_screening", s.RecordScreening, roles=RISK_WRITERS, scope="unit_id")
def record_screening(uow, d):
    """排查 done: on time, late (missed periods counted) or an extra one."""
    today = _today(uow)
    require_active(uow.supervision.unit(d["unit_id"]))
    screened_on = _iso(d["screened_on"]) or today
    require_not_future(screened_on, today, "screened_on")
    if uow.exists(ScreeningSchedule, d["unit_id"]):
        sched, created = uow.get(ScreeningSchedule, d["unit_id"]), False
    else:  # a unit from before this service ran: its schedule starts with this screening
        sched, created = _establish(uow, d["unit_id"], None), True
    status = sched.record(screened_on, d["risk_points_reviewed"], d["new_risk_points"],
                          d["summary"])
    uow.save(sched)
    return {"unit_id": sched.id, "status": status, "next_due_on": sched.due_on,
            "schedule_created": created}


@app.query("control_reviews_due", s.SubtreeQuery, roles=READERS, scope="unit_id",
           runtime=True)
def control_reviews_due(conn, d, actor, rt):
    """防控措施 past their review date and not reviewed, oldest first, with the owner post
    and days overdue, and counts per owner unit (the home page's figures)."""
    return q.control_reviews_due(conn, d["unit_id"], d["include_subtree"], d["limit"],
                                 d["offset"], _today_of(conn, rt))


@app.query("screening_status", s.ScreeningStatus, roles=READERS, scope="unit_id")
def screening_status(conn, d, actor):
    """Screening schedules in a subtree, overdue ones first (the report's problem #1)."""
    return q.screening_status(conn, d["unit_id"], d["overdue_only"], d["limit"], d["offset"])


@app.query("micro_power_gaps", s.UnitRef, roles=READERS, scope="unit_id")
def micro_power_gaps(conn, d, actor):
    """Window and law-enforcement units that have not published a 微权力清单."""
    return q.micro_power_gaps(conn, d["unit_id"])


# -- unit views and lists -----------------------------------------------------------------------------------
@app.query("unit_view", s.UnitView, roles=READERS, scope="unit_id", runtime=True)
def unit_view(conn, d, actor, rt):
    """单位画像 / district dashboard: a unit and everything below it; ``as_of`` rebuilds it
    from the log as it stood at the end of that day. The figures cover the whole subtree;
    ``units`` is a page of ``limit`` rows (``next``: the cursor of the next page)."""
    return _maybe_as_of(conn, rt, d, VIEW_PROJECTIONS,
                        lambda c: q.unit_view(c, d["unit_id"], d["limit"], d["cursor"]))


@app.query("unit_lists", s.UnitLists, roles=READERS, scope="unit_id", runtime=True)
def unit_lists(conn, d, actor, rt):
    """问题清单 / 责任清单 / 整改清单 as data (GET /export/unit_lists for XLSX, PDF or CSV)."""
    return _maybe_as_of(conn, rt, d, VIEW_PROJECTIONS,
                        lambda c: q.unit_lists(c, d["unit_id"], d["include_subtree"]))


# -- political-ecology assessment ----------------------------------------------------------------------------
@app.command("revise_indicator_system", s.ReviseIndicatorSystem, roles=(NODE_ADMIN,))
def revise_indicator_system(uow, d):
    """A new version of the indicator system (dimensions, indicators, weights). Rounds
    already opened keep the version they were opened with."""
    sid = d["system_id"]
    effective = _iso(d["effective_from"]) or _today(uow)
    if uow.exists(IndicatorSystem, sid):
        system = uow.get(IndicatorSystem, sid)
    elif sid == DEFAULT_INDICATOR_SYSTEM_ID:
        system = IndicatorSystem.default()
    else:
        system = IndicatorSystem.define(sid, d["title"] or sid, d["dimensions"])
        uow.save(system)
        return {"system_id": sid, "version": system.current}
    system.revise(d["title"] or system.title, d["dimensions"], d["note"], effective)
    uow.save(system)
    return {"system_id": sid, "version": system.current}


@app.query("get_indicator_system", s.IndicatorSystemRef)
def get_indicator_system(conn, d, actor):
    return q.indicator_system_or_default(conn, d["system_id"], d["version"])


@app.command("open_round", s.OpenRound, roles=INSPECTORS, scope="unit_id", status=201)
def open_round(uow, d):
    """研判轮次 for a period, over the department-level units under ``unit_id`` (or the
    units listed), under the indicator system version in force now."""
    if d["unit_id"]:
        root = uow.supervision.unit(d["unit_id"])
        unit_ids = AssessmentRound.units_under(root["unit_id"],
                                               uow.supervision.subtree(root["unit_id"]))
    else:
        unit_ids = d["unit_ids"]
        uow.supervision.require_listed(unit_ids)
    system, created = _load_or_default(uow, IndicatorSystem, d["system_id"])
    round_id = new_id(d["round_id"])
    rnd = AssessmentRound.open(round_id, d["title"], d["period"], system, unit_ids, _today(uow),
                               taken=uow.exists(AssessmentRound, round_id))
    uow.save(*([system] if created else []), rnd)
    return {"round_id": round_id, "system_version": system.current, "units": len(unit_ids)}


@app.command("record_round_scores", s.RecordRoundScores, roles=INSPECTORS)
def record_round_scores(uow, d):
    """Manual scores (实地走访、个别座谈、查看资料) for indicators scored by hand."""
    rnd = uow.get(AssessmentRound, d["round_id"])
    rnd.record_scores(d["scores"], uow.actor.user_id)
    uow.save(rnd)
    return {"round_id": rnd.id, "recorded": len(d["scores"])}


@app.command("collect_round_facts", s.RoundRef, roles=INSPECTORS)
def collect_round_facts(uow, d):
    """Freeze what the platform knows for the round's period into the round."""
    rnd = uow.get(AssessmentRound, d["round_id"])
    facts = uow.supervision.round_facts(rnd.unit_ids, rnd.period, rnd.auto_indicators())
    rnd.collect_facts(facts, _today(uow))
    uow.save(rnd)
    return {"round_id": rnd.id, "units": len(facts)}


@app.command("finalize_round", s.RoundRef, roles=INSPECTORS)
def finalize_round(uow, d):
    """Rank and freeze the round for the collective review (集中研判)."""
    rnd = uow.get(AssessmentRound, d["round_id"])
    ranking = rnd.finalize(_today(uow))
    uow.save(rnd)
    return {"round_id": rnd.id, "status": rnd.status, "ranking": ranking}


@app.query("list_rounds", s.Empty)
def list_rounds(conn, d, actor):
    return q.list_rounds(conn)


@app.query("round_ranking", s.RoundQuery, runtime=True)
def round_ranking(conn, d, actor, rt):
    """The ranking of a round (as it stood at ``as_of`` when given)."""
    return _maybe_as_of(conn, rt, d, ROUND_PROJECTIONS, lambda c: q.round_ranking(c, d["round_id"]))


@app.query("assessment_report", s.RoundQuery, runtime=True)
def assessment_report(conn, d, actor, rt):
    """研判报告 for the collective review (GET /export/assessment_report for XLSX, PDF or CSV).
    ``key_posts``: the supervision of each unit's 一把手 and key posts (live view only)."""
    out = _maybe_as_of(conn, rt, d, ROUND_PROJECTIONS,
                       lambda c: q.assessment_report(c, d["round_id"]))
    if not d.get("as_of"):
        out["key_posts"] = q.key_post_assessment(conn, d["round_id"])
    return out


# -- four forms of discipline (四种形态) ---------------------------------------------------------------------
@app.command("record_discipline", s.RecordDiscipline, roles=DISCIPLINE, scope="unit_id", status=201)
def record_discipline(uow, d):
    """One instance of 四种形态 handling. Stays on this node; only counts leave it."""
    today = _today(uow)
    uow.supervision.unit(d["unit_id"])
    record_id = new_id(d["record_id"])
    rec = DisciplineRecord.record(record_id, d["unit_id"], d["form"], d["person_name"],
                                  d["person_id"], d["post"], d["measure"], d["summary"],
                                  d["handled_on"].isoformat(), today, uow.actor.user_id,
                                  taken=uow.exists(DisciplineRecord, record_id))
    uow.save(rec)
    return {"record_id": record_id, "period": rec.period, "form": rec.form}


@app.command("void_discipline_record", s.VoidDiscipline, roles=DISCIPLINE, scope=_discipline_unit)
def void_discipline_record(uow, d):
    rec = uow.get(DisciplineRecord, d["record_id"])
    rec.void(d["reason"], uow.actor.user_id)
    uow.save(rec)
    return {"record_id": rec.id, "status": "voided"}


@app.query("list_discipline_records", s.ListDiscipline, roles=DISCIPLINE)
def list_discipline_records(conn, d, actor):
    """The records themselves: inspector role only."""
    return q.discipline_list(conn, d["unit_id"], d["period"])


@app.query("discipline_counts", s.DisciplineCountsQuery, roles=READERS)
def discipline_counts_query(conn, d, actor):
    """Counts per form and quarter - the only discipline figures other roles see."""
    counts = q.discipline_counts_by_period(conn, d["period"])
    return {"periods": [{"period": p, **{"form_%d" % f: n for f, n in c.items()},
                         "total": sum(c.values())} for p, c in sorted(counts.items())]}


# -- publishing for 上下互比 ----------------------------------------------------------------------------------
@app.command("publish_indicators", s.Empty, roles=(NODE_ADMIN,), phased=True)
def publish_indicators(steps, d):
    """Run by the timer: per-unit and per-district figures of the running month and of
    every earlier month still provisional (``domain.indicator_months``: republished while
    late entries change them, then once as final after SUPERVISION_INDICATOR_GRACE_DAYS),
    and the quarterly counts of the four forms, published as events - only those that
    changed since last time. Phased (shared.app.Steps): every figure is computed on a
    read connection, then appended ``PUBLISH_BATCH`` records at a time, so no request
    waits for the sweep."""
    with steps.read() as conn:
        reads = q.SupervisionReadPort(conn)
        today = _today_of(conn, steps.rt)
        units, roots = reads.active_units(), reads.district_roots()
        open_months = reads.provisional_months({u["unit_id"] for u in units}
                                               | {r["unit_id"] for r in roots})
        months = indicator_months(parse_date(today), open_months,
                                  steps.rt.settings.indicator_grace_days)
        todo = []  # (kind, record class, id, what its publish() takes)
        for period, provisional in months:
            last_day = period_bounds(period)[1].isoformat()
            last_unit = reads.last_published(False, period)
            for unit_id, fig in reads.unit_figures(units, last_day).items():
                pub = q.published_unit_figures(fig)
                if last_unit.get(unit_id) != (pub, provisional):
                    todo.append(("units", UnitIndicators, unit_id, (pub, today, period, provisional)))
            last_district = reads.last_published(True, period)
            for root in roots:
                fig = reads.district_figures(root, last_day)
                pub = {k: fig[k] for k in DistrictIndicators.FIGURES}
                if last_district.get(root["unit_id"]) != (pub, provisional):
                    todo.append(("districts", DistrictIndicators, root["unit_id"],
                                 (pub, today, period, provisional)))
        counts = reads.discipline_counts()
        published = reads.discipline_periods_published()
        for period in sorted(set(counts) | published):
            todo.append(("discipline_periods", DisciplineCounts, period,
                         (counts.get(period, {}), today)))
    done = {"units": 0, "districts": 0, "discipline_periods": 0}
    for start in range(0, len(todo), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:  # each record loaded again, under the lock
            loaded, changed = {}, {}  # one record may publish two months in a batch
            for kind, cls, rid, args in todo[start:start + PUBLISH_BATCH]:
                agg = loaded.get((cls, rid))
                if agg is None:
                    agg = loaded[(cls, rid)] = (uow.get(cls, rid) if uow.exists(cls, rid)
                                                else cls.start(rid))
                if agg.publish(*args):
                    changed[(cls, rid)] = agg
                    done[kind] += 1
            if changed:
                uow.save(*changed.values())
    return {"as_of": today, **done,
            "months": {p: "provisional" if prov else "final" for p, prov in months}}


@app.query("district_indicators", s.UnitRef, roles=READERS, scope="unit_id")
def district_indicators(conn, d, actor):
    """The figures of a subtree as they would be published now (上下互比)."""
    root = q.require_unit(conn, d["unit_id"])
    return {"unit_id": root["unit_id"], "name": root["name"], **q.district_figures(conn, root)}


@app.query("history", s.History, roles=INSPECTORS)
def history(conn, d, actor):
    """Every event of one record, oldest first (who, when, what)."""
    return stream_history(conn, d["stream"], d["id"])


# =================================================================================================
# 跟踪问效, 推进会, 专项 and 重点岗位 (task tracking)
# =================================================================================================
# * An inspector or node-admin issues a task list (任务清单) for a unit: every item has a
#   standard (标准), a deadline (时限) and a responsible unit inside the issuer's subtree.
# * The responsible unit's contact (unit-admin in scope, or a node-admin) reports completion
#   with evidence (files in the node's evidence store, by reference); someone else - an
#   inspector or node-admin who did not report it - accepts it or returns it.
# * ``detect_task_overdue`` (timer, like ``detect_overdue``) flags open tasks past their
#   deadline and takes the same escalation ladder, with the same grace periods and targets.
# * A 推进会 records the responsible units present and its decisions; each decision is a
#   task of the meeting's own list, tracked as above.
# * A 专项整治 / 专项治理 campaign has a scope (a unit's subtree) and a period; findings in
#   them are tagged to it with a 四风 category (recorded for it at once, or tagged later),
#   and its progress is their rectifications' progress.
# * 重点岗位 / 一把手: a unit's flagged posts, the inspections focused on them, their risk
#   points and their part of the ecology assessment.
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
    for start in range(0, len(todo), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:
            reads = app.bind_ports(uow).supervision
            changed = []
            for task_id in todo[start:start + PUBLISH_BATCH]:
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


# =================================================================================================
# 群众监督: a complaint or report from the public on a unit's published 微权力清单 page
# =================================================================================================
# * ``submit_public_report``: any caller of the node - in practice the console's public page,
#   which needs no sign-in, limits each client address and relays it as its own intake user
#   (a viewer); no personal data is required (contact details optional). The answer is only a
#   reference number.
# * Inspectors (and node-admins) see the queue (``list_public_reports``) and turn a report into
#   a finding with source 群众监督 - recorded by the same code as ``record_finding``, so it opens
#   its rectification (限期整改) at once - or dismiss it with a reason.
_report_unit = _owner("report_id")


@app.command("submit_public_report", s.SubmitPublicReport, roles=ANY_ROLE, status=201)
def submit_public_report(uow, d):
    """A complaint or report from the public about a unit (群众监督), no personal data required."""
    unit = uow.supervision.unit(d["unit_id"])
    report_id = new_id(None)
    r = PublicReport.receive(report_id, d["unit_id"], d["kind"], d["content"], d["post"],
                             d["contact"], _today(uow), unit=unit)
    uow.save(r)
    return {"report_id": report_id}


@app.query("list_public_reports", s.ListPublicReports, roles=INSPECTORS, scope="unit_id")
def list_public_reports(conn, d, actor):
    require_active(q.require_unit(conn, d["unit_id"]))
    return {"reports": q.list_public_reports(conn, d["unit_id"], d["status"])}


@app.command("convert_public_report", s.ConvertPublicReport, roles=INSPECTORS, scope=_report_unit,
             status=201)
def convert_public_report(uow, d):
    """The report becomes a finding with source 群众监督 (and so a rectification)."""
    report = uow.get(PublicReport, d["report_id"])
    finding_id = new_id(None)
    # decided first (only a report still to be handled is converted), saved after the
    # finding, so the log reads finding, rectification, then the report's conversion
    report.convert(finding_id, _today(uow), uow.actor.user_id)
    answer = record_finding(uow, {
        "finding_id": finding_id, "unit_id": report.unit_id, "source": "public_report",
        "source_ref": report.id, "inspection_id": None,
        "description": d["description"] or report.content, "severity": d["severity"],
        "category": None, "found_on": None, "owner_unit_id": d["owner_unit_id"],
        "responsible_role": d["responsible_role"], "deadline": d["deadline"],
        "requirement": d["requirement"]})
    uow.save(report)
    return {"report_id": report.id, "finding_id": finding_id, "rectification": answer}


@app.command("dismiss_public_report", s.DismissPublicReport, roles=INSPECTORS, scope=_report_unit)
def dismiss_public_report(uow, d):
    report = uow.get(PublicReport, d["report_id"])
    report.dismiss(d["reason"], _today(uow), uow.actor.user_id)
    uow.save(report)
    return {"report_id": report.id, "status": report.status}


# -- reactions to other services' events (called by the nameko handlers in service.py) -------------------
def on_unit_registered(uow, event) -> None:
    """A new unit gets its screening schedule; a window / law-enforcement unit is watched
    until it publishes a 微权力清单."""
    p = event.payload
    schedule, watched = follow_new_unit(p["level"], p["kind"],
                                        uow.exists(ScreeningSchedule, p["unit_id"]))
    touched = [_establish(uow, p["unit_id"], None)] if schedule else []
    if watched:
        watch = (uow.get(MicroPowerWatch, p["unit_id"]) if uow.exists(MicroPowerWatch, p["unit_id"])
                 else MicroPowerWatch.start(p["unit_id"]))
        watch.require(p["kind"], _today(uow))
        touched.append(watch)
    if touched:
        uow.save(*touched)


def on_micro_power_published(uow, event) -> None:
    p = event.payload
    watch = (uow.get(MicroPowerWatch, p["unit_id"]) if uow.exists(MicroPowerWatch, p["unit_id"])
             else MicroPowerWatch.start(p["unit_id"]))
    watch.list_published(p["list_id"], p["post"], p["published_version"], p["published_on"])
    uow.save(watch)


def on_education_indicators(uow, event) -> None:
    p = education_payload(event.payload)
    facts = (uow.get(EducationFacts, EducationFacts.fact_id(p["unit_id"], p["period"]))
             if uow.exists(EducationFacts, EducationFacts.fact_id(p["unit_id"], p["period"]))
             else EducationFacts.start(p["unit_id"], p["period"]))
    if facts.record(p["unit_id"], p["period"], p["warning_education_held"],
                    float(p["checkin_coverage"]),
                    None if p.get("talks_on_time_rate") is None else float(p["talks_on_time_rate"]),
                    event.event_id):
        uow.save(facts)

