"""The service layer on a real database (SQLite and PostgreSQL), without a broker:
commands and queries through the same Application the nameko service uses, the clock
set by the test. Month and year boundaries are crossed in the users' zone."""
from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from shared.errors import BadInput, Forbidden, NotFound, RuleViolation

from services.education.application import check_in_alone, record_check_ins
from services.education.burst import CheckInBatcher
from services.education.settings import EducationSettings, parse_calendar

from tests.harness.education import ADMIN, Node, inspector, unit_admin, utc, viewer


@pytest.fixture
def node(db_url):
    n = Node(db_url, utc(2026, 1, 10, 1, 0))
    n.tree()
    yield n
    n.close()


def warning_session(node, unit, at, actor=ADMIN, **kw):
    return node.run("record_session", dict({
        "kind": "warning_education", "title": "警示教育: 违规吃喝典型案例", "organiser_unit_id": unit,
        "scheduled_at": at, "attendance": {"headcount": 25}}, **kw), actor)


# -- 警示教育月月行 -----------------------------------------------------------------------------------
def test_monthly_warning_education_across_month_and_year_in_shanghai(node):
    node.clock.set(2026, 3, 1, 1, 0)
    # 2026-01-31T17:00Z is 1 February in Shanghai: February's, not January's
    s = warning_session(node, "fin", "2026-01-31T17:00:00Z")
    assert (s["local_date"], s["period"]) == ("2026-02-01", "2026-02")
    # 2025-12-31T16:30Z is New Year's Day in Shanghai: January 2026
    assert warning_session(node, "mkt", "2025-12-31T16:30:00Z")["period"] == "2026-01"
    # 2025-12-31T15:30Z is still 31 December there
    assert warning_session(node, "edu", "2025-12-31T15:30:00Z")["period"] == "2025-12"
    # a section's session counts for its unit's party organisation
    warning_session(node, "fin-s1", "2026-01-15T02:00:00+00:00")

    jan = node.ask("warning_education_compliance", {"unit_id": "dist", "period": "2026-01"})
    assert [(u["unit_id"], u["held"]) for u in jan["units"]] == [
        ("edu", False), ("fin", True), ("mkt", True)]
    assert [m["unit_id"] for m in jan["missed"]] == ["edu"] and jan["rate"] == pytest.approx(0.6667)
    feb = node.ask("warning_education_compliance", {"unit_id": "dist", "period": "2026-02"})
    assert [m["unit_id"] for m in feb["missed"]] == ["edu", "mkt"]
    dec = node.ask("warning_education_compliance", {"unit_id": "dist", "period": "2025-12"})
    assert [m["unit_id"] for m in dec["missed"]] == ["fin", "mkt"]

    # counted in the indicators: published per unit, and the miss lands in the inbox
    out = node.run("publish_indicators", {"period": "2026-01"})
    assert out["published"] == ["edu", "fin", "mkt"] and out["district_published"]
    pub = node.ask("published_indicators", {"period": "2026-01"})
    assert {u["unit_id"]: u["warning_education_held"] for u in pub["units"]} == {
        "edu": False, "fin": True, "mkt": True}
    assert pub["district"]["figures"]["units_warning_education_held"] == 2
    items = node.ask("unit_inbox", {"unit_id": "edu"})["items"]
    assert [i["kind"] for i in items] == ["warning_education_missed"]
    # publishing again changes nothing; a late-recorded session corrects the month
    assert node.run("publish_indicators", {"period": "2026-01"})["published"] == []
    warning_session(node, "edu", "2026-01-20T02:00:00Z")
    assert node.run("publish_indicators", {"period": "2026-01"})["published"] == ["edu"]
    assert node.ask("unit_inbox", {"unit_id": "edu"})["items"] == []


def test_a_joined_session_counts_for_the_joining_unit(node):
    node.clock.set(2026, 2, 10, 1, 0)
    # the city's 上下联学 警示教育, received from its feed (the exchange calls this)
    reg = node.run("register_external_session", {
        "origin_node": "city", "record_id": "act-7", "title": "市直机关警示教育大会",
        "kind": "warning_education", "held_at": "2026-01-31T17:30:00Z",
        "tags": {"risk_points": ["收受礼品"]}})
    assert reg == {"key": "city/act-7", "changed": True}
    again = node.run("register_external_session", {
        "origin_node": "city", "record_id": "act-7", "title": "市直机关警示教育大会",
        "kind": "warning_education", "held_at": "2026-01-31T17:30:00Z",
        "tags": {"risk_points": ["收受礼品"]}})
    assert again["changed"] is False  # at-least-once delivery: a repeat records nothing
    admin_mkt = unit_admin("mkt")
    node.run("join_session", {"session_node": "city", "session_id": "act-7", "unit_id": "mkt"}, admin_mkt)
    out = node.run("record_participation", {"session_node": "city", "session_id": "act-7",
                                            "unit_id": "mkt", "headcount": 40}, admin_mkt)
    assert out["counts_for"] == "2026-02"
    feb = node.ask("warning_education_compliance", {"unit_id": "dist", "period": "2026-02"})
    assert [m["unit_id"] for m in feb["missed"]] == ["edu", "fin"]
    with pytest.raises(RuleViolation):  # once
        node.run("record_participation", {"session_node": "city", "session_id": "act-7",
                                          "unit_id": "mkt", "headcount": 40}, admin_mkt)
    with pytest.raises(NotFound) as exc:  # never received from the feed
        node.run("join_session", {"session_node": "city", "session_id": "nope", "unit_id": "fin"})
    assert "session_id" in exc.value.fields
    listed = node.ask("list_sessions", {"unit_id": "mkt", "period": "2026-02"})
    assert [j["session_key"] for j in listed["joined"]] == ["city/act-7"]


