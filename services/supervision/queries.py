"""Query helpers over the supervision read models: plain functions ``(conn, ...)``.

The same functions answer a live query, a dashboard and an "as of" view (run against
the in-memory database ``build_as_of`` returns), and they compute the figures the
service publishes for 上下互比 - so a number on the district's dashboard, in a round's
facts and in the city's comparison is always computed one way.

``SupervisionReadPort`` (at the end) is the narrow view a command of ``application.py``
(the practices' included) gets as ``uow.supervision`` (``app.read_port``): a unit, the
path above it, a record as the command answers it, what the sweeps go through - the facts
the domain's rules take as arguments - so a handler loads, decides, saves and answers
without naming a table.
"""
from __future__ import annotations

from sqlalchemy import and_, case, func, select

from services.supervision.domain import (
    DISCIPLINE_FORMS, FINDING_SOURCES, LEVEL_COLOURS, RECTIFICATION_STATUSES, RESPONSIBLE_ROLES,
    RISK_CATEGORIES, RISK_LEVELS, SEVERITIES, UNIT_FIGURES, campaign_item_colour, campaign_state,
    days_overdue, indicators_of, months_in, period_bounds, rank, score_unit, task_colour,
    task_days_overdue,
)
from services.supervision.settings import ESCALATION_LEVELS
from services.supervision.projections import (
    checklists, discipline_records, education, escalations, evidence_submissions, feedback,
    indicator_systems, inspection_scores, inspections, micro_power, rectifications,
    risk_assessments, risk_controls, risk_points, round_units, rounds, screening,
    screening_periods,
)
from services.supervision.projections import (  # the practices' read models
    campaign_findings, campaigns, key_post_inspections, key_posts, meeting_decisions, meetings,
    public_reports, task_escalations, task_lists, tasks,
)
from shared.errors import NotFound
from shared.fields import cursor_after
from shared.projections import startswith
from shared.unittree import require_unit as shared_require_unit
from shared.unittree import subtree_of, unit_directory
# for application.py's reads (the end of this module)
from services.supervision.domain import Checklist, IndicatorSystem
from services.supervision.projections import discipline_counts, published_districts, published_units
from shared.unittree import path_of, unit_of

ud = unit_directory
r = rectifications

# -- the users' words for codes (lists, exports, the collective-review report) ------------------
# The labels are the domain's own (its Choices), so an export reads as the console does.
def _label(choices, code, blank: str = "") -> str:
    return choices.label(code) if code else blank


def require_unit(conn, unit_id: str) -> dict:
    return shared_require_unit(conn, ud, unit_id)


def _in_subtree(path: str):
    return startswith(ud.c.path, path)


def _rate(part: int, whole: int):
    return round(part / whole, 4) if whole else None


# -- figures per unit ----------------------------------------------------------------------------
def _count(cond):
    return func.sum(case((cond, 1), else_=0))


def rect_counts(conn, path: str, found_to: str | None = None) -> dict:
    """unit id -> rectification counts for owner units in the subtree at ``path``
    (findings found by ``found_to`` only, when given: a month's figures)."""
    not_closed = r.c.status != "closed"
    q = (select(r.c.unit_id, func.count().label("total"),
                _count(r.c.status == "closed").label("closed"),
                _count(and_(r.c.status == "closed", r.c.on_time.is_(True))).label("on_time"),
                _count(and_(not_closed, r.c.overdue.is_(True))).label("overdue"),
                _count(and_(not_closed, r.c.escalation_step > 0)).label("escalated"),
                _count(and_(not_closed, r.c.escalation_level == "city")).label("city"),
                _count(r.c.status == "evidence_submitted").label("awaiting"))
         .select_from(r.join(ud, ud.c.unit_id == r.c.unit_id))
         .where(_in_subtree(path)).group_by(r.c.unit_id))
    if found_to:
        q = q.where(r.c.found_on <= found_to)
    return {row.unit_id: {k: int(row._mapping[k] or 0) for k in row._mapping if k != "unit_id"}
            for row in conn.execute(q)}


def risk_counts(conn, path: str) -> dict:
    q = (select(risk_points.c.unit_id, risk_points.c.level, func.count().label("n"))
         .select_from(risk_points.join(ud, ud.c.unit_id == risk_points.c.unit_id))
         .where(_in_subtree(path), risk_points.c.status == "active")
         .group_by(risk_points.c.unit_id, risk_points.c.level))
    out: dict[str, dict] = {}
    for row in conn.execute(q):
        out.setdefault(row.unit_id, {"high": 0, "medium": 0, "low": 0, "unassessed": 0})[
            row.level or "unassessed"] += row.n
    return out


def _by_unit(conn, table, path: str) -> dict:
    q = (select(table).select_from(table.join(ud, ud.c.unit_id == table.c.unit_id))
         .where(_in_subtree(path)))
    return {row["unit_id"]: dict(row) for row in conn.execute(q).mappings()}


def inspection_summary(conn, path: str) -> dict:
    q = (select(inspections.c.unit_id, func.count().label("completed"),
                func.avg(inspections.c.percent).label("avg_percent"),
                func.max(inspections.c.completed_on).label("last_on"))
         .select_from(inspections.join(ud, ud.c.unit_id == inspections.c.unit_id))
         .where(_in_subtree(path), inspections.c.status == "completed")
         .group_by(inspections.c.unit_id))
    return {row.unit_id: {"completed": row.completed,
                          "avg_percent": round(row.avg_percent, 2) if row.avg_percent is not None else None,
                          "last_completed_on": row.last_on}
            for row in conn.execute(q)}


def _unit_figures(rc: dict, rk: dict, sc: dict | None, mp: dict | None) -> dict:
    total, closed = rc.get("total", 0), rc.get("closed", 0)
    on_time, overdue = rc.get("on_time", 0), rc.get("overdue", 0)
    return {
        "findings_total": total,
        "rectifications_closed": closed,
        "closed_on_time": on_time,
        "closure_rate": _rate(closed, total),
        # 整改及时率: closed by the deadline ÷ everything that was due (closed, or overdue now)
        "timeliness_rate": _rate(on_time, closed + overdue),
        "overdue_count": overdue,
        "escalated_count": rc.get("escalated", 0),
        "risk_high": rk.get("high", 0),
        "risk_medium": rk.get("medium", 0),
        "risk_low": rk.get("low", 0),
        "screening_on_time": None if sc is None else not sc["overdue"],
        "screening_overdue": bool(sc and sc["overdue"]),
        "micro_power_missing": bool(mp and mp["required"] and not mp["lists"]),
    }


def unit_figures(conn, path: str, units: list[dict], found_to: str | None = None) -> dict[str, dict]:
    """unit id -> the published per-unit figures (``UNIT_FIGURES``) plus a few extras.
    ``found_to``: the last day of the month published - a finding found after it belongs
    to a later month, one found in it but recorded late to this one."""
    rc, rk = rect_counts(conn, path, found_to), risk_counts(conn, path)
    sc, mp = _by_unit(conn, screening, path), _by_unit(conn, micro_power, path)
    out = {}
    for u in units:
        uid = u["unit_id"]
        fig = _unit_figures(rc.get(uid, {}), rk.get(uid, {}), sc.get(uid), mp.get(uid))
        fig["awaiting_verification"] = rc.get(uid, {}).get("awaiting", 0)
        fig["escalated_to_city"] = rc.get(uid, {}).get("city", 0)
        fig["risk_unassessed"] = rk.get(uid, {}).get("unassessed", 0)
        fig["screening_due_on"] = sc[uid]["due_on"] if uid in sc else None
        fig["micro_power_required"] = bool(mp.get(uid) and mp[uid]["required"])
        out[uid] = fig
    return out


