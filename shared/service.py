"""nameko glue: the one place where the kernel meets nameko.

* ``EventSourcing`` - a DependencyProvider. ``setup()`` does the I/O once per
  container (the service's settings, engine, schema, projection catch-up, user
  directory, then the service's extensions); ``start()`` runs the outbox relay and the
  extensions' threads as managed threads; each worker gets a small ``ServiceApi``. No
  service subclasses it: what is a service's own is declared on its ``Application``
  (``settings=``, ``@app.extension``) and reaches workers as ``self.store.settings`` /
  ``self.store.ext.<name>`` and commands as ``uow.rt.settings`` / ``uow.rt.ext.<name>``.
* ``NodeService`` - the base of every service class. From the service's
  ``Application`` it derives one RPC method per command and query, the HTTP routes
  ``POST /api/<command>`` and ``GET /api/<query>``, ``/openapi.json`` (their OpenAPI
  document), ``/health`` and ``/metrics``.
  A service class is then only its name, its application and its event handlers.
* ``NodeContainer`` - nameko's service container with the service's own worker pool
  (``shared.config.max_workers``: ``<SERVICE>_MAX_WORKERS``), whose finished workers
  leave no reference cycle for the garbage collector; every launcher names it
  (``SERVICE_CONTAINER_CLS`` in deploy/config.yaml, the bench's configs) and the tests
  and benches that build containers themselves build this one.
* ``idempotent`` - wraps an ``@event_handler`` so each event is handled once.
* ``MirrorsUnits`` - the mixin that keeps a service's copy of the unit tree
  (``shared.unittree``) from the units service's events, with its catch-up timer.

Why commits happen inside the entrypoint and not in ``worker_result``: nameko sends
the RPC reply / HTTP response *before* calling ``worker_result``, so committing there
would tell the caller "done" before the data is durable (and hide a failed commit).
``Application.execute`` commits inside the worker, before the result is returned; a
worker that raises has its transaction rolled back by the same context manager.
"""
from __future__ import annotations

import functools
import gc
import json
import logging
import threading
import time

from nameko.containers import ServiceContainer, get_service_name
from nameko.dependency_providers import Config
from nameko.events import EventHandler, event_handler
from nameko.exceptions import UnknownService, deserialize_to_instance
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.timer import Timer, timer
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from shared import config, logs
from shared.app import Application
from shared.auth import Actor, UserDirectory, system_actor
from shared.db import make_engine
from shared.errors import ALL_ERRORS, ConcurrencyError, QinglianError, StoreBusy
from shared.events import StoredEvent, now_us
from shared.http import (  # noqa: F401 - bearer_token, json_response, error_response: re-exported
    bearer_token, dependency_failures, error_response, http, if_match, json_response, live,
    request_json,
)
from shared.metrics import ServiceMetrics
from shared.projections import prepare
from shared.relay import Relay, RelayProcess
from shared.store import dead_letters
from shared.unittree import UnitMirror, record_unit_event
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
        self.settings = provider.runtime.settings  # the service's own (Application(settings=))
        self.ext = provider.runtime.ext            # and its extensions (@app.extension)
        self.config: dict = provider.container.config
        self.context: dict = worker_ctx.data       # the worker's context data (headers)

    @property
    def correlation_id(self) -> str | None:
        return self._ctx.data.get("correlation_id") or self._ctx.call_id

    def execute(self, name: str, data, actor: Actor | None, expected_version: int | None = None):
        # a timer's routine is counted apart: its calls are not users' commands
        with self.metrics.command(name, routine=isinstance(self._ctx.entrypoint, Timer)), \
                dependency_failures(self.metrics, name):
            return self.app.execute(self.runtime, name, data, actor, self.correlation_id,
                                    expected_version=expected_version)

    def query(self, name: str, params, actor: Actor | None):
        with self.metrics.command(name), dependency_failures(self.metrics, name):
            return self.app.run_query(self.runtime, name, params, actor)

    def unit_of_work(self, actor: Actor | None = None, causation_id: str | None = None,
                     correlation_id: str | None = None):
        return self.runtime.unit_of_work(actor or system_actor(self.node_id),
                                         correlation_id or self.correlation_id, causation_id)

    def read(self):
        return self.runtime.read()

    def authenticate(self, token: str | None) -> Actor:
        with dependency_failures(self.metrics, "authenticate"):
            return self.users.authenticate(token)

    def rpc_actor(self, proof) -> Actor | None:
        """An RPC caller's actor from its proof ``{"token": ...}`` (see shared.auth)."""
        with dependency_failures(self.metrics, "authenticate"):
            return self.users.authenticate_rpc(proof)

    def system_actor(self) -> Actor:
        return system_actor(self.node_id, "system:%s" % self.app.service)


