"""Query helpers over the education read models: plain functions ``(conn, ...)`` over a
live connection or an as-of replay, and the read port the commands decide with.

The functions answer the service's queries (``application.py``);
``EducationReadPort`` is the narrow view a command gets as ``uow.education``
(``app.read_port``): a unit, a session, the members known, a notice's receipt... - the
facts an aggregate's method takes as arguments - so a handler loads, decides, saves and
answers without naming a table. The tables and the projections that fill them are in
``projections.py`` (the practices' - 献一策, 典型案例通报 - as well).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Integer, and_, bindparam, func, select

from shared.errors import NotFound
from shared.projections import startswith
from shared.store import events as store_events
from shared.unittree import path_of, require_unit as require_tree_unit, subtree_of, unit_directory, unit_of

from services.education.dates import month_bounds
from services.education.domain import (
    ADOPTED_OUTCOMES, CONTENT_KINDS, SESSION_KINDS, adoption_rate, coverage_days, fit_score, fits, live_streak,
    longest_run, normalise_tags, study_state,
)
from services.education.projections import (
    bulk_checkins, bulletin_receipts, bulletins, checkins, content, district_indicators, external_refs, inbox, inbox_reads,
    indicators, members, node_attendance, notices, participations, period_entries, profiles, receipts,
    reminders, risk_register, rotations, sessions, shared_sessions, shown, streaks, suggestions, talks,
    warning_months, young_cadres,
)


# -- sessions shared with other nodes ------------------------------------------------------------
def shared_session(conn, slug: str) -> dict | None:
    row = conn.execute(select(shared_sessions).where(shared_sessions.c.slug == slug)).mappings().first()
    return dict(row) if row else None


def attended_units(conn, session_key_: str) -> list[str]:
    """Units of this node whose participation in a session elsewhere is recorded as attended."""
    return list(conn.execute(select(participations.c.unit_id).where(
        participations.c.session_key == session_key_, participations.c.status == "attended")).scalars())


def nodes_attendance(conn, session_id: str) -> dict:
    """For a session shared with other nodes: the nodes, and per node which units came
    and how many (as each node's exchange reported it back)."""
    shared = conn.execute(select(shared_sessions).where(shared_sessions.c.session_id == session_id)) \
        .mappings().first()
    if shared is None:
        return {}
    rows = conn.execute(select(node_attendance).where(node_attendance.c.session_id == session_id)
                        .order_by(node_attendance.c.node)).mappings()
    by_node = [{"node": r["node"], "units": r["units"], "attendees": r["attendees"],
                "reported_at": r["reported_at"]} for r in rows]
    return {"shared_with_nodes": shared["nodes"], "exchange_slug": shared["slug"],
            "nodes_attendance": by_node,
            "nodes_attendees": sum(n["attendees"] for n in by_node),
            "nodes_units_attended": sum(1 for n in by_node for u in n["units"] if u["attendees"] > 0)}


# -- the check-in ------------------------------------------------------------------------------
# Everything a check-in decides on, for a whole batch of members in one round trip:
# each member's unit, whether the day has a reminder, whether they already checked in,
# and the run they are on. Built once: the burst runs it many times a minute.
_CHECKIN_STATE = (
    select(members.c.person_id, members.c.unit_id, reminders.c.day.label("reminder_day"),
           checkins.c.checked_at, streaks.c.last_day, streaks.c.current)
    .select_from(
        members
        .outerjoin(reminders, reminders.c.day == bindparam("day"))
        .outerjoin(checkins, and_(checkins.c.day == bindparam("day"),
                                  checkins.c.person_id == members.c.person_id))
        .outerjoin(streaks, streaks.c.person_id == members.c.person_id))
    .where(members.c.person_id.in_(bindparam("person_ids", expanding=True)))
)


def checkin_states(conn, person_ids: list[str], day: str) -> dict:
    """person id -> (person_id, unit_id, reminder_day, checked_at, last_day, current);
    members not known here are absent."""
    return {r.person_id: r for r in conn.execute(
        _CHECKIN_STATE, {"person_ids": sorted(set(person_ids)), "day": day})}


# -- the unit directory and the figures --------------------------------------------------------
def ratio(part: float, whole: float) -> float:
    return round(min(1.0, part / whole), 4) if whole else 0.0


def unit_path(conn, unit_id: str) -> str | None:
    return path_of(conn, unit_directory, unit_id)


def unit_row(conn, unit_id: str) -> dict | None:
    return unit_of(conn, unit_directory, unit_id)


def party_orgs(conn, root_id: str | None, levels) -> list[dict]:
    """Active units that count as party organisations, in a subtree or on the node."""
    if root_id is None:
        q = select(unit_directory).where(unit_directory.c.active.is_(True))
        rows = [dict(r) for r in conn.execute(q.order_by(unit_directory.c.path)).mappings()]
    else:
        rows = subtree_of(conn, unit_directory, root_id)
    return [u for u in rows if u["level"] in levels]


def _rollup(orgs: list[dict], counts: dict[str, float], paths: dict[str, str]) -> dict[str, float]:
    """Sum per-unit counts into each organisation over its subtree (科室, 基层站所 below a
    unit belong to its party organisation)."""
    out = {}
    for org in orgs:
        prefix = org["path"]
        out[org["unit_id"]] = sum(n for uid, n in counts.items()
                                  if (paths.get(uid) or "").startswith(prefix))
    return out


def _paths(conn) -> dict[str, str]:
    return dict(conn.execute(select(unit_directory.c.unit_id, unit_directory.c.path)).all())


def warning_compliance(conn, root_id: str, period: str, levels) -> dict:
    """月月行: each party organisation below ``root_id`` and whether it held (or attended)
    at least one warning-education session in the month."""
    orgs = party_orgs(conn, root_id, levels)
    counts = dict(conn.execute(select(warning_months.c.unit_id, warning_months.c.sessions)
                               .where(warning_months.c.period == period)).all())
    rolled = _rollup(orgs, counts, _paths(conn))
    units = [{"unit_id": o["unit_id"], "name": o["name"], "kind": o["kind"],
              "sessions": int(rolled[o["unit_id"]]), "held": rolled[o["unit_id"]] > 0} for o in orgs]
    missed = [{"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"]}
              for u in units if not u["held"]]
    held = len(units) - len(missed)
    return {"unit_id": root_id, "period": period, "units_total": len(units), "compliant": held,
            "rate": ratio(held, len(units)), "units": units, "missed": missed}


