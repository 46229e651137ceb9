"""Event contracts: JSON Schemas per event type and version, and the AsyncAPI document.

* ``contracts/envelope.schema.json`` - the message body every relay publishes.
* ``contracts/events/<type>.v<schema_version>.schema.json`` - one payload schema per
  event type and version: the promise to subscribers, **generated** from the fields the
  event class declares (``shared.aggregate.payload_schema``). A schema of an older
  version (an event upcast on read, ``schema_version`` > 1) is the stored record of what
  old events hold and is kept as it is.
* ``contracts/asyncapi.yaml`` - exchanges, routing keys and messages as they are on the
  wire; generated from the code.

``qinglian contracts generate`` writes both; ``drift()`` lists every way code and contracts
disagree (a missing or extra field, required-ness, a type, any other constraint); a test
fails on any.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from shared import registry
from shared.aggregate import EVENT_TYPES, payload_schema

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
EVENTS_DIR = CONTRACTS / "events"
ASYNCAPI = CONTRACTS / "asyncapi.yaml"


def load_all_event_types() -> dict[str, type]:
    """Every event type the platform records (services and kernel; aggregates defined by
    tests or scripts in the same process are not the platform's and are left out)."""
    import shared.unittree  # noqa: F401 - registers the UnitMirror events
    for service in registry.services():
        registry.get(service).module("domain")
    return {t: cls for t, cls in EVENT_TYPES.items()
            if registry.owner(cls.aggregate_cls.__module__)
            or cls.aggregate_cls.__module__.startswith("shared.")}


def publishers() -> dict[str, list[str]]:
    """service -> event types it publishes (every event in its log goes on its exchange)."""
    load_all_event_types()
    services = registry.services()
    out: dict[str, list[str]] = {s: [] for s in services}
    mirrored = sorted(t for t in EVENT_TYPES if t.startswith("UnitMirror."))
    for event_type, cls in EVENT_TYPES.items():
        service = registry.owner(cls.aggregate_cls.__module__)
        if service in out:
            out[service].append(event_type)
    for service in services:
        if service != "units" and _mirrors_units(service):
            out[service].extend(mirrored)
    return {s: sorted(v) for s, v in out.items() if v}


def _mirrors_units(service: str) -> bool:
    app = registry.application(service)
    return any(getattr(p, "name", "") == "unit_directory" for p in getattr(app, "projections", []))


def schema_file(event_type: str, version: int) -> Path:
    return EVENTS_DIR / ("%s.v%d.schema.json" % (event_type, version))


@lru_cache(maxsize=None)
def _schema(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def validate_message(body: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` matches the contracts."""
    jsonschema.validate(body, _schema(str(CONTRACTS / "envelope.schema.json")),
                        format_checker=jsonschema.FormatChecker())
    path = schema_file(body["type"], body["schema_version"])
    if not path.exists():
        raise jsonschema.ValidationError("no contract for %s v%d (%s)"
                                         % (body["type"], body["schema_version"], path.name))
    jsonschema.validate(body["payload"], _schema(str(path)),
                        format_checker=jsonschema.FormatChecker())


def asyncapi_document() -> dict:
    channels, messages = {}, {}
    for service, types in publishers().items():
        for event_type in types:
            cls = EVENT_TYPES[event_type]
            msg = "%s.v%d" % (event_type, cls.schema_version)
            messages[msg] = {
                "name": event_type,
                "title": event_type,
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else event_type,
                "contentType": "application/json",
                "x-schema-version": cls.schema_version,
                "x-private": bool(cls.private),
                "payload": {"allOf": [
                    {"$ref": "envelope.schema.json"},
                    {"properties": {"payload": {"$ref": "events/%s" % schema_file(event_type, cls.schema_version).name}}},
                ]},
                "bindings": {"amqp": {"deliveryMode": 2, "messageType": event_type}},
            }
            channels["%s/%s" % (service, event_type)] = {
                "description": "Published by the %s service's relay after commit." % service,
                "subscribe": {"operationId": "on_%s" % event_type.replace(".", "_"),
                              "message": {"$ref": "#/components/messages/%s" % msg}},
                "bindings": {"amqp": {
                    "is": "routingKey",
                    "exchange": {"name": "%s.events" % service, "type": "topic", "durable": True,
                                 "autoDelete": False, "vhost": "<node vhost>"},
                    "x-routing-key": event_type,
                }},
            }
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Qinglian service events", "version": "1",
                 "description": "Every event a Qinglian service records is published by its relay "
                                 "to the topic exchange <service>.events with routing key = event "
                                 "type, persistent, at-least-once (dedupe on event_id). Generated by "
                                 "`qinglian contracts generate`; checked by tests/unit/test_contracts_and_docs.py."},
        "defaultContentType": "application/json",
        "channels": dict(sorted(channels.items())),
        "components": {"messages": dict(sorted(messages.items()))},
    }


def render_asyncapi() -> str:
    return yaml.safe_dump(asyncapi_document(), allow_unicode=True, sort_keys=False, width=100)


def render_event_schema(cls) -> str:
    return json.dumps(payload_schema(cls), indent=2, ensure_ascii=False) + "\n"


def generate() -> list[Path]:
    """Write every current event schema and the AsyncAPI document; return what changed."""
    changed = []
    for event_type, cls in sorted(load_all_event_types().items()):
        path = schema_file(event_type, cls.schema_version)
        text = render_event_schema(cls)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    text = render_asyncapi()
    if not ASYNCAPI.exists() or ASYNCAPI.read_text(encoding="utf-8") != text:
        ASYNCAPI.write_text(text, encoding="utf-8")
        changed.append(ASYNCAPI)
    _schema.cache_clear()
    return changed


def _type_of(prop: dict):
    return prop.get("type")


def schema_differences(name: str, have: dict, want: dict) -> list[str]:
    """How a stored payload schema differs from the generated one, field by field."""
    out = []
    hp, wp = have.get("properties") or {}, want.get("properties") or {}
    for f in wp:
        if f not in hp:
            out.append("%s: field %s is declared in the code but not in the contract" % (name, f))
    for f in hp:
        if f not in wp:
            out.append("%s: field %s is in the contract but the code does not declare it" % (name, f))
    hr, wr = set(have.get("required") or ()), set(want.get("required") or ())
    for f in sorted((hr ^ wr) & set(wp)):
        out.append("%s: field %s is %s in the code but %s in the contract" % (
            name, f, "required" if f in wr else "optional", "required" if f in hr else "optional"))
    for f in wp:
        if f in hp and _type_of(hp[f]) != _type_of(wp[f]):
            out.append("%s: field %s has type %s in the code but %s in the contract"
                       % (name, f, _type_of(wp[f]), _type_of(hp[f])))
        elif f in hp and hp[f] != wp[f]:
            out.append("%s: field %s has other constraints in the contract than in the code"
                       % (name, f))
    if not out and have != want:
        keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
        out.append("%s: differs from the generated schema in %s" % (name, ", ".join(keys)))
    return out


def drift() -> list[str]:
    """Every disagreement between code and contracts, as readable lines."""
    problems = []
    hint = " (run `qinglian contracts generate`)"
    types = load_all_event_types()
    for event_type, cls in sorted(types.items()):
        path = schema_file(event_type, cls.schema_version)
        if not path.exists():
            problems.append("missing contract: contracts/events/%s%s" % (path.name, hint))
            continue
        have = json.loads(path.read_text(encoding="utf-8"))
        problems += [p + hint for p in schema_differences(path.name, have, payload_schema(cls))]
    for path in sorted(EVENTS_DIR.glob("*.schema.json")):
        base, _, version = path.name[: -len(".schema.json")].rpartition(".v")
        cls = types.get(base)
        if cls is None:
            problems.append("contract for an event type the code no longer has: %s" % path.name)
        elif not version.isdigit() or int(version) > cls.schema_version:
            problems.append("contract for a version the code does not have: %s" % path.name)
        try:  # older versions are kept as stored; they must still be valid schemas
            jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
        except (jsonschema.SchemaError, ValueError) as exc:
            problems.append("invalid JSON Schema %s: %s" % (path.name, getattr(exc, "message", exc)))
    if not ASYNCAPI.exists() or ASYNCAPI.read_text(encoding="utf-8") != render_asyncapi():
        problems.append("contracts/asyncapi.yaml is out of date%s" % hint)
    return problems