def test_local_joint_study_organised_above_and_joined_below(node):
    node.clock.set(2026, 3, 5, 1, 0)
    s = node.run("plan_session", {
        "kind": "updown_joint_study", "title": "上下联学: 党纪学习", "organiser_unit_id": "dist",
        "scheduled_at": "2026-03-06T01:00:00Z", "audience": {"unit_ids": ["fin", "mkt"], "posts": ["科长"]},
        "materials": [{"title": "党纪处分条例", "ref": "doc://2024-regs"}]})
    assert s["joinable"] is True and s["status"] == "planned"
    node.run("join_session", {"session_id": s["session_id"], "unit_id": "edu"}, unit_admin("edu"))
    with pytest.raises(RuleViolation):  # not held yet
        node.run("record_participation", {"session_id": s["session_id"], "unit_id": "edu",
                                          "headcount": 9}, unit_admin("edu"))
    node.clock.set(2026, 3, 6, 3, 0)
    held = node.run("hold_session", {"session_id": s["session_id"], "attendance": {"headcount": 120}})
    assert held["attended_unit_ids"] == ["dist", "fin", "mkt"]  # organiser + audience by default
    node.run("record_participation", {"session_id": s["session_id"], "unit_id": "edu",
                                      "headcount": 9}, unit_admin("edu"))
    with pytest.raises(RuleViolation):  # the organiser does not join its own session
        node.run("join_session", {"session_id": s["session_id"], "unit_id": "dist"})


def test_micro_lesson_and_party_day_over_the_service(node):
    node.clock.set(2026, 3, 5, 1, 0)
    with pytest.raises(BadInput) as exc:
        node.run("plan_session", {"kind": "micro_party_lesson", "title": "微党课", "organiser_unit_id": "fin",
                                  "scheduled_at": "2026-03-05T01:00:00Z"})
    assert "speaker" in exc.value.fields
    lesson = node.run("record_session", {
        "kind": "micro_party_lesson", "title": "廉政微党课: 守住底线", "organiser_unit_id": "fin",
        "scheduled_at": "2026-03-05T01:00:00Z", "speaker": {"post": "预算科科长"},
        "attendance": {"headcount": 18}, "discussion": "围绕预算审批中的风险点讨论",
        "leader_comment": "讲得实, 要落到岗位", "tags": {"risk_points": ["预算审批"]}})
    assert lesson["details"]["speaker"] == {"post": "预算科科长", "person_id": None}
    with pytest.raises(RuleViolation) as exc:
        node.run("record_session", {
            "kind": "themed_party_day", "title": "专题党日", "organiser_unit_id": "mkt",
            "scheduled_at": "2026-03-05T01:00:00Z", "attendance": {"headcount": 30},
            "activities": ["study_regulations"]})
    assert "activities" in exc.value.fields


# -- 廉洁提醒日打卡 ------------------------------------------------------------------------------------
def _members(node, n_fin=3, n_mkt=2):
    for i in range(n_fin):
        node.person("f%d" % i, "fin-s1" if i == 0 else "fin")
    for i in range(n_mkt):
        node.person("m%d" % i, "mkt-g1")


