"""The month-end rule both monthly publishers follow (shared.months, issue 10 #13)."""
from datetime import date

from shared.months import month_final


def test_a_month_is_final_only_after_its_grace_period():
    assert not month_final("2026-02", date(2026, 2, 28), 5)      # running
    assert not month_final("2026-02", date(2026, 3, 5), 5)       # grace: 1..5 March
    assert month_final("2026-02", date(2026, 3, 6), 5)
    assert month_final("2026-02", date(2026, 3, 1), 0)           # no grace: final once over
    assert not month_final("2026-12", date(2027, 1, 3), 3)       # across the year
