"""The supervision service without nameko: its application layer on a real database, a
controllable clock, actors, and the units service's events as the broker delivers them."""
from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from services.supervision import application as appl
from services.supervision.application import app
from services.supervision.projections import metadata as sv_metadata
from services.supervision.settings import Settings
from shared.auth import Actor
from shared.events import StoredEvent
from shared.store import metadata as store_metadata
from shared.unittree import mirror_metadata, record_unit_event
from tests.harness import NODE, AppNode, Clock, Client as _Client

__all__ = ["NODE", "ADMIN", "INSPECTOR", "INSPECTOR_2", "VIEWER", "EVIDENCE", "Clock", "Client",
           "Node", "unit_admin", "units_event"]

ADMIN = Actor("admin", ("node-admin",), None, NODE)
INSPECTOR = Actor("insp-1", ("inspector",), None, NODE)
INSPECTOR_2 = Actor("insp-2", ("inspector",), None, NODE)
VIEWER = Actor("viewer-1", ("viewer",), None, NODE)

EVIDENCE = [{"path": "ab/" + "ab" * 32 + ".pdf", "sha256": "ab" * 32, "size_bytes": 1024,
             "description": "整改报告"}]


def unit_admin(scope: str) -> Actor:
    return Actor("ua-%s" % scope, ("unit-admin",), scope, NODE)


def units_event(event_type: str, payload: dict, version: int = 1) -> StoredEvent:
    """A units-service event as the broker would deliver it."""
    return StoredEvent(position=version, event_id=str(uuid.uuid4()),
                       stream_id="%s:%s" % (event_type.split(".")[0], payload["unit_id"]),
                       stream_type=event_type.split(".")[0], version=version,
                       event_type=event_type, schema_version=1, payload=payload,
                       metadata={"node": NODE}, recorded_at_us=0)


class Client(_Client):
    """The running supervision service over RPC or HTTP (tests.harness.Client)."""

    def __init__(self, transport: str, node_config: dict, users: dict):
        super().__init__(transport, node_config, users, "supervision")


class Node(AppNode):
    """One supervision node's application layer on a real database."""

    service = "supervision"

    def __init__(self, url: str, clock: Clock, config: dict | None = None):
        self.settings = Settings.from_config(config or {})
        super().__init__(app, url, clock, ADMIN, self.settings)

    # -- what is stored -------------------------------------------------------------------------
    def state(self) -> dict:
        """Every row of the log and of every read model: "nothing written" is equality."""
        out = {}
        with self.engine.connect() as c:
            for md in (store_metadata, mirror_metadata, sv_metadata):
                for table in md.sorted_tables:
                    if table.name in ("checkpoints",):
                        continue
                    rows = c.execute(select(table)).mappings().all()
                    out[table.name] = sorted(json.dumps(dict(r), sort_keys=True, default=str)
                                             for r in rows)
        return out

    # -- the unit tree (as the mirror and the reaction record it) -----------------------------------
    def deliver(self, event: StoredEvent, *handlers) -> None:
        with self.rt.unit_of_work(ADMIN, causation_id=event.event_id) as uow:
            for handler in handlers:
                handler(uow, event)

    def add_unit(self, unit_id: str, parent: str | None = "district", kind: str = "government_dept",
                 level: str = "unit", name: str | None = None) -> None:
        payload = {"unit_id": unit_id, "name": name or "单位%s" % unit_id, "kind": kind,
                   "level": "district" if parent is None else level, "parent_id": parent}
        ev = units_event("Unit.Registered", payload)
        self.deliver(ev, record_unit_event, appl.on_unit_registered)

    def district(self, units=("u1", "u2")) -> None:
        """A district root with department-level units, each with one section."""
        self.add_unit("district", None, "district_authority", name="某区直机关工委")
        for u in units:
            self.add_unit(u)
            self.add_unit("%s-s1" % u, u, "section", "section")

    def publish_micro_power(self, unit_id: str, post: str, version: int = 1) -> None:
        ev = units_event("MicroPowerList.Published", {
            "list_id": "%s/%s" % (unit_id, post), "unit_id": unit_id, "post": post,
            "content": {"duties": ["受理"], "power_boundary": "…", "steps": []},
            "published_version": version, "published_on": self.clock.today})
        self.deliver(ev, appl.on_micro_power_published)

    # -- common set-ups ---------------------------------------------------------------------------
    def finding(self, unit_id: str = "u1", deadline: str = "2024-03-31", actor=INSPECTOR, **kw):
        data = {"unit_id": unit_id, "source": "audit", "description": "公务接待超标准",
                "responsible_role": "unit_head", "deadline": deadline, "source_ref": "审计2024-7"}
        data.update(kw)
        return self.run("record_finding", data, actor)