def test_streaks_and_coverage_across_month_and_year_in_shanghai(node):
    _members(node)
    # reminders for 30 Dec .. 2 Jan (set in advance)
    node.clock.set(2025, 12, 29, 1, 0)
    for day in ("2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02"):
        node.run("set_daily_reminder", {"on": day, "text": "%s: 廉洁过节, 拒收礼品" % day})
    # 2025-12-29T16:05Z is 30 Dec 00:05 in Shanghai
    node.clock.set(2025, 12, 29, 16, 5)
    assert node.run("check_in", {"person_id": "f0"}, viewer("f0"))["on"] == "2025-12-30"
    node.clock.set(2025, 12, 30, 23, 30)  # 31 Dec 07:30 in Shanghai
    assert node.run("check_in", {"person_id": "f0"}, viewer("f0"))["streak"] == 2
    node.run("check_in", {"person_id": "m0"}, viewer("m0"))
    node.clock.set(2025, 12, 31, 16, 0)   # exactly midnight: 1 January 2026 in Shanghai
    first = node.run("check_in", {"person_id": "f0"}, viewer("f0"))
    assert (first["on"], first["streak"], first["duplicate"]) == ("2026-01-01", 3, False)
    again = node.run("check_in", {"person_id": "f0"}, viewer("f0"))
    assert (again["duplicate"], again["checked_at"], again["streak"]) == (True, first["checked_at"], 3)
    node.run("check_in", {"person_id": "f1"}, unit_admin("fin"))  # a gateway account in scope
    node.clock.set(2026, 1, 2, 1, 0)
    node.run("check_in", {"person_id": "f0"}, viewer("f0"))
    node.run("check_in", {"person_id": "m0"}, viewer("m0"))  # missed 1 Jan: a new streak

    assert node.ask("member_streak", {"person_id": "f0"}) == {
        "person_id": "f0", "current": 4, "best": 4, "total": 4, "last_day": "2026-01-02"}
    assert node.ask("member_streak", {"person_id": "m0"})["current"] == 1
    assert node.ask("member_streak", {"person_id": "m0"})["best"] == 1

    daily = node.ask("checkin_daily", {"unit_id": "dist", "on": "2026-01-01"})
    assert (daily["members"], daily["checked_in"], daily["coverage"]) == (5, 2, 0.4)
    fin = next(u for u in daily["units"] if u["unit_id"] == "fin")
    assert (fin["members"], fin["checked_in"]) == (3, 2)  # the section's member counts for fin
    today = node.ask("checkin_daily", {"unit_id": "dist"})  # default: today in Shanghai
    assert (today["day"], today["checked_in"]) == ("2026-01-02", 2)

    dec = node.ask("checkin_monthly", {"unit_id": "dist", "period": "2025-12"})
    assert (dec["reminder_days"], dec["member_days"]) == (2, 3)
    assert dec["coverage"] == pytest.approx(3 / (5 * 2), abs=1e-4)
    jan = node.ask("checkin_monthly", {"unit_id": "fin", "period": "2026-01"})
    assert (jan["reminder_days"], jan["member_days"]) == (2, 3)
    assert [d["checked_in"] for d in jan["days"]] == [2, 1]
    assert node.ask("unit_indicators", {"unit_id": "mkt", "period": "2026-01"})["checkin_coverage"] == 0.25


def test_checkin_refusals_write_nothing(node):
    _members(node)
    node.run("set_daily_reminder", {"on": "2026-01-10", "text": "严守纪律"})
    head = node.head()
    with pytest.raises(BadInput) as exc:
        node.run("check_in", {"person_id": ""}, viewer("f0"))
    assert "person_id" in exc.value.fields
    with pytest.raises(BadInput) as exc:
        node.run("check_in", {"person_id": "f0", "day": "2026-01-09"}, viewer("f0"))
    assert "day" in exc.value.fields  # unknown fields are refused, not ignored
    with pytest.raises(Forbidden):
        node.run("check_in", {"person_id": "f1"}, viewer("f0"))      # not for someone else
    with pytest.raises(Forbidden):
        node.run("check_in", {"person_id": "m0"}, unit_admin("fin"))  # outside the gateway's scope
    with pytest.raises(NotFound):
        node.run("check_in", {"person_id": "ghost"}, viewer("ghost"))
    node.clock.set(2026, 1, 11, 1, 0)
    with pytest.raises(RuleViolation):  # no reminder published for 11 January
        node.run("check_in", {"person_id": "f0"}, viewer("f0"))
    assert node.head() == head


def test_reminder_rules_and_the_daily_routine(node):
    node.run("add_content", {"item_id": "r1", "kind": "reminder", "title": "提醒1", "text": "清白做人, 干净做事"})
    node.run("add_content", {"item_id": "r2", "kind": "reminder", "title": "提醒2", "text": "慎独慎微"})
    assert node.run("publish_daily_reminder")["item_id"] == "r1"
    assert node.run("publish_daily_reminder")["published"] is False  # once a day
    node.clock.set(2026, 1, 11, 1, 0)
    assert node.run("publish_daily_reminder")["item_id"] == "r2"  # the one used longest ago
    node.clock.set(2026, 1, 12, 1, 0)
    assert node.run("publish_daily_reminder")["item_id"] == "r1"
    with pytest.raises(RuleViolation):
        node.run("set_daily_reminder", {"on": "2026-01-11", "text": "改昨天的"})
    node.person("p", "fin")
    node.run("check_in", {"person_id": "p"}, viewer("p"))
    with pytest.raises(RuleViolation):  # reworded after someone acknowledged it
        node.run("set_daily_reminder", {"on": "2026-01-12", "text": "改了"})
    with pytest.raises(BadInput) as exc:
        node.run("set_daily_reminder", {"on": "2026-01-13", "text": "两行\n提醒"})
    assert "text" in exc.value.fields


