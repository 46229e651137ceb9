"""No request waits behind supervision's hourly publishing timer (issue 11, B8): a
command sent while ``publish_indicators`` computes the figures of a few hundred units
is recorded at once, before any of the sweep's events (order in the log, not a clock)."""
from __future__ import annotations

from services.supervision import application, queries as q
from services.supervision.tests.support import INSPECTOR

UNITS = ["u%03d" % i for i in range(150)]  # 150 departments + 150 sections + the district


def test_a_command_sent_while_the_timer_computes_is_recorded_before_its_figures(any_node, monkeypatch):
    node = any_node
    node.district(UNITS)
    sent = {}
    compute = q.unit_figures

    def unit_figures(conn, *a, **kw):
        figures = compute(conn, *a, **kw)  # the sweep's long part, done: now a user acts
        before = node.head()
        try:
            node.finding("u001", actor=INSPECTOR)
        except Exception as exc:  # noqa: BLE001 - asserted on below
            sent["error"] = exc
        sent["positions"] = (before, node.head())
        return figures

    monkeypatch.setattr(q, "unit_figures", unit_figures)
    out = node.run("publish_indicators")
    assert "error" not in sent, "the command waited for the timer: %r" % sent.get("error")
    assert out["units"] >= len(UNITS) and out["districts"] == 1
    before, after = sent["positions"]
    published = [e.position for e in node.events() if e.event_type == "UnitIndicators.Published"]
    assert after > before and len(published) == out["units"] > application.PUBLISH_BATCH
    assert min(published) > after
    # run again: nothing changed, nothing written
    head = node.head()
    monkeypatch.setattr(q, "unit_figures", compute)
    assert node.run("publish_indicators")["units"] == 1  # the finding changed u001's figures
    assert node.run("publish_indicators") == {"as_of": out["as_of"], "units": 0, "districts": 0,
                                              "discipline_periods": 0}
    assert node.head() > head
