"""Checking received payloads against their JSON Schema contracts, fast.

A receiving node checks every payload against ``contracts/events/<type>.v<n>.schema.json``
before applying it (a peer must not be able to slip in a field the contract does not
have, such as a person's name). ``jsonschema`` interprets the schema on every call:
~0.25 ms per payload here, which alone caps a catching-up node at 4,000 events/s.
``compile_schema`` turns the subset of JSON Schema our contracts use into nested
Python closures once (~15 µs per payload); a schema using anything outside that subset
raises ``Unsupported`` and the caller falls back to ``jsonschema``. The test suite
checks that both give the same verdict on every contract, valid and broken payloads.

Supported: ``type`` (one or a list), ``properties``, ``required``,
``additionalProperties`` (false or a schema), ``propertyNames``, ``min/maxProperties``,
``items``, ``min/maxItems``, ``uniqueItems``, ``enum``, ``pattern`` (search, as
JSON Schema defines it), ``min/maxLength``, ``minimum``/``maximum``, ``format:
date-time``; annotations (``$schema``, ``$id``, ``title``, ``description``) are ignored.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Callable

__all__ = ["Unsupported", "compile_schema", "Check"]

Check = Callable[[Any], "str | None"]  # an error message, or None if the value fits

_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "examples", "default"}
_KNOWN = _ANNOTATIONS | {
    "type", "properties", "required", "additionalProperties", "propertyNames",
    "minProperties", "maxProperties", "items", "minItems", "maxItems", "uniqueItems", "enum",
    "pattern", "minLength", "maxLength", "minimum", "maximum", "format"}


class Unsupported(Exception):
    """The schema uses a keyword this checker does not implement."""


def _is_int(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_int,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _same(a, b) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _TYPES["number"](a) and _TYPES["number"](b):
        return a == b
    return type(a) is type(b) and a == b


def _date_time(v: str) -> bool:
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in v.upper() and dt.tzinfo is not None


def compile_schema(schema: dict, where: str = "$") -> Check:
    if not isinstance(schema, dict):
        raise Unsupported("%s: schema is not an object" % where)
    unknown = set(schema) - _KNOWN
    if unknown:
        raise Unsupported("%s: keywords %s" % (where, ", ".join(sorted(unknown))))
    checks: list[Check] = []

    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        tests = [_TYPES[n] for n in names]
        label = " or ".join(names)
        if len(tests) == 1:  # most are: no generator per value
            only = tests[0]
            checks.append(lambda v: None if only(v) else
                          "%s: %s is not of type %s" % (where, _short(v), label))
        else:
            checks.append(lambda v: None if any(t(v) for t in tests) else
                          "%s: %s is not of type %s" % (where, _short(v), label))
    if "enum" in schema:
        allowed = schema["enum"]
        checks.append(lambda v: None if any(_same(v, a) for a in allowed)
                      else "%s: %s is not one of %s" % (where, _short(v), allowed))

    # strings
    if "pattern" in schema:
        rx = re.compile(schema["pattern"])
        checks.append(lambda v: None if not isinstance(v, str) or rx.search(v) else
                      "%s: %s does not match %r" % (where, _short(v), rx.pattern))
    if "minLength" in schema:
        checks.append(lambda v, n=schema["minLength"]: None if not isinstance(v, str) or len(v) >= n
                      else "%s: shorter than %d" % (where, n))
    if "maxLength" in schema:
        checks.append(lambda v, n=schema["maxLength"]: None if not isinstance(v, str) or len(v) <= n
                      else "%s: longer than %d" % (where, n))
    if schema.get("format") == "date-time":
        checks.append(lambda v: None if not isinstance(v, str) or _date_time(v) else
                      "%s: %s is not a date-time" % (where, _short(v)))

    # numbers
    if "minimum" in schema:
        checks.append(lambda v, lo=schema["minimum"]: None if not _TYPES["number"](v) or v >= lo
                      else "%s: %s is less than %s" % (where, v, lo))
    if "maximum" in schema:
        checks.append(lambda v, hi=schema["maximum"]: None if not _TYPES["number"](v) or v <= hi
                      else "%s: %s is more than %s" % (where, v, hi))

    # arrays
    if "items" in schema:
        item = compile_schema(schema["items"], where + "[]")

        def items(v):
            if isinstance(v, list):
                for x in v:
                    err = item(x)
                    if err:
                        return err
            return None
        checks.append(items)
    for key, test in (("minItems", lambda v, n: len(v) >= n), ("maxItems", lambda v, n: len(v) <= n)):
        if key in schema:
            n = schema[key]
            checks.append(lambda v, n=n, test=test, key=key: None if not isinstance(v, list) or test(v, n)
                          else "%s: %s %d" % (where, key, n))
    if schema.get("uniqueItems"):
        def unique(v):
            if isinstance(v, list):
                seen = [json.dumps(x, sort_keys=True) for x in v]
                if len(set(seen)) != len(seen):
                    return "%s: items are not unique" % where
            return None
        checks.append(unique)

    # objects
    props = {k: compile_schema(s, "%s.%s" % (where, k)) for k, s in (schema.get("properties") or {}).items()}
    required = list(schema.get("required") or ())
    extra = schema.get("additionalProperties", True)
    extra_check = compile_schema(extra, where + ".*") if isinstance(extra, dict) else None
    names = compile_schema(schema["propertyNames"], where + "{}") if "propertyNames" in schema else None
    min_p, max_p = schema.get("minProperties"), schema.get("maxProperties")
    if props or required or extra is not True or names or min_p is not None or max_p is not None:
        def obj(v):
            if not isinstance(v, dict):
                return None
            missing = [r for r in required if r not in v]
            if missing:
                return "%s: missing %s" % (where, ", ".join(missing))
            if min_p is not None and len(v) < min_p:
                return "%s: fewer than %d properties" % (where, min_p)
            if max_p is not None and len(v) > max_p:
                return "%s: more than %d properties" % (where, max_p)
            for k, x in v.items():
                if names is not None:
                    err = names(k)
                    if err:
                        return err
                check = props.get(k)
                if check is not None:
                    err = check(x)
                elif extra is False:
                    return "%s: unexpected property %r" % (where, k)
                elif extra_check is not None:
                    err = extra_check(x)
                else:
                    err = None
                if err:
                    return err
            return None
        checks.append(obj)

    if len(checks) == 1:
        return checks[0]

    def all_of(v):
        for c in checks:
            err = c(v)
            if err:
                return err
        return None
    return _string_fast_path(schema, all_of) or all_of


_STRING_KEYS = _ANNOTATIONS | {"type", "minLength", "maxLength", "pattern"}


def _string_fast_path(schema: dict, slow: Check) -> Check | None:
    """Most of a payload's values are strings with a length and perhaps a pattern: one
    closure that says yes to a fitting one, and asks ``slow`` (the checks above, for
    their message) only about one that does not. Half of a catching-up node's contract
    checks were the calls between those small checks."""
    if schema.get("type") != "string" or not set(schema) <= _STRING_KEYS:
        return None
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    rx = re.compile(schema["pattern"]).search if "pattern" in schema else None

    def string(v):
        # exactly str (what JSON decodes to); anything else takes the full checks
        if v.__class__ is str and len(v) >= lo and (hi is None or len(v) <= hi) \
                and (rx is None or rx(v)):
            return None
        return slow(v)
    return string


def _short(v) -> str:
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
