"""Fixtures for the federation tests on the real RabbitMQ (vhosts as nodes), every
resource uniquely named and removed at teardown, pass or fail."""
from __future__ import annotations

import os
import re
import time
import uuid
from urllib.parse import unquote, urlparse

import amqp
import pytest

from shared.federation.broker import (
    SHARED_EXCHANGE,
    BrokerAdmin,
    BrokerError,
    NodeBroker,
    Topology,
    amqp_uri_for_vhost,
)
from tests.harness import wait_for

# Same environment variables as tests/fixtures.py, so CI can point both elsewhere.
AMQP_BASE = os.environ.get("QINGLIAN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API = re.sub(r"/api/?$", "", os.environ.get("QINGLIAN_TEST_RABBIT_API",
                                                   "http://127.0.0.1:15672"))
WAIT = 20.0  # how long the federation links may take to run


@pytest.fixture(scope="session")
def admin():
    u = urlparse(AMQP_BASE)
    api = BrokerAdmin(RABBIT_API, unquote(u.username or "guest"), unquote(u.password or "guest"))
    try:
        api.link_status("/")
    except BrokerError as exc:
        pytest.fail("RabbitMQ management API with federation status is needed: %s" % exc)
    yield api
    api.close()


@pytest.fixture
def make_vhost(admin):
    """make_vhost("city") -> "qlt-1a2b3c4d-city", deleted after the test."""
    prefix = "qlt-%s" % uuid.uuid4().hex[:8]
    created = []

    def make(suffix: str) -> str:
        name = "%s-%s" % (prefix, suffix)
        created.append(name)
        admin.ensure_vhost(name)
        return name

    yield make
    for name in created:
        try:
            admin.delete_vhost(name)
        except BrokerError:
            pass


class Tap:
    """A test queue bound to qinglian.shared on one node, read with basic.get."""

    def __init__(self, vhost: str, binding: str = "#", exchange: str = SHARED_EXCHANGE,
                 user: str | None = None, password: str | None = None):
        self.vhost = vhost
        self.exchange = exchange
        u = urlparse(AMQP_BASE)
        self.conn = amqp.Connection("%s:%d" % (u.hostname, u.port or 5672),
                                    userid=user or unquote(u.username or "guest"),
                                    password=password or unquote(u.password or "guest"),
                                    virtual_host=vhost, connect_timeout=5)
        self.conn.connect()
        self.channel = self.conn.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).queue
        self.channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
        self.channel.queue_bind(self.queue, exchange, binding)
        self.received: list[amqp.Message] = []

    def publish(self, routing_key: str, body: bytes, **properties) -> None:
        properties.setdefault("delivery_mode", 2)
        self.channel.basic_publish(amqp.Message(body, **properties),
                                   exchange=self.exchange, routing_key=routing_key)

    def drain(self) -> list[amqp.Message]:
        """Everything waiting now, appended to ``received``."""
        got = []
        while True:
            m = self.channel.basic_get(self.queue, no_ack=True)
            if m is None:
                break
            got.append(m)
        self.received.extend(got)
        return got

    def with_id(self, message_id: str) -> list[amqp.Message]:
        return [m for m in self.received if m.properties.get("message_id") == message_id]

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass



class Star:
    """City + district-a + district-b as vhosts, linked by ``Topology``, a Tap on each."""

    def __init__(self, admin, make_vhost, **topology_kw):
        self.admin = admin
        self.vhosts = {"city": make_vhost("city"), "district-a": make_vhost("district-a"),
                       "district-b": make_vhost("district-b")}
        self.brokers = {n: NodeBroker(n, amqp_uri_for_vhost(AMQP_BASE, v), admin)
                        for n, v in self.vhosts.items()}
        self.topology = Topology(self.brokers["city"],
                                 [self.brokers["district-a"], self.brokers["district-b"]],
                                 **topology_kw)
        self.topology.apply()
        self.topology.wait_running(WAIT)
        self.taps = {n: Tap(v) for n, v in self.vhosts.items()}

    def warm_up(self, paths, taps=None, key="probe.{source}.Ping"):
        """Links run before the test queues' bindings have travelled upstream (that is
        asynchronous), so send probes along each (from, to) path until one arrives.
        Probes carry their own ids; tests count only their own message ids.
        ``taps`` (default: the qinglian.shared taps) and ``key`` (formatted with
        source and target) let the same probing run on the other exchanges."""
        taps = taps or self.taps
        for source, target in paths:
            n = 0

            def arrived():
                nonlocal n
                n += 1
                taps[source].publish(key.format(source=source, target=target), b"probe",
                                     message_id="probe-%s-%d" % (source, n))
                taps[target].drain()
                return any((m.properties.get("message_id") or "").startswith("probe-" + source)
                           for m in taps[target].received)

            wait_for(arrived, what="a probe from %s at %s" % (source, target))
        time.sleep(0.3)
        for tap in taps.values():
            tap.drain()
            tap.received.clear()

    def close(self):
        for tap in self.taps.values():
            tap.close()
        self.topology.delete_link_users()


@pytest.fixture
def star(admin, make_vhost):
    s = Star(admin, make_vhost)
    yield s
    s.close()


@pytest.fixture
def star_factory(admin, make_vhost):
    made = []

    def make(**topology_kw) -> Star:
        s = Star(admin, make_vhost, **topology_kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
