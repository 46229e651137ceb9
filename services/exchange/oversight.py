"""What the city oversees, read-only and without re-typing (issue 10, items 5-7):

* **督办** - a rectification a district's escalation ladder referred to the city
  (``Rectification.ReferredToCity`` from that district's supervision) becomes the
  district's ``EscalatedCase``, shared up to the city: what, which unit, how late, the
  trail. Later moves of the rectification (extended, rejected, escalated again, closed)
  follow as ``EscalatedCase.Progressed``. The city records its follow-up
  (``follow_up_escalation`` -> ``FollowUp``, named to the district), which the district
  reads on its own node. ``oversight_cases`` lists them on either side; at the city the
  cases nobody has followed up yet are its inbox (``awaiting_follow_up``).
* **单位台账** - ``publish_register`` (the service's timer) shares this node's unit register
  (names, kinds, levels, the tree, flags; no people) up to the city when it changed;
  ``district_registers`` reads every register this node can see, with each node's
  责任书 coverage (``LetterCoverage.Published`` from the units service, recorded as an
  ``IndicatorReport`` of source ``units``).
* **四种形态 counts** - ``DisciplineCounts.Published`` (counts per form and quarter, no
  unit, no person) is recorded as an ``IndicatorReport`` of scope ``discipline``;
  ``discipline_counts_by_node`` shows them per district. The records themselves are
  private events of the supervision service: nothing here reads them.

Registered on the exchange ``app`` (imported at the end of ``application.py``); the reads
are ``queries.py``'s, the rules the domain's.
"""
from __future__ import annotations

from services.exchange import queries
from services.exchange import schemas as s
from services.exchange.application import (
    _day, app, derived_id, fed, new_id, save_and_share, sub_sharing, unit_name, visible_record,
)
from services.exchange.domain import EscalatedCase, FollowUp, UnitRegister
from shared.auth import ANY_ROLE, WRITERS
from shared.unittree import unit_directory


def case_id_for(node_id: str, rect_id: str) -> str:
    return derived_id(node_id, "escalation", rect_id)


# -- reactions to this node's supervision service -----------------------------------------------
def refer_escalation(uow, event) -> str | None:
    """``Rectification.ReferredToCity`` -> this node's ``EscalatedCase``, shared up to the
    city (once per rectification)."""
    p = event.payload
    cid = case_id_for(fed(uow).node_id, p["rect_id"])
    if uow.exists(EscalatedCase, cid):
        return None
    save_and_share(uow, EscalatedCase.refer(cid, p))
    return cid


def progress_escalation(uow, event) -> bool:
    """A later move of a rectification the city has as a case (extended, rejected,
    escalated again on a fresh ladder, reopened, closed) keeps the city's case current."""
    return _progress(uow, event, event.payload["rect_id"])


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


def refer_task(uow, event) -> str | None:
    """supervision's ``Task.ReferredToCity`` -> an ``EscalatedCase`` of subject ``task``
    (domain.task_referral), shared up to the city (once per task)."""
    from services.exchange.domain import task_referral
    case = task_referral(event.payload)
    cid = case_id_for(fed(uow).node_id, case["rect_id"])
    if uow.exists(EscalatedCase, cid):
        return None
    save_and_share(uow, EscalatedCase.refer(cid, case))
    return cid


def progress_task(uow, event) -> bool:
    """A later move of a task the city has as a case (extended, completion returned,
    accepted, cancelled, escalated to the city again) keeps the city's case current."""
    from services.exchange.domain import task_ref
    return _progress(uow, event, task_ref(event.payload["task_id"]))


def refer_talk(uow, event) -> str | None:
    """education's ``IntegrityTalk.Escalated`` at the ladder's ``city`` rung -> an
    ``EscalatedCase`` of subject ``talk`` (domain.talk_referral: no person), shared up."""
    from services.exchange.domain import talk_referral
    from shared.unittree import unit_of
    p = event.payload
    if p.get("notify") != "city":
        return None
    unit = unit_of(uow.conn, unit_directory, p["unit_id"])
    case = talk_referral(p, unit["name"] if unit else None)
    cid = case_id_for(fed(uow).node_id, case["rect_id"])
    if uow.exists(EscalatedCase, cid):
        return None
    save_and_share(uow, EscalatedCase.refer(cid, case))
    return cid


