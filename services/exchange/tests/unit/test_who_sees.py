"""Pure rules the console's 五联五互 pages show: who will see a record at each sharing
level (the sentence under the picker) and a joint problem's deadline colour."""
from __future__ import annotations

from services.exchange.domain import SHARING_LEVELS, deadline_state, who_sees
from services.exchange.queries import audience_of

NODES = ["city", "district-a", "district-b"]


def test_who_sees_each_level_from_a_district():
    assert who_sees("node", [], "district-a", "city", NODES) == ["district-a"]
    assert who_sees("city", [], "district-a", "city", NODES) == ["district-a", "city"]
    assert who_sees("all", [], "district-a", "city", NODES) == ["district-a", "city", "district-b"]
    assert who_sees("named", ["district-b"], "district-a", "city", NODES) == ["district-a",
                                                                              "district-b"]


def test_at_the_city_up_to_the_city_is_the_city_alone():
    assert who_sees("city", [], "city", "city", NODES) == ["city"]


def test_who_sees_agrees_with_the_audience_the_federation_sends_to():
    for level in SHARING_LEVELS:
        recipients = ["district-b"] if level == "named" else []
        row = {"owner": "district-a", "sharing": level, "recipients": recipients}
        audience = audience_of(row, "city")
        expected = set(NODES) if "*" in audience else audience
        assert set(who_sees(level, recipients, "district-a", "city", NODES)) == expected


def test_the_sharing_levels_read_as_the_console_offers_them():
    assert [SHARING_LEVELS.label(c) for c in ("node", "city", "all", "named")] == [
        "本单位", "上报市级", "市区共享", "指定单位"]


def test_deadline_states():
    today = "2026-12-02"
    assert deadline_state("open", "2026-12-01", today, 7) == "overdue"
    assert deadline_state("solution_accepted", "2026-12-01", today, 7) == "overdue"
    assert deadline_state("open", "2026-12-02", today, 7) == "due_soon"
    assert deadline_state("open", "2026-12-09", today, 7) == "due_soon"
    assert deadline_state("open", "2026-12-10", today, 7) == "on_track"
    assert deadline_state("resolved", "2026-11-01", today, 7) == "done"
    assert deadline_state("open", "2027-01-01", "2026-12-31", 1) == "due_soon"  # over the year