class ExtensionHost:
    """What an extension's factory (``@app.extension(name)``) is given, once per container:
    the built runtime (its settings, the extensions declared before it), the config and
    the metrics; and where it hands over threads and stop hooks, so no service subclasses
    the provider to run one."""

    def __init__(self, provider: "EventSourcing"):
        self._provider = provider
        self.runtime: Runtime = provider.runtime
        self.config: dict = provider.container.config
        self.metrics: ServiceMetrics = provider.metrics
        self.settings = provider.runtime.settings
        self.ext = provider.runtime.ext
        self.node_id: str = provider.runtime.node_id
        self.threads: list[tuple[str, object, float]] = []
        self.stop_hooks: list = []

    def stopping(self) -> bool:
        """True once the container stops: a thread's loop ends when it is."""
        return self._provider._stopping

    def thread(self, identifier: str, run, join_seconds: float = 0.0) -> None:
        """Run ``run()`` as a managed thread from ``start``; at stop, wait up to
        ``join_seconds`` for it to finish what it is doing (0: do not wait)."""
        self.threads.append((identifier, run, join_seconds))

    def on_stop(self, fn) -> None:
        """Call ``fn()`` at stop, after ``stopping()`` turned true (e.g. to wake a thread)."""
        self.stop_hooks.append(fn)


def freeze_startup(young_threshold: int | None = None) -> None:
    """Put what the process built to start out of the cyclic collector's reach.

    Start-up's objects (modules, nameko, SQLAlchemy, schemas, statements, keys, the
    console's routes) live as long as the process; a full collection walked them all
    (~120,000 in an exchange process: 50-70 ms of CPU each time, a pause of every green
    thread, by the scale bench's gc callbacks on 3 December). Collected first, so only
    what is alive is frozen: a process that starts several containers, as the tests do,
    does not keep its garbage for ever. Nothing made later is exempt.
    ``young_threshold``: allocations before a young collection, for a process whose
    requests allocate hundreds of objects each (the console's)."""
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        gc.set_threshold(young_threshold, 20, 10)