def _member_counts(conn) -> dict[str, int]:
    return dict(conn.execute(select(members.c.unit_id, func.count())
                             .group_by(members.c.unit_id)).all())


def checkin_daily(conn, root_id: str, day: str, levels) -> dict:
    """Daily coverage: members who acknowledged the day's reminder, per organisation."""
    orgs = party_orgs(conn, root_id, levels)
    paths = _paths(conn)
    member_counts = _member_counts(conn)
    checked = dict(conn.execute(select(checkins.c.unit_id, func.count())
                                .where(checkins.c.day == day).group_by(checkins.c.unit_id)).all())
    m = _rollup(orgs, member_counts, paths)
    c = _rollup(orgs, checked, paths)
    root_path = paths.get(root_id) or ""
    total_m = sum(n for uid, n in member_counts.items() if (paths.get(uid) or "").startswith(root_path))
    total_c = sum(n for uid, n in checked.items() if (paths.get(uid) or "").startswith(root_path))
    reminder = conn.execute(select(reminders.c.text).where(reminders.c.day == day)).scalar()
    return {"unit_id": root_id, "day": day, "reminder": reminder, "members": total_m,
            "checked_in": total_c, "coverage": ratio(total_c, total_m),
            "units": [{"unit_id": o["unit_id"], "name": o["name"], "members": int(m[o["unit_id"]]),
                       "checked_in": int(c[o["unit_id"]]),
                       "coverage": ratio(c[o["unit_id"]], m[o["unit_id"]])} for o in orgs]}


def reminder_days(conn, period: str, today: date) -> list[str]:
    """The month's days with a reminder that count on ``today`` (domain.coverage_days)."""
    window = coverage_days(period, today)
    if window is None:
        return []
    first, last = window
    return [r for (r,) in conn.execute(select(reminders.c.day).where(
        reminders.c.day >= first.isoformat(), reminders.c.day <= last.isoformat())
        .order_by(reminders.c.day))]


def checkin_monthly(conn, root_id: str, period: str, levels, today: date) -> dict:
    """Monthly coverage: member-days checked in / (members x days with a reminder, up to
    today)."""
    first, last = month_bounds(period)
    days_ = reminder_days(conn, period, today)
    orgs = party_orgs(conn, root_id, levels)
    paths = _paths(conn)
    root_path = paths.get(root_id) or ""
    in_root = lambda uid: (paths.get(uid) or "").startswith(root_path)  # noqa: E731
    member_counts = _member_counts(conn)
    rows = conn.execute(select(checkins.c.unit_id, checkins.c.day, func.count())
                        .where(checkins.c.day >= first.isoformat(), checkins.c.day <= last.isoformat())
                        .group_by(checkins.c.unit_id, checkins.c.day)).all()
    per_unit: dict[str, int] = {}
    per_day: dict[str, int] = {}
    for uid, day, n in rows:
        per_unit[uid] = per_unit.get(uid, 0) + n
        if in_root(uid):
            per_day[day] = per_day.get(day, 0) + n
    m = _rollup(orgs, member_counts, paths)
    c = _rollup(orgs, per_unit, paths)
    total_m = sum(n for uid, n in member_counts.items() if in_root(uid))
    total_c = sum(per_day.values())
    return {"unit_id": root_id, "period": period, "reminder_days": len(days_), "members": total_m,
            "member_days": total_c, "coverage": ratio(total_c, total_m * len(days_)),
            "days": [{"day": d, "checked_in": per_day.get(d, 0),
                      "coverage": ratio(per_day.get(d, 0), total_m)} for d in days_],
            "units": [{"unit_id": o["unit_id"], "name": o["name"], "members": int(m[o["unit_id"]]),
                       "member_days": int(c[o["unit_id"]]),
                       "coverage": ratio(c[o["unit_id"]], m[o["unit_id"]] * len(days_))}
                      for o in orgs]}


def member_streak(conn, person_id: str, today: date) -> dict:
    row = conn.execute(select(streaks).where(streaks.c.person_id == person_id)).mappings().first()
    days = list(conn.execute(select(checkins.c.day).where(checkins.c.person_id == person_id)).scalars())
    if row is None:
        return {"person_id": person_id, "current": 0, "best": 0, "total": 0, "last_day": None}
    return {"person_id": person_id, "current": live_streak(row["last_day"], row["current"], today),
            "best": longest_run(days), "total": len(days), "last_day": row["last_day"]}


def _in_subtree(conn, unit_id: str) -> list[str]:
    return [u["unit_id"] for u in subtree_of(conn, unit_directory, unit_id, include_inactive=True)]


def talks_on_time(conn, unit_ids: list[str], period: str) -> tuple[int, int]:
    """Talks due in the month for people of these units, and how many were held by then."""
    first, last = month_bounds(period)
    rows = conn.execute(select(talks.c.on_time).where(
        talks.c.unit_id.in_(unit_ids), talks.c.due_on >= first.isoformat(),
        talks.c.due_on <= last.isoformat())).all()
    return len(rows), sum(1 for (ok,) in rows if ok)


