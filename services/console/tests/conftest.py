"""A console node for the tests: the real units, supervision and console services (nameko
containers on a broker vhost of their own, SQLite files under a temporary folder), users
with passwords, and one Chromium (Debian's, never a downloaded one) per test session."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.testing.utils import find_free_port

from services.console.service import ConsoleService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService
from shared import config
from shared.auth import UserDirectory
from shared.db import make_engine
from tests.fixtures import AMQP_SERVER
from tests.harness.pair import PASSWORD, ConsoleSeeding, TwoNodes

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "var" / "screenshots"
NODE = "district-console"

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# -- the browser: pytest-playwright's fixtures, launched on Debian's chromium -----------------
@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {"executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def playwright():
    """pytest-playwright's own fixture waits for the driver process at the end, which
    never returns under eventlet's monkey-patching (the root conftest, for nameko). The
    browser is closed by the ``browser`` fixture; the driver exits with this process."""
    from playwright.sync_api import sync_playwright
    yield sync_playwright().start()


@pytest.fixture
def browser_context_args():
    return {"viewport": {"width": 1366, "height": 768}, "locale": "zh-CN",
            "timezone_id": "Asia/Shanghai"}


# -- the node ----------------------------------------------------------------------------------
class ConsoleNode(ConsoleSeeding):
    SERVICES = (UnitsService, SupervisionService)  # started before the console

    def __init__(self, base: dict, tmp: Path, console_extra: dict):
        self.base = base
        self.containers = []
        self.addresses = {}
        for cls, extra in (*((c, {}) for c in self.SERVICES), (ConsoleService, console_extra)):
            cfg = dict(base, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port(), **extra)
            container = ServiceContainer(cls, cfg)
            container.start()
            self.containers.append(container)
            self.addresses[cls.name] = cfg["WEB_SERVER_ADDRESS"]
        self.url = "http://%s" % self.addresses["console"]
        self.users = UserDirectory(make_engine(config.node_database_url(base)), base["NODE_ID"])
        self.users.create_schema()
        self.add_user("admin", "王管理", ["node-admin"])
        self.admin_token = self.users.issue_token("admin")

    def head(self, service: str) -> int:
        from nameko.testing.utils import get_extension
        from shared.service import EventSourcing
        container = next(c for c in self.containers if c.service_name == service)
        rt = get_extension(container, EventSourcing).runtime
        with rt.read() as c:
            return rt.store.head(c)

    def stop(self):
        for c in reversed(self.containers):
            c.stop()
        self.users.engine.dispose()


def start_node(tmp_path_factory, rabbit_admin, node_class=None, **console_extra):
    name = "qlt-console-%s" % uuid.uuid4().hex[:8]
    rabbit_admin.ensure_vhost(name)
    base = {"AMQP_URI": AMQP_SERVER.rstrip("/") + "/" + name, "NODE_ID": NODE,
            "QINGLIAN_VAR": str(tmp_path_factory.mktemp("console-var"))}
    try:
        node = (node_class or ConsoleNode)(base, Path(base["QINGLIAN_VAR"]), console_extra)
    except BaseException:
        rabbit_admin.delete_vhost(name)
        raise
    node.vhost = name
    node.rabbit_admin = rabbit_admin
    return node


def stop_node(node):
    node.stop()
    node.rabbit_admin.delete_vhost(node.vhost)


class Client:
    """A signed-in browser session over plain HTTP (cookies, CSRF token from the page)."""

    def __init__(self, url: str):
        self.url = url
        self.s = requests.Session()

    def get(self, path, **kw):
        return self.s.get(self.url + path, allow_redirects=kw.pop("allow_redirects", False),
                          timeout=15, **kw)

    def csrf(self, path="/") -> str:
        page = self.get(path)
        m = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert m, "no CSRF token on %s (%d)" % (path, page.status_code)
        return m.group(1)

    def post(self, path, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf is True:
            data["_csrf"] = self.csrf("/account")
        return self.s.post(self.url + path, data=data, allow_redirects=False, timeout=15, **kw)

    def sign_in(self, user_id, password=PASSWORD):
        nonce_page = self.get("/login")
        nonce = re.search(r'name="_csrf" value="([^"]+)"', nonce_page.text).group(1)
        return self.s.post(self.url + "/login", data={"_csrf": nonce, "user_id": user_id,
                                                      "password": password, "next": "/"},
                           allow_redirects=False, timeout=15)


@pytest.fixture
def client_for():
    made = []

    def make(node, user_id=None, password=PASSWORD):
        c = Client(node.url)
        if user_id:
            r = c.sign_in(user_id, password)
            assert r.status_code == 303, r.text
        made.append(c)
        return c
    yield make
    for c in made:
        c.s.close()


def shoot(page, name: str) -> None:
    """A screenshot of a main page for the user guide (var/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / ("%s.png" % name)), full_page=True)


@pytest.fixture(scope="session")
def two_nodes(tmp_path_factory):
    """The city and a district with their consoles (tests.harness.pair), one pair for the
    whole session."""
    pair = TwoNodes(tmp_path_factory.mktemp("two-nodes")).start()
    try:
        yield pair
    finally:
        pair.stop()
