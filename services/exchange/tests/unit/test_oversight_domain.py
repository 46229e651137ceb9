"""The pure rules of 督办 and of exemplars' figures (services.exchange.domain)."""
from __future__ import annotations

import pytest

from services.exchange.domain import (
    EscalatedCase, awaiting_follow_up, escalated_days_late, escalation_progress,
    exemplar_indicators, follows_publication, republished_indicators, sort_value,
)
from shared.errors import BadInput, RuleViolation

CASE = {"rect_id": "r1", "unit_id": "a-xj", "unit_name": "x局", "description": "公务接待超标准",
        "severity": "general", "source": "audit", "category": None, "requirement": "退还",
        "found_on": "2026-01-05", "deadline": "2026-01-10", "days_overdue": 31,
        "referred_on": "2026-02-10",
        "trail": [{"on": "2026-02-10", "what": "escalated", "step": 4, "level": "city",
                   "days_overdue": 31}]}


def test_days_late_count_while_open_and_stop_when_closed():
    assert escalated_days_late("2026-01-10", "open", None, "2026-03-01") == 50
    assert escalated_days_late("2026-01-10", "extended", None, "2026-01-09") == 0
    assert escalated_days_late("2026-01-10", "closed", "2026-02-01", "2026-03-01") == 22


def test_progress_keeps_dates_and_codes_only():
    verified = {"rect_id": "r1", "verified_on": "2026-02-20", "verified_by": "insp-1", "note": "好"}
    change = escalation_progress("Rectification.Verified", verified, "open", "2026-01-10")
    assert change == {"status": "closed", "deadline": "2026-01-10", "closed_on": "2026-02-20",
                      "entry": {"on": "2026-02-20", "what": "closed"}}
    assert escalation_progress("Rectification.OverdueDetected", {}, "open", "2026-01-10") is None


def test_a_case_is_shared_up_to_the_city_and_its_referral_rung_is_not_recorded_twice():
    case = EscalatedCase.refer("district-a/escalation-1", CASE)
    assert [type(e).__name__ for e in case.pending_events] == ["Referred", "Published"]
    assert case.sharing == "city" and case.status == "open"
    again = {"rect_id": "r1", "escalated_on": "2026-02-10", "step": 4, "level": "city",
             "days_overdue": 31, "deadline": "2026-01-10"}
    assert case.progress("Rectification.Escalated", again) is False
    assert case.progress("Rectification.DeadlineExtended", {
        "rect_id": "r1", "extended_on": "2026-02-12", "deadline": "2026-03-31"}) is True
    assert (case.status, case.deadline, case.trail[-1]["what"]) == ("extended", "2026-03-31", "extended")


def test_only_the_city_follows_up_and_never_a_closed_case():
    case = EscalatedCase.refer("district-a/escalation-2", CASE)
    with pytest.raises(RuleViolation, match="只有市级节点"):
        case.check_follow_up(by_city=False)
    case.check_follow_up(by_city=True)
    case.progress("Rectification.Verified", {"rect_id": "r1", "verified_on": "2026-02-20"})
    with pytest.raises(RuleViolation, match="已销号"):
        case.check_follow_up(by_city=True)


def test_an_exemplar_takes_the_published_figures_and_marks_the_typed_ones():
    figures, sources = exemplar_indicators({"closure_rate": 1, "overdue_count": 0},
                                           {"群众满意度": 98.5})
    assert figures == {"closure_rate": 1, "overdue_count": 0, "群众满意度": 98.5}
    assert sources == {"closure_rate": "published", "overdue_count": "published",
                       "群众满意度": "manual"}
    with pytest.raises(BadInput) as err:
        exemplar_indicators({"closure_rate": 1}, {"closure_rate": 0.5})
    assert list(err.value.fields) == ["indicators"]
    with pytest.raises(BadInput):
        exemplar_indicators({}, {})


def test_a_published_exemplar_follows_its_units_publications_and_keeps_what_was_typed():
    content = {"period": "2026-10", "indicators": {"closure_rate": 0.5, "群众满意度": 98.5},
               "indicator_sources": {"closure_rate": "published", "群众满意度": "manual"}}
    assert follows_publication(content, "2026-10") is True
    assert follows_publication(content, "2026-11") is False
    assert follows_publication(dict(content, indicator_sources=None), "2026-10") is False
    assert republished_indicators(content, {"closure_rate": 1, "overdue_count": 2}) == (
        {"closure_rate": 1, "overdue_count": 2, "群众满意度": 98.5},
        {"closure_rate": "published", "overdue_count": "published", "群众满意度": "manual"})


def test_the_city_rungs_inbox_is_the_open_cases_nobody_followed_up():
    assert awaiting_follow_up("open", []) is True and awaiting_follow_up("extended", []) is True
    assert awaiting_follow_up("open", [{"action": "phone"}]) is False
    assert awaiting_follow_up("closed", []) is False


def test_the_ranking_order_is_best_first():
    assert sort_value("closure_rate", 0.9) < sort_value("closure_rate", 0.5)
    assert sort_value("overdue_count", 1) < sort_value("overdue_count", 3)
