"""The exchange service layer: every command and query, its input and who may run it.

A command loads what its rules need (its aggregate with ``uow.get``, the read models'
facts through the read port ``uow.exchange``: ``queries.ExchangeReadPort`` - a record's
row as this node has it, a unit of this node, the figures published here - and the
trusted nodes from the federation's registry), lets the domain decide (every rule is in
``domain.py``), saves and answers. The rules that need more than one aggregate take
those facts as arguments there:

* **Ownership.** Only the owner node changes a record (revises a case, accepts a
  proposal); other nodes get a ``Forbidden`` that says what they can do instead
  (``domain.require_owner``).
* **Visibility.** A node can add to a record (contribute, comment, propose, sign up,
  endorse) only if the record is here and published - i.e. it was shared with this
  node (``domain.require_visible``) - and the sub-record then reaches exactly the
  record's audience (``domain.sub_audience``).
* **Peers.** Named recipients and invited nodes must be trusted nodes in the registry
  (``domain.require_trusted``).

Every command that records a shared aggregate ends with ``save_and_share``: the events
are appended and, in the same transaction, the shareable ones are signed into the
outbox (``services.exchange.federation.Federation.stage``). Bad input is refused by the
schemas or by the domain before anything is saved, so nothing is written.
"""
from __future__ import annotations

import uuid
from datetime import timezone
from zoneinfo import ZoneInfo

from services.exchange import queries as q
from services.exchange import schemas as s
from services.exchange.domain import (
    ROOTS, Attendance, Case, Comment, Contribution, Endorsement, EscalatedCase, Exemplar,
    Experience, FollowUp, IndicatorReport, JointActivity, JointProblem, LearnedFrom, Proposal,
    SignUp, UnitRegister, derived_id, exemplar_indicators, figures_taken, follows_publication,
    numbers, own_unit_name, problem_overdue, record_id, republished_indicators,
    require_activity_open, require_known, require_new, require_owner, require_trusted,
    require_visible, sub_audience, talk_referral, task_ref, task_referral,
)
from services.exchange.federation import current_city
from services.exchange.projections import PROJECTIONS
from services.exchange.queries import (
    city_comparison, compare_indicators, district_summary, own_unpublished, record_detail,
    record_history, relief_measure, shared_feed,
)
from shared import config
from shared.app import Application
from shared.auth import ANY_ROLE, NODE_ADMIN, WRITERS
from shared.unittree import directory_path

app = Application("exchange", unit_path=directory_path)
app.projections = PROJECTIONS
app.read_port("exchange", q.ExchangeReadPort)


# -- helpers ---------------------------------------------------------------------------
def fed(uow_or_rt):
    """This node's federation (``rt.ext.federation``, built by the service at start-up)."""
    rt = getattr(uow_or_rt, "rt", uow_or_rt)
    federation = rt.ext.get("federation")
    if federation is None:
        raise RuntimeError("交流服务未配置联盟信息，暂时无法处理")
    return federation


def save_and_share(uow, *aggregates) -> None:
    stored = uow.save(*aggregates)
    fed(uow).stage(uow, stored)


def new_id(uow, given: str | None) -> str:
    return record_id(fed(uow).node_id, given or uuid.uuid4().hex[:12])


def iso_utc(dt) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_unit(field: str):
    """The scope of a command on a record: the unit the record belongs to."""
    return lambda conn, d: (q.record_row(conn, d[field]) or {}).get("unit_id")


def require_own(uow, rid: str, kind: str, instead: str) -> None:
    require_owner(rid, kind, fed(uow).node_id, instead)


def check_peers(uow, nodes: list[str], field: str) -> None:
    registry = fed(uow).registry
    require_trusted(nodes, {n for n in nodes if registry.get(n) is not None}, field)


def visible(uow, rid: str, kind: str | None = None) -> dict:
    """The row of a published record this node can see (its own, or shared with it)."""
    return require_visible(uow.exchange.record(rid), rid, kind)


def unit_named(uow, unit_id: str | None, field: str = "unit_id") -> str | None:
    """The name of a unit of this node in use (it travels with the record)."""
    return own_unit_name(uow.exchange.unit(unit_id), unit_id, field)


def sub_sharing(uow, row: dict) -> tuple[str, list[str]]:
    """The audience of something added to ``row``: the record's own audience."""
    f = fed(uow)
    return sub_audience(row, f.node_id, f.city_id)


def share_now(uow, record, sharing: dict | None) -> None:
    """Share ``record`` as the command asks (``share``), if it does."""
    if sharing:
        share(uow, record, sharing["sharing"], sharing["recipients"])


