"""Query helpers over the units read models: plain functions ``(conn, ...)``, and the read
port the commands decide with.

The queries answer the service's queries and the scope checks; ``UnitsReadPort`` is the
narrow view a command gets as ``uow.units`` (``app.read_port``): the unit, its path, what
is active below it, a person - the facts an aggregate's method takes as arguments - so a
handler loads, decides, saves and answers without naming a table. The practices' queries
(集中廉政承诺, the 纪检委员 roster, 模范科室评选) are here too, over their tables in
``projections.py``.
"""
from __future__ import annotations

import json

from sqlalchemy import and_, func, or_, select

from services.units.domain import PLEDGE_ROLES, discipline_duty, exemplary_ranking, needs_discipline_member
from services.units.projections import (
    documents, letters, micro_power, people, pledges, rounds, trainings, units,
)
from shared.errors import NotFound
from shared.fields import cursor_after
from shared.projections import startswith
from shared.store import events as store_events
from shared.unittree import path_of, require_unit as require_tree_unit, subtree_of, subtree_page, unit_of


# -- the unit tree -------------------------------------------------------------------------
def unit_path(conn, unit_id: str) -> str | None:
    return path_of(conn, units, unit_id)


def unit_row(conn, unit_id: str) -> dict | None:
    return unit_of(conn, units, unit_id)


def require_unit(conn, unit_id: str) -> dict:
    """The unit, or a 404 (``单位 … 不存在``, field ``unit_id``)."""
    return require_tree_unit(conn, units, unit_id)


def subtree(conn, unit_id: str, include_inactive: bool = False) -> list[dict]:
    return subtree_of(conn, units, unit_id, include_inactive)


def subtree_units_page(conn, unit_id: str, limit: int, after: str | None = None,
                       include_inactive: bool = False) -> dict:
    rows, cursor = subtree_page(conn, units, unit_id, limit, after, include_inactive)
    return {"units": rows, "next": cursor}


def root_units(conn) -> list[dict]:
    """The tops of the node's tree, by name."""
    q = select(units).where(units.c.parent_id.is_(None)).order_by(units.c.name)
    return [dict(r) for r in conn.execute(q).mappings()]


def root_ids(conn) -> list[str]:
    return [r for (r,) in conn.execute(select(units.c.unit_id).where(units.c.parent_id.is_(None)))]


def _prefix(path: str):
    return startswith(units.c.path, path)


def coverage(conn, unit_id: str, period: str, limit: int = 500, after: str | None = None) -> dict:
    """责任书 coverage (全覆盖) of a subtree: every active unit below the root, down to
    基层站所, should hold a signed letter for the period. The figures cover the whole
    subtree (counted by the database); ``unsigned`` is one page of ``limit`` units in
    path order after ``after``, with the cursor of the next page in ``next``."""
    path = unit_path(conn, unit_id)
    joined = units.outerjoin(letters, and_(letters.c.target_unit_id == units.c.unit_id,
                                           letters.c.period == period))
    below = (_prefix(path), units.c.unit_id != unit_id, units.c.active.is_(True))
    by_kind: dict[str, dict] = {}
    for kind, status, n in conn.execute(
            select(units.c.kind, letters.c.status, func.count()).select_from(joined)
            .where(*below).group_by(units.c.kind, letters.c.status)):
        k = by_kind.setdefault(kind, {"total": 0, "signed": 0})
        k["total"] += n
        k["signed"] += n if status == "signed" else 0
    total = sum(k["total"] for k in by_kind.values())
    signed = sum(k["signed"] for k in by_kind.values())
    q = (select(units.c.unit_id, units.c.name, units.c.kind, units.c.level, units.c.path,
                letters.c.status).select_from(joined)
         .where(*below, or_(letters.c.status.is_(None), letters.c.status != "signed")))
    if after is not None:
        q = q.where(units.c.path > after)
    rows = conn.execute(q.order_by(units.c.path).limit(limit + 1)).mappings().all()
    unsigned = [{"unit_id": r["unit_id"], "name": r["name"], "kind": r["kind"], "level": r["level"],
                 "letter": r["status"] or "none"} for r in rows[:limit]]
    return {"unit_id": unit_id, "period": period, "total": total, "signed": signed,
            "coverage": round(signed / total, 4) if total else 1.0,
            "by_kind": dict(sorted(by_kind.items())), "unsigned": unsigned,
            "next": cursor_after(rows[limit - 1]["path"]) if len(rows) > limit else None}


