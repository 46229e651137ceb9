"""Days, months and weeks as the users count them. Pure Python.

The users are in one time zone (``QINGLIAN_TZ``, Asia/Shanghai): a warning-education
session at 2026-01-31T17:00Z was held on 1 February for them, so it counts for
February's 月月行. Every rule about "which day / month / week" goes through here, and
the result is written into the event payload (``local_date``, ``period``) when the
event is recorded - the event then states the calendar fact as the node saw it, and
read models never have to guess a zone.
"""
from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(at: datetime, tz: str) -> date:
    """The calendar day of an aware instant in the users' zone."""
    if at.tzinfo is None:
        raise ValueError("an aware datetime is required (got a naive one)")
    return at.astimezone(zone(tz)).date()


def utc_iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def parse_date(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def parse_instant(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def period_of(day: date | str) -> str:
    """The month a day belongs to: ``YYYY-MM``."""
    d = parse_date(day)
    return "%04d-%02d" % (d.year, d.month)


def month_bounds(period: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM``."""
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1), date(year, month, _calendar.monthrange(year, month)[1])


def previous_period(period: str) -> str:
    first, _ = month_bounds(period)
    return period_of(first - timedelta(days=1))


def iso_week(day: date | str) -> str:
    """ISO week ``YYYY-Www``: 2027-01-01 (a Friday) belongs to 2026-W53."""
    y, w, _ = parse_date(day).isocalendar()
    return "%04d-W%02d" % (y, w)


def week_start(week: str) -> date:
    """The Monday of an ISO week ``YYYY-Www``."""
    return date.fromisocalendar(int(week[:4]), int(week[6:8]), 1)

