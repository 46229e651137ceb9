"""Broker restart while commands flow: every event still reaches the broker.

Commands only write the log (no broker on the command path), so they keep succeeding
while RabbitMQ is down; the relay retries, and publishes what piled up once the broker
is back. This restarts the machine's real broker (`rabbitmqctl stop_app/start_app`).
"""
import subprocess
import threading
import time
import uuid

from kombu import Connection, Exchange, Queue

from tests.helpers import wait_for


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_broker_restart_while_commands_flow(units_node):
    uri = units_node.config["AMQP_URI"]
    queue = Queue("restart-%s" % uuid.uuid4().hex[:8], Exchange("units.events", type="topic", durable=True),
                  routing_key="#", durable=True, auto_delete=False)
    with Connection(uri) as c:
        queue(c.channel()).declare()
    api = units_node.api
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
    rabbitmqctl("stop_app")
    try:
        time.sleep(2)
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    t.join(60)
    assert results == [201] * total  # the command path never needed the broker

    positions = set()
    deadline = time.monotonic() + 60

    def on_message(body, message):
        positions.add(body["position"])
        message.ack()
    while time.monotonic() < deadline and len(positions) < total + 1:
        try:
            with Connection(uri) as c:
                with c.Consumer(queue, callbacks=[on_message], accept=["json"]):
                    while len(positions) < total + 1 and time.monotonic() < deadline:
                        try:
                            c.drain_events(timeout=1)
                        except Exception:  # noqa: BLE001 - timeout: poll again
                            pass
        except Exception:  # noqa: BLE001 - broker still starting
            time.sleep(0.5)
    assert positions == set(range(1, total + 2)), "missing: %s" % sorted(set(range(1, total + 2)) - positions)
    with Connection(uri) as c:
        queue(c.channel()).delete()