def share(uow, record, sharing: str, recipients: list[str]) -> None:
    if sharing == "named":
        check_peers(uow, recipients, "recipients")
    f = fed(uow)
    record.check_audience(sharing, f.node_id, f.city_id)
    record.share(sharing, recipients)


# -- sharing (every kind) ----------------------------------------------------------------
@app.command("share_record", s.ShareRecord, roles=WRITERS, scope=_record_unit("record_id"))
def share_record(uow, d):
    """Publish a record at a sharing level (node / city / all / named), or move it to
    another level (the nodes that lose sight of it are told: Withdrawn, then Published)."""
    require_own(uow, d["record_id"], d["kind"], "只能共享本节点自己的记录")
    record = uow.get(ROOTS[d["kind"]], d["record_id"])
    share(uow, record, d["sharing"], d["recipients"])
    save_and_share(uow, record)
    return {"record_id": record.id, "sharing": record.sharing, "recipients": record.recipients}


@app.command("withdraw_record", s.WithdrawRecord, roles=WRITERS, scope=_record_unit("record_id"))
def withdraw_record(uow, d):
    """Stop sharing a record; the nodes that could see it drop it from their feeds."""
    require_own(uow, d["record_id"], d["kind"], "只能撤回本节点自己的记录")
    record = uow.get(ROOTS[d["kind"]], d["record_id"])
    record.withdraw(d["reason"])
    save_and_share(uow, record)
    return {"record_id": record.id, "published": False}


# -- 经验联享 ----------------------------------------------------------------------------
@app.command("draft_experience", s.DraftExperience, roles=WRITERS, scope="unit_id", status=201)
def draft_experience(uow, d):
    """Write up an experience (经验联享); ``share`` publishes it at once."""
    eid = new_id(uow, d["experience_id"])
    require_new("experience", eid, uow.exists(Experience, eid), "experience_id")
    content = {k: d[k] for k in ("unit_id", "title", "summary", "body", "business_type",
                                 "topics", "attachments")}
    content["unit_name"] = unit_named(uow, d["unit_id"])
    exp = Experience.draft(eid, content)
    share_now(uow, exp, d["share"])
    save_and_share(uow, exp)
    return {"experience_id": eid, "sharing": exp.sharing, "published": exp.published}


@app.command("edit_experience", s.EditExperience, roles=WRITERS, scope=_record_unit("experience_id"))
def edit_experience(uow, d):
    require_own(uow, d["experience_id"], "experience", "可以改为发表评论")
    exp = uow.get(Experience, d["experience_id"])
    exp.edit({k: v for k, v in d.items() if k != "experience_id"})
    save_and_share(uow, exp)
    return {"experience_id": exp.id, "version": exp.version}


@app.command("mark_learned", s.MarkLearned, roles=WRITERS, scope="unit_id", status=201)
def mark_learned(uow, d):
    """上下互学: one of this node's units learnt from an experience."""
    row = visible(uow, d["experience_id"], "experience")
    name = unit_named(uow, d["unit_id"])
    lid = derived_id(fed(uow).node_id, "learned", d["experience_id"], d["unit_id"])
    LearnedFrom.check(d["unit_id"], d["experience_id"], uow.exists(LearnedFrom, lid))
    sharing, recipients = sub_sharing(uow, row)
    save_and_share(uow, LearnedFrom.mark(lid, sharing, recipients, d["experience_id"],
                                         d["unit_id"], name, d["note"]))
    return {"learned_id": lid}


@app.command("post_comment", s.PostComment, roles=WRITERS, scope="unit_id", status=201)
def post_comment(uow, d):
    """Discussion on a shared record or on a proposal (讨论)."""
    if d["parent_kind"] == "proposal":
        proposal = Comment.on_proposal(uow.exchange.sub(d["parent_id"]), d["parent_id"])
        root = visible(uow, proposal["record_id"], "problem")
    else:
        root = visible(uow, d["parent_id"], d["parent_kind"])
    if d["reply_to"] is not None:
        Comment.check_reply(uow.exchange.sub(d["reply_to"]), root["record_id"])
    cid = new_id(uow, d["comment_id"])
    require_new("comment", cid, uow.exists(Comment, cid))
    sharing, recipients = sub_sharing(uow, root)
    save_and_share(uow, Comment.post(cid, sharing, recipients, d["parent_kind"], d["parent_id"],
                                     root["record_id"], d["text"], d["unit_id"],
                                     unit_named(uow, d["unit_id"]), d["reply_to"]))
    return {"comment_id": cid, "record_id": root["record_id"]}