class EventSourcing(DependencyProvider):
    def setup(self):
        cfg = self.container.config
        self.app: Application = self.container.service_cls.app
        service = self.container.service_name
        # read and checked before anything else: a wrong value stops the service here
        settings = self.app.load_settings(cfg)
        # one registry per container: two containers in one process must not collide
        self.metrics = ServiceMetrics(service)
        self.metrics.declare(
            operations=self.app.operations,
            routines=getattr(self.container.service_cls, "timer_routines", ()),
            consumers=["%s.%s" % (service, ep.method_name) for ep in self.container.entrypoints
                       if isinstance(ep, EventHandler)])
        self.engine = make_engine(config.database_url(service, cfg))
        self.runtime = Runtime(self.engine, self.app.projections, config.node_id(cfg), service,
                               settings=settings)
        self.runtime.create_schema()
        prepare(self.runtime.store, self.runtime.projections, self.runtime.inline_checkpoint)
        self.users = UserDirectory(make_engine(config.node_database_url(cfg)), config.node_id(cfg),
                                   config.token_days(cfg))
        self.users.create_schema()
        self._stopping = False
        self._wake = threading.Event()
        self._log_context: dict = {}  # worker -> its shared.logs token
        logs.process_defaults.update(service=service, node=self.runtime.node_id)
        self.runtime.after_commit.append(self.metrics.events_appended)
        self.runtime.after_commit.append(lambda _events: self._wake.set())
        self.relay = self.relay_process = None
        mode = config.relay_mode(cfg)
        if mode != "off":
            self.relay = Relay(self.runtime.store, config.amqp_uri(cfg), service,
                               on_published=self.metrics.relay_progress,
                               on_connection=self.metrics.connection("relay"))
            self.metrics.probe("relay_lag", self._relay_lag,
                               (self.metrics.relay_lag_events, self.metrics.relay_lag_seconds))
        if mode == "process":
            # the same relay in a child process, on another core (shared.relay.RelayProcess);
            # this one's Relay then only answers ``lag()``
            self.relay_process = RelayProcess(
                config.database_url(service, cfg), config.amqp_uri(cfg), service,
                self.runtime.node_id, on_published=self.metrics.relay_progress,
                on_connection=self.metrics.connection("relay"))
        # the service's extensions, last: each may use the whole runtime and those before it
        self.host = ExtensionHost(self)
        self._ext_threads: list = []
        for name, factory in self.app.extensions.items():
            setattr(self.runtime.ext, name, factory(self.host))

    def _relay_lag(self) -> None:
        lag_events, lag_seconds = self.relay.lag()
        self.metrics.relay_lag_events.labels(self.metrics.service).set(lag_events)
        self.metrics.relay_lag_seconds.labels(self.metrics.service).set(lag_seconds)

    def start(self):
        freeze_startup()
        self._relay_thread = None
        self._ready_cache = (0.0, None)
        if self.relay_process is not None:
            self._relay_thread = self.container.spawn_managed_thread(self._run_relay_process,
                                                                     identifier="relay")
        elif self.relay is not None:
            self._relay_thread = self.container.spawn_managed_thread(self._run_relay,
                                                                     identifier="relay")
        self._ext_threads = [(self.container.spawn_managed_thread(run, identifier=identifier), join)
                             for identifier, run, join in self.host.threads]

    # -- readiness (GET /health/ready): can this process do its work right now? -----------
    READY_CACHE_SECONDS = 1.0  # a probe storm costs one round of checks a second
    CHECK_SECONDS = 2.0

    def readiness(self) -> tuple[bool, dict]:
        at, cached = self._ready_cache
        if cached is not None and time.monotonic() - at < self.READY_CACHE_SECONDS:
            return cached
        checks = {"database": self._check(self._check_database),
                  "node_database": self._check(self._check_node_database),
                  "broker": self._check(self._check_broker),
                  "relay": self._check_relay()}
        result = (all(c["ok"] for c in checks.values()), checks)
        self._ready_cache = (time.monotonic(), result)
        return result

    def _check(self, probe) -> dict:
        import eventlet
        try:
            with eventlet.Timeout(self.CHECK_SECONDS):
                return {"ok": True, **(probe() or {})}
        except BaseException as exc:  # noqa: BLE001 - eventlet.Timeout is a BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                raise
            log.warning("readiness: %s failed: %s: %s", probe.__name__, type(exc).__name__, exc)
            return {"ok": False, "error": type(exc).__name__}  # details in the log only

    def _check_database(self):
        with self.runtime.read() as conn:
            return {"head": self.runtime.store.head(conn)}

    def _check_node_database(self):
        with self.users.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def _check_broker(self):
        from kombu import Connection
        with Connection(config.amqp_uri(self.container.config), connect_timeout=self.CHECK_SECONDS) as c:
            c.connect()

    def _check_relay(self) -> dict:
        if self.relay is None:
            return {"ok": True, "running": False, "note": "relay off in this process"}
        running = self._relay_thread is not None and not self._relay_thread.dead
        if self.relay_process is not None:
            running = running and self.relay_process.alive()
            return {"ok": running, "running": running, "process": True}
        return {"ok": running, "running": running}

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _run_relay(self):
        logs.bind(service=self.container.service_name, node=self.runtime.node_id, task="relay")
        self.relay.run(lambda: self._stopping, self._wait)

    def _woken(self, seconds: float) -> bool:
        woken = self._wake.wait(seconds)
        self._wake.clear()
        return woken

    def _run_relay_process(self):
        logs.bind(service=self.container.service_name, node=self.runtime.node_id, task="relay")
        self.relay_process.run(lambda: self._stopping, self._woken)

    # -- the log context (shared.logs) of each worker ----------------------------------------
    def worker_setup(self, worker_ctx):
        self._log_context[worker_ctx] = bind_worker(worker_ctx, self.runtime.node_id)

    def worker_teardown(self, worker_ctx):
        token = self._log_context.pop(worker_ctx, None)
        if token is not None:
            logs.reset(token)

    def stop(self):
        self._stopping = True
        self._wake.set()
        if self.relay_process is not None:
            # here, not only in its thread: nameko kills the managed threads right after
            # the extensions' stop, and the child must be told to stop before that
            self.relay_process.stop()
        for hook in self.host.stop_hooks:
            hook()
        # let the extensions' threads finish what they are doing (a batch being applied
        # commits or rolls back as a whole either way, but a clean stop does not leave it
        # to a kill)
        import eventlet
        for gt, join in self._ext_threads:
            if join > 0:
                with eventlet.Timeout(join, False):
                    gt.wait()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx) -> ServiceApi:
        return ServiceApi(self, worker_ctx)


