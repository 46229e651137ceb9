"""Logs an operator can use: one JSON object per line, with the correlation id.

Every record gets ``correlation_id``, ``service`` and ``node`` from the context it was
logged in (a ``ContextVar``: each green thread has its own), whatever handler writes
it - so a request can be followed from the HTTP call or console action through RPC,
the events it caused, the relay and the nodes that applied them:

* HTTP: ``X-Correlation-Id`` (or ``X-Request-Id``) if the caller sent a well-formed one,
  else a new id; echoed in the response (``shared.http``);
* RPC: nameko carries the caller's ``correlation_id`` in the message headers;
* events: the id is in each event's metadata; consumers log under it (``handle_once``);
* relay and federation publisher: the AMQP ``correlation_id`` property of each message;
* other nodes apply a record under its origin's correlation id (``federation``).

``deploy/config.yaml`` (nameko's LOGGING) writes these records with ``JsonFormatter``.
"""
from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

HEADERS = ("X-Correlation-Id", "X-Request-Id")
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # ids travel in headers and logs

_context: ContextVar[dict] = ContextVar("qinglian_log_context", default={})

# `nameko run` imports eventlet and pkg_resources before any of our code: these filters
# (PYTHONWARNINGS, set by `qinglian run` and deploy/Dockerfile) hide exactly those two
# notices - each is attributed to the nameko module that imports the package.
QUIET_WARNINGS = ("ignore::Warning:nameko.cli.commands,"
                  "ignore:pkg_resources is deprecated:UserWarning:nameko.cli.main")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def correlation_from(headers) -> str:
    """The caller's id if it sent a well-formed one, else a new one."""
    for name in HEADERS:
        value = (headers.get(name) or "").strip()
        if _WELL_FORMED.match(value):
            return value
    return new_correlation_id()


def well_formed(value) -> str | None:
    return value if isinstance(value, str) and _WELL_FORMED.match(value) else None


def correlation_id() -> str | None:
    """The correlation id bound for this green thread (its worker's), if any."""
    return _context.get().get("correlation_id")


def bind(**fields) -> object:
    """Add fields to this green thread's log context; returns a token for ``reset``."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def reset(token) -> None:
    _context.reset(token)


_FIELDS = ("correlation_id", "service", "node", "task")  # task: entrypoint or thread
_base_factory = logging.getLogRecordFactory()
# the process's own service and node (one service per `nameko run`), for records
# logged outside any context: start-up, nameko's runner, kombu
process_defaults: dict = {}


def _record_factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    ctx = _context.get()
    for name in _FIELDS:
        if not hasattr(record, name):
            setattr(record, name, ctx.get(name, process_defaults.get(name)))
    return record


logging.setLogRecordFactory(_record_factory)


class ExpectedErrors(logging.Filter):
    """nameko logs every typed error an RPC caller gets back (bad input, not found, ...)
    as a WARNING with its traceback: that is the caller's answer, not the operator's
    problem. Such a record is kept, as one INFO line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "nameko.containers" and str(record.msg).startswith("(expected) error"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


class JsonFormatter(_JsonFormatter):
    """``{"time", "level", "logger", "message", "process", "correlation_id", "service",
    "node", "task", ...}`` (and any ``extra=``); an exception goes under ``exc_info``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("json_ensure_ascii", False)  # Chinese stays readable
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level",
                                            "name": "logger"})
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(process)d "
                         "%(correlation_id)s %(service)s %(node)s %(task)s", *args, **kwargs)

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        from datetime import datetime, timezone
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
