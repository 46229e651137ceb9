"""The education service layer: each command and query, its input and who may run it.

Three small extensions of ``shared.app.Application`` (see ``EducationApplication``):
queries that default to "today" receive the runtime (clock and settings); commands
whose only possible conflict is a concurrent duplicate are retried once on a version
conflict, so that e.g. a notice acknowledged twice at once answers "already
acknowledged" instead of 409; and in the running service ``check_in`` is validated and
role-checked here, then handed to the group commit (``burst.py``).

A command loads what its rules need (its aggregates with ``uow.get``, the read models'
facts through the read port ``uow.education``: ``queries.EducationReadPort``), lets the
aggregates decide (every rule is in ``domain.py``), saves and answers. Queries read with
``queries.py``.
"""
from __future__ import annotations

from datetime import date, timedelta

from shared.app import Application, new_id
from shared.auth import ANY_ROLE, INSPECTOR, NODE_ADMIN, UNIT_ADMIN, WRITERS
from shared.errors import ConcurrencyError, NotFound, QinglianError
from shared.events import iso_to_us
from shared.months import month_final
from shared.projections import as_of_view
from shared.store import EventStore, stream_history
from shared.unittree import directory_path, unit_directory_projection

from services.education import projections as pr
from services.education import queries as q
from services.education import schemas as s
from services.education.dates import (
    iso_week, local_date, parse_instant, period_of, previous_period, utc_iso, week_start,
)
from services.education.domain import (
    CaseBulletin, CaseStudyReceipt, ContentItem, DailyReminder, Suggestion,
    DistrictEducationIndicators, EducationIndicators, ExternalCase, ExternalSession, IntegrityNotice,
    IntegrityTalk, MemberMirror, NoticeReceipt, PublicityRotation, ReminderCheckIn,
    AttendanceFollowed, RiskPointMirror, SessionParticipation, SharedCase, StudySession,
    UnitProfile, UserInbox, activity_session_fields, attendance_route, attended_session,
    report_node_attendance, share_session_with_nodes, sync_participation,
    YoungCadreProgramme, check_streak_viewer, choose_rotation, escalation_target, follow_person,
    inbox_root, manual_rotation, normalise_tags,
    require_check_in_for_other,
    republish_due, rotation_candidates, session_audience, session_key,
)
from services.education.settings import EducationSettings


class EducationApplication(Application):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.retry_on_conflict: set[str] = set()

    def execute(self, rt, name, data, actor, *args, **kwargs):
        batcher = rt.ext.get("checkin_batcher")  # only under nameko (service.py)
        if name == "check_in" and batcher is not None and batcher.running:
            # validated and role-checked here, recorded by the group commit (burst.py)
            op = self.operation(name, "command")
            loaded = op.load(data)
            self._authorize(None, op, actor, loaded)
            return batcher.submit(loaded, actor, kwargs.get("correlation_id") or
                                  (args[0] if args else None))
        attempts = 2 if name in self.retry_on_conflict else 1
        for attempt in range(attempts):
            try:
                return super().execute(rt, name, data, actor, *args, **kwargs)
            except ConcurrencyError:
                # the other writer's record is committed now: the retry sees it and
                # answers as an idempotent repeat
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def check_in_many(self, rt, entries) -> list:
        """Check-ins a console grouped into one call (``services/console/checkins.py``):
        ``entries`` (data, actor or the refusal of its token, correlation id), each
        validated and role-checked as ``execute`` does, then recorded together by the
        group commit. One outcome per entry, its result or its error, never raised."""
        op = self.operation("check_in", "command")
        outcomes: list = [None] * len(entries)
        queued = []
        for i, (data, actor, cid) in enumerate(entries):
            if isinstance(actor, BaseException):
                outcomes[i] = actor
                continue
            try:
                loaded = op.load(data)
                self._authorize(None, op, actor, loaded)
            except QinglianError as exc:
                outcomes[i] = exc
                continue
            queued.append((i, loaded, actor, cid))
        batcher = rt.ext.get("checkin_batcher")
        if batcher is not None and batcher.running:
            done = batcher.submit_many([(loaded, actor, cid) for _, loaded, actor, cid in queued])
        else:  # stopping: one by one, as the batcher's fallback records them
            done = []
            for _, loaded, actor, cid in queued:
                try:
                    done.append(check_in_alone(rt, _One(loaded, actor, cid)))
                except QinglianError as exc:
                    done.append(exc)
        for (i, *_), outcome in zip(queued, done):
            outcomes[i] = outcome
        return outcomes


app = EducationApplication("education", unit_path=directory_path,
                           settings=EducationSettings.from_config)
UNIT_DIRECTORY = unit_directory_projection()
app.projections = [UNIT_DIRECTORY, *pr.PROJECTIONS]
app.read_port("education", q.EducationReadPort)


def runtime_query(name, schema, roles=ANY_ROLE, scope=None):
    """A query whose function is ``fn(conn, data, actor, rt)``."""
    return app.query(name, schema, roles=roles, scope=scope, runtime=True)


# -- helpers -------------------------------------------------------------------------------------
def settings_of(rt) -> EducationSettings:
    """The service's settings (``Application(settings=EducationSettings.from_config)``, read
    from the nameko config at start-up; a runtime made by hand is given them)."""
    return rt.settings


def today_of(rt) -> date:
    return local_date(rt.clock(), settings_of(rt).timezone)


def _session_unit(conn, d):
    return q.session_unit(conn, d["session_id"])


def _talk_unit(conn, d):
    return q.talk_unit(conn, d["talk_id"])


def _young_cadre_unit(conn, d):
    return q.young_cadre_unit(conn, d["person_id"])


def _materials(items) -> list[dict]:
    return [dict(m) for m in items or ()]


# =================================================================================================
# sessions
# =================================================================================================
def _plan(uow, d) -> StudySession:
    uow.education.unit(d["organiser_unit_id"], "organiser_unit_id")
    audience = session_audience(d["audience"])
    uow.education.units(audience["unit_ids"], "audience.unit_ids")
    session_id = new_id(d["session_id"])
    tz = settings_of(uow.rt).timezone
    at = d["scheduled_at"]
    speaker = dict(d["speaker"]) if d.get("speaker") else None
    session = StudySession.plan(session_id, d["kind"], d["title"], d["organiser_unit_id"],
                                utc_iso(at), local_date(at, tz).isoformat(), audience, d["tags"],
                                _materials(d["materials"]), d["joinable"], speaker, d["case_refs"],
                                taken=uow.exists(StudySession, session_id))
    # 上下联学 organised for other nodes: the exchange service shares it with them
    share_session_with_nodes(session, d["title"], d.get("share_with_nodes") or [], uow.rt.node_id)
    return session


def _hold(uow, session: StudySession, d, audience_unit_ids) -> dict:
    rt = uow.rt
    tz = settings_of(rt).timezone
    held_at = d.get("held_at") or parse_instant(session.scheduled_at)
    att = d["attendance"]
    roster = att.get("roster")
    attended = d["attended_unit_ids"] if d["attended_unit_ids"] is not None else audience_unit_ids
    uow.education.units(attended, "attended_unit_ids")
    today = today_of(rt)
    session.hold(utc_iso(held_at), local_date(held_at, tz).isoformat(), today, att["headcount"],
                 attended, d.get("discussion"), d.get("leader_comment"), d.get("activities") or (),
                 [dict(c) for c in d.get("case_analysis") or ()], _materials(d.get("extra_materials")),
                 roster=roster, known_members=uow.education.known_members(roster) if roster else ())
    programmes = [uow.get(YoungCadreProgramme, p) for p in sorted(set(roster or ()))
                  if uow.exists(YoungCadreProgramme, p)]
    uow.save(session, *session.credit_young_cadres(programmes, settings_of(rt).young_cadre_cadence_days,
                                                   today))
    return uow.education.session(session.id)