# -- 案例联编 ----------------------------------------------------------------------------
@app.command("compile_case", s.CompileCase, roles=WRITERS, scope="unit_id", status=201)
def compile_case(uow, d):
    """Compile a typical case (案例联编), analysed, with lessons (举一反三)."""
    cid = new_id(uow, d["case_id"])
    require_new("case", cid, uow.exists(Case, cid), "case_id")
    content = {k: d[k] for k in ("unit_id", "title", "category", "summary", "facts", "analysis",
                                 "lessons", "tags")}
    content["unit_name"] = unit_named(uow, d["unit_id"])
    case = Case.compile(cid, content)
    share_now(uow, case, d["share"])
    save_and_share(uow, case)
    return {"case_id": cid, "revision": case.revision, "published": case.published}


@app.command("revise_case", s.ReviseCase, roles=WRITERS, scope=_record_unit("case_id"))
def revise_case(uow, d):
    """The owner's new revision, merging contributions other nodes made."""
    require_own(uow, d["case_id"], "case", "可以改为提交补充内容")
    Case.check_merge(d["case_id"], [(cid, uow.exchange.sub(cid)) for cid in d["merge_contributions"]])
    case = uow.get(Case, d["case_id"])
    changes = {k: v for k, v in d.items() if k in Case.EDITABLE}
    case.revise(changes, d["merge_contributions"], d["note"])
    save_and_share(uow, case)
    return {"case_id": case.id, "revision": case.revision,
            "merged_contributions": case.merged_contributions}


@app.command("contribute_to_case", s.Contribute, roles=WRITERS, scope="unit_id", status=201)
def contribute_to_case(uow, d):
    """Add analysis or a local lesson to another node's case (append-only)."""
    row = visible(uow, d["case_id"], "case")
    Contribution.check(row, fed(uow).node_id)
    cid = new_id(uow, d["contribution_id"])
    require_new("contribution", cid, uow.exists(Contribution, cid))
    sharing, recipients = sub_sharing(uow, row)
    save_and_share(uow, Contribution.add(cid, sharing, recipients, d["case_id"],
                                         d["contribution_type"], d["text"], d["unit_id"],
                                         unit_named(uow, d["unit_id"])))
    return {"contribution_id": cid, "case_id": d["case_id"]}


# -- 活动联办 ----------------------------------------------------------------------------
@app.command("plan_activity", s.PlanActivity, roles=WRITERS, scope="unit_id", status=201)
def plan_activity(uow, d):
    """Plan a joint activity and invite other nodes; ``share`` announces it at once."""
    aid = new_id(uow, d["activity_id"])
    require_new("activity", aid, uow.exists(JointActivity, aid), "activity_id")
    invited = sorted(set(d["invited_nodes"]) - {fed(uow).node_id})
    check_peers(uow, invited, "invited_nodes")
    content = {k: d[k] for k in ("unit_id", "title", "theme", "description", "location")}
    content.update(unit_name=unit_named(uow, d["unit_id"]), invited_nodes=invited,
                   starts_at=iso_utc(d["starts_at"]), ends_at=iso_utc(d["ends_at"]))
    activity = JointActivity.plan(aid, content)
    share_now(uow, activity, d["share"])
    save_and_share(uow, activity)
    return {"activity_id": aid, "status": activity.status, "sharing": activity.sharing}


@app.command("reschedule_activity", s.Reschedule, roles=WRITERS, scope=_record_unit("activity_id"))
def reschedule_activity(uow, d):
    require_own(uow, d["activity_id"], "activity", "只有组织方可以调整时间")
    activity = uow.get(JointActivity, d["activity_id"])
    activity.reschedule(iso_utc(d["starts_at"]), iso_utc(d["ends_at"]), d["location"], d["note"])
    save_and_share(uow, activity)
    return {"activity_id": activity.id, "starts_at": activity.starts_at,
            "ends_at": activity.ends_at, "location": activity.location}


def _open_activity(uow, aid: str) -> dict:
    row = visible(uow, aid, "activity")
    require_activity_open(row["status"])
    return row


@app.command("sign_up", s.SignUpInput, roles=WRITERS, scope="unit_id", status=201)
def sign_up(uow, d):
    """报名: a unit of this node takes part, with a headcount (again after withdrawing)."""
    row = _open_activity(uow, d["activity_id"])
    name = unit_named(uow, d["unit_id"])
    sid = derived_id(fed(uow).node_id, "signup", d["activity_id"], d["unit_id"])
    sharing, recipients = sub_sharing(uow, row)
    signup = SignUp.sign_up(uow.get(SignUp, sid) if uow.exists(SignUp, sid) else None, sid,
                            sharing, recipients, d["activity_id"], d["unit_id"], name, d["headcount"])
    save_and_share(uow, signup)
    return {"signup_id": sid, "headcount": d["headcount"]}