def bind_worker(worker_ctx, node: str):
    """The worker's correlation id - the caller's (HTTP header, RPC context), the event's
    (its metadata) or a new one (a timer) - bound for its log records and kept in its
    context data, so the RPC calls it makes carry it on. Returns the ``logs`` token."""
    data, args = worker_ctx.data, worker_ctx.args
    cid = logs.well_formed(data.get("correlation_id"))
    if cid is None and args and isinstance(worker_ctx.entrypoint, EventHandler):
        meta = args[0].get("metadata") if isinstance(args[0], dict) else None
        cid = logs.well_formed(meta.get("correlation_id")) if isinstance(meta, dict) else None
    if cid is None and args and isinstance(worker_ctx.entrypoint, HttpRequestHandler):
        cid = logs.correlation_from(args[0].headers)  # nameko's own @http on nameko's own server
    data["correlation_id"] = cid = cid or logs.new_correlation_id()
    return logs.bind(correlation_id=cid, service=worker_ctx.service_name, node=node,
                     task=worker_ctx.entrypoint.method_name)


class NodeContainer(ServiceContainer):
    """A service container whose worker pool is the service's own setting: nameko's
    config has one ``max_workers`` for every service of the process, a node needs more
    for the console and education (the check-in burst) than for the others."""

    def __init__(self, service_cls, cfg):
        workers = config.max_workers(get_service_name(service_cls), cfg)
        super().__init__(service_cls, dict(cfg, max_workers=workers))

    def _run_worker(self, worker_ctx, handle_result):
        """nameko's worker, then the dependencies it injected into the worker's service
        instance taken off it again. An RPC proxy holds its worker's context, which holds
        the instance: without this, every request left that cycle (the context, the
        instance, its proxies, the request with its headers and form - ~20 objects) for
        the cyclic collector, and in the morning's check-ins the console's young
        collections, each a pause of every green thread, came every ~400 requests with
        8,000-16,000 such objects to free (gc tracing, 4 December; docs/benchmarks.md).
        The worker is over (its result handled, its providers torn down); nothing reads
        the instance after it."""
        try:
            super()._run_worker(worker_ctx, handle_result)
        finally:
            injected = worker_ctx.service.__dict__
            for provider in self.dependencies:
                injected.pop(provider.attr_name, None)


class CorrelationContext(DependencyProvider):
    """For a service without ``EventSourcing`` (the console): its workers log under,
    and pass on to the services they call, the correlation id of what they handle."""

    def setup(self):
        self.node = config.node_id(self.container.config)
        self._tokens: dict = {}

    def worker_setup(self, worker_ctx):
        self._tokens[worker_ctx] = bind_worker(worker_ctx, self.node)

    def worker_teardown(self, worker_ctx):
        token = self._tokens.pop(worker_ctx, None)
        if token is not None:
            logs.reset(token)


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
            # a request with a body was authenticated before it was read (shared.http)
            actor = (request.environ.get("qinglian.actor")
                     or self.store.authenticate(bearer_token(request)))
            result = self.store.execute(name, request_json(request), actor, if_match(request))
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
        """Readiness, as /health/ready (kept for the clients that know only /health)."""
        return self.health_ready(request)

    @http("GET", "/health/ready")
    def health_ready(self, request):
        """200 when the database, the node database, the broker and the relay all work,
        else 503 naming which does not (the compose healthcheck asks this)."""
        ready, checks = self.store._p.readiness()
        head = checks["database"].get("head")
        return json_response({"service": self.name, "node": self.store.node_id, "ready": ready,
                              "head": head, "checks": checks}, 200 if ready else 503)

    # answered by the connection's own green thread, without a worker: the process lives
    # and its event loop turns, even when every worker is busy (see shared.http)
    health_live = live("GET", "/health/live")(lambda self, request: None)

    @http("GET", "/openapi.json")
    def openapi_json(self, request):
        """The OpenAPI 3.1 document of this service's /api/* routes (``shared.openapi``;
        contracts/openapi/<service>.json holds the same text)."""
        from shared import openapi
        return Response(openapi.served(self.store.app, self.name), mimetype="application/json")

    @http("GET", "/metrics")
    def metrics(self, request):
        return Response(self.store.metrics.expose(), mimetype="text/plain",
                        headers={"Content-Type": self.store.metrics.content_type})


