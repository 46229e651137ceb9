"""Input field types every service uses, so an id, a name or a date is validated the same
way everywhere.

Why not marshmallow's own ``validate.Regexp`` and ``fields.Date``: ``Regexp`` uses
``re.match`` (``$`` also matches before a trailing newline, ``\\d`` matches Arabic-Indic
digits) and ``date.fromisoformat`` also takes ``20260101`` and ``2026-W01-1``. Here a
pattern must match the whole value, ASCII only, and a date is a real calendar day in
the years the platform records (1900-2999), so later arithmetic cannot overflow.

Messages are Chinese: people read them (the console shows them next to the field).
``_speak_chinese`` sets marshmallow's built-in messages once for the whole process.
"""
from __future__ import annotations

import base64
import datetime as dt
import re

from marshmallow import ValidationError, fields, validate

FIRST_YEAR, LAST_YEAR = 1900, 2999
INT64_MAX = 2 ** 63 - 1  # what SQLite and PostgreSQL BIGINT hold

# ids appear in URLs, routing keys and "<a>/<b>" composite keys: keep them plain
ID_RE = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}"
ID_MESSAGE = "1-100 个字符：字母、数字、_ . -，以字母或数字开头"
PERIOD_RE = r"[0-9]{4}(-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?"
PERIOD_MESSAGE = "年度 YYYY、季度 YYYY-Qn、半年 YYYY-Hn 或月份 YYYY-MM"
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})", re.ASCII)
# one line of text: no line breaks or tabs (the request path refuses other controls)
_LINE_BREAK = re.compile(r"[\t\n\r\v\f\u0085\u2028\u2029]")


class Pattern(validate.Validator):
    """The whole value matches ``regex`` (ASCII classes, no trailing-newline slack)."""

    def __init__(self, regex: str, error: str):
        self.regex = re.compile(regex.removeprefix("^").removesuffix("$"), re.ASCII)
        self.error = error

    def __call__(self, value):
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self.error)
        return value

    def _repr_args(self) -> str:
        return "regex=%r" % self.regex.pattern


def _single_line(value: str) -> str:
    if _LINE_BREAK.search(value):
        raise ValidationError("只能是一行文字（不能含换行符或制表符）")
    return value


def Id(**kw) -> fields.String:  # noqa: N802 - reads like a field type in schemas
    return fields.String(validate=Pattern(ID_RE, ID_MESSAGE), **kw)


def Name(n: int = 200, **kw) -> fields.String:  # noqa: N802
    """One line of non-empty text of at most ``n`` characters (names, titles)."""
    return fields.String(validate=[validate.Length(1, n), _single_line], **kw)


def Text(n: int = 2000, min_length: int = 1, **kw) -> fields.String:  # noqa: N802
    """Text of at most ``n`` characters that may span lines (notes, contents)."""
    return fields.String(validate=validate.Length(min_length, n), **kw)


