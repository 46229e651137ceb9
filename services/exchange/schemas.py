"""Input schemas (marshmallow 4: unknown fields are refused, so a caller cannot slip a
person's name or an evidence file into a shared record under a field we do not know).

Ids: a new record takes an optional ``*_id`` *slug* (``case-2025-007``); the service
makes it ``<this node>/<slug>``. Everything that refers to an existing record takes
the full id (``district-a/case-2025-007``), which names its owner.
"""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.exchange.domain import (
    COMMENT_PARENT_KINDS, COMPARED_SOURCES, CONTRIBUTION_TYPES, EXEMPLAR_CATEGORIES,
    FOLLOW_UP_ACTIONS, RECORD_KINDS, SHARING_LEVELS,
)
from shared.fields import (
    AwareDateTime, DateString, Id, Integer, Month, Name, Pattern, Period, Text,
)

_SLUG = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}"
_REF = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}"
_NODE = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"

Slug = lambda **kw: fields.String(validate=Pattern(  # noqa: E731
    _SLUG, error="1-80 个字符：字母、数字、_ . -（服务会加上本节点编号前缀）"), **kw)
Ref = lambda **kw: fields.String(validate=Pattern(  # noqa: E731
    _REF, error="记录编号 <节点>/<编号>，如 district-a/case-2025-007"), **kw)
NodeId = lambda **kw: fields.String(validate=Pattern(  # noqa: E731
    _NODE, error="节点编号：小写字母、数字、-"), **kw)
UnitId = Id
Date = DateString
Tags = lambda **kw: fields.List(Name(50), validate=validate.Length(max=20), **kw)  # noqa: E731
Lines = lambda n, **kw: fields.List(Text(2000), validate=validate.Length(n, 50), **kw)  # noqa: E731


class Sharing(Schema):
    """Who may see a record (MISP-style distribution levels)."""

    sharing = fields.String(required=True, validate=validate.OneOf(SHARING_LEVELS))
    recipients = fields.List(NodeId(), load_default=list, validate=validate.Length(max=50))


Share = lambda: fields.Nested(Sharing, load_default=None)  # noqa: E731  publish at once


class Attachment(Schema):
    """A reference to a document kept elsewhere (never the file itself)."""

    title = Name(200, required=True)
    uri = fields.Url(required=True, schemes={"http", "https"}, validate=validate.Length(max=1000))
    sha256 = fields.String(load_default=None, validate=Pattern(r"[0-9a-f]{64}", error="64 位小写十六进制数字"))


class Indicators(fields.Dict):
    """{indicator name: number}; names are short labels, values plain numbers."""

    def __init__(self, **kw):
        super().__init__(keys=fields.String(validate=validate.Length(1, 60)),
                         values=fields.Float(allow_nan=False),
                         validate=validate.Length(max=50), **kw)


# -- records ---------------------------------------------------------------------------
class DraftExperience(Schema):
    experience_id = Slug(load_default=None)
    unit_id = UnitId(required=True)
    title = Name(200, required=True)
    summary = Text(1000, required=True)
    body = Text(20000, required=True)
    business_type = Name(50, required=True)   # 业务类型
    topics = Tags(load_default=list)          # 主题
    attachments = fields.List(fields.Nested(Attachment), load_default=list,
                              validate=validate.Length(max=20))
    share = Share()


class EditExperience(Schema):
    experience_id = Ref(required=True)
    title = Name(200)
    summary = Text(1000)
    body = Text(20000)
    business_type = Name(50)
    topics = Tags()
    attachments = fields.List(fields.Nested(Attachment), validate=validate.Length(max=20))


class ShareRecord(Sharing):
    kind = fields.String(required=True, validate=validate.OneOf(RECORD_KINDS))
    record_id = Ref(required=True)


class WithdrawRecord(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(RECORD_KINDS))
    record_id = Ref(required=True)
    reason = Text(500, required=True)