# A handler that fails raises, and ``requeue_on_error=True`` (required on every
# ``@event_handler``: tests/integration/kernel/test_event_handlers.py) puts the message back. Busy or
# unreachable databases are retried for as long as it takes; any other failure up to
# ``MAX_HANDLER_ATTEMPTS`` times in this process, then the event is dead-lettered.
MAX_HANDLER_ATTEMPTS = 30
RETRY_PAUSE_MAX_S = 2.0
_failures: dict[tuple[str, str], int] = {}  # (consumer, event id) -> failed attempts


def _transient(exc: BaseException) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError
    return isinstance(exc, (StoreBusy, ConcurrencyError, OperationalError, InterfaceError))


def dead_letter(store, consumer: str, event_id: str | None, body, exc: BaseException,
                attempts: int) -> None:
    """Keep a message the consumer gives up on (raises, so it is requeued, if even
    that cannot be written)."""
    log.error("%s gives up on event %s after %d attempt(s), dead-lettered: %r",
              consumer, event_id, attempts, exc)
    with store.runtime.engine.begin() as c:
        c.execute(dead_letters.insert().values(
            consumer=consumer, event_id=event_id, attempts=attempts, failed_at_us=now_us(),
            body=json.dumps(body, ensure_ascii=False, default=str), error=repr(exc)[:2000]))


def handle_once(service, name: str, body: dict, fn) -> object:
    """Run ``fn(uow, event)`` once per event id for the consumer ``<service>.<name>``.

    The tracking row and whatever ``fn`` writes (projection rows, new events) commit
    together, so a crash after the commit but before the broker ack leads to a
    redelivery that is skipped and counted, never applied twice. A failure raises
    after a pause that grows with each attempt (no hot redelivery loop), so the message
    is requeued; see ``MAX_HANDLER_ATTEMPTS`` for when it is dead-lettered instead.
    """
    consumer = "%s.%s" % (service.name, name)
    store = service.store
    try:
        event = StoredEvent.from_message(body)
    except Exception as exc:  # noqa: BLE001 - no retry makes a malformed message parse
        store.metrics.consumer_failed(consumer)
        dead_letter(store, consumer, None, body, exc, 1)
        return None
    key = (consumer, event.event_id)
    try:
        with store.unit_of_work(store.system_actor(), causation_id=event.event_id,
                                correlation_id=event.metadata.get("correlation_id")) as uow:
            if not uow.track(consumer, event.event_id):
                store.metrics.redelivered(consumer)
                result = None
            else:
                result = fn(uow, event)
    except Exception as exc:
        store.metrics.consumer_failed(consumer)
        if len(_failures) > 10_000:
            _failures.clear()
        attempts = _failures[key] = _failures.get(key, 0) + 1
        if attempts >= MAX_HANDLER_ATTEMPTS and not _transient(exc):
            _failures.pop(key, None)
            dead_letter(store, consumer, event.event_id, body, exc, attempts)
            return None
        log.warning("%s failed on event %s (attempt %d), requeued: %r", consumer,
                    event.event_id, attempts, exc)
        time.sleep(min(0.05 * 2 ** (attempts - 1), RETRY_PAUSE_MAX_S))
        raise
    _failures.pop(key, None)
    return result


def idempotent(fn):
    """Decorator for ``@event_handler`` methods written as ``fn(self, event, uow)``."""
    @functools.wraps(fn)
    def wrapper(self, body):
        return handle_once(self, fn.__name__, body, lambda uow, event: fn(self, event, uow))
    return wrapper


# -- the unit mirror of every service but units (shared.unittree holds what it records) -------
CATCHUP_PAGE = 500


