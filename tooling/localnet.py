"""A city and its districts on this machine: vhosts of the local broker as the nodes'
brokers, SQLite files as their databases. Used by the tests, the benchmark and
``qinglian demo``; each node is configured exactly as a real one (its own key, its own
registry trusting the others, the federation links of ``broker.Topology``).

Readiness. Federation links report "running" before the bindings of the nodes' inbox
queues have travelled to the upstream brokers (that is asynchronous), and a message
published meanwhile is routed nowhere - to be repaired later from the feed, but a test
or a benchmark should not start that way. ``wait_bindings`` checks, with the
management API, that each receiver's binding keys are bound on every broker its
records come from.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from shared.federation.broker import (
    CITY_EXCHANGE, NAMED_EXCHANGE, SHARED_EXCHANGE, BrokerAdmin, NodeBroker, Topology,
    amqp_uri_for_vhost, named_for,
)
from shared.federation.envelope import public_key_b64
from shared.federation.keys import init_this_node, load_or_create_node_key, node_registry

DEFAULT_AMQP = os.environ.get("QINGLIAN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
# its management API (None: the AMQP host, port 15672)
DEFAULT_API = os.environ.get("QINGLIAN_TEST_RABBIT_API")


@dataclass
class LocalNode:
    node_id: str
    level: str
    parent: str | None
    vhost: str
    amqp_uri: str
    var_dir: Path
    port: int
    extra: dict = field(default_factory=dict)

    @property
    def feed_url(self) -> str:
        return "http://127.0.0.1:%d/feed" % self.port

    @property
    def base_url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    @property
    def config(self) -> dict:
        """The nameko config (and environment) of this node's exchange service."""
        cfg = {"AMQP_URI": self.amqp_uri, "NODE_ID": self.node_id, "NODE_LEVEL": self.level,
               "NODE_PARENT": self.parent or "", "QINGLIAN_VAR": str(self.var_dir),
               "WEB_SERVER_ADDRESS": "127.0.0.1:%d" % self.port}
        cfg.update(self.extra)
        return cfg

    def service_config(self, service: str) -> dict:
        """The config of one service process: the node's, logging in to the broker as
        that service's own user once ``LocalNetwork(service_users=True)`` made them."""
        from shared.brokerusers import service_amqp_uri
        return dict(self.config, AMQP_URI=service_amqp_uri(service, self.config))

    def inbox_bindings(self) -> list[tuple[str, str]]:
        keys = [(SHARED_EXCHANGE, "#"), (NAMED_EXCHANGE, "%s.#" % self.node_id)]
        if self.level == "city":
            keys.append((CITY_EXCHANGE, "#"))
        return keys


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(span: int, low: int = 20000, high: int = 32000, seed: int | None = None) -> int:
    """The first port of ``span`` consecutive ports that are free now, all between ``low``
    and ``high``. The default range lies below Linux's ephemeral ports (32768-60999), so
    no outgoing connection of this machine (AMQP, PostgreSQL) can take one of them
    between this check and the servers' bind, which a port above 32768 cannot promise."""
    import random
    import socket
    rng = random.Random(seed if seed is not None else os.getpid())
    for _ in range(200):
        base = rng.randrange(low, high - span)
        try:
            socks = []
            for port in range(base, base + span):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no %d free ports between %d and %d" % (span, low, high))


