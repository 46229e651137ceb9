"""The compiled contract checker gives jsonschema's verdict (valid or not) on every
keyword it supports, and refuses schemas it does not understand."""
from __future__ import annotations

import jsonschema
import pytest

from shared.federation.contract import Unsupported, compile_schema

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "t", "description": "d",
    "type": "object", "additionalProperties": False,
    "required": ["id", "n", "tags", "when", "kind"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z]+/[0-9]+$", "minLength": 3, "maxLength": 12},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "x": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 3,
                 "uniqueItems": True},
        "lines": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "when": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "figures": {"type": "object", "additionalProperties": {"type": "number"},
                    "propertyNames": {"minLength": 1, "maxLength": 5}, "minProperties": 1,
                    "maxProperties": 2},
        "nested": {"type": ["object", "null"], "additionalProperties": False, "required": ["a"],
                   "properties": {"a": {"type": "boolean"}}},
    },
}
GOOD = {"id": "abc/1", "n": 3, "tags": ["x"], "when": "2025-03-01T08:00:00Z", "kind": "a"}
VALUES = [
    GOOD,
    dict(GOOD, x=None), dict(GOOD, x=0.5), dict(GOOD, x=2), dict(GOOD, x=True), dict(GOOD, x="1"),
    dict(GOOD, id="ABC/1"), dict(GOOD, id="a/"), dict(GOOD, id="abcdefghij/1234"), dict(GOOD, id=5),
    dict(GOOD, n=0), dict(GOOD, n=11), dict(GOOD, n=2.0), dict(GOOD, n=2.5), dict(GOOD, n=False),
    dict(GOOD, tags=[]), dict(GOOD, tags=["a", "a"]), dict(GOOD, tags=["a", "b", "c", "d"]),
    dict(GOOD, tags=[""]), dict(GOOD, tags="a"), dict(GOOD, lines=[]), dict(GOOD, lines=["l"]),
    dict(GOOD, kind="c"), dict(GOOD, kind=None), dict(GOOD, person_name="张三"),
    {k: v for k, v in GOOD.items() if k != "n"}, [], "x", None,
    dict(GOOD, figures={}), dict(GOOD, figures={"a": 1}), dict(GOOD, figures={"a": "1"}),
    dict(GOOD, figures={"toolong": 1}), dict(GOOD, figures={"a": 1, "b": 2, "c": 3}),
    dict(GOOD, nested=None), dict(GOOD, nested={"a": True}), dict(GOOD, nested={}),
    dict(GOOD, nested={"a": True, "b": 1}), dict(GOOD, nested={"a": 1}),
]


@pytest.mark.parametrize("value", VALUES, ids=[str(i) for i in range(len(VALUES))])
def test_same_verdict_as_jsonschema(value):
    check = compile_schema(SCHEMA)
    expected = jsonschema.Draft202012Validator(SCHEMA).is_valid(value)
    assert (check(value) is None) == expected, check(value)


def test_date_time_is_checked():
    check = compile_schema(SCHEMA)
    for bad in ("yesterday", "2025-03-01", "2025-03-01T08:00:00"):  # no date-time / no zone
        assert check(dict(GOOD, when=bad)) is not None
    assert check(dict(GOOD, when="2025-03-01T08:00:00.123456+08:00")) is None


def test_unknown_keywords_are_refused():
    for schema in ({"oneOf": [{"type": "string"}]}, {"type": "object", "properties": {"a": {"$ref": "#"}}}):
        with pytest.raises(Unsupported):
            compile_schema(schema)


def test_a_string_that_does_not_fit_is_told_why():
    """A string value is checked by one closure; one that fails is checked again by
    each keyword's own check, so the message says which one."""
    check = compile_schema(SCHEMA)
    assert check(dict(GOOD, id="abcdefghij/1234")) == "$.id: longer than 12"
    assert check(dict(GOOD, id="ABC/1")).startswith("$.id: \"ABC/1\" does not match")
    assert check(dict(GOOD, id=5)) == "$.id: 5 is not of type string"
    assert check(dict(GOOD, tags=[""])) == "$.tags[]: shorter than 1"
    assert check(dict(GOOD, id="abc/123456789")) == "$.id: longer than 12"
    assert check(dict(GOOD, id="abc/12345678")) is None  # exactly 12
