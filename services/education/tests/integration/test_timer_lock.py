"""No request waits behind a timer (issue 11, B8).

``publish_due_indicators`` used to compute the figures of every organisation inside one
unit of work that held the log's writer lock: 12.8 s at about 400 units, while users got
503s. Here a command is sent *in the middle of* the sweep's computation (on the 150th
of 300 organisations): it must be recorded at once, before any of the sweep's figures,
and the sweep must still publish every organisation. The proof is the order of events
in the log, not a clock (the harness is tests/midsweep.py). The other routines that
sweep records - notices, overdue talks, the daily reminder - are held to the same."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from services.education import application, queries as q
from tests.harness.education import Node, utc
from shared.store import events
from tests.midsweep import interrupt

ORGS = 300


@pytest.fixture
def node(db_url):
    n = Node(db_url, utc(2026, 3, 1, 2, 0))  # 1 March: February is over
    n.unit("dist", None, "district", "district_authority", "X区")
    for i in range(ORGS):
        n.unit("org-%03d" % i, "dist", "unit", "government_dept", "单位%d" % i)
    yield n
    n.close()


def _reminder(node, on="2026-03-02"):
    """A user's command: a coming day's 廉洁提醒."""
    return lambda: node.run("set_daily_reminder", {"on": on, "text": "廉洁从政"})


def _log(node):
    with node.rt.read() as conn:
        return conn.execute(select(events.c.position, events.c.event_type)
                            .order_by(events.c.position)).all()


def test_a_command_sent_while_the_timer_computes_is_recorded_before_its_figures(node, monkeypatch):
    sent = interrupt(monkeypatch, q, "unit_indicators", _reminder(node), node.head, at=ORGS // 2)
    out = node.run("publish_due_indicators")
    sent.check()
    assert len(out["published"]) == ORGS and out["district_published"] is True
    log = _log(node)
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
    compute = q.unit_indicators
    monkeypatch.setattr(q, "unit_indicators", lambda *a: calls.append(a) or compute(*a))
    again = node.run("publish_due_indicators")
    assert again["published"] == [] and again["district_published"] is False
    assert calls == [] and node.head() == head  # an idle tick costs a few reads


def test_the_weekly_rotation_routine_does_not_hold_the_lock_while_it_chooses(node, monkeypatch):
    for i in range(3):
        node.run("add_content", {"kind": "slogan", "title": "标语%d" % i, "text": "清风%d" % i})
    sent = interrupt(monkeypatch, application, "_auto_choice", _reminder(node), node.head, at=ORGS // 2)
    out = node.run("rotate_publicity_all")
    sent.check()
    assert len(out["rotated"]) == ORGS
    log = _log(node)
    reminder = [p for p, t in log if t.startswith("DailyReminder")]
    rotations = [p for p, t in log if t == "PublicityRotation.Rotated"]
    assert len(rotations) == ORGS and reminder[0] < min(rotations)
    assert node.run("rotate_publicity_all")["rotated"] == []  # once a week


def test_notices_go_out_after_a_command_sent_while_the_recipients_are_read(node, monkeypatch):
    for notice_id in ("n-a", "n-b"):
        node.run("schedule_notice", {"notice_id": notice_id, "title": "关于节日期间廉洁过节的通知",
                                     "body": "严守中央八项规定精神。", "send_on": "2026-03-01"})
    # while the routine reads its 300 recipients, the office cancels one notice
    sent = interrupt(monkeypatch, q, "party_orgs",
                     lambda: node.run("cancel_notice", {"notice_id": "n-b", "reason": "内容有误"}),
                     node.head)
    out = node.run("dispatch_due_notices")
    sent.check()
    assert out == {"sent": ["n-a"], "recipients": ORGS}  # checked again under the lock
    log = _log(node)
    cancelled = [p for p, t in log if t == "IntegrityNotice.Cancelled"]
    sent_events = [p for p, t in log if t == "IntegrityNotice.Sent"]
    assert len(cancelled) == len(sent_events) == 1 and cancelled[0] < sent_events[0]
    head = node.head()
    assert node.run("dispatch_due_notices") == {"sent": []} and node.head() == head


def test_overdue_talks_are_recorded_after_a_command_sent_mid_sweep(node, monkeypatch):
    for i in range(ORGS):  # one promotion per organisation: a 廉政谈话 due in 30 days
        node.person("p%03d" % i, "org-%03d" % i)
        node.promote("p%03d" % i, "org-%03d" % i, "副科长", "2026-03-01")
    node.clock.set(2026, 5, 20, 2, 0)  # weeks overdue: the ladder's rungs are reached
    # whom each rung notifies is read per organisation, without the lock
    sent = interrupt(monkeypatch, application, "_escalation_target", _reminder(node, "2026-05-21"),
                     node.head,
                     at=ORGS // 2)
    out = node.run("detect_overdue")
    sent.check()
    assert len(out["talks_overdue"]) == ORGS and out["escalations"]
    log = _log(node)
    reminder = [p for p, t in log if t.startswith("DailyReminder")]
    swept = [p for p, t in log if t in ("IntegrityTalk.BecameOverdue", "IntegrityTalk.Escalated")]
    assert len(swept) == ORGS + len(out["escalations"]) > application.PUBLISH_BATCH
    assert reminder[0] < min(swept)
    head = node.head()
    again = node.run("detect_overdue")
    assert again["talks_overdue"] == again["escalations"] == [] and node.head() == head


def test_the_daily_reminder_set_while_the_routine_reads_the_library_wins(node, monkeypatch):
    node.run("add_content", {"kind": "reminder", "title": "提醒", "text": "慎独慎微"})
    sent = interrupt(monkeypatch, q, "library",
                     lambda: node.run("set_daily_reminder", {"on": "2026-03-01", "text": "廉洁从政"}),
                     node.head)
    assert node.run("publish_daily_reminder") == {"on": "2026-03-01", "published": False}
    sent.check()
    published = [t for _, t in _log(node) if t.startswith("DailyReminder")]
    assert published == ["DailyReminder.Published"]
    assert node.ask("todays_reminder", {"on": "2026-03-01"})["text"] == "廉洁从政"
