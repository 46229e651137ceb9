"""A city and two districts as real processes on the run's own RabbitMQ node, for the
fault suite: every service a ``nameko run`` process (so kill -9 is a real kill -9),
district-a's four services on PostgreSQL (so its connections can be terminated), the
others on SQLite; streams of commands through the HTTP APIs, and exact counts of what
each read model has.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from shared import config
from tests.harness import wait_for
from tooling.localnet import LocalNetwork, free_port

REPO = Path(__file__).resolve().parents[3]
CLASSES = {"units": "UnitsService", "supervision": "SupervisionService",
           "education": "EducationService", "exchange": "ExchangeService"}
FAST = {"FEDERATION_SYNC_SECONDS": "2", "FEDERATION_GAP_GRACE_SECONDS": "0.2"}


class Service:
    """One service of one node as its own process."""

    def __init__(self, node, name: str, env: dict, log_dir: Path, port: int | None = None):
        self.node, self.name = node, name
        self.port = port or free_port()
        self.env = dict(env, WEB_SERVER_ADDRESS="127.0.0.1:%d" % self.port)
        self.log = log_dir / ("%s-%s.log" % (node, name))
        self.proc: subprocess.Popen | None = None
        self.base = "http://127.0.0.1:%d" % self.port
        self.down_on_purpose = True  # until started; the supervisor restarts only crashes

    def start(self) -> "Service":
        self.down_on_purpose = False
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(REPO / "deploy" / "config.yaml"),
             "services.%s.service:%s" % (self.name, CLASSES[self.name])],
            env=self.env, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("%s/%s exited (%s): %s" % (self.node, self.name, self.proc.returncode,
                                                              self.log.read_text(errors="replace")[-2000:]))
            try:
                return requests.get(self.base + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_for(ready, timeout, 0.2, "%s/%s answering on %s" % (self.node, self.name, self.base))

    def kill9(self) -> None:
        self.down_on_purpose = True
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        self.down_on_purpose = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()


class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer %s" % token

    def post(self, command: str, data: dict) -> int:
        try:
            return self.http.post("%s/api/%s" % (self.base, command), json=data, timeout=15).status_code
        except requests.RequestException:
            return 0  # not answered: the command may or may not have been written


@dataclass
class Stream:
    """Commands sent at a steady pace by a thread. A command that got no answer is sent
    again until the service says 201 (written now) or 409 (written before the failure):
    then every id in ``ids`` is known to be written exactly once by the client's count."""

    api: Api
    command: str
    make: callable  # i -> (id, data)
    pause: float = 0.02
    ids: list = field(default_factory=list)
    unanswered: int = 0
    refused: list = field(default_factory=list)

    def run(self, n: int, start: int = 0) -> threading.Thread:
        def go():
            for i in range(start, start + n):
                rid, data = self.make(i)
                while True:
                    status = self.api.post(self.command, data)
                    if status in (201, 200, 409):
                        self.ids.append(rid)
                        break
                    # no answer, or the process died under the request: written or not
                    if status not in (0, 500, 502, 503, 504):
                        self.refused.append((rid, status))
                        break
                    self.unanswered += 1
                    time.sleep(0.2)
                time.sleep(self.pause)
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t


class Node:
    def __init__(self, net: "FaultNetwork", local, services, databases: dict):
        self.net, self.local, self.node_id = net, local, local.node_id
        self.databases = databases  # service -> URL
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NODE_", "QINGLIAN_", "FEDERATION_")) and not k.endswith("_DATABASE_URL")}
        # the one setting passed through: QINGLIAN_RELAY=process runs the suite with every
        # service's relay as its own process (shared.relay.RelayProcess)
        if os.environ.get("QINGLIAN_RELAY"):
            env["QINGLIAN_RELAY"] = os.environ["QINGLIAN_RELAY"]
        env.update({k: str(v) for k, v in local.config.items()})
        env.update(FAST)
        env.update({"%s_DATABASE_URL" % s.upper(): url for s, url in databases.items()})
        self.env = env
        # the exchange service answers on the port its peers know its feed by
        self.services = {s: Service(self.node_id, s, env, net.log_dir,
                                    local.port if s == "exchange" else None) for s in services}
        self.token = None

    def url(self, service: str) -> str:
        return self.databases.get(service) or config.database_url(service, self.local.config)

    def api(self, service: str) -> Api:
        return Api(self.services[service].base, self.token)

    def query(self, service: str, sql: str, **params) -> list:
        engine = self.net.engine(self.url(service))
        with engine.connect() as c:
            return c.execute(text(sql), params).all()


