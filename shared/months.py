"""The month as a reporting period (``YYYY-MM``): the rule every service that publishes
monthly figures upward follows, said once here."""
from __future__ import annotations

import calendar
from datetime import date, timedelta


def month_final(period: str, today: date, grace_days: int) -> bool:
    """A month's published figures are final (最终) once the month is over and its grace
    period for late entries - ``grace_days`` days after its last day (each service's
    ``<SERVICE>_INDICATOR_GRACE_DAYS``) - has passed.
    Until then they are published as provisional (暂定): what they show missing is not
    missed yet (no "missed" item in an inbox, not counted missed at the city), and an entry
    recorded late still changes them."""
    year, month = int(period[:4]), int(period[5:7])
    last = date(year, month, calendar.monthrange(year, month)[1])
    return today > last + timedelta(days=grace_days)