def unit_indicators(conn, unit_id: str, period: str, today: date) -> dict:
    """The three published figures of one party organisation (its subtree) for a month."""
    unit_ids = _in_subtree(conn, unit_id)
    first, last = month_bounds(period)
    held = conn.execute(select(func.coalesce(func.sum(warning_months.c.sessions), 0)).where(
        warning_months.c.unit_id.in_(unit_ids), warning_months.c.period == period)).scalar()
    n_members = conn.execute(select(func.count()).select_from(members)
                             .where(members.c.unit_id.in_(unit_ids))).scalar()
    member_days = conn.execute(select(func.count()).select_from(checkins).where(
        checkins.c.unit_id.in_(unit_ids), checkins.c.day >= first.isoformat(),
        checkins.c.day <= last.isoformat())).scalar()
    due, on_time = talks_on_time(conn, unit_ids, period)
    return {"unit_id": unit_id, "period": period,
            "warning_education_held": bool(held),
            "checkin_coverage": ratio(member_days,
                                      n_members * len(reminder_days(conn, period, today))),
            "talks_on_time_rate": round(on_time / due, 4) if due else None,
            "details": {"warning_sessions": int(held), "members": n_members,
                        "member_days": member_days, "talks_due": due, "talks_on_time": on_time}}


def district_figures(conn, period: str, levels, today: date) -> dict:
    orgs = party_orgs(conn, None, levels)
    per_unit = [unit_indicators(conn, o["unit_id"], period, today) for o in orgs]
    held = sum(1 for u in per_unit if u["warning_education_held"])
    first, last = month_bounds(period)
    n_members = conn.execute(select(func.count()).select_from(members)).scalar()
    member_days = conn.execute(select(func.count()).select_from(checkins).where(
        checkins.c.day >= first.isoformat(), checkins.c.day <= last.isoformat())).scalar()
    # talks across the node, not only those under a party organisation (the district
    # office's own cadres count too)
    rows = conn.execute(select(talks.c.on_time).where(
        talks.c.due_on >= first.isoformat(), talks.c.due_on <= last.isoformat())).all()
    due, on_time = len(rows), sum(1 for (ok,) in rows if ok)
    return {"units_total": len(orgs), "units_warning_education_held": held,
            "warning_education_compliance": ratio(held, len(orgs)),
            "checkin_coverage": ratio(member_days,
                                      n_members * len(reminder_days(conn, period, today))),
            "talks_due": due, "talks_on_time": on_time,
            "talks_on_time_rate": round(on_time / due, 4) if due else None}, per_unit


# -- sessions ----------------------------------------------------------------------------------
def session_dict(row) -> dict:
    d = dict(row)
    d["kind_name"] = SESSION_KINDS[d["kind"]]
    return d


def get_session(conn, session_id: str) -> dict | None:
    row = conn.execute(select(sessions).where(sessions.c.session_id == session_id)).mappings().first()
    return dict(session_dict(row), **nodes_attendance(conn, session_id)) if row else None


def list_sessions(conn, unit_id: str, period: str | None, kind: str | None) -> dict:
    """Sessions organised in a subtree, and the sessions its units joined elsewhere."""
    path = unit_path(conn, unit_id)
    q = select(sessions).select_from(sessions.join(
        unit_directory, unit_directory.c.unit_id == sessions.c.organiser_unit_id)
    ).where(startswith(unit_directory.c.path, path))
    pq = select(participations).select_from(participations.join(
        unit_directory, unit_directory.c.unit_id == participations.c.unit_id)
    ).where(startswith(unit_directory.c.path, path))
    if period:
        q, pq = q.where(sessions.c.period == period), pq.where(participations.c.period == period)
    if kind:
        q, pq = q.where(sessions.c.kind == kind), pq.where(participations.c.kind == kind)
    organised = [session_dict(r) for r in conn.execute(
        q.order_by(sessions.c.local_date, sessions.c.session_id)).mappings()]
    joined = [dict(r) for r in conn.execute(
        pq.order_by(participations.c.local_date, participations.c.participation_id)).mappings()]
    return {"unit_id": unit_id, "period": period, "organised": organised, "joined": joined}


def external_ref(conn, ref_kind: str, key: str) -> dict | None:
    row = conn.execute(select(external_refs).where(external_refs.c.ref_kind == ref_kind,
                                                   external_refs.c.ref_key == key)).mappings().first()
    return dict(row) if row else None


# -- library and tailoring ---------------------------------------------------------------------
def content_dict(row) -> dict:
    return dict(row, kind_name=CONTENT_KINDS[row["kind"]])


def library(conn, include_retired: bool = False) -> list[dict]:
    q = select(content)
    if not include_retired:
        q = q.where(content.c.retired.is_(False))
    return [content_dict(r) for r in conn.execute(q.order_by(content.c.item_id)).mappings()]


def register_entries(conn, unit_id: str) -> list[dict]:
    """The active entries of supervision's 廉政风险点台账 for a unit's subtree."""
    path = unit_path(conn, unit_id)
    if path is None:
        return []
    rows = conn.execute(select(risk_register).select_from(risk_register.join(
        unit_directory, unit_directory.c.unit_id == risk_register.c.unit_id)).where(
        startswith(unit_directory.c.path, path), risk_register.c.active.is_(True),
        risk_register.c.name.isnot(None)).order_by(risk_register.c.risk_point_id)).mappings()
    return [{"risk_point_id": r["risk_point_id"], "unit_id": r["unit_id"], "name": r["name"],
             "category": r["category"], "post": r["post"]} for r in rows]