def _signup(uow, d) -> SignUp:
    sid = derived_id(fed(uow).node_id, "signup", d["activity_id"], d["unit_id"])
    SignUp.require_signed_up(uow.exists(SignUp, sid), d["unit_id"], d["activity_id"])
    return uow.get(SignUp, sid)


@app.command("change_headcount", s.SignUpInput, roles=WRITERS, scope="unit_id")
def change_headcount(uow, d):
    _open_activity(uow, d["activity_id"])
    signup = _signup(uow, d)
    signup.change(d["headcount"])
    save_and_share(uow, signup)
    return {"signup_id": signup.id, "headcount": signup.headcount}


@app.command("withdraw_sign_up", s.WithdrawSignUp, roles=WRITERS, scope="unit_id")
def withdraw_sign_up(uow, d):
    signup = _signup(uow, d)
    signup.withdraw(d["reason"])
    save_and_share(uow, signup)
    return {"signup_id": signup.id, "active": False}


@app.command("record_attendance", s.RecordAttendance, roles=(NODE_ADMIN,), status=201)
def record_attendance(uow, d):
    """This node's attendance at a joint activity: its units and how many came (no
    names). Recording again corrects it."""
    row = visible(uow, d["activity_id"], "activity")
    Attendance.check(row)
    units = [{"unit_id": u["unit_id"], "unit_name": unit_named(uow, u["unit_id"], "units"),
              "attendees": u["attendees"]} for u in d["units"]]
    aid = derived_id(fed(uow).node_id, "attendance", d["activity_id"])
    if uow.exists(Attendance, aid):
        attendance = uow.get(Attendance, aid)
        attendance.correct(units, d["note"])
    else:
        sharing, recipients = sub_sharing(uow, row)
        attendance = Attendance.record(aid, sharing, recipients, d["activity_id"], units, d["note"])
    save_and_share(uow, attendance)
    return {"attendance_id": aid, "attendees": attendance.attendees}


@app.command("report_outcome", s.ReportOutcome, roles=WRITERS, scope=_record_unit("activity_id"))
def report_outcome(uow, d):
    require_own(uow, d["activity_id"], "activity", "只有组织方可以登记活动结果")
    activity = uow.get(JointActivity, d["activity_id"])
    activity.report_outcome(d["summary"], d["results"])
    save_and_share(uow, activity)
    return {"activity_id": activity.id, "status": activity.status}


@app.command("cancel_activity", s.CancelActivity, roles=WRITERS, scope=_record_unit("activity_id"))
def cancel_activity(uow, d):
    require_own(uow, d["activity_id"], "activity", "只有组织方可以取消活动")
    activity = uow.get(JointActivity, d["activity_id"])
    activity.cancel(d["reason"])
    save_and_share(uow, activity)
    return {"activity_id": activity.id, "status": activity.status}


# -- 典型联树 ----------------------------------------------------------------------------
@app.command("nominate_exemplar", s.NominateExemplar, roles=WRITERS, scope="unit_id", status=201)
def nominate_exemplar(uow, d):
    """典型联树: nominate a unit or section, with the indicators it stands out on."""
    eid = new_id(uow, d["exemplar_id"])
    require_new("exemplar", eid, uow.exists(Exemplar, eid), "exemplar_id")
    content = {k: d[k] for k in ("unit_id", "category", "title", "section", "description",
                                 "period")}
    indicators, sources = exemplar_indicators(
        uow.exchange.published_figures(fed(uow).node_id, d["unit_id"], d["period"]),
        numbers(d["indicators"]))
    content.update(unit_name=unit_named(uow, d["unit_id"]), indicators=indicators,
                   indicator_sources=sources)
    exemplar = Exemplar.nominate(eid, content)
    share_now(uow, exemplar, d["share"])
    save_and_share(uow, exemplar)
    return {"exemplar_id": eid, "published": exemplar.published}


@app.command("update_exemplar_indicators", s.UpdateExemplarIndicators, roles=WRITERS,
             scope=_record_unit("exemplar_id"))
def update_exemplar_indicators(uow, d):
    require_own(uow, d["exemplar_id"], "exemplar", "可以改为推荐")
    exemplar = uow.get(Exemplar, d["exemplar_id"])
    indicators, sources = exemplar_indicators(
        uow.exchange.published_figures(fed(uow).node_id, exemplar.unit_id, d["period"]),
        numbers(d["indicators"]))
    exemplar.update_indicators(indicators, d["period"], sources)
    save_and_share(uow, exemplar)
    return {"exemplar_id": exemplar.id, "period": exemplar.period}


