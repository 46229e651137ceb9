"""A RabbitMQ node of the test run's own, for fault tests (never the machine's broker).

The machine's broker on :5672 is shared by everything running here; a test that stops
it breaks every other run. ``RabbitNode`` starts a separate Erlang node with its own
name, ports, data and log folders, Erlang cookie, config and plugin files, and stops
only that node. It is started without the Debian wrapper scripts (which switch to the
``rabbitmq`` user and its cookie), so it runs as whoever runs the tests and nothing of
the system broker's configuration (``/etc/rabbitmq``) applies to it.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from tests.harness import wait_for
from tooling.localnet import free_port

# The plugins the suite needs on a broker: the management API (vhosts per test), the
# federation plugin and its status API.
NEEDED_PLUGINS = ("rabbitmq_management", "rabbitmq_federation", "rabbitmq_federation_management")


def _tool(name: str) -> str:
    # Debian's /usr/sbin scripts re-run as the rabbitmq user; the real ones live here
    direct = Path("/usr/lib/rabbitmq/bin") / name
    if direct.exists():
        return str(direct)
    found = shutil.which(name)
    if not found:
        raise RuntimeError("%s not found: install the rabbitmq-server package" % name)
    return found


class RabbitNode:
    """``RabbitNode(folder).start()`` ... ``.stop()``; ports are free ones unless given."""

    def __init__(self, folder: str | Path, name: str | None = None, *, amqp_port: int | None = None,
                 dist_port: int | None = None, api_port: int | None = None,
                 plugins=NEEDED_PLUGINS):
        self.folder = Path(folder)
        self.name = name or "qlfault-%s@localhost" % uuid.uuid4().hex[:8]
        self.amqp_port = amqp_port or free_port()
        self.dist_port = dist_port or free_port()
        self.api_port = api_port or free_port()
        self.plugins = tuple(plugins)
        self.pid: int | None = None

    # -- where it is ------------------------------------------------------------------------
    def amqp_uri(self, vhost: str = "/") -> str:
        return "amqp://guest:guest@127.0.0.1:%d/%s" % (self.amqp_port, quote(vhost, safe=""))

    @property
    def api_url(self) -> str:
        return "http://127.0.0.1:%d" % self.api_port

    def admin(self, **kw):
        from shared.federation.broker import BrokerAdmin
        return BrokerAdmin(self.api_url, "guest", "guest", **kw)

    @property
    def env(self) -> dict:
        f = self.folder
        return dict(
            os.environ,
            HOME=str(f),  # the CLI tools read the Erlang cookie from $HOME
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(f / "mnesia"),
            RABBITMQ_LOG_BASE=str(f / "log"),
            RABBITMQ_PID_FILE=str(f / "node.pid"),
            RABBITMQ_CONFIG_FILE=str(f / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(f / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(f / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(f / "enabled_plugins"),
            # a node killed mid-write leaves crash dumps in its working directory: keep
            # them in its own folder, not in the repository the tests run from
            ERL_CRASH_DUMP=str(f / "erl_crash.dump"),
        )

    # -- life cycle -------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> "RabbitNode":
        f = self.folder
        if not (f / "rabbitmq.conf").exists():
            f.mkdir(parents=True, exist_ok=True)
            cookie = f / ".erlang.cookie"
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
            (f / "rabbitmq.conf").write_text(
                "listeners.tcp.default = 127.0.0.1:%d\n"
                "management.tcp.ip = 127.0.0.1\n"
                "management.tcp.port = %d\n"
                # the fault tests restart it often: no need to keep much on disk
                "log.file.level = warning\n" % (self.amqp_port, self.api_port))
            (f / "rabbitmq-env.conf").write_text("")
            (f / "enabled_plugins").write_text("[%s].\n" % ",".join(self.plugins))
        subprocess.run([_tool("rabbitmq-server"), "-detached"], env=self.env, check=True,
                       capture_output=True, timeout=60, cwd=f)
        self.await_startup(timeout)
        self.pid = int((f / "node.pid").read_text().strip())
        if "rabbitmq_management" in self.plugins:
            self.wait_for_api(timeout)
        return self

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run([_tool("rabbitmqctl"), "-n", self.name, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError("rabbitmqctl %s on %s: %s" % (" ".join(args), self.name,
                                                             (done.stderr or done.stdout).strip()[:500]))
        return done.stdout

    def plugins_cmd(self, *args: str) -> str:
        done = subprocess.run([_tool("rabbitmq-plugins"), "-n", self.name, *args], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError("rabbitmq-plugins %s: %s" % (" ".join(args), done.stderr.strip()[:500]))
        return done.stdout

    def await_startup(self, timeout: float = 90.0) -> None:
        # await_startup fails at once while the Erlang node is not registered yet
        failed = []

        def started():
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=60)
                return True
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failed[:] = [exc]
                return False
        try:
            wait_for(started, timeout, 0.5, "RabbitMQ node %s to start" % self.name)
        except AssertionError:
            raise RuntimeError("RabbitMQ node %s did not start in %.0fs: %s; log: %s"
                               % (self.name, timeout, failed[-1] if failed else "?",
                                  self.log_tail())) from None

    def wait_for_api(self, timeout: float = 60.0) -> None:
        import requests

        def answering():
            try:
                return requests.get(self.api_url + "/api/overview", auth=("guest", "guest"),
                                    timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_for(answering, timeout, 0.3, "the management API of %s at %s" % (self.name, self.api_url))

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")

    def restart(self) -> None:
        """A full restart of the Erlang node (what a host reboot does to the broker)."""
        self.halt()
        self.start()

    def halt(self) -> None:
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        self._kill_own_pid()

    def stop(self) -> None:
        """Stop the node and remove its folder."""
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _kill_own_pid(self) -> None:
        # only the pid this node wrote, and only if it is still that node's beam
        if not self.pid:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        try:
            cmdline = Path("/proc/%d/cmdline" % self.pid).read_bytes()
        except OSError:
            return
        if self.name.split("@")[0].encode() in cmdline:
            os.kill(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        logs = sorted((self.folder / "log").glob("*.log"))
        if not logs:
            return "(no log)"
        return " | ".join(logs[0].read_text(errors="replace").splitlines()[-lines:])
