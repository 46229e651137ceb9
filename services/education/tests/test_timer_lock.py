"""No request waits behind a timer (issue 11, B8).

``publish_due_indicators`` used to compute the figures of every organisation inside one
unit of work that held the log's writer lock: 12.8 s at about 400 units, while users got
503s. Here a command is sent *in the middle of* the sweep's computation (on the 150th
of 300 organisations): it must be recorded at once, before any of the sweep's figures,
and the sweep must still publish every organisation. The proof is the order of events
in the log, not a clock."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from services.education import application, projections as pr
from services.education.tests.support import Node, utc
from shared.store import events

ORGS = 300


@pytest.fixture
def node(db_url):
    n = Node(db_url, utc(2026, 3, 1, 2, 0))  # 1 March: February is over
    n.unit("dist", None, "district", "district_authority", "X区")
    for i in range(ORGS):
        n.unit("org-%03d" % i, "dist", "unit", "government_dept", "单位%d" % i)
    yield n
    n.close()


def test_a_command_sent_while_the_timer_computes_is_recorded_before_its_figures(node, monkeypatch):
    computed, sent = [], {}
    compute = pr.unit_indicators

    def unit_indicators(conn, unit_id, period):
        computed.append(unit_id)
        if len(computed) == ORGS // 2:  # a user's command arrives mid-sweep
            try:
                sent["result"] = node.run("set_daily_reminder", {"on": "2026-03-02", "text": "廉洁从政"})
            except Exception as exc:  # noqa: BLE001 - kept to assert on below
                sent["error"] = exc
        return compute(conn, unit_id, period)

    monkeypatch.setattr(pr, "unit_indicators", unit_indicators)
    out = node.run("publish_due_indicators")
    assert "error" not in sent, "the command waited for the timer: %r" % sent.get("error")
    assert len(out["published"]) == ORGS and out["district_published"] is True
    with node.rt.read() as conn:
        log = conn.execute(select(events.c.position, events.c.event_type)
                           .order_by(events.c.position)).all()
    reminder = [p for p, t in log if t.startswith("DailyReminder")]
    figures = [p for p, t in log if t == "EducationIndicators.Published"]
    assert len(reminder) == 1 and len(figures) == ORGS
    assert reminder[0] < min(figures)
    # the figures went in batches, the district's last: each batch is one short write
    district = [p for p, t in log if t == "DistrictEducationIndicators.Published"]
    assert district and district[0] > max(figures)
    assert application.PUBLISH_BATCH < ORGS


def test_the_routine_run_again_publishes_nothing_and_computes_nothing(node, monkeypatch):
    node.run("publish_due_indicators")
    head = node.head()
    calls = []
    compute = pr.unit_indicators
    monkeypatch.setattr(pr, "unit_indicators", lambda *a: calls.append(a) or compute(*a))
    again = node.run("publish_due_indicators")
    assert again["published"] == [] and again["district_published"] is False
    assert calls == [] and node.head() == head  # an idle tick costs a few reads


def test_the_weekly_rotation_routine_does_not_hold_the_lock_while_it_chooses(node, monkeypatch):
    for i in range(3):
        node.run("add_content", {"kind": "slogan", "title": "标语%d" % i, "text": "清风%d" % i})
    calls, sent = [], {}
    choose = application._auto_choice

    def auto_choice(conn, unit_id, items):
        calls.append(unit_id)
        if len(calls) == ORGS // 2:
            try:
                sent["result"] = node.run("set_daily_reminder", {"on": "2026-03-02", "text": "廉洁从政"})
            except Exception as exc:  # noqa: BLE001 - asserted on below
                sent["error"] = exc
        return choose(conn, unit_id, items)

    monkeypatch.setattr(application, "_auto_choice", auto_choice)
    out = node.run("rotate_publicity_all")
    assert "error" not in sent, "the command waited for the timer: %r" % sent.get("error")
    assert len(out["rotated"]) == ORGS
    with node.rt.read() as conn:
        log = conn.execute(select(events.c.position, events.c.event_type)).all()
    reminder = [p for p, t in log if t.startswith("DailyReminder")]
    rotations = [p for p, t in log if t == "PublicityRotation.Rotated"]
    assert len(rotations) == ORGS and reminder[0] < min(rotations)
    assert node.run("rotate_publicity_all")["rotated"] == []  # once a week
