"""The unit tree as a read model, and its mirror in every other service.

The units service owns the tree (``Unit.*`` events). Every other service needs it too -
for unit-admin scope checks, per-subtree figures, reacting to new units - and must not
call the units service on each request. So each keeps a mirror: an idempotent consumer
of ``units`` events records them as local ``UnitMirror.*`` events (same payloads), and
the same projection code builds the same table from either stream. Being local events,
the mirror is rebuilt from the local log like any other read model.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, bindparam, select

from shared.aggregate import Aggregate, IdStr, NonEmptyStr, OneOf
from shared.db import JSONText
from shared.errors import NotFound
from shared.fields import cursor_after
from shared.events import StoredEvent
from shared.projections import Projection, startswith

UNIT_EVENTS = ("Registered", "Renamed", "Moved", "DemonstrationSiteSet", "PilotFlagsSet",
               "Deactivated")


def unit_tree_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name, metadata,
        Column("unit_id", String(100), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("kind", String(50), nullable=False),
        Column("level", String(20), nullable=False),
        Column("parent_id", String(100)),
        # materialised path "/root/.../unit/": a subtree is a prefix match
        Column("path", String(2000), nullable=False, index=True),
        Column("depth", Integer, nullable=False),
        Column("demonstration_site", Boolean, nullable=False, default=False),
        Column("pilot_flags", JSONText, nullable=False),  # a list of flag codes
        Column("active", Boolean, nullable=False, default=True),
        Column("version", Integer, nullable=False),
    )


class UnitTreeProjection(Projection):
    """Builds a unit-tree table from ``<stream>.Registered`` ... events."""

    def __init__(self, table: Table, stream: str, name: str):
        self.table = table
        self.tables = (table,)
        self.name = name
        self._handlers = {"%s.%s" % (stream, e): "_" + e for e in UNIT_EVENTS}

    def _Registered(self, w, e: StoredEvent):
        p, version = e.payload, e.version
        t = self.table
        parent = w.get(t, unit_id=p["parent_id"]) if p["parent_id"] else None
        base = parent["path"] if parent else "/"
        w.insert(t, unit_id=p["unit_id"], name=p["name"], kind=p["kind"], level=p["level"],
                 parent_id=p["parent_id"], path="%s%s/" % (base, p["unit_id"]),
                 depth=(parent["depth"] + 1) if parent else 0, demonstration_site=False,
                 pilot_flags=[], active=True, version=version)

    def _Renamed(self, w, e: StoredEvent):
        p, version = e.payload, e.version
        w.update(self.table, {"unit_id": p["unit_id"]}, name=p["name"], version=version)

    def _Moved(self, w, e: StoredEvent):
        p, version = e.payload, e.version
        t = self.table
        unit = w.get(t, unit_id=p["unit_id"])
        parent = w.get(t, unit_id=p["parent_id"])
        old, new = unit["path"], "%s%s/" % (parent["path"], unit["unit_id"])
        shift = parent["depth"] + 1 - unit["depth"]
        for row in w.find_prefix(t, "path", old):
            w.update(t, {"unit_id": row["unit_id"]}, path=new + row["path"][len(old):],
                     depth=row["depth"] + shift)
        w.update(t, {"unit_id": unit["unit_id"]}, parent_id=parent["unit_id"], version=version)

    def _DemonstrationSiteSet(self, w, e: StoredEvent):
        p, version = e.payload, e.version
        w.update(self.table, {"unit_id": p["unit_id"]},
                 demonstration_site=p["demonstration_site"], version=version)

    def _PilotFlagsSet(self, w, e: StoredEvent):
        p, version = e.payload, e.version
        w.update(self.table, {"unit_id": p["unit_id"]},
                 pilot_flags=list(p["pilot_flags"]), version=version)

    def _Deactivated(self, w, e: StoredEvent):
        p, version = e.payload, e.version
        w.update(self.table, {"unit_id": p["unit_id"]}, active=False, version=version)


# -- queries over either table ------------------------------------------------------------
def _unit(row) -> dict:
    return dict(row)


def path_of(conn, table: Table, unit_id: str) -> str | None:
    return conn.execute(select(table.c.path).where(table.c.unit_id == unit_id)).scalar()


@lru_cache(maxsize=None)
def _unit_by_id(table: Table):
    # built once per table: every command naming a unit asks, and building the SELECT
    # per call cost more than SQLite took to answer it (the scale bench's profile)
    return select(table).where(table.c.unit_id == bindparam("unit_id_"))


def unit_of(conn, table: Table, unit_id: str) -> dict | None:
    row = conn.execute(_unit_by_id(table), {"unit_id_": unit_id}).mappings().first()
    return _unit(row) if row else None


def require_unit(conn, table: Table, unit_id: str, field: str = "unit_id") -> dict:
    """The unit, or a 404 naming the input field that pointed at it."""
    row = unit_of(conn, table, unit_id)
    if row is None:
        raise NotFound("单位 %s 不存在" % unit_id, {field: ["没有这个单位"]})
    return row


def subtree_of(conn, table: Table, unit_id: str, include_inactive: bool = False,
               limit: int | None = None, after: str | None = None) -> list[dict]:
    """The units under ``unit_id`` (itself first) in path order; a page of ``limit``
    after the path ``after`` when given (keyset paging: no offset to skip through)."""
    path = path_of(conn, table, unit_id)
    if path is None:
        return []
    q = select(table).where(startswith(table.c.path, path))
    if not include_inactive:
        q = q.where(table.c.active.is_(True))
    if after is not None:
        q = q.where(table.c.path > after)
    if limit is not None:
        q = q.limit(limit)
    return [_unit(r) for r in conn.execute(q.order_by(table.c.path)).mappings()]


def subtree_page(conn, table: Table, unit_id: str, limit: int, after: str | None = None,
                 include_inactive: bool = False) -> tuple[list[dict], str | None]:
    """One page of ``subtree_of`` and the cursor of the next (None on the last page)."""
    rows = subtree_of(conn, table, unit_id, include_inactive, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (cursor_after(rows[-1]["path"]) if more else None)


# -- the mirror in other services ----------------------------------------------------------
class UnitMirror(Aggregate):
    """A local copy of one unit's history, recorded from the units service's events.

    Only the version matters to the aggregate (ordering, see ``record_unit_event``);
    what the events say is read by the unit-directory projection, so most of them
    change no aggregate state."""

    class Registered(Aggregate.Event):
        """Mirrors ``Unit.Registered``."""
        unit_id: IdStr
        name: NonEmptyStr
        # the codes of services.units.domain.UNIT_KINDS / UNIT_LEVELS (the kernel imports no
        # service; tests/unit/kernel/test_event_fields.py checks they are the same)
        kind: OneOf(("party_committee_dept", "government_dept", "subdistrict", "window_unit",
                     "law_enforcement", "grassroots_station", "section", "secondary_unit",
                     "city_authority", "district_authority"))
        level: OneOf(("city", "district", "unit", "section"))
        parent_id: str | None

        def apply(self, m):
            m.kind = self.kind

    class Renamed(Aggregate.Event):
        """Mirrors ``Unit.Renamed``."""
        unit_id: IdStr
        name: NonEmptyStr

    class Moved(Aggregate.Event):
        """Mirrors ``Unit.Moved``."""
        unit_id: IdStr
        parent_id: IdStr
        previous_parent_id: str | None

    class DemonstrationSiteSet(Aggregate.Event):
        """Mirrors ``Unit.DemonstrationSiteSet``."""
        unit_id: IdStr
        demonstration_site: bool

    class PilotFlagsSet(Aggregate.Event):
        """Mirrors ``Unit.PilotFlagsSet``."""
        unit_id: IdStr
        pilot_flags: Annotated[list, {"items": {"type": "string", "minLength": 1}}]

    class Deactivated(Aggregate.Event):
        """Mirrors ``Unit.Deactivated``."""
        unit_id: IdStr
        reason: NonEmptyStr


mirror_metadata = MetaData()
unit_directory = unit_tree_table(mirror_metadata, "unit_directory")


def unit_directory_projection() -> UnitTreeProjection:
    return UnitTreeProjection(unit_directory, "UnitMirror", "unit_directory")


def directory_path(conn, unit_id: str) -> str | None:
    """For ``Application(unit_path=...)`` in services that mirror the tree."""
    return path_of(conn, unit_directory, unit_id)


class MirrorBehind(Exception):
    """An event arrived before its predecessor: requeue it and try again shortly."""


def record_unit_event(uow, event: StoredEvent) -> None:
    """Record a units-service event as the matching ``UnitMirror`` event.

    Why the checks: nameko handles a queue's messages in concurrent workers, so
    ``Unit.Renamed`` (v2) can be handled before ``Unit.Registered`` (v1), and a
    department's ``Registered`` before its district's. The mirror keeps the source's
    version numbers; an event whose predecessor - or whose parent - is not mirrored yet
    raises ``MirrorBehind`` (the message is requeued), one already mirrored is skipped.
    Without the parent check the department would be mirrored as a root and drop out
    of every subtree query for good.
    """
    p = event.payload
    unit_id = p["unit_id"]
    current = uow.rt.store.stream_version(uow.conn, UnitMirror.stream_id_for(unit_id))
    if current >= event.version:
        return
    if current < event.version - 1:
        raise MirrorBehind("单位「%s」：本地为第 %d 版，收到第 %d 版" % (unit_id, current, event.version))
    if event.event_type in ("Unit.Registered", "Unit.Moved") and p.get("parent_id") \
            and directory_path(uow.conn, p["parent_id"]) is None:
        raise MirrorBehind("单位「%s」：上级单位「%s」尚未同步" % (unit_id, p["parent_id"]))
    kind = event.event_type.split(".", 1)[1]
    m = UnitMirror.resume(unit_id, current)
    m.trigger(getattr(UnitMirror, kind), **event.payload)
    uow.save(m)


UNIT_EVENT_TYPES = tuple("Unit.%s" % e for e in UNIT_EVENTS)  # what a mirror records
