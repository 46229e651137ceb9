"""Test support: a supervision node on a real database without nameko (the application
layer exactly as the service runs it), a controllable clock, actors, and a client that
speaks RPC or HTTP to a running container with the same (status, body) answers."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.supervision import application as appl
from services.supervision.application import app
from services.supervision.projections import metadata as sv_metadata
from services.supervision.settings import Settings, register
from shared.auth import Actor
from shared.db import make_engine
from shared.errors import QinglianError
from shared.events import StoredEvent
from shared.store import metadata as store_metadata
from shared.unittree import mirror_metadata, record_unit_event
from shared.uow import Runtime

TZ = ZoneInfo("Asia/Shanghai")
NODE = "district-test"

ADMIN = Actor("admin", ("node-admin",), None, NODE)
INSPECTOR = Actor("insp-1", ("inspector",), None, NODE)
INSPECTOR_2 = Actor("insp-2", ("inspector",), None, NODE)
VIEWER = Actor("viewer-1", ("viewer",), None, NODE)


def unit_admin(scope: str) -> Actor:
    return Actor("ua-%s" % scope, ("unit-admin",), scope, NODE)


class Clock:
    """The runtime's clock, moved by the test (aware datetimes, users' time zone)."""

    def __init__(self, start: str = "2024-03-01T09:00"):
        self.now = self._parse(start)

    @staticmethod
    def _parse(value: str) -> datetime:
        if len(value) == 10:
            value += "T09:00"
        return datetime.fromisoformat(value).replace(tzinfo=TZ)

    def __call__(self) -> datetime:
        return self.now

    def set(self, value: str) -> None:
        self.now = self._parse(value)

    def advance(self, days: int = 0, hours: int = 0) -> None:
        self.now += timedelta(days=days, hours=hours)

    @property
    def today(self) -> str:
        return self.now.date().isoformat()


def units_event(event_type: str, payload: dict, version: int = 1) -> StoredEvent:
    """A units-service event as the broker would deliver it."""
    return StoredEvent(position=version, event_id=str(uuid.uuid4()),
                       stream_id="%s:%s" % (event_type.split(".")[0], payload["unit_id"]),
                       stream_type=event_type.split(".")[0], version=version,
                       event_type=event_type, schema_version=1, payload=payload,
                       metadata={"node": NODE}, recorded_at_us=0)


class Node:
    """One supervision node's application layer on a real database."""

    def __init__(self, url: str, clock: Clock, config: dict | None = None):
        self.engine = make_engine(url)
        self.clock = clock
        self.rt = Runtime(self.engine, app.projections, NODE, "supervision", clock=clock)
        self.rt.create_schema()
        self.settings = Settings.from_config(config or {})
        register(self.engine, self.settings)

    def close(self) -> None:
        self.engine.dispose()

    # -- running --------------------------------------------------------------------------
    def run(self, name: str, data=None, actor: Actor = ADMIN):
        return app.execute(self.rt, name, data or {}, actor)

    def query(self, name: str, params=None, actor: Actor = ADMIN):
        return app.run_query(self.rt, name, params or {}, actor)

    def fails(self, name: str, data=None, actor: Actor = ADMIN, kind: str = "command"):
        """Run and return the error it must raise (the test asserts on its status)."""
        try:
            if kind == "command":
                self.run(name, data, actor)
            else:
                self.query(name, data, actor)
        except QinglianError as exc:
            return exc
        raise AssertionError("%s succeeded but was expected to fail" % name)

    # -- what is stored -------------------------------------------------------------------------
    def head(self) -> int:
        with self.engine.connect() as c:
            return self.rt.store.head(c)

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

    def events(self, event_type: str | None = None) -> list:
        with self.engine.connect() as c:
            evs = list(self.rt.store.iter_all(c))
        return [e for e in evs if event_type is None or e.event_type == event_type]

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


EVIDENCE = [{"path": "ab/" + "ab" * 32 + ".pdf", "sha256": "ab" * 32, "size_bytes": 1024,
             "description": "整改报告"}]


class Client:
    """One interface over RPC and HTTP: ``cmd/get(name, data, who) -> (status, body)``.

    ``who`` names a user made with the ``make_user`` fixture; RPC and HTTP both carry
    that user's token (an RPC actor is proof, ``{"token": ...}``, never a dict of roles).
    Both answer 200 for success (HTTP's 201 for creating commands is folded into it).
    """

    def __init__(self, transport: str, node_config: dict, users: dict):
        from tests.helpers import Api
        self.transport = transport
        self.config = node_config
        self.users = users  # user id -> (Actor, token)
        self.api = Api(node_config["WEB_SERVER_ADDRESS"])
        self._cluster = self._proxy = None

    def __enter__(self):
        if self.transport == "rpc":
            from nameko.standalone.rpc import ClusterRpcProxy
            self._cluster = ClusterRpcProxy(self.config, timeout=30)
            self._proxy = self._cluster.start()
        return self

    def __exit__(self, *exc):
        if self._cluster is not None:
            self._cluster.stop()

    def call(self, kind: str, name: str, data: dict | None, who: str):
        _, token = self.users[who]
        if self.transport == "rpc":
            try:
                method = getattr(self._proxy.supervision, name)
                return 200, method(data or {}, actor={"token": token})
            except QinglianError as exc:
                return exc.status, {"error": exc.code, "message": exc.message,
                                    "fields": exc.fields}
        if kind == "command":
            status, body = self.api.post(name, data or {}, token=token)
        else:
            status, body = self.api.get(name, data or {}, token=token)
        return (200 if status == 201 else status), body

    def cmd(self, name, data, who):
        return self.call("command", name, data, who)

    def get(self, name, params, who):
        return self.call("query", name, params, who)
