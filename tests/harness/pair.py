"""A city and a district running at once on this machine, each with every service it
needs and its own console: the harness of the tests across nodes (the console's
``two_nodes`` session fixture in services/console/tests/conftest.py is one pair).

Each node is configured as a real one (``tooling.localnet``): its own broker
vhost, its own SQLite databases and signing key, a registry trusting the other, and the
federation links between the two vhosts. On each node the real units, supervision,
education, exchange and console services run as nameko containers, each on a free
port of its own; the node's user directory has users with passwords.

Usage::

    def test_something(two_nodes, client_for):
        city, district = two_nodes.city, two_nodes.district
        c = client_for(district, "admin")               # signed in to the district console
        district.api("units", "register_unit", {...})   # a service's HTTP API, as admin
        district.exchange_query("shared_feed", {})      # in-process, no HTTP
        page.goto(city.url + "/exchange/experiences")   # Playwright

``two_nodes.city`` / ``.district`` are ``PairNode`` objects: ``url`` (the console),
``node_id``, ``name`` (its Chinese name), ``units`` (Chinese name -> unit id, seeded below),
``users`` (the ``UserDirectory``), ``add_user``, ``api``, ``head``, ``exchange_query`` /
``exchange_execute``, ``wait_known``. Seeded users (password ``PASSWORD``):
``admin`` (node-admin), ``ua`` (unit-admin of the node's top unit), ``viewer``.

A session's pair is shared by every module that uses it: make titles unique per test
(``uniq("标题")``) and never count everything a node holds.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path

import requests
from nameko.testing.utils import find_free_port, get_extension

from services.console.service import ConsoleService
from services.education.service import EducationService
from services.exchange.service import ExchangeService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService
from shared import config
from shared.auth import UserDirectory
from shared.db import make_engine
from shared.service import EventSourcing, NodeContainer
from tests.harness import wait_units_known
from tooling.localnet import LocalNetwork, LocalNode

CITY, DISTRICT = "city", "district-a"
NAMES = {CITY: "市本级", DISTRICT: "甲区"}
NODE_NAMES = ",".join("%s=%s" % kv for kv in NAMES.items())
FAST = {"FEDERATION_SYNC_SECONDS": 2, "FEDERATION_GAP_GRACE_SECONDS": 0.2,
        "FEDERATION_ANCHOR_SECONDS": 0, "CONSOLE_BACKOFF_SECONDS": "0",
        "QINGLIAN_NODE_NAMES": NODE_NAMES}
# (name, kind, level, parent name) in registration order
UNITS = {
    CITY: [("市直机关工委", "city_authority", "city", None),
           ("市财政局", "government_dept", "unit", "市直机关工委")],
    DISTRICT: [("甲区区直机关工委", "district_authority", "district", None),
               ("甲区财政局", "government_dept", "unit", "甲区区直机关工委"),
               ("甲区政务服务窗口", "window_unit", "unit", "甲区区直机关工委")],
}
ADMINS = {CITY: "王市管", DISTRICT: "李区管"}
SERVICES = (UnitsService, SupervisionService, EducationService, ExchangeService)
PASSWORD = "mima2026ok"  # every seeded user's


def uniq(text: str) -> str:
    """A title no other test of the session uses."""
    return "%s·%s" % (text, uuid.uuid4().hex[:4])


@contextmanager
def clocks_at(when, runtimes):
    """Inside the block every one of the runtimes' clocks reads ``when``; put back after it."""
    saved = [rt.clock for rt in runtimes]
    for rt in runtimes:
        rt.clock = lambda: when
    try:
        yield
    finally:
        for rt, clock in zip(runtimes, saved):
            rt.clock = clock


# the services that keep a copy of the unit tree from the units service's events
MIRRORING = ("exchange", "supervision", "education")


class ConsoleSeeding:
    """What a console test node offers for seeding and looking inside: users with the shared
    password, calls to a service's own HTTP API, its containers' runtimes. Needs ``users``,
    ``addresses``, ``admin_token`` and ``containers``."""

    def add_user(self, user_id, name, roles, scope=None, password=PASSWORD):
        self.users.add_user(user_id, name, roles, scope)
        self.users.set_password(user_id, password)

    def api(self, service: str, name: str, data=None, token=None, kind="command"):
        """The service's own HTTP API (to seed data the way a program would)."""
        url = "http://%s/api/%s" % (self.addresses[service], name)
        headers = {"Authorization": "Bearer %s" % (token or self.admin_token)}
        if kind == "command":
            r = requests.post(url, json=data or {}, headers=headers, timeout=15)
        else:
            r = requests.get(url, params=data or {}, headers=headers, timeout=15)
        assert r.status_code < 300, (name, r.status_code, r.text)
        return r.json()

    def query(self, service: str, name: str, data=None, token=None):
        return self.api(service, name, data, token=token, kind="query")

    def container(self, service: str) -> NodeContainer:
        return next(c for c in self.containers if c.service_name == service)

    def runtime(self, service: str):
        return get_extension(self.container(service), EventSourcing).runtime

    def head(self, service: str) -> int:
        """How many events the service's log holds (a refused request adds none)."""
        rt = self.runtime(service)
        with rt.read() as c:
            return rt.store.head(c)

    def wait_known(self, unit_ids, services=MIRRORING, timeout: float = 60.0) -> None:
        """Wait until each of ``services`` running here has every unit of ``unit_ids`` in its
        unit directory: it learns of them from the units service's events, and until then
        answers 单位不存在 for them (a seed must not use a unit before)."""
        unit_ids = list(unit_ids)
        for service in services:
            if not any(c.service_name == service for c in self.containers):
                continue
            wait_units_known(self.runtime(service), unit_ids, timeout)


