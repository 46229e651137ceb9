import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.units.service import UnitsService
from tests.harness import Api, Capture


@pytest.fixture
def units_node(container_factory, node_config, admin_token):
    """A running UnitsService (real nameko container, real broker vhost, SQLite files)."""
    capture = Capture(node_config["AMQP_URI"], "units.events")
    container = container_factory(UnitsService, node_config)
    container.start()

    class Node:
        config = node_config
        api = Api(node_config["WEB_SERVER_ADDRESS"], admin_token)
        admin = {"token": admin_token}  # an RPC actor is proof, not a dict of roles
        captured = capture

        def rpc(self):
            return ClusterRpcProxy(node_config)

        def head(self):
            from shared.service import EventSourcing
            from nameko.testing.utils import get_extension
            rt = get_extension(container, EventSourcing).runtime
            with rt.read() as c:
                return rt.store.head(c)
    Node.container = container
    yield Node()
    capture.close()


@pytest.fixture
def pg_units_node(container_factory, node_config, admin_token, pg_url):
    """The same on PostgreSQL."""
    node_config["UNITS_DATABASE_URL"] = pg_url
    container = container_factory(UnitsService, node_config)
    container.start()

    class Node:
        config = node_config
        api = Api(node_config["WEB_SERVER_ADDRESS"], admin_token)
    Node.container = container
    yield Node()
