"""The test harness: what every tier's tests share, in one place.

- ``wait_for(predicate, timeout, step, what)``: the one polling loop of the suite;
- ``assert_nothing_after(marker, leaked, ...)``: the one way to prove that something did
  *not* arrive (wait for a marker sent after it on the same path, then look);
- ``Api`` (a service's HTTP API as a JSON client) and ``Capture`` (every message an
  exchange publishes);
- ``Clock``: a clock the test moves, for runtimes built without nameko.

Per-service nodes live beside this module: ``tests.harness.supervision`` and
``tests.harness.education`` (a service's application layer on a real database, no
broker), ``tests.harness.exchange`` (exchange nodes in containers on linked vhosts),
``tests.harness.pair`` (a city and a district with every service and a console).
Fixtures stay in the conftest.py of the folder that uses them.
"""
from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import requests
from kombu import Connection, Exchange, Queue

TZ = ZoneInfo("Asia/Shanghai")  # the users' time zone

WAIT = 30.0  # long enough for a loaded CI machine; a passing wait returns at once


def today():
    """The users' day now (Asia/Shanghai), read when a test needs it, never at import: a
    suite that runs across midnight there (16:00 UTC) would otherwise ask the services
    about yesterday while they count from today."""
    return datetime.now(TZ).date()


# -- waiting ---------------------------------------------------------------------------------
def wait_for(predicate, timeout: float = WAIT, step: float = 0.05, what: str = "condition"):
    """Poll ``predicate()`` every ``step`` seconds until it returns something truthy and
    return that; after ``timeout`` seconds fail naming ``what`` and the last answer.
    (time.sleep is eventlet's under the root conftest's monkey-patch, so containers in
    this process keep running while a test waits.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last answer: %s)"
                                 % (timeout, what, _short(value)))
        time.sleep(step)


def wait_units_known(rt, unit_ids, timeout: float = WAIT, what: str = "") -> None:
    """Wait until the service whose runtime is ``rt`` has every unit of ``unit_ids`` in
    its copy of the unit tree (shared.unittree): it learns of them from the units
    service's events, one consumer apart from its reactions to the same events, so a
    reaction may be done while the mirror still holds a unit back (its parent not yet
    seen) and appends it later - into the log a test counts, or under a command that
    names it (单位不存在)."""
    from shared.unittree import unit_directory, unit_of
    unit_ids = list(unit_ids)

    def known():
        with rt.read() as c:
            return all(unit_of(c, unit_directory, u) for u in unit_ids)
    wait_for(known, timeout, what=what or "%s knowing units %s" % (rt.service, unit_ids))


def assert_nothing_after(marker, leaked=None, timeout: float = WAIT, step: float = 0.05,
                         what: str = "the marker"):
    """Prove that nothing arrived: first wait for ``marker()`` - a positive signal that
    was sent *after* the thing that must not arrive, along the same path (the same
    publisher, exchange, link or consumer), so anything that was going to leak has
    arrived before it - then assert that ``leaked()`` (if given) is falsy. A sleep
    followed by an assertion of absence passes when the leak is merely late; this does
    not. Returns the marker's value; tests with richer checks assert after it."""
    value = wait_for(marker, timeout, step, what)
    if leaked is not None:
        found = leaked()
        assert not found, "arrived before %s although it must never arrive: %s" % (
            what, _short(found))
    return value


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# -- a service's HTTP API ------------------------------------------------------------------------
class Api:
    """HTTP JSON client for one service: ``post(command, data)``, ``get(query, params)``."""

    def __init__(self, address: str, token: str | None = None):
        host, port = address.rsplit(":", 1)
        self.base = "http://%s:%s" % ("127.0.0.1" if host in ("0.0.0.0", "") else host, port)
        self.token = token
        self.session = requests.Session()

    def _headers(self, token, if_match=None):
        h = {}
        token = self.token if token is ... else token
        if token:
            h["Authorization"] = "Bearer %s" % token
        if if_match is not None:
            h["If-Match"] = str(if_match)
        return h

    def post(self, name, data=None, token=..., if_match=None, raw=None,
             content_type="application/json"):
        headers = self._headers(token, if_match)
        if content_type:
            headers["Content-Type"] = content_type
        r = self.session.post("%s/api/%s" % (self.base, name), headers=headers,
                              data=raw if raw is not None else json.dumps(data or {}), timeout=30)
        return r.status_code, _body(r)

    def get(self, name, params=None, token=...):
        r = self.session.get("%s/api/%s" % (self.base, name), params=params or {},
                             headers=self._headers(token), timeout=30)
        return r.status_code, _body(r)

    def raw_get(self, path):
        return self.session.get(self.base + path, timeout=30)


def _body(r):
    try:
        return r.json()
    except ValueError:
        return r.text