# -- people ---------------------------------------------------------------------------------
def person_row(conn, person_id: str) -> dict | None:
    row = conn.execute(select(people).where(people.c.person_id == person_id)).mappings().first()
    return dict(row) if row is not None else None


def require_person(conn, person_id: str) -> dict:
    """The register's row, or a 404 naming the ``person_id`` field."""
    row = person_row(conn, person_id)
    if row is None:
        raise NotFound("人员「%s」不存在" % person_id, {"person_id": ["没有这个人"]})
    return row


def person_unit(conn, person_id: str) -> str | None:
    return conn.execute(select(people.c.unit_id).where(people.c.person_id == person_id)).scalar()


def people_of(conn, unit_id: str) -> list[dict]:
    rows = conn.execute(select(people).where(people.c.unit_id == unit_id).order_by(people.c.person_id))
    return [dict(r) for r in rows.mappings()]


# -- responsibility documents and letters ---------------------------------------------------------
def document_row(conn, doc_id: str) -> dict | None:
    row = conn.execute(select(documents).where(documents.c.doc_id == doc_id)).mappings().first()
    return dict(row) if row is not None else None


def document_unit(conn, doc_id: str) -> str | None:
    return conn.execute(select(documents.c.unit_id).where(documents.c.doc_id == doc_id)).scalar()


def documents_of(conn, unit_id: str, kind: str | None = None) -> list[dict]:
    q = select(documents).where(documents.c.unit_id == unit_id)
    if kind:
        q = q.where(documents.c.kind == kind)
    return [dict(r) for r in conn.execute(q.order_by(documents.c.doc_id)).mappings()]


def document_versions(conn, doc_id: str) -> list[dict]:
    """Every version of a document, oldest first, from its own events in the log."""
    rows = conn.execute(select(store_events.c.version, store_events.c.payload,
                               store_events.c.recorded_at_us)
                        .where(store_events.c.stream_id == "ResponsibilityDocument:%s" % doc_id)
                        .order_by(store_events.c.version)).all()
    out = []
    for _version, payload, at_us in rows:
        p = json.loads(payload)  # the log's own payload column (not a read model's)
        if "items" in p and "revision" in p:
            out.append({"revision": p["revision"], "title": p["title"], "items": p["items"],
                        "note": p.get("note"), "recorded_at_us": at_us})
    return out


def letter_issuer(conn, letter_id: str) -> str | None:
    return conn.execute(select(letters.c.issuer_unit_id).where(letters.c.letter_id == letter_id)).scalar()


# -- 微权力清单 ---------------------------------------------------------------------------------
def micro_power_row(conn, list_id: str) -> dict | None:
    row = conn.execute(select(micro_power).where(micro_power.c.list_id == list_id)).mappings().first()
    return dict(row) if row is not None else None


def published_micro_power(conn, unit_id: str) -> list[dict]:
    """What a unit has published, by post (drafts never)."""
    rows = conn.execute(select(micro_power).where(micro_power.c.unit_id == unit_id,
                                                  micro_power.c.published.isnot(None))
                        .order_by(micro_power.c.post)).mappings()
    return [{"post": r["post"], "version": r["published_version"], "published_on": r["published_on"],
             **r["published"]} for r in rows]


# -- 集中廉政承诺 -------------------------------------------------------------------------------
def _person_names(conn, person_ids) -> dict[str, str]:
    rows = conn.execute(select(people.c.person_id, people.c.name)
                        .where(people.c.person_id.in_(list(person_ids)))).all()
    return dict(rows)


def list_pledges(conn, unit_id: str, year: int) -> list[dict]:
    tree = {u["unit_id"]: u for u in subtree(conn, unit_id, include_inactive=True)}
    rows = conn.execute(select(pledges).where(pledges.c.unit_id.in_(list(tree)),
                                              pledges.c.year == year)
                        .order_by(pledges.c.pledged_on, pledges.c.pledge_id)).mappings().all()
    names = _person_names(conn, {r["person_id"] for r in rows})
    return [dict(r, unit_name=tree[r["unit_id"]]["name"], name=names.get(r["person_id"]))
            for r in rows]


def require_pledge_unit(conn, pledge_id: str) -> str:
    """The unit of a pledge, or a 404 naming ``pledge_id``."""
    unit_id = conn.execute(select(pledges.c.unit_id).where(pledges.c.pledge_id == pledge_id)).scalar()
    if unit_id is None:
        raise NotFound("没有这份承诺", {"pledge_id": ["不存在"]})
    return unit_id