def combine(figures: list[dict]) -> dict:
    """Figures of a set of units (a subtree, a district) from their per-unit figures."""
    s = lambda k: sum(f[k] for f in figures)  # noqa: E731
    closed, on_time, overdue = s("rectifications_closed"), s("closed_on_time"), s("overdue_count")
    scheduled = [f for f in figures if f["screening_on_time"] is not None]
    return {
        "units": len(figures),
        "findings_total": s("findings_total"),
        "rectifications_closed": closed,
        "closure_rate": _rate(closed, s("findings_total")),
        "timeliness_rate": _rate(on_time, closed + overdue),
        "overdue_count": overdue,
        "escalated_count": s("escalated_count"),
        "escalated_to_city": s("escalated_to_city"),
        "awaiting_verification": s("awaiting_verification"),
        "risk_high": s("risk_high"),
        "risk_medium": s("risk_medium"),
        "risk_low": s("risk_low"),
        "screening_on_time_rate": _rate(sum(1 for f in scheduled if f["screening_on_time"]),
                                        len(scheduled)),
        "screening_overdue_units": sum(1 for f in figures if f["screening_overdue"]),
        "micro_power_missing_units": sum(1 for f in figures if f["micro_power_missing"]),
    }


def published_unit_figures(fig: dict) -> dict:
    return {k: fig[k] for k in UNIT_FIGURES}


def district_roots(conn) -> list[dict]:
    q = select(ud).where(ud.c.parent_id.is_(None), ud.c.active.is_(True)).order_by(ud.c.unit_id)
    return [dict(row) for row in conn.execute(q).mappings()]


def district_figures(conn, root: dict, found_to: str | None = None) -> dict:
    units = [u for u in subtree_of(conn, ud, root["unit_id"]) if u["unit_id"] != root["unit_id"]]
    return combine(list(unit_figures(conn, root["path"], units, found_to).values()))


# -- the unit view (单位画像) -----------------------------------------------------------------
def unit_view(conn, unit_id: str, limit: int = 500, after: str | None = None) -> dict:
    """A unit with everything below it: the district dashboard when asked for the root.
    The figures are the whole subtree's; the rows are one page (path order after ``after``)."""
    unit = require_unit(conn, unit_id)
    units = subtree_of(conn, ud, unit_id)
    figs = unit_figures(conn, unit["path"], units)
    insp = inspection_summary(conn, unit["path"])
    page = [u for u in units if after is None or u["path"] > after][:limit + 1]
    rows = [{"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"], "level": u["level"],
             "depth": u["depth"] - unit["depth"], **figs[u["unit_id"]],
             "inspections": insp.get(u["unit_id"], {"completed": 0, "avg_percent": None,
                                                    "last_completed_on": None})}
            for u in page[:limit]]
    below = [f for uid, f in figs.items() if uid != unit_id] or []
    return {"unit": {k: unit[k] for k in ("unit_id", "name", "kind", "level", "parent_id",
                                          "active", "demonstration_site")},
            "own": figs.get(unit_id) or _unit_figures({}, {}, None, None),
            "subtree": combine(list(figs.values())),
            "below": combine(below) if below else None,
            "units": rows, "next": cursor_after(page[limit - 1]["path"]) if len(page) > limit else None}


# -- overdue list ----------------------------------------------------------------------------
def _live(row, today: str) -> dict:
    """A rectification row with its days overdue counted to ``today``."""
    out = dict(row)
    if out.get("overdue") and out.get("deadline"):
        out["days_overdue"] = days_overdue(out["deadline"], out["status"], out["submitted_on"],
                                           today)
    return out


def overdue_open_count(conn) -> int:
    """The node's rectifications overdue and not closed (the qinglian_rectifications_overdue gauge)."""
    return conn.execute(select(func.count()).select_from(r).where(
        r.c.overdue.is_(True), r.c.status != "closed")).scalar()


def overdue_list(conn, unit_id: str, level: str | None, limit: int, offset: int,
                 today: str) -> dict:
    unit = require_unit(conn, unit_id)
    where = [_in_subtree(unit["path"]), r.c.overdue.is_(True), r.c.status != "closed"]
    if level:
        where.append(r.c.escalation_level == level)
    base = r.join(ud, ud.c.unit_id == r.c.unit_id)
    total = conn.execute(select(func.count()).select_from(base).where(*where)).scalar()
    q = (select(r.c.rect_id, r.c.unit_id, ud.c.name.label("unit_name"), r.c.description,
                r.c.source, r.c.severity, r.c.responsible_role, r.c.deadline, r.c.status,
                r.c.overdue, r.c.overdue_since, r.c.submitted_on, r.c.days_overdue,
                r.c.escalation_step, r.c.escalation_level, r.c.last_escalated_on)
         .select_from(base).where(*where)
         .order_by(r.c.deadline, r.c.rect_id).limit(limit).offset(offset))
    return {"unit_id": unit_id, "total": total,
            "items": [_live(row, today) for row in conn.execute(q).mappings()]}


# -- rectifications and findings --------------------------------------------------------------
def rectification(conn, rect_id: str, today: str) -> dict:
    row = conn.execute(select(r).where(r.c.rect_id == rect_id)).mappings().first()
    if row is None:
        raise NotFound("整改「%s」不存在" % rect_id)
    out = _live(row, today)
    subs = conn.execute(select(evidence_submissions)
                        .where(evidence_submissions.c.rect_id == rect_id)
                        .order_by(evidence_submissions.c.submission)).mappings()
    out["evidence"] = [dict(s) for s in subs]
    esc = conn.execute(select(escalations).where(escalations.c.rect_id == rect_id)
                       .order_by(escalations.c.seq)).mappings()
    out["escalations"] = [dict(e) for e in esc]
    return out


def list_rectifications(conn, unit_id, include_subtree, status, source, limit, offset,
                        today: str) -> dict:
    unit = require_unit(conn, unit_id)
    where = [_in_subtree(unit["path"]) if include_subtree else r.c.unit_id == unit_id]
    if status:
        where.append(r.c.status == status)
    if source:
        where.append(r.c.source == source)
    base = r.join(ud, ud.c.unit_id == r.c.unit_id)
    total = conn.execute(select(func.count()).select_from(base).where(*where)).scalar()
    q = (select(r, ud.c.name.label("unit_name")).select_from(base).where(*where)
         .order_by(r.c.found_on.desc(), r.c.rect_id).limit(limit).offset(offset))
    return {"unit_id": unit_id, "total": total,
            "items": [_live(row, today) for row in conn.execute(q).mappings()]}


# -- 工作台 and 整改看板: counted by the database, one page listed ---------------------------------
BOARD_STATUSES = ("open", "evidence_submitted", "closed")
_BOARD_COLUMNS = (r.c.rect_id, r.c.unit_id, r.c.description, r.c.source, r.c.severity,
                  r.c.deadline, r.c.status, r.c.found_on, r.c.verified_on, r.c.overdue,
                  r.c.escalation_level)


def _soon(today: str, soon_days: int) -> str:
    from datetime import date, timedelta
    return (date.fromisoformat(today) + timedelta(days=soon_days)).isoformat()


def _colour_counts(today: str, soon: str):
    """red: past its deadline; yellow: due within the window; green: the rest."""
    return (_count(r.c.deadline < today).label("red"),
            _count(and_(r.c.deadline >= today, r.c.deadline <= soon)).label("yellow"))


def colour(deadline: str | None, status: str, today: str, soon: str) -> str:
    if status == "closed" or not deadline:
        return "green"
    return "red" if deadline < today else "yellow" if deadline <= soon else "green"


def _board_item(row, today: str, soon: str) -> dict:
    out = dict(row)
    out["colour"] = colour(out["deadline"], out["status"], today, soon)
    return out