@app.command("endorse_exemplar", s.Endorse, roles=WRITERS, scope="unit_id", status=201)
def endorse_exemplar(uow, d):
    """Another node endorses an exemplar (once per node)."""
    row = visible(uow, d["exemplar_id"], "exemplar")
    me = fed(uow).node_id
    eid = derived_id(me, "endorsement", d["exemplar_id"])
    Endorsement.check(row, me, uow.exists(Endorsement, eid))
    sharing, recipients = sub_sharing(uow, row)
    save_and_share(uow, Endorsement.give(eid, sharing, recipients, d["exemplar_id"],
                                         d["comment"], d["unit_id"],
                                         unit_named(uow, d["unit_id"])))
    return {"endorsement_id": eid}


# -- 难题联解 ----------------------------------------------------------------------------
def _day(moment) -> str:
    """The users' calendar day of a moment (``QINGLIAN_TZ``)."""
    return moment.astimezone(ZoneInfo(config.timezone_name())).date().isoformat()


def _with_overdue(record: dict, today: str) -> dict:
    """A problem's ``overdue`` flag, worked out from its shared deadline and status."""
    if record["kind"] == "problem":
        record["overdue"] = problem_overdue(record["status"], record["content"].get("deadline"),
                                            today)
    return record


@app.command("post_problem", s.PostProblem, roles=WRITERS, scope="unit_id", status=201)
def post_problem(uow, d):
    """难题联解: a problem with its context and a deadline; ``share`` posts it at once."""
    pid = new_id(uow, d["problem_id"])
    require_new("problem", pid, uow.exists(JointProblem, pid), "problem_id")
    content = {k: d[k] for k in ("unit_id", "title", "context", "deadline", "tags")}
    content["unit_name"] = unit_named(uow, d["unit_id"])
    problem = JointProblem.post(pid, content, _day(uow.now))
    share_now(uow, problem, d["share"])
    save_and_share(uow, problem)
    return {"problem_id": pid, "status": problem.status}


@app.command("extend_problem_deadline", s.ExtendDeadline, roles=WRITERS,
             scope=_record_unit("problem_id"))
def extend_problem_deadline(uow, d):
    require_own(uow, d["problem_id"], "problem", "只有发布方可以延长期限")
    problem = uow.get(JointProblem, d["problem_id"])
    problem.extend_deadline(d["deadline"], d["reason"], _day(uow.now))
    save_and_share(uow, problem)
    return {"problem_id": problem.id, "deadline": problem.deadline}


@app.command("propose_solution", s.Propose, roles=WRITERS, scope="unit_id", status=201)
def propose_solution(uow, d):
    """A proposal from any node that can see the problem, while it is open."""
    row = visible(uow, d["problem_id"], "problem")
    Proposal.check(row)
    pid = new_id(uow, d["proposal_id"])
    require_new("proposal", pid, uow.exists(Proposal, pid))
    sharing, recipients = sub_sharing(uow, row)
    save_and_share(uow, Proposal.submit(pid, sharing, recipients, d["problem_id"], d["summary"],
                                        d["detail"], d["unit_id"],
                                        unit_named(uow, d["unit_id"])))
    return {"proposal_id": pid, "problem_id": d["problem_id"]}


@app.command("accept_proposal", s.AcceptProposal, roles=WRITERS, scope=_record_unit("problem_id"))
def accept_proposal(uow, d):
    require_own(uow, d["problem_id"], "problem", "只有发布方可以采纳方案")
    proposal = JointProblem.proposal_of(uow.exchange.sub(d["proposal_id"]), d["proposal_id"],
                                        d["problem_id"])
    problem = uow.get(JointProblem, d["problem_id"])
    problem.accept(d["proposal_id"], proposal["owner"], d["note"])
    save_and_share(uow, problem)
    return {"problem_id": problem.id, "status": problem.status,
            "accepted_proposal_id": problem.accepted_proposal_id}


@app.command("record_resolution", s.RecordResolution, roles=WRITERS,
             scope=_record_unit("problem_id"))
def record_resolution(uow, d):
    """The resolution record: what was done and its results (status: resolved)."""
    require_own(uow, d["problem_id"], "problem", "只有发布方可以登记解决结果")
    problem = uow.get(JointProblem, d["problem_id"])
    problem.resolve(d["summary"], d["results"], d["measures"], d["resolved_on"])
    save_and_share(uow, problem)
    return {"problem_id": problem.id, "status": problem.status, "resolution": problem.resolution}