def get_pledge(conn, pledge_id: str) -> dict | None:
    row = conn.execute(select(pledges).where(pledges.c.pledge_id == pledge_id)).mappings().first()
    if row is None:
        return None
    return dict(row, name=_person_names(conn, [row["person_id"]]).get(row["person_id"]))


def pledge_coverage(conn, unit_id: str, year: int) -> dict:
    """Per active unit of the subtree: its party secretaries and 纪检委员 (a person holding
    both counts once per role), who pledged in ``year`` and who has not; units with no
    such person are listed apart (nobody to pledge). Coverage = pledged / holders."""
    tree = subtree(conn, unit_id)  # active units only
    ids = [u["unit_id"] for u in tree]
    holders = conn.execute(select(people.c.person_id, people.c.name, people.c.unit_id, people.c.roles)
                           .where(people.c.unit_id.in_(ids))).mappings().all()
    made = {(r["person_id"], r["role"]) for r in conn.execute(
        select(pledges.c.person_id, pledges.c.role).where(pledges.c.unit_id.in_(ids),
                                                          pledges.c.year == year)).mappings()}
    per = {u["unit_id"]: {"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"],
                          "pledged": [], "missing": []} for u in tree}
    for h in holders:
        for role in PLEDGE_ROLES:
            if role in (h["roles"] or ()):
                entry = {"person_id": h["person_id"], "name": h["name"], "role": role}
                per[h["unit_id"]]["pledged" if (h["person_id"], role) in made else "missing"].append(entry)
    rows, without = [], []
    for u in per.values():
        total = len(u["pledged"]) + len(u["missing"])
        if not total:
            without.append({"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"]})
            continue
        rows.append(dict(u, holders=total, coverage=round(len(u["pledged"]) / total, 4),
                         complete=not u["missing"]))
    holders_total = sum(r["holders"] for r in rows)
    pledged_total = sum(len(r["pledged"]) for r in rows)
    return {"unit_id": unit_id, "year": year, "units": rows, "without_holders": without,
            "holders": holders_total, "pledged": pledged_total,
            "coverage": round(pledged_total / holders_total, 4) if holders_total else None,
            "units_complete": sum(1 for r in rows if r["complete"])}


# -- 纪检委员 roster (选优配强) -------------------------------------------------------------------
def discipline_roster(conn, unit_id: str, year: int) -> dict:
    """Per active unit of the subtree (root included): its 纪检委员 with 兼职/专职, every
    training (newest first) and the year's trainings and hours; the units that should have
    a 纪检委员 (``needs_discipline_member``) and have none are listed in ``without``."""
    tree = subtree(conn, unit_id)  # active units only, in path order
    ids = [u["unit_id"] for u in tree]
    members = [dict(r) for r in conn.execute(
        select(people.c.person_id, people.c.name, people.c.unit_id, people.c.post, people.c.roles,
               people.c.part_time_roles).where(people.c.unit_id.in_(ids))
        .order_by(people.c.name, people.c.person_id)).mappings()
        if "discipline_member" in (r["roles"] or ())]
    done: dict[str, list] = {}
    for t in conn.execute(select(trainings).where(trainings.c.person_id.in_([m["person_id"] for m in members]))
                          .order_by(trainings.c.trained_on.desc(), trainings.c.course)).mappings():
        done.setdefault(t["person_id"], []).append(
            {k: t[k] for k in ("training_id", "course", "trained_on", "hours", "organiser")})
    per = {u["unit_id"]: [] for u in tree}
    for m in members:
        records = done.get(m["person_id"], [])
        this_year = [t for t in records if t["trained_on"].startswith("%04d-" % year)]
        per[m["unit_id"]].append({
            "person_id": m["person_id"], "name": m["name"], "post": m["post"],
            "duty": discipline_duty(m["part_time_roles"]), "trainings": records,
            "trainings_in_year": len(this_year), "hours_in_year": round(sum(t["hours"] for t in this_year), 1),
            "last_trained_on": records[0]["trained_on"] if records else None})
    rows = [{"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"], "members": per[u["unit_id"]]}
            for u in tree if per[u["unit_id"]]]
    without = [{"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"]}
               for u in tree if not per[u["unit_id"]] and needs_discipline_member(u)]
    flat = [m for r in rows for m in r["members"]]
    return {"unit_id": unit_id, "year": year, "units": rows, "without": without,
            "members": len(flat), "part_time": sum(1 for m in flat if m["duty"] == "part_time"),
            "full_time": sum(1 for m in flat if m["duty"] == "full_time"),
            "trained_in_year": sum(1 for m in flat if m["trainings_in_year"]),
            "hours_in_year": round(sum(m["hours_in_year"] for m in flat), 1)}