def talk_held(uow, event) -> bool:
    """The talk was held at last: the city's case of it is closed."""
    from services.exchange.domain import talk_referral
    p = dict(event.payload, overdue_days=0, step=0)
    ref = talk_referral(p, None)["rect_id"]
    cid = case_id_for(fed(uow).node_id, ref)
    if not uow.exists(EscalatedCase, cid):
        return False
    case = uow.get(EscalatedCase, cid)
    if case.progress(event.event_type, event.payload):
        save_and_share(uow, case)
        return True
    return False


# -- 督办 -------------------------------------------------------------------------------------
@app.command("follow_up_escalation", s.FollowUpEscalation, roles=WRITERS, scope="unit_id",
             status=201)
def follow_up_escalation(uow, d):
    """督办: the city records that it is following an escalated case up - how, what it
    asks, by when it wants an answer. Only the city may; a closed case is refused."""
    f = fed(uow)
    row = visible_record(uow.conn, d["case_id"], "escalation")
    case = uow.get(EscalatedCase, d["case_id"])
    case.check_follow_up(by_city=f.city_id is not None and f.node_id == f.city_id)
    sharing, recipients = sub_sharing(uow, row)
    fid = new_id(uow, None)
    save_and_share(uow, FollowUp.record(
        fid, sharing, recipients, d["case_id"], d["unit_id"], unit_name(uow.conn, d["unit_id"]),
        d["action"], d["note"], _day(uow.now), d["respond_by"]))
    return {"followup_id": fid, "case_id": d["case_id"]}


@app.query("oversight_cases", s.OversightCases, roles=ANY_ROLE, runtime=True)
def oversight_cases(conn, d, actor, rt):
    """督办: the rectifications districts escalated to the city, with their trail and the
    city's follow-ups; at the city, ``awaiting_follow_up`` are the ones nobody has
    followed up yet (the city rung's inbox). A district sees its own, with the city's
    follow-ups. ``days_late`` is counted to today while the case is open."""
    return queries.oversight_cases(conn, d["origin"], d["status"], d["limit"], _day(rt.clock()))


# -- the unit register, read-only at the city ----------------------------------------------------
def publish_register(uow) -> dict:
    """Share this node's unit register (names, kinds, levels, the tree, flags - no people)
    up to the city, when it changed since the last time. Run by the service's timer (in
    a unit of work of the system actor): it takes no input and needs nobody."""
    rows = queries.register_units(uow.conn)
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
    return queries.district_registers(conn, d["origin"])


# -- 四种形态: counts per form and quarter, per district ---------------------------------------------
@app.query("discipline_counts_by_node", s.DisciplineByNode, roles=ANY_ROLE)
def discipline_counts_by_node(conn, d, actor):
    """四种形态 counts (forms 1-4 and total) per node and quarter, as each district's
    supervision published them - counts only: the records never leave their node."""
    return queries.discipline_counts_by_node(conn, d["period"])


# -- 典型联树: an exemplar's published figures follow the publication ---------------------------
def refresh_exemplars(uow, event) -> int:
    """A unit's figures were published (again) for a period: this node's exemplars of that
    unit and period take them, keeping the hand-typed figures of indicators nobody
    publishes - so a figure marked 发布数据 is always the one published. Returns how many
    exemplars changed."""
    from services.exchange.application import INDICATOR_SOURCES
    from services.exchange.domain import Exemplar, follows_publication, republished_indicators
    if INDICATOR_SOURCES.get(event.event_type, (None, None))[1] != "unit":
        return 0
    p = event.payload if isinstance(event.payload, dict) else {}
    unit_id, period = p.get("unit_id"), p.get("period") or (p.get("as_of") or "")[:7]
    if not isinstance(unit_id, str) or not period:
        return 0
    me = fed(uow).node_id
    changed = 0
    for rid, content in queries.own_exemplars(uow.conn, me, unit_id):
        if not follows_publication(content, period):
            continue
        indicators, new_sources = republished_indicators(
            content, queries.published_figures(uow.conn, me, unit_id, period))
        exemplar = uow.get(Exemplar, rid)
        if (indicators, new_sources) != (exemplar.indicators, getattr(exemplar, "indicator_sources", None)):
            exemplar.update_indicators(indicators, period, new_sources)
            save_and_share(uow, exemplar)
            changed += 1
    return changed