def unit_profile(conn, unit_id: str) -> dict:
    """What a unit's material should fit: its declared business types and posts, the
    posts its mirrored members actually hold, and the risk points supervision's register
    holds for it (subtree). Risk points are never taken from the declared profile: the
    register is the one list (a profile set before it may still hold some; ignored)."""
    row = conn.execute(select(profiles.c.tags).where(profiles.c.unit_id == unit_id)).scalar()
    tags = normalise_tags(row)
    path = unit_path(conn, unit_id)
    if path is not None:
        posts = conn.execute(select(members.c.post).distinct().select_from(members.join(
            unit_directory, unit_directory.c.unit_id == members.c.unit_id))
            .where(startswith(unit_directory.c.path, path), members.c.post.isnot(None))).scalars()
        tags["posts"] = sorted(set(tags["posts"]) | set(posts))
    register = register_entries(conn, unit_id)
    tags["risk_points"] = sorted({r["name"] for r in register})
    return {"unit_id": unit_id, "declared": bool(row), **tags, "register": register}


def offer_for_unit(conn, unit_id: str, today: date, limit: int) -> dict:
    """精准滴灌: library items, upcoming joinable sessions and typical cases that fit the
    unit's business types, posts and risk points, best fit first."""
    profile = unit_profile(conn, unit_id)

    def ranked(items):
        fitting = [dict(i, fit=fit_score(i["tags"], profile)) for i in items if fits(i["tags"], profile)]
        return sorted(fitting, key=lambda i: (-i["fit"], i.get("title", "")))[:limit]

    upcoming = [session_dict(r) for r in conn.execute(select(sessions).where(
        sessions.c.status == "planned", sessions.c.joinable.is_(True),
        sessions.c.local_date >= today.isoformat())).mappings()]
    ext = [dict(r, key=r["ref_key"], tags=r["tags"]) for r in conn.execute(
        select(external_refs)).mappings()]
    ext_sessions = [e for e in ext if e["ref_kind"] == "session" and (e["local_date"] or "") >= today.isoformat()]
    cases = [e for e in ext if e["ref_kind"] == "case"]
    return {"unit_id": unit_id, "profile": profile,
            "content": ranked(library(conn)),
            "sessions": ranked(upcoming + ext_sessions),
            "cases": ranked(cases)}


def risk_point_coverage(conn, root_id: str, period: str, levels) -> dict:
    """For each integrity-risk point of the units below ``root_id``: which units carry
    it, which of them took part in a session tagged with it this month, and how much
    library material addresses it - the gaps are what 精准滴灌 should fill next."""
    orgs = party_orgs(conn, root_id, levels)
    paths = _paths(conn)
    # the register's risk points (supervision's 台账), per organisation's subtree
    unit_risks = {o["unit_id"]: set(unit_profile(conn, o["unit_id"])["risk_points"]) for o in orgs}
    register_ids: dict[str, list[str]] = {}
    for entry in register_entries(conn, root_id):
        register_ids.setdefault(entry["name"], []).append(entry["risk_point_id"])
    # risk points each unit's sessions this month addressed (organised, attended, joined)
    covered: dict[str, set] = {o["unit_id"]: set() for o in orgs}

    def credit(unit_id, tags):
        p = paths.get(unit_id) or ""
        for o in orgs:
            if p.startswith(o["path"]):
                covered[o["unit_id"]] |= set(normalise_tags(tags)["risk_points"])

    for r in conn.execute(select(sessions.c.attended_unit_ids, sessions.c.tags).where(
            sessions.c.status == "held", sessions.c.period == period)):
        for uid in r.attended_unit_ids:
            credit(uid, r.tags)
    parts = conn.execute(select(participations.c.unit_id, participations.c.session_key,
                                participations.c.session_node, participations.c.session_id,
                                participations.c.external).where(
        participations.c.status == "attended", participations.c.period == period)).all()
    for p in parts:
        if p.external:
            ref = external_ref(conn, "session", p.session_key)
            tags = ref["tags"] if ref else {}
        else:
            s = get_session(conn, p.session_id)
            tags = s["tags"] if s else {}
        credit(p.unit_id, tags)
    items = library(conn)
    points = sorted(set().union(*unit_risks.values())) if unit_risks else []
    out = []
    for point in points:
        carrying = sorted(u for u, risks in unit_risks.items() if point in risks)
        done = [u for u in carrying if point in covered[u]]
        out.append({"risk_point": point, "units": len(carrying), "units_covered": len(done),
                    "coverage": ratio(len(done), len(carrying)),
                    "gaps": [u for u in carrying if u not in done],
                    "library_items": sum(1 for i in items if point in i["tags"]["risk_points"]),
                    "register_ids": sorted(register_ids.get(point, []))})
    untagged = sorted(u for u, risks in unit_risks.items() if not risks)
    return {"unit_id": root_id, "period": period, "risk_points": out,
            "units_without_risk_points": untagged}


# -- notices, talks, young cadres ----------------------------------------------------------------
def notice_receipts(conn, notice_id: str) -> dict:
    rows = conn.execute(select(receipts, unit_directory.c.name).select_from(receipts.outerjoin(
        unit_directory, unit_directory.c.unit_id == receipts.c.unit_id))
        .where(receipts.c.notice_id == notice_id).order_by(receipts.c.unit_id)).mappings().all()
    done = [dict(r) for r in rows if r["acknowledged_at"]]
    pending = [{"unit_id": r["unit_id"], "name": r["name"]} for r in rows if not r["acknowledged_at"]]
    return {"notice_id": notice_id, "recipients": len(rows), "acknowledged": done,
            "not_acknowledged": pending, "rate": ratio(len(done), len(rows))}


