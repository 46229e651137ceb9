"""shared.http's request parse: the header fast path gives what the stdlib gives, and the
route cache answers as nameko's matcher does (docs/benchmarks.md, 4 December)."""
from __future__ import annotations

import http.client
import io

import pytest
from werkzeug.routing import Rule
from werkzeug.test import EnvironBuilder

from shared.http import WsgiApp, parse_headers

BLOCKS = [
    b"Host: a\r\nContent-Length: 5\r\nCookie: ql_session=x; b=c\r\nX-Empty:\r\nX-Sp:   v  \r\n\r\n",
    b"A:\tv\n\n",                                   # bare LF, a tab before the value
    b"A: \xe4\xb8\xad\r\n\r\n",                     # bytes above ASCII, as latin-1
    b"Content-Type: multipart/form-data; boundary=x\r\n\r\n",
    b"\r\n",                                        # no header at all
    b"A: b\r\n",                                    # the connection closed before the blank line
    # not plain: left to the email package, which decides as it always did
    b"Host: a\r\n folded\r\nB: c\r\n\r\n",
    b"NoColon\r\nB: c\r\n\r\n",
    b": empty name\r\n\r\n",
    b"A: b\rc\r\n\r\n",
    b"From someone\r\nA: b\r\n\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_headers_are_what_the_stdlib_parses(block):
    ours, stdlib = parse_headers(io.BytesIO(block)), http.client.parse_headers(io.BytesIO(block))
    assert type(ours) is type(stdlib)
    assert ours.items() == stdlib.items()
    for name in ("host", "a", "b", "content-length", "cookie", "x-sp", "missing"):
        assert ours.get(name) == stdlib.get(name)
    assert ours.get_content_type() == stdlib.get_content_type()
    assert ours.get_boundary() == stdlib.get_boundary()


def test_the_stdlib_limits_still_hold():
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"A: " + b"x" * 70_000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException):
        parse_headers(io.BytesIO(b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n"))


class _Provider:
    def __init__(self, rule, name):
        self.rule, self.name, self.seen = rule, name, []

    def get_url_rule(self):
        return Rule(self.rule, methods=["GET"])

    def handle_request(self, request):
        from werkzeug.wrappers import Response
        self.seen.append(request.path_values)
        return Response(self.name)


class _Server:
    def __init__(self, providers):
        self._providers = providers

    def make_url_map(self):
        from nameko.web.server import WebServer
        return WebServer.make_url_map(self)


def _call(app, method, path):
    out = {}
    body = app(EnvironBuilder(path=path, method=method).get_environ(),
               lambda status, headers: out.setdefault("status", status))
    return out["status"], b"".join(body)


def test_routes_matched_once_answer_as_matched_every_time():
    unit, health = _Provider("/units/<unit_id>", "unit"), _Provider("/health", "health")
    app = WsgiApp(_Server([unit, health]))
    for _ in range(2):
        assert _call(app, "GET", "/units/u1") == ("200 OK", b"unit")
        assert _call(app, "GET", "/units/u2") == ("200 OK", b"unit")
        assert _call(app, "GET", "/health") == ("200 OK", b"health")
        assert _call(app, "GET", "/nowhere")[0] == "404 NOT FOUND"
        assert _call(app, "POST", "/health")[0] == "405 METHOD NOT ALLOWED"
    assert unit.seen == [{"unit_id": "u1"}, {"unit_id": "u2"}] * 2
    unit.seen[0]["unit_id"] = "changed by a handler"  # each request its own values
    assert _call(app, "GET", "/units/u1") == ("200 OK", b"unit") and unit.seen[-1] == {"unit_id": "u1"}
    assert len(app._matched) == 3  # what did not match is not kept