def _subtree_filter(conn, unit: dict):
    """The conditions selecting the rectifications owned in ``unit``'s subtree: none at
    all when the unit is the directory's only root (everything is below it - the
    district office's own view, the common case), else a semi-join on the unit paths."""
    roots = conn.execute(select(ud.c.unit_id).where(ud.c.parent_id.is_(None)).limit(2)).scalars().all()
    if roots == [unit["unit_id"]]:
        return ()
    below = select(ud.c.unit_id).where(_in_subtree(unit["path"]))
    return (r.c.unit_id.in_(below),)


def _names(conn, unit_ids) -> dict:
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    return dict(conn.execute(select(ud.c.unit_id, ud.c.name).where(ud.c.unit_id.in_(ids))).all())


# the unit directory joined for the names only (an alias: a subtree filter's own
# subquery on the directory must not be correlated with it)
_named = ud.alias("named_units")


def _items(conn, where, order, limit: int, offset: int, today: str, soon: str) -> list[dict]:
    # the unit's name comes with its row (a key lookup per row of the page), not in a
    # second round trip
    rows = conn.execute(select(*_BOARD_COLUMNS, _named.c.name.label("unit_name"))
                        .select_from(r.outerjoin(_named, _named.c.unit_id == r.c.unit_id))
                        .where(*where).order_by(*order).limit(limit).offset(offset)).mappings().all()
    return [dict(_board_item(row, today, soon), unit_name=row["unit_name"] or "") for row in rows]


_URGENT = (r.c.deadline.asc().nulls_last(), r.c.rect_id)  # ix_sv_rect_status_deadline_id order


def rectification_overview(conn, unit_id: str, today: str, soon_days: int, limit: int,
                           units_limit: int) -> dict:
    """The home page's figures for the open rectifications of a subtree: how many are
    overdue / due soon / on course (counted by the database, however many there are),
    the ``limit`` most urgent (earliest deadline first) and the ``units_limit`` units
    with the most overdue, then the most due soon. One pass over the rows counts both
    the units and the totals (window sums over the per-unit groups)."""
    unit = require_unit(conn, unit_id)
    soon = _soon(today, soon_days)
    sub = _subtree_filter(conn, unit)
    where = (*sub, r.c.status == "open")
    red, yellow = _colour_counts(today, soon)
    n = func.count().label("n")
    per_unit = (select(r.c.unit_id, n, red, yellow).where(*where).group_by(r.c.unit_id)
                .subquery())
    u = per_unit.c
    top = (select(u.unit_id, u.n, u.red, u.yellow,
                  func.sum(u.n).over().label("total"), func.sum(u.red).over().label("all_red"),
                  func.sum(u.yellow).over().label("all_yellow"), func.count().over().label("units"))
           .order_by(u.red.desc(), u.yellow.desc(), u.unit_id).limit(units_limit).subquery())
    t = top.c
    # the names of the units_limit units joined to them, not asked in a round trip of their own
    rows = conn.execute(
        select(t.unit_id, t.n, t.red, t.yellow, t.total, t.all_red, t.all_yellow, t.units,
               _named.c.name).select_from(top.outerjoin(_named, _named.c.unit_id == t.unit_id))
        .order_by(t.red.desc(), t.yellow.desc(), t.unit_id)).all()
    first = rows[0] if rows else None
    total = int(first.total) if first else 0
    n_red = int(first.all_red or 0) if first else 0
    n_yellow = int(first.all_yellow or 0) if first else 0
    return {"unit_id": unit_id, "today": today, "soon_until": soon,
            "totals": {"red": n_red, "yellow": n_yellow, "green": total - n_red - n_yellow,
                       "total": total},
            "units_with_open": int(first.units) if first else 0,
            "per_unit": [{"unit_id": row.unit_id, "name": row.name or "",
                          "total": int(row.n), "red": int(row.red or 0),
                          "yellow": int(row.yellow or 0),
                          "green": int(row.n) - int(row.red or 0) - int(row.yellow or 0)}
                         for row in rows],
            "urgent": _items(conn, where, _URGENT, limit, 0, today, soon)}


def rectification_board(conn, unit_id: str, today: str, soon_days: int, status: str | None,
                        limit: int, offset: int) -> dict:
    """The board's columns (整改中 / 待验收 / 已销号) for a subtree: each column's count and
    colours by the database, and one page of its items - open ones earliest deadline
    first, closed ones latest verified first. ``status`` pages one column."""
    unit = require_unit(conn, unit_id)
    soon = _soon(today, soon_days)
    sub = _subtree_filter(conn, unit)
    red, yellow = _colour_counts(today, soon)
    counts = {row.status: row for row in conn.execute(
        select(r.c.status, func.count().label("total"), red, yellow)
        .where(*sub).group_by(r.c.status))}
    columns = {}
    for st in ([status] if status else BOARD_STATUSES):
        c = counts.get(st)
        total = int(c.total) if c else 0
        order = (r.c.verified_on.desc(), r.c.rect_id) if st == "closed" else _URGENT
        items = _items(conn, (*sub, r.c.status == st), order, limit, offset, today, soon) if total else []
        n_red = 0 if st == "closed" or not c else int(c.red or 0)
        n_yellow = 0 if st == "closed" or not c else int(c.yellow or 0)
        columns[st] = {"total": total, "red": n_red, "yellow": n_yellow,
                       "green": total - n_red - n_yellow, "offset": offset, "items": items,
                       "next_offset": offset + limit if offset + limit < total else None}
    return {"unit_id": unit_id, "today": today, "soon_until": soon, "columns": columns}


# -- inspections ----------------------------------------------------------------------------------
def inspection(conn, inspection_id: str) -> dict:
    row = conn.execute(select(inspections).where(inspections.c.inspection_id == inspection_id)
                       ).mappings().first()
    if row is None:
        raise NotFound("检查「%s」不存在" % inspection_id)
    out = dict(row)
    out["finding_count"] = out.pop("findings")
    out["scores"] = [dict(s) for s in conn.execute(
        select(inspection_scores).where(inspection_scores.c.inspection_id == inspection_id)
        .order_by(inspection_scores.c.criterion)).mappings()]
    out["findings"] = [dict(f) for f in conn.execute(
        select(r.c.rect_id.label("finding_id"), r.c.description, r.c.severity, r.c.status,
               r.c.deadline).where(r.c.inspection_id == inspection_id)
        .order_by(r.c.rect_id)).mappings()]
    out["feedback"] = [dict(f)
                       for f in conn.execute(select(feedback)
                                             .where(feedback.c.inspection_id == inspection_id)
                                             .order_by(feedback.c.seq)).mappings()]
    return out


def list_inspections(conn, unit_id, include_subtree, status, limit, offset) -> dict:
    unit = require_unit(conn, unit_id)
    where = [_in_subtree(unit["path"]) if include_subtree else inspections.c.unit_id == unit_id]
    if status:
        where.append(inspections.c.status == status)
    base = inspections.join(ud, ud.c.unit_id == inspections.c.unit_id)
    total = conn.execute(select(func.count()).select_from(base).where(*where)).scalar()
    q = (select(inspections.c.inspection_id, inspections.c.unit_id, ud.c.name.label("unit_name"),
                inspections.c.batch_id, inspections.c.title, inspections.c.planned_on,
                inspections.c.checklist_id, inspections.c.checklist_version,
                inspections.c.status, inspections.c.findings, inspections.c.percent,
                inspections.c.completed_on)
         .select_from(base).where(*where)
         .order_by(inspections.c.planned_on.desc(), inspections.c.inspection_id)
         .limit(limit).offset(offset))
    return {"unit_id": unit_id, "total": total,
            "items": [dict(row) for row in conn.execute(q).mappings()]}


