"""The HTTP request path every service shares: what happens before an operation runs.

nameko's own ``@http`` reads a request inside a *worker* (one of the service's
``<SERVICE>_MAX_WORKERS``, 10 for most, shared with RPC and event handlers), so ten clients
that send a body one byte every few seconds hold every worker and the service stops
answering, ``/health`` included; and it reads a 50 MB body before anyone has checked a token. Here, in the
connection's own green thread and before a worker is taken:

1. the caller's token is checked (routes that take a body and need one);
2. the body is refused unless it is JSON (415) or within the route's size (413);
3. it is read against a deadline for the whole body (408), not only per read;

so a slow or oversized client costs one green thread and at most the route's limit in
memory, never a worker. At most ``MAX_RECEIVING`` bodies are received at once. The
console's forms and uploads are read by the same ``receive_body`` (services.console.service).

Every failure ends as a typed error with a Chinese message: an infrastructure failure
(database, broker) is a 503 ``unavailable``, counted in
``qinglian_infrastructure_errors_total``, its details only in the log; anything else
unexpected is a 500 whose body says nothing about the code.
"""
from __future__ import annotations

import http.client as http_client
import http.server as http_server
import json
import logging
import re
import socket
import types

import eventlet
from eventlet.semaphore import Semaphore
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer as NamekoWebServer, WsgiApp as NamekoWsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from shared import config, logs
from shared.errors import (
    BadInput, PayloadTooLarge, QinglianError, RequestTimeout, Unavailable, UnsupportedMediaType,
)

log = logging.getLogger(__name__)

MAX_RECEIVING = 256  # bodies being received at once (x the limit = worst-case memory)
BODY_METHODS = ("POST", "PUT", "PATCH")


def body_limit(cfg) -> int:
    return int(config._get("QINGLIAN_HTTP_BODY_BYTES", cfg, str(1024 * 1024)))


def client_timeout(cfg) -> float:
    return float(config._get("QINGLIAN_HTTP_TIMEOUT", cfg, "10"))


def upload_timeout(cfg) -> float:
    """The deadline for an upload's whole body (evidence files, up to 20 MiB): 120 s
    carries 20 MiB at 1.4 Mbit/s, the upstream of a slow office line (ADSL or a shared 4G
    router give 1-2 Mbit/s up); ``QINGLIAN_HTTP_TIMEOUT``'s 10 s would need 17 Mbit/s."""
    return float(config._get("QINGLIAN_HTTP_UPLOAD_TIMEOUT", cfg, "120"))


# -- responses ------------------------------------------------------------------------
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


# -- request parts ----------------------------------------------------------------------
def _no_constants(name):
    raise ValueError("%s is not JSON" % name)


def request_json(request):
    """The body as a JSON value ({} when empty): strict UTF-8, no NaN/Infinity, and a
    nesting too deep for the parser is a 400 like any other malformed body (the depth a
    schema accepts is checked after, in ``shared.fields.refuse_unsafe``)."""
    raw = request.get_data()
    if not raw:
        return {}
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadInput("请求体不是有效的 UTF-8 文本", {"_schema": ["请求体须为 UTF-8 编码的 JSON"]}) from None
    except RecursionError:
        raise BadInput("请求体的 JSON 嵌套过深", {"_schema": ["JSON 嵌套过深"]}) from None
    except ValueError as exc:
        where = ("（第 %d 行第 %d 列）" % (exc.lineno, exc.colno)) if hasattr(exc, "lineno") else ""
        raise BadInput("请求体不是有效的 JSON%s" % where, {"_schema": ["不是有效的 JSON"]}) from None


_VERSION = re.compile(r'(?:W/)?"?([0-9]{1,18})"?', re.ASCII)


def if_match(request) -> int | None:
    """``If-Match: <version>`` (ASCII digits; ``"3"`` and ``W/"3"`` too) or None."""
    value = request.headers.get("If-Match")
    if value is None:
        return None
    match = _VERSION.fullmatch(value.strip())
    if match is None:
        raise BadInput("If-Match 应为记录的版本号", {"If-Match": ["应为正整数（ASCII 数字）"]})
    return int(match.group(1))


