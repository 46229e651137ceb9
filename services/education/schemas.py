"""Input schemas (marshmallow 4): unknown fields are rejected, lengths and enums enforced.

Shape errors are caught here, before a transaction opens, and come back as 400 with
one message per field. Rules that need recorded state (a session already held, a
member not known yet) are the domain's and come back as 404/409.
"""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.education.domain import (
    CONTENT_KINDS, MATERIAL_KINDS, MICRO_PARTY_LESSON, NOTICE_STATUSES, PARTY_DAY_ACTIVITIES,
    SESSION_KINDS, TALK_STATES,
    AttendanceFollowed, ContentItem, DailyReminder, DistrictEducationIndicators,
    EducationIndicators, ExternalCase, ExternalSession, IntegrityNotice, IntegrityTalk,
    MemberMirror, NoticeReceipt, PublicityRotation, ReminderCheckIn, RiskPointMirror,
    SessionParticipation, SharedCase, StudySession, UnitProfile, UserInbox, YoungCadreProgramme,
)
from shared.fields import AwareDateTime, Date, Id, Integer, Month, Name, Pattern, Text

# "<node>/<record>" and "<person>/<date>" keys
Key = lambda **kw: fields.String(validate=Pattern(  # noqa: E731
    r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}",
    error="格式应为 <编号>/<编号>"), **kw)
Tag = lambda: fields.String(validate=validate.Length(1, 100))  # noqa: E731
Week = lambda **kw: fields.String(validate=Pattern(r"[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])", error="周格式应为 YYYY-Www"), **kw)  # noqa: E731


class Tags(Schema):
    """业务类型 / 岗位 / 廉政风险点 - how material is matched to a unit. A risk point is
    named as supervision's register names it (its description, up to 2000 characters;
    ``risk_point_register`` lists them for a picker)."""

    business_types = fields.List(Tag(), load_default=list, validate=validate.Length(max=50))
    posts = fields.List(Tag(), load_default=list, validate=validate.Length(max=50))
    risk_points = fields.List(fields.String(validate=validate.Length(1, 2000)), load_default=list,
                              validate=validate.Length(max=50))


class Audience(Schema):
    unit_ids = fields.List(Id(), load_default=list, validate=validate.Length(max=500))
    roles = fields.List(Name(50), load_default=list, validate=validate.Length(max=20))
    posts = fields.List(Name(), load_default=list, validate=validate.Length(max=50))


class Material(Schema):
    """Materials are referenced, not stored: a URL or a document number."""

    title = Name(required=True)
    ref = Text(1000, required=True)
    kind = fields.String(load_default="document",
                         validate=validate.OneOf(MATERIAL_KINDS))


class Speaker(Schema):
    post = Name(required=True)
    person_id = Id(load_default=None)


class Attendance(Schema):
    """Either a person-free headcount or a roster of member ids (kept on the node)."""

    headcount = Integer(load_default=None, validate=validate.Range(0, 100000))
    roster = fields.List(Id(), load_default=None, validate=validate.Length(1, 5000))

    @validates_schema
    def one_of(self, data, **kw):
        if (data.get("headcount") is None) == (data.get("roster") is None):
            raise ValidationError("headcount 与 roster 须且只能给出其一", "_schema")


class CaseAnalysis(Schema):
    """典型案例 analysed, not just read out: the lessons drawn for the unit's own posts."""

    case_ref = Key(required=True)
    lessons = Text(2000, required=True)