def test_group_commit_decides_each_item_alone(node):
    """The batcher's record function: a batch of mixed requests, each with its own answer."""
    _members(node)
    node.run("set_daily_reminder", {"on": "2026-01-10", "text": "严守纪律"})
    node.run("check_in", {"person_id": "f2"}, viewer("f2"))

    class It:
        def __init__(self, pid, actor):
            self.data, self.actor, self.correlation_id = {"person_id": pid}, actor, None

    items = [It("f0", viewer("f0")), It("f1", viewer("x")), It("ghost", viewer("ghost")),
             It("f2", viewer("f2")), It("m0", unit_admin("mkt")), It("f0", viewer("f0"))]
    with node.rt.unit_of_work(None) as uow:
        out = record_check_ins(uow, items)
    assert out[0]["duplicate"] is False and out[4]["duplicate"] is False
    assert isinstance(out[1], Forbidden) and isinstance(out[2], NotFound)
    assert out[3]["duplicate"] is True and out[5] == dict(out[0], duplicate=True)
    daily = node.ask("checkin_daily", {"unit_id": "dist"})
    assert daily["checked_in"] == 3
    history = node.ask("history", {"stream": "ReminderCheckIn", "id": "2026-01-10/m0"})
    assert history["events"][0]["payload"]["by"] == "ua-mkt"


def test_batcher_answers_concurrent_requests(node):
    """Green threads submitting at once: batched, each answered, all counted once."""
    people = ["c%02d" % i for i in range(30)]
    for pid in people:
        node.person(pid, "edu")
    node.run("set_daily_reminder", {"on": "2026-01-10", "text": "严守纪律"})
    rt = node.rt
    batcher = CheckInBatcher(rt, record_check_ins, lambda item: check_in_alone(rt, item))
    stop = []
    runner = threading.Thread(target=batcher.run, args=(lambda: bool(stop),))
    results = {}

    def member(pid, repeat):
        try:
            results[(pid, repeat)] = batcher.submit({"person_id": pid}, viewer(pid))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results[(pid, repeat)] = exc

    threads = [threading.Thread(target=member, args=(pid, r)) for pid in people for r in (0, 1)]
    threads.append(threading.Thread(target=member, args=("c00", "other")))
    for t in threads:
        t.start()
    while batcher.queue.qsize() < len(threads):  # everyone waiting: one morning rush
        time.sleep(0.01)
    runner.start()
    for t in threads:
        t.join()
    stop.append(True)
    runner.join()
    assert all(isinstance(v, dict) for v in results.values()), results
    for pid in people:
        pair = [results[(pid, 0)], results[(pid, 1)]]
        assert sorted(r["duplicate"] for r in pair) == [False, True]
    assert node.ask("checkin_daily", {"unit_id": "edu"})["checked_in"] == 30
    assert (batcher.batches, batcher.largest) == (1, 61)
    # the bulk write equals what a replay of the log through the handlers builds
    live = node.ask("checkin_monthly", {"unit_id": "dist", "period": "2026-01"})
    replayed = node.ask("indicators_as_of", {"unit_id": "dist", "period": "2026-01", "position": node.head()})
    assert replayed["checkins"] == live and live["member_days"] == 30
    assert node.ask("member_streak", {"person_id": "c07"})["current"] == 1


