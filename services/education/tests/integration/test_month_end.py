"""Issue 10 #13: month-end figures are not published as "missed" while the month is still
open. The routine publishes the month just ended as provisional, final once the grace
period (EDUCATION_INDICATOR_GRACE_DAYS) is over; a late entry republishes the month by
itself. The service layer on a real database (SQLite and PostgreSQL), the clock set by
the test; the same figures reaching the city is in the exchange's cross-node test."""
from __future__ import annotations

import pytest

from services.education.settings import EducationSettings

from tests.harness.education import Node, utc


@pytest.fixture
def node(db_url):
    n = Node(db_url, utc(2026, 2, 20, 2, 0), EducationSettings(indicator_grace_days=3))
    n.tree()
    yield n
    n.close()


def warning(node, unit, at):
    return node.run("record_session", {"kind": "warning_education", "title": "警示教育", "organiser_unit_id": unit,
                                       "scheduled_at": at, "attendance": {"headcount": 12}})


def published(node, period):
    pub = node.ask("published_indicators", {"period": period})
    return {u["unit_id"]: (u["warning_education_held"], u["provisional"]) for u in pub["units"]}, pub["district"]


def kinds(node, unit):
    return [i["kind"] for i in node.ask("unit_inbox", {"unit_id": unit})["items"]]


def test_the_running_month_is_provisional_and_misses_nothing(node):
    warning(node, "fin", "2026-02-10T02:00:00Z")
    out = node.run("publish_indicators", {"period": "2026-02"})   # by hand, mid-month
    assert out["provisional"] is True and out["published"] == ["edu", "fin", "mkt"]
    units, district = published(node, "2026-02")
    assert units == {"edu": (False, True), "fin": (True, True), "mkt": (False, True)}
    assert district["provisional"] is True and district["figures"]["provisional"] is True
    assert kinds(node, "edu") == []   # not held *yet*: no 月月行 item while the month runs


def test_grace_period_then_final_then_a_late_entry_republishes_by_itself(node):
    warning(node, "fin", "2026-02-10T02:00:00Z")
    node.clock.set(2026, 3, 1, 2, 0)          # 1 March: February over, grace until 3 March
    out = node.run("publish_due_indicators")
    assert (out["period"], out["provisional"], out["published"]) == ("2026-02", True, ["edu", "fin", "mkt"])
    assert kinds(node, "edu") == []

    # an entry for February recorded during the grace period: republished, still provisional
    warning(node, "mkt", "2026-02-25T02:00:00Z")
    out = node.run("publish_due_indicators")
    assert out["published"] == [] and out["republished"] == [
        {"period": "2026-02", "units": ["mkt"], "provisional": True}]
    assert published(node, "2026-02")[0]["mkt"] == (True, True)
    assert node.run("publish_due_indicators")["republished"] == []   # nothing new: nothing again

    node.clock.set(2026, 3, 3, 15, 0)         # 3 March 23:00 in Shanghai: still the grace period
    assert node.run("publish_due_indicators")["republished"] == []
    node.clock.set(2026, 3, 3, 16, 30)        # 4 March 00:30 in Shanghai: final
    out = node.run("publish_due_indicators")
    assert out["republished"] == [{"period": "2026-02", "units": ["edu", "fin", "mkt"], "provisional": False}]
    units, district = published(node, "2026-02")
    assert units == {"edu": (False, False), "fin": (True, False), "mkt": (True, False)}
    assert district["provisional"] is False
    assert kinds(node, "edu") == ["warning_education_missed"]   # now it is a miss
    assert node.run("publish_due_indicators")["republished"] == []

    # a late entry after the month is final: republished by the routine, nobody by hand
    node.clock.set(2026, 3, 20, 2, 0)
    warning(node, "edu", "2026-02-27T02:00:00Z")
    out = node.run("publish_due_indicators")
    assert out["republished"] == [{"period": "2026-02", "units": ["edu"], "provisional": False}]
    assert published(node, "2026-02")[0]["edu"] == (True, False)
    assert kinds(node, "edu") == []           # the miss is closed


def test_a_routine_that_finds_nothing_new_writes_nothing(node):
    node.clock.set(2026, 3, 10, 2, 0)
    node.run("publish_due_indicators")        # February: final at once (grace over)
    assert published(node, "2026-02")[0]["fin"] == (False, False)
    head = node.head()
    out = node.run("publish_due_indicators")
    assert out["published"] == [] and out["republished"] == [] and node.head() == head


def test_a_bad_grace_period_stops_the_service_with_the_key():
    from services.education.settings import SettingsError
    for bad in ("-1", "x", "40"):
        with pytest.raises(SettingsError, match="EDUCATION_INDICATOR_GRACE_DAYS"):
            EducationSettings.from_config({"EDUCATION_INDICATOR_GRACE_DAYS": bad})
    assert EducationSettings.from_config({"EDUCATION_INDICATOR_GRACE_DAYS": "0"}).indicator_grace_days == 0
    assert EducationSettings.from_config({}).indicator_grace_days == 5