# -- infrastructure failures ------------------------------------------------------------
def _infrastructure_types():
    import sqlite3

    import amqp.exceptions
    import kombu.exceptions
    import sqlalchemy.exc
    types = [(sqlalchemy.exc.OperationalError, "database"), (sqlalchemy.exc.InterfaceError, "database"),
             (sqlalchemy.exc.DisconnectionError, "database"), (sqlalchemy.exc.TimeoutError, "database"),
             (sqlite3.OperationalError, "database"), (sqlite3.InterfaceError, "database"),
             (amqp.exceptions.ConnectionError, "broker"), (kombu.exceptions.OperationalError, "broker"),
             (ConnectionError, "network"), (socket.timeout, "network")]
    try:
        import psycopg2
        types += [(psycopg2.OperationalError, "database"), (psycopg2.InterfaceError, "database")]
    except ImportError:  # pragma: no cover - SQLite-only install
        pass
    return tuple(types)


_INFRASTRUCTURE = _infrastructure_types()


def infrastructure(exc: BaseException) -> str | None:
    """Which dependency ``exc`` says failed ("database", "broker", "network"), or None."""
    for cls, what in _INFRASTRUCTURE:
        if isinstance(exc, cls):
            return what
    if getattr(exc, "connection_invalidated", False):  # sqlalchemy DBAPIError
        return "database"
    return None


def unavailable(exc: BaseException, what: str, metrics, where: str) -> Unavailable:
    """The 503 a caller gets for ``exc``; logged with its details and counted."""
    log.error("%s: %s failure: %s: %s", where, what, type(exc).__name__, exc, exc_info=exc)
    if metrics is not None:
        infrastructure_counter(metrics).labels(metrics.service, what).inc()
    return Unavailable()


def infrastructure_counter(metrics):
    return metrics.counter("qinglian_infrastructure_errors_total",
                           "Requests refused with 503 because a database or the broker failed",
                           labels=("dependency",))


def as_qinglian_error(exc: BaseException, metrics, where: str) -> QinglianError:
    if isinstance(exc, QinglianError):
        return exc
    what = infrastructure(exc)
    if what is not None:
        return unavailable(exc, what, metrics, where)
    log.error("%s: unexpected %s: %s", where, type(exc).__name__, exc, exc_info=exc)
    if metrics is not None:
        metrics.counter("qinglian_http_unexpected_errors_total",
                        "HTTP requests that failed with an unexpected error (500)").labels(
            metrics.service).inc()
    return QinglianError()


# -- reading a body ---------------------------------------------------------------------
_receiving = Semaphore(MAX_RECEIVING)  # one count for every entrypoint of the process


def has_body(request) -> bool:
    return bool(request.content_length) or \
        "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def receive_body(request, limit: int, seconds: float) -> None:
    """Read the request's body now, in the connection's green thread (before a worker is
    taken), into the request - ``get_data()``, ``form`` and ``files`` then parse it from
    memory: at most ``limit`` bytes (else ``PayloadTooLarge``), the whole body within
    ``seconds`` (else ``RequestTimeout``), at most ``MAX_RECEIVING`` at once (else
    ``Unavailable``). After a refusal, ``close_after(request)``: the rest is not read."""
    length = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if length and length > limit:
        raise too_large(limit)
    if not _receiving.acquire(blocking=False):
        raise Unavailable("服务繁忙（同时上传的请求过多），请稍后重试")
    try:
        # chunked: werkzeug's stream would be empty; eventlet's input decodes chunks
        stream = request.environ["wsgi.input"] if chunked else request.stream
        request._cached_data = _read(stream, length, limit, seconds)
    finally:
        _receiving.release()


def too_large(limit: int) -> PayloadTooLarge:
    """The 413 for a body over ``limit`` bytes, the limit as a person reads it."""
    size = "%d 字节" % limit if limit < 1024 * 1024 else "%g MB" % round(limit / 2**20, 1)
    return PayloadTooLarge("请求体过大（此接口最多 %s）" % size)