# -- 廉洁通知 -----------------------------------------------------------------------------------------
def test_calendar_notices_scheduled_sent_and_acknowledged(db_url):
    cal = parse_calendar([{"key": "new_year", "name": "元旦", "on": "01-01", "lead_days": 3},
                          {"key": "two_sessions", "name": "全国两会", "on": "2026-03-05", "lead_days": 2}])
    node = Node(db_url, utc(2025, 12, 10, 1, 0), EducationSettings(notice_calendar=cal, notice_horizon_days=30))
    try:
        node.tree()
        out = node.run("schedule_calendar_notices")
        assert out["scheduled"] == ["new_year-2026-01-01"]
        assert node.run("schedule_calendar_notices")["scheduled"] == []  # idempotent
        assert node.run("dispatch_due_notices")["sent"] == []             # not due before 29 Dec
        node.clock.set(2025, 12, 28, 16, 0)                               # 29 Dec 00:00 in Shanghai
        sent = node.run("dispatch_due_notices")
        assert sent == {"sent": ["new_year-2026-01-01"], "recipients": 3}
        node.run("acknowledge_notice", {"notice_id": "new_year-2026-01-01", "unit_id": "fin"},
                 unit_admin("fin"))
        dup = node.run("acknowledge_notice", {"notice_id": "new_year-2026-01-01", "unit_id": "fin"},
                       unit_admin("fin"))
        assert dup["duplicate"] is True
        receipts = node.ask("notice_receipts", {"notice_id": "new_year-2026-01-01"})
        assert [r["unit_id"] for r in receipts["acknowledged"]] == ["fin"]
        assert [r["unit_id"] for r in receipts["not_acknowledged"]] == ["edu", "mkt"]
        assert [i["kind"] for i in node.ask("unit_inbox", {"unit_id": "mkt"})["items"]] == ["notice"]
        assert node.ask("unit_inbox", {"unit_id": "fin"})["items"] == []
        with pytest.raises(Forbidden):
            node.run("acknowledge_notice", {"notice_id": "new_year-2026-01-01", "unit_id": "mkt"},
                     unit_admin("fin"))
        with pytest.raises(RuleViolation):  # a section is not a recipient
            node.run("acknowledge_notice", {"notice_id": "new_year-2026-01-01", "unit_id": "fin-s1"})
        # the node was down over the send date of 两会 (3 March): it goes out late, not never
        node.clock.set(2026, 3, 3, 23, 0)  # 4 March in Shanghai
        assert node.run("schedule_calendar_notices")["scheduled"] == ["two_sessions-2026-03-05"]
        assert node.run("dispatch_due_notices")["sent"] == ["two_sessions-2026-03-05"]
        notices = node.ask("list_notices", {"status": "sent"})["notices"]
        assert [n["send_on"] for n in notices] == ["2025-12-29", "2026-03-04"]
    finally:
        node.close()


# -- 廉政谈话 ------------------------------------------------------------------------------------------
def test_promotion_talk_overdue_escalation_and_rate(db_url):
    ladder = [{"overdue_days": 1, "notify": "unit", "label": "逾期提醒"},
              {"overdue_days": 5, "notify": "parent", "label": "上级督办"},
              {"overdue_days": 10, "notify": "district", "label": "通报"}]
    settings = EducationSettings.from_config({"EDUCATION_TALK_DUE_DAYS": "20",
                                              "EDUCATION_TALK_LADDER": ladder})
    node = Node(db_url, utc(2026, 1, 5, 1, 0), settings)
    try:
        node.tree()
        node.person("p1", "fin-s1", "科员")
        node.person("p2", "mkt", "科员")
        assert node.promote("p1", "fin-s1", "预算科副科长", "2026-01-10")["talk_id"] == "p1/2026-01-10"
        node.promote("p2", "mkt", "副局长", "2026-01-12")
        talks = node.ask("list_talks", {"unit_id": "dist"})["talks"]
        assert [(t["talk_id"], t["due_on"]) for t in talks] == [
            ("p1/2026-01-10", "2026-01-30"), ("p2/2026-01-12", "2026-02-01")]
        # the member mirror follows the promotion (post and unit)
        assert node.ask("offer_for_unit", {"unit_id": "fin"})["profile"]["posts"] == ["预算科副科长"]

        node.clock.set(2026, 1, 28, 1, 0)
        node.run("record_talk_held", {"talk_id": "p2/2026-01-12", "held_on": "2026-01-28",
                                      "conducted_by": "局党组书记"}, inspector())
        node.clock.set(2026, 2, 4, 1, 0)  # p1: 5 days late
        out = node.run("detect_overdue")
        assert out["talks_overdue"] == ["p1/2026-01-10"]
        assert [(e["step"], e["notify_unit_id"]) for e in out["escalations"]] == [(1, "fin-s1"), (2, "fin")]
        assert node.run("detect_overdue")["escalations"] == []  # each rung once
        fin_items = node.ask("unit_inbox", {"unit_id": "fin"})["items"]
        assert [i["kind"] for i in fin_items] == ["talk_escalated"]
        own = node.ask("unit_inbox", {"unit_id": "fin-s1"})["items"]
        assert [i["kind"] for i in own] == ["talk_overdue"] and "上级督办" not in own[0]["title"]
        node.clock.set(2026, 2, 9, 1, 0)
        out = node.run("detect_overdue")
        assert [(e["step"], e["notify_unit_id"]) for e in out["escalations"]] == [(3, "dist")]
        assert node.ask("list_talks", {"unit_id": "fin", "status": "overdue"})["talks"][0]["escalation_step"] == 3

        node.run("record_talk_held", {"talk_id": "p1/2026-01-10", "held_on": "2026-02-09",
                                      "conducted_by": "党组织书记"}, unit_admin("fin"))
        open_talk_items = [i for i in node.ask("my_inbox")["items"] if i["kind"].startswith("talk")]
        assert open_talk_items == []  # the held talk closed its item and all three escalations
        closed = node.ask("unit_inbox", {"unit_id": "dist", "include_closed": True})["items"]
        assert [(i["kind"], i["status"]) for i in closed] == [("talk_escalated", "closed")]
        jan = node.ask("unit_indicators", {"unit_id": "fin", "period": "2026-01"})
        assert (jan["talks_on_time_rate"], jan["details"]["talks_due"]) == (0.0, 1)
        feb = node.ask("unit_indicators", {"unit_id": "mkt", "period": "2026-02"})
        assert feb["talks_on_time_rate"] == 1.0
        assert node.ask("unit_indicators", {"unit_id": "edu", "period": "2026-02"})["talks_on_time_rate"] is None
        with pytest.raises(Forbidden):  # people's talks: not for a viewer
            node.ask("list_talks", {"unit_id": "fin"}, viewer("v"))
    finally:
        node.close()