class FaultNetwork:
    def __init__(self, root: Path, broker, pg_urls: dict[str, str]):
        self.root, self.broker = root, broker
        self.log_dir = root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.net = LocalNetwork(root / "nodes", amqp_base=broker.amqp_uri(), api_url=broker.api_url,
                                extra=FAST)
        self._engines = {}
        self.crashes: list[str] = []  # services that exited on their own (and were restarted)
        self._supervising = False
        self.nodes = {
            "district-a": Node(self, self.net["district-a"], ("units", "supervision", "education", "exchange"),
                               pg_urls),
            "city": Node(self, self.net["city"], ("exchange",), {}),
            "district-b": Node(self, self.net["district-b"], ("exchange",), {}),
        }

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def query_server(self, sql: str, **params) -> list:
        """SQL on district-a's PostgreSQL server itself (its maintenance database)."""
        from sqlalchemy.engine import make_url
        url = make_url(next(iter(self.nodes["district-a"].databases.values()))).set(database="postgres")
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                return c.execute(text(sql), params).all()
        finally:
            engine.dispose()

    def engine(self, url: str):
        if url not in self._engines:
            self._engines[url] = create_engine(url, pool_pre_ping=True)
        return self._engines[url]

    def start(self) -> "FaultNetwork":
        from shared.auth import UserDirectory
        from shared.db import make_engine
        self.net.create()
        self._route_district_b_through_a_partition()
        for node in self.nodes.values():
            users = UserDirectory(make_engine(config.node_database_url(node.local.config)), node.node_id)
            users.create_schema()
            users.add_user("admin", "管理员", ["node-admin"])
            node.token = users.issue_token("admin", "faults")
            users.engine.dispose()
        services = [s for n in self.nodes.values() for s in n.services.values()]
        for s in services:
            s.start()
        for s in services:
            s.wait_ready()
        self.net.wait_bindings(60)
        self._supervising = True
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self

    def _supervise(self) -> None:
        """What ``restart: unless-stopped`` does in docker-compose.yml: a service process
        that exits on its own (nameko stops a container whose worker fails to ack on a
        connection the broker dropped) is started again; the tests report each one."""
        while self._supervising:
            for node in self.nodes.values():
                for s in node.services.values():
                    if s.proc is not None and not s.down_on_purpose and s.proc.poll() is not None:
                        self.crashes.append("%s/%s (exit %s)" % (s.node, s.name, s.proc.returncode))
                        s.start()
            time.sleep(0.5)

    def _route_district_b_through_a_partition(self) -> None:
        """district-b's links (both directions) go through ``self.partition``; the
        links are otherwise exactly as ``Topology`` made them."""
        from shared.federation.broker import amqp_uri_for_vhost
        self.partition = Partition(self.broker.amqp_port)
        admin, b, city = self.net.admin, self.net["district-b"], self.net.city
        via = "amqp://guest:guest@127.0.0.1:%d/" % self.partition.port
        for vhost, upstream, peer_vhost in ((b.vhost, city.node_id, city.vhost),
                                            (city.vhost, b.node_id, b.vhost)):
            value = dict(admin.upstreams(vhost)[upstream], uri=amqp_uri_for_vhost(via, peer_vhost))
            value["reconnect-delay"] = 1  # back within a second of the path healing
            admin.put_upstream(vhost, upstream, value)
        self.net.topology.wait_running(30)

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append("--- %s\n%s" % (log.name, "\n".join(tail)))
        return "\n".join(out)

    def stop(self) -> None:
        self._supervising = False
        # Why join: a supervisor pass already under way could restart a crashed service
        # after the loop below has signalled it, and that process would outlive the suite.
        if getattr(self, "_supervisor", None) is not None:
            self._supervisor.join(10)
        if getattr(self, "partition", None):
            self.partition.close()
        services = [s for n in self.nodes.values() for s in n.services.values()]
        for s in services:  # all at once, then wait for each
            s.down_on_purpose = True
            if s.proc is not None and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for s in services:  # (a second SIGTERM trips nameko 2.14 up: wait, then kill)
            if s.proc is not None:
                try:
                    s.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    s.kill9()
        for e in self._engines.values():
            e.dispose()
        self.net.destroy()


def wait_until(predicate, timeout: float, what: str) -> float:
    """``tests.harness.wait_for``, answering how long it waited (the time to converge)."""
    start = time.monotonic()
    wait_for(predicate, timeout, 0.25, what)
    return time.monotonic() - start


class Partition:
    """A TCP path to the broker that can be cut: what a district behind a failed WAN
    link looks like to its peers' federation links. ``cut()`` drops every connection
    through it and refuses new ones until ``heal()``.

    Under eventlet a socket must not be closed while another green thread waits on it
    (its file number is reused and the waiter reads the new one): sockets are only
    shut down from outside; the threads that read them close them."""

    def __init__(self, target_port: int):
        import socket
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open_, self.closing = True, False
        self.pairs: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import socket
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                break
            if not self.open_ or self.closing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = splice(client, upstream, on_close=self._forget)
            with self.lock:
                self.pairs.append(pair)  # (a pair already closed again stays harmlessly)
        self.sock.close()

    def _forget(self, pair) -> None:
        with self.lock:
            if pair in self.pairs:
                self.pairs.remove(pair)

    def cut(self) -> None:
        self.open_ = False
        with self.lock:
            pairs = list(self.pairs)
        for pair in pairs:
            _shutdown(pair[0])
            _shutdown(pair[1])

    def heal(self) -> None:
        self.open_ = True

    def close(self) -> None:
        import socket
        self.cut()
        self.closing = True
        try:  # wake the accept() so that its own thread closes the listening socket
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except OSError:
            pass


def splice(a, b, on_close=None) -> list:
    """Copy bytes both ways between two sockets, one green thread each way; the last
    one out closes both (``on_close(pair)`` then)."""
    pair = [a, b, 2]
    lock = threading.Lock()

    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, EOFError):  # eventlet says EOFError for a socket shut under it
            pass
        _shutdown(dst)
        with lock:
            pair[2] -= 1
            last = pair[2] == 0
        if last:
            a.close()
            b.close()
            if on_close:
                on_close(pair)
    for src, dst in ((a, b), (b, a)):
        threading.Thread(target=pipe, args=(src, dst), daemon=True).start()
    return pair


def _shutdown(sock) -> None:
    import socket
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