class PairNode(ConsoleSeeding):
    """One node of the pair: its services' containers, its console, its users."""

    def __init__(self, local: LocalNode, services=SERVICES):
        self.local = local
        self.node_id = local.node_id
        self.name = NAMES[local.node_id]
        self.base = {k: v for k, v in local.config.items() if k != "WEB_SERVER_ADDRESS"}
        self.containers, self.addresses = [], {}
        self.units: dict[str, str] = {}
        for cls in (*services, ConsoleService):
            # the exchange service answers on the port its peers know as its feed
            address = ("127.0.0.1:%d" % local.port if cls is ExchangeService
                       else "127.0.0.1:%d" % find_free_port())
            container = NodeContainer(cls, dict(self.base, WEB_SERVER_ADDRESS=address))
            container.start()
            self.containers.append(container)
            self.addresses[cls.name] = address
        self.url = "http://%s" % self.addresses["console"]
        self.users = UserDirectory(make_engine(config.node_database_url(self.base)), self.node_id)
        self.users.create_schema()
        self.add_user("admin", ADMINS[self.node_id], ["node-admin"])
        self.admin_token = self.users.issue_token("admin")

    @property
    def exchange(self) -> EventSourcing:
        return get_extension(self.container("exchange"), EventSourcing)

    def exchange_query(self, name: str, params: dict | None = None):
        """An exchange query in-process as the node's admin (no HTTP, no session)."""
        from shared.auth import Actor
        x = self.exchange
        return x.app.run_query(x.runtime, name, params or {},
                               Actor("admin", ("node-admin",), None, self.node_id))

    def exchange_execute(self, name: str, data: dict):
        from shared.auth import Actor
        x = self.exchange
        return x.app.execute(x.runtime, name, data, Actor("admin", ("node-admin",), None,
                                                          self.node_id))

    def has_record(self, record_id: str) -> bool:
        from shared.errors import NotFound
        try:
            self.exchange_query("get_record", {"record_id": record_id})
            return True
        except NotFound:
            return False

    # -- seeding ------------------------------------------------------------------------
    def seed_units(self) -> None:
        for name, kind, level, parent in UNITS[self.node_id]:
            made = self.api("units", "register_unit", {
                "name": name, "kind": kind, "level": level,
                "parent_id": self.units[parent] if parent else None})
            self.units[name] = made["unit_id"]

    @property
    def top_unit(self) -> str:
        return self.units[UNITS[self.node_id][0][0]]

    def stop(self):
        import threading

        def stop_one(c):
            try:
                c.stop()
            except Exception:  # noqa: BLE001 - the others still stop
                pass
        threads = [threading.Thread(target=stop_one, args=(c,)) for c in self.containers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.users.engine.dispose()


class TwoNodes:
    """``TwoNodes(var_root).start()`` ... ``.stop()``: the city and district-a."""

    def __init__(self, var_root: str | Path, services=SERVICES):
        self.net = LocalNetwork(var_root, districts=(DISTRICT,), city=CITY,
                                prefix="qlt-cons-%s" % uuid.uuid4().hex[:6], extra=FAST)
        self.services = services
        self.nodes: dict[str, PairNode] = {}

    def start(self) -> "TwoNodes":
        self.net.create()
        try:
            # both nodes' containers start at once (nameko starts one container at a time)
            import threading
            failed = []

            def start(node_id):
                try:
                    self.nodes[node_id] = PairNode(self.net[node_id], self.services)
                except BaseException as exc:  # noqa: BLE001 - raised below
                    failed.append(exc)
            threads = [threading.Thread(target=start, args=(n,)) for n in (CITY, DISTRICT)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failed:
                raise failed[0]
            self.net.wait_bindings()
            for n in self.nodes.values():
                n.seed_units()
                n.add_user("ua", "赵单位管理员" if n.node_id == DISTRICT else "钱单位管理员",
                           ["unit-admin"], n.top_unit)
                n.add_user("viewer", "孙查看", ["viewer"])
            for n in self.nodes.values():
                n.wait_known(n.units.values())
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def city(self) -> PairNode:
        return self.nodes[CITY]

    @property
    def district(self) -> PairNode:
        return self.nodes[DISTRICT]

    def stop(self) -> None:
        """Every container of both nodes stops at once (each waits for its own threads)."""
        import threading
        threads = [threading.Thread(target=n.stop) for n in self.nodes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.net.destroy()