def test_young_cadres_enrolled_credited_by_roster_and_overdue(node):
    node.person("y1", "fin", "科员", young_cadre=True)
    node.person("y2", "mkt", "科员", young_cadre=True)
    node.person("o1", "fin", "科长")
    listed = node.ask("young_cadre_programme", {"unit_id": "dist"})["young_cadres"]
    assert [(y["person_id"], y["next_due_on"]) for y in listed] == [("y1", "2026-04-10"), ("y2", "2026-04-10")]
    node.clock.set(2026, 2, 1, 2, 0)
    node.run("record_session", {"kind": "warning_education", "title": "年轻干部警示教育",
                                "organiser_unit_id": "fin", "scheduled_at": "2026-02-01T01:00:00Z",
                                "attendance": {"roster": ["y1", "o1"]}})
    y1 = next(y for y in node.ask("young_cadre_programme", {"unit_id": "fin"})["young_cadres"])
    assert (y1["last_on"], y1["next_due_on"]) == ("2026-02-01", "2026-05-02")
    node.clock.set(2026, 4, 11, 2, 0)
    assert node.run("detect_overdue")["young_cadres_overdue"] == ["y2"]
    assert [i["kind"] for i in node.ask("unit_inbox", {"unit_id": "mkt"})["items"]] == ["young_cadre_overdue"]
    node.run("record_young_cadre_education", {"person_id": "y2", "on": "2026-04-11", "topic": "纪律教育"},
             unit_admin("mkt"))
    assert node.ask("unit_inbox", {"unit_id": "mkt"})["items"] == []
    with pytest.raises(NotFound) as exc:
        node.run("record_session", {"kind": "warning_education", "title": "x", "organiser_unit_id": "fin",
                                    "scheduled_at": "2026-04-11T01:00:00Z", "attendance": {"roster": ["nobody"]}})
    assert "attendance.roster" in exc.value.fields


# -- library, 周更新, tailoring ---------------------------------------------------------------------------
def test_weekly_rotation_and_tailoring(node):
    lib = [("s-gen", "slogan", {}), ("s-gift", "slogan", {"risk_points": ["收受礼品"]}),
           ("s-bid", "slogan", {"risk_points": ["工程招投标"]}),
           ("i-win", "image", {"posts": ["窗口受理"]}), ("t-case", "short_text", {"business_types": ["市场监管"]})]
    for item_id, kind, tags in lib:
        node.run("add_content", {"item_id": item_id, "kind": kind, "title": item_id, "tags": tags,
                                 **({"ref": "img://%s.png" % item_id} if kind == "image" else {"text": "廉"})})
    node.run("set_unit_profile", {"unit_id": "mkt", "business_types": ["市场监管"], "posts": ["窗口受理"]},
             unit_admin("mkt"))
    # risk points come from supervision's register (its events), not from the profile
    node.risk_point("rp-mkt-1", "mkt-g1", "收受礼品")
    node.risk_point("rp-fin-1", "fin", "工程招投标")
    # 2026-01-10 is in ISO week 2026-W02
    out = node.run("rotate_publicity_all")
    assert out["week"] == "2026-W02" and out["rotated"] == ["edu", "fin", "mkt"]
    hist = node.ask("publicity_history", {"unit_id": "mkt"})["weeks"]
    assert hist[0]["item_ids"] == ["s-gift", "i-win", "t-case"]
    assert node.run("rotate_publicity_all")["rotated"] == []  # once a week
    node.clock.set(2026, 1, 12, 1, 0)  # Monday: 2026-W03 - the slogan shown longest ago fits next
    node.run("rotate_publicity_all")
    hist = node.ask("publicity_history", {"unit_id": "mkt"})["weeks"]
    assert [h["week"] for h in hist] == ["2026-W03", "2026-W02"] and hist[0]["item_ids"][0] == "s-gen"
    # a manual choice replaces the week's items and is kept as a new revision
    node.run("rotate_publicity", {"unit_id": "mkt", "item_ids": ["s-gift"]}, unit_admin("mkt"))
    assert node.ask("publicity_history", {"unit_id": "mkt"})["weeks"][0]["revision"] == 2
    with pytest.raises(RuleViolation):
        node.run("rotate_publicity", {"unit_id": "mkt", "item_ids": ["nope"]})
    items = node.ask("unit_inbox", {"unit_id": "mkt", "include_closed": True})["items"]
    assert {(i["item_id"], i["status"]) for i in items} == {
        ("publicity:mkt:2026-W02", "closed"), ("publicity:mkt:2026-W03", "open")}

    offer = node.ask("offer_for_unit", {"unit_id": "mkt"})
    assert [c["item_id"] for c in offer["content"]][:2] == ["s-gift", "i-win"]
    assert "s-bid" not in [c["item_id"] for c in offer["content"]]
    node.run("register_external_case", {"origin_node": "city", "record_id": "c1", "title": "某所长收受礼品案",
                                        "tags": {"risk_points": ["收受礼品"]}})
    node.run("register_external_case", {"origin_node": "city", "record_id": "c2", "title": "招投标串标案",
                                        "tags": {"risk_points": ["工程招投标"]}})
    assert [c["key"] for c in node.ask("offer_for_unit", {"unit_id": "mkt"})["cases"]] == ["city/c1"]

    node.run("record_session", {"kind": "warning_education", "title": "以案促改: 收受礼品",
                                "organiser_unit_id": "mkt", "scheduled_at": "2026-01-12T01:00:00Z",
                                "attendance": {"headcount": 20}, "tags": {"risk_points": ["收受礼品"]},
                                "case_refs": ["city/c1"],
                                "case_analysis": [{"case_ref": "city/c1", "lessons": "窗口岗位不收任何礼品"}]})
    cov = node.ask("risk_point_coverage", {"unit_id": "dist", "period": "2026-01"})
    by_point = {r["risk_point"]: r for r in cov["risk_points"]}
    assert by_point["收受礼品"]["coverage"] == 1.0 and by_point["工程招投标"]["gaps"] == ["fin"]
    assert by_point["工程招投标"]["library_items"] == 1
    assert cov["units_without_risk_points"] == ["edu"]
    by_tag = node.ask("list_content", {"risk_point": "收受礼品"})["items"]
    assert [i["item_id"] for i in by_tag] == ["s-gift"]