def checklist(conn, checklist_id: str, version: int | None) -> dict:
    q = select(checklists).where(checklists.c.checklist_id == checklist_id)
    q = q.where(checklists.c.version == version) if version else q.order_by(
        checklists.c.version.desc()).limit(1)
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFound("没有检查清单「%s%s」" % (checklist_id, " v%d" % version if version else ""))
    versions = [v for (v,) in conn.execute(select(checklists.c.version)
                                          .where(checklists.c.checklist_id == checklist_id)
                                          .order_by(checklists.c.version))]
    return dict(row, versions=versions)


# -- risk points ---------------------------------------------------------------------------------
def _risk_row(row) -> dict:
    d = dict(row)
    d["colour"] = LEVEL_COLOURS.get(d["level"])
    return d


def control_reviews_due(conn, unit_id, include_subtree, limit, offset, today: str) -> dict:
    unit = require_unit(conn, unit_id)
    rc = risk_controls
    base = (rc.join(risk_points, risk_points.c.risk_point_id == rc.c.risk_point_id)
            .join(ud, ud.c.unit_id == rc.c.unit_id))
    where = [_in_subtree(unit["path"]) if include_subtree else rc.c.unit_id == unit_id,
             rc.c.review_overdue.is_(True), risk_points.c.status == "active"]
    by_unit = dict(conn.execute(select(rc.c.unit_id, func.count()).select_from(base)
                                .where(*where).group_by(rc.c.unit_id)).all())
    rows = conn.execute(
        select(rc.c.risk_point_id, rc.c.control_id, rc.c.unit_id, ud.c.name.label("unit_name"),
               risk_points.c.description.label("risk_point"), risk_points.c.level, rc.c.measure,
               rc.c.owner_post, rc.c.review_date, rc.c.review_overdue_since,
               rc.c.last_reviewed_on)
        .select_from(base).where(*where)
        .order_by(rc.c.review_date, rc.c.risk_point_id, rc.c.control_id)
        .limit(limit).offset(offset)).mappings()
    items = [dict(r, days_overdue=days_overdue(r["review_date"], "open", None, today))
             for r in rows]
    return {"unit_id": unit_id, "total": sum(by_unit.values()), "by_unit": by_unit,
            "items": items}


def list_risk_points(conn, unit_id, include_subtree, level, limit, offset) -> dict:
    unit = require_unit(conn, unit_id)
    rp = risk_points
    where = [_in_subtree(unit["path"]) if include_subtree else rp.c.unit_id == unit_id,
             rp.c.status == "active"]
    if level:
        where.append(rp.c.level == level)
    base = rp.join(ud, ud.c.unit_id == rp.c.unit_id)
    total = conn.execute(select(func.count()).select_from(base).where(*where)).scalar()
    q = (select(rp, ud.c.name.label("unit_name")).select_from(base).where(*where)
         .order_by(rp.c.weighted_score.desc(), rp.c.risk_point_id).limit(limit).offset(offset))
    return {"unit_id": unit_id, "total": total,
            "items": [_risk_row(row) for row in conn.execute(q).mappings()]}


def risk_point(conn, risk_point_id: str) -> dict:
    row = conn.execute(select(risk_points).where(risk_points.c.risk_point_id == risk_point_id)
                       ).mappings().first()
    if row is None:
        raise NotFound("风险点「%s」不存在" % risk_point_id)
    out = _risk_row(row)
    out["history"] = [dict(a)
                      for a in conn.execute(select(risk_assessments)
                                            .where(risk_assessments.c.risk_point_id == risk_point_id)
                                            .order_by(risk_assessments.c.seq)).mappings()]
    out["control_measures"] = [dict(c) for c in conn.execute(
        select(risk_controls).where(risk_controls.c.risk_point_id == risk_point_id)
        .order_by(risk_controls.c.control_id)).mappings()]
    return out


# -- screening and 微权力清单 ------------------------------------------------------------------------
def screening_status(conn, unit_id, overdue_only, limit, offset) -> dict:
    unit = require_unit(conn, unit_id)
    where = [_in_subtree(unit["path"])]
    if overdue_only:
        where.append(screening.c.overdue.is_(True))
    base = screening.join(ud, ud.c.unit_id == screening.c.unit_id)
    total = conn.execute(select(func.count()).select_from(base).where(*where)).scalar()
    q = (select(screening, ud.c.name.label("unit_name")).select_from(base).where(*where)
         .order_by(screening.c.overdue.desc(), screening.c.due_on, screening.c.unit_id)
         .limit(limit).offset(offset))
    items = [dict(row) for row in conn.execute(q).mappings()]
    for item in items:
        item["periods"] = [dict(p) for p in conn.execute(
            select(screening_periods).where(screening_periods.c.unit_id == item["unit_id"])
            .order_by(screening_periods.c.due_on.desc()).limit(8)).mappings()]
    return {"unit_id": unit_id, "total": total, "items": items}


def micro_power_gaps(conn, unit_id: str) -> dict:
    """Window and law-enforcement units in the subtree without a published 微权力清单."""
    unit = require_unit(conn, unit_id)
    q = (select(micro_power, ud.c.name.label("unit_name"))
         .select_from(micro_power.join(ud, ud.c.unit_id == micro_power.c.unit_id))
         .where(_in_subtree(unit["path"]), micro_power.c.required.is_(True), ud.c.active.is_(True))
         .order_by(micro_power.c.unit_id))
    rows = [dict(row) for row in conn.execute(q).mappings()]
    return {"unit_id": unit_id, "required": len(rows),
            "missing": [x for x in rows if not x["lists"]],
            "published": [x for x in rows if x["lists"]]}


# -- the three lists (问题清单 / 责任清单 / 整改清单) ---------------------------------------------------
# (key, header, kind): the kind says how a file stores and prints the column (shared.exports)
LIST_COLUMNS = {
    "problems": ("问题清单", [
        ("no", "序号", "integer"), ("kind", "类别", "text"), ("unit_name", "单位", "text"),
        ("origin", "来源/风险类别", "text"), ("description", "问题/风险描述", "longtext"),
        ("post", "岗位", "text"), ("date", "发现/辨识日期", "date"),
        ("grade", "严重程度/风险等级", "text"), ("ref", "编号", "text")]),
    "responsibilities": ("责任清单", [
        ("no", "序号", "integer"), ("kind", "类别", "text"), ("unit_name", "责任单位", "text"),
        ("subject", "问题/风险点", "longtext"), ("duty", "整改要求/防控措施", "longtext"),
        ("responsible", "责任人/责任岗位", "text"), ("due", "时限/复核日期", "date"),
        ("ref", "编号", "text")]),
    "rectifications": ("整改清单", [
        ("no", "序号", "integer"), ("unit_name", "责任单位", "text"),
        ("description", "问题", "longtext"), ("requirement", "整改要求", "longtext"),
        ("responsible", "责任人", "text"), ("deadline", "整改时限", "date"),
        ("status", "状态", "text"), ("submitted_on", "提交佐证日期", "date"),
        ("verified_on", "验收销号日期", "date"), ("on_time", "是否按期", "text"),
        ("overdue", "是否逾期", "text"), ("escalation", "督办层级", "text"),
        ("ref", "编号", "text")]),
}