def calendar_day(value: str) -> dt.date:
    """``YYYY-MM-DD`` in ASCII digits naming a real day in the platform's years."""
    if not isinstance(value, str) or _DAY_RE.fullmatch(value) is None:
        raise ValidationError("日期格式应为 YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError("不是真实存在的日期") from None
    _in_years(day.year)
    return day


def instant(value: str) -> dt.datetime:
    """An ISO date-time with its UTC offset, inside the platform's years even in UTC."""
    if not isinstance(value, str) or _DATETIME_RE.fullmatch(value) is None:
        raise ValidationError("时间格式应为带时区的 ISO 8601 时间，如 2026-11-03T09:30:00+08:00")
    try:
        moment = dt.datetime.fromisoformat(value)
        utc = moment.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise ValidationError("不是真实存在的时间（日期或时区偏移有误）") from None
    _in_years(moment.year)
    _in_years(utc.year)
    return moment


def _in_years(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationError("年份须在 %d 至 %d 之间" % (FIRST_YEAR, LAST_YEAR))


def _check_day(value: str) -> str:
    calendar_day(value)
    return value


def _check_as_of(value: str) -> str:
    if isinstance(value, str) and len(value) == 10:
        calendar_day(value)
    else:
        instant(value)
    return value


def distinct(values) -> list:
    """A list validator: each item once (a duplicate would collide on a row key)."""
    seen, twice = set(), []
    for v in values:
        if v in seen and v not in twice:
            twice.append(v)
        seen.add(v)
    if twice:
        raise ValidationError("不能重复：%s" % "、".join(map(str, twice[:5])))
    return values


distinct.rule = "each item once"
_check_day.rule = "a real day `YYYY-MM-DD`, %d-%d" % (FIRST_YEAR, LAST_YEAR)
_check_as_of.rule = "a real day `YYYY-MM-DD` or an ISO date-time with its offset, %d-%d" % (
    FIRST_YEAR, LAST_YEAR)
_single_line.rule = "one line"


def DateString(**kw) -> fields.String:  # noqa: N802
    """A calendar day as ``YYYY-MM-DD``, kept as a string (how events store it)."""
    return fields.String(validate=_check_day, **kw)


def AsOf(**kw) -> fields.String:  # noqa: N802
    """A day (its end, in the users' zone) or an ISO date-time with offset, as a string."""
    return fields.String(validate=_check_as_of, **kw)


def _period_year(value) -> str:
    """A month or period's year is one the platform records (``0000-01`` has no calendar)."""
    if isinstance(value, str) and value[:4].isascii() and value[:4].isdigit():
        _in_years(int(value[:4]))
    return value


_period_year.rule = "the year %d-%d" % (FIRST_YEAR, LAST_YEAR)


def Month(**kw) -> fields.String:  # noqa: N802
    return fields.String(validate=[Pattern(r"[0-9]{4}-(0[1-9]|1[0-2])", "月份格式应为 YYYY-MM"),
                                   _period_year], **kw)


def Period(**kw) -> fields.String:  # noqa: N802
    """A reporting period: a year, a half, a quarter or a month."""
    return fields.String(validate=[Pattern(PERIOD_RE, PERIOD_MESSAGE), _period_year], **kw)


class Date(fields.Date):
    """A calendar day as a ``datetime.date`` (see ``calendar_day``)."""

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        return calendar_day(value)


class AwareDateTime(fields.AwareDateTime):
    """A moment with its UTC offset as an aware ``datetime`` (see ``instant``)."""

    def _deserialize(self, value, attr, data, **kwargs) -> dt.datetime:
        return instant(value)


class Integer(fields.Integer):
    """An integer that fits the stores' 64-bit columns, whatever other range it has."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.validators.insert(0, validate.Range(-INT64_MAX, INT64_MAX,
                                                 error="数值超出范围（须在 ±2^63 以内）"))


# -- paging: every list is a page (limit + cursor) --------------------------------------
def Limit(default: int = 100, maximum: int = 1000) -> Integer:  # noqa: N802
    """How many items a page holds."""
    return Integer(load_default=default, validate=validate.Range(1, maximum))


def cursor_after(key: str) -> str:
    """The ``next`` cursor of a page whose last item sorts at ``key`` (opaque to callers)."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


class Cursor(fields.String):
    """The ``next`` of the previous page; loads as the sort key to continue after."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,800}", text, re.ASCII):
            raise ValidationError("不是有效的翻页游标（请使用上一页返回的 next）")
        try:
            key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("不是有效的翻页游标（请使用上一页返回的 next）") from None
        if _FORBIDDEN.search(key):
            raise ValidationError("不是有效的翻页游标（请使用上一页返回的 next）")
        return key


# -- marshmallow's own messages, in Chinese ---------------------------------------------
_FIELD_MESSAGES = {
    fields.Field: {"required": "必填项", "null": "不能为空值（null）", "validator_failed": "取值无效"},
    fields.Nested: {"type": "类型错误，应为对象"},
    fields.List: {"invalid": "应为列表"},
    fields.Tuple: {"invalid": "应为列表"},
    fields.String: {"invalid": "应为字符串", "invalid_utf8": "不是有效的 UTF-8 字符串"},
    fields.Number: {"invalid": "应为数字", "too_large": "数值过大"},
    fields.Integer: {"invalid": "应为整数"},
    fields.Float: {"special": "不允许 NaN 或无穷大"},
    fields.Decimal: {"special": "不允许 NaN 或无穷大"},
    fields.Boolean: {"invalid": "应为布尔值（true 或 false）"},
    fields.DateTime: {"invalid": "不是有效的时间", "invalid_awareness": "时间须带时区偏移",
                      "format": "无法格式化为时间"},
    fields.Date: {"invalid": "不是有效的日期", "format": "无法格式化为日期"},
    fields.Mapping: {"invalid": "应为对象"},
    fields.Email: {"invalid": "不是有效的电子邮件地址"},
    fields.Url: {"invalid": "不是有效的网址"},
    fields.Enum: {"unknown": "须为以下之一：{choices}"},
}


def _speak_chinese() -> None:
    for cls, messages in _FIELD_MESSAGES.items():
        cls.default_error_messages = {**cls.default_error_messages, **messages}
    from marshmallow import Schema
    Schema._default_error_messages = {"type": "输入类型错误，应为 JSON 对象", "unknown": "未知字段"}
    validate.Range.message_min = "须{min_op} {{min}}"
    validate.Range.message_max = "须{max_op} {{max}}"
    validate.Range.message_all = "须{min_op} {{min}} 且{max_op} {{max}}"
    validate.Range.message_gte, validate.Range.message_gt = "大于或等于", "大于"
    validate.Range.message_lte, validate.Range.message_lt = "小于或等于", "小于"
    validate.Length.message_min = "长度不能少于 {min}"
    validate.Length.message_max = "长度不能超过 {max}"
    validate.Length.message_all = "长度须在 {min} 至 {max} 之间"
    validate.Length.message_equal = "长度须为 {equal}"
    validate.OneOf.default_message = "须为以下之一：{choices}"
    validate.ContainsOnly.default_message = "所选值须在以下范围内：{choices}"
    validate.Regexp.default_message = "格式不正确"
    validate.Equal.default_message = "须等于 {other}"
    validate.Predicate.default_message = validate.NoneOf.default_message = "取值无效"


_speak_chinese()


# -- what every input must be, whatever its schema ----------------------------------------
MAX_DEPTH = 16  # objects and lists inside each other; no schema nests deeper than 4
# C0/C1 controls but tab and line breaks, NUL, lone surrogates (cannot be encoded, so
# neither hashed nor stored) and the bidirectional overrides and isolates that make text
# read differently from what it is (U+202A-U+202E, U+2066-U+2069)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _where(path: tuple) -> str:
    # a key may itself be the bad text: name it in escaped form
    return ".".join(str(p) if isinstance(p, int) else p.encode("ascii", "backslashreplace").decode()
                    for p in path) or "_schema"


def refuse_unsafe(data) -> dict:
    """Field messages for what no input may contain (empty when ``data`` is fine).

    Runs on the decoded request before its schema, iteratively (a 10,000-deep array must
    not exhaust the stack): too deep a nesting, text with forbidden characters (keys
    too), integers beyond 64 bits, NaN and infinities."""
    errors: dict[str, list[str]] = {}
    stack = [((), data, 0)]
    while stack and len(errors) < 20:
        path, value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                errors[_where(path)] = ["嵌套层级过深（最多 %d 层）" % MAX_DEPTH]
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _FORBIDDEN.search(key):
                    errors[_where(path + (key,))] = ["字段名含有不允许的字符"]
                    continue
                stack.append((path + (key,), item, depth + 1))
        elif isinstance(value, str):
            bad = _FORBIDDEN.search(value)
            if bad:
                errors[_where(path)] = ["含有不允许的字符 U+%04X（控制字符、空字符、孤立代理或双向控制符）"
                                        % ord(bad.group())]
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not -INT64_MAX <= value <= INT64_MAX:
                errors[_where(path)] = ["数值超出范围（须在 ±2^63 以内）"]
        elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            errors[_where(path)] = ["不允许 NaN 或无穷大"]
    return errors
