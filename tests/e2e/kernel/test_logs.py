"""Logs an operator can use: JSON lines, one correlation id from the HTTP request (or an
RPC caller) through the events, the relay and the consumers, and no deprecation noise
in `qinglian run` / `nameko run` output."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue
from marshmallow import Schema
from nameko.events import event_handler
from nameko.rpc import RpcProxy
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port
from nameko.web.handlers import http

from services.units.service import UnitsService
from shared.app import Application
from shared.logs import QUIET_WARNINGS, JsonFormatter
from shared.service import CorrelationContext, EventSourcing, NodeService, idempotent
from tests.harness import wait_for

REPO = Path(__file__).resolve().parents[3]
log = logging.getLogger("tests.e2e.kernel.test_logs")


class Nothing(Schema):
    pass


listener = Application("listener")


@listener.query("noop", Nothing)
def noop(conn, params, actor):
    return {}


class ListenerService(NodeService):
    """Logs each unit it hears about, under whatever correlation id it is handling."""
    name = "listener"
    app = listener

    @event_handler("units", "Unit.Registered")
    @idempotent
    def on_unit(self, event, uow):
        log.info("heard of unit %s", event.payload["unit_id"])


def _unit(uid: str, parent=None) -> dict:
    return {"unit_id": uid, "name": "单位" + uid, "kind": "district_authority" if parent is None
            else "window_unit", "level": "district" if parent is None else "unit",
            "parent_id": parent}


def _stored_correlation(container, unit_id: str) -> str:
    from nameko.testing.utils import get_extension
    rt = get_extension(container, EventSourcing).runtime
    with rt.read() as conn:
        for ev in rt.store.iter_all(conn):
            if ev.payload.get("unit_id") == unit_id:
                return ev.metadata.get("correlation_id")
    raise AssertionError("no event for %s" % unit_id)


def test_one_correlation_id_from_http_and_rpc_through_events_relay_and_consumers(
        container_factory, node_config, admin_token, caplog):
    caplog.set_level(logging.INFO, logger="tests.e2e.kernel.test_logs")
    units = container_factory(UnitsService, node_config)
    units.start()
    container_factory(ListenerService, dict(
        node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())).start()
    # what the relay puts on the wire: a queue of our own on units.events
    wire = []
    conn = Connection(node_config["AMQP_URI"])
    queue = Queue("h3-wire-%d" % os.getpid(), Exchange("units.events", type="topic", durable=True),
                  routing_key="#", auto_delete=True)
    consumer = conn.Consumer(queue, callbacks=[lambda body, m: (wire.append(
        (body["payload"].get("unit_id"), m.properties.get("correlation_id"))), m.ack())],
        accept=["json"])
    consumer.consume()
    base = "http://%s" % node_config["WEB_SERVER_ADDRESS"]
    try:
        r = requests.post(base + "/api/register_unit", json=_unit("qu"), timeout=30, headers={
            "Authorization": "Bearer %s" % admin_token, "X-Correlation-Id": "req-http-1"})
        assert r.status_code == 201, r.text
        assert r.headers["X-Correlation-Id"] == "req-http-1"
        # an id that is not well-formed is replaced, not logged as given
        bad = requests.post(base + "/api/register_unit", json=_unit("xj", "qu"), timeout=30,
                            headers={"Authorization": "Bearer %s" % admin_token,
                                     "X-Correlation-Id": "a b;c<script>"})
        assert bad.status_code == 201 and re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Correlation-Id"])
        with ClusterRpcProxy(node_config, context_data={"correlation_id": "req-rpc-1"}) as n:
            n.units.register_unit(_unit("yj", "qu"), actor={"token": admin_token})

        assert _stored_correlation(units, "qu") == "req-http-1"
        assert _stored_correlation(units, "xj") == bad.headers["X-Correlation-Id"]
        assert _stored_correlation(units, "yj") == "req-rpc-1"

        def drained():
            try:
                conn.drain_events(timeout=0.2)
            except Exception:  # noqa: BLE001 - socket.timeout: nothing yet
                pass
            return len(wire) >= 3
        wait_for(drained, timeout=20)
        assert dict(wire) == {"qu": "req-http-1", "xj": bad.headers["X-Correlation-Id"],
                              "yj": "req-rpc-1"}

        def heard():
            return {r.getMessage().split()[-1]: (r.correlation_id, r.service, r.task)
                    for r in caplog.records if r.getMessage().startswith("heard of unit")}
        wait_for(lambda: len(heard()) == 3, timeout=20)
        assert heard() == {"qu": ("req-http-1", "listener", "on_unit"),
                           "xj": (bad.headers["X-Correlation-Id"], "listener", "on_unit"),
                           "yj": ("req-rpc-1", "listener", "on_unit")}
    finally:
        consumer.cancel()
        conn.release()


def test_json_lines_carry_the_context_and_keep_chinese_readable():
    fmt = JsonFormatter()
    record = logging.getLogger("qinglian.test").makeRecord(
        "qinglian.test", logging.WARNING, __file__, 1, "单位 %s 未找到", ("xj",), None)
    record.correlation_id, record.service = "req-1", "units"
    line = fmt.format(record)
    assert "\n" not in line and "单位 xj 未找到" in line
    body = json.loads(line)
    assert {k: body[k] for k in ("level", "logger", "message", "correlation_id", "service")} == {
        "level": "WARNING", "logger": "qinglian.test", "message": "单位 xj 未找到",
        "correlation_id": "req-1", "service": "units"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", body["time"])
    try:
        raise ValueError("坏了")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                                   sys.exc_info())
    assert "ValueError: 坏了" in json.loads(fmt.format(record))["exc_info"]


class ActionService:
    """Like the console: nameko's own @http, no EventSourcing, RPC calls to the services."""
    name = "actions"
    units = RpcProxy("units")
    correlation = CorrelationContext()

    @http("POST", "/register/<string:uid>")
    def register(self, request, uid):
        token = request.headers["Authorization"].split()[1]
        self.units.register_unit(_unit(uid), actor={"token": token})
        return "ok"


