"""Per-service broker users (issue 11, C11): the node works with each service logged in
as its own user, and a user that does not own ``<service>.events`` cannot publish
there - the broker refuses, so the exchange service never signs a forged event."""
from __future__ import annotations

import uuid

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port, get_extension

from services.exchange.service import ExchangeService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService
from shared import brokerusers, config
from shared.auth import UserDirectory
from shared.db import make_engine
from shared.errors import NotFound
from shared.federation.broker import BrokerAdmin
from shared.service import EventSourcing
from tests.fixtures import AMQP_SERVER, RABBIT_API
from tests.harness import wait_for

SERVICES = ("units", "supervision", "education", "exchange")


@pytest.fixture
def node(node_config):
    """A node with its service users provisioned on the test's vhost (their names carry
    the vhost's: users are broker-wide), and a node-admin token."""
    admin = BrokerAdmin.for_node(AMQP_SERVER, RABBIT_API.removesuffix("/api"))
    uris = brokerusers.provision(admin, node_config, SERVICES)
    users = UserDirectory(make_engine(config.node_database_url(node_config)), node_config["NODE_ID"])
    users.create_schema()
    users.add_user("admin", "管理员", ["node-admin"])
    token = users.issue_token("admin")
    users.engine.dispose()
    try:
        yield node_config, uris, {"token": token}
    finally:
        brokerusers.remove(admin, node_config, SERVICES)
        admin.close()


def service_config(node_config, uris, service, **extra):
    return dict(node_config, AMQP_URI=uris[service],
                WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port(), **extra)


def publish(uri, exchange, body, routing_key, **properties):
    """Publish with confirms; the broker's refusal comes back as AccessRefused."""
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.channel(), exchange=Exchange(exchange, type="topic", durable=True),
                 serializer="json").publish(body, routing_key=routing_key, **properties)


def login(uri):
    return uri.split("//", 1)[1].split(":", 1)[0]


def indicators(unit_id, note):
    return {"event_id": str(uuid.uuid4()), "position": 1, "stream_type": "UnitIndicators",
            "stream_id": "UnitIndicators:%s" % unit_id, "version": 1,
            "type": "UnitIndicators.Published", "schema_version": 1,
            "payload": {"unit_id": unit_id, "as_of": "2026-02-28", "findings_open": 3,
                        "note": note},
            "metadata": {"node": "x", "correlation_id": "c", "occurred_at": "2026-03-01T00:00:00+08:00"}}


def test_users_and_passwords_are_made_once_and_kept_private(node):
    node_config, uris, _ = node
    vhost = node_config["AMQP_URI"].rsplit("/", 1)[1]
    assert all("ql-%s-%s:" % (vhost, s) in uris[s] for s in SERVICES)
    assert len({u.split("@")[0] for u in uris.values()}) == len(SERVICES)
    secret = config.var_dir(node_config) / node_config["NODE_ID"] / "broker" / "units.secret"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    admin = BrokerAdmin.for_node(AMQP_SERVER, RABBIT_API.removesuffix("/api"))
    try:
        assert brokerusers.provision(admin, node_config, SERVICES) == uris  # idempotent
    finally:
        admin.close()
    assert brokerusers.service_amqp_uri("units", node_config) == uris["units"]


def supervision_has_unit(n, admin, unit_id, name) -> bool:
    """Supervision's unit mirror holds the unit under that name (a positive signal: until
    the units service's event has been consumed, the view answers NotFound)."""
    try:
        return n.supervision.unit_view({"unit_id": unit_id}, actor=admin)["unit"]["name"] == name
    except NotFound:
        return False


def test_the_node_works_with_each_service_as_its_own_user(node, container_factory):
    node_config, uris, admin = node
    container_factory(UnitsService, service_config(node_config, uris, "units")).start()
    container_factory(SupervisionService, service_config(node_config, uris, "supervision")).start()
    with ClusterRpcProxy(node_config, timeout=30) as n:  # a client on the node's admin login
        n.units.register_unit({"unit_id": "qu", "name": "区", "kind": "district_authority",
                               "level": "district"}, actor=admin)
        # units' relay published as units; supervision consumed it as supervision
        wait_for(lambda: supervision_has_unit(n, admin, "qu", "区"), timeout=30)


