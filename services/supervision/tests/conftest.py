"""Fixtures for the supervision tests (the shared ones - pg_url, sqlite_url, db_url,
vhost, node_config, admin_token, make_user - come from the root conftest.py)."""
import pytest

from tests.harness.supervision import Clock, Node


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def node(sqlite_url, clock):
    """The application layer on a real SQLite database, no broker (fast tests)."""
    n = Node(sqlite_url, clock)
    yield n
    n.close()


@pytest.fixture
def any_node(db_url, clock):
    """The same, once on SQLite and once on PostgreSQL."""
    n = Node(db_url, clock)
    yield n
    n.close()


@pytest.fixture
def pg_node(pg_url, clock):
    n = Node(pg_url, clock)
    yield n
    n.close()
