"""The console's settings (nameko config or environment; see shared.config.ENV_VARS)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from shared import config


def _raw(cfg: dict | None, name: str, default: str) -> str:
    value = (cfg or {}).get(name)
    if value in (None, ""):
        value = os.environ.get(name) or default
    return str(value)


def _number(cfg, name: str, default: float, low: float, high: float) -> float:
    raw = _raw(cfg, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ValueError("%s: a number from %s to %s (got %r)" % (name, low, high, raw))
    return value


@dataclass(frozen=True)
class Settings:
    idle_seconds: int = 30 * 60        # a session not used for this long is ended
    absolute_seconds: int = 12 * 3600  # and none lives longer than this
    secure_cookie: bool = False        # set behind TLS: the cookie then travels only over HTTPS
    lock_after: int = 5                # failed sign-ins of one user name before a lock
    address_lock_after: int = 20       # of one address (an office behind one NAT: higher)
    lock_seconds: int = 15 * 60
    backoff_seconds: float = 1.0       # the wait after the 2nd failure, doubled after each next
    due_soon_days: int = 7             # 黄: due within this many days
    public_url: str = ""               # the console's address as printed on QR codes
    public_reports_per_hour: int = 5   # 群众监督: reports from one client address per hour
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_config(cls, cfg: dict | None = None) -> "Settings":
        return cls(
            idle_seconds=int(_number(cfg, "CONSOLE_IDLE_MINUTES", 30, 1, 24 * 60) * 60),
            absolute_seconds=int(_number(cfg, "CONSOLE_SESSION_HOURS", 12, 0.1, 24 * 30) * 3600),
            secure_cookie=_raw(cfg, "CONSOLE_SECURE_COOKIE", "off").lower() in ("on", "1", "true", "yes"),
            lock_after=int(_number(cfg, "CONSOLE_LOCK_AFTER", 5, 1, 100)),
            address_lock_after=int(_number(cfg, "CONSOLE_ADDRESS_LOCK_AFTER", 20, 1, 1000)),
            lock_seconds=int(_number(cfg, "CONSOLE_LOCK_MINUTES", 15, 0.01, 24 * 60) * 60),
            backoff_seconds=_number(cfg, "CONSOLE_BACKOFF_SECONDS", 1, 0, 60),
            due_soon_days=int(_number(cfg, "CONSOLE_DUE_SOON_DAYS", 7, 1, 90)),
            public_url=_raw(cfg, "CONSOLE_PUBLIC_URL", "").rstrip("/"),
            public_reports_per_hour=int(_number(cfg, "CONSOLE_PUBLIC_REPORTS_PER_HOUR", 5, 1, 1000)),
            timezone=config.timezone_name(cfg),
        )
