"""Fixtures shared by every test tier (loaded by the root conftest.py)."""
import os  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

from shared.db import create_database, drop_database, make_engine  # noqa: E402

PG_SERVER = os.environ.get("QINGLIAN_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
AMQP_SERVER = os.environ.get("QINGLIAN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
def pg_url():
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    url = create_database(PG_SERVER)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path):
    return "sqlite:///%s" % (tmp_path / ("store-%s.db" % uuid.uuid4().hex[:8]))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Runs a test once per back-end: the same recorder suite for both."""
    if request.param == "sqlite":
        yield "sqlite:///%s" % (tmp_path / "store.db")
    else:
        url = create_database(PG_SERVER)
        try:
            yield url
        finally:
            drop_database(url)


@pytest.fixture
def engine_for():
    made = []

    def make(url, **kw):
        e = make_engine(url, **kw)
        made.append(e)
        return e
    yield make
    for e in made:
        e.dispose()


# -- RabbitMQ: one vhost per test, removed afterwards ------------------------------------
RABBIT_API = os.environ.get("QINGLIAN_TEST_RABBIT_API", "http://127.0.0.1:15672/api")


@pytest.fixture(scope="session")
def rabbit_admin():
    """The machine's broker's management API (retries with back-off: a busy machine
    makes it slow, not wrong)."""
    from shared.federation.broker import BrokerAdmin
    admin = BrokerAdmin.for_node(AMQP_SERVER, RABBIT_API)
    yield admin
    admin.close()


@pytest.fixture
def vhost(rabbit_admin):
    """A fresh vhost (the broker of one test node) and its AMQP URI."""
    name = "qlt-%s" % uuid.uuid4().hex[:10]
    rabbit_admin.ensure_vhost(name)
    try:
        yield {"name": name, "uri": AMQP_SERVER.rstrip("/") + "/" + name}
    finally:
        rabbit_admin.delete_vhost(name)


def _node_config(amqp_uri, tmp_path):
    from nameko.testing.utils import find_free_port

    from shared.config import CONTAINER_CLS
    return {
        "SERVICE_CONTAINER_CLS": CONTAINER_CLS,  # as deployed: nameko's container_factory builds it
        "AMQP_URI": amqp_uri,
        "NODE_ID": "district-test",
        "QINGLIAN_VAR": str(tmp_path / "var"),
        "WEB_SERVER_ADDRESS": "127.0.0.1:%d" % find_free_port(),
    }


@pytest.fixture
def node_config(vhost, tmp_path):
    """nameko config for one node on SQLite files under tmp_path; tests add keys."""
    return _node_config(vhost["uri"], tmp_path)


@pytest.fixture
def admin_token(node_config):
    """A node-admin's bearer token on the test node."""
    from shared import config
    from shared.auth import UserDirectory
    users = UserDirectory(make_engine(config.node_database_url(node_config)), node_config["NODE_ID"])
    users.create_schema()
    users.add_user("admin", "管理员", ["node-admin"])
    token = users.issue_token("admin")
    users.engine.dispose()
    return token


@pytest.fixture
def make_user(node_config):
    from shared import config
    from shared.auth import UserDirectory

    def make(user_id, roles, unit_scope=None):
        users = UserDirectory(make_engine(config.node_database_url(node_config)), node_config["NODE_ID"])
        users.create_schema()
        users.add_user(user_id, user_id, roles, unit_scope)
        token = users.issue_token(user_id)
        users.engine.dispose()
        return token
    return make


# -- a RabbitMQ node of this run's own, for fault tests (they stop and restart it) -------
@pytest.fixture(scope="session")
def fault_broker(tmp_path_factory):
    """A dedicated RabbitMQ node (own name, ports, data; see tests/brokernode.py),
    started once per session on first use and stopped at the end. Fault tests stop,
    restart and cut it; the machine's broker is never touched."""
    from tests.brokernode import RabbitNode
    node = RabbitNode(tmp_path_factory.mktemp("rabbit-fault"))
    try:
        node.start()
    except Exception as exc:  # noqa: BLE001 - one clear reason, and whatever it started goes
        node.stop()
        pytest.fail("could not start a dedicated RabbitMQ node for the fault tests: %s" % exc)
    yield node
    node.stop()


@pytest.fixture
def fault_vhost(fault_broker):
    """A fresh vhost on the dedicated broker (one test node's broker)."""
    name = "qlt-%s" % uuid.uuid4().hex[:10]
    admin = fault_broker.admin()
    admin.ensure_vhost(name)
    try:
        yield {"name": name, "uri": fault_broker.amqp_uri(name), "broker": fault_broker}
    finally:
        try:
            admin.delete_vhost(name)
        finally:
            admin.close()


@pytest.fixture
def fault_node_config(fault_vhost, tmp_path):
    """``node_config`` on the dedicated broker."""
    return _node_config(fault_vhost["uri"], tmp_path)


def pytest_sessionstart(session):
    """The broker has the plugins the suite needs (enabled here when it is local and
    ours to manage), or the run stops at once with one line saying what to enable."""
    from tests.broker_setup import BrokerNotReady, ensure_plugins, local_enabler
    from tests.docker_env import docker_available
    if docker_available():
        return  # the compose broker is started later, with its plugins (docker-compose.yml)
    try:
        enabled = ensure_plugins(AMQP_SERVER, RABBIT_API.rsplit("/api", 1)[0], local_enabler(AMQP_SERVER))
    except BrokerNotReady as exc:
        pytest.exit(str(exc), returncode=3)
    if enabled:
        print("enabled RabbitMQ plugins: %s" % ", ".join(enabled))
