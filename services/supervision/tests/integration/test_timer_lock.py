"""No request waits behind supervision's timers (issue 11, B8): a command sent while
``publish_indicators`` or ``detect_overdue`` computes over a few hundred units is recorded
at once, before any of the sweep's events (order in the log, not a clock; the harness is
tests/midsweep.py)."""
from __future__ import annotations

from services.supervision import application, queries as q
from tests.harness.supervision import INSPECTOR
from tests.midsweep import interrupt

UNITS = ["u%03d" % i for i in range(150)]  # 150 departments + 150 sections + the district


def test_a_command_sent_while_the_timer_computes_is_recorded_before_its_figures(any_node, monkeypatch):
    node = any_node
    node.district(UNITS)
    compute = q.unit_figures
    sent = interrupt(monkeypatch, q, "unit_figures", lambda: node.finding("u001", actor=INSPECTOR),
                     node.head)
    out = node.run("publish_indicators")
    sent.check()
    assert out["units"] >= len(UNITS) and out["districts"] == 1
    published = [e.position for e in node.events() if e.event_type == "UnitIndicators.Published"]
    assert len(published) == out["units"] > application.PUBLISH_BATCH
    assert min(published) > sent.after
    # run again: nothing changed, nothing written
    head = node.head()
    monkeypatch.setattr(q, "unit_figures", compute)
    assert node.run("publish_indicators")["units"] == 1  # the finding changed u001's figures
    assert node.run("publish_indicators") == {"as_of": out["as_of"], "units": 0, "districts": 0,
                                              "discipline_periods": 0, "months": out["months"]}
    assert node.head() > head


def test_a_command_sent_while_overdue_detection_computes_is_recorded_before_its_events(any_node, monkeypatch):
    node = any_node
    node.district(UNITS)
    for unit_id in UNITS:  # one rectification per unit, all due on 31 March
        node.finding(unit_id, deadline="2024-03-31")
    node.clock.set("2024-05-20")  # well past: overdue, and up the ladder
    # whom the ladder reaches is read once per owning unit: halfway through, a user acts
    sent = interrupt(monkeypatch, application, "_ladder_targets",
                     lambda: node.finding("u001", deadline="2024-06-30", actor=INSPECTOR),
                     node.head, at=len(UNITS) // 2)
    out = node.run("detect_overdue", {}, INSPECTOR)
    sent.check()
    assert out["overdue_detected"] == len(UNITS) and out["escalations"] > 0
    swept = [e.position for e in node.events()
             if e.event_type in ("Rectification.OverdueDetected", "Rectification.Escalated")]
    assert len(swept) == out["overdue_detected"] + out["escalations"] > application.PUBLISH_BATCH
    assert min(swept) > sent.after
    # the user's finding is not overdue, and a second run the same day changes nothing
    head = node.head()
    again = node.run("detect_overdue", {}, INSPECTOR)
    assert (again["overdue_detected"], again["escalations"]) == (0, 0) and node.head() == head
