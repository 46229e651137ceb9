"""docs/federation-operations.md, run as written: its set-up blocks add district-c to a
running city (with district-a), each block on the node it names, through the real
console. Only what names the real sites is replaced: the brokers' hosts become vhosts
of the run's own RabbitMQ node (the guide sets a cluster name, which the machine's
broker must never get from a test), and ``<key of X>`` becomes X's public key.

Also: ``federation link`` leaves nothing behind when its link does not run.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import amqp
import pytest

from shared.federation.broker import SHARED_EXCHANGE, amqp_uri_for_vhost
from tests.harness import wait_for
from tooling.localnet import LocalNetwork

REPO = Path(__file__).resolve().parents[4]
GUIDE = REPO / "docs" / "federation-operations.md"

pytestmark = pytest.mark.slow


def guide_blocks() -> list[list[tuple[list[str], str]]]:
    """The set-up sections' sh blocks: [(nodes, command), ...] per block."""
    text = GUIDE.read_text(encoding="utf-8")
    text = text[text.index("## Setting up a node"):text.index("## Watching it")]
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", text, re.S):
        steps, nodes = [], None
        joined = re.sub(r"\\\n\s*", "", body)
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("# on "):
                nodes = [n.strip() for n in line[5:].split(",")]
            elif line.startswith("qinglian "):
                assert nodes, "a command before any '# on <node>' line: %s" % line
                steps.append((nodes, line))
        blocks.append(steps)
    return blocks


class Site:
    """One node of the rehearsal: its environment for the console."""

    def __init__(self, node_id: str, var: Path, amqp_uri: str, api_url: str):
        self.node_id, self.var = node_id, var
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("NODE_", "QINGLIAN_", "RABBITMQ_")) and not k.endswith("_DATABASE_URL")}
        self.env.update(NODE_ID=node_id, QINGLIAN_VAR=str(var), AMQP_URI=amqp_uri,
                        RABBITMQ_API_URL=api_url, PYTHONPATH=str(REPO))
        var.mkdir(parents=True, exist_ok=True)

    def sh(self, command: str) -> subprocess.CompletedProcess:
        script = 'qinglian() { "%s" -m tooling.cli "$@"; }\n%s' % (sys.executable, command)
        return subprocess.run(["bash", "-c", script], env=self.env, cwd=str(self.var),
                              capture_output=True, text=True, timeout=120)

    def console(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tooling.cli", *args], env=self.env,
                              cwd=str(REPO), capture_output=True, text=True, timeout=120)

    def public_key(self) -> str:
        r = self.console("federation", "identity")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["public_key"]


@pytest.fixture
def rehearsal(fault_broker, tmp_path):
    net = LocalNetwork(tmp_path / "net", districts=("district-a",), amqp_base=fault_broker.amqp_uri(),
                       api_url=fault_broker.api_url).create()
    c_vhost = "%s-district-c" % net.prefix
    net.admin.ensure_vhost(c_vhost)
    sites = {n.node_id: Site(n.node_id, n.var_dir, n.amqp_uri, fault_broker.api_url)
             for n in net.nodes.values()}
    sites["district-c"] = Site("district-c", tmp_path / "district-c",
                               fault_broker.amqp_uri(c_vhost), fault_broker.api_url)
    vhosts = {n.node_id: n.vhost for n in net.nodes.values()}
    vhosts["district-c"] = c_vhost
    try:
        yield net, sites, vhosts, fault_broker
    finally:
        net.admin.delete_vhost(c_vhost)
        for user in ("ql-city", "ql-link-district-c"):
            net.admin.delete_user(user)
        net.destroy()


def localise(command: str, vhosts: dict, keys: dict, broker) -> str:
    """The real sites' brokers -> vhosts of the rehearsal broker; <key of X> -> X's key."""
    def broker_uri(m):
        return amqp_uri_for_vhost("amqp://%s:%s@127.0.0.1:%d/" % (m.group(1), m.group(2), broker.amqp_port),
                                  vhosts[m.group(3)])
    command = re.sub(r"amqps://([^:]+):([^@]+)@mq\.([a-z0-9-]+)\.example\.gov:5671/%2F", broker_uri, command)
    return re.sub(r"<key of ([a-z0-9-]+)>", lambda m: keys[m.group(1)], command)


