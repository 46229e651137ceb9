"""Node settings: one place that names every environment variable the code reads.

A node runs with no configuration at all (the embedded default: SQLite files under
``var/<node id>/`` and RabbitMQ on localhost). Every setting can be overridden by an
environment variable, and every nameko service can also get it from its nameko config
(``deploy/config.yaml`` maps the same names), so tests can pass a config dict.

``ENV_VARS`` is read by the compose-file test: the variables docker-compose sets must
be exactly ones the code reads.
"""
from __future__ import annotations

import os
from pathlib import Path

# Default HTTP port of each process (WEB_SERVER_ADDRESS overrides it); which processes
# and services a node has is the registry's (shared/registry.py).
DEFAULT_PORTS = {"console": 8100, "units": 8101, "supervision": 8102, "education": 8103,
                 "exchange": 8104}

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"

# Workers (concurrent calls: HTTP requests, RPCs, event handlers) of each service
# process; unnamed services get nameko's own 10. The console and education take the
# morning check-in burst (docs/benchmarks.md, issue 9): a console check-in holds its
# worker while it waits for education's answer, so with 10 the 500/s burst is served
# ten at a time and education's grouped call carries at most ten check-ins; at 64 both
# spend less CPU per check-in (console 2.50 -> 1.74 ms, education 2.58 -> 1.30 ms).
NAMEKO_MAX_WORKERS = 10
DEFAULT_MAX_WORKERS = {"console": 64, "education": 64}
# the nameko container class every launcher names (SERVICE_CONTAINER_CLS): it gives each
# service its own max_workers(service) - nameko's own config has one for all
CONTAINER_CLS = "shared.service.NodeContainer"

ENV_VARS = {
    "NODE_ID": "this node's id, e.g. city or district-a (default: local)",
    "NODE_LEVEL": "city or district (default: district if NODE_PARENT is set, else city)",
    "NODE_PARENT": "the parent node's id (a district's city); empty for the city",
    "AMQP_URI": "this node's RabbitMQ (default %s)" % DEFAULT_AMQP_URI,
    "RABBITMQ_API_URL": "this node's RabbitMQ management API, http(s)://[user:password@]host:port "
                        "(default: AMQP_URI's host, port 15672, AMQP_URI's credentials)",
    "QINGLIAN_VAR": "folder for SQLite files, keys and benchmark output (default: var)",
    "NODE_DATABASE_URL": "users, API tokens, node registry (default: SQLite under var/)",
    "UNITS_DATABASE_URL": "the units service's event store and read models",
    "SUPERVISION_DATABASE_URL": "the supervision service's event store and read models",
    "EDUCATION_DATABASE_URL": "the education service's event store and read models",
    "EXCHANGE_DATABASE_URL": "the exchange service's event store and read models",
    "WEB_SERVER_ADDRESS": "host:port of one service process's HTTP server (nameko)",
    "QINGLIAN_HTTP_BODY_BYTES": "largest JSON request body a service reads, in bytes (default 1048576)",
    "QINGLIAN_HTTP_TIMEOUT": "seconds a client has for its request line and headers, for its body "
                             "and for each socket read; an idle connection is closed after them "
                             "(default 10; the console too)",
    "QINGLIAN_HTTP_UPLOAD_TIMEOUT": "seconds an upload's whole body has: supervision's /evidence and "
                                    "the console's evidence forms (default 120: 20 MiB at 1.4 Mbit/s)",
    "QINGLIAN_NODE_NAMES": "the nodes' Chinese names as pages show them, node id=名称 separated by "
                           "commas, e.g. city=市本级,district-a=甲区 (default: none; the console then "
                           "names a node by the top unit of its records)",
    "QINGLIAN_TZ": "the users' time zone for days and months (default Asia/Shanghai)",
    "UNIT_MIRROR_CATCHUP_SECONDS": "how often a service's unit mirror asks the units service for "
                                   "unit events its queue missed (default 60; every second until "
                                   "the first answer after start)",
    "EDUCATION_INDICATOR_GRACE_DAYS": "education service: days after a month ends during which its "
                                      "figures stay provisional for late entries (default 5)",
    "SUPERVISION_INDICATOR_GRACE_DAYS": "supervision service: days after a month ends during which "
                                        "its published figures stay provisional for late entries "
                                        "(default 5)",
    "QINGLIAN_PDF_FONT": "a TrueType CJK font file PDF exports embed (default: Debian's "
                         "fonts-wqy-zenhei, wqy-microhei or arphic uming, the first found)",
    "QINGLIAN_RELAY": "on (default): run the outbox relay in this service process; process: "
                      "run it as the service's child process, on another core (a node that "
                      "catches up on PostgreSQL: docs/scaling.md); off: no relay",
    "QINGLIAN_TOKEN_DAYS": "how long a new API token is valid, in days (default 90)",
    "QINGLIAN_FEDERATION": "exchange service: on (default) or off (no receive/sync threads)",
    "FEDERATION_SYNC_SECONDS": "exchange service: how often peers' feeds are polled (default 60)",
    "FEDERATION_GAP_GRACE_SECONDS": "exchange service: wait before pulling a sequence gap (default 0.25)",
    "FEDERATION_GAP_CEILING_SECONDS": "exchange service: longest back-off between pulls for a gap that stays open (default 300)",
    "FEDERATION_ANCHOR_SECONDS": "exchange service: how often this node's signed log heads go to the node holding its anchors (default 300; 0 never)",
    "CONSOLE_IDLE_MINUTES": "console: a session unused this long is ended (default 30)",
    "CONSOLE_SESSION_HOURS": "console: no session lives longer than this (default 12)",
    "CONSOLE_SECURE_COOKIE": "console: on behind TLS, so the session cookie is sent over HTTPS only (default off)",
    "CONSOLE_LOCK_AFTER": "console: failed sign-ins of one user name before it is locked (default 5)",
    "CONSOLE_ADDRESS_LOCK_AFTER": "console: failed sign-ins from one address before it is locked (default 20)",
    "CONSOLE_LOCK_MINUTES": "console: how long such a lock lasts (default 15)",
    "CONSOLE_BACKOFF_SECONDS": "console: wait after the 2nd failed sign-in, doubled after each next (default 1)",
    "CONSOLE_DUE_SOON_DAYS": "console: a deadline within this many days is shown yellow (default 7)",
    "CONSOLE_PUBLIC_URL": "console: its address as printed on QR codes (default: the address it was reached at)",
    "CONSOLE_PUBLIC_REPORTS_PER_HOUR": "console: complaints the public page takes from one client address per hour (default 5)",
    **{"%s_MAX_WORKERS" % service.upper(): "%s service: concurrent workers of its process "
       "(HTTP requests, RPCs and event handlers at once; an integer >= 1, default %d)"
       % (service, DEFAULT_MAX_WORKERS.get(service, NAMEKO_MAX_WORKERS)) for service in DEFAULT_PORTS},
}