@app.command("plan_session", s.PlanSession, roles=WRITERS, scope="organiser_unit_id", status=201)
def plan_session(uow, d):
    """Plan a session of any kind (主题联学, 上下联学, 廉政微党课, 专题党日, 警示教育, 廉政谈话)."""
    session = _plan(uow, d)
    uow.save(session)
    return uow.education.session(session.id)


@app.command("hold_session", s.HoldSession, roles=WRITERS, scope=_session_unit)
def hold_session(uow, d):
    """Record that a planned session took place: attendance (headcount or roster) and
    what its kind requires (微党课: 议 and 评; 专题党日: the four 共)."""
    row = uow.education.session(d["session_id"])
    session = uow.get(StudySession, d["session_id"])
    return _hold(uow, session, d, row["audience"]["unit_ids"])


@app.command("record_session", s.RecordSession, roles=WRITERS, scope="organiser_unit_id", status=201)
def record_session(uow, d):
    """Enter a session after the fact: planned and held in one step."""
    session = _plan(uow, d)
    d = dict(d, held_at=None)
    return _hold(uow, session, d, sorted(set(d["audience"].get("unit_ids", []))))


@app.command("cancel_session", s.CancelSession, roles=WRITERS, scope=_session_unit)
def cancel_session(uow, d):
    session = uow.get(StudySession, d["session_id"])
    session.cancel(d["reason"])
    uow.save(session)
    return {"session_id": session.id, "status": session.status}


def _session_facts(uow, node: str, session_id: str, unit_id: str) -> tuple[str, str, str, bool, str]:
    """(kind, title, local_date, external, status) of a session to join, here or elsewhere."""
    if node == uow.rt.node_id:
        row = uow.education.session(session_id)
        SessionParticipation.check_joinable(row, unit_id)
        return row["kind"], row["title"], row["local_date"], False, row["status"]
    ref = uow.education.external_ref("session", session_key(node, session_id))
    if ref is None:
        raise NotFound("活动「%s」（节点「%s」）尚未从其数据源收到" % (session_id, node),
                       {"session_id": ["在「%s」上未知" % node]})
    return ref["kind"], ref["title"], ref["local_date"], True, "held"


def _participation(uow, d):
    node = d["session_node"] or uow.rt.node_id
    uow.education.unit(d["unit_id"])
    facts = _session_facts(uow, node, d["session_id"], d["unit_id"])
    pid = SessionParticipation.participation_id(node, d["session_id"], d["unit_id"])
    if uow.exists(SessionParticipation, pid):
        return uow.get(SessionParticipation, pid), facts, False
    kind, title, day, external, _ = facts
    return SessionParticipation.join(node, d["session_id"], d["unit_id"], kind, title, day,
                                     external), facts, True


@app.command("join_session", s.JoinSession, roles=WRITERS, scope="unit_id")
def join_session(uow, d):
    """A unit joins a session organised at another level or on another node (上下联学);
    joining again is a no-op."""
    p, _, new = _participation(uow, d)
    if new:
        uow.save(p)
    return {"participation_id": p.id, "session_key": p.session_key, "unit_id": p.unit_id,
            "joined": new}


@app.command("record_participation", s.RecordParticipation, roles=WRITERS, scope="unit_id")
def record_participation(uow, d):
    """The joining unit's attendance (headcount); a warning-education session attended this
    way counts for the unit's 月月行."""
    p, facts, _ = _participation(uow, d)
    kind, title, day, external, status = facts
    p.attend(d["headcount"], day, today_of(uow.rt), session_status=status)
    uow.save(p)
    return {"participation_id": p.id, "unit_id": p.unit_id, "kind": kind, "local_date": day,
            "counts_for": period_of(day)}


@app.command("register_external_session", s.RegisterExternalSession, roles=(NODE_ADMIN,))
def register_external_session(uow, d):
    """From another node's feed (the exchange service calls this): a session units here may
    join. Delivery is at-least-once, so a repeat changes nothing and a correction is
    recorded as an update."""
    ExternalSession.require_foreign(d["origin_node"], uow.rt.node_id)
    key = session_key(d["origin_node"], d["record_id"])
    held = d["held_at"]
    day = local_date(held, settings_of(uow.rt).timezone).isoformat()
    fields = dict(origin_node=d["origin_node"], record_id=d["record_id"], title=d["title"],
                  kind=d["kind"], held_at=utc_iso(held), local_date=day, period=day[:7],
                  organiser=d["organiser"], tags=normalise_tags(d["tags"]))
    return _register_external(uow, ExternalSession, key, fields)


@app.command("register_external_case", s.RegisterExternalCase, roles=(NODE_ADMIN,))
def register_external_case(uow, d):
    """A typical case (典型案例) from the city's case library, for warning education."""
    ExternalCase.require_foreign(d["origin_node"], uow.rt.node_id)
    key = session_key(d["origin_node"], d["record_id"])
    fields = dict(origin_node=d["origin_node"], record_id=d["record_id"], title=d["title"],
                  summary=d["summary"], tags=normalise_tags(d["tags"]))
    return _register_external(uow, ExternalCase, key, fields)


def _register_external(uow, cls, key, fields):
    if uow.exists(cls, key):
        ref = uow.get(cls, key)
        changed = ref.update(**fields)
    else:
        ref, changed = cls.register(key, **fields), True
    if changed:
        uow.save(ref)
    return {"key": key, "changed": changed}


# =================================================================================================
# 廉洁提醒日打卡
# =================================================================================================
@app.command("set_daily_reminder", s.SetDailyReminder, roles=(NODE_ADMIN,))
def set_daily_reminder(uow, d):
    """The one-line reminder of a day, set in advance; today's may be reworded only until
    the first member acknowledges it."""
    today = today_of(uow.rt)
    on = d["on"].isoformat()
    if uow.exists(DailyReminder, on):
        r = uow.get(DailyReminder, on)
        r.revise(d["text"], d["item_id"], today, uow.education.checkins_on(on))
    else:
        r = DailyReminder.publish(on, d["text"], d["item_id"], today)
    uow.save(r)
    return {"on": on, "text": r.text}


@app.command("publish_daily_reminder", s.Nothing, roles=(NODE_ADMIN,), phased=True)
def publish_daily_reminder(steps, d):
    """Routine (timer): if nobody set today's reminder, take the library's 一句话提醒 used
    longest ago, so the daily rhythm never stops because an office forgot. Phased: the
    library is read without the lock; the one write checks again that nobody set the
    day's reminder meanwhile (theirs wins)."""
    on = today_of(steps.rt).isoformat()
    with steps.read() as conn:
        if steps.rt.store.stream_version(conn, DailyReminder.stream_id_for(on)) > 0:
            return {"on": on, "published": False}
        port = q.EducationReadPort(conn)
        items = [i for i in port.library() if i["kind"] == "reminder"]
        if not items:
            return {"on": on, "published": False, "reason": "内容库中没有一句话提醒"}
        last_used = port.reminder_last_used()
    item = min(items, key=lambda i: (last_used.get(i["item_id"], ""), i["item_id"]))
    with steps.unit_of_work() as uow:
        if uow.exists(DailyReminder, on):
            return {"on": on, "published": False}
        r = DailyReminder.publish(on, item["text"][:100].splitlines()[0], item["item_id"])
        uow.save(r)
    return {"on": on, "published": True, "item_id": item["item_id"], "text": r.text}