# -- figures from the supervision and education services ---------------------------------
INDICATOR_SOURCES = {
    # event type -> (source service, scope); payloads as those services publish them
    "UnitIndicators.Published": ("supervision", "unit"),
    "DistrictIndicators.Published": ("supervision", "district"),
    "EducationIndicators.Published": ("education", "unit"),
    "DistrictEducationIndicators.Published": ("education", "district"),
    # 四种形态 counts per quarter (no unit, no person: the records never leave supervision)
    "DisciplineCounts.Published": ("supervision", "discipline"),
    # 责任书 coverage of the node's tree per period (the units service)
    "LetterCoverage.Published": ("units", "district"),
}


def record_indicators(uow, event) -> str | None:
    """Record another service's published figures as this node's ``IndicatorReport``
    and share it up to the city (上下互比 without re-typing).

    Only the unit id, the period and the numbers are taken (``domain.figures_taken``).
    Returns the report id, or None when the payload has no period or no numbers (the
    caller logs it)."""
    source, scope = INDICATOR_SOURCES[event.event_type]
    taken = figures_taken(scope, event.payload)
    if taken is None:
        return None
    period, unit_id, indicators = taken
    unit = app.bind_ports(uow).exchange.unit(unit_id)
    name = unit["name"] if unit else None
    me = fed(uow).node_id
    rid = derived_id(me, "indicators", source, scope, unit_id or "", period)
    # 基层减负: which published event these figures were derived from
    derived_from = {"service": source, "event_type": event.event_type,
                    "event_id": str(event.event_id)}
    if uow.exists(IndicatorReport, rid):
        report = uow.get(IndicatorReport, rid)
        if not report.update(source, scope, unit_id, name, period, indicators, derived_from):
            return rid
    else:
        report = IndicatorReport.record(rid, "city", source, scope, unit_id, name, period,
                                        indicators, derived_from)
    save_and_share(uow, report)
    return rid


# -- queries -------------------------------------------------------------------------------
@app.query("shared_feed", s.Feed, roles=ANY_ROLE)
def shared_feed_query(conn, d, actor):
    """Everything this node can see, newest first; filter by kind, origin, tag."""
    return shared_feed(conn, d["kind"], d["origin"], d["tag"], d["before"], d["limit"])


@app.query("get_record", s.RecordRef, roles=ANY_ROLE, runtime=True)
def get_record(conn, d, actor, rt):
    """One record with what every node added to it (a joint problem: ``overdue``)."""
    out = require_known(record_detail(conn, d["record_id"], current_city(conn)), d["record_id"])
    return _with_overdue(out, _day(rt.clock()))


@app.query("record_history", s.RecordRef, roles=ANY_ROLE)
def record_history_query(conn, d, actor):
    """The record's full history across nodes: its events and those of everything added
    to it, in the order they happened, each with the node that recorded it."""
    events = require_known(record_history(conn, d["record_id"]), d["record_id"])
    return {"record_id": d["record_id"], "events": events}


@app.query("district_summary", s.NoInput, roles=ANY_ROLE)
def district_summary_query(conn, d, actor):
    """Per node: records shared, problems open/solved, activity participation (at the
    city: every district, from what they shared)."""
    return {"nodes": district_summary(conn)}


@app.query("compare_indicators", s.Compare, roles=ANY_ROLE)
def compare_indicators_query(conn, d, actor):
    """上下互比: units and districts side by side for a period, ranked per indicator."""
    return compare_indicators(conn, d["period"], d["indicator"], d["source"])


@app.query("city_comparison", s.CityComparison, roles=ANY_ROLE)
def city_comparison_query(conn, d, actor):
    """上下互比 (the city's view): districts side by side, the city's best units, a drill-down.

    The districts' own figures for a period, ranked among the districts; the ``limit``
    best units of the city per indicator (or ``indicator`` only); with ``node``, that
    district's units ranked within it - read from the ranking kept as the figures arrive
    (``projections.IndicatorRanking``). No ``period``: the latest published. Every answer
    has a ``version``; given it back as ``known`` while nothing it reads has changed, the
    answer is only ``{version, unchanged: true}`` (the console keeps its page until then)."""
    return city_comparison(conn, d["period"], d["indicator"], d["node"], d["source"], d["limit"],
                           d["known"])


