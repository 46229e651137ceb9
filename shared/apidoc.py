"""docs/API.md, generated from the services' declarations so it cannot drift (the
OpenAPI documents, ``shared.openapi``, are generated from the same registry).

`qinglian docs api` rewrites it; tests/unit/test_contracts_and_docs.py fails when it is out of date.
"""
from __future__ import annotations

from pathlib import Path

from marshmallow import fields, validate

from shared import registry
from shared.config import DEFAULT_PORTS
from shared.fields import Pattern

API_MD = Path(__file__).resolve().parent.parent / "docs" / "API.md"


def _field_doc(name: str, f: fields.Field) -> str:
    kind = type(f).__name__
    if isinstance(f, fields.Nested):
        inner = f.nested if isinstance(f.nested, type) else type(f.nested)
        kind = "object (%s)" % ", ".join(sorted(inner._declared_fields))
    elif isinstance(f, fields.List):
        inner = f.inner
        if isinstance(inner, fields.Nested):
            nested = inner.nested if isinstance(inner.nested, type) else type(inner.nested)
            kind = "list of objects (%s)" % ", ".join(sorted(nested._declared_fields))
        else:
            kind = "list of %s" % type(inner).__name__
    rules = []
    for v in f.validators:
        if isinstance(v, validate.OneOf):
            rules.append("one of: %s" % ", ".join(map(str, v.choices)))
        elif isinstance(v, validate.Length):
            rules.append("length %s..%s" % (v.min if v.min is not None else 0,
                                            v.max if v.max is not None else "∞"))
        elif isinstance(v, validate.Range):
            rules.append("range %s..%s" % (v.min, v.max))
        elif isinstance(v, Pattern):
            rules.append("pattern `%s` (the whole value, ASCII)" % v.regex.pattern)
        elif getattr(v, "rule", None):
            rules.append(v.rule)
    req = "required" if f.required else "optional"
    return "| `%s` | %s | %s | %s |" % (name, kind, req, "; ".join(rules).replace("|", "\\|"))


def render() -> str:
    out = [
        "# API",
        "",
        "Generated from each service's `application.py` by `qinglian docs api`; do not edit by hand.",
        "The same declarations as OpenAPI 3.1: `GET /openapi.json` on each service, kept in",
        "`contracts/openapi/<service>.json` (`qinglian contracts generate`).",
        "",
        "Every command and query is available three ways:",
        "",
        "* **HTTP** on the service's port: commands `POST /api/<name>` with a JSON body",
        "  (`Content-Type: application/json`, UTF-8, at most `QINGLIAN_HTTP_BODY_BYTES`, sent within",
        "  `QINGLIAN_HTTP_TIMEOUT` seconds), queries `GET /api/<name>?field=value`.",
        "  `Authorization: Bearer <token>` (tokens from `qinglian user add`), checked before the body",
        "  is read; public queries need none. Optional `If-Match: <version>` on a command refuses",
        "  the edit with 409 if the record changed since you read that version.",
        "* **RPC** (nameko, inside the node): `n.rpc.<service>.<name>(data, actor={\"token\": <API",
        "  token or console session token>}[, expected_version=N])`, checked as the bearer token",
        "  is (a dict of roles is refused, 401); errors come back as the same typed exceptions",
        "  (`shared.errors`).",
        "* Errors: 400 `bad_input` with `fields` (one message list per field; nothing written),",
        "  401 `unauthenticated`, 403 `forbidden` (role, or a unit-admin outside their subtree),",
        "  404 `not_found`, 408 `request_timeout`, 409 `conflict` / `rule_violation` /",
        "  `version_conflict`, 413 `payload_too_large`, 415 `unsupported_media_type`,",
        "  503 `store_busy` / `unavailable` (a database or the broker failed: try again later).",
        "  Every message is Chinese. No input may hold NUL, control characters (but tab and line",
        "  breaks in multi-line text), lone surrogates, bidirectional overrides (U+202A-U+202E,",
        "  U+2066-U+2069), objects or lists nested more than 16 deep, or integers beyond ±2^63.",
        "",
        "Every service also serves `GET /health/live` (the process answers; no I/O, no worker),",
        "`GET /health/ready` (200 when its database, the node database, the broker and the relay",
        "work, else 503 naming which does not; `GET /health` is the same) and `GET /metrics`",
        "(Prometheus).",
        "",
    ]
    for service in registry.services():
        app = registry.application(service)
        out += ["## %s (port %d)" % (service, DEFAULT_PORTS[service]), ""]
        for name, op in sorted(app.operations.items(), key=lambda kv: (kv[1].kind, kv[0])):
            verb = "POST" if op.kind == "command" else "GET"
            who = "anyone (public)" if op.public else ", ".join(op.roles)
            scope = op.scope if isinstance(op.scope, str) else ("derived from the record" if op.scope else "")
            out.append("### `%s` — %s `%s /api/%s`" % (name, op.kind, verb, name))
            out.append("")
            if op.doc:
                out += [op.doc.splitlines()[0], ""]
            subtree = scope and "unit-admin" in op.roles
            out.append("Who: %s%s. Success: %d." % (
                who, "; unit-admins only within their subtree (unit: `%s`)" % scope if subtree else "",
                op.status))
            out.append("")
            schema_fields = op.schema._declared_fields
            if schema_fields:
                out += ["| field | type | | rules |", "|---|---|---|---|"]
                out += [_field_doc(n, f) for n, f in schema_fields.items()]
                out.append("")
    return "\n".join(out).rstrip() + "\n"