def test_the_guide_adds_a_district_word_for_word(rehearsal):
    net, sites, vhosts, broker = rehearsal
    blocks = guide_blocks()
    assert len(blocks) >= 5, "the guide's set-up blocks went missing"
    keys: dict[str, str] = {}
    for block in blocks:
        for nodes, command in block:
            keys.update({n: sites[n].public_key() for n in sites if n not in keys
                         and (Path(sites[n].var) / n / "keys" / "node.key").exists()})
            for node in nodes:
                r = sites[node].sh(localise(command, vhosts, keys, broker))
                assert r.returncode == 0, "%s on %s: %s" % (command, node, r.stderr or r.stdout)
                assert "Traceback" not in r.stderr
    assert json.loads((sites["district-c"].var / "district-c.json").read_text())["node_id"] == "district-c"

    # every link of the new district runs, as the link users
    for node, peer in (("city", "district-c"), ("district-c", "city")):
        status = json.loads(sites[node].console("federation", "status", "--json").stdout)
        mine = [l for l in status["links"] if l["upstream"] == peer]
        assert mine and all(l["status"] == "running" for l in mine), status["links"]

    # and a record district-c shares reaches district-a through the city
    received = probe(broker, vhosts["district-c"], vhosts["district-a"])
    assert received, "nothing shared by district-c arrived at district-a"


def probe(broker, source_vhost: str, target_vhost: str, timeout: float = 30.0) -> bool:
    def connect(vhost):
        c = amqp.Connection("127.0.0.1:%d" % broker.amqp_port, userid="guest", password="guest",
                            virtual_host=vhost, connect_timeout=5)
        c.connect()
        return c
    src, dst = connect(source_vhost), connect(target_vhost)
    try:
        out, inbox = src.channel(), dst.channel()
        queue = inbox.queue_declare("", exclusive=True).queue
        inbox.queue_bind(queue, SHARED_EXCHANGE, "probe.#")
        marker = uuid.uuid4().hex

        def arrived():  # the binding travels upstream asynchronously: publish until one does
            out.basic_publish(amqp.Message(marker), exchange=SHARED_EXCHANGE,
                              routing_key="probe.district-c.Ping")
            m = inbox.basic_get(queue, no_ack=True)
            return m is not None and m.body in (marker, marker.encode())
        return wait_for(arrived, timeout, 0.3, "a probe from %s at %s" % (source_vhost, target_vhost))
    finally:
        src.close()
        dst.close()


def test_a_link_that_does_not_run_is_not_left_behind(fault_broker, tmp_path):
    net = LocalNetwork(tmp_path / "net", districts=(), amqp_base=fault_broker.amqp_uri(),
                       api_url=fault_broker.api_url).create(link=False)
    d_vhost = "%s-district-d" % net.prefix
    net.admin.ensure_vhost(d_vhost)
    try:
        d = Site("district-d", tmp_path / "district-d", fault_broker.amqp_uri(d_vhost), fault_broker.api_url)
        city = Site("city", net.city.var_dir, net.city.amqp_uri, fault_broker.api_url)
        assert d.console("node", "init", "--node-id", "district-d", "--parent", "city").returncode == 0
        assert d.console("node", "trust", "city", "--level", "city",
                         "--public-key", city.public_key()).returncode == 0
        wrong = "amqp://guest:wrong-password@127.0.0.1:%d/%s" % (fault_broker.amqp_port, net.city.vhost)
        r = d.console("federation", "link", "--peer", "city", "--peer-amqp", wrong, "--wait", "3")
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "removed again" in r.stderr
        assert net.admin.upstreams(d_vhost) == {}
        policies = net.admin._call("GET", "policies", d_vhost)
        assert [p["name"] for p in policies] == []

        # a working link, then a failed change of it: the working definition comes back
        right = "amqp://guest:guest@127.0.0.1:%d/%s" % (fault_broker.amqp_port, net.city.vhost)
        assert d.console("federation", "link", "--peer", "city", "--peer-amqp", right).returncode == 0
        before = net.admin.upstreams(d_vhost)["city"]
        r = d.console("federation", "link", "--peer", "city", "--peer-amqp", wrong, "--wait", "3")
        assert r.returncode == 1 and "previous definition was put back" in r.stderr, r.stderr
        assert net.admin.upstreams(d_vhost)["city"] == before
        net.admin.wait_for_links(d_vhost, ["city"], 20)
    finally:
        net.admin.delete_vhost(d_vhost)
        net.destroy()