def record_check_ins(uow, items) -> list:
    """Record check-ins - one, or a batch from ``burst.CheckInBatcher`` - in ``uow``.

    Returns one outcome per item, a result dict or the error for that item; errors are
    decided before anything is written, so they never spoil the others. Load, decide,
    save: one read through the port fetches every member's state
    (``uow.education.checkin_states``), ``ReminderCheckIn.decide`` rules on each (the
    scope of one who checks in for another is ``uow.check_scope``'s), one append records
    every new check-in (the payload's ``by`` says who recorded each), and within
    ``uow.education.bulk_checkins()`` one multi-row write per table updates the read model."""
    ed = app.bind_ports(uow).education  # the batcher's unit of work is its own (burst.py)
    now = uow.now
    day = local_date(now, settings_of(uow.rt).timezone).isoformat()
    checked_at = utc_iso(now)
    states = ed.checkin_states([it.data["person_id"] for it in items], day)
    outcomes, done_here, new = [], {}, []
    for it in items:
        person_id, actor = it.data["person_id"], it.actor
        state = states.get(person_id)
        try:
            if actor.user_id != person_id:
                require_check_in_for_other(actor.has(NODE_ADMIN, UNIT_ADMIN))
                uow.check_scope(WRITERS, state.unit_id if state else None, actor)
            outcome, checkin = ReminderCheckIn.decide(person_id, day, checked_at, actor.user_id,
                                                      state, done_here.get(person_id))
        except QinglianError as exc:
            outcomes.append(exc)
            continue
        if checkin is not None:
            new.append(checkin)
            done_here[person_id] = (outcome["checked_at"], outcome["streak"])
        outcomes.append(outcome)
    if new:
        with ed.bulk_checkins():
            uow.save(*new)
    return outcomes


class _One:
    def __init__(self, data, actor, correlation_id=None):
        self.data, self.actor, self.correlation_id = data, actor, correlation_id


@app.command("check_in", s.CheckIn, roles=ANY_ROLE)
def check_in(uow, d):
    """日打卡: a member acknowledges today's reminder (today in the users' zone). A member
    checks in for themselves (their user id is their person id); a unit-admin or
    node-admin - e.g. the 打卡 mini-program's gateway account - for members in scope.
    Idempotent: a second check-in the same day answers 200 with ``duplicate: true`` and
    the first check-in's time; it is counted once. In the running service concurrent
    check-ins are group-committed (``burst.py``); this is the same code for one."""
    outcome = record_check_ins(uow, [_One(d, uow.actor)])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def check_in_alone(rt, item):
    """The batcher's fallback: one check-in through the ordinary command path (not the
    batcher's queue: this runs on the batcher's own thread), retried once on a version
    conflict - a concurrent duplicate from another process - to answer as a repeat."""
    for attempt in (0, 1):
        try:
            return Application.execute(app, rt, "check_in", item.data, item.actor,
                                       item.correlation_id)
        except ConcurrencyError:
            if attempt:
                raise
    raise AssertionError("unreachable")


app.retry_on_conflict.add("check_in")


@runtime_query("todays_reminder", s.Day)
def todays_reminder(conn, d, actor, rt):
    day = (d["on"] or today_of(rt)).isoformat()
    row = q.reminder_of(conn, day)
    if row is None:
        raise NotFound("%s 没有提醒" % day)
    return row


@runtime_query("checkin_daily", s.UnitDay, scope="unit_id")
def checkin_daily(conn, d, actor, rt):
    """Daily coverage per party organisation below a unit (default: today)."""
    q.require_unit(conn, d["unit_id"])
    day = (d["on"] or today_of(rt)).isoformat()
    return q.checkin_daily(conn, d["unit_id"], day, settings_of(rt).party_org_levels)


@runtime_query("checkin_monthly", s.UnitPeriod, scope="unit_id")
def checkin_monthly(conn, d, actor, rt):
    """Monthly coverage per party organisation, and the subtree's day-by-day series."""
    q.require_unit(conn, d["unit_id"])
    return q.checkin_monthly(conn, d["unit_id"], d["period"], settings_of(rt).party_org_levels,
                              today_of(rt))


def _person_scope(conn, d):
    return q.member_unit(conn, d["person_id"])


@runtime_query("member_streak", s.PersonRef, scope=_person_scope)
def member_streak(conn, d, actor, rt):
    """A member's current and best streak (consecutive days) and total check-ins."""
    check_streak_viewer(actor.user_id, d["person_id"], actor.has(NODE_ADMIN, UNIT_ADMIN, INSPECTOR))
    return q.member_streak(conn, d["person_id"], today_of(rt))


# =================================================================================================
# 警示教育月月行 and sessions
# =================================================================================================
@runtime_query("warning_education_compliance", s.UnitPeriod, scope="unit_id")
def warning_education_compliance(conn, d, actor, rt):
    """月月行: every party organisation below the unit, whether it held (or attended) a
    warning-education session in the month, and the list of those that missed."""
    q.require_unit(conn, d["unit_id"])
    return q.warning_compliance(conn, d["unit_id"], d["period"], settings_of(rt).party_org_levels)


@app.query("get_session", s.SessionRef, scope=_session_unit)
def get_session(conn, d, actor):
    return q.require_session(conn, d["session_id"])


@app.query("list_sessions", s.ListSessions, scope="unit_id")
def list_sessions(conn, d, actor):
    """Sessions organised in a subtree, and those its units joined elsewhere."""
    q.require_unit(conn, d["unit_id"])
    return q.list_sessions(conn, d["unit_id"], d["period"], d["kind"])


# =================================================================================================
# library, 周更新, tailoring
# =================================================================================================
@app.command("add_content", s.AddContent, roles=(NODE_ADMIN,), status=201)
def add_content(uow, d):
    """Add a slogan, an image (by reference), a short text or a one-line reminder to the
    district's library, tagged by business type, post and risk point."""
    item_id = new_id(d["item_id"])
    item = ContentItem.add(item_id, d["kind"], d["title"], d["text"], d["ref"], d["tags"],
                           taken=uow.exists(ContentItem, item_id))
    uow.save(item)
    return {"item_id": item_id, "kind": item.kind, "tags": item.tags}


@app.command("retag_content", s.RetagContent, roles=(NODE_ADMIN,))
def retag_content(uow, d):
    item = uow.get(ContentItem, d["item_id"])
    item.retag(d["tags"])
    uow.save(item)
    return {"item_id": item.id, "tags": item.tags}


@app.command("retire_content", s.RetireContent, roles=(NODE_ADMIN,))
def retire_content(uow, d):
    item = uow.get(ContentItem, d["item_id"])
    item.retire(d["reason"])
    uow.save(item)
    return {"item_id": item.id, "retired": True}


@app.query("list_content", s.ListContent)
def list_content(conn, d, actor):
    items = q.library(conn, d["include_retired"])
    if d["kind"]:
        items = [i for i in items if i["kind"] == d["kind"]]
    for dim, key in (("risk_points", "risk_point"), ("posts", "post"),
                     ("business_types", "business_type")):
        if d[key]:
            items = [i for i in items if d[key] in i["tags"][dim]]
    return {"items": items}


def _auto_choice(port: q.EducationReadPort, unit_id: str, items: list[dict]) -> list[str]:
    return choose_rotation(items, port.unit_profile(unit_id), port.last_shown(unit_id))


