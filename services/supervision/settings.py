"""Configuration of the supervision service (nameko config key ``SUPERVISION``).

Everything a district may want to tune without a code change lives here: the
escalation ladder with its grace periods, the risk scale and its thresholds, the weights
for sensitive posts and the default screening cadence. A missing key takes the default;
a wrong value stops the service at start-up with a message naming the key, because a
silently ignored ladder would mean overdue rectifications that nobody escalates.

    SUPERVISION:
      escalation_ladder:            # days overdue before each step is reached
        - {level: owner_unit, after_days: 0}
        - {level: unit_head, after_days: 7}
        - {level: district_office, after_days: 15}
        - {level: city, after_days: 30}
      risk_scale: 5                 # likelihood and impact are 1..risk_scale
      risk_thresholds: {high: 0.6, medium: 0.32}   # share of risk_scale**2
      post_flag_weights: {concentrated_power: 0.2, fund_intensive: 0.2, resource_rich: 0.2}
      screening_cadence: quarterly  # monthly | quarterly | half_yearly | yearly
      district_office_unit_id: null # default: the root unit of the owner's tree

Pure Python: the domain and the application read a ``Settings`` value, never the config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONFIG_KEY = "SUPERVISION"

# Who an overdue rectification is escalated to, in ladder order.
ESCALATION_LEVELS = (
    "owner_unit",       # 整改责任单位
    "unit_head",        # 单位负责人 / 纪检委员
    "district_office",  # 区直机关工委 (the district supervising office)
    "city",             # 市级主管部门: counts only, via DistrictIndicators
)
POST_FLAGS = ("concentrated_power", "fund_intensive", "resource_rich")  # 权力集中 资金密集 资源富集
CADENCE_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}

DEFAULT_LADDER = (
    {"level": "owner_unit", "after_days": 0},
    {"level": "unit_head", "after_days": 7},
    {"level": "district_office", "after_days": 15},
    {"level": "city", "after_days": 30},
)


class ConfigError(ValueError):
    """The SUPERVISION config is wrong; the message names the key."""


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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def risk_rules(self) -> dict:
        """What an assessment records about the rules it was made under."""
        return {"scale": self.risk_scale, "high": self.risk_high, "medium": self.risk_medium,
                "flag_weights": dict(self.post_flag_weights)}

    @classmethod
    def from_config(cls, config: dict | None, timezone: str = "Asia/Shanghai") -> "Settings":
        raw = (config or {}).get(CONFIG_KEY) or {}
        if not isinstance(raw, dict):
            raise ConfigError("%s must be a mapping" % CONFIG_KEY)
        unknown = set(raw) - {"escalation_ladder", "risk_scale", "risk_thresholds",
                              "post_flag_weights", "screening_cadence", "district_office_unit_id"}
        if unknown:
            raise ConfigError("%s: unknown key(s) %s" % (CONFIG_KEY, ", ".join(sorted(unknown))))
        ladder = tuple(dict(s) for s in raw.get("escalation_ladder") or DEFAULT_LADDER)
        _check_ladder(ladder)
        scale = raw.get("risk_scale", 5)
        if not isinstance(scale, int) or not 2 <= scale <= 10:
            raise ConfigError("%s.risk_scale: an integer from 2 to 10" % CONFIG_KEY)
        thresholds = raw.get("risk_thresholds") or {}
        high, medium = thresholds.get("high", 0.6), thresholds.get("medium", 0.32)
        if not (isinstance(high, (int, float)) and isinstance(medium, (int, float))
                and 0 < medium < high <= 1):
            raise ConfigError("%s.risk_thresholds: 0 < medium < high <= 1 (shares of scale²)"
                              % CONFIG_KEY)
        weights = {f: 0.2 for f in POST_FLAGS}
        for flag, w in (raw.get("post_flag_weights") or {}).items():
            if flag not in POST_FLAGS or not isinstance(w, (int, float)) or not 0 <= w <= 2:
                raise ConfigError("%s.post_flag_weights: %s must be one of %s with a weight 0..2"
                                  % (CONFIG_KEY, flag, ", ".join(POST_FLAGS)))
            weights[flag] = float(w)
        cadence = raw.get("screening_cadence", "quarterly")
        if cadence not in CADENCE_MONTHS:
            raise ConfigError("%s.screening_cadence: one of %s"
                              % (CONFIG_KEY, ", ".join(CADENCE_MONTHS)))
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError("QINGLIAN_TZ: unknown time zone %r" % timezone) from exc
        return cls(ladder=ladder, risk_scale=scale, risk_high=float(high),
                   risk_medium=float(medium), post_flag_weights=weights,
                   screening_cadence=cadence,
                   district_office_unit_id=raw.get("district_office_unit_id") or None,
                   timezone=timezone)


def _check_ladder(ladder: tuple) -> None:
    where = "%s.escalation_ladder" % CONFIG_KEY
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


DEFAULT_SETTINGS = Settings()


def settings_of(runtime) -> Settings:
    """The settings the service attached to its runtime (defaults when run bare)."""
    return getattr(runtime, "supervision_settings", None) or DEFAULT_SETTINGS