def unit_lists(conn, unit_id: str, include_subtree: bool) -> dict:
    unit = require_unit(conn, unit_id)
    rp, rc = risk_points, risk_controls
    scope_r = _in_subtree(unit["path"]) if include_subtree else r.c.unit_id == unit_id
    scope_p = _in_subtree(unit["path"]) if include_subtree else rp.c.unit_id == unit_id
    scope_c = _in_subtree(unit["path"]) if include_subtree else rc.c.unit_id == unit_id
    rects = conn.execute(select(r, ud.c.name.label("unit_name"))
                         .select_from(r.join(ud, ud.c.unit_id == r.c.unit_id)).where(scope_r)
                         .order_by(r.c.found_on, r.c.rect_id)).mappings().all()
    points = conn.execute(select(rp, ud.c.name.label("unit_name"))
                          .select_from(rp.join(ud, ud.c.unit_id == rp.c.unit_id))
                          .where(scope_p, rp.c.status == "active")
                          .order_by(rp.c.identified_on, rp.c.risk_point_id)).mappings().all()
    controls = conn.execute(select(rc, ud.c.name.label("unit_name"),
                                   rp.c.description.label("risk"))
                            .select_from(rc.join(ud, ud.c.unit_id == rc.c.unit_id)
                                         .join(rp, rp.c.risk_point_id == rc.c.risk_point_id))
                            .where(scope_c, rp.c.status == "active")
                            .order_by(rc.c.risk_point_id, rc.c.control_id)).mappings().all()
    problems = [{"kind": "廉政风险点", "unit_name": p["unit_name"],
                 "origin": RISK_CATEGORIES.label(p["category"]),
                 "description": p["description"], "post": p["post"] or "",
                 "date": p["identified_on"] or "", "grade": _label(RISK_LEVELS, p["level"], "未评估"),
                 "ref": p["risk_point_id"]} for p in points]
    problems += [{"kind": "问题", "unit_name": x["unit_name"],
                  "origin": " ".join(filter(None, (FINDING_SOURCES.label(x["source"]), x["source_ref"]))),
                  "description": x["description"], "post": "", "date": x["found_on"],
                  "grade": SEVERITIES.label(x["severity"]), "ref": x["rect_id"]} for x in rects]
    duties = [{"kind": "整改责任", "unit_name": x["unit_name"], "subject": x["description"],
               "duty": x["requirement"] or "",
               "responsible": _label(RESPONSIBLE_ROLES, x["responsible_role"]),
               "due": x["deadline"], "ref": x["rect_id"]} for x in rects if x["status"] != "closed"]
    duties += [{"kind": "防控责任", "unit_name": c["unit_name"], "subject": c["risk"],
                "duty": c["measure"], "responsible": c["owner_post"], "due": c["review_date"],
                "ref": "%s/%s" % (c["risk_point_id"], c["control_id"])} for c in controls]
    fixes = [{"unit_name": x["unit_name"], "description": x["description"],
              "requirement": x["requirement"] or "",
              "responsible": _label(RESPONSIBLE_ROLES, x["responsible_role"]), "deadline": x["deadline"],
              "status": RECTIFICATION_STATUSES.label(x["status"]),
              "submitted_on": x["submitted_on"] or "",
              "verified_on": x["verified_on"] or "",
              "on_time": "" if x["on_time"] is None else ("是" if x["on_time"] else "否"),
              "overdue": "是" if x["overdue"] and x["status"] != "closed" else "否",
              "escalation": _label(ESCALATION_LEVELS, x["escalation_level"]), "ref": x["rect_id"]}
             for x in rects]
    out = {"unit_id": unit_id, "unit_name": unit["name"], "include_subtree": include_subtree}
    for key, rows in (("problems", problems), ("responsibilities", duties),
                      ("rectifications", fixes)):
        title, columns = LIST_COLUMNS[key]
        for n, row in enumerate(rows, start=1):
            row["no"] = n
        out[key] = {"title": title, "rows": rows,
                    "columns": [{"key": k, "title": t, "kind": kind} for k, t, kind in columns]}
    return out


# -- political ecology ---------------------------------------------------------------------------
def indicator_system(conn, system_id: str, version: int | None) -> dict:
    t = indicator_systems
    q = select(t).where(t.c.system_id == system_id)
    q = q.where(t.c.version == version) if version else q.order_by(t.c.version.desc()).limit(1)
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFound("没有指标体系「%s%s」" % (system_id, " v%d" % version if version else ""))
    versions = [v for (v,) in conn.execute(select(t.c.version).where(t.c.system_id == system_id)
                                          .order_by(t.c.version))]
    return dict(row, versions=versions)


def round_row(conn, round_id: str) -> dict:
    row = conn.execute(select(rounds).where(rounds.c.round_id == round_id)).mappings().first()
    if row is None:
        raise NotFound("考核轮次「%s」不存在" % round_id)
    return dict(row)


def round_ranking(conn, round_id: str) -> dict:
    """The ranking under the weights the round was opened with: frozen once finalized,
    computed from the recorded scores and facts before that."""
    rnd = round_row(conn, round_id)
    rows = conn.execute(select(round_units, ud.c.name.label("unit_name"))
                        .select_from(round_units.outerjoin(ud, ud.c.unit_id == round_units.c.unit_id))
                        .where(round_units.c.round_id == round_id)).mappings().all()
    names = {x["unit_id"]: x["unit_name"] for x in rows}
    if rnd["status"] == "finalized":
        ranking = sorted(({"unit_id": x["unit_id"], "rank": x["rank"], "total": x["total"],
                           "dimensions": x["dimension_scores"],
                           "missing": x["missing"]} for x in rows),
                         key=lambda x: (x["rank"] is None, x["rank"] or 0, x["unit_id"]))
    else:
        ranking = rank({x["unit_id"]: score_unit(rnd["dimensions"], x["manual"],
                                                 x["facts"]) for x in rows})
    manual = {x["unit_id"]: x["manual"] for x in rows}
    for entry in ranking:
        entry["unit_name"] = names.get(entry["unit_id"])
        entry["manual"] = manual.get(entry["unit_id"], {})  # the hand-entered scores so far
    return {"round": rnd, "ranking": ranking}


def scope_unit(conn, unit_ids: list[str]) -> dict | None:
    """The lowest unit above all of ``unit_ids`` (the unit a round was opened over), or None
    when they share none."""
    paths = [p for (p,) in conn.execute(select(ud.c.path).where(ud.c.unit_id.in_(unit_ids)))]
    if not paths:
        return None
    parents = [p.strip("/").split("/")[:-1] for p in paths]
    common = parents[0]
    for other in parents[1:]:
        n = 0
        while n < min(len(common), len(other)) and common[n] == other[n]:
            n += 1
        common = common[:n]
    if not common:
        return None
    row = conn.execute(select(ud.c.unit_id, ud.c.name).where(ud.c.unit_id == common[-1])).first()
    return {"unit_id": row.unit_id, "name": row.name} if row else None


def _band(total) -> str:
    if total is None:
        return "无数据"
    return "好" if total >= 90 else "较好" if total >= 80 else "一般" if total >= 60 else "较差"