class PlanSession(Schema):
    session_id = Id(load_default=None)
    kind = fields.String(required=True, validate=validate.OneOf(tuple(SESSION_KINDS)))
    title = Name(required=True)
    organiser_unit_id = Id(required=True)
    scheduled_at = AwareDateTime(required=True)
    audience = fields.Nested(Audience, load_default=dict)
    tags = fields.Nested(Tags, load_default=dict)
    materials = fields.List(fields.Nested(Material), load_default=list,
                            validate=validate.Length(max=50))
    speaker = fields.Nested(Speaker, load_default=None)
    case_refs = fields.List(Key(), load_default=list, validate=validate.Length(max=20))
    joinable = fields.Boolean(load_default=None)
    # 上下联学 for other nodes (the city's districts): shared through the exchange service
    share_with_nodes = fields.List(fields.String(validate=Pattern(
        r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?", error="节点标识只能包含小写字母、数字和“-”")),
        load_default=list, validate=validate.Length(max=50))

    @validates_schema
    def kind_needs(self, data, **kw):
        if data.get("kind") == MICRO_PARTY_LESSON and not data.get("speaker"):
            raise ValidationError("廉政微党课（一人讲）须填写主讲人", "speaker")


class HoldFields(Schema):
    attendance = fields.Nested(Attendance, required=True)
    attended_unit_ids = fields.List(Id(), load_default=None, validate=validate.Length(max=500))
    discussion = Text(5000, load_default=None)
    leader_comment = Text(2000, load_default=None)
    activities = fields.List(fields.String(validate=validate.OneOf(tuple(PARTY_DAY_ACTIVITIES))),
                             load_default=list)
    case_analysis = fields.List(fields.Nested(CaseAnalysis), load_default=list,
                                validate=validate.Length(max=20))
    extra_materials = fields.List(fields.Nested(Material), load_default=list,
                                  validate=validate.Length(max=50))


class HoldSession(HoldFields):
    session_id = Id(required=True)
    held_at = AwareDateTime(load_default=None)


class RecordSession(PlanSession, HoldFields):
    """Plan and hold in one go: what a unit contact enters after the fact."""


class SessionRef(Schema):
    session_id = Id(required=True)


class CancelSession(SessionRef):
    reason = Text(500, required=True)


class JoinSession(Schema):
    session_node = Id(load_default=None)  # None: this node
    session_id = Id(required=True)
    unit_id = Id(required=True)


class RecordParticipation(JoinSession):
    headcount = Integer(required=True, validate=validate.Range(0, 100000))


class RegisterExternalSession(Schema):
    origin_node = Id(required=True)
    record_id = Id(required=True)
    title = Name(required=True)
    kind = fields.String(load_default="updown_joint_study", validate=validate.OneOf(tuple(SESSION_KINDS)))
    held_at = AwareDateTime(required=True)
    organiser = Name(load_default=None)
    tags = fields.Nested(Tags, load_default=dict)


class RegisterExternalCase(Schema):
    origin_node = Id(required=True)
    record_id = Id(required=True)
    title = Name(required=True)
    summary = Text(5000, load_default=None)
    tags = fields.Nested(Tags, load_default=dict)


class SetDailyReminder(Schema):
    on = Date(required=True)
    # 一句话提醒: one line
    text = fields.String(required=True, validate=[validate.Length(1, 100),
                                                  Pattern(r"[^\r\n]+", error="只能是一行文字")])
    item_id = Id(load_default=None)


class Nothing(Schema):
    """Routine commands (timers) take no input: the clock says what is due."""


class CheckIn(Schema):
    person_id = Id(required=True)


class AddContent(Schema):
    item_id = Id(load_default=None)
    kind = fields.String(required=True, validate=validate.OneOf(tuple(CONTENT_KINDS)))
    title = Name(required=True)
    text = Text(2000, load_default=None)
    ref = Text(1000, load_default=None)
    tags = fields.Nested(Tags, load_default=dict)


class ContentRef(Schema):
    item_id = Id(required=True)


class RetagContent(ContentRef):
    tags = fields.Nested(Tags, required=True)


class RetireContent(ContentRef):
    reason = Text(500, required=True)


class RotatePublicity(Schema):
    unit_id = Id(required=True)
    week = Week(load_default=None)
    item_ids = fields.List(Id(), load_default=None, validate=validate.Length(1, 10))


class SetUnitProfile(Tags):
    unit_id = Id(required=True)

    @validates_schema
    def no_risk_points(self, data, **kw):
        # one register: supervision's 廉政风险点台账 (through its events), not a second list
        if data.get("risk_points"):
            raise ValidationError("廉政风险点以监督服务的廉政风险点台账为准，不在单位画像中填写",
                                  "risk_points")


class ScheduleNotice(Schema):
    notice_id = Id(load_default=None)
    title = Name(required=True)
    body = Text(5000, required=True)
    send_on = Date(required=True)
    occasion = Name(100, load_default=None)
    occasion_date = Date(load_default=None)


class NoticeRef(Schema):
    notice_id = Id(required=True)


class CancelNotice(NoticeRef):
    reason = Text(500, required=True)


class AcknowledgeNotice(NoticeRef):
    unit_id = Id(required=True)


class RecordTalkHeld(Schema):
    talk_id = Key(required=True)
    held_on = Date(required=True)
    conducted_by = Name(required=True)  # the post: 党组织书记, 纪检委员 ...
    note = Text(2000, load_default=None)


class RecordYoungCadreEducation(Schema):
    person_id = Id(required=True)
    on = Date(required=True)
    topic = Name(required=True)
    session_id = Id(load_default=None)


class MarkInboxRead(Schema):
    item_ids = fields.List(Text(300), required=True, validate=validate.Length(1, 500))


class PublishIndicators(Schema):
    period = Month(required=True)


# -- queries -------------------------------------------------------------------------------------
class UnitRef(Schema):
    unit_id = Id(required=True)


class ListSessions(UnitRef):
    period = Month(load_default=None)
    kind = fields.String(load_default=None, validate=validate.OneOf(tuple(SESSION_KINDS)))


class UnitPeriod(UnitRef):
    period = Month(required=True)


class UnitDay(UnitRef):
    on = Date(load_default=None)  # default: today in the users' zone


class Day(Schema):
    on = Date(load_default=None)


class PersonRef(Schema):
    person_id = Id(required=True)


class ListContent(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(tuple(CONTENT_KINDS)))
    risk_point = Name(100, load_default=None)
    post = Name(100, load_default=None)
    business_type = Name(100, load_default=None)
    include_retired = fields.Boolean(load_default=False)


class UnitLimit(UnitRef):
    limit = Integer(load_default=20, validate=validate.Range(1, 200))


class UnitWeek(UnitRef):
    week = Week(load_default=None)  # default: this ISO week in the users' zone


class ListNotices(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(NOTICE_STATUSES))


class ListTalks(UnitRef):
    status = fields.String(load_default=None, validate=validate.OneOf(TALK_STATES))


class UnitInbox(UnitRef):
    include_closed = fields.Boolean(load_default=False)
    subtree = fields.Boolean(load_default=False)
    limit = Integer(load_default=100, validate=validate.Range(1, 1000))


class MyInbox(Schema):
    include_closed = fields.Boolean(load_default=False)
    limit = Integer(load_default=100, validate=validate.Range(1, 1000))


class Period(Schema):
    period = Month(required=True)


class AsOf(UnitPeriod):
    position = Integer(load_default=None, validate=validate.Range(min=1, error="日志位置从 1 开始"))
    at = AwareDateTime(load_default=None)

    @validates_schema
    def one_of(self, data, **kw):
        if (data.get("position") is None) == (data.get("at") is None):
            raise ValidationError("position 与 at 须且只能给出其一", "_schema")


# The records whose log the history query reads, by stream name (application.history).
# The 清廉机关实践 records (Suggestion, CaseBulletin, CaseStudyReceipt) are not among them.
HISTORY_STREAMS = {cls.__name__: cls for cls in (
    StudySession, SessionParticipation, ExternalSession, ExternalCase, DailyReminder,
    ReminderCheckIn, ContentItem, PublicityRotation, UnitProfile, IntegrityNotice, NoticeReceipt,
    IntegrityTalk, YoungCadreProgramme, MemberMirror, UserInbox, EducationIndicators,
    DistrictEducationIndicators, RiskPointMirror, SharedCase, AttendanceFollowed)}


class History(Schema):
    stream = fields.String(required=True, validate=validate.OneOf(tuple(HISTORY_STREAMS)))
    id = fields.String(required=True, validate=validate.Length(1, 300))


# -- 清廉机关实践: 献一策 ----------------------------------------------------------------------
from services.education.domain import SUGGESTION_OUTCOMES, SUGGESTION_STATUSES  # noqa: E402

Year = lambda **kw: Integer(validate=validate.Range(2000, 2100, error="年份应在 2000 至 2100 之间"), **kw)  # noqa: E731


class SubmitSuggestion(Schema):
    suggestion_id = Id(load_default=None)
    unit_id = Id(required=True)
    proposer_id = Id(required=True)      # the member, picked from the unit's people
    title = Name(200, required=True)
    content = Text(5000, required=True)


class SuggestionRef(Schema):
    suggestion_id = Id(required=True)


class AcceptSuggestion(SuggestionRef):
    handler = Name(100, required=True)   # 承办部门 / 承办人


class ProgressSuggestion(SuggestionRef):
    note = Text(2000, required=True)


class AnswerSuggestion(SuggestionRef):
    reply = Text(2000, required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(
        SUGGESTION_OUTCOMES, error=SUGGESTION_OUTCOMES.error()))


class ListSuggestions(Schema):
    unit_id = Id(required=True)
    year = Year(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(
        SUGGESTION_STATUSES, error=SUGGESTION_STATUSES.error()))


class SuggestionSummary(Schema):
    unit_id = Id(required=True)
    year = Year(load_default=None)       # none: this year


# -- 清廉机关实践: 典型案例通报 -------------------------------------------------------------------
class IssueCaseBulletin(Schema):
    bulletin_id = Id(load_default=None)
    issuer_unit_id = Id(required=True)
    scope_unit_id = Id(required=True)    # every unit of its subtree receives it
    title = Name(200, load_default=None)        # default: the chosen case's
    summary = Text(5000, load_default=None)     # 案情; default: the chosen case's
    requirements = Text(2000, required=True)
    due_on = Date(load_default=None)
    case_ref = fields.String(load_default=None, validate=validate.Length(1, 200))  # a case on offer

    @validates_schema
    def a_case_or_its_text(self, data, **kw):
        if not data.get("case_ref"):
            missing = {f: ["必填（或选择一个案例）"] for f in ("title", "summary") if not data.get(f)}
            if missing:
                raise ValidationError(missing)


class BulletinRef(Schema):
    bulletin_id = Id(required=True)


class RecordCaseStudy(BulletinRef):
    unit_id = Id(required=True)
    studied_on = Date(required=True)
    headcount = Integer(required=True, validate=validate.Range(0, 100000))
    note = Text(2000, required=True)


class BulletinsOfUnit(Schema):
    unit_id = Id(required=True)


class BulletinReceipts(BulletinRef):
    unit_id = Id(required=True)          # the receipts of the recipients in this subtree