def _get(name: str, config: dict | None = None, default: str | None = None) -> str | None:
    if config and config.get(name):
        return config[name]
    return os.environ.get(name) or default


def var_dir(config: dict | None = None) -> Path:
    return Path(_get("QINGLIAN_VAR", config, "var"))


def node_id(config: dict | None = None) -> str:
    return _get("NODE_ID", config, "local")


def node_level(config: dict | None = None) -> str:
    """``NODE_LEVEL`` if set; otherwise a node with a parent is a district and one
    without is the top of its own tree (so `make run` with no settings is a working,
    unfederated node)."""
    return _get("NODE_LEVEL", config) or ("district" if node_parent(config) else "city")


def node_parent(config: dict | None = None) -> str | None:
    return _get("NODE_PARENT", config, None) or None


def amqp_uri(config: dict | None = None) -> str:
    return _get("AMQP_URI", config, DEFAULT_AMQP_URI)


def relay_mode(config: dict | None = None) -> str:
    """``on``, ``process`` or ``off`` (QINGLIAN_RELAY; ``0``/``false`` mean off, as before)."""
    value = str(_get("QINGLIAN_RELAY", config, "on") or "on").strip().lower()
    if value in ("off", "0", "false"):
        return "off"
    if value not in ("on", "process"):
        raise ValueError("QINGLIAN_RELAY 应为 on、process 或 off（当前为 %r）" % value)
    return value


def pdf_font(config: dict | None = None) -> str | None:
    """The TrueType CJK font file PDF exports embed; None: the first Debian one found."""
    return _get("QINGLIAN_PDF_FONT", config) or None


def token_days(config: dict | None = None) -> float:
    value = _get("QINGLIAN_TOKEN_DAYS", config, "90")
    try:
        days = float(value)
    except ValueError:
        days = 0
    if not 0 < days <= 3660:
        raise ValueError("QINGLIAN_TOKEN_DAYS must be a number of days in (0, 3660], not %r" % value)
    return days


def max_workers(service: str, config: dict | None = None) -> int:
    """``<SERVICE>_MAX_WORKERS``: how many workers the service's nameko container runs at
    once (``DEFAULT_MAX_WORKERS``, else nameko's 10). A value that is not a whole number
    of at least 1 is refused when the container is built, i.e. at start."""
    name = "%s_MAX_WORKERS" % service.upper()
    value = (config or {}).get(name)
    if value is None or value == "":
        value = os.environ.get(name) or None
    if value is None:
        return DEFAULT_MAX_WORKERS.get(service, NAMEKO_MAX_WORKERS)
    text = str(value).strip()
    if isinstance(value, bool) or not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ValueError("%s 应为不小于 1 的整数（当前为 %r）" % (name, value))
    return int(text)


def rabbit_api_url(config: dict | None = None) -> str | None:
    """The management API when set; None: derive it from the AMQP URI."""
    return _get("RABBITMQ_API_URL", config, None) or None


def node_names(config: dict | None = None) -> dict[str, str]:
    """``QINGLIAN_NODE_NAMES`` as {node id: Chinese name}."""
    raw = _get("QINGLIAN_NODE_NAMES", config, "") or ""
    names = {}
    for part in raw.replace("，", ",").split(","):
        node, sep, name = part.partition("=")
        if sep and node.strip() and name.strip():
            names[node.strip()] = name.strip()
    return names


def timezone_name(config: dict | None = None) -> str:
    return _get("QINGLIAN_TZ", config, "Asia/Shanghai")


def _sqlite_default(config: dict | None, filename: str) -> str:
    folder = var_dir(config) / node_id(config)
    return "sqlite:///%s" % (folder / filename)


def database_url(service: str, config: dict | None = None) -> str:
    """The database of one service: its event log, tracking rows and read models."""
    return _get("%s_DATABASE_URL" % service.upper(), config) or _sqlite_default(
        config, "%s.db" % service
    )


def node_database_url(config: dict | None = None) -> str:
    """The node's own database: users, hashed API tokens, trusted peer nodes."""
    return _get("NODE_DATABASE_URL", config) or _sqlite_default(config, "node.db")


def web_address(service: str, config: dict | None = None) -> str:
    return _get("WEB_SERVER_ADDRESS", config, "0.0.0.0:%d" % DEFAULT_PORTS[service])
