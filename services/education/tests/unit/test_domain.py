"""Pure domain: calendar arithmetic in the users' zone, streaks, session rules, the
talk ladder, member merging, rotation choice, settings and the event contracts."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from shared.aggregate import EVENT_TYPES
from shared.errors import Forbidden, NotFound, RuleViolation

from services.education.dates import (
    iso_week, local_date, month_bounds, period_of, previous_period, week_start,
)
from services.education.domain import (
    EducationIndicators, ExternalSession, IntegrityNotice, IntegrityTalk, MemberMirror,
    PublicityRotation, ReminderCheckIn, StudySession, UnitProfile, YoungCadreProgramme,
    choose_rotation, fit_score, coverage_days, fits, live_streak, longest_run, next_streak,
    require_check_in_for_other,
)
from services.education.settings import (
    CalendarEntry, EducationSettings, SettingsError, parse_calendar, parse_ladder,
)

SH = "Asia/Shanghai"
CONTRACTS = Path(__file__).resolve().parents[4] / "contracts" / "events"


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


# -- days and months as the users count them ---------------------------------------------------
@pytest.mark.parametrize("instant, day", [
    (utc(2026, 1, 31, 15, 59), date(2026, 1, 31)),   # 23:59 in Shanghai
    (utc(2026, 1, 31, 16, 0), date(2026, 2, 1)),     # midnight in Shanghai: February
    (utc(2026, 1, 31, 17, 0), date(2026, 2, 1)),     # the issue's example
    (utc(2025, 12, 31, 16, 30), date(2026, 1, 1)),   # a new year in Shanghai, not yet in UTC
    (utc(2025, 12, 31, 15, 30), date(2025, 12, 31)),
])
def test_local_date_in_shanghai(instant, day):
    assert local_date(instant, SH) == day


def test_local_date_depends_on_the_zone():
    instant = utc(2026, 1, 31, 17, 0)
    assert period_of(local_date(instant, SH)) == "2026-02"
    assert period_of(local_date(instant, "UTC")) == "2026-01"
    with pytest.raises(ValueError):
        local_date(datetime(2026, 1, 31, 17, 0), SH)  # naive: refuse to guess


def test_months_and_weeks():
    assert month_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert month_bounds("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    assert previous_period("2026-01") == "2025-12"
    assert previous_period("2026-03") == "2026-02"
    # ISO weeks cross the year boundary: 2027-01-01 is a Friday of 2026's week 53
    assert iso_week("2027-01-01") == "2026-W53"
    assert iso_week("2026-01-01") == "2026-W01"
    assert iso_week("2025-12-29") == "2026-W01"
    assert week_start("2026-W01") == date(2025, 12, 29)


# -- streaks ----------------------------------------------------------------------------------------
def test_streak_continues_across_month_and_year_ends():
    assert next_streak(None, 0, "2026-01-01") == 1
    assert next_streak("2025-12-31", 5, "2026-01-01") == 6     # year boundary
    assert next_streak("2026-01-31", 6, "2026-02-01") == 7     # month boundary
    assert next_streak("2026-02-28", 3, "2026-03-01") == 4     # February's end
    assert next_streak("2026-02-27", 3, "2026-03-01") == 1     # a missed day breaks it
    assert next_streak("2026-03-01", 4, "2026-03-01") == 4     # same day: unchanged
    assert next_streak("2026-03-02", 4, "2026-03-01") == 4     # an earlier day: unchanged


def test_a_check_in_is_decided_from_the_members_facts():
    from types import SimpleNamespace as Member
    at = "2026-02-01T00:30:00Z"
    fresh = Member(unit_id="fin", reminder_day="2026-02-01", checked_at=None,
                   last_day="2026-01-31", current=6)
    outcome, checkin = ReminderCheckIn.decide("p1", "2026-02-01", at, "p1", fresh)
    assert outcome == {"person_id": "p1", "on": "2026-02-01", "checked_at": at,
                       "duplicate": False, "streak": 7}
    [event] = checkin.collect_events()
    assert (checkin.id, event.unit_id, event.streak, event.by) == ("2026-02-01/p1", "fin", 7, "p1")
    # the same member again in the same batch: the first one's time and streak, nothing new
    assert ReminderCheckIn.decide("p1", "2026-02-01", "2026-02-01T00:31:00Z", "p1", fresh,
                                  (at, 7)) == (dict(outcome, duplicate=True), None)
    # already checked in today (recorded earlier): the live streak, nothing new
    done = Member(unit_id="fin", reminder_day="2026-02-01", checked_at=at,
                  last_day="2026-02-01", current=7)
    assert ReminderCheckIn.decide("p1", "2026-02-01", "2026-02-01T09:00:00Z", "p1", done) == (
        dict(outcome, duplicate=True), None)
    with pytest.raises(NotFound):
        ReminderCheckIn.decide("nobody", "2026-02-01", at, "nobody", None)
    with pytest.raises(RuleViolation, match="没有发布廉洁提醒"):
        ReminderCheckIn.decide("p1", "2026-02-02", at, "p1", Member(
            unit_id="fin", reminder_day=None, checked_at=None, last_day="2026-02-01", current=7))
    with pytest.raises(Forbidden, match="本人打卡"):
        require_check_in_for_other(False)
    require_check_in_for_other(True)


def test_coverage_counts_the_days_that_have_come():
    assert coverage_days("2026-02", date(2026, 2, 1)) == (date(2026, 2, 1), date(2026, 2, 1))
    assert coverage_days("2026-02", date(2026, 3, 5)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert coverage_days("2026-03", date(2026, 2, 28)) is None  # set in advance, month ahead


def test_live_streak_and_longest_run():
    assert live_streak("2026-01-31", 9, date(2026, 2, 1)) == 9   # yesterday: still alive
    assert live_streak("2026-01-30", 9, date(2026, 2, 1)) == 0
    assert live_streak(None, 0, date(2026, 2, 1)) == 0
    assert longest_run(["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-03", "2026-01-04"]) == 3
    assert longest_run([]) == 0


# -- sessions ---------------------------------------------------------------------------------------
def _plan(kind="warning_education", **kw):
    args = dict(session_id="s1", kind=kind, title="t", organiser_unit_id="fin",
                scheduled_at="2026-01-31T17:00:00+00:00", local_date="2026-02-01",
                audience={"unit_ids": [], "roles": [], "posts": []}, tags={}, materials=[],
                joinable=False)
    args.update(kw)
    return StudySession.plan(**args)


def test_micro_party_lesson_needs_speaker_discussion_and_comment():
    with pytest.raises(RuleViolation) as exc:
        _plan("micro_party_lesson")
    assert "speaker" in exc.value.fields
    s = _plan("micro_party_lesson", speaker={"post": "局长", "person_id": None})
    with pytest.raises(RuleViolation) as exc:
        s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), 12, [], discussion="议")
    assert set(exc.value.fields) == {"leader_comment"}
    s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), 12, [],
           discussion="议", leader_comment="评")
    assert s.status == "held"


def test_themed_party_day_covers_all_four():
    s = _plan("themed_party_day")
    with pytest.raises(RuleViolation) as exc:
        s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), 30, [],
               activities=["study_regulations", "watch_warning_film", "integrity_lesson"])
    assert "共话清廉感悟" in exc.value.fields["activities"][0]
    s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), 30, [],
           activities=["study_regulations", "watch_warning_film", "integrity_lesson", "share_reflections"])
    assert s.pending_events[-1].activities == sorted(
        ["study_regulations", "watch_warning_film", "integrity_lesson", "share_reflections"])


def test_session_lifecycle_rules():
    s = _plan()
    with pytest.raises(RuleViolation):  # not on the day before it happens
        s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 1, 31), 10, [])
    s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), 10, ["mkt", "fin", "mkt"])
    assert s.attended_unit_ids == ["fin", "mkt"]  # organiser first, no duplicates
    with pytest.raises(RuleViolation):
        s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), 10, [])
    with pytest.raises(RuleViolation):
        s.cancel("too late")
    s.record_roster(["p2", "p1", "p2"])
    assert s.pending_events[-1].person_ids == ["p1", "p2"]
    assert type(s.pending_events[-1]).private is True


def test_external_session_repeat_is_not_an_update():
    fields = dict(origin_node="city", record_id="r1", title="市级联学", kind="updown_joint_study",
                  held_at="2026-03-01T02:00:00+00:00", local_date="2026-03-01", period="2026-03",
                  organiser=None, tags={"business_types": [], "posts": [], "risk_points": []})
    s = ExternalSession.register("city/r1", **fields)
    s.collect_events()
    assert s.update(**fields) is False
    assert s.update(**dict(fields, title="市级联学(更正)")) is True
    assert s.pending_events[0].event_type == "ExternalSession.Updated"


# -- talks and young cadres ----------------------------------------------------------------------------
def test_talk_due_and_the_escalation_ladder():
    ladder = parse_ladder([{"overdue_days": 1, "notify": "unit"},
                           {"overdue_days": 8, "notify": "parent"},
                           {"overdue_days": 15, "notify": "district"}])
    t = IntegrityTalk.schedule("p1", "mkt", "副局长", "2026-01-20", 30)
    assert t.due_on == "2026-02-19" and t.id == "p1/2026-01-20"
    assert t.detect_overdue(date(2026, 2, 19), ladder) == []          # due today: not late
    steps = t.detect_overdue(date(2026, 2, 28), ladder)               # 9 days late
    assert [s.step for s in steps] == [1, 2] and t.overdue
    for s in steps:
        t.escalate(s, "x", date(2026, 2, 28))
    assert t.detect_overdue(date(2026, 3, 1), ladder) == []           # nothing new yet
    assert [s.step for s in t.detect_overdue(date(2026, 3, 6), ladder)] == [3]
    overdue_events = [e for e in t.pending_events if e.event_type == "IntegrityTalk.BecameOverdue"]
    assert len(overdue_events) == 1
    t.hold("2026-03-06", "党组书记", None, date(2026, 3, 6))
    held = t.pending_events[-1]
    assert held.on_time is False and held.days_late == 15
    with pytest.raises(RuleViolation):
        t.hold("2026-03-06", "党组书记", None, date(2026, 3, 6))


def test_talk_held_rules():
    t = IntegrityTalk.schedule("p1", "mkt", "副局长", "2026-01-20", 30)
    with pytest.raises(RuleViolation):
        t.hold("2026-01-19", "书记", None, date(2026, 2, 1))  # before the promotion
    with pytest.raises(RuleViolation):
        t.hold("2026-02-02", "书记", None, date(2026, 2, 1))  # in the future
    t.hold("2026-02-19", "书记", None, date(2026, 2, 19))
    assert t.pending_events[-1].on_time is True


def test_young_cadre_cadence():
    y = YoungCadreProgramme.enrol("p9", "fin", date(2026, 1, 1), 90)
    assert y.next_due_on == "2026-04-01"
    assert y.detect_overdue(date(2026, 4, 1)) is False
    assert y.detect_overdue(date(2026, 4, 2)) is True
    assert y.detect_overdue(date(2026, 4, 3)) is False  # once
    y.record(date(2026, 4, 10), "警示教育", None, 90, date(2026, 4, 10))
    assert y.next_due_on == "2026-07-09" and not y.overdue
    y.record(date(2026, 3, 1), "补录", None, 90, date(2026, 4, 10))  # entered late: no regress
    assert y.next_due_on == "2026-07-09"


def test_member_mirror_merges_in_either_order():
    reg = {"person_id": "p1", "name": "x", "unit_id": "fin", "post": "科员", "young_cadre": True}
    promo = {"person_id": "p1", "unit_id": "mkt", "previous_post": "科员", "new_post": "副科长",
             "effective_on": "2026-01-20"}
    a = MemberMirror.blank("p1")
    a.merge("Registered", 1, reg)
    a.merge("Promoted", 3, promo)
    b = MemberMirror.blank("p1")
    b.merge("Promoted", 3, promo)
    b.merge("Registered", 1, reg)
    for m in (a, b):
        assert (m.unit_id, m.post, m.young_cadre, m.registered) == ("mkt", "副科长", True, True)
    assert b.merge("Registered", 1, reg) is False  # a redelivery changes nothing
    assert "name" not in b.pending_events[-1].data()  # names stay in the units service


# -- tailoring and rotation ---------------------------------------------------------------------------
def test_fit_and_rotation_choice():
    profile = {"business_types": ["审批"], "posts": ["窗口受理"], "risk_points": ["收受礼品"]}
    items = [
        {"item_id": "a", "kind": "slogan", "tags": {}},
        {"item_id": "b", "kind": "slogan", "tags": {"risk_points": ["收受礼品"]}},
        {"item_id": "c", "kind": "slogan", "tags": {"risk_points": ["工程招投标"]}},
        {"item_id": "i1", "kind": "image", "tags": {"posts": ["窗口受理"]}},
        {"item_id": "t1", "kind": "reminder", "tags": {}},
    ]
    assert fit_score(items[1]["tags"], profile) == 3 and fits(items[0]["tags"], profile)
    assert not fits(items[2]["tags"], profile)          # someone else's risk point
    assert choose_rotation(items, profile, {}) == ["b", "i1"]           # best fit first
    assert choose_rotation(items, profile, {"b": "2026-W05"}) == ["a", "i1"]  # then the unshown
    assert choose_rotation(items, profile, {"a": "2026-W06", "b": "2026-W05"}) == ["b", "i1"]


def test_rotation_and_profile_rules():
    r = PublicityRotation.start("fin", "2026-W06", "2026-02-02", ["a"], "auto")
    with pytest.raises(RuleViolation):
        r.replace("fin", "2026-W06", "2026-02-02", ["a"], "manual")
    with pytest.raises(RuleViolation):
        PublicityRotation.start("fin", "2026-W06", "2026-02-02", [], "auto")
    p = UnitProfile.create("fin", {"risk_points": ["b", "a", "a"]})
    assert p.tags["risk_points"] == ["a", "b"]
    with pytest.raises(RuleViolation):
        p.set({"risk_points": ["a", "b"]})


def test_notice_rules():
    with pytest.raises(RuleViolation):
        IntegrityNotice.schedule("n", "t", "b", "2026-01-01", None, None, "manual", date(2026, 1, 2))
    n = IntegrityNotice.schedule("n", "t", "b", "2026-01-05", None, None, "manual", date(2026, 1, 2))
    with pytest.raises(RuleViolation):
        n.send(["fin"], "2026-01-04T01:00:00+00:00", date(2026, 1, 4))  # not due yet
    n.send(["mkt", "fin"], "2026-01-05T01:00:00+00:00", date(2026, 1, 5))
    assert n.pending_events[-1].unit_ids == ["fin", "mkt"] and n.pending_events[-1].title == "t"
    with pytest.raises(RuleViolation):
        n.cancel("late")


def test_indicators_publish_exact_payload_only_on_change():
    i = EducationIndicators.blank("fin", "2026-02")
    values = {"warning_education_held": True, "checkin_coverage": 0.5, "talks_on_time_rate": None,
              "details": {"ignored": 1}}
    assert i.publish("fin", "2026-02", values) is True
    assert set(i.pending_events[0].data()) == {"unit_id", "period", "warning_education_held",
                                               "checkin_coverage", "talks_on_time_rate", "provisional"}
    assert i.publish("fin", "2026-02", values) is False
    assert i.publish("fin", "2026-02", dict(values, checkin_coverage=0.6)) is True
    # the same figures, now final: published again (the flag is part of what is published)
    assert i.publish("fin", "2026-02", dict(values, checkin_coverage=0.6), provisional=True) is True
    assert i.publish("fin", "2026-02", dict(values, checkin_coverage=0.6), provisional=False) is True
    assert i.pending_events[-1].data()["provisional"] is False


def test_risk_point_mirror_merges_by_source_version_in_any_order():
    from services.education.domain import RiskPointMirror
    identified = {"risk_point_id": "rp1", "unit_id": "fin", "description": "政府采购", "category":
                  "post_duty", "post": "采购岗"}
    m = RiskPointMirror.blank("rp1")
    assert m.merge("Identified", 1, identified) and m.active and m.name == "政府采购"
    assert not m.merge("Identified", 1, identified)                  # a repeat
    assert not m.merge("Assessed", 2, {"risk_point_id": "rp1"})      # not the register's business
    assert m.merge("Retired", 5, {"risk_point_id": "rp1", "unit_id": "fin"}) and not m.active
    # retired first, identified later (two workers): still retired, and named
    m = RiskPointMirror.blank("rp2")
    m.merge("Retired", 3, {"risk_point_id": "rp2", "unit_id": "fin"})
    assert m.merge("Identified", 1, dict(identified, risk_point_id="rp2"))
    assert (m.active, m.name, m.source_version) == (False, "政府采购", 3)


def test_shared_case_is_offered_while_shared_and_matched_by_category_and_tags():
    from services.education.domain import SharedCase, case_tags
    assert case_tags("违规吃喝", ["四风"])["risk_points"] == ["四风", "违规吃喝"]
    assert case_tags("违规吃喝", ["窗口服务"])["business_types"] == ["窗口服务"]
    assert case_tags(None, None) == {"business_types": [], "posts": [], "risk_points": []}
    c = SharedCase.blank("city/case-1")
    assert not c.merge("Compiled", 1, {"title": "草稿", "sharing": "node", "category": "x", "tags": []}) \
        or not c.offered                                             # a draft is not offered
    assert c.merge("Published", 2, {"title": "某局违规吃喝案", "sharing": "all", "category": "违规吃喝",
                                    "summary": "s", "tags": ["四风"]}) and c.offered
    assert not c.merge("Published", 2, {"title": "x", "sharing": "all"})   # a repeat
    assert c.merge("Revised", 4, {"title": "某局违规吃喝案（修订）", "sharing": "all"})
    assert c.fields["title"] == "某局违规吃喝案（修订）" and c.fields["tags"]["risk_points"] == ["四风", "违规吃喝"]
    assert not c.merge("Published", 3, {"title": "old", "sharing": "all"})  # older than what we have
    assert c.merge("Withdrawn", 5, {"sharing": "all"}) and not c.offered


# -- settings -----------------------------------------------------------------------------------------
def test_settings_from_config_and_environment(monkeypatch):
    s = EducationSettings.from_config({})
    assert s.talk_due_days == 30 and s.timezone == "Asia/Shanghai" and len(s.talk_ladder) == 4
    monkeypatch.setenv("EDUCATION_TALK_DUE_DAYS", "15")
    s = EducationSettings.from_config({"EDUCATION_TALK_LADDER": '[{"overdue_days": 3, "notify": "district"}]',
                                       "QINGLIAN_TZ": "UTC", "EDUCATION_PARTY_ORG_LEVELS": "unit,section"})
    assert s.talk_due_days == 15 and s.timezone == "UTC" and s.party_org_levels == ("unit", "section")
    assert [(x.step, x.overdue_days, x.notify) for x in s.talk_ladder] == [(1, 3, "district")]
    # YAML lists work as well as JSON text
    s = EducationSettings.from_config({"EDUCATION_NOTICE_CALENDAR": [{"key": "k", "name": "两会", "on": "03-05"}]})
    assert s.notice_calendar[0].lead_days == 3


@pytest.mark.parametrize("key, value", [
    ("EDUCATION_TALK_DUE_DAYS", "thirty"),
    ("EDUCATION_TALK_DUE_DAYS", "0"),
    ("EDUCATION_TALK_LADDER", "[]"),
    ("EDUCATION_TALK_LADDER", '[{"overdue_days": 5, "notify": "unit"}, {"overdue_days": 5, "notify": "parent"}]'),
    ("EDUCATION_TALK_LADDER", '[{"overdue_days": 5, "notify": "mayor"}]'),
    ("EDUCATION_TALK_LADDER", "not json"),
    ("EDUCATION_NOTICE_CALENDAR", '[{"key": "x", "name": "x", "on": "13-40"}]'),
    ("EDUCATION_NOTICE_CALENDAR", '[{"name": "x", "on": "01-01"}]'),
])
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(SettingsError) as exc:
        EducationSettings.from_config({key: value})
    assert key in str(exc.value)


def test_calendar_occasions_cross_the_year():
    new_year = CalendarEntry("new_year", "元旦", "01-01", 3)
    assert list(new_year.occasions(date(2025, 12, 20), date(2026, 1, 10))) == [date(2026, 1, 1)]
    # send date (12-29) passed while the node was down: still ahead of the holiday
    assert list(new_year.occasions(date(2025, 12, 30), date(2026, 1, 10))) == [date(2026, 1, 1)]
    assert list(new_year.occasions(date(2026, 1, 2), date(2026, 1, 10))) == []  # holiday over
    assert list(new_year.occasions(date(2025, 11, 1), date(2025, 12, 28))) == []  # not yet due
    spring = CalendarEntry("spring_festival", "春节", "2026-02-17", 5)
    assert list(spring.occasions(date(2026, 2, 1), date(2026, 2, 12))) == [date(2026, 2, 17)]
    assert len(parse_calendar([{"key": "a", "name": "a", "on": "02-29"}])) == 1


# -- contracts ----------------------------------------------------------------------------------------
def _mine():
    return sorted(t for t, c in EVENT_TYPES.items()
                  if c.aggregate_cls.__module__ == "services.education.domain")


def test_every_event_type_has_a_valid_contract():
    mine = _mine()
    assert len(mine) >= 30
    for event_type in mine:
        path = CONTRACTS / ("%s.v%d.schema.json" % (event_type, EVENT_TYPES[event_type].schema_version))
        assert path.exists(), "missing contract %s" % path.name
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False and schema["required"]


def test_people_events_are_private():
    private = {t for t in _mine() if EVENT_TYPES[t].private}
    assert {"ReminderCheckIn.CheckedIn", "StudySession.RosterRecorded", "IntegrityTalk.Scheduled",
            "IntegrityTalk.Held", "MemberMirror.Recorded", "YoungCadreProgramme.Enrolled"} <= private
    assert "EducationIndicators.Published" not in private
    assert "StudySession.Held" not in private


def test_the_documentation_names_every_operation_and_setting():
    from services.education.application import app
    from services.education.settings import KEYS
    doc = (Path(__file__).resolve().parents[4] / "docs" / "education.md").read_text(encoding="utf-8")
    missing = [name for name in list(app.operations) + list(KEYS) + _mine() if name not in doc
               and name.rsplit(".", 1)[0] + "." not in doc]
    assert missing == []


# -- the rules that need the read models' facts (given as arguments, as uow.education supplies them)
def test_a_session_plans_once_and_is_joinable_as_its_kind_has_it():
    from shared.errors import Conflict
    with pytest.raises(Conflict) as exc:  # the taken id first, before the kind's own rules
        _plan("micro_party_lesson", taken=True)
    assert type(exc.value) is Conflict and exc.value.fields == {"session_id": ["已被占用"]}
    assert _plan("updown_joint_study", joinable=None).joinable is True
    assert _plan("warning_education", joinable=None).joinable is False
    assert _plan("updown_joint_study", joinable=False).joinable is False  # an explicit answer wins
    s = _plan(audience={"unit_ids": ["mkt", "fin", "mkt"], "posts": ["科长"]})
    assert s.pending_events[0].audience == {"unit_ids": ["fin", "mkt"], "roles": [], "posts": ["科长"]}


def test_a_roster_names_only_known_members_and_gives_the_headcount():
    from shared.errors import NotFound
    s = _plan()
    with pytest.raises(NotFound) as exc:  # before the day's rule: the roster is checked first
        s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 1, 31), None, [],
               roster=["p1", "p9"], known_members={"p1"})
    assert exc.value.fields == {"attendance.roster": ["未知的成员：p9"]} and s.status == "planned"
    s.hold("2026-01-31T17:00:00+00:00", "2026-02-01", date(2026, 2, 1), None, [],
           roster=["p2", "p1", "p2"], known_members={"p1", "p2"})
    held, roster = s.pending_events[-2:]
    assert held.headcount == 2 and roster.event_type == "StudySession.RosterRecorded"
    assert roster.person_ids == ["p1", "p2"]
    y = YoungCadreProgramme.enrol("p1", "fin", date(2026, 1, 1), 90)
    assert s.credit_young_cadres([y], 90, date(2026, 2, 1)) == [y]
    recorded = y.pending_events[-1]
    assert (recorded.on, recorded.topic, recorded.session_id) == ("2026-02-01", "警示教育", "s1")


def test_who_may_join_a_session_and_when_attendance_counts():
    from services.education.domain import SessionParticipation
    row = {"session_id": "s1", "status": "planned", "organiser_unit_id": "dist", "joinable": True}
    SessionParticipation.check_joinable(row, "fin")
    for changed, message in (({"status": "cancelled"}, "已取消"), ({"organiser_unit_id": "fin"}, "组织单位"),
                             ({"joinable": False}, "不对其他单位开放")):
        with pytest.raises(RuleViolation, match=message):
            SessionParticipation.check_joinable(dict(row, **changed), "fin")
    p = SessionParticipation.join("d", "s1", "fin", "updown_joint_study", "联学", "2026-02-01", False)
    with pytest.raises(RuleViolation) as exc:  # not held yet: before "already recorded"
        p.attend(9, "2026-02-01", date(2026, 2, 1), session_status="planned")
    assert exc.value.fields == {"session_id": ["仍为「已计划」"]}
    p.attend(9, "2026-02-01", date(2026, 2, 1), session_status="held")
    assert p.attended and p.headcount == 9


def test_this_nodes_own_records_are_never_external():
    from services.education.domain import ExternalCase
    ExternalSession.require_foreign("city", "district-x")
    for cls, message in ((ExternalSession, "本节点的活动"), (ExternalCase, "本节点自己的案例")):
        with pytest.raises(RuleViolation, match=message) as exc:
            cls.require_foreign("district-x", "district-x")
        assert exc.value.fields == {"origin_node": ["就是本节点"]}


def test_a_past_days_reminder_is_closed():
    from services.education.domain import DailyReminder
    with pytest.raises(RuleViolation) as exc:
        DailyReminder.publish("2026-02-01", "廉洁从政", None, date(2026, 2, 2))
    assert exc.value.fields == {"on": ["已经过去"]}
    r = DailyReminder.publish("2026-02-02", "廉洁从政", None, date(2026, 2, 2))
    with pytest.raises(RuleViolation, match="已有 3 名成员"):  # reworded only before anyone checked in
        r.revise("慎独慎微", None, date(2026, 2, 2), 3)


def test_taken_ids_are_conflicts():
    from shared.errors import Conflict
    from services.education.domain import ContentItem
    for make, fields in (
        (lambda: ContentItem.add("c1", "poster", "x", None, None, {}, taken=True), {"item_id": ["已被占用"]}),
        (lambda: IntegrityNotice.schedule("n", "t", "b", "2026-01-01", None, None, "manual", date(2026, 1, 2),
                                          taken=True), {"notice_id": ["已被占用"]}),
    ):
        with pytest.raises(Conflict) as exc:  # before the unknown kind / the past send date
            make()
        assert type(exc.value) is Conflict and exc.value.fields == fields


def test_a_calendar_notice_goes_out_lead_days_before_or_today():
    n = IntegrityNotice.for_occasion("spring", "春节", date(2026, 2, 17), 7, date(2026, 1, 1))
    e = n.pending_events[0]
    assert (n.id, e.send_on, e.occasion_date, e.source) == ("spring-2026-02-17", "2026-02-10", "2026-02-17",
                                                           "calendar")
    assert "春节将至" in e.body and e.title == "关于春节期间严守纪律、廉洁过节的通知"
    late = IntegrityNotice.for_occasion("spring", "春节", date(2026, 2, 17), 7, date(2026, 2, 15))
    assert late.send_on == "2026-02-15" and late.sendable
    late.cancel("重复")
    assert not late.sendable


def test_a_receipt_is_owed_only_by_a_recipient_and_recorded_once():
    from shared.errors import NotFound
    from services.education.domain import NoticeReceipt
    with pytest.raises(NotFound):
        NoticeReceipt.acknowledge("n", "fin", "2026-01-05T01:00:00+00:00", "u", receipt=None, notice_known=False)
    with pytest.raises(RuleViolation) as exc:
        NoticeReceipt.acknowledge("n", "fin", "2026-01-05T01:00:00+00:00", "u", receipt=None)
    assert exc.value.fields == {"unit_id": ["（尚）不是接收单位"]}
    assert NoticeReceipt.acknowledge("n", "fin", "2026-01-05T01:00:00+00:00", "u",
                                     receipt={"acknowledged_at": "2026-01-04T01:00:00+00:00"}) is None
    r = NoticeReceipt.acknowledge("n", "fin", "2026-01-05T01:00:00+00:00", "u", receipt={"acknowledged_at": None})
    assert r.id == "n/fin" and r.pending_events[0].by == "u"


def test_whom_each_rung_of_the_ladder_notifies():
    from services.education.domain import escalation_target
    assert escalation_target("unit", "mkt-g1", "mkt", "dist") == "mkt-g1"
    assert escalation_target("parent", "mkt-g1", "mkt", "dist") == "mkt"
    assert escalation_target("parent", "dist", None, "dist") == "dist"  # the top has no parent
    assert escalation_target("district", "mkt-g1", "mkt", "dist") == "dist"


def test_inbox_reads_only_known_items_in_the_users_scope():
    from shared.errors import Forbidden, NotFound
    from services.education.domain import UserInbox, inbox_root
    assert inbox_root(True, "fin") is None and inbox_root(False, None) is None
    assert inbox_root(False, "fin") == "fin"
    inbox = UserInbox.for_user("ua")
    with pytest.raises(NotFound) as exc:
        inbox.read(["a", "x"], "t", item_units={"a": "fin"}, visible=["fin"])
    assert exc.value.fields == {"item_ids": ["未知：x"]}
    with pytest.raises(Forbidden, match="b"):
        inbox.read(["a", "b"], "t", item_units={"a": "fin", "b": "mkt"}, visible=["fin", "fin-s1"])
    inbox.read(["b", "a", "b"], "t", item_units={"a": "fin", "b": "mkt"}, visible=None)  # node-wide
    assert inbox.pending_events[-1].item_ids == ["a", "b"]


def test_what_a_person_event_sets_going():
    from services.education.domain import follow_person
    member = MemberMirror.blank("p1")
    member.merge("Registered", 1, {"person_id": "p1", "unit_id": "fin", "post": "科员", "young_cadre": True})
    touched, talk = follow_person(member, "Registered", {}, talk_taken=False, programme=None,
                                  today=date(2026, 1, 1), talk_due_days=30, cadence_days=90)
    assert talk is None and [type(a).__name__ for a in touched] == ["MemberMirror", "YoungCadreProgramme"]
    programme = touched[1]
    programme.collect_events()
    promo = {"person_id": "p1", "unit_id": "mkt", "new_post": "副科长", "effective_on": "2026-01-20"}
    member.merge("Promoted", 2, promo)
    touched, talk = follow_person(member, "Promoted", promo, talk_taken=False, programme=programme,
                                  today=date(2026, 1, 20), talk_due_days=30, cadence_days=90)
    assert talk == "p1/2026-01-20" and touched[1].due_on == "2026-02-19"
    assert touched[2] is programme and programme.pending_events[-1].event_type == "YoungCadreProgramme.Moved"
    touched, talk = follow_person(member, "Promoted", promo, talk_taken=True, programme=programme,
                                  today=date(2026, 1, 20), talk_due_days=30, cadence_days=90)
    assert talk is None and touched == [member, programme]  # a redelivered promotion: no second talk


def test_a_month_is_republished_when_it_turns_final_or_a_late_entry_came():
    from services.education.domain import republish_due
    assert republish_due("2026-02", True, 0, 0, date(2026, 3, 6), 5)       # provisional, now final
    assert not republish_due("2026-02", True, 0, 0, date(2026, 3, 5), 5)   # still in its grace
    assert not republish_due("2026-02", False, 7, 7, date(2026, 3, 6), 5)  # final, nothing new
    assert republish_due("2026-02", False, 9, 7, date(2026, 3, 6), 5)      # a late entry


def test_a_member_sees_only_their_own_streak():
    from shared.errors import Forbidden
    from services.education.domain import check_streak_viewer
    check_streak_viewer("p1", "p1", False)
    check_streak_viewer("ua", "p1", True)
    with pytest.raises(Forbidden):
        check_streak_viewer("p2", "p1", False)


def test_a_manual_week_shows_items_in_use_and_an_automatic_one_keeps_a_chosen_week():
    from services.education.domain import manual_rotation, rotation_candidates
    library = [{"item_id": "s1", "kind": "slogan"}, {"item_id": "r1", "kind": "reminder"},
               {"item_id": "i1", "kind": "image"}]
    candidates = rotation_candidates(library)
    assert [i["item_id"] for i in candidates] == ["s1", "i1"]
    assert manual_rotation(["i1", "s1", "i1"], candidates) == ["i1", "s1"]
    with pytest.raises(RuleViolation) as exc:
        manual_rotation(["s1", "r1", "nope"], candidates)
    assert exc.value.fields == {"item_ids": ["不能轮播：r1, nope"]}
    r, changed = PublicityRotation.choose(None, "fin", "2026-W06", "2026-02-02", ["s1"], "auto")
    assert changed and r.item_ids == ["s1"]
    again, changed = PublicityRotation.choose(r, "fin", "2026-W06", "2026-02-02", ["i1"], "auto")
    assert again is r and not changed and r.item_ids == ["s1"]
    _, changed = PublicityRotation.choose(r, "fin", "2026-W06", "2026-02-02", ["i1"], "manual")
    assert changed and r.item_ids == ["i1"]


def test_a_suggestion_comes_from_a_member_of_the_unit():
    from shared.errors import BadInput, Conflict, NotFound
    from services.education.domain import Suggestion
    args = ("s1", "fin", "p1", "公开采购流程", "建议每季度公开采购清单。", date(2026, 12, 2))
    with pytest.raises(NotFound):
        Suggestion.submit(*args, proposer_unit=None)
    with pytest.raises(BadInput) as exc:
        Suggestion.submit(*args, proposer_unit="mkt", taken=True)  # the unit before the taken id
    assert exc.value.fields == {"proposer_id": ["不在该单位"]}
    with pytest.raises(Conflict):
        Suggestion.submit(*args, proposer_unit="fin", taken=True)
    assert Suggestion.submit(*args, proposer_unit="fin").status == "submitted"


def test_a_bulletin_goes_below_its_issuer_and_fills_in_from_the_case():
    from shared.errors import BadInput, Conflict, NotFound
    from services.education.domain import CaseBulletin, CaseStudyReceipt
    base = dict(bulletin_id="b1", issuer_unit_id="fin", scope_unit_id="fin", title=None, summary=None,
                requirements="举一反三", unit_ids=["fin", "fin-s1"], issued_on=date(2026, 3, 1), due_on=None,
                case_ref=None, issuer_path="/dist/fin/", scope_path="/dist/fin/")
    with pytest.raises(BadInput) as exc:
        CaseBulletin.issue(**dict(base, scope_unit_id="mkt", scope_path="/dist/mkt/", case_ref="city/c1"))
    assert exc.value.fields == {"scope_unit_id": ["不在通报单位之下"]}
    with pytest.raises(NotFound):
        CaseBulletin.issue(**dict(base, case_ref="city/c1", case=None, taken=True))
    case = {"title": "某所长收受礼品案", "summary": None}
    with pytest.raises(Conflict):
        CaseBulletin.issue(**dict(base, case_ref="city/c1", case=case, taken=True))
    b = CaseBulletin.issue(**dict(base, case_ref="city/c1", case=case))
    issued = b.pending_events[0]
    assert issued.unit_ids == ["fin-s1"]  # the issuer itself owes no receipt
    assert (issued.title, issued.summary) == ("某所长收受礼品案", "某所长收受礼品案")
    with pytest.raises(Conflict):
        CaseStudyReceipt.record(b, "fin-s1", date(2026, 3, 2), date(2026, 3, 2), 5, "学了", "ua", taken=True)
    assert CaseStudyReceipt.record(b, "fin-s1", date(2026, 3, 2), date(2026, 3, 2), 5, "学了", "ua").studied_on \
        == "2026-03-02"


def test_how_the_exchanges_activities_and_attendance_are_taken_here():
    from services.education.domain import activity_session_fields, attendance_route, attended_session
    published = {"activity_id": "city/a1", "title": "警示教育大会", "theme": "警示教育", "unit_name": "市纪委"}
    assert activity_session_fields("Published", published, None) == {
        "title": "警示教育大会", "kind": "warning_education", "organiser": "市纪委",
        "tags": {"business_types": [], "posts": [], "risk_points": []}}
    registered = {"title": "原题", "kind": "theme_joint_study", "organiser": "市纪委", "tags": {}, "local_date": "2026-03-02"}
    assert activity_session_fields("Rescheduled", published, registered)["title"] == "原题"  # only the time moves
    with pytest.raises(RuleViolation, match="尚未登记"):  # before its Published: retried
        activity_session_fields("Rescheduled", published, None)
    assert attendance_route("d", "city", shared_here=True, caused_here=False) == "report"
    assert attendance_route("d", "city", shared_here=False, caused_here=False) is None
    assert attendance_route("d", "d", shared_here=True, caused_here=False) is None   # its audience units
    assert attendance_route("d", "d", shared_here=False, caused_here=True) is None   # summed up from here
    assert attendance_route("d", "d", shared_here=False, caused_here=False) == "follow"
    assert attended_session("city/a1", registered, date(2026, 3, 2)) is registered
    assert attended_session("city/a1", registered, date(2026, 3, 1)) is None  # its day has not come
    with pytest.raises(RuleViolation, match="尚未登记"):
        attended_session("city/a1", None, date(2026, 3, 2))
