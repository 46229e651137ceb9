"""The zh-CN label catalogue: every enum value's Chinese name, declared beside the enum.

Each service declares its enums in its ``domain.py`` as ``Choices``: the codes the API
and the event log keep, in order, each with the label a person reads::

    UNIT_KINDS = Choices("单位类型", {"party_committee_dept": "党委部门", ...})

``Choices`` is a tuple of the codes, so ``validate.OneOf(UNIT_KINDS)`` and ``code in
UNIT_KINDS`` work as before. ``catalogue()`` gathers every ``Choices`` of every service
into one dictionary; the console, the Excel exports and the API's field errors read
labels from there, so a value is named the same way everywhere. Pure: no I/O.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


class Choices(tuple):
    """An enum's codes (a tuple, in order) with the Chinese label of each."""

    def __new__(cls, field: str, labels: dict):
        self = super().__new__(cls, labels)
        self.field = field  # what the enum is called, e.g. 单位类型
        self.labels = dict(labels)
        return self

    def __getnewargs__(self):  # copy/pickle rebuild from the same declaration
        return (self.field, self.labels)

    def label(self, code) -> str:
        return self.labels.get(code, str(code))

    def code(self, value):
        """The code for ``value`` given as a code or as its Chinese label (None if neither)."""
        if value in self.labels:
            return value
        for code, label in self.labels.items():
            if label == value:
                return code
        return None

    def error(self) -> str:
        """The field message for a value that is none of these."""
        return "必须是以下之一：%s" % "、".join(self.labels.values())

    def options(self) -> list[tuple]:
        return list(self.labels.items())


_catalogue: dict | None = None


def catalogue() -> dict[str, Choices]:
    """Every enum of every service, keyed ``<service>.<NAME>`` (and the kernel's roles)."""
    global _catalogue
    if _catalogue is None:
        from shared import registry
        from shared.auth import ROLES  # the node's user roles
        found = {"auth.ROLES": ROLES}
        for service in registry.services():
            mod = registry.get(service).module("domain")
            if mod is None:
                continue
            for name, value in vars(mod).items():
                if isinstance(value, Choices):
                    found["%s.%s" % (service, name)] = value
        _catalogue = found
    return _catalogue


def label(enum: str, code) -> str:
    """``label("units.UNIT_KINDS", "section")`` -> 科室; an unknown code is shown as given."""
    choices = catalogue().get(enum)
    return choices.label(code) if choices is not None else str(code)


def field_error(choices: Choices) -> str:
    """``单位类型: 必须是以下之一：党委部门、政府部门、…`` (the message a person reads)."""
    return "%s: %s" % (choices.field, choices.error())


# -- dates the Chinese way, in the users' zone -------------------------------------------------
WEEKDAYS = "一二三四五六日"


def _local(value, tz: str) -> datetime | date | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):  # microseconds since the epoch, as the log keeps them
        return datetime.fromtimestamp(value / 1_000_000, ZoneInfo(tz))
    if isinstance(value, str):
        if len(value) == 10:
            return date.fromisoformat(value)
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(tz)) if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))
    return value


def zh_date(value, tz: str = "Asia/Shanghai", weekday: bool = True) -> str:
    """2026年12月1日 周二 (a date, an ISO string or epoch microseconds; empty stays empty)."""
    d = _local(value, tz)
    if d is None:
        return ""
    text = "%d年%d月%d日" % (d.year, d.month, d.day)
    return text + (" 周%s" % WEEKDAYS[d.weekday()] if weekday else "")


def zh_datetime(value, tz: str = "Asia/Shanghai") -> str:
    """2026年12月1日 周二 09:30 (date-only values are shown as dates)."""
    d = _local(value, tz)
    if d is None:
        return ""
    if not isinstance(d, datetime):
        return zh_date(d, tz)
    return "%s %02d:%02d" % (zh_date(d, tz), d.hour, d.minute)
