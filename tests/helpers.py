"""Small clients for end-to-end tests against running services."""
from __future__ import annotations

import json
import time

import requests
from kombu import Connection, Exchange, Queue


class Api:
    """HTTP JSON client for one service: ``post(command, data)``, ``get(query, params)``."""

    def __init__(self, address: str, token: str | None = None):
        host, port = address.rsplit(":", 1)
        self.base = "http://%s:%s" % ("127.0.0.1" if host in ("0.0.0.0", "") else host, port)
        self.token = token
        self.session = requests.Session()

    def _headers(self, token, if_match=None):
        h = {}
        token = self.token if token is ... else token
        if token:
            h["Authorization"] = "Bearer %s" % token
        if if_match is not None:
            h["If-Match"] = str(if_match)
        return h

    def post(self, name, data=None, token=..., if_match=None, raw=None,
             content_type="application/json"):
        headers = self._headers(token, if_match)
        if content_type:
            headers["Content-Type"] = content_type
        r = self.session.post("%s/api/%s" % (self.base, name), headers=headers,
                              data=raw if raw is not None else json.dumps(data or {}), timeout=30)
        return r.status_code, _body(r)

    def get(self, name, params=None, token=...):
        r = self.session.get("%s/api/%s" % (self.base, name), params=params or {},
                             headers=self._headers(token), timeout=30)
        return r.status_code, _body(r)

    def raw_get(self, path):
        return self.session.get(self.base + path, timeout=30)


def _body(r):
    try:
        return r.json()
    except ValueError:
        return r.text


class Capture:
    """Collects every message published to an exchange (a queue bound to '#')."""

    def __init__(self, amqp_uri: str, exchange: str, binding: str = "#"):
        self.conn = Connection(amqp_uri)
        self.exchange = Exchange(exchange, type="topic", durable=True, auto_delete=False)
        self.queue = Queue("capture-%s-%d" % (exchange, id(self)), exchange=self.exchange,
                           routing_key=binding, auto_delete=True, durable=False)
        self.messages: list[dict] = []
        self.routing_keys: list[str] = []
        self._consumer = self.conn.Consumer(self.queue, callbacks=[self._on], accept=["json"])
        self._consumer.consume()

    def _on(self, body, message):
        self.messages.append(body)
        self.routing_keys.append(message.delivery_info["routing_key"])
        message.ack()

    def drain(self, until=lambda msgs: False, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.conn.drain_events(timeout=0.2)
            except Exception:  # noqa: BLE001 - socket.timeout: nothing yet
                pass
            if until(self.messages):
                break
        return self.messages

    def close(self):
        try:
            self._consumer.cancel()
        except Exception:  # noqa: BLE001 - the broker may have restarted under us
            pass
        finally:
            self.conn.release()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %.1fs" % timeout)
