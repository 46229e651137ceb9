"""The management API client under a slow or absent broker, and where it is configured.

A slow broker is the real one behind a TCP proxy that holds the first connections
without answering (what a busy machine looks like from the client); only GETs are sent.
"""
import socket
import threading
import time
from urllib.parse import urlparse

import pytest

from shared.federation.broker import BrokerAdmin, BrokerError
from tests.e2e.faults.harness import splice
from tests.fixtures import AMQP_SERVER, RABBIT_API

API = urlparse(RABBIT_API)


class SlowProxy:
    """Forwards to the real management API, except that the first ``hold`` connections
    are accepted and then left unanswered for ``seconds``."""

    def __init__(self, hold: int, seconds: float):
        self.hold, self.seconds, self.connections, self.closing = hold, seconds, 0, False
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.closing:
                client.close()
                self.sock.close()
                return
            self.connections += 1
            work = self._hold if self.connections <= self.hold else self._forward
            threading.Thread(target=work, args=(client,), daemon=True).start()

    def _hold(self, client):
        time.sleep(self.seconds)
        client.close()

    def _forward(self, client):
        splice(client, socket.create_connection((API.hostname, API.port or 15672)))

    def close(self):
        # under eventlet, close a socket only in the thread that waits on it: wake the
        # accept() and let _serve close it
        self.closing = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except OSError:
            pass


@pytest.fixture
def real_cluster_name():
    admin = BrokerAdmin.for_node(AMQP_SERVER, RABBIT_API)
    yield admin.cluster_name()
    admin.close()


def test_a_slow_broker_is_asked_again_with_a_longer_deadline(real_cluster_name):
    proxy = SlowProxy(hold=2, seconds=3.0)
    try:
        admin = BrokerAdmin("http://127.0.0.1:%d" % proxy.port, timeout=0.4, deadline=30)
        # attempts: 0.4 s and 0.8 s go unanswered, the third connection is forwarded
        assert admin.cluster_name() == real_cluster_name
        assert proxy.connections == 3
    finally:
        proxy.close()


def test_a_broker_that_never_answers_fails_at_the_deadline_in_one_line():
    proxy = SlowProxy(hold=1000, seconds=30.0)
    try:
        admin = BrokerAdmin("http://127.0.0.1:%d" % proxy.port, timeout=0.3, deadline=2.0)
        start = time.monotonic()
        with pytest.raises(BrokerError) as e:
            admin.cluster_name()
        assert time.monotonic() - start < 6
        assert "no answer" in str(e.value) and "\n" not in str(e.value)
        assert proxy.connections >= 2  # asked again before giving up
    finally:
        proxy.close()


def test_nothing_listening_is_reported_after_a_short_grace():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    admin = BrokerAdmin("http://127.0.0.1:%d" % port, connect_grace=1.0)
    start = time.monotonic()
    with pytest.raises(BrokerError) as e:
        admin.cluster_name()
    assert time.monotonic() - start < 5
    assert "after 1 attempts" not in str(e.value)  # a restarting plugin gets a second chance
    assert "cannot connect" in str(e.value) and "127.0.0.1:%d" % port in str(e.value)
    assert "\n" not in str(e.value)


def test_an_error_answer_is_not_asked_again():
    admin = BrokerAdmin.for_node(AMQP_SERVER, RABBIT_API)
    start = time.monotonic()
    with pytest.raises(BrokerError) as e:
        admin._call("GET", "vhosts", "qlt-no-such-vhost-%d" % time.time_ns())
    assert e.value.status == 404 and time.monotonic() - start < 2


@pytest.mark.parametrize("api, url, user", [
    (None, "http://mq.example:15672", "ql"),
    ("http://127.0.0.1:15679", "http://127.0.0.1:15679", "ql"),
    ("http://127.0.0.1:15679/api/", "http://127.0.0.1:15679", "ql"),
    ("https://ops:s3cret@mq-admin.example:8443/rabbit", "https://mq-admin.example:8443/rabbit", "ops"),
])
def test_the_management_api_is_a_setting(api, url, user):
    admin = BrokerAdmin.for_node("amqp://ql:pw@mq.example:5672/district-a", api)
    assert admin.api_url == url and admin.user == user


def test_a_malformed_api_url_is_refused():
    with pytest.raises(ValueError, match="http"):
        BrokerAdmin.for_node("amqp://guest:guest@localhost/", "mq.example:15672")