# -- bad input, roles, scope: clear errors and nothing written ------------------------------------------
BAD = [
    ("plan_session", {"kind": "lecture", "title": "x", "organiser_unit_id": "fin",
                      "scheduled_at": "2026-01-10T01:00:00Z"}, "kind"),
    ("plan_session", {"kind": "warning_education", "title": "x", "organiser_unit_id": "fin",
                      "scheduled_at": "2026-01-10T09:00:00"}, "scheduled_at"),  # no zone: refused
    ("record_session", {"kind": "warning_education", "title": "x", "organiser_unit_id": "fin",
                        "scheduled_at": "2026-01-10T01:00:00Z", "attendance": {"headcount": 3, "roster": ["a"]}},
     "attendance"),
    ("set_daily_reminder", {"on": "2026-02-30", "text": "x"}, "on"),
    ("add_content", {"kind": "poster", "title": "x"}, "kind"),
    ("publish_indicators", {"period": "2026-13"}, "period"),
    ("rotate_publicity", {"unit_id": "fin", "week": "2026-W60"}, "week"),
    ("schedule_notice", {"title": "x", "body": "y"}, "send_on"),
    ("record_talk_held", {"talk_id": "p1", "held_on": "2026-01-10", "conducted_by": "x"}, "talk_id"),
]


@pytest.mark.parametrize("command, data, field", BAD, ids=[b[0] + ":" + b[2] for b in BAD])
def test_bad_input_is_400_with_field_messages_and_writes_nothing(node, command, data, field):
    head = node.head()
    with pytest.raises(BadInput) as exc:
        node.run(command, data)
    assert field in exc.value.fields and exc.value.status == 400
    assert node.head() == head


def test_roles_and_scope(node):
    head = node.head()
    plan = {"kind": "warning_education", "title": "x", "organiser_unit_id": "mkt",
            "scheduled_at": "2026-01-10T01:00:00Z"}
    for actor, command, data in [
        (unit_admin("fin"), "plan_session", plan),                       # another unit's session
        (viewer("v"), "plan_session", dict(plan, organiser_unit_id="fin")),
        (inspector(), "add_content", {"kind": "slogan", "title": "x", "text": "y"}),
        (unit_admin("fin"), "add_content", {"kind": "slogan", "title": "x", "text": "y"}),
        (unit_admin("fin"), "publish_indicators", {"period": "2026-01"}),
        (unit_admin("fin"), "register_external_case", {"origin_node": "city", "record_id": "c", "title": "t"}),
        (unit_admin("fin"), "set_unit_profile", {"unit_id": "mkt", "posts": ["x"]}),
    ]:
        with pytest.raises(Forbidden):
            node.run(command, data, actor)
    with pytest.raises(Forbidden):
        node.ask("warning_education_compliance", {"unit_id": "mkt", "period": "2026-01"}, unit_admin("fin"))
    assert node.head() == head
    # inside its scope a unit-admin may: fin-s1 is below fin
    node.run("plan_session", dict(plan, organiser_unit_id="fin-s1"), unit_admin("fin"))
    assert node.head() > head


