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

Registered on the exchange ``app`` (imported at the end of ``application.py``).
"""
from __future__ import annotations

from sqlalchemy import select

from services.exchange import schemas as s
from services.exchange.application import (
    _day, app, derived_id, fed, new_id, save_and_share, sub_sharing, unit_name, visible_record,
)
from services.exchange.domain import (
    ESCALATION_STATUSES, FOLLOW_UP_ACTIONS, EscalatedCase, FollowUp, UnitRegister,
    escalated_days_late, register_entries,
)
from services.exchange.projections import indicator_values, records, subs, unit_registers
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


def _case_out(row: dict, follow_ups: list[dict], today: str) -> dict:
    content = dict(row["content"])
    status = content.get("status") or row["status"]
    return {
        "case_id": row["record_id"], "origin": row["owner"], "rect_id": content.get("rect_id"),
        "unit_id": content.get("unit_id"), "unit_name": content.get("unit_name"),
        "title": row["title"], "description": content.get("description"),
        "severity": content.get("severity"), "source": content.get("source"),
        "category": content.get("category"), "requirement": content.get("requirement"),
        "found_on": content.get("found_on"), "deadline": content.get("deadline"),
        "referred_on": content.get("referred_on"), "closed_on": content.get("closed_on"),
        "status": status, "status_label": ESCALATION_STATUSES.label(status),
        "subject": content.get("subject") or "rectification",
        "days_late": escalated_days_late(content["deadline"], status, content.get("closed_on"),
                                         today),
        "trail": content.get("trail") or [],
        "follow_ups": [dict(f, action_label=FOLLOW_UP_ACTIONS.label(f["action"]))
                       for f in follow_ups],
        "awaiting_follow_up": status != "closed" and not follow_ups,
        "published": bool(row["published"]),
    }


@app.query("oversight_cases", s.OversightCases, roles=ANY_ROLE, runtime=True)
def oversight_cases(conn, d, actor, rt):
    """督办: the rectifications districts escalated to the city, with their trail and the
    city's follow-ups; at the city, ``awaiting_follow_up`` are the ones nobody has
    followed up yet (the city rung's inbox). A district sees its own, with the city's
    follow-ups. ``days_late`` is counted to today while the case is open."""
    today = _day(rt.clock())
    q = select(records).where(records.c.kind == "escalation", records.c.published.is_(True))
    if d["origin"]:
        q = q.where(records.c.owner == d["origin"])
    rows = [dict(r) for r in conn.execute(q.order_by(records.c.updated_us.desc(),
                                                     records.c.record_id)).mappings()]
    ids = [r["record_id"] for r in rows]
    follow: dict[str, list] = {}
    for i in range(0, len(ids), 500):
        for r in conn.execute(select(subs).where(subs.c.record_id.in_(ids[i:i + 500]),
                                                 subs.c.sub_kind == "followup")
                              .order_by(subs.c.created_at, subs.c.sub_id)).mappings():
            follow.setdefault(r["record_id"], []).append(
                {"followup_id": r["sub_id"], "owner": r["owner"], "unit_name": r["unit_name"],
                 **{k: v for k, v in r["content"].items()
                    if k in ("action", "note", "followed_on", "respond_by")}})
    cases = [_case_out(r, follow.get(r["record_id"], []), today) for r in rows]
    if d["status"] == "open":
        cases = [c for c in cases if c["status"] != "closed"]
    elif d["status"] == "closed":
        cases = [c for c in cases if c["status"] == "closed"]
    by_origin: dict[str, int] = {}
    for c in cases:
        by_origin[c["origin"]] = by_origin.get(c["origin"], 0) + 1
    return {"total": len(cases), "awaiting_follow_up": sum(c["awaiting_follow_up"] for c in cases),
            "by_origin": by_origin, "items": cases[:d["limit"]], "today": today}


# -- the unit register, read-only at the city ----------------------------------------------------
def publish_register(uow) -> dict:
    """Share this node's unit register (names, kinds, levels, the tree, flags - no people)
    up to the city, when it changed since the last time. Run by the service's timer (in
    a unit of work of the system actor): it takes no input and needs nobody."""
    rows = conn_units(uow.conn)
    rid = derived_id(fed(uow).node_id, "register", "units")
    if uow.exists(UnitRegister, rid):
        reg = uow.get(UnitRegister, rid)
        if not reg.update(rows):
            return {"register_id": rid, "changed": False, "units": len(rows)}
    else:
        reg = UnitRegister.record(rid, rows)
    save_and_share(uow, reg)
    return {"register_id": rid, "changed": True, "units": len(rows)}


def conn_units(conn) -> list[dict]:
    u = unit_directory.c
    out = []
    for r in conn.execute(select(u.unit_id, u.name, u.kind, u.level, u.parent_id, u.active,
                                 u.demonstration_site, u.pilot_flags).order_by(u.path)).mappings():
        out.append(dict(r, active=bool(r["active"]), demonstration_site=bool(r["demonstration_site"]),
                        pilot_flags=r["pilot_flags"] or []))
    return register_entries(out)


@app.query("district_registers", s.Registers, roles=ANY_ROLE)
def district_registers(conn, d, actor):
    """Every unit register this node can see (the city: each district's, read-only), with
    that node's 责任书 coverage per period as its units service published it."""
    q = select(unit_registers)
    if d["origin"]:
        q = q.where(unit_registers.c.node == d["origin"])
    out = []
    for r in conn.execute(q.order_by(unit_registers.c.node)).mappings():
        coverage: dict[str, dict] = {}
        for v in conn.execute(select(indicator_values.c.period, indicator_values.c.indicator,
                                     indicator_values.c.value)
                              .where(indicator_values.c.node == r["node"],
                                     indicator_values.c.source == "units")):
            coverage.setdefault(v.period, {})[v.indicator] = v.value
        out.append({"node": r["node"], "units": r["units"],
                    "counts": r["counts"], "updated_at": r["updated_at"],
                    "letter_coverage": [dict(period=p, **vals) for p, vals in sorted(coverage.items())]})
    return {"registers": out}


# -- 四种形态: counts per form and quarter, per district ---------------------------------------------
@app.query("discipline_counts_by_node", s.DisciplineByNode, roles=ANY_ROLE)
def discipline_counts_by_node(conn, d, actor):
    """四种形态 counts (forms 1-4 and total) per node and quarter, as each district's
    supervision published them - counts only: the records never leave their node."""
    q = select(indicator_values).where(indicator_values.c.scope == "discipline")
    if d["period"]:
        q = q.where(indicator_values.c.period == d["period"])
    table: dict[tuple, dict] = {}
    for r in conn.execute(q).mappings():
        row = table.setdefault((r["node"], r["period"]), {"node": r["node"], "period": r["period"]})
        row[r["indicator"]] = int(r["value"])
    return {"items": [table[k] for k in sorted(table)]}


# -- 典型联树: an exemplar's published figures follow the publication ---------------------------
def refresh_exemplars(uow, event) -> int:
    """A unit's figures were published (again) for a period: this node's exemplars of that
    unit and period take them, keeping the hand-typed figures of indicators nobody
    publishes - so a figure marked 发布数据 is always the one published. Returns how many
    exemplars changed."""
    from services.exchange.application import INDICATOR_SOURCES, published_figures
    from services.exchange.domain import Exemplar, exemplar_indicators
    if INDICATOR_SOURCES.get(event.event_type, (None, None))[1] != "unit":
        return 0
    p = event.payload if isinstance(event.payload, dict) else {}
    unit_id, period = p.get("unit_id"), p.get("period") or (p.get("as_of") or "")[:7]
    if not isinstance(unit_id, str) or not period:
        return 0
    me = fed(uow).node_id
    changed = 0
    for rid, content in uow.conn.execute(
            select(records.c.record_id, records.c.content)
            .where(records.c.kind == "exemplar", records.c.owner == me,
                   records.c.unit_id == unit_id)).all():
        content = dict(content)
        sources = content.get("indicator_sources") or {}
        if content.get("period") != period or not sources:
            continue  # another period, or figures typed before they were taken (left as they are)
        published = published_figures(uow.conn, me, unit_id, period)
        typed = {k: v for k, v in (content.get("indicators") or {}).items()
                 if sources.get(k) == "manual" and k not in published}
        indicators, new_sources = exemplar_indicators(published, typed)
        exemplar = uow.get(Exemplar, rid)
        if (indicators, new_sources) != (exemplar.indicators, getattr(exemplar, "indicator_sources", None)):
            exemplar.update_indicators(indicators, period, new_sources)
            save_and_share(uow, exemplar)
            changed += 1
    return changed
