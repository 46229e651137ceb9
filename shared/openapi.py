"""OpenAPI 3.1 documents of the services' HTTP APIs, generated from the registry.

Every command and query a service declares in ``application.py`` (``@app.command`` /
``@app.query``: name, marshmallow schema, roles, scope, status) is one path here:
commands ``POST /api/<name>`` with the schema as the JSON body, queries ``GET
/api/<name>`` with the schema's fields as query parameters. ``apispec`` and its
marshmallow plugin turn the schemas into JSON Schema; the roles are ``x-roles`` (and
the bearer security requirement unless the query is public); the responses are the
declared success status and the errors the request path can answer (``shared.errors``),
each with the error body ``{"error", "message", "fields"}``.

Each service serves its document at ``GET /openapi.json``; ``contracts/openapi/
<service>.json`` is the same document kept in the repository, written by ``qinglian
contracts generate`` and compared by ``drift()`` (tests/unit/test_contracts_and_docs.py).
docs/API.md (``shared.apidoc``) is rendered from the same registry.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields as ma_fields

from shared import registry
from shared.config import DEFAULT_PORTS
from shared.errors import (BadInput, Conflict, ConcurrencyError, Forbidden, NotFound, PayloadTooLarge,
                           RequestTimeout, RuleViolation, StoreBusy, Unauthenticated, Unavailable,
                           UnsupportedMediaType)
from shared.fields import Pattern

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "contracts" / "openapi"

ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "machine code (bad_input, forbidden, ...)"},
        "message": {"type": "string", "description": "what a person reads (Chinese)"},
        "fields": {"type": "object", "description": "bad_input: the messages per field",
                   "additionalProperties": True},
    },
}


# the answers every route may give besides its success (shared.errors), once each
ERROR_RESPONSES = {
    "BadInput": (400, (BadInput,)),
    "Unauthenticated": (401, (Unauthenticated,)),
    "Forbidden": (403, (Forbidden,)),
    "NotFound": (404, (NotFound,)),
    "RequestTimeout": (408, (RequestTimeout,)),
    "Conflict": (409, (Conflict, RuleViolation, ConcurrencyError)),
    "PayloadTooLarge": (413, (PayloadTooLarge,)),
    "UnsupportedMediaType": (415, (UnsupportedMediaType,)),
    "Unavailable": (503, (StoreBusy, Unavailable)),
}


def _error_response(classes) -> dict:
    codes = [c.code for c in classes]
    return {"description": "%s (%s)" % (classes[0].default_message, ", ".join(codes)),
            "content": {"application/json": {"schema": {
                "allOf": [{"$ref": "#/components/schemas/Error"}],
                "properties": {"error": {"enum": codes}}}}}}


def _ref(name: str) -> dict:
    return {"$ref": "#/components/responses/%s" % name}


def _pattern(self, field, **kwargs) -> dict:
    """``shared.fields.Pattern`` (full match, ASCII) as a JSON Schema pattern."""
    for v in field.validators:
        if isinstance(v, Pattern):
            regex = v.regex.pattern
            return {"pattern": "^(?:%s)$" % regex}
    return {}


def _load_app(service: str):
    return registry.application(service)


def services_with_api() -> list[str]:
    return list(registry.services())


def _schema_name(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") and len(name) > 6 else name


def document(app, service: str | None = None) -> dict:
    """The OpenAPI 3.1 document of one service's ``/api/*`` routes."""
    service = service or app.service
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="Qinglian %s API" % service, version="1", openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": (
            "The %s service of a Qinglian node (default port %s). Generated from the "
            "service's declarations by `qinglian contracts generate`; served at "
            "GET /openapi.json; see docs/API.md." % (service, DEFAULT_PORTS.get(service, "?")))},
    )
    plugin.converter.add_attribute_function(_pattern)
    spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer",
        "description": "an API token (`qinglian user add`) or a console session token"})
    spec.components.schema("Error", ERROR_SCHEMA)
    for name, (_status, classes) in ERROR_RESPONSES.items():
        spec.components.response(name, _error_response(classes))
    for name, op in sorted(app.operations.items()):
        spec.path(path="/api/%s" % name, operations={
            ("post" if op.kind == "command" else "get"): _operation(op)})
    doc = spec.to_dict()
    return json.loads(json.dumps(doc, sort_keys=False, default=str))