def test_no_service_user_can_publish_to_another_services_events(node):
    node_config, uris, _ = node
    body = indicators("qu", "forged")
    for who, exchange in [("units", "supervision.events"), ("education", "supervision.events"),
                          ("supervision", "units.events"), ("exchange", "education.events"),
                          ("console", "units.events")]:
        if who not in uris:
            continue
        with pytest.raises(AccessRefused):
            publish(uris[who], exchange, body, body["type"])
    # each may publish to its own exchange
    publish(uris["supervision"], "supervision.events", body, body["type"])


def test_a_forged_event_never_reaches_the_exchange_service(node, container_factory):
    """Refused by the broker for another service's login; for the broker's admin login,
    which may publish anywhere, refused by the exchange service: the user_id the broker
    checked is not supervision's own. Then the genuine figures, from supervision's relay."""
    node_config, uris, admin = node
    for service in ("units", "supervision"):
        cls = UnitsService if service == "units" else SupervisionService
        container_factory(cls, service_config(node_config, uris, service)).start()
    exchange = container_factory(ExchangeService, service_config(
        node_config, uris, "exchange", QINGLIAN_FEDERATION="off"))
    exchange.start()
    forged = [indicators("forged-%d" % i, "forged") for i in range(4)]
    with pytest.raises(AccessRefused):  # units' login, supervision's exchange
        publish(uris["units"], "supervision.events", forged[0], forged[0]["type"],
                user_id=login(uris["units"]))
    publish(node_config["AMQP_URI"], "supervision.events", forged[1], forged[1]["type"])
    publish(node_config["AMQP_URI"], "supervision.events", forged[2], forged[2]["type"], user_id="guest")
    # a header cannot claim the publisher either
    publish(node_config["AMQP_URI"], "supervision.events", forged[3], forged[3]["type"],
            headers={"qinglian.publisher": login(uris["supervision"]),
                     "nameko.qinglian.publisher": login(uris["supervision"])})
    with pytest.raises(Exception):  # the broker refuses a user_id that is not the login's
        publish(node_config["AMQP_URI"], "supervision.events", forged[0], forged[0]["type"],
                user_id=login(uris["supervision"]))
    with ClusterRpcProxy(node_config, timeout=30) as n:
        n.units.register_unit({"unit_id": "qu", "name": "区", "kind": "district_authority",
                               "level": "district"}, actor=admin)
        wait_for(lambda: supervision_has_unit(n, admin, "qu", "区"), timeout=30)
        n.supervision.publish_indicators({}, actor=admin)
    rt = get_extension(exchange, EventSourcing).runtime

    def recorded():
        with rt.read() as c:
            return sorted(str(e.payload.get("unit_id")) for e in rt.store.iter_all(c)
                          if e.event_type.startswith("IndicatorReport."))
    got = wait_for(lambda: "qu" in recorded() and recorded(), timeout=30)  # the genuine figures
    assert not [u for u in got if u.startswith("forged")], got


def test_the_exchange_services_own_rpcs_need_proof_too(node, container_factory):
    from shared.errors import Forbidden, Unauthenticated
    node_config, uris, admin = node
    container_factory(ExchangeService, service_config(
        node_config, uris, "exchange", QINGLIAN_FEDERATION="off")).start()
    users = UserDirectory(make_engine(config.node_database_url(node_config)), node_config["NODE_ID"])
    users.add_user("v", "v", ["viewer"])
    viewer = {"token": users.issue_token("v")}
    users.engine.dispose()
    with ClusterRpcProxy(node_config, timeout=30) as n:
        for forged in (None, {"user_id": "x", "roles": ["node-admin"]}):
            with pytest.raises(Unauthenticated):
                n.exchange.federation_sync(actor=forged)
            with pytest.raises(Unauthenticated):
                n.exchange.federation_state(actor=forged)
        with pytest.raises(Forbidden):
            n.exchange.federation_sync(actor=viewer)
        assert n.exchange.federation_sync(actor=admin) == {"sync": "requested"}
        assert isinstance(n.exchange.federation_state(actor=viewer), dict)