class PostComment(Schema):
    comment_id = Slug(load_default=None)
    parent_kind = fields.String(required=True,
                                validate=validate.OneOf(COMMENT_PARENT_KINDS))
    parent_id = Ref(required=True)
    text = Text(5000, required=True)
    unit_id = UnitId(load_default=None)
    reply_to = Ref(load_default=None)


class MarkLearned(Schema):
    experience_id = Ref(required=True)
    unit_id = UnitId(required=True)
    note = Text(2000, required=True)


class CompileCase(Schema):
    case_id = Slug(load_default=None)
    unit_id = UnitId(required=True)
    title = Name(200, required=True)
    category = Name(100, required=True)       # e.g. 违规发放补贴 / 四风
    summary = Text(1000, required=True)
    facts = Text(20000, required=True)
    analysis = Text(20000, required=True)     # 深入分析, not just 传达学习
    lessons = Lines(1, required=True)         # 举一反三
    tags = Tags(load_default=list)
    share = Share()


class ReviseCase(Schema):
    case_id = Ref(required=True)
    title = Name(200)
    category = Name(100)
    summary = Text(1000)
    facts = Text(20000)
    analysis = Text(20000)
    lessons = Lines(1)
    tags = Tags()
    merge_contributions = fields.List(Ref(), load_default=list, validate=validate.Length(max=100))
    note = Text(1000, required=True)


class Contribute(Schema):
    contribution_id = Slug(load_default=None)
    case_id = Ref(required=True)
    contribution_type = fields.String(required=True, validate=validate.OneOf(CONTRIBUTION_TYPES))
    text = Text(20000, required=True)
    unit_id = UnitId(load_default=None)


class PlanActivity(Schema):
    activity_id = Slug(load_default=None)
    unit_id = UnitId(required=True)
    title = Name(200, required=True)
    theme = Name(200, required=True)          # e.g. 警示教育 / 专题党日
    description = Text(5000, required=True)
    starts_at = AwareDateTime(required=True, format="iso")
    ends_at = AwareDateTime(required=True, format="iso")
    location = Text(300, required=True)
    invited_nodes = fields.List(NodeId(), load_default=list, validate=validate.Length(max=50))
    share = Share()


class Reschedule(Schema):
    activity_id = Ref(required=True)
    starts_at = AwareDateTime(required=True, format="iso")
    ends_at = AwareDateTime(required=True, format="iso")
    location = Text(300, required=True)
    note = Text(500, required=True)


class SignUpInput(Schema):
    activity_id = Ref(required=True)
    unit_id = UnitId(required=True)
    headcount = Integer(required=True, strict=True, validate=validate.Range(1, 10000))


class WithdrawSignUp(Schema):
    activity_id = Ref(required=True)
    unit_id = UnitId(required=True)
    reason = Text(500, required=True)


class UnitAttendance(Schema):
    unit_id = UnitId(required=True)
    attendees = Integer(required=True, strict=True, validate=validate.Range(0, 10000))


class RecordAttendance(Schema):
    activity_id = Ref(required=True)
    units = fields.List(fields.Nested(UnitAttendance), required=True,
                        validate=validate.Length(1, 200))
    note = Text(1000, load_default=None)

    @validates_schema
    def distinct_units(self, data, **kw):
        ids = [u["unit_id"] for u in data.get("units", [])]
        if len(ids) != len(set(ids)):
            raise ValidationError("每个单位只能出现一次", "units")


class ReportOutcome(Schema):
    activity_id = Ref(required=True)
    summary = Text(5000, required=True)
    results = Lines(1, required=True)


class CancelActivity(Schema):
    activity_id = Ref(required=True)
    reason = Text(500, required=True)


class NominateExemplar(Schema):
    exemplar_id = Slug(load_default=None)
    unit_id = UnitId(required=True)
    category = fields.String(required=True, validate=validate.OneOf(EXEMPLAR_CATEGORIES))
    title = Name(200, required=True)
    section = Name(100, load_default=None)    # 科室 / 窗口 name: a place, not a person
    description = Text(5000, required=True)
    # figures nobody publishes, typed by hand (marked so); published ones are taken as is
    indicators = Indicators(load_default=dict)
    period = Period(required=True)
    share = Share()