def catch_up_units(service, fetch, checkpoint: dict) -> int:
    """Mirror every unit event the units service has and this mirror lacks.

    ``fetch(after, limit)`` returns the units service's ``Unit.*`` events after a log
    position, oldest first, as its relay publishes them (its ``unit_events`` RPC). In log
    order a parent always comes before its children and version N before N+1, so what
    the live queue could not place (a parent not mirrored yet, a queue declared after the
    event was published and so never given it) is placed here. Each event goes through
    the same consumer (``<service>.mirror_units``, tracked by event id): a live copy
    arriving later is skipped as a repeat. ``checkpoint["after"]`` - the position up to
    which everything is mirrored - only moves past an event once it is; returns how many
    events were recorded."""
    rt = service.store.runtime
    recorded = 0
    while True:
        page = fetch(checkpoint.get("after", 0), CATCHUP_PAGE)
        for body in page:
            unit_id = body["payload"]["unit_id"]
            with rt.read() as conn:
                current = rt.store.stream_version(conn, UnitMirror.stream_id_for(unit_id))
            if current < body["version"]:
                handle_once(service, "mirror_units", body, record_unit_event)  # raises: next time
                recorded += 1
            checkpoint["after"] = body["position"]
        if len(page) < CATCHUP_PAGE:
            return recorded


class MirrorsUnits:
    """Mixin for a service class: keeps the local unit directory in step with units.

    Services using it add ``unit_directory_projection()`` to their projections and pass
    ``directory_path`` as their application's ``unit_path``. One queue bound to
    ``Unit.*`` receives every unit event; ``requeue_on_error`` retries one that came
    too early (see ``record_unit_event``).

    Catch-up. The queue alone can leave a unit missing for ever: a service whose queue
    is declared after units published (started later, or for the first time) never gets
    those messages, and one whose parent stayed missing is dead-lettered in the end. So
    a timer asks the units service for what it has (``catch_up_units``): every second
    until it has answered once since start, then every ``UNIT_MIRROR_CATCHUP_SECONDS``
    (default 60; the cost is one indexed read when nothing is new). While it does not
    answer (a node without a units service, as the benchmarks' exchange-only nodes, or
    one started before it) the wait doubles from 1 s up to ``SILENT_CEILING`` (a units
    service started late is still mirrored within seconds), and the silence is logged
    once, not every second.
    """

    units_feed = RpcProxy("units")
    unit_mirror_config = Config()
    SILENT_CEILING = 10.0  # seconds between asks while the units service does not answer

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        app = cls.__dict__.get("app")
        if app is not None and "unit_mirror" not in app.extensions:
            # where the catch-up has got to: per container, as every extension
            app.extension("unit_mirror")(
                lambda host: {"after": 0, "next": 0.0, "answered": False, "wait": 1.0})

    @event_handler("units", "Unit.*", requeue_on_error=True)
    def mirror_units(self, body):
        handle_once(self, "mirror_units", body, record_unit_event)

    @timer(interval=1)
    def catch_up_unit_mirror(self):
        import eventlet
        state = self.store.ext.unit_mirror
        now = time.monotonic()
        if now < state["next"]:
            return
        every = float(self.unit_mirror_config.get("UNIT_MIRROR_CATCHUP_SECONDS") or 60)
        state["next"] = now + (every if state["answered"] else min(state["wait"], every))
        ceiling = min(self.SILENT_CEILING, every)

        def fetch(after, limit):
            with eventlet.Timeout(10):
                return self.units_feed.unit_events(after, limit)
        try:
            recorded = catch_up_units(self, fetch, state)
        except (UnknownService, eventlet.Timeout) as exc:
            if state["wait"] == 1.0:  # once per silence: the next ones at debug
                log.info("unit mirror: the units service does not answer (%r); asking again "
                         "ever less often, at most every %.0fs", exc, ceiling)
            else:
                log.debug("unit mirror: the units service still does not answer (%r)", exc)
            state["wait"] = min(state["wait"] * 2, ceiling)
            return
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            log.warning("unit mirror catch-up failed, retried: %r", exc)
            return
        state["answered"], state["wait"] = True, 1.0
        if recorded:
            log.info("unit mirror: caught up %d unit event(s) from the units service", recorded)