def assessment_report(conn, round_id: str) -> dict:
    """研判报告 for the collective review (集中研判): ranking, how each dimension and
    indicator went across units, who needs attention, and what data was missing."""
    data = round_ranking(conn, round_id)
    rnd, ranking = data["round"], data["ranking"]
    facts = {x["unit_id"]: (x["manual"], x["facts"]) for x in conn.execute(
        select(round_units).where(round_units.c.round_id == round_id)).mappings()}
    dims = rnd["dimensions"]
    dim_avg = {}
    for d in dims:
        vals = [e["dimensions"].get(d["code"]) for e in ranking if e["dimensions"].get(d["code"]) is not None]
        dim_avg[d["code"]] = {"name": d["name"], "weight": d["weight"],
                              "average": round(sum(vals) / len(vals), 2) if vals else None}
    indicators = []
    for code, ind in indicators_of(dims).items():
        vals = []
        for manual, fact in facts.values():
            if ind["source"] == "manual":
                v = manual.get(code)
                v = None if v is None else 100.0 * v / ind["max_score"]
            else:
                v = fact.get(code)
            if v is not None:
                vals.append(v)
        indicators.append({"code": code, "name": ind["name"], "source": ind["source"],
                           "units_with_data": len(vals),
                           "average": round(sum(vals) / len(vals), 2) if vals else None})
    scored = [e for e in ranking if e["total"] is not None]
    bands: dict[str, int] = {}
    for e in ranking:
        bands[_band(e["total"])] = bands.get(_band(e["total"]), 0) + 1
    weakest = sorted((i for i in indicators if i["average"] is not None),
                     key=lambda i: i["average"])[:3]
    attention = [e for e in ranking if e["total"] is not None and e["total"] < 60] or scored[-3:]
    lines = ["%s（%s）研判报告" % (rnd["title"], rnd["period"]),
             "指标体系：%s 第%d版；参评单位 %d 个；状态：%s。" % (
                 rnd["system_id"], rnd["system_version"], len(ranking),
                 "已定稿" if rnd["status"] == "finalized" else "评分中")]
    for d in dims:
        avg = dim_avg[d["code"]]["average"]
        lines.append("%s（权重%g）平均得分 %s。" % (d["name"], d["weight"],
                                            "无数据" if avg is None else "%.2f" % avg))
    if scored:
        lines.append("排名前列：%s。" % "、".join("%s（%.2f）" % (e["unit_name"] or e["unit_id"], e["total"])
                                            for e in scored[:3]))
        lines.append("需重点关注：%s。" % "、".join("%s（%.2f）" % (e["unit_name"] or e["unit_id"], e["total"])
                                             for e in attention))
    if weakest:
        lines.append("薄弱指标：%s。" % "、".join("%s（平均%.2f）" % (i["name"], i["average"])
                                            for i in weakest))
    missing = sorted({m for e in ranking for m in e["missing"]})
    if missing:
        lines.append("部分单位缺少数据的指标（已按权重重新折算）：%s。" % "、".join(
            indicators_of(dims)[m]["name"] for m in missing))
    return {"round": rnd, "ranking": ranking, "dimensions": dim_avg, "indicators": indicators,
            "unit": scope_unit(conn, [e["unit_id"] for e in ranking]),
            "bands": bands, "attention": attention, "weakest_indicators": weakest,
            "missing_indicators": missing, "text": lines}


def round_facts(conn, unit_ids: list[str], period: str, sources: dict[str, str]) -> dict:
    """Facts the platform holds for a round's units and period, as 0..100 scores.

    ``sources``: indicator code -> fact source. A fact the platform does not have for a
    unit (no rectification fell due, no education figures yet) is None, not 0.
    """
    start, end = (d.isoformat() for d in period_bounds(period))
    wanted = set(unit_ids)
    rc = {}
    q = (select(r.c.unit_id, func.count().label("total"),
                _count(r.c.status == "closed").label("closed"),
                _count(and_(r.c.status == "closed", r.c.on_time.is_(True))).label("on_time"),
                _count(and_(r.c.status != "closed", r.c.overdue.is_(True))).label("overdue"))
         .where(r.c.found_on >= start, r.c.found_on <= end).group_by(r.c.unit_id))
    for row in conn.execute(q):
        if row.unit_id in wanted:
            rc[row.unit_id] = row
    sp = {}
    q = (select(screening_periods.c.unit_id, func.count().label("due"),
                _count(screening_periods.c.status == "on_time").label("on_time"))
         .where(screening_periods.c.due_on >= start, screening_periods.c.due_on <= end)
         .group_by(screening_periods.c.unit_id))
    for row in conn.execute(q):
        sp[row.unit_id] = row
    months = months_in(period)
    ed: dict[str, list] = {}
    for row in conn.execute(select(education.c.unit_id, education.c.compliance)
                            .where(education.c.period.in_(months))):
        ed.setdefault(row.unit_id, []).append(row.compliance)
    ins = {}
    q = (select(inspections.c.unit_id, func.avg(inspections.c.percent).label("avg"))
         .where(inspections.c.status == "completed", inspections.c.completed_on >= start,
                inspections.c.completed_on <= end).group_by(inspections.c.unit_id))
    for row in conn.execute(q):
        ins[row.unit_id] = row.avg

    def pct(part, whole):
        return round(100.0 * part / whole, 2) if whole else None

    out = {}
    for uid in unit_ids:
        c, s, e = rc.get(uid), sp.get(uid), ed.get(uid)
        value_of = {
            "rectification_closure_rate": pct(c.closed, c.total) if c else None,
            "rectification_timeliness": pct(c.on_time, c.closed + c.overdue) if c else None,
            "screening_on_time": pct(s.on_time, s.due) if s else None,
            "education_compliance": round(sum(e) / len(e), 2) if e else None,
            "inspection_score": round(ins[uid], 2) if ins.get(uid) is not None else None,
        }
        out[uid] = {code: value_of[src] for code, src in sources.items()}
    return out


# -- four forms: records (inspector only) and counts (anyone) -----------------------------------
def discipline_list(conn, unit_id: str | None, period: str | None) -> dict:
    d = discipline_records
    q = select(d)
    if unit_id:
        unit = require_unit(conn, unit_id)
        q = q.select_from(d.join(ud, ud.c.unit_id == d.c.unit_id)).where(_in_subtree(unit["path"]))
    if period:
        q = q.where(d.c.period == period)
    rows = conn.execute(q.order_by(d.c.handled_on.desc(), d.c.record_id)).mappings()
    return {"records": [dict(x) for x in rows]}


def discipline_counts_by_period(conn, period: str | None = None) -> dict[str, dict]:
    """period -> {form: n} of records not voided. Counts only: nothing else leaves here."""
    d = discipline_records
    q = (select(d.c.period, d.c.form, func.count().label("n")).where(d.c.status == "recorded")
         .group_by(d.c.period, d.c.form))
    if period:
        q = q.where(d.c.period == period)
    out: dict[str, dict] = {}
    for row in conn.execute(q):
        out.setdefault(row.period, {f: 0 for f in DISCIPLINE_FORMS})[row.form] = row.n
    return out