@app.query("relief_measure", s.ReliefMeasure, roles=ANY_ROLE, runtime=True)
def relief_measure_query(conn, d, actor, rt):
    """基层减负: per node, the figures this node received from it in a month (this month by
    default, users' time zone, by when the origin sent them) - derived from published
    records (上下互比 reports, each naming the event it came from; exemplar figures taken
    from published data) or typed by hand (exemplar figures marked manual) - and whether
    it sent them without any manual entry."""
    f = fed(rt)
    nodes = [{"node_id": r.node_id, "level": r.level} for r in f.registry.all()]
    return relief_measure(conn, d["month"] or _day(rt.clock())[:7], config.timezone_name(),
                          nodes, f.node_id)


@app.query("trusted_nodes", s.NoInput, roles=ANY_ROLE, runtime=True)
def trusted_nodes(conn, d, actor, rt):
    """The trusted nodes, this one included: for node pickers and who-will-see sentences.

    Each with its id, level, parent and whether it is this node."""
    f = fed(rt)
    return {"this_node": f.node_id, "city": f.city_id,
            "nodes": [{"node_id": r.node_id, "level": r.level, "parent": r.parent,
                       "this_node": r.node_id == f.node_id} for r in f.registry.all()]}


@app.query("own_drafts", s.Drafts, roles=ANY_ROLE, runtime=True)
def own_drafts(conn, d, actor, rt):
    """This node's own records not shared now (drafts, withdrawn), newest first.

    What ``shared_feed`` leaves out."""
    return own_unpublished(conn, fed(rt).node_id, d["kind"], d["limit"])


@app.query("federation_status", s.NoInput, roles=ANY_ROLE)
def federation_status(conn, d, actor):
    """Outbox (published or not) and, per origin, what was applied and rejected."""
    return q.federation_status(conn)


# -- what the city oversees (督办, unit registers, 四种形态 counts) ---------------------------------
# Read-only at the city and never re-typed (issue 10, items 5-7):
# * 督办 - a rectification (or 跟踪问效 task, or 廉政谈话) a district's escalation ladder
#   referred to the city becomes the district's ``EscalatedCase``, shared up; its later moves
#   follow as ``EscalatedCase.Progressed``; the city records its ``FollowUp``, named to the
#   district. At the city the cases nobody has followed up yet are its inbox.
# * 单位台账 - ``publish_register`` (the service's timer) shares this node's unit register
#   (no people) up to the city when it changed; ``district_registers`` reads them, with each
#   node's 责任书 coverage.
# * 四种形态 counts - counts per form and quarter (no unit, no person) as ``IndicatorReport``s
#   of scope ``discipline``: the records themselves never leave supervision.
# The reactions below are the service's event handlers' (service.py): their own unit of work
# gets the read port with ``app.bind_ports``.
def case_id_for(node_id: str, rect_id: str) -> str:
    return derived_id(node_id, "escalation", rect_id)


def _refer(uow, case: dict) -> str | None:
    """This node's ``EscalatedCase`` of a referral, shared up to the city (once per ref)."""
    cid = case_id_for(fed(uow).node_id, case["rect_id"])
    if uow.exists(EscalatedCase, cid):
        return None
    save_and_share(uow, EscalatedCase.refer(cid, case))
    return cid


def _progress(uow, event, ref: str) -> bool:
    cid = case_id_for(fed(uow).node_id, ref)
    if not uow.exists(EscalatedCase, cid):
        return False  # never referred: the city has no case of it
    if event.event_type.endswith(".Escalated") and event.payload["level"] != "city":
        return False  # the rungs below the city are the district's own business
    case = uow.get(EscalatedCase, cid)
    if case.progress(event.event_type, event.payload):
        save_and_share(uow, case)
        return True
    return False


def refer_escalation(uow, event) -> str | None:
    """supervision's ``Rectification.ReferredToCity`` -> this node's ``EscalatedCase``."""
    return _refer(uow, event.payload)


def progress_escalation(uow, event) -> bool:
    """A later move of a rectification the city has as a case (extended, rejected,
    escalated again on a fresh ladder, reopened, closed) keeps the city's case current."""
    return _progress(uow, event, event.payload["rect_id"])


def refer_task(uow, event) -> str | None:
    """supervision's ``Task.ReferredToCity`` -> an ``EscalatedCase`` of subject ``task``
    (domain.task_referral)."""
    return _refer(uow, task_referral(event.payload))


def progress_task(uow, event) -> bool:
    """A later move of a task the city has as a case (extended, completion returned,
    accepted, cancelled, escalated to the city again) keeps the city's case current."""
    return _progress(uow, event, task_ref(event.payload["task_id"]))


