"""The cross-node contracts, generated from the code so they cannot drift from it:

* ``contracts/federation/envelope.schema.json`` - the signed envelope every message
  that crosses nodes is (also each entry of a node's ``/feed``);
* ``contracts/federation/asyncapi.yaml`` - the shared feeds as a third-party subscriber
  on a node sees them: the three exchanges, their routing keys, one message per shared
  event type (envelope + the event's payload schema from ``contracts/events``).

``qinglian federation contracts`` rewrites both; ``--check`` (and the test suite)
fails when they differ from what the code would write.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from services.exchange.domain import RECORD_KINDS, aggregate_of
from shared.aggregate import EVENT_TYPES
from shared.federation.broker import CITY_EXCHANGE, NAMED_EXCHANGE, SHARED_EXCHANGE
from shared.federation.envelope import SHARING_LEVELS

ROOT = Path(__file__).resolve().parents[2] / "contracts"
ENVELOPE = ROOT / "federation" / "envelope.schema.json"
ASYNCAPI = ROOT / "federation" / "asyncapi.yaml"
NODE = "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


def shared_event_types() -> list[str]:
    """Event types that can be on the wire: not private, and not the first event of a
    record (a draft is never shared; its content travels in ``Published``)."""
    from services.exchange.domain import _Created
    return sorted(t for t, cls in EVENT_TYPES.items()
                  if aggregate_of(t) is not None and not cls.private and not issubclass(cls, _Created))


def routing_kinds(event_type: str) -> list[str]:
    cls = aggregate_of(event_type)
    if cls.stream_type == "Comment":
        return list(RECORD_KINDS)  # a comment travels under its record's kind
    return [cls.kind]


def envelope_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://qinglian.example/contracts/federation/envelope.schema.json",
        "title": "Signed cross-node envelope (v1)",
        "description": (
            "Body of every message on qinglian.shared / qinglian.city / qinglian.named and "
            "every entry of a node's GET /feed. Signed by its origin (Ed25519 over the "
            "canonical JSON of every field but `signature`: sorted keys, separators "
            "(',', ':'), UTF-8, no ASCII escaping). Verify against the origin's registered "
            "public key; dedupe on (origin, origin_seq); the payload matches "
            "contracts/events/<type>.v<schema_version>.schema.json."),
        "type": "object",
        "additionalProperties": False,
        "required": ["event_id", "origin", "origin_seq", "type", "schema_version", "sharing",
                     "recipients", "payload", "occurred_at", "owner", "signer", "signature"],
        "properties": {
            "event_id": {"type": "string", "minLength": 1,
                         "description": "the event's id, the same on every node"},
            "origin": {"type": "string", "pattern": NODE, "description": "publishing node"},
            "origin_seq": {"type": "integer", "minimum": 1,
                           "description": "gap-free per origin; a node may be skipped "
                                          "numbers that were not shared with it"},
            "type": {"type": "string", "pattern": "^[A-Z][A-Za-z]+\\.[A-Z][A-Za-z]+$"},
            "schema_version": {"type": "integer", "minimum": 1},
            "sharing": {"type": "string", "enum": [s for s in SHARING_LEVELS if s != "node"],
                        "description": "city: up to the city; all: city and all districts; "
                                       "named: the recipients (node-only never crosses)"},
            "recipients": {"type": "array", "items": {"type": "string", "pattern": NODE},
                           "uniqueItems": True},
            "payload": {"type": "object"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "owner": {"type": "string", "pattern": NODE,
                      "description": "the record's owner: always the origin"},
            "signer": {"type": "string", "pattern": NODE,
                       "description": "whose key signed: always the origin"},
            "signature": {"type": "string", "description": "base64 Ed25519 signature"},
        },
    }


def _message(event_type: str) -> dict:
    cls = EVENT_TYPES[event_type]
    doc = (cls.__doc__ or event_type).strip().splitlines()[0]
    return {
        "name": event_type,
        "title": event_type,
        "summary": doc,
        "contentType": "application/json",
        "x-record-kind": aggregate_of(event_type).kind,
        "x-routing-kinds": routing_kinds(event_type),
        "payload": {"allOf": [
            {"$ref": "envelope.schema.json"},
            {"properties": {
                "type": {"const": event_type},
                "payload": {"$ref": "../events/%s.v%d.schema.json" % (event_type, cls.schema_version)}}},
        ]},
        "headers": {"type": "object", "properties": {
            "x-received-from": {"type": "array", "description":
                                "added by RabbitMQ federation, one entry per link crossed"}}},
        "bindings": {"amqp": {"messageType": event_type, "deliveryMode": 2,
                              "bindingVersion": "0.2.0"}},
    }


def _channel(exchange: str, pattern: str, description: str, refs: list, params: dict) -> dict:
    return {
        "description": description,
        "parameters": params,
        "subscribe": {
            "operationId": "on_%s" % exchange.replace(".", "_"),
            "summary": "bind a queue of yours on YOUR node's broker; ack after handling",
            "message": {"oneOf": refs},
        },
        "bindings": {"amqp": {
            "is": "routingKey",
            "exchange": {"name": exchange, "type": "topic", "durable": True, "autoDelete": False,
                         "vhost": "<your node's vhost>"},
            "x-routing-key-pattern": pattern,
            "bindingVersion": "0.2.0",
        }},
    }


def asyncapi_document() -> dict:
    types = shared_event_types()
    refs = [{"$ref": "#/components/messages/%s" % t} for t in types]
    params = {
        "kind": {"description": "record kind: %s, or indicators" % ", ".join(RECORD_KINDS),
                 "schema": {"type": "string", "enum": list(RECORD_KINDS) + ["indicators"]}},
        "origin": {"description": "the node that published it", "schema": {"type": "string", "pattern": NODE}},
        "eventType": {"description": "the event type (contains a dot)",
                      "schema": {"type": "string", "enum": types}},
    }
    named_params = dict(params, recipient={"description": "the node it is addressed to",
                                           "schema": {"type": "string", "pattern": NODE}})
    return {
        "asyncapi": "2.6.0",
        "id": "urn:qinglian:federation:shared-feeds",
        "info": {
            "title": "Qinglian shared feeds (五联五互)",
            "version": "1",
            "description": (
                "What one node (the city or a district) receives from the others and "
                "publishes itself, as a subscribing service on that node sees it. Every "
                "message is the signed envelope of contracts/federation/envelope.schema.json. "
                "Stable: exchanges and routing keys only grow (new event types, new kinds); "
                "a changed payload is a new schema_version. Delivery is at least once and, "
                "across origins, unordered: dedupe on (origin, origin_seq), order per origin "
                "by origin_seq, and fill gaps from the origin's signed feed (GET /feed?after=N) "
                "if you need every record. Runnable example: docs/examples/shared_feed_consumer.py."),
        },
        "servers": {"node": {
            "url": "{host}:5672", "protocol": "amqp", "protocolVersion": "0-9-1",
            "description": "this node's own RabbitMQ; the exchanges live in the node's vhost",
            "variables": {"host": {"default": "localhost"}}}},
        "defaultContentType": "application/json",
        "channels": {
            "%s/{kind}.{origin}.{eventType}" % SHARED_EXCHANGE: _channel(
                SHARED_EXCHANGE, "<kind>.<origin>.<eventType>",
                "Records shared with the city and all districts (sharing 'all'), from every "
                "node, this one included. Bind e.g. `case.#`, `*.district-a.#`, "
                "`#.JointProblem.Resolved` or `#`.", refs, params),
            "%s/{kind}.{origin}.{eventType}" % CITY_EXCHANGE: _channel(
                CITY_EXCHANGE, "<kind>.<origin>.<eventType>",
                "At the city: records the districts shared up to the city only (sharing "
                "'city'), and the district figures for 上下互比 (IndicatorReport.*). At a "
                "district: only its own such records - no link brings others there.",
                refs, params),
            "%s/{recipient}.{kind}.{origin}.{eventType}" % NAMED_EXCHANGE: _channel(
                NAMED_EXCHANGE, "<recipient>.<kind>.<origin>.<eventType>",
                "Records shared with named nodes, one copy per recipient. Bind "
                "`<your node id>.#`. On a district's broker only records addressed to that "
                "district (and its own) are ever here: its link is fed by the city's "
                "`qinglian.to.<district>`; the city, the hub, carries them all.",
                refs, named_params),
        },
        "components": {
            "messages": {t: _message(t) for t in types},
        },
    }


def render_envelope() -> str:
    return json.dumps(envelope_schema(), ensure_ascii=False, indent=2) + "\n"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # written out in full: no &id001 anchors
        return True


def render_asyncapi() -> str:
    return ("# Generated by `qinglian federation contracts` from services/exchange; do not edit.\n"
            + yaml.dump(asyncapi_document(), Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                        width=100))


def drift() -> list[str]:
    problems = []
    for path, text in ((ENVELOPE, render_envelope()), (ASYNCAPI, render_asyncapi())):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            problems.append("%s is out of date: run `qinglian federation contracts`"
                            % path.relative_to(ROOT.parent))
    for t in shared_event_types():
        if not (ROOT / "events" / ("%s.v%d.schema.json" % (t, EVENT_TYPES[t].schema_version))).exists():
            problems.append("missing contracts/events/%s.v%d.schema.json" % (t, EVENT_TYPES[t].schema_version))
    return problems


def write() -> list[Path]:
    ENVELOPE.parent.mkdir(parents=True, exist_ok=True)
    ENVELOPE.write_text(render_envelope(), encoding="utf-8")
    ASYNCAPI.write_text(render_asyncapi(), encoding="utf-8")
    return [ENVELOPE, ASYNCAPI]


