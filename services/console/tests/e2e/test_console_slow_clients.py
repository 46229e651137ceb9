"""The console's HTTP server is the kernel's (shared.http.WebServer and Protocol), with the
same checks as tests/e2e/kernel/test_request_path.py: a client that trickles its headers is
cut off, an idle keep-alive connection is closed, answers leave with TCP_NODELAY. The
console here has ``QINGLIAN_HTTP_TIMEOUT`` at 2 s (default 10)."""
from __future__ import annotations

import requests

from services.console.tests.conftest import console_node
from tests.harness.slow_clients import keep_alive_get, no_delay, sent_after_idling, trickle_headers

node = console_node(None, QINGLIAN_HTTP_TIMEOUT="2")


def _address(node):
    host, port = node.addresses["console"].rsplit(":", 1)
    return host, int(port)


def test_clients_that_trickle_their_headers_are_cut_off(node):
    """Thirty connections send half a sign-in request and then one byte a second for 8 s:
    each is closed at the 2 s deadline for its headers, and meanwhile the console answers."""
    def meanwhile():
        r = requests.get(node.url + "/login", timeout=15)
        assert r.status_code == 200 and "登录" in r.text
    assert trickle_headers(_address(node), "/login", meanwhile=meanwhile) == ["closed"] * 30


def test_an_idle_keep_alive_connection_is_closed(node):
    s, head = keep_alive_get(_address(node), "/health")
    with s:
        assert head.startswith(b"HTTP/1.1 200")
        assert sent_after_idling(s) == b""


def test_pages_leave_without_nagle(node):
    s, head = keep_alive_get(_address(node), "/login")
    with s:
        assert head.startswith(b"HTTP/1.1 200") and no_delay(s)