def test_a_console_like_action_passes_its_correlation_id_to_the_services_it_calls(
        container_factory, node_config, admin_token):
    units = container_factory(UnitsService, node_config)
    units.start()
    port = find_free_port()
    container_factory(ActionService, dict(node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % port)).start()
    r = requests.post("http://127.0.0.1:%d/register/qu" % port, timeout=30, headers={
        "Authorization": "Bearer %s" % admin_token, "X-Request-Id": "req-console-1"})
    assert r.status_code == 200, r.text
    assert _stored_correlation(units, "qu") == "req-console-1"


def _run_until_answering(cmd, env, port, tmp_path, then=lambda: None) -> str:
    """Start ``cmd``, make one request once it answers (and ``then()``), stop it; its
    whole output."""
    out = (tmp_path / "out.txt").open("w+")
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        def answering():
            try:
                return requests.get("http://127.0.0.1:%d/metrics" % port, timeout=2).ok
            except requests.RequestException:
                return False
        wait_for(answering, timeout=60, step=0.3)
        r = requests.get("http://127.0.0.1:%d/api/list_units" % port,
                         headers={"X-Correlation-Id": "req-run-1"}, timeout=10)
        assert r.headers["X-Correlation-Id"] == "req-run-1"
        then()
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    out.seek(0)
    return out.read()


def _node_env(vhost, tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(NODE_ID="district-logs", QINGLIAN_VAR=str(tmp_path / "var"),
               AMQP_URI=vhost["uri"], **extra)
    return env


def _assert_quiet_json(output: str, allowed_plain: tuple[str, ...]) -> list[dict]:
    assert not re.search(r"warning:|deprecat", output, re.I), output
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
        else:
            assert line.startswith(allowed_plain), "not a JSON log line: %r" % line
    return lines


def test_qinglian_run_prints_json_logs_and_no_deprecation_notices(vhost, tmp_path):
    port = find_free_port()
    output = _run_until_answering(
        [str(REPO / ".venv" / "bin" / "qinglian"), "run", "--services", "units",
         "--base-port", str(port)], _node_env(vhost, tmp_path), port, tmp_path)
    lines = _assert_quiet_json(output, ("units ", "node district-logs running"))
    access = [x for x in lines if "GET /api/list_units" in x["message"]]
    assert access and access[0]["correlation_id"] == "req-run-1"
    assert {x["service"] for x in lines if x["logger"] == "kombu.mixins"} == {"units"}


def test_bare_nameko_run_with_the_images_environment_is_quiet_too(vhost, tmp_path):
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert 'PYTHONWARNINGS="%s"' % QUIET_WARNINGS in dockerfile
    port = find_free_port()

    def refused_rpc():  # a typed error for the caller: not a traceback in the log
        from shared.errors import Unauthenticated
        with ClusterRpcProxy({"AMQP_URI": vhost["uri"]}, timeout=30) as n:
            try:
                n.units.get_unit({"unit_id": "qu"}, actor={"user_id": "x", "roles": ["node-admin"]})
            except Unauthenticated:
                pass
            else:
                raise AssertionError("a bare dict of roles was accepted")
    output = _run_until_answering(
        [str(REPO / ".venv" / "bin" / "nameko"), "run", "--config", "deploy/config.yaml",
         "services.units.service:UnitsService"],
        _node_env(vhost, tmp_path, PYTHONWARNINGS=QUIET_WARNINGS,
                  WEB_SERVER_ADDRESS="127.0.0.1:%d" % port), port, tmp_path, refused_rpc)
    lines = _assert_quiet_json(output, ())
    assert any(x["message"].startswith("starting services: units") for x in lines)
    expected = [x for x in lines if x["message"].startswith("(expected) error handling worker")]
    assert expected and all(x["level"] == "INFO" and "exc_info" not in x for x in expected)
    assert "Traceback" not in output
