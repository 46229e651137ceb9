"""The shared HTTP request path (shared.http) against a running UnitsService: bad input
is a 4xx with a Chinese message and writes nothing, slow or oversized clients cannot
freeze the service, infrastructure failures are clean counted 503s, and readiness is
apart from liveness. Real nameko container, real broker vhost, real PostgreSQL."""
from __future__ import annotations

import json
import re
import socket
import time

import eventlet
import pytest
import requests
from nameko.testing.utils import get_extension
from sqlalchemy import create_engine, text

from services.units.service import UnitsService
from shared.service import EventSourcing
from tests.fixtures import PG_SERVER, RABBIT_API
from tests.harness import Api, wait_for
from tests.harness.slow_clients import (
    keep_alive_get, no_delay, sent_after_idling, trickle_body, trickle_headers,
)

ROOT = {"unit_id": "qu", "name": "某区区直机关工委", "kind": "district_authority",
        "level": "district", "parent_id": None}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def node(container_factory, node_config, admin_token):
    node_config["QINGLIAN_HTTP_TIMEOUT"] = "2"  # the body deadline, short for the test
    container = container_factory(UnitsService, node_config)
    container.start()
    api = Api(node_config["WEB_SERVER_ADDRESS"], admin_token)
    assert api.post("register_unit", ROOT)[0] == 201

    class Node:
        config = node_config
        token = admin_token

        def head(self):  # the log itself, read beside the service
            runtime = get_extension(container, EventSourcing).runtime
            with runtime.read() as conn:
                return runtime.store.head(conn)
    Node.api = api
    Node.container = container
    host, port = node_config["WEB_SERVER_ADDRESS"].rsplit(":", 1)
    Node.address = ("127.0.0.1", int(port))
    yield Node()


def _guest_permissions(vhost: str, grant: bool) -> None:
    url = "%s/permissions/%s/guest" % (RABBIT_API, vhost)
    if grant:
        r = requests.put(url, auth=("guest", "guest"), timeout=10,
                         json={"configure": ".*", "write": ".*", "read": ".*"})
    else:
        r = requests.delete(url, auth=("guest", "guest"), timeout=10)
    r.raise_for_status()


def refused(node, status, body, code=None):
    """A refusal: the status, a Chinese message, and nothing appended."""
    assert body["error"] == (code or body["error"]) and body["error"], body
    assert CHINESE.search(body["message"]), body
    return status


