"""A city and N districts on this machine, each node's services as their own
``nameko run`` processes: what ``qinglian demo --districts N`` and the scale
benchmark (bench/scale_propagation.py) bring up.

Each node is a vhost of the local RabbitMQ (``LocalNetwork``: its own key, its own
registry trusting the others, the production federation links) and its own databases:
SQLite files under ``<var_root>/<node>/`` by default, or one PostgreSQL database per
node and service when ``postgres`` names a server (``postgresql://…/postgres``; the
databases are made and dropped here, named ``<prefix>_<node>_<service>_<random>``).

Only the services asked for run (``services``): a benchmark of shared records needs
each node's exchange service alone - the other services neither send nor receive
them - and 1 + 11 nodes with all four services each would be 48 processes on 2 cores.

Ports: node ``i`` (the city is 0) serves service ``s`` on ``base_port + 5 * i +
PORT_OFFSET[s]``, so 1 + 11 nodes fit in 60 ports (``base_port`` None: free ports).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from shared import config, registry
from tooling.processes import NodeApi, stop_process_groups

REPO = Path(__file__).resolve().parents[1]
PORT_OFFSET = {"units": 1, "supervision": 2, "education": 3, "exchange": 4}
PORT_STRIDE = 5


class NetworkError(Exception):
    pass


def district_ids(n: int) -> list[str]:
    """district-01 … district-NN: the ids the scale suite and the N-district demo use."""
    if not 1 <= n <= 99:
        raise NetworkError("区数须在 1 到 99 之间，收到 %r" % n)
    return ["district-%02d" % d for d in range(1, n + 1)]


class Api(NodeApi):
    error = NetworkError


class CityNetwork:
    """``CityNetwork(var_root, 11).start()`` … ``.stop()``.

    ``extra``: config every process gets (e.g. ``FEDERATION_SYNC_SECONDS``);
    ``before_start(node)`` runs for each node after its keys, users and databases exist
    and before its processes start (a benchmark seeds the node's log there)."""

    def __init__(self, var_root: str | Path, districts: int, base_port: int | None,
                 services=("exchange",), prefix: str = "qinglian-net", extra: dict | None = None,
                 postgres: str | None = None, amqp: str | None = None, api: str | None = None,
                 service_users: bool = True, cpu_profile: dict[str, str] | None = None):
        from tooling.localnet import LocalNetwork
        self.var_root = Path(var_root).resolve()
        self.services = list(services)
        unknown = set(self.services) - set(PORT_OFFSET)
        if unknown:
            raise NetworkError("未知的服务：%s" % "、".join(sorted(unknown)))
        self.base_port = base_port
        self._ports: dict[tuple[str, str], int] = {}
        self.prefix = "%s-%s" % (prefix, uuid.uuid4().hex[:4])
        self.node_ids = ["city"] + district_ids(districts)
        ports = {n: self.port(n, "exchange") for n in self.node_ids}
        self.net = LocalNetwork(self.var_root, districts=self.node_ids[1:], prefix=self.prefix,
                                amqp_base=amqp or config.amqp_uri(), ports=ports,
                                extra=dict(extra or {}), api_url=api or config.rabbit_api_url(),
                                service_users=service_users)
        self.postgres = postgres
        self.databases: list[str] = []
        self.cpu_profile = cpu_profile or {}  # node -> py-spy output file
        self.procs: list[tuple[str, str, subprocess.Popen]] = []
        self.tokens: dict[str, str] = {}
        self.api: dict[tuple[str, str], Api] = {}

    @property
    def districts(self) -> list[str]:
        return self.node_ids[1:]

    def port(self, node: str, service: str) -> int:
        """``base_port`` None (tests): a free port each, chosen once."""
        if self.base_port is None:
            from tooling.localnet import free_port
            return self._ports.setdefault((node, service), free_port())
        return self.base_port + PORT_STRIDE * self.node_ids.index(node) + PORT_OFFSET[service]

    def node_config(self, node: str, service: str) -> dict:
        return self.net[node].service_config(service) if self.net.service_users \
            else dict(self.net[node].config)

    # -- set-up ---------------------------------------------------------------------------
    def start(self, before_start=None, timeout: float = 180.0) -> "CityNetwork":
        from shared.auth import UserDirectory
        from shared.db import make_engine
        if self.postgres:
            self._create_databases()
        self.net.create()
        for node in self.net.nodes.values():
            users = UserDirectory(make_engine(config.node_database_url(node.config)), node.node_id)
            users.create_schema()
            users.add_user("admin", "%s 管理员" % node.node_id, ["node-admin"])
            self.tokens[node.node_id] = users.issue_token("admin", "citynet")
            users.engine.dispose()
            if before_start is not None:
                before_start(node)
        cfg = self.var_root / "nameko.yaml"
        cfg.write_text((REPO / "deploy" / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        for node in self.net.nodes.values():
            for service in self.services:
                self._spawn(node, service, cfg)
        for node_id, service, proc in self.procs:
            self._wait_up(node_id, service, proc, timeout)
        self.net.wait_bindings(60)
        return self

    def _create_databases(self) -> None:
        from shared.db import create_database
        for node in self.net.nodes.values():
            for service in ["node"] + self.services:
                url = create_database(self.postgres, ("%s_%s_%s" % (
                    self.prefix, node.node_id, service)).replace("-", "_"))
                self.databases.append(url)
                node.extra["%s_DATABASE_URL" % service.upper()] = url

    def _spawn(self, node, service: str, cfg: Path) -> None:
        env = dict(os.environ, **{k: str(v) for k, v in self.node_config(node.node_id, service).items()})
        env["WEB_SERVER_ADDRESS"] = "127.0.0.1:%d" % self.port(node.node_id, service)
        for name in ("UNITS", "SUPERVISION", "EDUCATION", "EXCHANGE", "NODE"):
            key = "%s_DATABASE_URL" % name
            if key not in node.extra:
                env.pop(key, None)  # SQLite under the node's var, not the caller's
        log = open(node.var_dir / ("%s.log" % service), "ab")
        cmd = [sys.executable, "-m", "nameko", "run", "--config", str(cfg),
               registry.get(service).target]
        spy = self.cpu_profile.get(node.node_id) if service == "exchange" else None
        if spy:
            cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "100",
                   "--format", "raw" if spy.endswith(".txt") else "flamegraph", "-o", spy,
                   "--", *cmd]
        proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=log, stderr=log,
                                start_new_session=True)
        log.close()
        self.procs.append((node.node_id, service, proc))
        self.api[(node.node_id, service)] = Api(
            node.node_id, "http://127.0.0.1:%d" % self.port(node.node_id, service),
            self.tokens[node.node_id])

    def _wait_up(self, node_id: str, service: str, proc, timeout: float) -> None:
        url = "http://127.0.0.1:%d/health" % self.port(node_id, service)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise NetworkError("%s 节点的 %s 服务已退出（%s），见其日志 %s"
                                   % (node_id, service, proc.returncode,
                                      self.net[node_id].var_dir / ("%s.log" % service)))
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise NetworkError("%s 节点的 %s 服务 %.0f 秒内未应答" % (node_id, service, timeout))
            time.sleep(0.3)

    # -- what each node holds -------------------------------------------------------------
    def _exchange_engine(self, node: str):
        from shared.db import make_engine
        return make_engine(config.database_url("exchange", self.net[node].config))

    def expected_records(self) -> dict[str, dict[str, int]]:
        """receiver -> origin -> how many records it must hold from that district: what
        the district's outbox signed for everyone, and for the city its figures too."""
        from sqlalchemy import func, select

        from services.exchange.federation import outbox
        out: dict[str, dict[str, int]] = {n: {} for n in self.node_ids}
        for d in self.districts:
            engine = self._exchange_engine(d)
            try:
                with engine.connect() as c:
                    by = dict(c.execute(select(outbox.c.sharing, func.count())
                                        .group_by(outbox.c.sharing)).all())
            finally:
                engine.dispose()
            for node in self.node_ids:
                if node != d:
                    out[node][d] = by.get("all", 0) + (by.get("city", 0) if node == "city" else 0)
        return out

    def held_records(self) -> dict[str, dict[str, int]]:
        """receiver -> origin -> records it applied from that origin."""
        from sqlalchemy import func, select

        from services.exchange.federation import received
        out = {}
        for node in self.node_ids:
            engine = self._exchange_engine(node)
            try:
                with engine.connect() as c:
                    out[node] = dict(c.execute(select(received.c.origin, func.count())
                                               .where(received.c.outcome == "applied")
                                               .group_by(received.c.origin)).all())
            except Exception:  # noqa: BLE001 - its tables exist once its exchange started
                out[node] = {}
            finally:
                engine.dispose()
        return out

    def stop(self, keep: bool = False) -> list[str]:
        """Stop every process started here (SIGINT for a py-spy'd one, so it writes its
        file), then remove the vhosts and databases unless ``keep``. Returns the vhosts
        that could not be removed."""
        stop_process_groups([proc for _n, _s, proc in self.procs],
                            signal.SIGINT if self.cpu_profile else signal.SIGTERM, 30)
        self.procs = []
        if keep:
            return []
        left = self.net.destroy()
        from shared.db import drop_database
        for url in self.databases:
            try:
                drop_database(url)
            except Exception:  # noqa: BLE001 - the vhosts are gone already; say which is left
                left.append(url.rsplit("/", 1)[1])
        self.databases = []
        return left