def list_talks(conn, unit_id: str, status: str | None) -> list[dict]:
    q = select(talks).where(talks.c.unit_id.in_(_in_subtree(conn, unit_id)))
    if status == "overdue":
        q = q.where(talks.c.status == "scheduled", talks.c.overdue.is_(True))
    elif status:
        q = q.where(talks.c.status == status)
    return [dict(r) for r in conn.execute(q.order_by(talks.c.due_on, talks.c.talk_id)).mappings()]


def list_young_cadres(conn, unit_id: str) -> list[dict]:
    q = select(young_cadres).where(young_cadres.c.unit_id.in_(_in_subtree(conn, unit_id)))
    return [dict(r) for r in conn.execute(q.order_by(young_cadres.c.next_due_on,
                                                     young_cadres.c.person_id)).mappings()]


# -- inbox ---------------------------------------------------------------------------------------
def inbox_items(conn, unit_ids: list[str] | None, user_id: str | None, include_closed: bool,
                limit: int) -> dict:
    """Items for some units (None: the whole node), newest first, read marks per user."""
    q = select(inbox)
    if unit_ids is not None:
        q = q.where(inbox.c.unit_id.in_(unit_ids))
    if not include_closed:
        q = q.where(inbox.c.status == "open")
    rows = [dict(r) for r in conn.execute(
        q.order_by(inbox.c.created_at.desc(), inbox.c.item_id).limit(limit)).mappings()]
    read = set()
    if user_id and rows:
        read = set(conn.execute(select(inbox_reads.c.item_id).where(
            inbox_reads.c.user_id == user_id,
            inbox_reads.c.item_id.in_([r["item_id"] for r in rows]))).scalars())
    for r in rows:
        r["read"] = r["item_id"] in read
    counts: dict[str, int] = {}
    for r in rows:
        if r["status"] == "open":
            counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    return {"items": rows, "open_by_kind": counts,
            "unread": sum(1 for r in rows if not r["read"] and r["status"] == "open")}


def rotation_history(conn, unit_id: str, limit: int) -> list[dict]:
    rows = conn.execute(select(rotations).where(rotations.c.unit_id == unit_id)
                        .order_by(rotations.c.week.desc()).limit(limit)).mappings().all()
    titles = dict(conn.execute(select(content.c.item_id, content.c.title)).all())
    out = []
    for r in rows:
        d = dict(r)
        d["items"] = [{"item_id": i, "title": titles.get(i)} for i in d["item_ids"]]
        out.append(d)
    return out



def publicity_week(conn, root_id: str, week: str, levels) -> list[dict]:
    """周更新 of one ISO week for every party organisation below ``root_id``: what each
    shows (titles and kinds, latest choice of the week) or None where nothing was shown."""
    orgs = party_orgs(conn, root_id, levels)
    ids = [o["unit_id"] for o in orgs]
    rows = {r["unit_id"]: dict(r) for r in conn.execute(select(rotations).where(
        rotations.c.week == week, rotations.c.unit_id.in_(ids))).mappings()} if ids else {}
    items = {r.item_id: r for r in conn.execute(
        select(content.c.item_id, content.c.title, content.c.kind))}
    out = []
    for o in orgs:
        r = rows.get(o["unit_id"])
        shown_now = None
        if r is not None:
            shown_now = {"chosen_by": r["chosen_by"], "revision": r["revision"],
                         "rotated_at": r["rotated_at"],
                         "items": [{"item_id": i, "title": items[i].title if i in items else None,
                                    "kind": items[i].kind if i in items else None}
                                   for i in r["item_ids"]]}
        out.append({"unit_id": o["unit_id"], "name": o["name"], "rotation": shown_now})
    return out


# -- 清廉机关实践: 献一策 and 典型案例通报 ---------------------------------------------------------
def _subtree_by_id(conn, unit_id: str) -> dict[str, dict]:
    return {u["unit_id"]: u for u in subtree_of(conn, unit_directory, unit_id, include_inactive=True)}


def require_suggestion_unit(conn, suggestion_id: str) -> str:
    """The unit a suggestion is for, or a 404 naming ``suggestion_id``."""
    unit_id = conn.execute(select(suggestions.c.unit_id)
                           .where(suggestions.c.suggestion_id == suggestion_id)).scalar()
    if unit_id is None:
        raise NotFound("建议「%s」不存在" % suggestion_id, {"suggestion_id": ["没有这条建议"]})
    return unit_id


def list_suggestions(conn, unit_id: str, year: int | None, status: str | None) -> list[dict]:
    units = _subtree_by_id(conn, unit_id)
    q = select(suggestions).where(suggestions.c.unit_id.in_(list(units)))
    if year:
        q = q.where(suggestions.c.year == year)
    if status:
        q = q.where(suggestions.c.status == status)
    rows = conn.execute(q.order_by(suggestions.c.submitted_on.desc(),
                                   suggestions.c.suggestion_id)).mappings().all()
    return [dict(r, unit_name=units[r["unit_id"]]["name"]) for r in rows]


def get_suggestion(conn, suggestion_id: str) -> dict | None:
    row = conn.execute(select(suggestions, unit_directory.c.name.label("unit_name")).select_from(
        suggestions.outerjoin(unit_directory, unit_directory.c.unit_id == suggestions.c.unit_id))
        .where(suggestions.c.suggestion_id == suggestion_id)).mappings().first()
    return dict(row) if row else None