@app.command("rotate_publicity", s.RotatePublicity, roles=WRITERS, scope="unit_id")
def rotate_publicity(uow, d):
    """周更新 for one unit and ISO week (default: this week): the given items, or the
    library's best fitting items shown longest ago. Choosing again the same week is kept
    as a new version - the log says what was shown when."""
    ed = uow.education
    ed.unit(d["unit_id"])
    week = d["week"] or iso_week(today_of(uow.rt))
    candidates = rotation_candidates(ed.library())
    if d["item_ids"]:
        item_ids, chosen_by = manual_rotation(d["item_ids"], candidates), "manual"
    else:
        item_ids, chosen_by = _auto_choice(ed, d["unit_id"], candidates), "auto"
    rid = PublicityRotation.rotation_id(d["unit_id"], week)
    existing = uow.get(PublicityRotation, rid) if uow.exists(PublicityRotation, rid) else None
    rotation, changed = PublicityRotation.choose(existing, d["unit_id"], week, week_start(week).isoformat(),
                                                 item_ids, chosen_by)
    if changed:
        uow.save(rotation)
    return {"unit_id": d["unit_id"], "week": week, "item_ids": rotation.item_ids, "changed": changed}


@app.command("rotate_publicity_all", s.Nothing, roles=(NODE_ADMIN,), phased=True)
def rotate_publicity_all(steps, d):
    """Routine (timer): every party organisation without a rotation this week gets one.
    Phased like the publishing routines: choices made on a read connection, rotations
    appended ``PUBLISH_BATCH`` at a time."""
    week = iso_week(today_of(steps.rt))
    starts_on = week_start(week).isoformat()
    with steps.read() as conn:
        port = q.EducationReadPort(conn)
        items = rotation_candidates(port.library())
        done = port.rotated_units(week)
        chosen = [(unit_id, _auto_choice(port, unit_id, items))
                  for unit_id in port.party_orgs(settings_of(steps.rt).party_org_levels)
                  if unit_id not in done]
    skipped = [unit_id for unit_id, item_ids in chosen if not item_ids]
    todo = [(unit_id, item_ids) for unit_id, item_ids in chosen if item_ids]
    rotated = []
    for start in range(0, len(todo), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:
            batch = [(unit_id, PublicityRotation.start(unit_id, week, starts_on, item_ids, "auto"))
                     for unit_id, item_ids in todo[start:start + PUBLISH_BATCH]
                     if not uow.exists(PublicityRotation, PublicityRotation.rotation_id(unit_id, week))]
            if batch:
                uow.save(*(r for _, r in batch))
        rotated.extend(unit_id for unit_id, _ in batch)
    return {"week": week, "rotated": rotated, "skipped_no_content": skipped}


@app.query("publicity_history", s.UnitLimit, scope="unit_id")
def publicity_history(conn, d, actor):
    """What a unit showed, week by week (newest first)."""
    q.require_unit(conn, d["unit_id"])
    return {"unit_id": d["unit_id"], "weeks": q.rotation_history(conn, d["unit_id"], d["limit"])}


@runtime_query("publicity_week", s.UnitWeek, scope="unit_id")
def publicity_week(conn, d, actor, rt):
    """周更新 of one ISO week (default: this week) for each party organisation below a unit.

    What each organisation shows (latest choice of the week), or nothing yet."""
    q.require_unit(conn, d["unit_id"])
    week = d["week"] or iso_week(today_of(rt))
    return {"unit_id": d["unit_id"], "week": week, "starts_on": week_start(week).isoformat(),
            "units": q.publicity_week(conn, d["unit_id"], week, settings_of(rt).party_org_levels)}


@app.command("set_unit_profile", s.SetUnitProfile, roles=WRITERS, scope="unit_id")
def set_unit_profile(uow, d):
    """A unit's business types, posts and integrity-risk points: what its material should fit."""
    uow.education.unit(d["unit_id"])
    tags = {k: d[k] for k in ("business_types", "posts", "risk_points")}
    if uow.exists(UnitProfile, d["unit_id"]):
        profile = uow.get(UnitProfile, d["unit_id"])
        profile.set(tags)
    else:
        profile = UnitProfile.create(d["unit_id"], tags)
    uow.save(profile)
    return {"unit_id": d["unit_id"], **profile.tags}


@runtime_query("offer_for_unit", s.UnitLimit, scope="unit_id")
def offer_for_unit(conn, d, actor, rt):
    """精准滴灌: material, joinable sessions and typical cases fitting the unit's posts,
    business types and risk points, best fit first."""
    q.require_unit(conn, d["unit_id"])
    return q.offer_for_unit(conn, d["unit_id"], today_of(rt), d["limit"])


@runtime_query("risk_point_coverage", s.UnitPeriod, scope="unit_id")
def risk_point_coverage(conn, d, actor, rt):
    """Per integrity-risk point: units carrying it, those that had education on it this
    month, the gaps, and the library material addressing it."""
    q.require_unit(conn, d["unit_id"])
    return q.risk_point_coverage(conn, d["unit_id"], d["period"], settings_of(rt).party_org_levels)


@app.query("risk_point_register", s.UnitRef, scope="unit_id")
def risk_point_register(conn, d, actor):
    """The risk points of supervision's 廉政风险点台账 for a subtree, as education has them
    from supervision's events: what tailoring fits material to, and the names a picker
    offers for the ``risk_points`` tag of content and sessions."""
    q.require_unit(conn, d["unit_id"])
    return {"unit_id": d["unit_id"], "risk_points": q.register_entries(conn, d["unit_id"])}


def record_risk_point_event(uow, event) -> dict | None:
    """supervision's ``RiskPoint.Identified`` / ``RiskPoint.Retired``: the register entry
    as tailoring uses it (``RiskPointMirror``). Other RiskPoint events change nothing here."""
    kind = event.event_type.split(".", 1)[1]
    if kind not in ("Identified", "Retired"):
        return None
    rp_id = event.payload["risk_point_id"]
    m = uow.get(RiskPointMirror, rp_id) if uow.exists(RiskPointMirror, rp_id) \
        else RiskPointMirror.blank(rp_id)
    if m.merge(kind, event.version, event.payload):
        uow.save(m)
        return {"risk_point_id": rp_id, "active": m.active}
    return None


def record_activity_event(uow, event) -> dict | None:
    """The exchange's ``JointActivity.Published`` / ``.Rescheduled`` (活动联办 activities,
    this node's or another's, and sessions other nodes shared with this one): a session
    units here may join (``ExternalSession``), counted as the kind its theme names
    (``domain.activity_kind``: 警示教育 counts for 月月行). A session this node shared
    itself is already here as the session."""
    kind = event.event_type.split(".", 1)[1]
    p = event.payload
    aid = p.get("activity_id")
    if kind not in ("Published", "Rescheduled") or not aid or aid.count("/") != 1:
        return None
    ed = app.bind_ports(uow).education
    owner, slug = aid.split("/", 1)
    if owner == uow.rt.node_id and ed.shared_session(slug) is not None:
        return None
    registered = ed.external_ref("session", aid) if kind == "Rescheduled" else None
    fields_ = activity_session_fields(kind, p, registered)
    held = parse_instant(p["starts_at"])
    day = local_date(held, settings_of(uow.rt).timezone).isoformat()
    fields_.update(origin_node=owner, record_id=slug, held_at=utc_iso(held), local_date=day,
                   period=day[:7])
    return _register_external(uow, ExternalSession, aid, fields_)


def record_attendance_event(uow, event) -> dict | None:
    """The exchange's ``Attendance.Recorded`` / ``.Corrected`` - one node's attendance at
    an activity, entered once, in the exchange:

    * this node's own attendance: each unit listed joined and attended (its
      ``SessionParticipation``, corrected or withdrawn as the attendance is corrected),
      so a warning-education activity counts for the units' 月月行 with no second entry;
    * another node's attendance at a session this node shared (上下联学): reported on
      the session (``NodeAttendanceReported``), so the organiser sees which units of
      which districts came and how many.
    """
    kind = event.event_type.split(".", 1)[1]
    p = event.payload
    att_id, aid = p.get("attendance_id") or "", p.get("activity_id") or ""
    if kind not in ("Recorded", "Corrected") or att_id.count("/") != 1 or aid.count("/") != 1:
        return None
    ed = app.bind_ports(uow).education
    me = uow.rt.node_id
    att_owner = att_id.split("/", 1)[0]
    act_owner, slug = aid.split("/", 1)
    shared = ed.shared_session(slug) if act_owner == me else None
    cause = (event.metadata or {}).get("causation_id")
    route = attendance_route(me, att_owner, shared is not None, bool(cause) and ed.event_recorded(cause))
    if route == "report":
        session = uow.get(StudySession, shared["session_id"])
        if report_node_attendance(session, att_owner, p["units"], event.version):
            uow.save(session)
            return {"session_id": session.id, "node": att_owner}
        return None
    if route is None:
        return None
    today = today_of(uow.rt)
    ref = attended_session(aid, ed.external_ref("session", aid), today)
    if ref is None:
        return None
    follower = uow.get(AttendanceFollowed, att_id) if uow.exists(AttendanceFollowed, att_id) \
        else AttendanceFollowed.blank(att_id)
    if not follower.follow(aid, p["units"], event.version):
        return None  # older than what was followed already
    listed = {u["unit_id"]: int(u["attendees"]) for u in p["units"]}
    touched = [follower]
    for unit_id in sorted(set(listed) | set(ed.attended_units(aid))):
        if ed.unit_or_none(unit_id) is None:
            continue
        pid = SessionParticipation.participation_id(act_owner, slug, unit_id)
        part = uow.get(SessionParticipation, pid) if uow.exists(SessionParticipation, pid) else \
            SessionParticipation.join(act_owner, slug, unit_id, ref["kind"], ref["title"],
                                      ref["local_date"], True)
        if sync_participation(part, unit_id in listed, listed.get(unit_id, 0), ref["local_date"], today):
            touched.append(part)
    uow.save(*touched)
    return {"activity_id": aid, "units": sorted(t.unit_id for t in touched[1:])}


def record_case_event(uow, event) -> dict | None:
    """The exchange's ``Case.*`` (this node's own cases and those received from other
    nodes, the city's typical cases among them): offered by tailoring (``SharedCase``)
    while shared, no longer once withdrawn."""
    kind = event.event_type.split(".", 1)[1]
    case_id = event.payload.get("case_id")
    if kind not in ("Compiled", "Published", "Revised", "Withdrawn") or not case_id:
        return None
    c = uow.get(SharedCase, case_id) if uow.exists(SharedCase, case_id) else SharedCase.blank(case_id)
    if c.merge(kind, event.version, event.payload):
        uow.save(c)
        return {"case_id": case_id, "offered": c.offered}
    return None


# =================================================================================================
# 廉洁通知
# =================================================================================================
@app.command("schedule_notice", s.ScheduleNotice, roles=(NODE_ADMIN,), status=201)
def schedule_notice(uow, d):
    """A notice for a sensitive period not in the calendar (e.g. 换届, 重大活动)."""
    notice_id = new_id(d["notice_id"])
    n = IntegrityNotice.schedule(notice_id, d["title"], d["body"], d["send_on"].isoformat(),
                                 d["occasion"],
                                 d["occasion_date"].isoformat() if d["occasion_date"] else None,
                                 "manual", today_of(uow.rt), taken=uow.exists(IntegrityNotice, notice_id))
    uow.save(n)
    return {"notice_id": notice_id, "send_on": n.send_on, "status": n.status}


@app.command("schedule_calendar_notices", s.Nothing, roles=(NODE_ADMIN,))
def schedule_calendar_notices(uow, d):
    """Routine (timer): schedule the calendar's holiday notices whose send date falls
    within the horizon (a send date already passed, holiday still ahead: today). Ids
    are ``<key>-<holiday date>``, so running it again is a no-op."""
    st = settings_of(uow.rt)
    today = today_of(uow.rt)
    last = today + timedelta(days=st.notice_horizon_days)
    scheduled = []
    for entry in st.notice_calendar:
        for occasion in entry.occasions(today, last):
            notice_id = IntegrityNotice.calendar_id(entry.key, occasion)
            if uow.exists(IntegrityNotice, notice_id):
                continue
            n = IntegrityNotice.for_occasion(entry.key, entry.name, occasion, entry.lead_days, today)
            uow.save(n)
            scheduled.append(notice_id)
    return {"scheduled": scheduled}


@app.command("dispatch_due_notices", s.Nothing, roles=(NODE_ADMIN,), phased=True)
def dispatch_due_notices(steps, d):
    """Routine (timer): send every scheduled notice that is due to every party
    organisation on the node; each then owes a receipt. Phased: the due notices and the
    recipients are read without the lock, the notices sent ``PUBLISH_BATCH`` at a time,
    each checked again under the lock (one cancelled meanwhile is not sent)."""
    today = today_of(steps.rt)
    with steps.read() as conn:
        port = q.EducationReadPort(conn)
        due = port.due_notices(today)
        if not due:
            return {"sent": []}
        units = port.party_orgs(settings_of(steps.rt).party_org_levels)
    sent = []
    for start in range(0, len(due), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:
            batch = [n for n in (uow.get(IntegrityNotice, i) for i in due[start:start + PUBLISH_BATCH])
                     if n.sendable]
            for n in batch:
                n.send(units, utc_iso(uow.now), today)
            if batch:
                uow.save(*batch)
        sent.extend(n.id for n in batch)
    return {"sent": sent, "recipients": len(units)}


@app.command("cancel_notice", s.CancelNotice, roles=(NODE_ADMIN,))
def cancel_notice(uow, d):
    n = uow.get(IntegrityNotice, d["notice_id"])
    n.cancel(d["reason"])
    uow.save(n)
    return {"notice_id": n.id, "status": n.status}


@app.command("acknowledge_notice", s.AcknowledgeNotice, roles=WRITERS, scope="unit_id")
def acknowledge_notice(uow, d):
    """A unit's receipt (回执). Idempotent: acknowledging again answers with the first receipt."""
    row = uow.education.receipt(d["notice_id"], d["unit_id"])
    r = NoticeReceipt.acknowledge(d["notice_id"], d["unit_id"], utc_iso(uow.now), uow.actor.user_id,
                                  receipt=row,
                                  notice_known=row is not None or uow.exists(IntegrityNotice, d["notice_id"]))
    if r is None:
        return {"notice_id": d["notice_id"], "unit_id": d["unit_id"],
                "acknowledged_at": row["acknowledged_at"], "duplicate": True}
    uow.save(r)
    return {"notice_id": d["notice_id"], "unit_id": d["unit_id"], "acknowledged_at": utc_iso(uow.now),
            "duplicate": False}


app.retry_on_conflict.add("acknowledge_notice")


@app.query("list_notices", s.ListNotices)
def list_notices(conn, d, actor):
    return {"notices": q.list_notices(conn, d["status"])}


@app.query("notice_receipts", s.NoticeRef)
def notice_receipts(conn, d, actor):
    """Who acknowledged a notice, and who has not."""
    if not q.notice_known(conn, d["notice_id"]):
        raise NotFound("通知「%s」不存在" % d["notice_id"])
    return q.notice_receipts(conn, d["notice_id"])


# =================================================================================================
# 廉政谈话 and young cadres
# =================================================================================================
def record_person_event(uow, event, kind: str) -> dict:
    """Fold a units-service ``Person.Registered`` / ``Person.Promoted`` into this service:
    the member mirror always; a promotion also schedules the 廉政谈话; a young cadre's
    registration enrols them in periodic education."""
    st = settings_of(uow.rt)
    p = event.payload
    person_id = p["person_id"]
    member = uow.get(MemberMirror, person_id) if uow.exists(MemberMirror, person_id) \
        else MemberMirror.blank(person_id)
    member.merge(kind, event.version, p)
    talk_taken = kind == "Promoted" and uow.exists(IntegrityTalk,
                                                   IntegrityTalk.talk_id(person_id, p["effective_on"]))
    programme = uow.get(YoungCadreProgramme, person_id) if uow.exists(YoungCadreProgramme, person_id) else None
    touched, talk_id = follow_person(member, kind, p, talk_taken=talk_taken, programme=programme,
                                     today=today_of(uow.rt), talk_due_days=st.talk_due_days,
                                     cadence_days=st.young_cadre_cadence_days)
    uow.save(*touched)
    return {"person_id": person_id, **({"talk_id": talk_id} if talk_id else {})}


@app.command("record_talk_held", s.RecordTalkHeld, roles=WRITERS + (INSPECTOR,), scope=_talk_unit)
def record_talk_held(uow, d):
    """The 廉政谈话 took place (who conducted it, by post); on time if by the due date."""
    talk = uow.get(IntegrityTalk, d["talk_id"])
    talk.hold(d["held_on"].isoformat(), d["conducted_by"], d["note"], today_of(uow.rt))
    uow.save(talk)
    return uow.education.talk(talk.id)


def _escalation_target(port: q.EducationReadPort, unit_id: str, notify: str) -> str:
    """Whom a rung notifies (``domain.escalation_target``), reading only what that rung needs."""
    parent_id = (port.unit_or_none(unit_id) or {}).get("parent_id") if notify == "parent" else None
    root_id = port.root_of(unit_id) if notify not in ("unit", "parent") else unit_id
    return escalation_target(notify, unit_id, parent_id, root_id)


@app.command("detect_overdue", s.Nothing, roles=(NODE_ADMIN,), phased=True)
def detect_overdue(steps, d):
    """Routine (timer): talks past their due date become overdue and climb the escalation
    ladder one rung per threshold reached (each rung notifies its unit's inbox once);
    young cadres past their cadence become overdue. Phased: what is due, and which unit
    each rung notifies, are read without the lock; the records are then loaded, decided
    and appended ``PUBLISH_BATCH`` at a time."""
    st = settings_of(steps.rt)
    today = today_of(steps.rt)
    notifies = {step.notify for step in st.talk_ladder}
    with steps.read() as conn:
        port = q.EducationReadPort(conn)
        talks = port.talks_past_due(today, len(st.talk_ladder))
        targets = {}  # (unit, whom a rung notifies) -> the unit told
        for _, unit_id in talks:
            for notify in notifies:
                if (unit_id, notify) not in targets:
                    targets[unit_id, notify] = _escalation_target(port, unit_id, notify)
        young = port.young_cadres_past_due(today)
    todo = [(IntegrityTalk, talk_id) for talk_id, _ in talks] + [(YoungCadreProgramme, p) for p in young]
    overdue, escalations, young_overdue = [], [], []
    for start in range(0, len(todo), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:
            ed = app.bind_ports(uow).education
            changed = []
            for cls, rid in todo[start:start + PUBLISH_BATCH]:
                agg = uow.get(cls, rid)
                if cls is YoungCadreProgramme:
                    if agg.detect_overdue(today):
                        changed.append(agg)
                        young_overdue.append(rid)
                    continue
                was_overdue = agg.overdue
                for step in agg.detect_overdue(today, st.talk_ladder):
                    # a talk moved to another unit since the targets were read: look it up now
                    target = targets.get((agg.unit_id, step.notify)) or \
                        _escalation_target(ed, agg.unit_id, step.notify)
                    agg.escalate(step, target, today)
                    escalations.append({"talk_id": rid, "step": step.step, "notify_unit_id": target})
                if agg.overdue and not was_overdue:
                    overdue.append(rid)
                changed.append(agg)
            if changed:
                uow.save(*changed)
    return {"today": today.isoformat(), "talks_overdue": overdue, "escalations": escalations,
            "young_cadres_overdue": young_overdue}


@app.command("record_young_cadre_education", s.RecordYoungCadreEducation,
             roles=WRITERS, scope=_young_cadre_unit)
def record_young_cadre_education(uow, d):
    """A young cadre's periodic discipline and integrity education, given outside a
    session with a roster (a session roster credits it automatically)."""
    y = uow.get(YoungCadreProgramme, d["person_id"])
    y.record(d["on"], d["topic"], d["session_id"], settings_of(uow.rt).young_cadre_cadence_days,
             today_of(uow.rt))
    uow.save(y)
    return {"person_id": y.id, "next_due_on": y.next_due_on}


@app.query("list_talks", s.ListTalks, roles=WRITERS + (INSPECTOR,), scope="unit_id")
def list_talks(conn, d, actor):
    """廉政谈话 of people in a subtree: scheduled, overdue (with escalation rung) or held."""
    q.require_unit(conn, d["unit_id"])
    return {"unit_id": d["unit_id"], "talks": q.list_talks(conn, d["unit_id"], d["status"])}


@app.query("young_cadre_programme", s.UnitRef, roles=WRITERS + (INSPECTOR,), scope="unit_id")
def young_cadre_programme(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return {"unit_id": d["unit_id"], "young_cadres": q.list_young_cadres(conn, d["unit_id"])}


# =================================================================================================
# inbox
# =================================================================================================
def _visible_units(actor, subtree_ids) -> list[str] | None:
    """The units whose inbox items ``actor`` sees (``domain.inbox_root``; None: the node's);
    ``subtree_ids(root)`` reads them (a query's connection or a command's read port)."""
    root = inbox_root(actor.has(NODE_ADMIN), actor.unit_scope)
    return None if root is None else subtree_ids(root)


@app.query("unit_inbox", s.UnitInbox, scope="unit_id")
def unit_inbox(conn, d, actor):
    """A unit's inbox: notices to acknowledge, talks due or overdue, escalations, young
    cadres overdue, missed 月月行, this week's publicity - with the caller's read marks."""
    q.require_unit(conn, d["unit_id"])
    units = q.subtree_ids(conn, d["unit_id"]) if d["subtree"] else [d["unit_id"]]
    return {"unit_id": d["unit_id"], **q.inbox_items(conn, units, actor.user_id,
                                                      d["include_closed"], d["limit"])}


@app.query("my_inbox", s.MyInbox)
def my_inbox(conn, d, actor):
    """The caller's inbox: their unit scope's items (node-admins: the whole node)."""
    visible = _visible_units(actor, lambda root: q.subtree_ids(conn, root))
    return {"user_id": actor.user_id, **q.inbox_items(conn, visible, actor.user_id,
                                                       d["include_closed"], d["limit"])}


@app.command("mark_inbox_read", s.MarkInboxRead, roles=ANY_ROLE)
def mark_inbox_read(uow, d):
    item_units = uow.education.inbox_units(d["item_ids"])
    inbox = UserInbox.for_user(uow.actor.user_id)
    if uow.exists(UserInbox, uow.actor.user_id):
        inbox = uow.get(UserInbox, uow.actor.user_id)
    inbox.read(d["item_ids"], utc_iso(uow.now), item_units=item_units,
               visible=_visible_units(uow.actor, uow.education.subtree_ids))
    uow.save(inbox)
    return {"user_id": uow.actor.user_id, "read": sorted(set(d["item_ids"]))}


app.retry_on_conflict.add("mark_inbox_read")


# =================================================================================================
# indicators
# =================================================================================================
PUBLISH_BATCH = 50  # records (organisations, notices, talks) per write: the writer lock is held for one batch at a time


def _publish(steps, period: str, only_missing: bool) -> dict:
    """Both publishing commands are phased (shared.app.Steps): the figures of every
    organisation are computed on a read connection, then appended ``PUBLISH_BATCH`` at a
    time, so a request waits for one short batch at most, never for the whole sweep."""
    rt = steps.rt
    levels = settings_of(rt).party_org_levels
    did = "%s/%s" % (rt.node_id, period)
    provisional = not month_final(period, today_of(rt), settings_of(rt).indicator_grace_days)
    with steps.read() as conn:
        port = q.EducationReadPort(conn)
        done = set() if not only_missing else port.indicator_units(period)
        today = today_of(rt)
        todo = [(unit_id, port.unit_indicators(unit_id, period, today))
                for unit_id in port.party_orgs(levels) if unit_id not in done]
        district_done = only_missing and not todo and rt.store.stream_version(
            conn, DistrictEducationIndicators.stream_id_for(did)) > 0
        figures = None if district_done else port.district_figures(period, levels, today)[0]
    published, unchanged = [], 0
    for start in range(0, len(todo), PUBLISH_BATCH):
        with steps.unit_of_work() as uow:  # checked again against the log, under the lock
            batch = []
            for unit_id, values in todo[start:start + PUBLISH_BATCH]:
                iid = EducationIndicators.indicators_id(unit_id, period)
                if uow.exists(EducationIndicators, iid):
                    if only_missing:
                        continue  # published since the figures were computed
                    agg = uow.get(EducationIndicators, iid)
                else:
                    agg = EducationIndicators.blank(unit_id, period)
                if agg.publish(unit_id, period, values, provisional):
                    batch.append((unit_id, agg))
                else:
                    unchanged += 1
            if batch:
                uow.save(*(agg for _, agg in batch))
        published.extend(unit_id for unit_id, _ in batch)
    district_published = False
    if figures is not None:
        with steps.unit_of_work() as uow:
            agg = uow.get(DistrictEducationIndicators, did) if uow.exists(DistrictEducationIndicators, did) \
                else DistrictEducationIndicators.blank(rt.node_id, period)
            if agg.publish(rt.node_id, period, figures, provisional):
                uow.save(agg)
                district_published = True
    return {"period": period, "published": published, "unchanged": unchanged,
            "district_published": district_published, "provisional": provisional}


@app.command("publish_indicators", s.PublishIndicators, roles=(NODE_ADMIN,), phased=True)
def publish_indicators(steps, d):
    """Publish (or correct) each party organisation's and the district's figures for a
    month: ``EducationIndicators.Published`` / ``DistrictEducationIndicators.Published``,
    only where they changed since last published."""
    return _publish(steps, d["period"], only_missing=False)


REPUBLISH_MONTHS = 12  # how far back late entries republish a month by themselves


@app.runtime_state("indicator_entries_seen")
def _indicator_entries_seen() -> dict[str, int]:
    """The indicator timer's "seen" guard: period -> the log position of the latest entry
    counting for that month when ``publish_due_indicators`` last republished it, so a month
    is looked at again only once a later entry arrives (not on every tick). Per process and
    in memory only; it is not rebuilt from the log: after a restart it starts empty, so the
    first run looks again at each month of the last ``REPUBLISH_MONTHS`` that has entries,
    and - publishing only what changed - appends nothing where nothing did."""
    return {}


@app.command("publish_due_indicators", s.Nothing, roles=(NODE_ADMIN,), phased=True)
def publish_due_indicators(steps, d):
    """Routine (timer): once a month is over, publish its figures for every organisation
    that has none yet - provisional while its grace period for late entries lasts
    (``EDUCATION_INDICATOR_GRACE_DAYS``), so a "not held" is not yet a miss. Then every
    earlier month published within the last ``REPUBLISH_MONTHS`` is published again
    (only what changed) when it has just become final, or when an entry counting for it
    was recorded since this process last looked at it: a late entry corrects the figures
    at the city without anyone republishing by hand."""
    rt = steps.rt
    today = today_of(rt)
    previous = previous_period(period_of(today))
    out = _publish(steps, previous, only_missing=True)
    seen = app.state_of(rt, "indicator_entries_seen")
    oldest = period_of(today - timedelta(days=31 * REPUBLISH_MONTHS))
    with steps.read() as conn:
        port = q.EducationReadPort(conn)
        published = port.published_periods(oldest, previous)
        entries = port.entry_positions(oldest)
    grace = settings_of(rt).indicator_grace_days
    republished = []
    for period in sorted(published):
        if republish_due(period, published[period], entries.get(period, 0), seen.get(period, 0), today, grace):
            again = _publish(steps, period, only_missing=False)
            seen[period] = entries.get(period, 0)
            if again["published"] or again["district_published"]:
                republished.append({"period": period, "units": again["published"],
                                    "provisional": again["provisional"]})
    return dict(out, republished=republished)


@runtime_query("unit_indicators", s.UnitPeriod, scope="unit_id")
def unit_indicators(conn, d, actor, rt):
    """The figures as they stand now (not necessarily published)."""
    q.require_unit(conn, d["unit_id"])
    return q.unit_indicators(conn, d["unit_id"], d["period"], today_of(rt))


@app.query("published_indicators", s.Period)
def published_indicators(conn, d, actor):
    return q.published_indicators(conn, d["period"])


@runtime_query("indicators_as_of", s.AsOf, scope="unit_id")
def indicators_as_of(conn, d, actor, rt):
    """月月行 compliance, check-in coverage and talks on time of a subtree for a month, as
    they stood at a past log position or time - replayed from the log."""
    store = EventStore(conn.engine)
    until = iso_to_us(d["at"].isoformat()) if d.get("at") else None
    with as_of_view(store, app.projections, position=d.get("position"), until_us=until) as c:
        if q.unit_row(c, d["unit_id"]) is None:
            raise NotFound("单位「%s」当时还不存在" % d["unit_id"])
        levels = settings_of(rt).party_org_levels
        # coverage as it stood then: the days that had come by then
        day = local_date(d["at"], settings_of(rt).timezone) if d.get("at") else today_of(rt)
        return {"as_of": d.get("position") if d.get("position") is not None else d["at"].isoformat(),
                "compliance": q.warning_compliance(c, d["unit_id"], d["period"], levels),
                "checkins": q.checkin_monthly(c, d["unit_id"], d["period"], levels, day),
                "indicators": q.unit_indicators(c, d["unit_id"], d["period"], day)}


@app.query("history", s.History, roles=(NODE_ADMIN, INSPECTOR))
def history(conn, d, actor):
    """Every event of one record, oldest first (who, when, what). Not for unit-admins:
    a stream id does not say whose unit it is, and talks and check-ins are personal."""
    return stream_history(conn, d["stream"], d["id"],
                          s.HISTORY_STREAMS[d["stream"]].stream_id_for(d["id"]))


# Routine commands the service's timer runs, in this order (each its own transaction).
ROUTINES = ("publish_daily_reminder", "schedule_calendar_notices", "dispatch_due_notices",
            "detect_overdue", "rotate_publicity_all", "publish_due_indicators")


# =================================================================================================
# 清廉机关实践: 我为清廉机关建设献一策 and 典型案例通报 (集中廉政承诺 is the units service's: it
# keeps the people and their roles)
# =================================================================================================
# 献一策: a unit-admin (or node-admin) records a member's suggestion for the member's unit (the
# member picked from the unit's people); the unit's admins 受理 it (who handles it), note its
# 办理 and 答复 the proposer with whether it was 采纳. ``suggestion_summary`` counts, per unit
# of a subtree and year, submitted / accepted / answered / adopted. The rules are
# ``Suggestion``'s (a proposer of the unit, taken ids).
def _suggestion_unit(conn, data):
    return q.require_suggestion_unit(conn, data["suggestion_id"])


@app.command("submit_suggestion", s.SubmitSuggestion, roles=WRITERS, scope="unit_id", status=201)
def submit_suggestion(uow, d):
    """A member's suggestion (献一策) for their own unit."""
    uow.education.unit(d["unit_id"])
    suggestion_id = new_id(d["suggestion_id"])
    sg = Suggestion.submit(suggestion_id, d["unit_id"], d["proposer_id"], d["title"], d["content"],
                           today_of(uow.rt), proposer_unit=uow.education.member_unit(d["proposer_id"]),
                           taken=uow.exists(Suggestion, suggestion_id))
    uow.save(sg)
    return {"suggestion_id": suggestion_id, "status": sg.status}


@app.command("accept_suggestion", s.AcceptSuggestion, roles=WRITERS, scope=_suggestion_unit)
def accept_suggestion(uow, d):
    """受理: the unit takes the suggestion up, naming who handles it."""
    sg = uow.get(Suggestion, d["suggestion_id"])
    sg.accept(d["handler"], today_of(uow.rt), uow.actor.user_id)
    uow.save(sg)
    return {"suggestion_id": sg.id, "status": sg.status}


@app.command("progress_suggestion", s.ProgressSuggestion, roles=WRITERS, scope=_suggestion_unit)
def progress_suggestion(uow, d):
    """办理: a note on how it is being handled."""
    sg = uow.get(Suggestion, d["suggestion_id"])
    sg.progress(d["note"], today_of(uow.rt), uow.actor.user_id)
    uow.save(sg)
    return {"suggestion_id": sg.id, "status": sg.status}


@app.command("answer_suggestion", s.AnswerSuggestion, roles=WRITERS, scope=_suggestion_unit)
def answer_suggestion(uow, d):
    """答复 the proposer, with whether the suggestion was 采纳 (in full or in part)."""
    sg = uow.get(Suggestion, d["suggestion_id"])
    sg.answer(d["reply"], d["outcome"], today_of(uow.rt), uow.actor.user_id)
    uow.save(sg)
    return {"suggestion_id": sg.id, "status": sg.status, "outcome": sg.outcome}


@app.query("list_suggestions", s.ListSuggestions, roles=ANY_ROLE, scope="unit_id")
def list_suggestions(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return {"suggestions": q.list_suggestions(conn, d["unit_id"], d["year"], d["status"])}


@app.query("get_suggestion", s.SuggestionRef, roles=ANY_ROLE, scope=_suggestion_unit)
def get_suggestion(conn, d, actor):
    return q.get_suggestion(conn, d["suggestion_id"])


@runtime_query("suggestion_summary", s.SuggestionSummary, scope="unit_id")
def suggestion_summary(conn, d, actor, rt):
    q.require_unit(conn, d["unit_id"])
    return q.suggestion_summary(conn, d["unit_id"], d["year"] or today_of(rt).year)


# 典型案例通报: a writer or inspector circulates a typical case (typed, or one of the cases on
# offer from 案例联编) to every active unit of a subtree; each recipient records that it
# studied it (回执: when, headcount, 举一反三); ``case_bulletin_receipts`` lists who has studied
# it and who has not (past the study deadline: 逾期未学). The rules are ``CaseBulletin``'s and
# ``CaseStudyReceipt``'s (a scope below the issuer, a case on offer, taken ids).
def _bulletin_scope(conn, data):
    return q.require_bulletin_scope(conn, data["bulletin_id"])


@app.command("issue_case_bulletin", s.IssueCaseBulletin, roles=WRITERS + (INSPECTOR,),
             scope="scope_unit_id", status=201)
def issue_case_bulletin(uow, d):
    """典型案例通报: a typical case (typed, or one of the cases on offer) to every active unit
    of a subtree (the issuer itself excepted), each of which then owes a study receipt."""
    ed = uow.education
    issuer = ed.unit(d["issuer_unit_id"], "issuer_unit_id")
    scope = ed.unit(d["scope_unit_id"], "scope_unit_id")
    bulletin_id = new_id(d["bulletin_id"])
    b = CaseBulletin.issue(bulletin_id, d["issuer_unit_id"], d["scope_unit_id"], d["title"], d["summary"],
                           d["requirements"], ed.active_subtree_ids(d["scope_unit_id"]), today_of(uow.rt),
                           d["due_on"], d["case_ref"], issuer_path=issuer["path"] or "",
                           scope_path=scope["path"],
                           case=ed.case_on_offer(d["case_ref"]) if d["case_ref"] else None,
                           taken=uow.exists(CaseBulletin, bulletin_id))
    uow.save(b)
    return {"bulletin_id": bulletin_id, "recipients": len(b.recipients)}


@app.command("record_case_study", s.RecordCaseStudy, roles=WRITERS, scope="unit_id", status=201)
def record_case_study(uow, d):
    """A recipient unit's receipt: it studied the case (when, how many, 举一反三)."""
    if not uow.exists(CaseBulletin, d["bulletin_id"]):
        raise NotFound("通报「%s」不存在" % d["bulletin_id"], {"bulletin_id": ["没有这份通报"]})
    bulletin = uow.get(CaseBulletin, d["bulletin_id"])
    taken = uow.exists(CaseStudyReceipt, CaseStudyReceipt.receipt_id(bulletin.id, d["unit_id"]))
    r = CaseStudyReceipt.record(bulletin, d["unit_id"], d["studied_on"], today_of(uow.rt),
                                d["headcount"], d["note"], uow.actor.user_id, taken=taken)
    uow.save(r)
    return {"bulletin_id": bulletin.id, "unit_id": d["unit_id"], "studied_on": r.studied_on}


@runtime_query("list_case_bulletins", s.BulletinsOfUnit, scope="unit_id")
def list_case_bulletins(conn, d, actor, rt):
    q.require_unit(conn, d["unit_id"])
    return {"bulletins": q.list_bulletins(conn, d["unit_id"], today_of(rt))}


@runtime_query("case_bulletin_receipts", s.BulletinReceipts, scope="unit_id")
def case_bulletin_receipts(conn, d, actor, rt):
    q.require_unit(conn, d["unit_id"])
    out = q.bulletin_receipts_of(conn, d["bulletin_id"], d["unit_id"], today_of(rt))
    if out is None:
        raise NotFound("通报「%s」不存在" % d["bulletin_id"], {"bulletin_id": ["没有这份通报"]})
    return out


@app.query("bulletin_cases", s.Nothing, roles=ANY_ROLE)
def bulletin_cases(conn, d, actor):
    """The typical cases on offer (案例联编, the city's), for a bulletin's case picker."""
    return {"cases": q.bulletin_cases(conn)}