class LocalNetwork:
    """``LocalNetwork(var_root).create()`` ... ``.destroy()``."""

    def __init__(self, var_root: str | Path, districts=("district-a", "district-b"),
                 city: str = "city", prefix: str | None = None, amqp_base: str = DEFAULT_AMQP,
                 ports: dict[str, int] | None = None, extra: dict | None = None,
                 admin: BrokerAdmin | None = None, api_url: str | None = None,
                 service_users: bool = False):
        self.prefix = prefix or "qlt-%s" % uuid.uuid4().hex[:8]
        self.admin = admin or BrokerAdmin.for_node(amqp_base, api_url or DEFAULT_API)
        self.var_root = Path(var_root)
        ports = ports or {}
        self.nodes: dict[str, LocalNode] = {}
        for node_id, level, parent in [(city, "city", None)] + [(d, "district", city) for d in districts]:
            vhost = "%s-%s" % (self.prefix, node_id)
            self.nodes[node_id] = LocalNode(
                node_id, level, parent, vhost, amqp_uri_for_vhost(amqp_base, vhost),
                self.var_root / node_id, ports.get(node_id) or free_port(), dict(extra or {}))
        self.city = self.nodes[city]
        self.districts = [self.nodes[d] for d in districts]
        self.topology: Topology | None = None
        self.service_users = service_users  # each service its own broker login (shared.brokerusers)

    def __getitem__(self, node_id: str) -> LocalNode:
        return self.nodes[node_id]

    # -- set-up ---------------------------------------------------------------------------
    def create(self, link: bool = True) -> "LocalNetwork":
        self.wait_for_broker()
        for node in self.nodes.values():
            self.admin.ensure_vhost(node.vhost)
            if self.service_users:
                from shared.brokerusers import provision
                provision(self.admin, node.config)
        self.trust_all()
        if link:
            self.link()
        return self

    def trust_all(self) -> None:
        """Every node: its key, itself in its registry, and every other node trusted."""
        keys = {}
        for node in self.nodes.values():
            keys[node.node_id] = public_key_b64(load_or_create_node_key(node.config))
        for node in self.nodes.values():
            registry = node_registry(node.config)
            init_this_node(node.config, node.level, node.parent, node.feed_url, registry=registry)
            for other in self.nodes.values():
                if other.node_id != node.node_id:
                    registry.trust(other.node_id, other.level, other.parent, keys[other.node_id],
                                   other.feed_url)
            registry.engine.dispose()

    def link(self) -> None:
        self.topology = Topology(NodeBroker(self.city.node_id, self.city.amqp_uri, self.admin),
                                 [NodeBroker(d.node_id, d.amqp_uri, self.admin)
                                  for d in self.districts])
        self.topology.apply()
        self.topology.wait_running(30)

    def unlink(self, district: str) -> None:
        """Take one district's links down (their buffer queues go: what is published
        meanwhile is lost to AMQP and must come back through the feed)."""
        node = self.nodes[district]
        self.admin.unlink(self.city.vhost, district)
        self.admin.unlink(node.vhost, self.city.node_id)

    def relink(self) -> None:
        self.topology.apply()
        self.topology.wait_running(30)

    def destroy(self, attempts: int = 10) -> list[str]:
        """Delete the vhosts; returns those that could not be deleted. Retries for a
        while: on a shared machine the management API can be briefly away (a plugin
        restart), and a vhost left behind keeps its links running."""
        if self.topology is not None:
            self.topology.delete_link_users()
        if self.service_users:
            from shared.brokerusers import remove
            for node in self.nodes.values():
                try:
                    remove(self.admin, node.config)
                except Exception:  # noqa: BLE001 - the vhosts still go; users are named by them
                    pass
        left = [n.vhost for n in self.nodes.values()]
        for attempt in range(attempts):
            for vhost in list(left):
                try:
                    self.admin.delete_vhost(vhost)
                    left.remove(vhost)
                except Exception:  # noqa: BLE001 - retried below
                    pass
            if not left:
                break
            time.sleep(1.0)
        return left

    def wait_for_broker(self, timeout: float = 60.0) -> None:
        """The management API answers (it may be restarting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.admin._call("GET", "overview")
                return
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise TimeoutError("RabbitMQ's management API at %s does not answer: %s"
                                       % (self.admin.api_url, exc)) from None
                time.sleep(1.0)

    # -- readiness --------------------------------------------------------------------------
    def _bound(self, vhost: str) -> set[tuple[str, str, str]]:
        return {(b["source"], b["routing_key"], b["destination"])
                for b in self.admin._call("GET", "bindings", vhost) if b.get("source")}

    def bindings_ready(self, receivers=None) -> bool:
        """Every receiver's inbox keys are bound, on every broker its records come from,
        towards the link that leads to it."""
        bound = {n.node_id: self._bound(n.vhost) for n in self.nodes.values()}

        def has(at: LocalNode, exchange: str, key: str, towards: LocalNode) -> bool:
            return any(src == exchange and rk == key and dst.startswith("federation: ")
                       and (":%s:" % towards.vhost) in dst for src, rk, dst in bound[at.node_id])

        for r in (receivers or self.nodes.values()):
            r = self.nodes[r] if isinstance(r, str) else r
            for exchange, key in r.inbox_bindings():
                if r.level == "city":
                    if not all(has(d, exchange, key, r) for d in self.districts):
                        return False
                    continue
                # named records come down through the district's own exchange, which
                # its link binds whole ("#": broker module doc)
                at_city = (named_for(r.node_id), "#") if exchange == NAMED_EXCHANGE \
                    else (exchange, key)
                if not has(self.city, *at_city, r):
                    return False
                for d in self.districts:
                    if d is not r and not has(d, exchange, key, self.city):
                        return False
        return True

    def wait_bindings(self, timeout: float = 30.0, receivers=None) -> None:
        deadline = time.monotonic() + timeout
        while not self.bindings_ready(receivers):
            if time.monotonic() > deadline:
                raise TimeoutError("inbox bindings did not reach the upstream brokers in %.0fs"
                                   % timeout)
            time.sleep(0.1)
