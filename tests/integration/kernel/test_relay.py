"""The outbox relay: at-least-once on the wire, exactly once in every read model."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nameko.testing.utils import get_extension

from shared.db import make_engine
from shared.relay import Relay
from shared.service import EventSourcing
from shared.store import EventStore
from tests.harness import wait_for
from tests.integration.kernel.relay_fixtures import (
    SOURCE, ConsumerService, append_things, seen_count, seen_numbers,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def source(pg_url):
    store = EventStore(make_engine(pg_url))
    store.create_schema()
    yield store
    store.engine.dispose()


@pytest.fixture
def consumer(container_factory, node_config):
    container = container_factory(ConsumerService, node_config)
    container.start()
    provider = get_extension(container, EventSourcing)
    return provider


class CrashAfterPublish(Relay):
    """Publishes a batch, has it confirmed, then dies before moving its checkpoint."""

    def run_once(self):
        batch = self.pending()
        self.publish_batch(batch)
        raise SystemExit("crash between broker confirm and checkpoint")


def test_crash_between_publish_and_checkpoint_redelivers_but_reads_once(source, consumer, node_config):
    append_things(source, 0, 40)
    with pytest.raises(SystemExit):
        CrashAfterPublish(source, node_config["AMQP_URI"], SOURCE).run_once()
    # the restarted relay starts from the old checkpoint: all 40 go out again
    assert Relay(source, node_config["AMQP_URI"], SOURCE).drain() == 40
    wait_for(lambda: seen_count(consumer.engine) == 40 and
             consumer.metrics.consumer_redeliveries.labels("relayconsumer", "relayconsumer.on_thing")
             ._value.get() == 40, timeout=20)
    assert seen_numbers(consumer.engine) == list(range(40))


def test_relay_killed_repeatedly_loses_nothing(source, consumer, node_config):
    """SIGKILL the relay process at random moments while events are appended."""
    total, appended = 400, 0
    rng = random.Random(7)
    cmd = [sys.executable, "-m", "tests.integration.kernel._relay_process", str(source.engine.url.render_as_string(
        hide_password=False)), node_config["AMQP_URI"]]
    proc = subprocess.Popen(cmd, cwd=str(REPO))
    try:
        while appended < total:
            append_things(source, appended, 20)
            appended += 20
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.05, 0.4))
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                proc = subprocess.Popen(cmd, cwd=str(REPO))
        wait_for(lambda: seen_count(consumer.engine) == total, timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert seen_numbers(consumer.engine) == list(range(total))


def test_relay_publishes_in_log_order_with_position_headers(source, node_config):
    from tests.harness import Capture
    cap = Capture(node_config["AMQP_URI"], "%s.events" % SOURCE)
    try:
        append_things(source, 0, 30)
        relay = Relay(source, node_config["AMQP_URI"], SOURCE, batch_size=7)
        assert relay.drain() == 30
        msgs = cap.drain(lambda m: len(m) >= 30)
        assert [m["position"] for m in msgs] == list(range(1, 31))
        assert [m["payload"]["n"] for m in msgs] == list(range(30))
        with source.engine.connect() as c:
            assert source.get_checkpoint(c, relay.name) == 30
        relay.close()
    finally:
        cap.close()


def test_only_one_relay_leads_on_postgresql(source, node_config):
    a = Relay(source, node_config["AMQP_URI"], SOURCE)
    b = Relay(source, node_config["AMQP_URI"], SOURCE)
    try:
        assert a.acquire_leadership() is True
        assert b.acquire_leadership() is False
        a.close()  # leadership is released with the session
        assert wait_for(lambda: b.acquire_leadership(), timeout=5)
    finally:
        a.close()
        b.close()


def test_an_idle_relay_looks_ever_less_often_and_at_once_again_when_events_come(source, node_config):
    """Idle, the wait doubles from 50 ms to a 1 s ceiling (shared.relay.IdleBackoff: the
    process's own commits wake it, the poll is for other processes'); an append by
    another writer is still found, and the waits start again from 50 ms.

    Only the waits after an empty look are the idle back-off's: the shared broker may
    drop the connection meanwhile ("vhost is down"), and the relay's reconnect wait
    (0.5 s, doubling) is the retry loop's, counted apart and allowed."""
    idle_waits, retry_waits = [], []
    relay = Relay(source, node_config["AMQP_URI"], SOURCE)
    looked = relay.check_broker  # called after an empty look, before the idle wait

    def check_broker():
        looked()
        relay.looked_empty = True
    relay.check_broker = check_broker
    relay.looked_empty = False

    def wait(seconds):
        if relay.looked_empty:
            idle_waits.append(seconds)
            if len(idle_waits) == 7:
                append_things(source, 0, 3)  # another writer: nothing wakes the relay
        else:
            retry_waits.append(seconds)
        relay.looked_empty = False
    try:
        relay.run(lambda: len(idle_waits) >= 9 or len(retry_waits) > 5, wait)
        assert idle_waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 0.05, 0.1]
        assert all(w in (0.5, 1.0, 2.0, 4.0, 5.0) for w in retry_waits), retry_waits
        with source.engine.connect() as c:
            assert source.get_checkpoint(c, relay.name) == 3
    finally:
        relay.close()