# -- 模范科室评选 -------------------------------------------------------------------------------
def _unit_names(conn, ids) -> dict[str, str]:
    return dict(conn.execute(select(units.c.unit_id, units.c.name).where(units.c.unit_id.in_(list(ids)))).all())


def require_round_unit(conn, round_id: str) -> str:
    """The organising unit of a round, or a 404 naming ``round_id``."""
    unit_id = conn.execute(select(rounds.c.unit_id).where(rounds.c.round_id == round_id)).scalar()
    if unit_id is None:
        raise NotFound("没有这一轮评选", {"round_id": ["不存在"]})
    return unit_id


def exemplary_rounds(conn, unit_id: str) -> list[dict]:
    """The rounds organised in the subtree, newest year first."""
    ids = [u["unit_id"] for u in subtree(conn, unit_id, include_inactive=True)]
    rows = conn.execute(select(rounds).where(rounds.c.unit_id.in_(ids))
                        .order_by(rounds.c.year.desc(), rounds.c.round_id)).mappings().all()
    names = _unit_names(conn, {r["unit_id"] for r in rows})
    return [{k: r[k] for k in ("round_id", "unit_id", "year", "title", "exemplars", "status")}
            | {"unit_name": names.get(r["unit_id"]), "nominees": len(r["nominees"]),
               "scores": len(r["scores"])} for r in rows]


def exemplary_round(conn, round_id: str) -> dict | None:
    """The round, its nominees by name, every score, the pairs still to score (each nominee
    scores every other) and the standing: live while open, the recorded result once closed."""
    r = conn.execute(select(rounds).where(rounds.c.round_id == round_id)).mappings().first()
    if r is None:
        return None
    nominees = list(r["nominees"])
    names = _unit_names(conn, {r["unit_id"], *nominees})
    done = {(s["scorer_unit_id"], s["nominee_unit_id"]) for s in r["scores"]}
    pending = [{"scorer_unit_id": a, "scorer_name": names.get(a), "nominee_unit_id": b, "nominee_name": names.get(b)}
               for a in nominees for b in nominees if a != b and (a, b) not in done]
    ranking = r["ranking"] if r["status"] == "closed" else exemplary_ranking(nominees, r["scores"])
    selected = set(r["selected"] or ())
    return {k: r[k] for k in ("round_id", "unit_id", "year", "title", "exemplars", "status")} | {
        "unit_name": names.get(r["unit_id"]),
        "nominees": [{"unit_id": n, "name": names.get(n)} for n in nominees],
        "scores": [s | {"scorer_name": names.get(s["scorer_unit_id"]), "nominee_name": names.get(s["nominee_unit_id"])}
                   for s in r["scores"]],
        "pending": pending,
        "ranking": [x | {"name": names.get(x["unit_id"]), "selected": x["unit_id"] in selected} for x in ranking],
        "selected": [{"unit_id": u, "name": names.get(u)} for u in (r["selected"] or ())]}


# -- the port the commands decide with ---------------------------------------------------------
class UnitsReadPort:
    """``uow.units``: the units read models as a command's handler needs them, inside its
    unit of work (so it reads what the command has just written, under the same lock)."""

    def __init__(self, conn):
        self.conn = conn

    def require(self, unit_id: str) -> dict:
        """The unit's row (its ``active``, ``path``, ``kind``...), or 404."""
        return require_unit(self.conn, unit_id)

    def unit(self, unit_id: str) -> dict | None:
        return unit_row(self.conn, unit_id)

    def path(self, unit_id: str) -> str | None:
        return unit_path(self.conn, unit_id)

    def root_of(self, unit_id: str) -> str | None:
        """The root of the tree ``unit_id`` is in (None: no such unit)."""
        path = self.path(unit_id)
        return path.strip("/").split("/")[0] if path is not None else None

    def roots(self) -> list[str]:
        return root_ids(self.conn)

    def active_below(self, unit_id: str) -> list[dict]:
        """The active units of the subtree under ``unit_id``, itself left out."""
        return [u for u in subtree(self.conn, unit_id) if u["unit_id"] != unit_id]

    def coverage(self, unit_id: str, period: str) -> dict:
        """The 责任书 coverage figures of the subtree (no page of units)."""
        return coverage(self.conn, unit_id, period, limit=1)

    def person(self, person_id: str) -> dict:
        """The register's row (``unit_id``, ``roles``, ``name``), or 404."""
        return require_person(self.conn, person_id)
