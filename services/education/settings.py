"""The education service's settings: talk deadline, escalation ladder, notice calendar.

Each key is read from the nameko config first and the environment second (the same
rule as ``shared.config``), so ``deploy/config.yaml``, docker-compose and a test's
config dict all work. JSON-valued keys (ladder, calendar) may be given as JSON text
(environment) or as YAML lists (nameko config). A setting that does not parse stops
the service at start-up with the key's name: a silently ignored calendar would mean
no 廉洁通知 before the next holiday.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, timedelta

from shared import config as node_config

from services.education.dates import parse_date

# Where a rung of the ladder sends the reminder: the talk's own unit, the unit above
# it, the district (the root of the node's unit tree), or the city (the district's
# office is told too; the exchange service refers the case to the city without the
# person: issue 10 item 5).
ESCALATION_TARGETS = ("unit", "parent", "district", "city")

DEFAULT_LADDER = (
    {"overdue_days": 1, "notify": "unit", "label": "逾期提醒"},
    {"overdue_days": 8, "notify": "parent", "label": "上级党组织督办"},
    {"overdue_days": 15, "notify": "district", "label": "区直机关工委通报"},
    {"overdue_days": 30, "notify": "city", "label": "上报市级督办"},
)

# Holidays before which a 廉洁通知 goes out. Fixed-date holidays repeat every year
# ("MM-DD"); lunar ones have one entry per year ("YYYY-MM-DD") and are extended by
# configuration (EDUCATION_NOTICE_CALENDAR) as the State Council publishes the dates.
DEFAULT_CALENDAR = (
    {"key": "new_year", "name": "元旦", "on": "01-01", "lead_days": 3},
    {"key": "spring_festival", "name": "春节", "on": "2025-01-29", "lead_days": 5},
    {"key": "spring_festival", "name": "春节", "on": "2026-02-17", "lead_days": 5},
    {"key": "spring_festival", "name": "春节", "on": "2027-02-06", "lead_days": 5},
    {"key": "qingming", "name": "清明节", "on": "2025-04-04", "lead_days": 3},
    {"key": "qingming", "name": "清明节", "on": "2026-04-05", "lead_days": 3},
    {"key": "qingming", "name": "清明节", "on": "2027-04-05", "lead_days": 3},
    {"key": "labour_day", "name": "劳动节", "on": "05-01", "lead_days": 3},
    {"key": "dragon_boat", "name": "端午节", "on": "2025-05-31", "lead_days": 3},
    {"key": "dragon_boat", "name": "端午节", "on": "2026-06-19", "lead_days": 3},
    {"key": "dragon_boat", "name": "端午节", "on": "2027-06-09", "lead_days": 3},
    {"key": "mid_autumn", "name": "中秋节", "on": "2025-10-06", "lead_days": 3},
    {"key": "mid_autumn", "name": "中秋节", "on": "2026-09-25", "lead_days": 3},
    {"key": "mid_autumn", "name": "中秋节", "on": "2027-09-15", "lead_days": 3},
    {"key": "national_day", "name": "国庆节", "on": "10-01", "lead_days": 5},
)

KEYS = {
    "EDUCATION_TALK_DUE_DAYS": "days after a promotion takes effect within which the 廉政谈话 is due (30)",
    "EDUCATION_TALK_LADDER": "JSON list of {overdue_days, notify: unit|parent|district, label}",
    "EDUCATION_YOUNG_CADRE_CADENCE_DAYS": "days between two education records of a young cadre (90)",
    "EDUCATION_NOTICE_CALENDAR": "JSON list of {key, name, on: MM-DD|YYYY-MM-DD, lead_days}",
    "EDUCATION_NOTICE_HORIZON_DAYS": "how far ahead calendar notices are scheduled (30)",
    "EDUCATION_PARTY_ORG_LEVELS": "unit levels that count as party organisations (unit)",
    "EDUCATION_INDICATOR_GRACE_DAYS": "days after a month ends during which its figures stay "
                                      "provisional, for late entries (5; 0: final at once)",
}


@dataclass(frozen=True)
class EscalationStep:
    step: int
    overdue_days: int
    notify: str
    label: str


@dataclass(frozen=True)
class CalendarEntry:
    key: str
    name: str
    on: str  # "MM-DD" every year, or "YYYY-MM-DD" once
    lead_days: int

    def occasions(self, first: date, last: date):
        """Occasions still ahead (on or after ``first``) whose send date (occasion -
        lead_days) is on or before ``last``. A send date already passed still yields
        the occasion - a node that was down that day sends late rather than never."""
        lead = timedelta(days=self.lead_days)
        if len(self.on) == 10:
            candidates = [parse_date(self.on)]
        else:
            month, day = int(self.on[:2]), int(self.on[3:5])
            candidates = []
            for year in range(first.year, last.year + 2):
                try:
                    candidates.append(date(year, month, day))
                except ValueError:  # 02-29 outside leap years
                    continue
        for occasion in candidates:
            if occasion >= first and occasion - lead <= last:
                yield occasion


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class EducationSettings:
    timezone: str = "Asia/Shanghai"
    talk_due_days: int = 30
    talk_ladder: tuple[EscalationStep, ...] = field(
        default_factory=lambda: parse_ladder(DEFAULT_LADDER))
    young_cadre_cadence_days: int = 90
    notice_calendar: tuple[CalendarEntry, ...] = field(
        default_factory=lambda: parse_calendar(DEFAULT_CALENDAR))
    notice_horizon_days: int = 30
    party_org_levels: tuple[str, ...] = ("unit",)
    indicator_grace_days: int = 5

    @classmethod
    def from_config(cls, cfg: dict | None = None) -> "EducationSettings":
        def raw(key):
            if cfg and cfg.get(key) not in (None, ""):
                return cfg[key]
            return os.environ.get(key) or None

        kw = {"timezone": node_config.timezone_name(cfg)}
        for key, attr in (("EDUCATION_TALK_DUE_DAYS", "talk_due_days"),
                          ("EDUCATION_YOUNG_CADRE_CADENCE_DAYS", "young_cadre_cadence_days"),
                          ("EDUCATION_NOTICE_HORIZON_DAYS", "notice_horizon_days")):
            value = raw(key)
            if value is not None:
                kw[attr] = _positive_int(key, value)
        ladder = raw("EDUCATION_TALK_LADDER")
        if ladder is not None:
            kw["talk_ladder"] = parse_ladder(_json(key="EDUCATION_TALK_LADDER", value=ladder))
        cal = raw("EDUCATION_NOTICE_CALENDAR")
        if cal is not None:
            kw["notice_calendar"] = parse_calendar(_json(key="EDUCATION_NOTICE_CALENDAR", value=cal))
        grace = raw("EDUCATION_INDICATOR_GRACE_DAYS")
        if grace is not None:
            try:
                kw["indicator_grace_days"] = int(grace)
            except (TypeError, ValueError):
                raise SettingsError("EDUCATION_INDICATOR_GRACE_DAYS: expected a whole number of "
                                    "days, got %r" % (grace,)) from None
            if not 0 <= kw["indicator_grace_days"] <= 31:
                raise SettingsError("EDUCATION_INDICATOR_GRACE_DAYS: 0 to 31 days")
        levels = raw("EDUCATION_PARTY_ORG_LEVELS")
        if levels is not None:
            items = levels if isinstance(levels, (list, tuple)) else str(levels).split(",")
            kw["party_org_levels"] = tuple(s.strip() for s in items if s.strip())
            if not kw["party_org_levels"]:
                raise SettingsError("EDUCATION_PARTY_ORG_LEVELS: at least one level")
        return cls(**kw)


def _positive_int(key, value) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise SettingsError("%s: expected a whole number of days, got %r" % (key, value)) from None
    if n < 1:
        raise SettingsError("%s: must be at least 1" % key)
    return n


def _json(key, value):
    if isinstance(value, (list, tuple)):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise SettingsError("%s: not valid JSON (%s)" % (key, exc)) from None


def parse_ladder(items) -> tuple[EscalationStep, ...]:
    """Validate and order the ladder; rungs must climb strictly in overdue days."""
    steps, last = [], 0
    for i, item in enumerate(items, 1):
        try:
            days_ = int(item["overdue_days"])
            notify = item["notify"]
        except (KeyError, TypeError, ValueError):
            raise SettingsError("EDUCATION_TALK_LADDER rung %d: needs overdue_days and notify" % i) from None
        if notify not in ESCALATION_TARGETS:
            raise SettingsError("EDUCATION_TALK_LADDER rung %d: notify must be one of %s"
                                % (i, ", ".join(ESCALATION_TARGETS)))
        if days_ < 1 or days_ <= last:
            raise SettingsError("EDUCATION_TALK_LADDER rung %d: overdue_days must be >= 1 and "
                                "greater than the rung before" % i)
        last = days_
        steps.append(EscalationStep(i, days_, notify, str(item.get("label") or notify)))
    if not steps:
        raise SettingsError("EDUCATION_TALK_LADDER: at least one rung")
    return tuple(steps)


def parse_calendar(items) -> tuple[CalendarEntry, ...]:
    out = []
    for i, item in enumerate(items, 1):
        try:
            key, name, on = str(item["key"]), str(item["name"]), str(item["on"])
            lead = int(item.get("lead_days", 3))
        except (KeyError, TypeError, ValueError):
            raise SettingsError("EDUCATION_NOTICE_CALENDAR entry %d: needs key, name, on" % i) from None
        try:
            if len(on) == 10:
                parse_date(on)
            elif len(on) == 5 and on[2] == "-":
                date(2024, int(on[:2]), int(on[3:]))  # a leap year accepts 02-29
            else:
                raise ValueError(on)
        except ValueError:
            raise SettingsError("EDUCATION_NOTICE_CALENDAR entry %d: on must be MM-DD or "
                                "YYYY-MM-DD, got %r" % (i, on)) from None
        if not key.replace("_", "").replace("-", "").isalnum() or lead < 0 or lead > 60:
            raise SettingsError("EDUCATION_NOTICE_CALENDAR entry %d: key letters/digits/_/-, "
                                "lead_days 0..60" % i)
        out.append(CalendarEntry(key, name, on, lead))
    return tuple(out)
