"""A console node for the tests: the real units, supervision and console services (nameko
containers on a broker vhost of their own, SQLite files under a temporary folder), users
with passwords, and one Chromium (Debian's, never a downloaded one) per test session.

A test module says only what is particular to it: ``node = console_node(seed, ...)`` is its
node (seed registers units with ``register_units``, which returns once the node's services
know them, people, users), ``desk`` opens a signed-in page of its own, and the page steps are
in ``services.console.tests.browser``. Screenshots (``shoot``) go to var/screenshots/ only;
``qinglian docs screenshots`` copies them over the user guide's docs/console/*.png."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests
from nameko.testing.utils import find_free_port

from services.console.service import ConsoleService
from services.console.tests.browser import HOME, sign_in
from services.education.service import EducationService
from services.exchange.service import ExchangeService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService
from shared import config
from shared.auth import UserDirectory
from shared.db import make_engine
from shared.service import NodeContainer
from tests.fixtures import AMQP_SERVER
from tests.harness.pair import PASSWORD, ConsoleSeeding, TwoNodes

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "var" / "screenshots"
NODE = "district-console"
WITH_EDUCATION = (UnitsService, SupervisionService, EducationService)
WITH_EXCHANGE = (*WITH_EDUCATION, ExchangeService)
DISTRICT_TOP = ("某区直机关工委", "district_authority", "district", None)

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

    def __init__(self, base: dict, tmp: Path, console_extra: dict, services=None):
        self.base = base
        self.containers = []
        self.addresses = {}
        self.ids: dict[str, str] = {}
        for cls, extra in (*((c, {}) for c in services or self.SERVICES), (ConsoleService, console_extra)):
            cfg = dict(base, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port(), **extra)
            container = NodeContainer(cls, cfg)
            container.start()
            self.containers.append(container)
            self.addresses[cls.name] = cfg["WEB_SERVER_ADDRESS"]
        self.url = "http://%s" % self.addresses["console"]
        self.users = UserDirectory(make_engine(config.node_database_url(base)), base["NODE_ID"])
        self.users.create_schema()
        self.add_user("admin", "王管理", ["node-admin"])
        self.admin_token = self.users.issue_token("admin")

    def register_units(self, **units) -> dict[str, str]:
        """Registers 某区直机关工委 (key ``root``), then the units in the order given: each
        ``key=(name, kind, level, parent key)``, or ``key=name`` for a government department
        under root. Their ids are ``self.ids[key]`` (returned). Returns once every service of
        the node that keeps a copy of the unit tree knows them (``wait_known``)."""
        for key, spec in {"root": DISTRICT_TOP, **units}.items():
            name, kind, level, parent = ((spec, "government_dept", "unit", "root")
                                         if isinstance(spec, str) else spec)
            self.ids[key] = self.api("units", "register_unit", {
                "name": name, "kind": kind, "level": level,
                "parent_id": self.ids[parent] if parent else None})["unit_id"]
        self.wait_known(self.ids.values())
        return self.ids

    def register_person(self, person_id, name, unit, post, **extra) -> str:
        """A person of the unit ``self.ids[unit]`` (person_id None: the service picks one)."""
        data = {"name": name, "unit_id": self.ids[unit], "post": post, **extra}
        if person_id is not None:
            data["person_id"] = person_id
        return self.api("units", "register_person", data)["person_id"]

    def stop(self):
        for c in reversed(self.containers):
            c.stop()
        self.users.engine.dispose()


def start_node(tmp_path_factory, rabbit_admin, services=None, **console_extra):
    name = "qlt-console-%s" % uuid.uuid4().hex[:8]
    rabbit_admin.ensure_vhost(name)
    base = {"AMQP_URI": AMQP_SERVER.rstrip("/") + "/" + name, "NODE_ID": NODE,
            "QINGLIAN_VAR": str(tmp_path_factory.mktemp("console-var"))}
    try:
        node = ConsoleNode(base, Path(base["QINGLIAN_VAR"]), console_extra, services)
    except BaseException:
        rabbit_admin.delete_vhost(name)
        raise
    node.vhost = name
    node.rabbit_admin = rabbit_admin
    return node


def stop_node(node):
    node.stop()
    node.rabbit_admin.delete_vhost(node.vhost)


def console_node(seed=None, services=None, **console_extra):
    """A test module's ``node`` fixture: one node for the module, with these services
    (default ``ConsoleNode.SERVICES``) and console settings, seeded by ``seed(node)``, stopped
    after the module. Usage: ``node = console_node(seed, WITH_EDUCATION, CONSOLE_X="1")``."""
    @pytest.fixture(scope="module")
    def node(tmp_path_factory, rabbit_admin):
        n = start_node(tmp_path_factory, rabbit_admin, services, **console_extra)
        try:
            if seed is not None:
                seed(n)
            yield n
        finally:
            stop_node(n)
    return node


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


@pytest.fixture
def desk(browser, browser_context_args):
    """``desk(node, user="admin", **context)``: a page in a browser context of its own
    (both consoles of a pair are on 127.0.0.1, and cookies do not tell ports apart), the
    user signed in on the 工作台; the contexts are closed after the test."""
    contexts = []

    def open_for(node, user="admin", **context):
        ctx = browser.new_context(**{**browser_context_args, **context})
        contexts.append(ctx)
        page = ctx.new_page()
        sign_in(page, node, user, until=HOME)
        return page
    yield open_for
    for ctx in contexts:
        ctx.close()


def shoot(page, name: str) -> None:
    """A screenshot of a main page for the user guide (var/screenshots/<name>.png; the guide's
    docs/console/<name>.png is refreshed from it by ``qinglian docs screenshots``, never here)."""
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