def suggestion_summary(conn, unit_id: str, year: int) -> dict:
    """Per unit of the subtree: submitted, accepted (受理 or later), answered, adopted."""
    units = _subtree_by_id(conn, unit_id)
    rows = conn.execute(select(suggestions.c.unit_id, suggestions.c.status, suggestions.c.outcome)
                        .where(suggestions.c.unit_id.in_(list(units)),
                               suggestions.c.year == year)).all()
    per = {u: {"unit_id": u, "name": units[u]["name"], "submitted": 0, "accepted": 0,
               "answered": 0, "adopted": 0} for u in units}
    for unit, status, outcome in rows:
        c = per[unit]
        c["submitted"] += 1
        if status != "submitted":
            c["accepted"] += 1
        if status == "answered":
            c["answered"] += 1
            if outcome in ADOPTED_OUTCOMES:
                c["adopted"] += 1
    out = [dict(c, adoption_rate=adoption_rate(c["adopted"], c["answered"]))
           for c in per.values() if c["submitted"]]
    out.sort(key=lambda c: (-c["submitted"], c["name"]))
    total = {k: sum(c[k] for c in out) for k in ("submitted", "accepted", "answered", "adopted")}
    total["adoption_rate"] = adoption_rate(total["adopted"], total["answered"])
    return {"unit_id": unit_id, "year": year, "units": out, "total": total}


# 典型案例通报
def require_bulletin_scope(conn, bulletin_id: str) -> str:
    """The root of the subtree a bulletin went to, or a 404 naming ``bulletin_id``."""
    unit_id = conn.execute(select(bulletins.c.scope_unit_id)
                           .where(bulletins.c.bulletin_id == bulletin_id)).scalar()
    if unit_id is None:
        raise NotFound("通报「%s」不存在" % bulletin_id, {"bulletin_id": ["没有这份通报"]})
    return unit_id


def list_bulletins(conn, unit_id: str, today) -> list[dict]:
    """The bulletins any unit of the subtree received, newest first, each with the subtree's
    recipients, how many studied it and how many are past the study deadline."""
    units = _subtree_by_id(conn, unit_id)
    rows = conn.execute(select(bulletin_receipts.c.bulletin_id, bulletin_receipts.c.studied_on)
                        .where(bulletin_receipts.c.unit_id.in_(list(units)))).all()
    counts: dict[str, dict] = {}
    for bulletin_id, studied_on in rows:
        c = counts.setdefault(bulletin_id, {"mine": 0, "studied": 0})
        c["mine"] += 1
        c["studied"] += 1 if studied_on else 0
    if not counts:
        return []
    out = []
    for b in conn.execute(select(bulletins).where(bulletins.c.bulletin_id.in_(list(counts)))
                          .order_by(bulletins.c.issued_on.desc(), bulletins.c.bulletin_id)).mappings():
        c = counts[b["bulletin_id"]]
        overdue = c["mine"] - c["studied"] if study_state(None, b["due_on"], today) == "overdue" else 0
        out.append(dict(b, recipients_here=c["mine"], studied=c["studied"], overdue=overdue,
                        rate=round(c["studied"] / c["mine"], 4)))
    return out


def bulletin_receipts_of(conn, bulletin_id: str, unit_id: str, today) -> dict | None:
    """One bulletin and the receipts of its recipients in the subtree of ``unit_id``: who has
    studied it (when, how many, what they drew from it) and who has not (overdue or pending)."""
    b = conn.execute(select(bulletins).where(bulletins.c.bulletin_id == bulletin_id)).mappings().first()
    if b is None:
        return None
    units = _subtree_by_id(conn, unit_id)
    rows = conn.execute(select(bulletin_receipts, unit_directory.c.name).select_from(
        bulletin_receipts.outerjoin(unit_directory, unit_directory.c.unit_id == bulletin_receipts.c.unit_id))
        .where(bulletin_receipts.c.bulletin_id == bulletin_id,
               bulletin_receipts.c.unit_id.in_(list(units)))
        .order_by(bulletin_receipts.c.unit_id)).mappings().all()
    studied = [dict(r, state="studied") for r in rows if r["studied_on"]]
    waiting = [{"unit_id": r["unit_id"], "name": r["name"], "state": study_state(None, b["due_on"], today)}
               for r in rows if not r["studied_on"]]
    return {"bulletin": dict(b), "recipients": len(rows), "studied": studied, "not_studied": waiting,
            "rate": round(len(studied) / len(rows), 4) if rows else 0.0}


# -- what the commands and routines read ---------------------------------------------------------
def require_unit(conn, unit_id: str, field: str = "unit_id") -> dict:
    """The unit of the directory, or a 404 naming ``field``."""
    return require_tree_unit(conn, unit_directory, unit_id, field)


def require_units(conn, unit_ids, field: str) -> None:
    """Every unit named is in the directory, or a 404 listing those that are not."""
    missing = [u for u in unit_ids if unit_row(conn, u) is None]
    if missing:
        raise NotFound("未知的单位：%s" % ", ".join(missing), {field: ["没有这个单位：%s" % ", ".join(missing)]})


def root_of(conn, unit_id: str) -> str:
    """The root of the tree ``unit_id`` is in (itself, if the directory does not hold it)."""
    path = unit_path(conn, unit_id) or "/%s/" % unit_id
    return path.strip("/").split("/")[0]


def subtree_ids(conn, unit_id: str) -> list[str]:
    """The units of the subtree under ``unit_id``, itself and inactive ones included."""
    return [u["unit_id"] for u in subtree_of(conn, unit_directory, unit_id, True)]


def require_session(conn, session_id: str) -> dict:
    row = get_session(conn, session_id)
    if row is None:
        raise NotFound("活动「%s」不存在" % session_id, {"session_id": ["没有这个活动"]})
    return row