# -- the escalation ladder's inbox -------------------------------------------------------------
def escalation_inbox(conn, scope_path: str | None, exact_unit: str | None, limit: int,
                     today: str) -> dict:
    """Every rung of the current ladder of a rectification not yet closed - or of a 跟踪问效
    task not yet accepted or cancelled (``kind``: rectification / task) - as an item
    in the inbox of the unit that rung reaches (``target.unit_id``: the owner unit, its
    head and 纪检委员, the district office). The city rung is not here: it is the city's,
    on the city's node (the exchange service's ``oversight_cases``). ``scope_path``:
    only targets in that subtree; ``exact_unit``: only that unit's own items."""
    from services.supervision.domain import TASK_STATUSES, rung_audience, task_days_overdue
    from services.supervision.projections import escalations as esc
    from services.supervision.projections import task_escalations as tesc, tasks as tk
    target_unit = ud.alias("target_unit")
    rows = [dict(row, kind="rectification") for row in conn.execute(
        select(esc.c.rect_id, esc.c.seq, esc.c.step, esc.c.level, esc.c.target,
               esc.c.escalated_on, r.c.unit_id, ud.c.name.label("unit_name"), r.c.description,
               r.c.severity, r.c.source, r.c.deadline, r.c.status, r.c.submitted_on)
        .select_from(esc.join(r, r.c.rect_id == esc.c.rect_id)
                     .join(ud, ud.c.unit_id == r.c.unit_id))
        .where(r.c.status != "closed", esc.c.deadline == r.c.deadline, esc.c.level != "city")
        ).mappings()]
    # 跟踪问效: an open (or reported) task's rungs for its current deadline, the same way
    rows += [dict(row, kind="task") for row in conn.execute(
        select(tesc.c.task_id, tesc.c.seq, tesc.c.step, tesc.c.level, tesc.c.target,
               tesc.c.escalated_on, tk.c.unit_id, ud.c.name.label("unit_name"), tk.c.title,
               tk.c.standard, tk.c.deadline, tk.c.status, tk.c.reported_on)
        .select_from(tesc.join(tk, tk.c.task_id == tesc.c.task_id)
                     .join(ud, ud.c.unit_id == tk.c.unit_id))
        .where(tk.c.status.in_(("open", "reported")), tesc.c.deadline == tk.c.deadline,
               tesc.c.level != "city")).mappings()]
    rows.sort(key=lambda r: (r["escalated_on"], r.get("rect_id") or r.get("task_id"), r["seq"]))
    rows.sort(key=lambda r: r["escalated_on"], reverse=True)  # newest first, then id, seq
    targets = {}
    items, by_level = [], {}
    for row in rows:
        target = row["target"]
        tid = target.get("unit_id") or row["unit_id"]
        if tid not in targets:
            targets[tid] = conn.execute(select(target_unit.c.name, target_unit.c.path)
                                        .where(target_unit.c.unit_id == tid)).first()
        t = targets[tid]
        if exact_unit is not None and tid != exact_unit:
            continue
        if scope_path is not None and (t is None or not t.path.startswith(scope_path)):
            continue
        by_level[row["level"]] = by_level.get(row["level"], 0) + 1
        if len(items) >= limit:
            continue
        common = {
            "step": row["step"], "level": row["level"],
            "level_label": ESCALATION_LEVELS.label(row["level"]),
            "audience": rung_audience(row["level"], target),
            "roles": target.get("roles") or [],
            "unit_id": tid, "unit_name": t.name if t else tid,
            "owner_unit_id": row["unit_id"], "owner_unit_name": row["unit_name"],
            "deadline": row["deadline"], "status": row["status"],
            "escalated_on": row["escalated_on"],
        }
        if row["kind"] == "task":
            items.append(dict(
                common, kind="task", kind_label="任务", item_id="task:%s:step%d" % (
                    row["task_id"], row["step"]), task_id=row["task_id"],
                description=row["title"], standard=row["standard"],
                status_label=TASK_STATUSES.label(row["status"]),
                days_overdue=task_days_overdue(row["deadline"], row["status"],
                                               row["reported_on"], today)))
            continue
        items.append(dict(
            common, kind="rectification", kind_label="整改",
            item_id="rect:%s:step%d" % (row["rect_id"], row["step"]), rect_id=row["rect_id"],
            description=row["description"], severity=row["severity"], source=row["source"],
            days_overdue=days_overdue(row["deadline"], row["status"], row["submitted_on"],
                                      today)))
    return {"total": sum(by_level.values()), "by_level": by_level, "items": items}


# == the practices (跟踪问效, 专项, 重点岗位, 群众监督) =====================================
# -- 跟踪问效: task lists, tasks, 推进会 ---------------------------------------------------------
SOON_DAYS = 7  # "临近时限" unless the caller says otherwise (the console's due_soon_days)


def _task_out(row, today: str, soon_days: int = SOON_DAYS) -> dict:
    out = dict(row)
    out["evidence"] = out.get("evidence") or []
    out["days_overdue"] = task_days_overdue(out["deadline"], out["status"], out["reported_on"],
                                            today)
    out["colour"] = task_colour(out["deadline"], out["status"], today, soon_days)
    return out


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
    unit = require_unit(conn, unit_id)
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
    soon = _soon(today, soon_days)
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
    unit = require_unit(conn, unit_id)
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
    unit = require_unit(conn, unit_id)
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
    unit = require_unit(conn, unit_id)
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
    scope = require_unit(conn, c["scope_unit_id"])
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
def _flagged(conn, unit_id, include_subtree, kind):
    unit = require_unit(conn, unit_id)
    where = [startswith(ud.c.path, unit["path"]) if include_subtree
             else key_posts.c.unit_id == unit_id]
    if kind:
        where.append(key_posts.c.kind == kind)
    return where


def list_key_posts(conn, unit_id, include_subtree, kind) -> dict:
    """Flagged posts with their risk points (active, by level) and the inspections that
    looked at them."""
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
    rp = risk_points
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
    rp = risk_points
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


# -- 群众监督 ------------------------------------------------------------------------------------
def list_public_reports(conn, unit_id: str, status: str | None) -> list[dict]:
    units = {u["unit_id"]: u for u in subtree_of(conn, unit_directory, unit_id, include_inactive=True)}
    q = select(public_reports).where(public_reports.c.unit_id.in_(list(units)))
    if status:
        q = q.where(public_reports.c.status == status)
    rows = conn.execute(q.order_by(public_reports.c.received_on.desc(),
                                   public_reports.c.report_id)).mappings().all()
    return [dict(r, unit_name=units[r["unit_id"]]["name"]) for r in rows]


# -- application.py's reads: the records' owners, the sweeps, and its read port -------------------
OWNED = {  # the field naming a record -> (its table, the column of its unit, its 404)
    "inspection_id": (inspections, "unit_id", "检查「{}」不存在"),
    "rect_id": (rectifications, "unit_id", "整改「{}」不存在"),
    "risk_point_id": (risk_points, "unit_id", "风险点「{}」不存在"),
    "record_id": (discipline_records, "unit_id", "执纪记录「{}」不存在"),
    # the practices' (跟踪问效, 推进会, 专项; 群众监督)
    "task_id": (tasks, "unit_id", "任务「{}」不存在"),
    "list_id": (task_lists, "issuer_unit_id", "任务清单「{}」不存在"),
    "meeting_id": (meetings, "convener_unit_id", "会议「{}」不存在"),
    "campaign_id": (campaigns, "scope_unit_id", "专项「{}」不存在"),
    "report_id": (public_reports, "unit_id", "没有这条群众反映"),
}


def owner_unit(conn, key: str, record_id: str) -> str:
    """The unit that owns the record ``key`` names (a command's scope), or 404."""
    table, column, missing = OWNED[key]
    unit_id = conn.execute(select(table.c[column]).where(table.c[key] == record_id)).scalar()
    if unit_id is None:
        raise NotFound(missing.format(record_id), {key: ["不存在"]})
    return unit_id


def unit_path(conn, unit_id: str) -> str | None:
    return path_of(conn, ud, unit_id)


def path_units(conn, unit_id: str) -> list[dict]:
    """The units on the path to ``unit_id``, root first, each with its ``level`` (None for
    one the directory does not hold; a unit not in the directory is a path of its own)."""
    ids = (unit_path(conn, unit_id) or "/%s/" % unit_id).strip("/").split("/")
    levels = dict(conn.execute(select(ud.c.unit_id, ud.c.level).where(ud.c.unit_id.in_(ids))).all())
    return [{"unit_id": u, "level": levels.get(u)} for u in ids]


def active_units(conn) -> list[dict]:
    """Every active unit of the node, in path order."""
    return [dict(x) for x in conn.execute(
        select(ud).where(ud.c.active.is_(True)).order_by(ud.c.path)).mappings()]


def _or_default(read, cls, record_id: str, version: int | None, view):
    """``read()``; the built-in default of ``cls``, not recorded yet, reads as ``view`` of
    what the first plan or round will record (its version 1)."""
    try:
        return read()
    except NotFound:
        if record_id != cls.DEFAULT_ID or version not in (None, 1):
            raise
        return view(cls.default())


def checklist_or_default(conn, checklist_id: str, version: int | None) -> dict:
    return _or_default(lambda: checklist(conn, checklist_id, version), Checklist, checklist_id,
                       version, lambda c: {
                           "checklist_id": c.id, "version": 1, "title": c.title,
                           "criteria": c.criteria(), "note": None, "defined_at": None,
                           "versions": []})


