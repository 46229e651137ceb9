"""Broker faults while commands flow: every event still reaches the broker.

Commands only write the log (no broker on the command path), so they keep succeeding
while RabbitMQ is down; the relay retries, and publishes what piled up once the broker
is back. The broker here is the run's own RabbitMQ node (``fault_broker``,
tests/brokernode.py): the machine's shared broker is never stopped.
"""
import threading
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from services.units.service import UnitsService
from shared import config
from shared.auth import UserDirectory
from shared.db import make_engine
from tests.harness import Api, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def fault_units(container_factory, fault_node_config):
    users = UserDirectory(make_engine(config.node_database_url(fault_node_config)),
                          fault_node_config["NODE_ID"])
    users.create_schema()
    users.add_user("admin", "管理员", ["node-admin"])
    token = users.issue_token("admin")
    users.engine.dispose()
    container = container_factory(UnitsService, fault_node_config)
    container.start()
    return fault_node_config, Api(fault_node_config["WEB_SERVER_ADDRESS"], token)


def collect(uri, queue, want: int, timeout: float = 90.0) -> list[int]:
    """Every position delivered to ``queue`` (duplicates kept), reconnecting while the
    broker comes back."""
    got: list[int] = []
    deadline = time.monotonic() + timeout

    def on_message(body, message):
        got.append(body["position"])
        message.ack()
    while time.monotonic() < deadline and len(set(got)) < want:
        try:
            with Connection(uri, connect_timeout=2) as c:
                with c.Consumer(queue, callbacks=[on_message], accept=["json"]):
                    while len(set(got)) < want and time.monotonic() < deadline:
                        try:
                            c.drain_events(timeout=1)
                        except TimeoutError:
                            pass
        except Exception:  # noqa: BLE001 - broker still starting: connect again
            time.sleep(0.5)
    return got


@pytest.mark.parametrize("fault", ["stop_app", "restart"])
def test_broker_fault_while_commands_flow(fault_units, fault_broker, fault):
    cfg, api = fault_units
    uri = cfg["AMQP_URI"]
    queue = Queue("restart-%s" % uuid.uuid4().hex[:8], Exchange("units.events", type="topic", durable=True),
                  routing_key="#", durable=True, auto_delete=False)
    with Connection(uri) as c:
        queue(c.channel()).declare()
    assert api.post("register_unit", {"unit_id": "root", "name": "区", "kind": "district_authority",
                                       "level": "district"})[0] == 201
    results, total = [], 120

    def flow():
        for i in range(total):
            results.append(api.post("register_unit", {"unit_id": "u%03d" % i, "name": "单位%d" % i,
                                                       "kind": "government_dept", "level": "unit",
                                                       "parent_id": "root"})[0])
            time.sleep(0.02)
    t = threading.Thread(target=flow)
    t.start()
    wait_for(lambda: len(results) >= 20, timeout=30)
    started = time.monotonic()
    if fault == "stop_app":
        fault_broker.stop_app()
        time.sleep(2)
        fault_broker.start_app()
    else:
        fault_broker.restart()
    t.join(60)
    assert results == [201] * total  # the command path never needed the broker

    written = total + 1
    got = collect(uri, queue, written)
    converged = time.monotonic() - started
    lost = sorted(set(range(1, written + 1)) - set(got))
    duplicated = len(got) - len(set(got))
    print("broker %s: written %d, received %d (%d distinct), lost %d, duplicated on the wire %d, "
          "converged in %.1fs" % (fault, written, len(got), len(set(got)), len(lost), duplicated, converged))
    assert not lost, "missing positions: %s" % lost
    assert set(got) == set(range(1, written + 1))
    with Connection(uri) as c:
        queue(c.channel()).delete()