def _response_head(s: socket.socket) -> bytes:
    """What the server sent up to the end of its headers (b"" if it closed first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _raw(address, head: bytes, body: bytes = b"", timeout: float = 10.0) -> tuple[int, bytes]:
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(head + body)
        data = _response_head(s)
    return int(data.split(b" ", 2)[1]), data


# -- E15-E20: bad input is a 400/415 and writes nothing -------------------------------------
@pytest.mark.parametrize("value", ["²", "١", "1.5", "-1", "abc", "9" * 40, "W/\"x\""])
def test_if_match_that_is_not_an_ascii_version_is_400(node, value):
    before = node.head()
    r = requests.post(node.api.base + "/api/rename_unit", data=json.dumps({"unit_id": "qu", "name": "新名"}),
                      headers={"Authorization": "Bearer %s" % node.token, "Content-Type": "application/json",
                               "If-Match": value.encode("utf-8")}, timeout=10)  # as sent on the wire
    status, body = r.status_code, r.json()
    assert status == 400 and "If-Match" in body["fields"], body
    assert refused(node, status, body, "bad_input") and node.head() == before


def test_if_match_weak_and_quoted_forms_are_versions(node):
    assert node.api.post("rename_unit", {"unit_id": "qu", "name": "新名"}, if_match='"1"')[0] == 200
    assert node.api.post("rename_unit", {"unit_id": "qu", "name": "新名二"}, if_match='W/"2"')[0] == 200


@pytest.mark.parametrize("depth", [20, 1000, 10000])
def test_deeply_nested_json_is_400(node, depth):
    before = node.head()
    raw = '{"unit_id": "x", "name": "n", "kind": "section", "level": "section", "parent_id": "qu", ' \
          '"extra": %s}' % ("[" * depth + "]" * depth)
    status, body = node.api.post("register_unit", raw=raw)
    assert status == 400 and refused(node, status, body) and node.head() == before


@pytest.mark.parametrize("name", ["a\ud800b", "a\x00b", "办公\u202e室", "a\x07b", "a\u2066b\u2069",
                                  "two\nlines", "tab\there"])
def test_forbidden_characters_in_text_are_400(node, name):
    before = node.head()
    raw = json.dumps({"unit_id": "x1", "name": name, "kind": "section", "level": "section",
                      "parent_id": "qu"})  # ensure_ascii: "\ud800" travels as an escape
    status, body = node.api.post("register_unit", raw=raw)
    assert status == 400, body
    assert refused(node, status, body) and node.head() == before
    assert "name" in body["fields"]


def test_forbidden_characters_in_keys_and_query_strings(node):
    before = node.head()
    status, body = node.api.post("register_unit", raw='{"\\ud800": 1, "unit_id": "x"}')
    assert status == 400 and refused(node, status, body) and node.head() == before
    status, body = node.api.get("get_unit", {"unit_id": "qu\x00"})
    assert status == 400 and refused(node, status, body)


@pytest.mark.parametrize("field,value", [
    ("unit_id", "nl-unit\n"), ("unit_id", "unit-١"), ("effective_on", "2026-02-30"),
    ("effective_on", "0000-01-01"), ("effective_on", "٢٠٢٦-01-01"), ("effective_on", "20260101"),
])
def test_patterns_match_whole_ascii_values_and_dates_are_real(node, field, value):
    assert node.api.post("register_person", {"person_id": "p1", "name": "张三", "unit_id": "qu",
                                             "post": "科员"})[0] == 201
    before = node.head()
    data = {"person_id": "p1", "new_post": "副科长", "unit_id": "qu", "effective_on": "2026-11-01"}
    data[field] = value
    status, body = node.api.post("promote_person", data)
    assert status == 400 and field in body["fields"], body
    assert CHINESE.search(body["fields"][field][0]) and node.head() == before


@pytest.mark.parametrize("params", [
    {"position": "0"}, {"position": str(2 ** 64)}, {"position": "-1"},
    {"at": "0001-01-01T00:00:00+14:00"}, {"at": "9999-12-31T23:59:59-12:00"},
    {"at": "2026-02-30T00:00:00+08:00"}, {"at": "2026-01-01T00:00:00+25:00"},
])
def test_unit_tree_as_of_refuses_impossible_positions_and_times(node, params):
    status, body = node.api.get("unit_tree_as_of", {"unit_id": "qu", **params})
    assert status == 400 and refused(node, status, body), body


def test_period_with_non_ascii_digits_is_400(node):
    before = node.head()
    status, body = node.api.post("issue_letter", {
        "period": "٢٠٢٦-11", "issuer_unit_id": "qu", "target_unit_id": "qu",
        "signatory_role": "party_secretary", "content": "责任书"})
    assert status == 400 and "period" in body["fields"] and node.head() == before


def test_big_integers_anywhere_are_400(node):
    before = node.head()
    status, body = node.api.post("register_unit", raw=json.dumps({**ROOT, "unit_id": "big",
                                                                  "extra": 2 ** 70}))
    assert status == 400 and refused(node, status, body) and node.head() == before


@pytest.mark.parametrize("content_type,data", [
    ("text/plain", json.dumps({**ROOT, "unit_id": "t1"})),
    ("application/x-www-form-urlencoded", "unit_id=t2&name=x"),
    ("application/xml", "<unit><unit_id>t3</unit_id></unit>"),
    ("application/json; charset=latin-1", json.dumps({**ROOT, "unit_id": "t4"})),
    (None, json.dumps({**ROOT, "unit_id": "t5"})),
])
def test_anything_but_json_is_415(node, content_type, data):
    before = node.head()
    status, body = node.api.post("register_unit", raw=data, content_type=content_type)
    assert status == 415 and refused(node, status, body, "unsupported_media_type")
    assert node.head() == before


# -- E21: the token before the body, a size limit, a deadline, workers kept free -----------
def test_an_unauthenticated_body_is_refused_before_it_is_read(node):
    head = (b"POST /api/register_unit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n")
    status, _ = _raw(node.address, head)  # no body sent at all: the answer comes anyway
    assert status == 401


def test_an_oversized_body_is_refused_before_it_is_read(node):
    head = ("POST /api/register_unit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: 50000000\r\n\r\n" % node.token).encode()
    status, data = _raw(node.address, head)
    assert status == 413 and b"Connection: close" in data


def test_a_big_body_actually_sent_is_refused(node):
    before = node.head()
    big = json.dumps({**ROOT, "unit_id": "big", "name": "x" * (2 * 1024 * 1024)})
    r = requests.post(node.api.base + "/api/register_unit", data=big, timeout=30,
                      headers={"Authorization": "Bearer %s" % node.token,
                               "Content-Type": "application/json"})
    assert r.status_code == 413 and node.head() == before
    # chunked, so no Content-Length to refuse up front: counted while read
    r = requests.post(node.api.base + "/api/register_unit", timeout=30,
                      data=(big[i:i + 65536].encode() for i in range(0, len(big), 65536)),
                      headers={"Authorization": "Bearer %s" % node.token,
                               "Content-Type": "application/json"})
    assert r.status_code == 413 and node.head() == before


def test_slow_clients_hold_no_worker_and_time_out(node):
    """Thirty clients (three times nameko's 10 workers) send their headers, a token and
    one byte of a 1,000-byte body, then stall: the service keeps answering queries, and
    each slow client gets a 408 once the body deadline (2 s here) passes."""
    head = ("POST /api/register_unit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{" % node.token).encode()
    slow = []
    for _ in range(30):
        s = socket.create_connection(node.address, timeout=30)
        s.sendall(head)
        slow.append(s)
    try:
        for _ in range(5):  # while every slow client is stalled
            status, body = node.api.get("get_unit", {"unit_id": "qu"})
            assert status == 200 and body["unit_id"] == "qu"
            assert node.api.raw_get("/health/live").status_code == 200
        answers = [(_response_head(s).split(b" ", 2) + [b""])[1] for s in slow]
        assert answers == [b"408"] * 30
    finally:
        for s in slow:
            s.close()


# -- B9: infrastructure failures are 503s, counted, with details in the log only ----------
@pytest.fixture
def pg_node(container_factory, node_config, pg_url, make_user):
    node_config["NODE_DATABASE_URL"] = pg_url
    tokens = [make_user("admin%d" % i, ["node-admin"]) for i in range(3)]
    container = container_factory(UnitsService, node_config)
    container.start()
    api = Api(node_config["WEB_SERVER_ADDRESS"], tokens[0])
    assert api.post("register_unit", ROOT)[0] == 201  # the pool now holds a connection
    yield api, tokens, pg_url


def _cut_off(pg_url: str, allow: bool) -> None:
    """Terminate every session on the node database and refuse (or allow) new ones."""
    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text('ALTER DATABASE "%s" ALLOW_CONNECTIONS %s' % (name, "true" if allow else "false")))
        if not allow:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
    admin.dispose()


def test_a_dead_database_in_authenticate_is_a_clean_counted_503(pg_node, caplog):
    api, tokens, pg_url = pg_node
    _cut_off(pg_url, allow=False)
    try:
        for token in tokens[1:]:  # not cached yet: authenticate must ask the database
            status, body = api.post("register_unit", {**ROOT, "unit_id": "later"}, token=token)
            assert status == 503 and body["error"] == "unavailable", body
            assert CHINESE.search(body["message"])
            assert not re.search(r"psycopg|Operational|terminat|server|SQL", json.dumps(body),
                                 re.IGNORECASE), body
        metrics = api.raw_get("/metrics").text
        assert re.search(r'qinglian_infrastructure_errors_total\{dependency="database",'
                         r'service="units"\} 2\.0', metrics), metrics
        assert any("database failure" in r.getMessage() for r in caplog.records)
        ready = api.raw_get("/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["node_database"]["ok"] is False
        assert api.raw_get("/health/live").status_code == 200
    finally:
        _cut_off(pg_url, allow=True)
    wait_for(lambda: api.raw_get("/health/ready").status_code == 200, timeout=10)
    assert api.post("register_unit", {**ROOT, "unit_id": "later"}, token=tokens[1])[0] == 201


# -- B10: readiness apart from liveness ------------------------------------------------------
def test_readiness_reports_the_broker_and_liveness_does_not(node, vhost):
    ready = node.api.raw_get("/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert set(ready.json()["checks"]) == {"database", "node_database", "broker", "relay"}
    assert node.api.raw_get("/health").status_code == 200
    # the node's broker refuses this node (its permissions withdrawn): not ready, but alive
    _guest_permissions(vhost["name"], grant=False)
    try:
        def not_ready():
            r = node.api.raw_get("/health/ready")
            return r.status_code == 503 and r.json()  # (a 503 Response is falsy)
        assert wait_for(not_ready, timeout=10)["checks"]["broker"]["ok"] is False
        assert node.api.raw_get("/health").status_code == 503
        assert node.api.raw_get("/health/live").json()["live"] is True
    finally:
        _guest_permissions(vhost["name"], grant=True)
    wait_for(lambda: node.api.raw_get("/health/ready").status_code == 200, timeout=15)


def test_liveness_answers_without_a_worker(node):
    """Every worker busy (a sleeping green thread holds each): /health/live still answers."""
    pool = node.container._worker_pool
    holders = [pool.spawn(eventlet.sleep, 3) for _ in range(pool.free())]
    try:
        assert pool.free() == 0
        assert requests.get(node.api.base + "/health/live", timeout=2).status_code == 200
    finally:
        for g in holders:
            g.kill()
    time.sleep(0)


# -- E22: every list is a page; as-of views are built once ---------------------------------
def _tree(node, n):
    for i in range(n):
        assert node.api.post("register_unit", {"unit_id": "s%02d" % i, "name": "单位%02d" % i,
                                               "kind": "section", "level": "section",
                                               "parent_id": "qu"})[0] == 201


def _all_pages(api, query, params, key):
    items, cursor, pages = [], None, 0
    while True:
        status, body = api.get(query, {**params, **({"cursor": cursor} if cursor else {})})
        assert status == 200, body
        items += body[key]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return items, pages, body


def test_list_units_and_the_tree_as_of_are_paged(node):
    _tree(node, 7)
    whole = node.api.get("list_units", {"unit_id": "qu"})[1]
    assert len(whole["units"]) == 8 and whole["next"] is None
    units, pages, _ = _all_pages(node.api, "list_units", {"unit_id": "qu", "limit": 3}, "units")
    assert pages == 3 and [u["unit_id"] for u in units] == [u["unit_id"] for u in whole["units"]]
    position = node.head()
    node.api.post("register_unit", {"unit_id": "late", "name": "后来", "kind": "section",
                                    "level": "section", "parent_id": "qu"})
    units, pages, _ = _all_pages(node.api, "unit_tree_as_of",
                                 {"unit_id": "qu", "position": position, "limit": 5}, "units")
    assert pages == 2 and len(units) == 8 and "late" not in {u["unit_id"] for u in units}
    assert node.api.get("list_units", {"unit_id": "qu", "limit": 0})[0] == 400
    assert node.api.get("list_units", {"unit_id": "qu", "limit": 5000})[0] == 400
    status, body = node.api.get("list_units", {"unit_id": "qu", "cursor": "!!not-a-cursor"})
    assert status == 400 and "cursor" in body["fields"]


def test_an_as_of_view_is_built_once_per_position(node):
    from shared import projections
    _tree(node, 3)
    position = node.head()
    before = dict(projections._AS_OF_VIEWS)
    first = node.api.get("unit_tree_as_of", {"unit_id": "qu", "position": position})[1]
    built = [k for k in projections._AS_OF_VIEWS if k not in before]
    assert len(built) == 1 and built[0][2] == position
    engine = projections._AS_OF_VIEWS[built[0]]
    again = node.api.get("unit_tree_as_of", {"unit_id": "qu", "position": position, "limit": 2})[1]
    assert projections._AS_OF_VIEWS[built[0]] is engine  # served from the kept build
    assert again["units"] == first["units"][:2]
    # a position beyond the head is the head: never kept under a position not yet written
    node.api.get("unit_tree_as_of", {"unit_id": "qu", "position": position + 1000})
    assert all(k[2] <= node.head() for k in projections._AS_OF_VIEWS if k[0] == built[0][0])


def test_letter_coverage_counts_the_whole_subtree_and_pages_the_unsigned(node):
    _tree(node, 5)
    for i in range(5):
        assert node.api.post("issue_letter", {"period": "2026", "issuer_unit_id": "qu",
                                              "target_unit_id": "s%02d" % i,
                                              "signatory_role": "party_secretary",
                                              "content": "责任书"})[0] == 201
    assert node.api.post("sign_letter", {"period": "2026", "target_unit_id": "s01",
                                         "signed_on": "2026-02-01",
                                         "signatory_role": "party_secretary"})[0] == 200
    unsigned, pages, last = _all_pages(node.api, "letter_coverage",
                                       {"unit_id": "qu", "period": "2026", "limit": 2}, "unsigned")
    assert (last["total"], last["signed"], pages) == (5, 1, 2)
    assert [u["unit_id"] for u in unsigned] == ["s00", "s02", "s03", "s04"]
    assert last["by_kind"] == {"section": {"total": 5, "signed": 1}}


def test_supervision_unit_view_pages_its_rows_and_keeps_the_whole_figures(
        container_factory, node_config, admin_token):
    from nameko.testing.utils import find_free_port

    from services.supervision.service import SupervisionService
    # supervision first: its mirror of the units follows units' events from then on
    config = dict(node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
    container_factory(SupervisionService, config).start()
    container_factory(UnitsService, node_config).start()
    units = Api(node_config["WEB_SERVER_ADDRESS"], admin_token)
    assert units.post("register_unit", ROOT)[0] == 201
    for i in range(4):
        assert units.post("register_unit", {"unit_id": "s%02d" % i, "name": "单位%02d" % i,
                                            "kind": "section", "level": "section",
                                            "parent_id": "qu"})[0] == 201
    api = Api(config["WEB_SERVER_ADDRESS"], admin_token)

    def mirrored():  # supervision's mirror of the units has all five
        status, body = api.get("unit_view", {"unit_id": "qu"})
        return status == 200 and len(body["units"]) == 5 and body
    whole = wait_for(mirrored, timeout=20)
    rows, pages, last = _all_pages(api, "unit_view", {"unit_id": "qu", "limit": 2}, "units")
    assert pages == 3 and [r["unit_id"] for r in rows] == [r["unit_id"] for r in whole["units"]]
    assert last["subtree"] == whole["subtree"] and last["below"] == whole["below"]


def test_clients_that_trickle_their_headers_are_closed(node):
    """Thirty connections send half a request and then one byte a second - never idle
    long enough for the 2 s socket timeout - for 8 s: each is closed at the 2 s deadline
    for its headers, and meanwhile the service answers."""
    def meanwhile():
        assert node.api.get("get_unit", {"unit_id": "qu"})[0] == 200
    assert trickle_headers(node.address, "/api/register_unit", meanwhile=meanwhile) == ["closed"] * 30


def test_clients_that_trickle_their_body_get_a_408_and_write_nothing(node):
    """Ten clients send a command's headers and then its body one byte a second - never
    idle for the 2 s socket timeout - for 8 s: each gets a Chinese 408 at the 2 s deadline
    for the whole body, the service answers meanwhile, and the log has not moved."""
    before = node.head()
    body = json.dumps({**ROOT, "unit_id": "slow", "name": "慢速单位"}).encode()
    head = ("POST /api/register_unit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (node.token, len(body))).encode()

    def meanwhile():
        assert node.api.get("get_unit", {"unit_id": "qu"})[0] == 200
    answers = trickle_body(node.address, head, body, meanwhile=meanwhile)
    assert [a.split(b" ", 2)[1] for a in answers] == [b"408"] * 10
    assert all("请求体未在 2 秒内发送完" in a.decode() for a in answers)
    assert node.head() == before and node.api.get("get_unit", {"unit_id": "slow"})[0] == 404


def test_an_idle_keep_alive_connection_is_closed(node):
    """A connection that had its answer and then sends nothing is closed by the server
    (after the 2 s timeout; the client would wait 30)."""
    s, head = keep_alive_get(node.address, "/health/live")
    with s:
        assert head.startswith(b"HTTP/1.1 200")
        assert sent_after_idling(s) == b""


def test_answers_leave_without_nagle(node):
    """The server's end of a connection has TCP_NODELAY: an answer over eventlet's 16 KB
    write buffer does not wait for the client's delayed ACK (shared.http.Protocol)."""
    s, head = keep_alive_get(node.address, "/health/live")
    with s:
        assert head.startswith(b"HTTP/1.1 200") and no_delay(s)


def test_on_postgresql_nul_and_big_integers_are_400s_too(container_factory, node_config,
                                                          admin_token, pg_url):
    """PostgreSQL refuses NUL in text and SQLite integers beyond 64 bits: both are caught
    before either database sees them."""
    node_config["UNITS_DATABASE_URL"] = pg_url
    container = container_factory(UnitsService, node_config)
    container.start()
    api = Api(node_config["WEB_SERVER_ADDRESS"], admin_token)
    assert api.post("register_unit", ROOT)[0] == 201
    runtime = get_extension(container, EventSourcing).runtime
    with runtime.read() as conn:
        before = runtime.store.head(conn)
    for status, body in (
            api.post("register_unit", {**ROOT, "unit_id": "nul", "name": "a\x00b"}),
            api.post("rename_unit", {"unit_id": "qu", "name": "名\u202e"}),
            api.get("history", {"stream": "Unit", "id": "qu\x00"}),
            api.get("unit_tree_as_of", {"unit_id": "qu", "position": str(2 ** 64)})):
        assert status == 400 and CHINESE.search(body["message"]), body
    with runtime.read() as conn:
        assert runtime.store.head(conn) == before
