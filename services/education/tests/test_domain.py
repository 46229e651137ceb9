"""Pure domain: calendar arithmetic in the users' zone, streaks, session rules, the
talk ladder, member merging, rotation choice, settings and the event contracts."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from shared.aggregate import EVENT_TYPES
from shared.errors import RuleViolation

from services.education.dates import (
    iso_week, local_date, month_bounds, period_of, previous_period, week_start,
)
from services.education.domain import (
    EducationIndicators, ExternalSession, IntegrityNotice, IntegrityTalk, MemberMirror,
    PublicityRotation, StudySession, UnitProfile, YoungCadreProgramme, choose_rotation, fit_score,
    coverage_days, fits, live_streak, longest_run, next_streak,
)
from services.education.settings import (
    CalendarEntry, EducationSettings, SettingsError, parse_calendar, parse_ladder,
)

SH = "Asia/Shanghai"
CONTRACTS = Path(__file__).resolve().parents[3] / "contracts" / "events"


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


# -- days and months as the users count them ---------------------------------------------------
@pytest.mark.parametrize("instant, day", [
    (utc(2026, 1, 31, 15, 59), date(2026, 1, 31)),   # 23:59 in Shanghai
    (utc(2026, 1, 31, 16, 0), date(2026, 2, 1)),     # midnight in Shanghai: February
    (utc(2026, 1, 31, 17, 0), date(2026, 2, 1)),     # the example
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
    doc = (Path(__file__).resolve().parents[3] / "docs" / "education.md").read_text(encoding="utf-8")
    missing = [name for name in list(app.operations) + list(KEYS) + _mine() if name not in doc
               and name.rsplit(".", 1)[0] + "." not in doc]
    assert missing == []
