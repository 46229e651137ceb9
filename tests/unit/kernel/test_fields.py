"""The shared field types and the input rules every operation applies (HTTP and RPC alike:
``Operation.load``), without a running service."""
from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import Schema, ValidationError, fields

from shared import fields as qf
from shared.app import Application
from shared.auth import Actor
from shared.errors import BadInput


class Probe(Schema):
    unit_id = qf.Id()
    name = qf.Name(20)
    note = qf.Text(50, min_length=0)
    day = qf.DateString()
    on = qf.Date()
    at = qf.AwareDateTime()
    as_of = qf.AsOf()
    month = qf.Month()
    period = qf.Period()
    n = qf.Integer()
    ids = fields.List(qf.Id(), validate=qf.distinct)
    cursor = qf.Cursor()


def refused(data) -> dict:
    with pytest.raises(ValidationError) as exc:
        Probe().load(data)
    return exc.value.messages


@pytest.mark.parametrize("field,value", [
    ("unit_id", "nl-unit\n"), ("unit_id", "unit-١"), ("unit_id", "-x"), ("unit_id", "a" * 101),
    ("name", "two\nlines"), ("name", "tab\there"), ("name", ""),
    ("day", "2026-02-30"), ("day", "0000-01-01"), ("day", "٢٠٢٦-01-01"), ("day", "20260101"),
    ("day", "2026-W01-1"), ("day", "1899-12-31"), ("day", "2026-01-01\n"),
    ("on", "2026-02-30"), ("on", "٢٠٢٦-٠١-٠١"),
    ("at", "0001-01-01T00:00:00+14:00"), ("at", "9999-12-31T23:59:59-12:00"),
    ("at", "2026-01-01T00:00:00"), ("at", "2026-01-01T00:00:00+25:00"), ("at", "2026-02-30T00:00:00Z"),
    ("as_of", "2026-02-30"), ("as_of", "2026-1-1"), ("as_of", "2026-01-01T00:00+24:00"),
    ("month", "٢٠٢٦-11"), ("month", "2026-13"), ("month", "2026-11\n"),
    ("period", "2026-00"), ("period", "2026-Q5"), ("period", "٢٠٢٦"),
    ("n", 2 ** 63), ("n", str(2 ** 64)), ("n", -(2 ** 70)),
    ("ids", ["a", "b", "a"]), ("cursor", "!!"), ("cursor", "_w"),
])
def test_each_field_refuses_what_issue_11_found_it_accepting(field, value):
    messages = refused({field: value})
    assert list(messages) == [field]
    assert all(any("\u4e00" <= c <= "\u9fff" for c in m) for m in messages[field]), messages


def test_good_values_load_as_their_types():
    loaded = Probe().load({"unit_id": "u-1.a_b", "name": "办公室", "note": "第一行\n第二行",
                           "day": "2026-02-28", "on": "2024-02-29", "at": "2026-11-03T09:30:00+08:00",
                           "as_of": "2026-11-03", "month": "2026-11", "period": "2026-H2",
                           "n": 2 ** 63 - 1, "ids": ["a", "b"], "cursor": qf.cursor_after("/qu/s01/")})
    assert loaded["on"] == dt.date(2024, 2, 29) and loaded["at"].utcoffset() == dt.timedelta(hours=8)
    assert loaded["cursor"] == "/qu/s01/" and loaded["day"] == "2026-02-28"


def test_marshmallow_speaks_chinese():
    messages = refused({"zz": 1, "n": "x", "name": None})
    assert messages == {"zz": ["未知字段"], "n": ["应为整数"], "name": ["不能为空值（null）"]}


@pytest.mark.parametrize("data", [
    {"a": "x\ud800"}, {"a": "a\x00b"}, {"a": "\u202e"}, {"a": "\x1b[31m"}, {"a": "\x85"},
    {"\ud800": 1}, {"a": [{"b": "\u2067"}]}, {"a": 2 ** 63}, {"a": float("nan")},
    {"a": float("inf")}, {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]},
])
def test_no_input_may_hold_forbidden_values_anywhere(data):
    assert qf.refuse_unsafe(data)


def test_ordinary_text_passes():
    assert qf.refuse_unsafe({"a": "第一行\n第二行\t缩进", "b": [1, -2, 2 ** 63 - 1, 1.5, True, None],
                             "c": {"d": "emoji 🙂 and ümlaut"}}) == {}


def test_a_10000_deep_input_is_refused_without_recursion():
    deep = 1
    for _ in range(10_000):
        deep = [deep]
    assert qf.refuse_unsafe({"a": deep}) == {"a" + ".0" * (qf.MAX_DEPTH - 1): ["嵌套层级过深（最多 16 层）"]}


def test_rpc_and_http_share_the_rules():
    """``Operation.load`` runs for every caller, so an RPC call is refused the same way."""
    app = Application("probe")

    @app.command("touch", Probe, roles=("node-admin",))
    def touch(uow, d):  # pragma: no cover - never reached
        raise AssertionError("refused input reached the command")
    for bad in ({"name": "a\x00b"}, {"unit_id": "x", "extra": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}):
        with pytest.raises(BadInput) as exc:
            app.execute(None, "touch", bad, Actor("admin", ("node-admin",)))
        assert exc.value.status == 400 and "输入" in exc.value.message
