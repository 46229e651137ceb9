"""Issue 10 #16: the unit mirror of every service catches up by itself after a start-up
race. Four services of one node (real RabbitMQ vhost, SQLite files) started in every
order (all 24, four tests by the units service's place, three lanes of vhosts side by
side, each vhost's queues deleted between its orders; about a minute in all), with units
registered as soon as the units service is up - so a service started later has no queue
when those events are published and never receives them over AMQP. Every mirror must
still hold the whole tree, with the right paths (a child placed under its parent), via
the units service's ``unit_events`` RPC (shared.service.catch_up_units). And a parent
whose message was lost while its child's was delivered: the child is placed once the
catch-up has brought the parent."""
from __future__ import annotations

import itertools
import json

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port, get_extension
from sqlalchemy import select

from shared.service import EventSourcing
from shared.unittree import unit_directory
from tests.harness import wait_for

from services.education.service import EducationService
from services.exchange.service import ExchangeService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService

SERVICES = {"units": UnitsService, "supervision": SupervisionService,
            "education": EducationService, "exchange": ExchangeService}
MIRRORS = ("supervision", "education", "exchange")
# every start order of the four (4! = 24), grouped by the units service's place: one test
# per group runs its six orders of the mirroring services in turn on one vhost
ORDERS = list(itertools.permutations(SERVICES))
GROUPS = {place: [o for o in ORDERS if o.index("units") == place] for place in range(4)}
PLACES = ["units-first", "units-second", "units-third", "units-last"]

TREE = {"dist": "/dist/", "fin": "/dist/fin/", "mkt": "/dist/mkt/", "fin-s1": "/dist/fin/fin-s1/",
        "mkt-g1": "/dist/fin/mkt-g1/"}



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


def _admin(cfg) -> dict:
    from shared import config
    from shared.auth import UserDirectory
    from shared.db import make_engine
    users = UserDirectory(make_engine(config.node_database_url(cfg)), cfg["NODE_ID"])
    users.create_schema()
    users.add_user("admin", "管理员", ["node-admin"])
    token = users.issue_token("admin")
    users.engine.dispose()
    return {"token": token}


def _forget_queues(rabbit_admin, vhost):
    """The vhost as a fresh node's: the stopped services' queues go, so a service started
    late in the next order really declares its queue after units published."""
    from kombu import Connection
    names = [q["name"] for q in rabbit_admin.queues(vhost["name"])]
    with Connection(vhost["uri"]) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
        channel.close()
    assert not rabbit_admin.queues(vhost["name"])


def run_order(order, node_config, var, container_factory):
    """Start the four services in ``order`` on fresh SQLite files (the vhost is the
    caller's, its queues gone), units registered as soon as the units service is up;
    then every mirror must hold the whole tree, each unit recorded once per version."""
    base = dict(node_config, QINGLIAN_VAR=str(var), UNIT_MIRROR_CATCHUP_SECONDS="1",
                QINGLIAN_FEDERATION="off", FEDERATION_ANCHOR_SECONDS="0")
    admin = _admin(base)
    started = {}
    try:
        for name in order:
            started[name] = container_factory(SERVICES[name], dict(
                base, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port()))
            started[name].start()
            if name == "units":
                with ClusterRpcProxy(base) as n:
                    register_tree(n, admin)
        for name in MIRRORS:
            wait_for(lambda: mirrored(started[name]) == TREE, 40,
                     what="%s's unit mirror (order %s)" % (name, " ".join(order)))
        # nothing was placed twice: one UnitMirror stream per unit, versions as in units
        with ClusterRpcProxy(base) as n:
            source = n.units.unit_events(0, 100)
        assert [(e["payload"]["unit_id"], e["version"]) for e in source][-2:] == [
            ("fin", 2), ("mkt-g1", 2)]
        for name in MIRRORS:
            rt = get_extension(started[name], EventSourcing).runtime
            with rt.read() as conn:
                versions = {uid: rt.store.stream_version(conn, "UnitMirror:%s" % uid) for uid in TREE}
            assert versions == {"dist": 1, "fin": 2, "mkt": 1, "fin-s1": 1, "mkt-g1": 2}, (name, order)
    finally:  # killed, not stopped: a graceful stop waits ~3 s per order for nothing kept
        for container in started.values():
            container.kill()


LANES = 3  # orders run side by side, each lane on its own vhost (most of an order is waiting)


@pytest.mark.parametrize("place", range(4), ids=PLACES)
def test_every_mirror_catches_up_whatever_the_start_order(place, container_factory, node_config,
                                                         vhost, rabbit_admin, tmp_path):
    """The six orders of the mirroring services with units at ``place`` (four tests: all
    24 orders): in three lanes side by side, each lane's orders one after the other on
    its own vhost (this test's, and two more), its queues deleted between orders."""
    import uuid
    orders = GROUPS[place]
    assert len(orders) == 6
    lanes = [vhost]
    try:
        for _ in range(LANES - 1):
            name = "qlt-%s" % uuid.uuid4().hex[:10]
            rabbit_admin.ensure_vhost(name)
            lanes.append({"name": name, "uri": vhost["uri"].rsplit("/", 1)[0] + "/" + name})

        def lane(i):
            own = lanes[i]
            for j, order in enumerate(orders[i::LANES]):
                run_order(order, dict(node_config, AMQP_URI=own["uri"]),
                          tmp_path / ("lane-%d-order-%d" % (i, j)), container_factory)
                _forget_queues(rabbit_admin, own)
            return True
        pile = eventlet.GreenPile()
        for i in range(LANES):
            pile.spawn(lane, i)
        assert list(pile) == [True] * LANES
    finally:
        for extra in lanes[1:]:
            rabbit_admin.delete_vhost(extra["name"])


def test_the_orders_are_every_order():
    assert sorted(o for g in GROUPS.values() for o in g) == sorted(ORDERS)
    assert len(set(ORDERS)) == 24 and all(sorted(o) == sorted(SERVICES) for o in ORDERS)


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
    wait_for(lambda: get_extension(education, EventSourcing).runtime.ext.unit_mirror["answered"],
             40, what="education's first catch-up")
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

        def both():
            msg = channel.basic_get(queue, no_ack=False)
            if msg is not None:
                bodies.append(msg)
            return len(bodies) >= 2
        wait_for(both, 20, 0.1, "both units' messages on %s" % queue)
        assert len(bodies) == 2
        for msg in bodies:  # lose the parent's message, give the child's back
            if json.loads(msg.body)["payload"]["unit_id"] == "dist":
                channel.basic_ack(msg.delivery_tag)
            else:
                channel.basic_reject(msg.delivery_tag, requeue=True)
        channel.close()
    education = container_factory(EducationService, cfg)
    education.start()
    wait_for(lambda: mirrored(education) == {"dist": "/dist/", "fin": "/dist/fin/"}, 40,
             what="the parent caught up and the child placed under it")
