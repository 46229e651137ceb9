"""nameko glue: the one place where the kernel meets nameko.

* ``EventSourcing`` - a DependencyProvider. ``setup()`` does the I/O once per
  container (engine, schema, projection catch-up, user directory); ``start()`` runs the
  outbox relay as a managed thread; each worker gets a small ``ServiceApi``.
* ``NodeService`` - the base of every service class. From the service's
  ``Application`` it derives one RPC method per command and query, the HTTP routes
  ``POST /api/<command>`` and ``GET /api/<query>``, ``/health`` and ``/metrics``.
  A service class is then only its name, its application and its event handlers.
* ``idempotent`` - wraps an ``@event_handler`` so each event is handled once.

Why commits happen inside the entrypoint and not in ``worker_result``: nameko sends
the RPC reply / HTTP response *before* calling ``worker_result``, so committing there
would tell the caller "done" before the data is durable (and hide a failed commit).
``Application.execute`` commits inside the worker, before the result is returned; a
worker that raises has its transaction rolled back by the same context manager.
"""
from __future__ import annotations

import functools
import json
import logging
import threading

from nameko.exceptions import deserialize_to_instance
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared import config
from shared.app import Application
from shared.auth import Actor, UserDirectory, system_actor
from shared.db import make_engine
from shared.errors import ALL_ERRORS, BadInput, QinglianError
from shared.events import StoredEvent
from shared.metrics import ServiceMetrics
from shared.projections import prepare
from shared.relay import Relay
from shared.uow import Runtime

log = logging.getLogger(__name__)

for _exc in ALL_ERRORS:  # typed errors survive the RPC round trip
    deserialize_to_instance(_exc)

class ServiceApi:
    """What a worker sees as ``self.store``."""

    def __init__(self, provider: "EventSourcing", worker_ctx):
        self._p = provider
        self._ctx = worker_ctx
        self.runtime: Runtime = provider.runtime
        self.app: Application = provider.app
        self.metrics: ServiceMetrics = provider.metrics
        self.users: UserDirectory = provider.users
        self.node_id: str = provider.runtime.node_id

    @property
    def correlation_id(self) -> str | None:
        return self._ctx.data.get("correlation_id") or self._ctx.call_id

    def execute(self, name: str, data, actor: Actor | None, expected_version: int | None = None):
        with self.metrics.command(name):
            return self.app.execute(self.runtime, name, data, actor, self.correlation_id,
                                    expected_version=expected_version)

    def query(self, name: str, params, actor: Actor | None):
        with self.metrics.command(name):
            return self.app.run_query(self.runtime, name, params, actor)

    def unit_of_work(self, actor: Actor | None = None, causation_id: str | None = None,
                     correlation_id: str | None = None):
        return self.runtime.unit_of_work(actor or system_actor(self.node_id),
                                         correlation_id or self.correlation_id, causation_id)

    def read(self):
        return self.runtime.read()

    def authenticate(self, token: str | None) -> Actor:
        return self.users.authenticate(token)

    def rpc_actor(self, proof) -> Actor | None:
        """An RPC caller's actor from its proof ``{"token": ...}`` (see shared.auth)."""
        return self.users.authenticate_rpc(proof)

    def system_actor(self) -> Actor:
        return system_actor(self.node_id, "system:%s" % self.app.service)


class EventSourcing(DependencyProvider):
    def setup(self):
        cfg = self.container.config
        self.app: Application = self.container.service_cls.app
        service = self.container.service_name
        # one registry per container: two containers in one process must not collide
        self.metrics = ServiceMetrics(service)
        self.engine = make_engine(config.database_url(service, cfg))
        self.runtime = Runtime(self.engine, self.app.projections, config.node_id(cfg), service)
        self.runtime.create_schema()
        prepare(self.runtime.store, self.runtime.projections, self.runtime.inline_checkpoint)
        self.users = UserDirectory(make_engine(config.node_database_url(cfg)), config.node_id(cfg),
                                   config.token_days(cfg))
        self.users.create_schema()
        self._stopping = False
        self._wake = threading.Event()
        self.runtime.after_commit.append(self.metrics.events_appended)
        self.runtime.after_commit.append(lambda _events: self._wake.set())
        self.relay = None
        if str(cfg.get("QINGLIAN_RELAY", "on")).lower() not in ("off", "0", "false"):
            self.relay = Relay(self.runtime.store, config.amqp_uri(cfg), service,
                               on_published=self.metrics.relay_progress)

    def start(self):
        if self.relay is not None:
            self.container.spawn_managed_thread(self._run_relay, identifier="relay")

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _run_relay(self):
        self.relay.run(lambda: self._stopping, self._wait)

    def stop(self):
        self._stopping = True
        self._wake.set()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx) -> ServiceApi:
        return ServiceApi(self, worker_ctx)


