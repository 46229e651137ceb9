"""The education service without nameko: its application layer on a real database, a
settable clock, and the events of the services it listens to, recorded the way its
consumers record them."""
from __future__ import annotations

import itertools
import uuid
from datetime import datetime

from shared.auth import INSPECTOR, NODE_ADMIN, UNIT_ADMIN, VIEWER, Actor
from shared.events import StoredEvent
from shared.projections import prepare
from shared.unittree import record_unit_event
from tests.harness import NODE, AppNode, Clock, utc

from services.education.application import app, record_person_event
from services.education.settings import EducationSettings

__all__ = ["NODE", "ADMIN", "SYSTEM", "Clock", "Node", "unit_admin", "viewer", "inspector", "utc",
           "source_event"]

ADMIN = Actor("admin", (NODE_ADMIN,), None, NODE)
SYSTEM = Actor("system:education", (NODE_ADMIN,), None, NODE)


def unit_admin(unit_id: str, user_id: str | None = None) -> Actor:
    return Actor(user_id or "ua-%s" % unit_id, (UNIT_ADMIN,), unit_id, NODE)


def viewer(user_id: str) -> Actor:
    return Actor(user_id, (VIEWER,), None, NODE)


def inspector(user_id: str = "jjwy") -> Actor:
    return Actor(user_id, (INSPECTOR,), None, NODE)


_positions = itertools.count(1)


def source_event(event_type: str, version: int, payload: dict, at: str = "2026-01-01T00:00:00+00:00"):
    """Another service's event as it arrives over AMQP (``StoredEvent.from_message``)."""
    return StoredEvent(next(_positions), str(uuid.uuid4()), "x", event_type.split(".")[0], version,
                       event_type, 1, payload, {"occurred_at": at}, 0)


class Node(AppNode):
    """The education service's runtime without nameko (``ask`` is ``query``)."""

    service = "education"

    def __init__(self, url: str, now: datetime, settings: EducationSettings | None = None):
        super().__init__(app, url, Clock(now), ADMIN, settings or EducationSettings())
        prepare(self.rt.store, self.rt.projections, self.rt.inline_checkpoint)  # as at start-up
        self.unit_versions: dict[str, int] = {}

    # -- what the units service would send ------------------------------------------------------
    def unit(self, unit_id, parent_id=None, level="unit", kind="government_dept", name=None):
        ev = source_event("Unit.Registered", 1, {"unit_id": unit_id, "name": name or unit_id,
                                                  "kind": kind, "level": level, "parent_id": parent_id})
        with self.rt.unit_of_work(SYSTEM) as uow:
            record_unit_event(uow, ev)
        self.unit_versions[unit_id] = 1

    def tree(self):
        """district-x: 财政局 (fin) with 科室 fin-s1, 市场监管局 (mkt) with 基层站所 mkt-g1, 教育局 (edu)."""
        self.unit("dist", None, "district", "district_authority", "X区")
        for uid, name in (("fin", "财政局"), ("mkt", "市场监管局"), ("edu", "教育局")):
            self.unit(uid, "dist", "unit", "government_dept", name)
        self.unit("fin-s1", "fin", "section", "section", "预算科")
        self.unit("mkt-g1", "mkt", "section", "grassroots_station", "城关所")

    def person(self, person_id, unit_id, post="科员", young_cadre=False, version=1):
        ev = source_event("Person.Registered", version, {
            "person_id": person_id, "name": "某某", "unit_id": unit_id, "post": post,
            "young_cadre": young_cadre})
        with self.rt.unit_of_work(SYSTEM) as uow:
            return record_person_event(uow, ev, "Registered")

    def promote(self, person_id, unit_id, new_post, effective_on, previous_post="科员", version=2):
        ev = source_event("Person.Promoted", version, {
            "person_id": person_id, "unit_id": unit_id, "previous_post": previous_post,
            "new_post": new_post, "effective_on": effective_on})
        with self.rt.unit_of_work(SYSTEM) as uow:
            return record_person_event(uow, ev, "Promoted")

    # -- what the supervision and exchange services would send ----------------------------------
    def risk_point(self, risk_point_id, unit_id, description, category="post_duty", version=1,
                   retired=False):
        """supervision's RiskPoint.Identified (or, ``retired``, RiskPoint.Retired)."""
        from services.education.application import record_risk_point_event
        if retired:
            ev = source_event("RiskPoint.Retired", version, {
                "risk_point_id": risk_point_id, "unit_id": unit_id, "reason": "已消除",
                "retired_on": "2026-01-01"})
        else:
            ev = source_event("RiskPoint.Identified", version, {
                "risk_point_id": risk_point_id, "unit_id": unit_id, "description": description,
                "category": category, "post": None, "micro_power_list_id": None,
                "micro_power_steps": [], "post_flags": [], "identified_on": "2026-01-01"})
        with self.rt.unit_of_work(SYSTEM) as uow:
            return record_risk_point_event(uow, ev)
