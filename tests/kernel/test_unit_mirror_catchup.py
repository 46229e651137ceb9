"""Issue 10 #16: the unit mirror of every service catches up by itself after a start-up
race. Four services of one node (real RabbitMQ vhost, SQLite files) started in orders
that put each mirroring service both before and after the units service, with units
registered as soon as the units service is up - so a service started later has no queue
when those events are published and never receives them over AMQP. Every mirror must
still hold the whole tree, with the right paths (a child placed under its parent), via
the units service's ``unit_events`` RPC (shared.unittree.catch_up_units). And a parent
whose message was lost while its child's was delivered: the child is placed once the
catch-up has brought the parent."""
from __future__ import annotations

import json
import time

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port, get_extension
from sqlalchemy import select

from shared.service import EventSourcing
from shared.unittree import unit_directory

from services.education.service import EducationService
from services.exchange.service import ExchangeService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService

SERVICES = {"units": UnitsService, "supervision": SupervisionService,
            "education": EducationService, "exchange": ExchangeService}
# each mirroring service before and after units; units first, second, third and last
ORDERS = [("units", "supervision", "education", "exchange"),
          ("exchange", "units", "education", "supervision"),
          ("education", "supervision", "units", "exchange"),
          ("supervision", "exchange", "education", "units")]

TREE = {"dist": "/dist/", "fin": "/dist/fin/", "mkt": "/dist/mkt/", "fin-s1": "/dist/fin/fin-s1/",
        "mkt-g1": "/dist/fin/mkt-g1/"}


def wait_for(check, timeout=40.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def mirrored(container) -> dict:
    rt = get_extension(container, EventSourcing).runtime
    with rt.read() as conn:
        return dict(conn.execute(select(unit_directory.c.unit_id, unit_directory.c.path)).all())


def register_tree(n, admin):
    n.units.register_unit({"unit_id": "dist", "name": "X区", "kind": "district_authority",
                           "level": "district"}, actor=admin)
    for uid in ("fin", "mkt"):
        n.units.register_unit({"unit_id": uid, "name": uid, "kind": "government_dept", "level": "unit",
                               "parent_id": "dist"}, actor=admin)
    n.units.register_unit({"unit_id": "fin-s1", "name": "预算科", "kind": "section", "level": "section",
                           "parent_id": "fin"}, actor=admin)
    n.units.register_unit({"unit_id": "mkt-g1", "name": "城关所", "kind": "grassroots_station",
                           "level": "section", "parent_id": "mkt"}, actor=admin)
    # a later version of a unit (v2), and a move: the mirror keeps the versions in order
    n.units.rename_unit({"unit_id": "fin", "name": "财政局"}, actor=admin)
    n.units.move_unit({"unit_id": "mkt-g1", "parent_id": "fin"}, actor=admin)


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_every_mirror_catches_up_whatever_the_start_order(order, container_factory, node_config,
                                                         admin_token):
    admin = {"token": admin_token}
    started = {}
    for name in order:
        cfg = dict(node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port(),
                   UNIT_MIRROR_CATCHUP_SECONDS="1", QINGLIAN_FEDERATION="off",
                   FEDERATION_ANCHOR_SECONDS="0")
        started[name] = container_factory(SERVICES[name], cfg)
        started[name].start()
        if name == "units":
            with ClusterRpcProxy(node_config) as n:
                register_tree(n, admin)
    for name, container in started.items():
        if name == "units":
            continue
        wait_for(lambda: mirrored(container) == TREE, what="%s's unit mirror (order %s)" % (name, order))
    # nothing was placed twice: one UnitMirror stream per unit, versions as in units
    with ClusterRpcProxy(node_config) as n:
        source = n.units.unit_events(0, 100)
    assert [(e["payload"]["unit_id"], e["version"]) for e in source][-2:] == [("fin", 2), ("mkt-g1", 2)]
    for name, container in started.items():
        if name == "units":
            continue
        rt = get_extension(container, EventSourcing).runtime
        with rt.read() as conn:
            versions = {uid: rt.store.stream_version(conn, "UnitMirror:%s" % uid) for uid in TREE}
        assert versions == {"dist": 1, "fin": 2, "mkt": 1, "fin-s1": 1, "mkt-g1": 2}, name


def test_the_units_feed_pages_in_log_order(container_factory, node_config, admin_token):
    units = container_factory(UnitsService, node_config)
    units.start()
    with ClusterRpcProxy(node_config) as n:
        register_tree(n, {"token": admin_token})
        everything = n.units.unit_events(0, 1000)
        first, rest = n.units.unit_events(0, 3), n.units.unit_events(everything[2]["position"], 1000)
    assert [e["type"] for e in everything].count("Unit.Registered") == 5
    assert first + rest == everything
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions)
    assert {e["stream_type"] for e in everything} == {"Unit"}   # no person, no document


def test_a_parent_whose_message_was_lost_is_caught_up_and_its_child_placed(container_factory, node_config,
                                                                          admin_token, vhost):
    """The queue exists, but the parent's message is lost (here: taken off the queue while
    the service was stopped) and only the child's is delivered: the live path can only
    requeue the child (its parent is not mirrored) - for ever, without the catch-up."""
    from kombu import Connection
    admin = {"token": admin_token}
    cfg = dict(node_config, UNIT_MIRROR_CATCHUP_SECONDS="1")
    units = container_factory(UnitsService, dict(cfg, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port()))
    units.start()
    education = container_factory(EducationService, cfg)
    education.start()   # declares its queue
    wait_for(lambda: get_extension(education, EventSourcing).runtime.__dict__.get(
        "unit_mirror_catchup", {}).get("answered"), what="education's first catch-up")
    education.stop()
    with ClusterRpcProxy(node_config) as n:
        n.units.register_unit({"unit_id": "dist", "name": "X区", "kind": "district_authority",
                               "level": "district"}, actor=admin)
        n.units.register_unit({"unit_id": "fin", "name": "财政局", "kind": "government_dept", "level": "unit",
                               "parent_id": "dist"}, actor=admin)
    queue = "evt-units-Unit.*--education.mirror_units"
    with Connection(vhost["uri"]) as conn:
        channel = conn.channel()
        bodies = []
        deadline = time.monotonic() + 20
        while len(bodies) < 2 and time.monotonic() < deadline:
            msg = channel.basic_get(queue, no_ack=False)
            if msg is None:
                eventlet.sleep(0.1)
                continue
            bodies.append(msg)
        assert len(bodies) == 2
        for msg in bodies:  # lose the parent's message, give the child's back
            if json.loads(msg.body)["payload"]["unit_id"] == "dist":
                channel.basic_ack(msg.delivery_tag)
            else:
                channel.basic_reject(msg.delivery_tag, requeue=True)
        channel.close()
    education = container_factory(EducationService, cfg)
    education.start()
    wait_for(lambda: mirrored(education) == {"dist": "/dist/", "fin": "/dist/fin/"},
             what="the parent caught up and the child placed under it")