def _units_published(cap, n):
    """The first delivery of each event (at-least-once: a restarted relay may send some
    again), in the order they came."""
    first = {}
    for m in cap.drain(lambda msgs: len({x["event_id"] for x in msgs}) >= n, timeout=30):
        first.setdefault(m["event_id"], m)
    return list(first.values())


def test_a_relay_process_publishes_each_event_once_in_order_restarts_and_stops_with_its_service(
        container_factory, node_config, admin_token, pg_url):
    """QINGLIAN_RELAY=process: the service's relay runs as its child process (on another
    core); the same messages as the in-process relay, a killed child is started again
    with nothing lost, and the child stops with the service."""
    from services.units.service import UnitsService
    from tests.harness import Api, Capture
    node_config.update(QINGLIAN_RELAY="process", UNITS_DATABASE_URL=pg_url)
    cap = Capture(node_config["AMQP_URI"], "units.events")
    container = container_factory(UnitsService, node_config)
    container.start()
    try:
        provider = get_extension(container, EventSourcing)
        api = Api(node_config["WEB_SERVER_ADDRESS"], admin_token)
        assert api.post("register_unit", {"unit_id": "qu", "name": "某区区直机关工委",
                                          "kind": "district_authority", "level": "district",
                                          "parent_id": None})[0] == 201
        for n in range(5):
            assert api.post("register_unit", {"unit_id": "u%d" % n, "name": "单位%d" % n,
                                              "kind": "window_unit", "level": "unit",
                                              "parent_id": "qu"})[0] == 201
        got = _units_published(cap, 6)
        assert [m["position"] for m in got] == list(range(1, 7))
        assert [m["payload"]["unit_id"] for m in got] == ["qu"] + ["u%d" % n for n in range(5)]
        assert len(cap.messages) == 6  # none twice while nothing failed
        assert provider.readiness()[1]["relay"] == {"ok": True, "running": True, "process": True}
        assert wait_for(lambda: provider.metrics.relay_published.labels("units")._value.get() == 6,
                        timeout=10)

        child = provider.relay_process.proc
        os.kill(child.pid, signal.SIGKILL)
        for n in range(5, 10):
            assert api.post("register_unit", {"unit_id": "u%d" % n, "name": "单位%d" % n,
                                              "kind": "window_unit", "level": "unit",
                                              "parent_id": "qu"})[0] == 201
        got = _units_published(cap, 11)
        assert [m["position"] for m in got] == list(range(1, 12))
        assert provider.relay_process.proc is not child and provider.relay_process.alive()
    finally:
        cap.close()
        last = provider.relay_process.proc
        container.stop()
    assert last.poll() is not None  # stopped with its service, no orphan left