# -- HTTP helpers ---------------------------------------------------------------------
def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json")


def error_response(exc: QinglianError) -> Response:
    return json_response(exc.to_dict(), exc.status)


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _request_json(request):
    if not request.get_data():
        return {}
    try:
        return json.loads(request.get_data(as_text=True))
    except ValueError as exc:
        raise BadInput("request body is not valid JSON", {"_schema": [str(exc)]}) from exc


def _if_match(request) -> int | None:
    value = request.headers.get("If-Match")
    if value is None:
        return None
    value = value.strip().strip('"')
    if not value.isdigit():
        raise BadInput("If-Match must be the record's version number", {"If-Match": ["an integer"]})
    return int(value)


def _rpc_operation(name: str, kind: str):
    if kind == "command":
        def method(self, data=None, actor=None, expected_version=None):
            return self.store.execute(name, data, self.store.rpc_actor(actor), expected_version)
    else:
        def method(self, params=None, actor=None):
            return self.store.query(name, params, self.store.rpc_actor(actor))
    method.__name__ = name
    method.__doc__ = "RPC for the %s %s (see docs/API.md)." % (kind, name)
    return rpc(expected_exceptions=QinglianError)(method)


class NodeService:
    """Base class of every Qinglian service (set ``name`` and ``app``)."""

    name: str = ""
    app: Application
    store = EventSourcing()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        app = cls.__dict__.get("app")
        if app is None:
            return
        for op_name, op in app.operations.items():
            if op_name not in cls.__dict__:
                setattr(cls, op_name, _rpc_operation(op_name, op.kind))

    # -- generic entrypoints ---------------------------------------------------------------
    @rpc(expected_exceptions=QinglianError)
    def execute(self, command, data=None, actor=None, expected_version=None):
        return self.store.execute(command, data, self.store.rpc_actor(actor), expected_version)

    @rpc(expected_exceptions=QinglianError)
    def query(self, name, params=None, actor=None):
        return self.store.query(name, params, self.store.rpc_actor(actor))

    @http("POST", "/api/<string:name>")
    def http_command(self, request, name):
        try:
            op = self.store.app.operation(name, "command")
            data = _request_json(request)
            actor = self.store.authenticate(bearer_token(request))
            result = self.store.execute(name, data, actor, _if_match(request))
            return json_response(result, op.status)
        except QinglianError as exc:
            return error_response(exc)

    @http("GET", "/api/<string:name>")
    def http_query(self, request, name):
        try:
            op = self.store.app.operation(name, "query")
            token = bearer_token(request)
            actor = self.store.authenticate(token) if (token or not op.public) else None
            params = request.args.to_dict(flat=True)
            return json_response(self.store.query(name, params, actor))
        except QinglianError as exc:
            return error_response(exc)

    @http("GET", "/health")
    def health(self, request):
        with self.store.read() as conn:
            head = self.store.runtime.store.head(conn)
        return json_response({"service": self.name, "node": self.store.node_id, "head": head})

    @http("GET", "/metrics")
    def metrics(self, request):
        return Response(self.store.metrics.expose(), mimetype="text/plain",
                        headers={"Content-Type": self.store.metrics.content_type})


def handle_once(service, name: str, body: dict, fn) -> object:
    """Run ``fn(uow, event)`` once per event id for the consumer ``<service>.<name>``.

    The tracking row and whatever ``fn`` writes (projection rows, new events) commit
    together, so a crash after the commit but before the broker ack leads to a
    redelivery that is skipped and counted, never applied twice.
    """
    event = StoredEvent.from_message(body)
    consumer = "%s.%s" % (service.name, name)
    store = service.store
    try:
        with store.unit_of_work(store.system_actor(), causation_id=event.event_id,
                                correlation_id=event.metadata.get("correlation_id")) as uow:
            if not uow.track(consumer, event.event_id):
                store.metrics.redelivered(consumer)
                return None
            return fn(uow, event)
    except Exception:
        store.metrics.consumer_failed(consumer)
        raise


def idempotent(fn):
    """Decorator for ``@event_handler`` methods written as ``fn(self, event, uow)``."""
    @functools.wraps(fn)
    def wrapper(self, body):
        return handle_once(self, fn.__name__, body, lambda uow, event: fn(self, event, uow))
    return wrapper