def session_unit(conn, session_id: str) -> str | None:
    return conn.execute(select(sessions.c.organiser_unit_id)
                        .where(sessions.c.session_id == session_id)).scalar()


def talk_unit(conn, talk_id: str) -> str | None:
    return conn.execute(select(talks.c.unit_id).where(talks.c.talk_id == talk_id)).scalar()


def talk_row(conn, talk_id: str) -> dict | None:
    row = conn.execute(select(talks).where(talks.c.talk_id == talk_id)).mappings().first()
    return dict(row) if row else None


def young_cadre_unit(conn, person_id: str) -> str | None:
    return conn.execute(select(young_cadres.c.unit_id).where(young_cadres.c.person_id == person_id)).scalar()


def member_unit(conn, person_id: str) -> str | None:
    return conn.execute(select(members.c.unit_id).where(members.c.person_id == person_id)).scalar()


def known_members(conn, person_ids) -> set[str]:
    return set(conn.execute(select(members.c.person_id).where(members.c.person_id.in_(list(person_ids))))
               .scalars())


def checkins_on(conn, day: str) -> int:
    return conn.execute(select(func.count()).select_from(checkins).where(checkins.c.day == day)).scalar()


def reminder_of(conn, day: str) -> dict | None:
    row = conn.execute(select(reminders).where(reminders.c.day == day)).mappings().first()
    return dict(row) if row else None


def reminder_last_used(conn) -> dict[str, str]:
    """Library item id -> the last day its text was a day's reminder."""
    return dict(conn.execute(select(reminders.c.item_id, func.max(reminders.c.day))
                             .where(reminders.c.item_id.isnot(None)).group_by(reminders.c.item_id)).all())


def last_shown(conn, unit_id: str) -> dict[str, str]:
    """Library item id -> the last week a unit showed it."""
    return dict(conn.execute(select(shown.c.item_id, shown.c.last_week).where(shown.c.unit_id == unit_id)).all())


def rotated_units(conn, week: str) -> set[str]:
    return set(conn.execute(select(rotations.c.unit_id).where(rotations.c.week == week)).scalars())


def receipt_row(conn, notice_id: str, unit_id: str) -> dict | None:
    row = conn.execute(select(receipts).where(receipts.c.notice_id == notice_id,
                                              receipts.c.unit_id == unit_id)).mappings().first()
    return dict(row) if row else None


def notice_known(conn, notice_id: str) -> bool:
    return conn.execute(select(notices.c.notice_id).where(notices.c.notice_id == notice_id)).first() is not None


def list_notices(conn, status: str | None) -> list[dict]:
    q = select(notices)
    if status:
        q = q.where(notices.c.status == status)
    return [dict(r) for r in conn.execute(q.order_by(notices.c.send_on, notices.c.notice_id)).mappings()]


def due_notices(conn, today: date) -> list[str]:
    """Scheduled notices whose send date has come, in the order they are sent."""
    return conn.execute(select(notices.c.notice_id).where(
        notices.c.status == "scheduled", notices.c.send_on <= today.isoformat())
        .order_by(notices.c.send_on, notices.c.notice_id)).scalars().all()


def talks_past_due(conn, today: date, rungs: int) -> list[tuple[str, str]]:
    """(talk id, unit id) of the talks not held by their due date with a rung of the
    ladder (``rungs`` of them) still to climb."""
    return conn.execute(select(talks.c.talk_id, talks.c.unit_id).where(
        talks.c.status == "scheduled", talks.c.due_on < today.isoformat(),
        talks.c.escalation_step < rungs).order_by(talks.c.talk_id)).all()


def young_cadres_past_due(conn, today: date) -> list[str]:
    return conn.execute(select(young_cadres.c.person_id).where(
        young_cadres.c.overdue.is_(False), young_cadres.c.next_due_on < today.isoformat())
        .order_by(young_cadres.c.person_id)).scalars().all()


def inbox_units(conn, item_ids) -> dict[str, str]:
    """Inbox item id -> its unit, for the items that exist."""
    return dict(conn.execute(select(inbox.c.item_id, inbox.c.unit_id)
                             .where(inbox.c.item_id.in_(list(item_ids)))).all())


def indicator_units(conn, period: str) -> set[str]:
    """The organisations whose figures for ``period`` are published."""
    return set(conn.execute(select(indicators.c.unit_id).where(indicators.c.period == period)).scalars())


def published_periods(conn, oldest: str, newest: str) -> dict[str, bool]:
    """Month -> whether any of its published figures is still provisional."""
    return {period: bool(p) for period, p in conn.execute(
        select(indicators.c.period, func.max(indicators.c.provisional.cast(Integer)))
        .where(indicators.c.period >= oldest, indicators.c.period <= newest)
        .group_by(indicators.c.period)).all()}


def entry_positions(conn, oldest: str) -> dict[str, int]:
    """Month -> the log position of the latest entry counting for it."""
    return dict(conn.execute(select(period_entries.c.period, period_entries.c.last_position)
                             .where(period_entries.c.period >= oldest)).all())


def published_indicators(conn, period: str) -> dict:
    rows = conn.execute(select(indicators).where(indicators.c.period == period)
                        .order_by(indicators.c.unit_id)).mappings()
    district = conn.execute(select(district_indicators)
                            .where(district_indicators.c.period == period)).mappings().first()
    return {"period": period, "units": [dict(r) for r in rows],
            "district": dict(district) if district else None}