def indicator_system_or_default(conn, system_id: str, version: int | None) -> dict:
    return _or_default(lambda: indicator_system(conn, system_id, version), IndicatorSystem,
                       system_id, version, lambda s: {
                           "system_id": s.id, "version": 1, "title": s.title,
                           "dimensions": s.dimensions(), "effective_from": None, "note": None,
                           "defined_at": None, "versions": []})


def list_rounds(conn) -> dict:
    rows = conn.execute(select(rounds).order_by(rounds.c.opened_on.desc(), rounds.c.round_id))
    return {"rounds": [dict(x._mapping) for x in rows]}


# -- what the practices' commands read (跟踪问效, 推进会, 专项, 重点岗位; 群众监督) ------------------
class PracticeReads:
    """The reads the practices' commands decide with, as ``uow.supervision`` answers them
    (``SupervisionReadPort`` is one of these); ``conn``: the unit of work's connection."""

    conn = None

    def path(self, unit_id: str) -> str | None:
        """The unit's path in the directory (None: not in it)."""
        return unit_path(self.conn, unit_id)

    def unit_name(self, unit_id: str) -> str | None:
        return self.conn.execute(select(ud.c.name).where(ud.c.unit_id == unit_id)).scalar()

    def finding(self, finding_id: str) -> dict:
        """A finding as a campaign tags it: the unit it was found in (``unit_id``, and its
        ``path``) and ``found_on``; or 404."""
        row = self.conn.execute(
            select(r.c.finding_unit_id.label("unit_id"), r.c.found_on, ud.c.path)
            .select_from(r.outerjoin(ud, ud.c.unit_id == r.c.finding_unit_id))
            .where(r.c.rect_id == finding_id)).mappings().first()
        if row is None:
            raise NotFound("问题「%s」不存在" % finding_id, {"finding_id": ["不存在"]})
        return dict(row)

    def overdue_tasks(self, today: str) -> list:
        """Open tasks past their deadline (``task_id``, ``unit_id``, ``deadline``,
        ``overdue``, ``escalation_step``), by id: what ``detect_task_overdue`` goes through."""
        return self.conn.execute(
            select(tasks.c.task_id, tasks.c.unit_id, tasks.c.deadline, tasks.c.overdue,
                   tasks.c.escalation_step)
            .where(tasks.c.status == "open", tasks.c.deadline < today)
            .order_by(tasks.c.task_id)).all()
# -- end of what the practices' commands read --


class SupervisionReadPort(PracticeReads):
    """``uow.supervision``: the read models as the commands need them to decide (the
    practices' reads are ``PracticeReads``'), inside their unit of work (so it reads what
    the command has just written, under the same lock); a phased command's read step
    builds one on its read connection. The rules themselves are the domain's: this only
    answers what is there."""

    def __init__(self, conn):
        self.conn = conn

    # -- the unit directory
    def unit(self, unit_id: str) -> dict:
        """The unit's row (its ``active``, ``path``, ``level``...), or 404."""
        return require_unit(self.conn, unit_id)

    def require_listed(self, unit_ids: list[str], field: str = "unit_ids") -> None:
        """Every unit of a list is in the directory, or 404 naming the first missing one."""
        for n, unit_id in enumerate(unit_ids):
            if unit_of(self.conn, ud, unit_id) is None:
                raise NotFound("单位「%s」不存在" % unit_id, {"%s.%d" % (field, n): ["没有这个单位"]})

    def subtree(self, unit_id: str) -> list[dict]:
        """The active units under ``unit_id``, itself first, in path order."""
        return subtree_of(self.conn, ud, unit_id)

    def path_units(self, unit_id: str) -> list[dict]:
        return path_units(self.conn, unit_id)

    def active_units(self) -> list[dict]:
        return active_units(self.conn)

    def district_roots(self) -> list[dict]:
        return district_roots(self.conn)

    # -- the records, as the commands answer them
    def inspection(self, inspection_id: str) -> dict:
        return inspection(self.conn, inspection_id)

    def rectification(self, rect_id: str, today: str) -> dict:
        return rectification(self.conn, rect_id, today)

    def risk_point(self, risk_point_id: str) -> dict:
        return risk_point(self.conn, risk_point_id)

    def referral_case(self, rect_id: str) -> dict | None:
        """What the city rung sends up about a rectification (``Rectification.ReferredToCity``):
        the finding as recorded here, and the unit's name."""
        row = self.conn.execute(
            select(r.c.description, r.c.severity, r.c.source, r.c.category, r.c.requirement,
                   r.c.found_on, ud.c.name.label("unit_name"))
            .select_from(r.outerjoin(ud, ud.c.unit_id == r.c.unit_id))
            .where(r.c.rect_id == rect_id)).mappings().first()
        return dict(row) if row else None

    def round_facts(self, unit_ids: list[str], period: str, sources: dict[str, str]) -> dict:
        return round_facts(self.conn, unit_ids, period, sources)

    # -- what the sweeps (detect_overdue, publish_indicators) go through
    def overdue_rectifications(self, today: str) -> list:
        """Open rectifications past their deadline (``rect_id``, ``unit_id``, ``deadline``,
        ``overdue``, ``escalation_step``), by id."""
        return self.conn.execute(
            select(r.c.rect_id, r.c.unit_id, r.c.deadline, r.c.overdue, r.c.escalation_step)
            .where(r.c.status == "open", r.c.deadline < today).order_by(r.c.rect_id)).all()

    def screenings_due(self, today: str) -> list[str]:
        """Units whose screening is past its flag date; a deactivated unit (撤并) has
        nothing left to screen."""
        return [u for (u,) in self.conn.execute(
            select(screening.c.unit_id)
            .select_from(screening.join(ud, ud.c.unit_id == screening.c.unit_id))
            .where(screening.c.flag_after < today, ud.c.active.is_(True))
            .order_by(screening.c.unit_id)).all()]

    def reviews_overdue(self, today: str) -> list[str]:
        """Risk points with a control past its review date not flagged yet (a retired
        point has none left to review)."""
        return [p for (p,) in self.conn.execute(
            select(risk_controls.c.risk_point_id).distinct()
            .select_from(risk_controls.join(
                risk_points, risk_points.c.risk_point_id == risk_controls.c.risk_point_id))
            .where(risk_controls.c.review_overdue.is_(False), risk_controls.c.review_date < today,
                   risk_points.c.status == "active")
            .order_by(risk_controls.c.risk_point_id)).all()]

    def provisional_months(self, unit_ids: set[str]) -> set[str]:
        """The months still published as provisional for any of ``unit_ids`` (a unit
        closed since leaves its provisional row behind: not a month left open)."""
        return {period for table in (published_units, published_districts)
                for unit_id, period in self.conn.execute(
                    select(table.c.unit_id, table.c.period).where(table.c.provisional.is_(True)))
                if unit_id in unit_ids}

    def last_published(self, districts: bool, period: str) -> dict:
        """unit id -> (figures, provisional) last published for ``period`` (per unit, or
        per district)."""
        table = published_districts if districts else published_units
        return {x.unit_id: (x.figures, x.provisional)
                for x in self.conn.execute(select(table).where(table.c.period == period))}

    def unit_figures(self, units: list[dict], found_to: str) -> dict[str, dict]:
        return unit_figures(self.conn, "/", units, found_to)

    def district_figures(self, root: dict, found_to: str) -> dict:
        return district_figures(self.conn, root, found_to)

    def discipline_counts(self) -> dict[str, dict]:
        return discipline_counts_by_period(self.conn)

    def discipline_periods_published(self) -> set[str]:
        return {x.period for x in self.conn.execute(select(discipline_counts.c.period))}
# -- end of application.py's reads --
