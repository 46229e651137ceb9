"""The console's HTTP server is the kernel's (shared.http.WebServer and Protocol), with the
same checks as tests/e2e/kernel/test_request_path.py: a client that trickles its headers is
cut off, one that trickles a form's or an upload's body gets a Chinese 408 and writes
nothing, an idle keep-alive connection is closed, answers leave with TCP_NODELAY. The
console here has ``QINGLIAN_HTTP_TIMEOUT`` at 2 s (default 10) and
``QINGLIAN_HTTP_UPLOAD_TIMEOUT`` at 3 s (default 120)."""
from __future__ import annotations

import re
import socket

import requests

from services.console.tests.conftest import console_node
from services.console.tests.e2e.test_console_evidence import _stored_files
from services.console.tests.e2e.test_console_http import record_finding
from tests.harness.slow_clients import (
    keep_alive_get, no_delay, sent_after_idling, trickle_body, trickle_headers,
)


def _seed(n):
    n.register_units(a="区财政局", b=("区市场监管局", "law_enforcement", "unit", "root"))
    n.add_user("ua-b", "孙监管", ["unit-admin"], n.ids["b"])


node = console_node(_seed, QINGLIAN_HTTP_TIMEOUT="2", QINGLIAN_HTTP_UPLOAD_TIMEOUT="3")


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


def _raw_post(client, path: str, prepared_from: dict) -> tuple[bytes, bytes]:
    """The signed-in ``client``'s POST of ``path`` as bytes: (its line and headers, its
    body), built by requests from ``prepared_from`` (``data=``, ``files=``)."""
    r = requests.Request("POST", client.url + path, cookies=client.s.cookies,
                         **prepared_from).prepare()
    body = r.body if isinstance(r.body, bytes) else r.body.encode()
    head = "POST %s HTTP/1.1\r\nHost: x\r\n" % path + "".join(
        "%s: %s\r\n" % kv for kv in r.headers.items()) + "\r\n"
    return head.encode(), body


def _sent_at_once(node, head: bytes, body: bytes) -> bytes:
    """The same request sent whole: its answer's status line (the positive control)."""
    with socket.create_connection(_address(node), timeout=30) as s:
        s.sendall(head + body)
        return s.recv(65536).split(b"\r\n", 1)[0]


def test_a_form_whose_body_trickles_gets_a_408_and_writes_nothing(node, client_for):
    """Seventy clients - more than the console's 64 workers - send a signed-in 新增单位
    form's headers and then its body one byte a second for 8 s: each gets the Chinese 408
    page at the 2 s deadline for the whole body, the console answers meanwhile, and the
    units' log has not moved; the same request sent whole adds the unit."""
    admin = client_for(node, "admin")
    head, body = _raw_post(admin, "/units/new", {"data": {
        "_csrf": admin.csrf("/account"), "name": "慢速单位", "kind": "section", "level": "section",
        "parent_id": node.ids["a"]}})
    before = node.head("units")

    def meanwhile():
        r = requests.get(node.url + "/login", timeout=15)
        assert r.status_code == 200 and "登录" in r.text
    answers = trickle_body(_address(node), head, body, connections=70, meanwhile=meanwhile)
    assert [a.split(b" ", 2)[1] for a in answers] == [b"408"] * 70
    assert all("请求体未在 2 秒内发送完，未做任何修改" in a.decode() for a in answers)
    assert node.head("units") == before
    assert _sent_at_once(node, head, body).startswith(b"HTTP/1.1 303")
    assert node.head("units") > before


def test_an_upload_whose_body_trickles_gets_a_408_and_stores_nothing(node, client_for):
    """An evidence upload's body trickled one byte a second for 8 s: a Chinese 408 at the
    3 s upload deadline, nothing in supervision's log or the evidence store; sent whole,
    the same upload is stored."""
    rect_id = record_finding(node, node.ids["b"])
    ua = client_for(node, "ua-b")
    path = "/rectifications/%s/evidence" % rect_id
    head, body = _raw_post(ua, path, {"data": {"_csrf": ua.csrf("/rectifications/%s" % rect_id),
                                                 "note": "已整改"},
                                        "files": [("file", ("整改报告.pdf", b"%PDF-1.4 report"))]})
    before = node.head("supervision")
    answers = trickle_body(_address(node), head, body, connections=3)
    assert [a.split(b" ", 2)[1] for a in answers] == [b"408"] * 3
    assert all("请求体未在 3 秒内发送完，未做任何修改" in a.decode() for a in answers)
    assert node.head("supervision") == before and _stored_files(node) == []
    assert _sent_at_once(node, head, body).startswith(b"HTTP/1.1 303")
    assert node.head("supervision") > before and len(_stored_files(node)) == 1


def test_a_body_over_its_limit_gets_a_413_page_and_writes_nothing(node, client_for):
    """A form over QINGLIAN_HTTP_BODY_BYTES (1 MiB) and an upload over one evidence file
    and its form (21 MiB), by their Content-Length: the Chinese 413 page at once, before
    the body is sent, and nothing written."""
    admin = client_for(node, "admin")
    head, _ = _raw_post(admin, "/units/new", {"data": {"_csrf": admin.csrf("/account"),
                                                       "name": "过大的单位"}})
    form = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % (1024 * 1024 + 1), head)
    rect_id = record_finding(node, node.ids["b"])
    ua = client_for(node, "ua-b")
    head, _ = _raw_post(ua, "/rectifications/%s/evidence" % rect_id, {
        "data": {"_csrf": ua.csrf("/rectifications/%s" % rect_id)},
        "files": [("file", ("整改报告.pdf", b"%PDF-1.4 report"))]})
    upload = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % (22 * 1024 * 1024), head)
    before = node.head("units"), node.head("supervision"), _stored_files(node)
    for head, limit in ((form, "1 MB"), (upload, "21 MB")):
        with socket.create_connection(_address(node), timeout=30) as s:
            s.sendall(head)  # and no body
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert "请求体过大（此接口最多 %s），未做任何修改" % limit in answer.decode()
    assert (node.head("units"), node.head("supervision"), _stored_files(node)) == before