def case_on_offer(conn, case_ref: str) -> dict | None:
    """A case of the library on offer (案例联编, the city's): its title and summary."""
    row = conn.execute(select(external_refs.c.title, external_refs.c.summary).where(
        external_refs.c.ref_kind == "case", external_refs.c.ref_key == case_ref)).mappings().first()
    return dict(row) if row else None


def bulletin_cases(conn, limit: int = 200) -> list[dict]:
    """The typical cases on offer, newest first, for a bulletin's case picker."""
    rows = conn.execute(select(external_refs.c.ref_key, external_refs.c.title, external_refs.c.origin_node)
                        .where(external_refs.c.ref_kind == "case")
                        .order_by(external_refs.c.received_at.desc()).limit(limit)).mappings()
    return [{"case_ref": r["ref_key"], "title": r["title"], "origin_node": r["origin_node"]} for r in rows]


def event_recorded(conn, event_id: str) -> bool:
    """Whether the event is in this node's log (an event of this service's own)."""
    return conn.execute(select(store_events.c.position).where(store_events.c.event_id == event_id)).first() \
        is not None


# -- the port the commands decide with ---------------------------------------------------------
class EducationReadPort:
    """``uow.education``: the education read models as a command's handler needs them,
    inside its unit of work (so it reads what the command has just written, under the
    same lock). A phased command's read step builds one on its read connection."""

    def __init__(self, conn):
        self.conn = conn

    # the unit directory
    def unit(self, unit_id: str, field: str = "unit_id") -> dict:
        """The unit's row (its ``path``, ``parent_id``...), or 404 naming ``field``."""
        return require_unit(self.conn, unit_id, field)

    def units(self, unit_ids, field: str) -> None:
        """Every unit named exists, or 404."""
        require_units(self.conn, unit_ids, field)

    def unit_or_none(self, unit_id: str) -> dict | None:
        return unit_row(self.conn, unit_id)

    def root_of(self, unit_id: str) -> str:
        return root_of(self.conn, unit_id)

    def subtree_ids(self, unit_id: str) -> list[str]:
        return subtree_ids(self.conn, unit_id)

    def active_subtree_ids(self, unit_id: str) -> list[str]:
        return [u["unit_id"] for u in subtree_of(self.conn, unit_directory, unit_id)]

    def party_orgs(self, levels) -> list[str]:
        """The node's party organisations (their unit ids)."""
        return [u["unit_id"] for u in party_orgs(self.conn, None, levels)]

    # sessions, members, library
    def session(self, session_id: str) -> dict:
        """The session's row, or 404."""
        return require_session(self.conn, session_id)

    def known_members(self, person_ids) -> set[str]:
        return known_members(self.conn, person_ids)

    def member_unit(self, person_id: str) -> str | None:
        return member_unit(self.conn, person_id)

    def external_ref(self, ref_kind: str, key: str) -> dict | None:
        return external_ref(self.conn, ref_kind, key)

    def shared_session(self, slug: str) -> dict | None:
        return shared_session(self.conn, slug)

    def attended_units(self, key: str) -> list[str]:
        return attended_units(self.conn, key)

    def event_recorded(self, event_id: str) -> bool:
        return event_recorded(self.conn, event_id)

    def checkins_on(self, day: str) -> int:
        return checkins_on(self.conn, day)

    # 日打卡: the morning burst's one read and one write (``record_check_ins``)
    def checkin_states(self, person_ids, day: str) -> dict:
        """Every member's check-in state for ``day`` in one read (``checkin_states``)."""
        return checkin_states(self.conn, person_ids, day)

    def bulk_checkins(self):
        """A block within which the check-ins saved reach the read model as one multi-row
        write per table (``projections.bulk_checkins``): a batch's save, few round trips."""
        return bulk_checkins(self.conn)

    def library(self) -> list[dict]:
        return library(self.conn)

    def last_shown(self, unit_id: str) -> dict[str, str]:
        return last_shown(self.conn, unit_id)

    def unit_profile(self, unit_id: str) -> dict:
        return unit_profile(self.conn, unit_id)

    # notices, talks, inbox
    def receipt(self, notice_id: str, unit_id: str) -> dict | None:
        return receipt_row(self.conn, notice_id, unit_id)

    def talk(self, talk_id: str) -> dict | None:
        return talk_row(self.conn, talk_id)

    def inbox_units(self, item_ids) -> dict[str, str]:
        return inbox_units(self.conn, item_ids)

    # the practices
    def case_on_offer(self, case_ref: str) -> dict | None:
        return case_on_offer(self.conn, case_ref)

    # the routines' read steps (phased commands: ``EducationReadPort(conn)`` on the read
    # connection): what is due, decided on below in short units of work
    def reminder_last_used(self) -> dict[str, str]:
        return reminder_last_used(self.conn)

    def rotated_units(self, week: str) -> set[str]:
        return rotated_units(self.conn, week)

    def due_notices(self, today: date) -> list[str]:
        return due_notices(self.conn, today)

    def talks_past_due(self, today: date, rungs: int) -> list[tuple[str, str]]:
        return talks_past_due(self.conn, today, rungs)

    def young_cadres_past_due(self, today: date) -> list[str]:
        return young_cadres_past_due(self.conn, today)

    def indicator_units(self, period: str) -> set[str]:
        return indicator_units(self.conn, period)

    def unit_indicators(self, unit_id: str, period: str, today: date) -> dict:
        return unit_indicators(self.conn, unit_id, period, today)

    def district_figures(self, period: str, levels, today: date):
        return district_figures(self.conn, period, levels, today)

    def published_periods(self, oldest: str, newest: str) -> dict[str, bool]:
        return published_periods(self.conn, oldest, newest)

    def entry_positions(self, oldest: str) -> dict[str, int]:
        return entry_positions(self.conn, oldest)