def refer_talk(uow, event) -> str | None:
    """education's ``IntegrityTalk.Escalated`` at the ladder's ``city`` rung -> an
    ``EscalatedCase`` of subject ``talk`` (domain.talk_referral: no person)."""
    p = event.payload
    if p.get("notify") != "city":
        return None
    unit = app.bind_ports(uow).exchange.unit(p["unit_id"])
    return _refer(uow, talk_referral(p, unit["name"] if unit else None))


def close_talk_case(uow, event) -> bool:
    """``IntegrityTalk.Held``: the talk was held at last, the city's case of it is closed."""
    ref = talk_referral(dict(event.payload, overdue_days=0, step=0), None)["rect_id"]
    return _progress(uow, event, ref)


@app.command("follow_up_escalation", s.FollowUpEscalation, roles=WRITERS, scope="unit_id",
             status=201)
def follow_up_escalation(uow, d):
    """督办: the city records that it is following an escalated case up - how, what it
    asks, by when it wants an answer. Only the city may; a closed case is refused."""
    f = fed(uow)
    row = visible(uow, d["case_id"], "escalation")
    case = uow.get(EscalatedCase, d["case_id"])
    case.check_follow_up(by_city=f.city_id is not None and f.node_id == f.city_id)
    sharing, recipients = sub_sharing(uow, row)
    fid = new_id(uow, None)
    save_and_share(uow, FollowUp.record(
        fid, sharing, recipients, d["case_id"], d["unit_id"], unit_named(uow, d["unit_id"]),
        d["action"], d["note"], _day(uow.now), d["respond_by"]))
    return {"followup_id": fid, "case_id": d["case_id"]}


@app.query("oversight_cases", s.OversightCases, roles=ANY_ROLE, runtime=True)
def oversight_cases(conn, d, actor, rt):
    """督办: the rectifications districts escalated to the city, with their trail and the
    city's follow-ups; at the city, ``awaiting_follow_up`` are the ones nobody has
    followed up yet (the city rung's inbox). A district sees its own, with the city's
    follow-ups. ``days_late`` is counted to today while the case is open."""
    return q.oversight_cases(conn, d["origin"], d["status"], d["limit"], _day(rt.clock()))


def publish_register(uow) -> dict:
    """Share this node's unit register (names, kinds, levels, the tree, flags - no people)
    up to the city, when it changed since the last time. Run by the service's timer (in
    a unit of work of the system actor): it takes no input and needs nobody."""
    rows = app.bind_ports(uow).exchange.register_units()
    rid = derived_id(fed(uow).node_id, "register", "units")
    if uow.exists(UnitRegister, rid):
        reg = uow.get(UnitRegister, rid)
        if not reg.update(rows):
            return {"register_id": rid, "changed": False, "units": len(rows)}
    else:
        reg = UnitRegister.record(rid, rows)
    save_and_share(uow, reg)
    return {"register_id": rid, "changed": True, "units": len(rows)}


@app.query("district_registers", s.Registers, roles=ANY_ROLE)
def district_registers(conn, d, actor):
    """Every unit register this node can see (the city: each district's, read-only), with
    that node's 责任书 coverage per period as its units service published it."""
    return q.district_registers(conn, d["origin"])


@app.query("discipline_counts_by_node", s.DisciplineByNode, roles=ANY_ROLE)
def discipline_counts_by_node(conn, d, actor):
    """四种形态 counts (forms 1-4 and total) per node and quarter, as each district's
    supervision published them - counts only: the records never leave their node."""
    return q.discipline_counts_by_node(conn, d["period"])


def refresh_exemplars(uow, event) -> int:
    """典型联树: a unit's figures were published (again) for a period: this node's exemplars
    of that unit and period take them, keeping the hand-typed figures of indicators nobody
    publishes - so a figure marked 发布数据 is always the one published. Returns how many
    exemplars changed."""
    if INDICATOR_SOURCES.get(event.event_type, (None, None))[1] != "unit":
        return 0
    p = event.payload if isinstance(event.payload, dict) else {}
    unit_id, period = p.get("unit_id"), p.get("period") or (p.get("as_of") or "")[:7]
    if not isinstance(unit_id, str) or not period:
        return 0
    ex = app.bind_ports(uow).exchange
    me = fed(uow).node_id
    changed = 0
    for rid, content in ex.own_exemplars(me, unit_id):
        if not follows_publication(content, period):
            continue
        indicators, new_sources = republished_indicators(
            content, ex.published_figures(me, unit_id, period))
        exemplar = uow.get(Exemplar, rid)
        if (indicators, new_sources) != (exemplar.indicators, getattr(exemplar, "indicator_sources", None)):
            exemplar.update_indicators(indicators, period, new_sources)
            save_and_share(uow, exemplar)
            changed += 1
    return changed