def test_inbox_reads_per_user(node):
    node.person("p1", "fin")
    node.promote("p1", "fin", "副局长", "2026-01-10")
    fin_admin = unit_admin("fin", "zhang")
    mine = node.ask("my_inbox", {}, fin_admin)
    assert mine["unread"] == 1 and mine["items"][0]["kind"] == "talk_due"
    item_id = mine["items"][0]["item_id"]
    node.run("mark_inbox_read", {"item_ids": [item_id]}, fin_admin)
    assert node.ask("my_inbox", {}, fin_admin)["unread"] == 0
    assert node.ask("my_inbox", {}, ADMIN)["unread"] == 1   # read marks are per user
    assert node.ask("my_inbox", {}, unit_admin("mkt"))["items"] == []  # scoped
    with pytest.raises(Forbidden):
        node.run("mark_inbox_read", {"item_ids": [item_id]}, unit_admin("mkt"))
    with pytest.raises(NotFound):
        node.run("mark_inbox_read", {"item_ids": ["nope"]}, fin_admin)


# -- as of ------------------------------------------------------------------------------------------------
def test_as_of_replay_equals_what_was_seen_then(node):
    _members(node)
    node.clock.set(2026, 2, 3, 1, 0)
    node.run("set_daily_reminder", {"on": "2026-02-03", "text": "守纪律"})
    node.run("check_in", {"person_id": "f0"}, viewer("f0"))
    warning_session(node, "fin", "2026-02-02T01:00:00Z")
    node.promote("f1", "fin", "科长", "2026-01-05")
    captured = {
        "compliance": node.ask("warning_education_compliance", {"unit_id": "dist", "period": "2026-02"}),
        "checkins": node.ask("checkin_monthly", {"unit_id": "dist", "period": "2026-02"}),
        "indicators": node.ask("unit_indicators", {"unit_id": "dist", "period": "2026-02"}),
    }
    position = node.head()
    instant = datetime.fromisoformat("2026-02-03T01:00:00+00:00")
    # later: more sessions, check-ins, a held talk, a new unit
    node.clock.set(2026, 2, 4, 1, 0)
    node.run("set_daily_reminder", {"on": "2026-02-04", "text": "守规矩"})
    for pid in ("f0", "f1", "m0"):
        node.run("check_in", {"person_id": pid}, viewer(pid))
    warning_session(node, "mkt", "2026-02-04T01:00:00Z")
    node.run("record_talk_held", {"talk_id": "f1/2026-01-05", "held_on": "2026-02-04", "conducted_by": "书记"})
    node.unit("new", "dist")
    now = node.ask("warning_education_compliance", {"unit_id": "dist", "period": "2026-02"})
    assert now != captured["compliance"]

    for ref in ({"position": position}, {"at": instant.isoformat()}):
        then = node.ask("indicators_as_of", {"unit_id": "dist", "period": "2026-02", **ref})
        assert then["compliance"] == captured["compliance"]
        assert then["checkins"] == captured["checkins"]
        assert then["indicators"] == captured["indicators"]
    with pytest.raises(BadInput):
        node.ask("indicators_as_of", {"unit_id": "dist", "period": "2026-02"})


def test_group_commit_after_another_process_moved_the_log(pg_url):
    """A small batch is appended write-behind on this process's cached tail; when another
    process (a second education node process, the timer) has appended meanwhile the
    guess is wrong and the append is sent the ordinary way. Each check-in must still
    reach the read model once: no duplicate-key error, counted once, answered clearly."""
    node = Node(pg_url, utc(2026, 1, 10, 1, 0))
    other = Node(pg_url, node.clock.now)  # the other process: its own runtime, same database
    try:
        node.tree()
        for pid in ("w0", "w1", "w2"):
            node.person(pid, "edu")
        node.run("set_daily_reminder", {"on": "2026-01-10", "text": "严守纪律"})
        node.run("check_in", {"person_id": "w0"}, viewer("w0"))  # this process caches the tail
        other.person("w3", "edu")  # ... which the other process moves on

        class It:
            def __init__(self, pid):
                self.data, self.actor, self.correlation_id = {"person_id": pid}, viewer(pid), None

        with node.rt.unit_of_work(None) as uow:
            out = record_check_ins(uow, [It("w1"), It("w2"), It("w0")])
        assert [o["duplicate"] for o in out] == [False, False, True]
        assert node.ask("checkin_daily", {"unit_id": "edu"})["checked_in"] == 3
        again = node.run("check_in", {"person_id": "w1"}, viewer("w1"))
        assert again["duplicate"] is True
    finally:
        other.close()
        node.close()