class UpdateExemplarIndicators(Schema):
    exemplar_id = Ref(required=True)
    indicators = Indicators(load_default=dict)
    period = Period(required=True)


class Endorse(Schema):
    exemplar_id = Ref(required=True)
    comment = Text(2000, required=True)
    unit_id = UnitId(load_default=None)


class PostProblem(Schema):
    problem_id = Slug(load_default=None)
    unit_id = UnitId(required=True)
    title = Name(200, required=True)
    context = Text(20000, required=True)
    deadline = Date(required=True)
    tags = Tags(load_default=list)
    share = Share()


class ExtendDeadline(Schema):
    problem_id = Ref(required=True)
    deadline = Date(required=True)
    reason = Text(500, required=True)


class Propose(Schema):
    proposal_id = Slug(load_default=None)
    problem_id = Ref(required=True)
    summary = Text(500, required=True)
    detail = Text(20000, required=True)
    unit_id = UnitId(load_default=None)


class AcceptProposal(Schema):
    problem_id = Ref(required=True)
    proposal_id = Ref(required=True)
    note = Text(1000, required=True)


class RecordResolution(Schema):
    problem_id = Ref(required=True)
    summary = Text(5000, required=True)
    results = Lines(1, required=True)
    measures = Lines(0, load_default=list)
    resolved_on = Date(required=True)


# -- queries ---------------------------------------------------------------------------
class Feed(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(RECORD_KINDS))
    origin = NodeId(load_default=None)
    tag = Name(50, load_default=None)
    before = Integer(load_default=None, validate=validate.Range(min=0))
    limit = Integer(load_default=50, validate=validate.Range(1, 200))


class Drafts(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(RECORD_KINDS))
    limit = Integer(load_default=100, validate=validate.Range(1, 200))


class RecordRef(Schema):
    record_id = Ref(required=True)


class Compare(Schema):
    period = Period(required=True)
    indicator = Name(60, load_default=None)
    source = fields.String(load_default=None, validate=validate.OneOf(COMPARED_SOURCES))


class CityComparison(Schema):
    period = Period(load_default=None)   # none: the latest period published
    indicator = Name(60, load_default=None)
    node = NodeId(load_default=None)     # drill down into one district's units
    source = fields.String(load_default=None, validate=validate.OneOf(COMPARED_SOURCES))
    limit = Integer(load_default=10, validate=validate.Range(1, 100))
    known = Name(40, load_default=None)  # the answer's version the caller holds (unchanged?)


class NoInput(Schema):
    pass


# -- 督办, registers and discipline counts (application.py, what the city oversees) -------------
class FollowUpEscalation(Schema):
    case_id = Ref(required=True)
    unit_id = UnitId(required=True)      # the city unit following it up
    action = fields.String(required=True, validate=validate.OneOf(
        FOLLOW_UP_ACTIONS, error="督办方式须为：%s之一" % "、".join(FOLLOW_UP_ACTIONS.labels.values())))
    note = Text(2000, required=True)
    respond_by = Date(load_default=None)


class OversightCases(Schema):
    status = fields.String(load_default="open", validate=validate.OneOf(
        ("open", "closed", "all"), error="状态须为 open（未销号）、closed（已销号）或 all"))
    origin = NodeId(load_default=None)
    limit = Integer(load_default=100, validate=validate.Range(1, 500))


class Registers(Schema):
    origin = NodeId(load_default=None)


class DisciplineByNode(Schema):
    period = fields.String(load_default=None, validate=Pattern(
        r"[0-9]{4}-Q[1-4]", error="季度格式应为 YYYY-Qn"))


class ReliefMeasure(Schema):  # 基层减负 (queries.relief_measure)
    month = Month(load_default=None)   # none: this month in the users' time zone