# -- what a service publishes ----------------------------------------------------------------------
class Capture:
    """Collects every message published to an exchange (a queue bound to '#')."""

    def __init__(self, amqp_uri: str, exchange: str, binding: str = "#"):
        self.conn = Connection(amqp_uri)
        self.exchange = Exchange(exchange, type="topic", durable=True, auto_delete=False)
        self.queue = Queue("capture-%s-%d" % (exchange, id(self)), exchange=self.exchange,
                           routing_key=binding, auto_delete=True, durable=False)
        self.messages: list[dict] = []
        self.routing_keys: list[str] = []
        self._consumer = self.conn.Consumer(self.queue, callbacks=[self._on], accept=["json"])
        self._consumer.consume()

    def _on(self, body, message):
        self.messages.append(body)
        self.routing_keys.append(message.delivery_info["routing_key"])
        message.ack()

    def drain(self, until=lambda msgs: False, timeout: float = 10.0) -> list[dict]:
        """Receive for up to ``timeout`` seconds, or until ``until(messages)``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.conn.drain_events(timeout=0.2)
            except socket.timeout:  # nothing yet; a lost connection is an error, not a wait
                pass
            if until(self.messages):
                break
        return self.messages

    def close(self):
        try:
            self._consumer.cancel()
        except Exception:  # noqa: BLE001 - the broker may have restarted under us
            pass
        finally:
            self.conn.release()


# -- time ------------------------------------------------------------------------------------------
def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class Clock:
    """A runtime's clock, moved by the test (aware datetimes).

    ``Clock("2024-03-01")`` / ``.set("2024-03-05T14:00")``: the users' time zone, 09:00
    when only a date is given; ``Clock(datetime)`` / ``.set(datetime)`` as given;
    ``.set(2026, 1, 31, 16)``: UTC."""

    def __init__(self, start: str | datetime = "2024-03-01T09:00"):
        self.now = self._parse(start)

    @staticmethod
    def _parse(value: str | datetime) -> datetime:
        if isinstance(value, datetime):
            return value
        if len(value) == 10:
            value += "T09:00"
        return datetime.fromisoformat(value).replace(tzinfo=TZ)

    def __call__(self) -> datetime:
        return self.now

    def set(self, *value) -> None:
        self.now = self._parse(value[0]) if len(value) == 1 else utc(*value)

    def advance(self, days: int = 0, hours: int = 0) -> None:
        self.now += timedelta(days=days, hours=hours)

    @property
    def today(self) -> str:
        return self.now.date().isoformat()


# -- a service without nameko ----------------------------------------------------------------------
NODE = "district-test"


class AppNode:
    """A service's application layer on a real database, without nameko or a broker:
    commands and queries go through the same ``Application`` as under the service
    (validation, authorisation, one unit of work). Subclasses (tests.harness.supervision,
    tests.harness.education) add the service's settings and what its sources would send."""

    service = ""  # the service's name, as its runtime records it

    def __init__(self, app, url: str, clock, admin, settings=None):
        from shared.db import make_engine
        from shared.uow import Runtime
        self.app = app
        self.admin = admin
        self.clock = clock
        self.engine = make_engine(url)
        # ``settings``: what the provider would read from the config (Application(settings=))
        self.rt = Runtime(self.engine, app.projections, NODE, self.service, clock=clock,
                          settings=settings)
        self.rt.create_schema()

    def close(self) -> None:
        self.engine.dispose()

    def run(self, name: str, data=None, actor=None):
        return self.app.execute(self.rt, name, data or {}, actor or self.admin)

    def query(self, name: str, params=None, actor=None):
        return self.app.run_query(self.rt, name, params or {}, actor or self.admin)

    ask = query

    def fails(self, name: str, data=None, actor=None, kind: str = "command"):
        """Run and return the error it must raise (the test asserts on its status)."""
        from shared.errors import QinglianError
        try:
            if kind == "command":
                self.run(name, data, actor)
            else:
                self.query(name, data, actor)
        except QinglianError as exc:
            return exc
        raise AssertionError("%s succeeded but was expected to fail" % name)

    def head(self) -> int:
        with self.rt.read() as conn:
            return self.rt.store.head(conn)

    def events(self, event_type: str | None = None) -> list:
        with self.rt.read() as conn:
            evs = list(self.rt.store.iter_all(conn))
        return [e for e in evs if event_type is None or e.event_type == event_type]


class Client:
    """One interface over RPC and HTTP to a running service:
    ``cmd/get(name, data, who) -> (status, body)``.

    ``who`` names a user of ``users`` (user id -> (Actor, token)); RPC and HTTP both carry
    that user's token (an RPC actor is proof, ``{"token": ...}``, never a dict of roles).
    Both answer 200 for success (HTTP's 201 for creating commands is folded into it).
    """

    def __init__(self, transport: str, node_config: dict, users: dict, service: str):
        self.transport = transport
        self.config = node_config
        self.users = users
        self.service = service
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
        from shared.errors import QinglianError
        _, token = self.users[who]
        if self.transport == "rpc":
            try:
                method = getattr(getattr(self._proxy, self.service), name)
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
