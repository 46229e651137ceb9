"""The service layer: a registry of commands and queries with their rules.

Each service declares what it can do once, in ``application.py``:

    app = Application("units", unit_path=unit_path)

    @app.command("register_unit", RegisterUnit, roles=WRITERS, scope="parent_id", status=201)
    def register_unit(uow, data):
        ...

    @app.query("get_unit", UnitRef)
    def get_unit(conn, params, actor):
        ...

From that single declaration the nameko layer (``shared.service``) derives the RPC
method, the HTTP route, input validation, authorisation and metrics - so every service
has the same shape and bad input is refused the same way everywhere: before a
transaction is opened, so nothing can be written.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable

from marshmallow import Schema, ValidationError

from shared.auth import ANY_ROLE, NODE_ADMIN, Actor, authorize
from shared.errors import BadInput, NotFound, Unauthenticated
from shared.fields import refuse_unsafe
from shared.uow import Runtime, UnitOfWork

_KIND_NAMES = {"command": "命令", "query": "查询"}

UnitPath = Callable[[object, str], "str | None"]


def new_id(given: str | None = None) -> str:
    """The id a caller chose (idempotent imports), or a fresh one."""
    return given or uuid.uuid4().hex[:16]


@dataclass
class Operation:
    name: str
    kind: str  # "command" or "query"
    fn: Callable
    schema: type[Schema]
    roles: tuple
    # the unit the operation touches: a field name, or ``fn(conn, data) -> unit id``
    scope: str | Callable | None = None
    public: bool = False  # queries only: no token needed (published 微权力清单)
    status: int = 200
    doc: str = field(default="")
    _schema: Schema | None = field(default=None, repr=False)
    # commands only: ``fn(steps, data)`` computes on ``steps.read()`` and writes in short
    # ``steps.unit_of_work()``s (a timer's sweep over every unit; see ``Steps``)
    phased: bool = False

    def load(self, data) -> dict:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise BadInput("输入应为 JSON 对象", {"_schema": ["输入应为 JSON 对象"]})
        unsafe = refuse_unsafe(data)  # HTTP and RPC alike
        if unsafe:
            raise BadInput("%s 的输入含有不允许的内容" % self.name, unsafe)
        if self._schema is None:  # schemas are stateless: build once (50 µs each time)
            self._schema = self.schema()
        try:
            return self._schema.load(data)
        except ValidationError as exc:
            raise BadInput("%s 的输入有误" % self.name, exc.messages) from exc

    def scope_unit(self, conn, data: dict) -> str | None:
        if self.scope is None:
            return None
        if callable(self.scope):
            return self.scope(conn, data)
        return data.get(self.scope)


@dataclass
class Steps:
    """What a phased command gets instead of one unit of work.

    A sweep over a few hundred units inside one unit of work holds the log's writer
    lock (SQLite: the whole database) while it computes, and every request waits behind
    it. A phased command computes on ``read()``, which takes no lock, then writes in short
    ``unit_of_work()``s, each checking again what it writes against the log; requests
    are served between them. All share the command's actor and correlation id.
    """

    rt: Runtime
    actor: Actor | None
    correlation_id: str | None = None
    causation_id: str | None = None

    def __post_init__(self):
        self.correlation_id = self.correlation_id or str(uuid.uuid4())

    def read(self):
        return self.rt.read()

    def unit_of_work(self):
        return self.rt.unit_of_work(self.actor, self.correlation_id, self.causation_id)


def _declarer(table: dict, kind: str, name: str):
    """A decorator that files ``fn`` in ``table`` under ``name``, once."""
    def deco(fn):
        if name in table:
            raise ValueError("%s %s declared twice" % (kind, name))
        table[name] = fn
        return fn
    return deco


class Application:
    """One service's declaration: its commands and queries, projections, read ports, and
    the one home of what is its own - ``settings`` (a callable from the nameko config to
    the settings value, e.g. a class's ``from_config``: parsed once per container before
    anything starts, so a wrong value stops the service naming its key; then
    ``uow.rt.settings`` / ``rt.settings``) and ``extensions`` (``@app.extension(name)``:
    process resources - threads, files, clients, gauges - built once per container after
    the runtime, in declaration order; then ``rt.ext.<name>``, ``self.store.ext.<name>``)
    and ``runtime_states`` (``@app.runtime_state(name)``: what it remembers between commands
    in one process; ``app.state_of(rt, name)``)."""

    def __init__(self, service: str, unit_path: UnitPath | None = None,
                 settings: Callable[[dict], object] | None = None):
        self.service = service
        self.settings = settings
        self.extensions: dict[str, Callable] = {}
        self.runtime_states: dict[str, Callable[[], object]] = {}
        self.operations: dict[str, Operation] = {}
        self.projections: list = []
        self._unit_path = unit_path
        # queries declared with runtime=True are called fn(conn, data, actor, rt): they need
        # the (controllable) clock, e.g. to count days up to today
        self.needs_runtime: set[str] = set()
        # read ports: name -> factory(conn), a narrow view of the service's read models a
        # command reaches as ``uow.<name>`` (units: ``uow.units.require(id)``) instead of
        # the connection and table names (see ``read_port``)
        self.read_ports: dict[str, Callable] = {}

    # -- declaring -----------------------------------------------------------------------
    def _register(self, kind, name, schema, roles, scope, public, status, phased=False):
        def deco(fn):
            if name in self.operations:
                raise ValueError("%s declared twice" % name)
            self.operations[name] = Operation(name, kind, fn, schema, tuple(roles), scope,
                                              public, status, (fn.__doc__ or "").strip(),
                                              phased=phased)
            return fn
        return deco

    def command(self, name: str, schema: type[Schema], roles: tuple, scope=None, status: int = 200,
                phased: bool = False):
        return self._register("command", name, schema, roles, scope, False, status, phased)

    def query(self, name: str, schema: type[Schema], roles: tuple = ANY_ROLE, scope=None,
              public: bool = False, runtime: bool = False):
        if runtime:
            self.needs_runtime.add(name)
        return self._register("query", name, schema, roles, scope, public, 200)

    def read_port(self, name: str, factory: Callable) -> None:
        """Give every command's unit of work ``uow.<name> = factory(uow.conn)``: the reads
        a handler needs to decide, named by what they answer (an adapter over the read
        models, declared by the service), so a handler is load, decide, save."""
        if hasattr(UnitOfWork, name) or name in vars(UnitOfWork(None)) or name in self.read_ports:
            raise ValueError("read port %s would hide another attribute" % name)
        self.read_ports[name] = factory

    def bind_ports(self, uow: UnitOfWork) -> UnitOfWork:
        """Attach the read ports to ``uow`` and this application's scope check
        (``uow.check_scope(roles, unit_id)``) - done for every command; a phased command's
        or an event handler's own unit of work calls this itself."""
        uow.authorizer = self.check_scope
        for name, factory in self.read_ports.items():
            setattr(uow, name, factory(uow.conn))
        return uow

    def extension(self, name: str):
        """Declare ``fn(host) -> value`` (host: ``shared.service.ExtensionHost``) as the
        extension ``rt.ext.<name>``; the host also takes the threads it runs from start to
        stop (``host.thread``) and what to do at stop (``host.on_stop``)."""
        return _declarer(self.extensions, "extension", name)

    def runtime_state(self, name: str):
        """Declare ``fn() -> value`` as what this service keeps in memory between commands
        in one process, under ``name``: made on first use for each runtime (a runtime made
        by hand included, since it needs no extension host) and read as
        ``app.state_of(rt, name)``. Only for what may be lost: a restart starts it afresh."""
        return _declarer(self.runtime_states, "runtime state", name)

    def state_of(self, rt, name: str):
        """The runtime's value of the state ``name`` this application declared."""
        if name not in self.runtime_states:
            raise ValueError("runtime state %s is not declared by %s" % (name, self.service))
        return rt.state.value("%s.%s" % (self.service, name), self.runtime_states[name])

    def load_settings(self, cfg: dict | None = None):
        """The service's settings read from ``cfg`` (None for a service that has none)."""
        return None if self.settings is None else self.settings(cfg or {})

    def unit_path_resolver(self, fn: UnitPath) -> UnitPath:
        self._unit_path = fn
        return fn

    def commands(self) -> list[str]:
        return [n for n, op in self.operations.items() if op.kind == "command"]

    def queries(self) -> list[str]:
        return [n for n, op in self.operations.items() if op.kind == "query"]

    def operation(self, name: str, kind: str | None = None) -> Operation:
        op = self.operations.get(name)
        if op is None or (kind and op.kind != kind):
            raise NotFound("%s 服务中没有名为 %s 的%s" % (self.service, name, _KIND_NAMES.get(kind, "操作")))
        return op

    # -- running -------------------------------------------------------------------------
    def _authorize(self, conn, op: Operation, actor: Actor | None, data: dict) -> None:
        if op.public:
            return
        if actor is None:
            raise Unauthenticated("此操作需要登录（请提供有效的令牌）")
        unit_id = op.scope_unit(conn, data)
        self.check_scope(conn, actor, op.roles, unit_id, scoped=op.scope is not None)

    def check_scope(self, conn, actor: Actor, roles: tuple, unit_id: str | None,
                    scoped: bool = True) -> None:
        """Authorise ``actor`` for ``roles`` on ``unit_id`` (its subtree rule included).
        A command that touches a second unit (a move's new parent) asks this again through
        its unit of work: ``uow.check_scope(roles, unit_id)`` (bound by ``bind_ports``)."""
        if actor.has(NODE_ADMIN) and NODE_ADMIN in roles:
            return  # acts anywhere on the node: no tree lookups on the hot path
        unit_path = scope_path = None
        if unit_id is not None and self._unit_path is not None:
            unit_path = self._unit_path(conn, unit_id)
            if unit_path is None and not actor.has("node-admin"):
                raise NotFound("单位 %s 不存在" % unit_id)
            if actor.unit_scope:
                scope_path = self._unit_path(conn, actor.unit_scope)
        authorize(actor, roles, unit_id, unit_path, scope_path, scoped)

    def execute(self, rt: Runtime, name: str, data, actor: Actor | None,
                correlation_id: str | None = None, causation_id: str | None = None,
                expected_version: int | None = None):
        """Validate, authorise, then run a command in one unit of work.

        ``expected_version`` (HTTP ``If-Match``) is checked against the first record the
        command loads: a stale edit gets 409 and writes nothing."""
        op = self.operation(name, "command")
        loaded = op.load(data)
        if expected_version is not None and (not isinstance(expected_version, int)
                                             or isinstance(expected_version, bool)
                                             or expected_version < 1):
            raise BadInput("expected_version 应为正整数（记录的版本号）",
                           {"expected_version": ["应为正整数"]})
        if op.phased:
            with rt.read() as conn:
                self._authorize(conn, op, actor, loaded)
            return op.fn(Steps(rt, actor, correlation_id, causation_id), loaded)
        with rt.unit_of_work(actor, correlation_id, causation_id) as uow:
            uow.expected_version = expected_version
            self.bind_ports(uow)
            self._authorize(uow.conn, op, actor, loaded)
            return op.fn(uow, loaded)

    def run_query(self, rt: Runtime, name: str, params, actor: Actor | None):
        op = self.operation(name, "query")
        loaded = op.load(params)
        with rt.read() as conn:
            self._authorize(conn, op, actor, loaded)
            if name in self.needs_runtime:
                return op.fn(conn, loaded, actor, rt)
            return op.fn(conn, loaded, actor)
