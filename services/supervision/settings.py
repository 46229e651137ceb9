"""Configuration of the supervision service: nameko config keys (or environment variables).

Everything a district may want to tune without a code change lives here: the
escalation ladder with its grace periods, the risk scale and its thresholds, the weights
for sensitive posts and the default screening cadence. A missing key takes the default;
a wrong value stops the service at start-up with a message naming the key, because a
silently ignored ladder would mean overdue rectifications that nobody escalates.

    SUPERVISION_ESCALATION_LADDER:     # days overdue before each step is reached
      - {level: owner_unit, after_days: 0}
      - {level: unit_head, after_days: 7}
      - {level: district_office, after_days: 15}
      - {level: city, after_days: 30}
    SUPERVISION_RISK_SCALE: 5          # likelihood and impact are 1..scale
    SUPERVISION_RISK_THRESHOLDS: {high: 0.6, medium: 0.32}   # shares of scale²
    SUPERVISION_POST_FLAG_WEIGHTS: {concentrated_power: 0.2, fund_intensive: 0.2, resource_rich: 0.2}
    SUPERVISION_SCREENING_CADENCE: quarterly   # monthly | quarterly | half_yearly | yearly
    SUPERVISION_DISTRICT_OFFICE_UNIT: ""       # default: the root unit of the owner's tree
    SUPERVISION_INDICATOR_GRACE_DAYS: 5        # 月末宽限期: days after a month ends during
                                               # which its published figures stay provisional
                                               # (暂定) for late entries; 0: final at once

Structured values may also be given as JSON text (environment variables). The users'
time zone is the node's ``QINGLIAN_TZ``.

Pure Python: the domain and the application read a ``Settings`` value, never the config.
The application declares ``settings_from_config`` as its settings (``shared.app``), so a
command finds them as ``uow.rt.settings`` and a query declared ``runtime=True`` as
``rt.settings``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared import config as node_config
from shared.labels import Choices

# Who an overdue rectification is escalated to, in ladder order.
ESCALATION_LEVELS = Choices("督办层级", {
    "owner_unit": "整改责任单位",
    "unit_head": "单位负责人、纪检委员",
    "district_office": "区直机关工委",  # the district supervising office
    "city": "市级主管部门",             # the case itself: Rectification.ReferredToCity
})
POST_FLAGS = Choices("岗位特征", {"concentrated_power": "权力集中", "fund_intensive": "资金密集",
                                "resource_rich": "资源富集"})
CADENCE_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}

DEFAULT_LADDER = (
    {"level": "owner_unit", "after_days": 0},
    {"level": "unit_head", "after_days": 7},
    {"level": "district_office", "after_days": 15},
    {"level": "city", "after_days": 30},
)


class ConfigError(ValueError):
    """A SUPERVISION_* setting is wrong; the message names the key."""


@dataclass(frozen=True)
class Settings:
    ladder: tuple = DEFAULT_LADDER
    risk_scale: int = 5
    risk_high: float = 0.6
    risk_medium: float = 0.32
    post_flag_weights: dict = field(default_factory=lambda: {f: 0.2 for f in POST_FLAGS})
    screening_cadence: str = "quarterly"
    district_office_unit_id: str | None = None
    timezone: str = "Asia/Shanghai"
    indicator_grace_days: int = 5  # shared.months.month_final

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def risk_rules(self) -> dict:
        """What an assessment records about the rules it was made under."""
        return {"scale": self.risk_scale, "high": self.risk_high, "medium": self.risk_medium,
                "flag_weights": dict(self.post_flag_weights)}

    @classmethod
    def from_config(cls, config: dict | None, timezone: str = "Asia/Shanghai") -> "Settings":
        def raw(key):
            if config and config.get(key) not in (None, ""):
                return config[key]
            return os.environ.get(key) or None

        ladder = _structured("SUPERVISION_ESCALATION_LADDER",
                             raw("SUPERVISION_ESCALATION_LADDER")) or DEFAULT_LADDER
        if not isinstance(ladder, (list, tuple)) or not all(isinstance(s, dict) for s in ladder):
            _fail("SUPERVISION_ESCALATION_LADDER: a list of {level, after_days}")
        ladder = tuple(dict(s) for s in ladder)
        _check_ladder(ladder)
        scale = _whole("SUPERVISION_RISK_SCALE", raw("SUPERVISION_RISK_SCALE") or 5, 2, 10)
        thresholds = _structured("SUPERVISION_RISK_THRESHOLDS",
                                 raw("SUPERVISION_RISK_THRESHOLDS")) or {}
        if not isinstance(thresholds, dict) or set(thresholds) - {"high", "medium"}:
            _fail("SUPERVISION_RISK_THRESHOLDS: {high: share, medium: share}")
        high, medium = thresholds.get("high", 0.6), thresholds.get("medium", 0.32)
        if not (isinstance(high, (int, float)) and isinstance(medium, (int, float))
                and 0 < medium < high <= 1):
            _fail("SUPERVISION_RISK_THRESHOLDS: 0 < medium < high <= 1 (shares of scale²)")
        weights = {f: 0.2 for f in POST_FLAGS}
        given = _structured("SUPERVISION_POST_FLAG_WEIGHTS",
                            raw("SUPERVISION_POST_FLAG_WEIGHTS")) or {}
        if not isinstance(given, dict):
            _fail("SUPERVISION_POST_FLAG_WEIGHTS: {flag: weight}")
        for flag, w in given.items():
            if flag not in POST_FLAGS or not isinstance(w, (int, float)) or not 0 <= w <= 2:
                _fail("SUPERVISION_POST_FLAG_WEIGHTS: %s must be one of %s with a weight 0..2"
                      % (flag, ", ".join(POST_FLAGS)))
            weights[flag] = float(w)
        cadence = raw("SUPERVISION_SCREENING_CADENCE") or "quarterly"
        if cadence not in CADENCE_MONTHS:
            _fail("SUPERVISION_SCREENING_CADENCE: one of %s" % ", ".join(CADENCE_MONTHS))
        grace = raw("SUPERVISION_INDICATOR_GRACE_DAYS")
        grace = _whole("SUPERVISION_INDICATOR_GRACE_DAYS", 5 if grace is None else grace, 0, 31)
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            _fail("QINGLIAN_TZ: unknown time zone %r" % timezone)
        return cls(ladder=ladder, risk_scale=scale, risk_high=float(high),
                   risk_medium=float(medium), post_flag_weights=weights,
                   screening_cadence=cadence,
                   district_office_unit_id=raw("SUPERVISION_DISTRICT_OFFICE_UNIT"),
                   timezone=timezone, indicator_grace_days=grace)


def _fail(message: str):
    raise ConfigError(message)


def _whole(key: str, value, low: int, high: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        _fail("%s: a whole number, got %r" % (key, value))
    if not low <= n <= high:
        _fail("%s: from %d to %d" % (key, low, high))
    return n


def _structured(key: str, value):
    """Lists and mappings come as they are from YAML, or as JSON text from the environment."""
    if value is None or isinstance(value, (list, tuple, dict)):
        return value
    try:
        return json.loads(value)
    except ValueError:
        _fail("%s: not valid JSON" % key)


def _check_ladder(ladder: tuple) -> None:
    where = "SUPERVISION_ESCALATION_LADDER"
    if not 1 <= len(ladder) <= len(ESCALATION_LEVELS):
        raise ConfigError("%s: 1 to %d steps" % (where, len(ESCALATION_LEVELS)))
    seen, previous = set(), -1
    for i, step in enumerate(ladder):
        level, days = step.get("level"), step.get("after_days")
        if level not in ESCALATION_LEVELS or set(step) != {"level", "after_days"}:
            raise ConfigError("%s[%d]: {level: one of %s, after_days: n}"
                              % (where, i, ", ".join(ESCALATION_LEVELS)))
        if level in seen:
            raise ConfigError("%s[%d]: level %s appears twice" % (where, i, level))
        if not isinstance(days, int) or days < 0 or days < previous:
            raise ConfigError("%s[%d]: after_days must be a whole number of days, not less than "
                              "the step before" % (where, i))
        seen.add(level)
        previous = days
    # the city only ever sees counts: it cannot come before a step that acts on the case
    if "city" in seen and ladder[-1]["level"] != "city":
        raise ConfigError("%s: the city step, if present, must be the last" % where)


def settings_from_config(cfg: dict) -> Settings:
    """The service's settings (``Application(settings=...)``): the SUPERVISION_* keys and
    the node's time zone, read once at start-up."""
    return Settings.from_config(cfg, node_config.timezone_name(cfg))