def _operation(op) -> dict:
    doc = (op.doc or "").strip()
    who = "anyone (public)" if op.public else ", ".join(op.roles)
    scoped = op.scope and "unit-admin" in op.roles
    scope = op.scope if isinstance(op.scope, str) else ("derived from the record" if op.scope else None)
    description = "Who: %s%s." % (who, "; unit-admins only within their subtree (unit: `%s`)"
                                  % scope if scoped else "")
    out = {
        "operationId": op.name,
        "summary": doc.splitlines()[0] if doc else op.name,
        "description": description,
        "tags": [op.kind],
        "x-roles": [] if op.public else list(op.roles),
        "responses": {str(op.status): {
            "description": "成功" if op.kind == "query" else "已执行",
            "content": {"application/json": {"schema": {}}}}},
    }
    if scope:
        out["x-unit-scope"] = scope
    errors = {"400": _ref("BadInput"), "404": _ref("NotFound"), "408": _ref("RequestTimeout"),
              "503": _ref("Unavailable")}
    if not op.public:
        out["security"] = [{"bearer": []}]
        errors["401"] = _ref("Unauthenticated")
        errors["403"] = _ref("Forbidden")
    if op.kind == "command":
        errors["409"] = _ref("Conflict")
        errors["413"] = _ref("PayloadTooLarge")
        errors["415"] = _ref("UnsupportedMediaType")
        out["requestBody"] = {"required": False, "content": {"application/json": {"schema": op.schema}}}
        out["parameters"] = [{
            "in": "header", "name": "If-Match", "required": False,
            "description": "the record's version you read: a changed record is refused with 409",
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}]
    else:
        out["parameters"] = [{"in": "query", "schema": op.schema}] if op.schema._declared_fields else []
    out["responses"].update(sorted(errors.items()))
    return out


def render(app, service: str | None = None) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # apispec: same-named schemas resolved
        return json.dumps(document(app, service), indent=2, ensure_ascii=False) + "\n"


_served: dict[int, str] = {}


def served(app, service: str) -> str:
    """The document a running service answers at /openapi.json (rendered once)."""
    text = _served.get(id(app))
    if text is None:
        text = _served[id(app)] = render(app, service)
    return text


def path_for(service: str) -> Path:
    return OPENAPI_DIR / ("%s.json" % service)


def generate() -> list[Path]:
    OPENAPI_DIR.mkdir(parents=True, exist_ok=True)
    changed = []
    for service in services_with_api():
        text = render(_load_app(service), service)
        path = path_for(service)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def drift() -> list[str]:
    """Every route, parameter or response where contracts/openapi/ differs from the code."""
    problems = []
    hint = " (run `qinglian contracts generate`)"
    for service in services_with_api():
        path = path_for(service)
        if not path.exists():
            problems.append("missing contracts/openapi/%s.json%s" % (service, hint))
            continue
        have = json.loads(path.read_text(encoding="utf-8"))
        want = json.loads(render(_load_app(service), service))
        hp, wp = have.get("paths", {}), want.get("paths", {})
        for p in sorted(set(wp) - set(hp)):
            problems.append("%s: route %s is in the code but not in the contract%s" % (service, p, hint))
        for p in sorted(set(hp) - set(wp)):
            problems.append("%s: route %s is in the contract but not in the code%s" % (service, p, hint))
        for p in sorted(set(hp) & set(wp)):
            if hp[p] != wp[p]:
                problems.append("%s: %s differs from the code (parameters, body, roles or "
                                "responses)%s" % (service, p, hint))
        if have.get("components") != want.get("components"):
            problems.append("%s: the schemas under components differ from the code%s" % (service, hint))
        if not problems and have != want:
            problems.append("contracts/openapi/%s.json is out of date%s" % (service, hint))
    return problems