def _read(stream, length: int | None, limit: int, seconds: float) -> bytes:
    chunks, size = [], 0
    try:
        with eventlet.Timeout(seconds):
            while True:
                chunk = stream.read(min(64 * 1024, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
    except eventlet.Timeout:
        raise RequestTimeout("请求体未在 %g 秒内发送完" % seconds) from None
    except socket.timeout:
        raise RequestTimeout() from None
    if length and size < length:
        raise BadInput("请求体不完整", {"_schema": ["连接在请求体发送完之前断开"]})
    return b"".join(chunks)


def close_after(request) -> None:
    """Close the connection after this answer (a refused body is not read to its end)."""
    protocol = request.environ.get("qinglian.protocol")
    if protocol is not None:
        protocol.close_connection = 1


# -- the server and the entrypoint ------------------------------------------------------
# A header line the fast path takes as it is: a name of visible characters but ":", the
# colon, a value without CR or LF, the line's end (what every browser and client sends).
_PLAIN_HEADER = re.compile(r"[!-9;-~]+:[^\r\n]*\r?\n\Z")


def parse_headers(fp, _class=http_client.HTTPMessage):
    """``http.client.parse_headers`` without the email package for the usual header block.
    The stdlib hands every request's headers to ``email.parser``: 19 us of CPU for a
    check-in's four headers, 32 us for a phone browser's eleven, against 4 and 10 us here
    (docs/benchmarks.md, 4 December), on every request of every service. The
    lines are read by the stdlib's own ``_read_headers`` (its line and count limits);
    when each is a plain ``Name: value`` line, the message gets the (name, value) pairs
    the email package's compat32 policy would have made (value without its leading
    blanks and line end); any other block - a folded line, a stray CR, a line without a
    colon, an empty name - is parsed by the email package exactly as before."""
    lines = http_client._read_headers(fp)
    pairs = []
    for raw in lines[:-1]:
        line = raw.decode("iso-8859-1")
        if not _PLAIN_HEADER.match(line):
            return _email_headers(lines, _class)
        name, value = line.split(":", 1)
        pairs.append((name, value.lstrip(" \t").rstrip("\r\n")))
    message = _class()
    message._headers = pairs
    return message


def _email_headers(lines, _class):
    """The stdlib's parse of a header block already read (``http.client.parse_headers``'s
    second half)."""
    import email.parser
    return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))


# http.server's own ``parse_request`` (the request line, the Connection and Expect
# headers, its error answers), run with ``http.client.parse_headers`` resolved to the one
# above: the same function, only its globals' ``http`` differs (no copy of the stdlib)
_client = types.SimpleNamespace(**{**vars(http_client), "parse_headers": parse_headers})
_parse_request = types.FunctionType(
    http_server.BaseHTTPRequestHandler.parse_request.__code__,
    {**vars(http_server), "http": types.SimpleNamespace(client=_client)}, "parse_request")


class Protocol(HttpOnlyProtocol):
    """eventlet's protocol with a deadline for a request's line and headers (a client that
    trickles them a byte at a time would otherwise keep its connection, and a file
    descriptor, for ever: the socket timeout is per read), which also bounds how long an
    idle keep-alive connection stays open. It lets the application close a connection
    whose body it refused to read (else eventlet would read and discard the whole body).

    Each connection has TCP_NODELAY: eventlet writes a response through a 16 KB buffer, so
    an answer larger than that leaves in two sends (the headers, then the body), and with
    Nagle's algorithm the body waited for the client's delayed ACK of the headers - 40 ms
    on Linux - on every such answer (the console's 上下互比 side by side, 17 KB, took 60 ms
    where its work took 15). The server writes whole responses, it never dribbles."""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self):
        self._headers_due = eventlet.Timeout(self.server.socket_timeout)
        try:
            super().handle_one_request()
        except eventlet.Timeout as exc:
            if exc is not self._headers_due:
                raise
            self.close_connection = 1  # too slow: close without an answer
        finally:
            self._headers_due.cancel()

    parse_request = _parse_request

    def get_environ(self, *args, **kw):
        self._headers_due.cancel()  # the headers are in; the body has its own deadline
        env = super().get_environ(*args, **kw)
        env["qinglian.protocol"] = self
        return env


