"""The console nameko service (管理控制台): the one address a browser needs.

Thin, like the other services: it only wires nameko to ``services.console.web``. The
pages call the four services over nameko RPC with the signed-in user's session token
as the actor proof (``{"token": ...}``), so every service checks the session itself;
the console never opens their databases. Its only state is the node database's users,
sessions and sign-in records.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict

from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.web.handlers import HttpRequestHandler

import shared.service  # noqa: F401 - registers the typed errors for RPC replies
from services.console.settings import Settings
from services.console.signin import SignIn
from services.console.web import Web, json_health, refusal_page, routes
from services.supervision.evidence import MAX_EVIDENCE_BYTES
from shared import config
from shared.auth import UserDirectory
from shared.combining import Combiner
from shared.db import make_engine
from shared.errors import QinglianError
from shared.http import (
    WebServer, body_limit, client_timeout, close_after, has_body, receive_body, upload_timeout,
)

log = logging.getLogger(__name__)
TOUCH_FLUSH_SECONDS = 1.0  # how late a session's idle expiry is pushed back (web._sign_in_check)


# a multipart body (the evidence forms): one evidence file's limit, plus room for the
# form's other fields and the multipart framing; a 20 MiB file then still reaches the page,
# which says in its form that the file is too large
UPLOAD_BODY_BYTES = MAX_EVIDENCE_BYTES + 1024 * 1024


class ConsoleHttp(HttpRequestHandler):
    """nameko's handler - the console parses forms and uploads and checks its own sessions,
    not ``shared.http.http``'s JSON bodies and bearer tokens - on the kernel's server
    (``shared.http.WebServer``: the deadline for a request's line and headers, the socket
    timeout, TCP_NODELAY), the one server of the container. A body is read as the kernel
    reads one (``shared.http.receive_body``), in the connection's green thread before a
    worker is taken: a form within ``QINGLIAN_HTTP_BODY_BYTES`` and ``QINGLIAN_HTTP_TIMEOUT``,
    an upload (multipart) within ``UPLOAD_BODY_BYTES`` and ``QINGLIAN_HTTP_UPLOAD_TIMEOUT``;
    a refusal is a Chinese page with its status (413, 408, 503) and no page runs."""
    server = WebServer()

    def setup(self):
        super().setup()
        self._checked: set = set()

    def check_signature(self, args, kwargs):
        """nameko matches every request's arguments against the method with ``inspect``
        (a few percent of a check-in's CPU); a route's arguments are always the request
        and its URL's variables, so each set of them is checked once."""
        key = (len(args), frozenset(kwargs))
        if key not in self._checked:
            super().check_signature(args, kwargs)
            self._checked.add(key)

    def handle_request(self, request):
        request.shallow = False  # nameko's server makes it shallow; its handler unmakes it
        if has_body(request):
            cfg = self.container.config
            upload = request.mimetype == "multipart/form-data"
            try:
                receive_body(request, UPLOAD_BODY_BYTES if upload else body_limit(cfg),
                             (upload_timeout if upload else client_timeout)(cfg))
            except QinglianError as exc:
                close_after(request)
                return refusal_page(exc)
        return super().handle_request(request)


http = ConsoleHttp.decorator


class ConsoleDependency(DependencyProvider):
    """Built once per container: settings, the node's user directory, sign-in records."""

    def setup(self):
        cfg = self.container.config
        routes()  # the pages' routes, imported and compiled now rather than by the first request
        self.settings = Settings.from_config(cfg)
        self.node_id = config.node_id(cfg)
        self.users = UserDirectory(make_engine(config.node_database_url(cfg)), self.node_id)
        self.users.create_schema()
        self.signin = SignIn(self.users, self.settings)
        self.signin.create_schema()
        # session -> when this process last noted a touch of it (web._sign_in_check)
        self.touched: dict[str, float] = {}
        self.touch_every = min(30.0, self.settings.idle_seconds / 20)
        self._touches: dict[str, int] = {}  # token -> request time (us), not yet written
        self._stopping = False
        # concurrent requests share one call (shared.combining): the session checks one
        # lookup (web._sign_in_check), the check-ins one RPC (checkins.py)
        self.sessions = Combiner()
        self.checkins = Combiner()
        # 上下互比's rendered content by (period, indicator, district) with the version of
        # the answer it shows, newest use last (city_pages.city_compare)
        self.compare_pages: OrderedDict[tuple, tuple[str, str]] = OrderedDict()

    def note_touch(self, token: str) -> None:
        self._touches[token] = self.users.clock()

    def flush_touches(self) -> int:
        """Write the noted touches in one transaction (``UserDirectory.touch_sessions``)."""
        touches, self._touches = self._touches, {}
        if touches:
            try:
                self.users.touch_sessions(touches)
            except Exception:  # noqa: BLE001 - the database away: retried with the next ones
                log.warning("could not push back %d sessions' idle expiry; retrying", len(touches),
                            exc_info=True)
                for token, at in touches.items():
                    self._touches.setdefault(token, at)
        return len(touches)

    def _flusher(self):
        while not self._stopping:
            time.sleep(TOUCH_FLUSH_SECONDS)
            self.flush_touches()

    def start(self):
        self.container.spawn_managed_thread(self._flusher, identifier="session-touches")
        # The garbage collector took ~15 % of the console's CPU in a morning's check-ins
        # (gc.callbacks, bench/console.py run_checkin at 0.4 scale: 0.72 s of 4.8 s): a
        # young collection every 700 allocations, each request allocating hundreds, and
        # every few hundred requests a full walk of everything start-up made. Start-up
        # frozen, and a young collection after 20,000 allocations (each ~10 ms, a few a
        # second at 500 check-ins/s): 0.15 s of 4.1 s. Requests make few reference
        # cycles; these collect them later.
        shared.service.freeze_startup(young_threshold=20_000)

    def stop(self):
        self._stopping = True
        self.flush_touches()

    def get_dependency(self, worker_ctx):
        return self


class ConsoleService:
    name = "console"

    units = RpcProxy("units")
    supervision = RpcProxy("supervision")
    education = RpcProxy("education")
    exchange = RpcProxy("exchange")
    console = ConsoleDependency()
    # a console action's correlation id goes with its RPC calls (docs/operations.md, Logs)
    correlation = shared.service.CorrelationContext()

    @http("GET", "/health")
    def health(self, request):
        return json_health(self.console.node_id)

    @http("GET,POST", "/")
    def root(self, request):
        return Web(self, request).handle()

    @http("GET,POST", "/<path:path>")
    def page(self, request, path):
        return Web(self, request).handle()
