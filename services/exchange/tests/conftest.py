"""Fixtures for the exchange service: real RabbitMQ (vhosts as nodes), SQLite stores.

eventlet patches the standard library before anything else imports it, as under
``nameko run`` (tests/conftest.py does the same for the tests/ tree; this folder is
outside it).
"""
import eventlet

eventlet.monkey_patch()

import pytest  # noqa: E402

from tests.harness.exchange import start_network, stop_network  # noqa: E402


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """City, district-a and district-b, linked, each running its exchange service.
    Shared by a module's tests: each test uses its own record ids."""
    net, nodes = start_network(tmp_path_factory.mktemp("net"))
    yield nodes
    stop_network(net, nodes)


@pytest.fixture
def fresh_network(tmp_path):
    """A network of its own, for tests that take links or nodes down."""
    net, nodes = start_network(tmp_path)
    yield net, nodes
    stop_network(net, nodes)