class WsgiApp(NamekoWsgiApp):
    """nameko's, with each (method, path)'s route matched once: nameko binds its URL map
    to every request's environ and walks the matcher (~10 us of CPU a request, 0.3 us
    looked up; docs/benchmarks.md, 4 December), and the routes depend on the
    method and the path only (no host or subdomain rules). A request that matches no
    route, or is redirected, is matched again each time; at most 10,000 paths are kept."""

    def __init__(self, server):
        super().__init__(server)
        self._matched: dict[tuple[str, str], tuple] = {}

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)  # as nameko's: no body read before a worker
        key = (environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        try:
            hit = self._matched.get(key)
            if hit is None:
                hit = self.url_map.bind_to_environ(environ).match()
                if len(self._matched) >= 10_000:
                    self._matched.clear()
                self._matched[key] = hit
            provider, values = hit
            request.path_values = dict(values)
            rv = provider.handle_request(request)
        except HTTPException as exc:
            rv = exc
        return rv(environ, start_response)


class WebServer(NamekoWebServer):
    """nameko's server with a socket timeout for every client read and write: an idle
    or stalled connection is closed instead of being kept for ever."""

    def get_wsgi_app(self):
        return WsgiApp(self)

    @property
    def sharing_key(self):
        return NamekoWebServer  # one server per container, whichever @http binds first

    def context_data_from_headers(self, request):
        # the worker's correlation id (shared.logs): chosen once per request
        cid = request.environ.get("qinglian.correlation_id") or logs.correlation_from(request.headers)
        return {"correlation_id": cid}

    def get_wsgi_server(self, sock, wsgi_app, protocol=Protocol, debug=False):
        server = super().get_wsgi_server(sock, wsgi_app, protocol=Protocol, debug=debug)
        server.socket_timeout = client_timeout(self.container.config)
        return server


class HttpEntrypoint(HttpRequestHandler):
    """``@http(method, url, body="json"|"raw"|None, max_body=None, public=False)``.

    ``body``: "json" (the default for POST/PUT/PATCH) refuses any other content type;
    "raw" takes any (file uploads); None takes no body. ``max_body``: the route's limit
    in bytes (default ``QINGLIAN_HTTP_BODY_BYTES``). A route that takes a body checks
    the bearer token *before* reading it unless ``public``; the actor is then in
    ``request.environ["qinglian.actor"]``.
    """

    server = WebServer()

    def __init__(self, method, url, body=..., max_body=None, public=False, body_seconds=None, **kw):
        super().__init__(method, url, **kw)
        takes_body = any(m in BODY_METHODS for m in method.split(","))
        self.body = ("json" if takes_body else None) if body is ... else body
        self.max_body = max_body
        self.public = public
        self.body_seconds = body_seconds

    def _provider(self):
        for dep in self.container.dependencies:
            if hasattr(dep, "users") and hasattr(dep, "metrics"):
                return dep
        return None

    def handle_request(self, request):
        cid = request.environ["qinglian.correlation_id"] = logs.correlation_from(request.headers)
        # this connection's green thread, until its next request: the access log line
        # written after the response carries the id too
        logs.bind(correlation_id=cid, service=self.container.service_name)
        response = self._handle(request)
        response.headers["X-Correlation-Id"] = cid  # the id to quote when asking about it
        return response

    def _handle(self, request):
        request.shallow = False
        provider = self._provider()
        metrics = getattr(provider, "metrics", None)
        try:
            self._receive(request, provider)
        except Exception as exc:  # noqa: BLE001 - every refusal becomes a typed answer
            error = as_qinglian_error(exc, metrics, "HTTP %s %s" % (request.method, request.path))
            if metrics is not None:
                metrics.counter("qinglian_http_refused_total",
                                "HTTP requests refused before an operation ran, by reason",
                                labels=("reason",)).labels(metrics.service, error.code).inc()
            close_after(request)
            return error_response(error)
        return super().handle_request(request)

    def _receive(self, request, provider) -> None:
        if not has_body(request):
            return
        if self.body is None:
            raise PayloadTooLarge("此接口不接受请求体")
        if not self.public and provider is not None:
            request.environ["qinglian.actor"] = provider.users.authenticate(bearer_token(request))
        if self.body == "json" and (request.mimetype != "application/json" or
                                    request.mimetype_params.get("charset", "utf-8").lower()
                                    not in ("utf-8", "utf8")):
            raise UnsupportedMediaType()
        cfg = self.container.config
        receive_body(request, self.max_body or body_limit(cfg), (self.body_seconds or client_timeout)(cfg))

    def response_from_exception(self, exc):
        # nameko's would answer "Error: OperationalError: <driver text>" with a 500
        provider = self._provider()
        error = as_qinglian_error(exc, getattr(provider, "metrics", None), "HTTP %s" % self.url)
        return error_response(error)


http = HttpEntrypoint.decorator


class dependency_failures:  # noqa: N801 - used as a context manager
    """``with dependency_failures(metrics, where):`` turns a database or broker failure
    into ``Unavailable`` (logged, counted); every other exception passes unchanged. Used
    around each operation, so RPC callers get the same typed 503 as HTTP callers."""

    def __init__(self, metrics, where: str):
        self.metrics, self.where = metrics, where

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, QinglianError):
            return False
        what = infrastructure(exc)
        if what is None:
            return False
        raise unavailable(exc, what, self.metrics, self.where) from None


class LivenessEntrypoint(HttpEntrypoint):
    """``GET /health/live``: answered without a worker and without any I/O."""

    def handle_request(self, request):
        return json_response({"live": True, "service": self.container.service_name})


live = LivenessEntrypoint.decorator
