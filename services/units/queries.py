"""Query helpers over the units read models: plain functions ``(conn, ...)``, and the read
port the commands decide with.

The queries answer the service's queries and the scope checks; ``UnitsReadPort`` is the
narrow view a command gets as ``uow.units`` (``app.read_port``): the unit, its path, what
is active below it, a person - the facts an aggregate's method takes as arguments - so a
handler loads, decides, saves and answers without naming a table. The practices' read
sides (``pledges.py``, ``roster.py``, ``exemplary.py``) keep their own tables and queries.
"""
from __future__ import annotations

import json

from sqlalchemy import and_, func, or_, select

from services.units.projections import documents, letters, micro_power, people, units
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
