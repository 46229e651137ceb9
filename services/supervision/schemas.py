"""Input schemas (marshmallow 4): unknown fields are rejected, lengths and enums enforced.

What a schema cannot know - a checklist's maximum score, the configured risk scale, an
indicator's weight - the domain checks, raising ``BadInput`` with the same kind of field
messages, so a caller sees one error shape either way.
"""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.supervision.domain import (
    CADENCES, CAMPAIGN_KINDS, DISCIPLINE_FORMS, FACT_SOURCES, FINDING_SOURCES, FOUR_WINDS,
    INSPECTION_STATUSES, KEY_POST_KINDS, MEETING_KINDS, RECTIFICATION_STATUSES, RESPONSIBLE_ROLES,
    RISK_CATEGORIES, RISK_LEVELS, SEVERITIES, TASK_STATUSES,
)
from services.supervision.settings import ESCALATION_LEVELS, POST_FLAGS
from services.supervision.evidence import REF_RE
from shared.fields import (
    AsOf, AwareDateTime, Cursor, Date, Id, Integer, Limit, Name, Pattern, Period, Text, distinct,
)

Quarter = lambda **kw: fields.String(  # noqa: E731
    validate=Pattern(r"[0-9]{4}-Q[1-4]", error="季度格式应为 YYYY-Qn"), **kw)
Offset = lambda: Integer(load_default=0, validate=validate.Range(0, 10_000_000))  # noqa: E731
SHA256 = fields.String(required=True, validate=Pattern(r"[0-9a-f]{64}",
                                                                error="64 位小写十六进制数字"))
Score = lambda **kw: fields.Float(allow_nan=False, **kw)  # noqa: E731


class Empty(Schema):
    pass


class UnitRef(Schema):
    unit_id = Id(required=True)


class SubtreeQuery(UnitRef):
    include_subtree = fields.Boolean(load_default=True)
    limit = Limit()
    offset = Offset()


# -- checklists ------------------------------------------------------------------------------
class Criterion(Schema):
    code = fields.String(required=True, validate=Pattern(r"^[a-z][a-z0-9_]{0,49}$",
                                                                 error="小写字母开头，可含 a-z、0-9、_，最多 50 个字符"))
    name = Name(100, required=True)
    max_score = Score(required=True, validate=validate.Range(min=1, max=1000))
    description = Text(1000, load_default="")


class DefineChecklist(Schema):
    checklist_id = Id(required=True)
    title = Name(200, required=True)
    criteria = fields.List(fields.Nested(Criterion), required=True,
                           validate=validate.Length(1, 50))


class ReviseChecklist(Schema):
    checklist_id = Id(load_default="default")
    title = Name(200, load_default=None)
    criteria = fields.List(fields.Nested(Criterion), required=True,
                           validate=validate.Length(1, 50))
    note = Text(1000, required=True)


class ChecklistRef(Schema):
    checklist_id = Id(load_default="default")
    version = Integer(load_default=None, validate=validate.Range(min=1))


# -- inspections ---------------------------------------------------------------------------------
class PlanInspection(Schema):
    inspection_id = Id(load_default=None)
    unit_id = Id(required=True)
    title = Name(200, required=True)
    planned_on = Date(required=True)
    checklist_id = Id(load_default="default")
    inspectors = fields.List(Id(), load_default=list, validate=validate.Length(max=20))


class PlanInspectionBatch(Schema):
    batch_id = Id(load_default=None)
    unit_ids = fields.List(Id(), required=True, validate=validate.Length(1, 500))
    title = Name(200, required=True)
    planned_on = Date(required=True)
    checklist_id = Id(load_default="default")
    inspectors = fields.List(Id(), load_default=list, validate=validate.Length(max=20))

    @validates_schema
    def distinct(self, data, **kw):
        if len(set(data["unit_ids"])) != len(data["unit_ids"]):
            raise ValidationError("同一单位出现了两次", "unit_ids")


class InspectionRef(Schema):
    inspection_id = Id(required=True)


class CriterionScore(Schema):
    criterion = fields.String(required=True, validate=validate.Length(1, 50))
    score = Score(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class ScoreInspection(InspectionRef):
    scores = fields.List(fields.Nested(CriterionScore), required=True,
                         validate=validate.Length(1, 50))


class Told(Schema):
    """Who was told on site: their role and name (names stay on the node)."""

    role = fields.String(required=True, validate=validate.OneOf(RESPONSIBLE_ROLES))
    name = Name(100, required=True)


class GiveFeedback(InspectionRef):
    told = fields.List(fields.Nested(Told), required=True, validate=validate.Length(1, 20))
    told_at = AwareDateTime(required=True)
    finding_ids = fields.List(Id(), load_default=None, validate=validate.Length(max=200))
    summary = Text(2000, required=True)


class CancelInspection(InspectionRef):
    reason = Text(500, required=True)


class ListInspections(SubtreeQuery):
    status = fields.String(load_default=None,
                           validate=validate.OneOf(INSPECTION_STATUSES))


# -- findings and rectification -----------------------------------------------------------------------
class RecordFinding(Schema):
    finding_id = Id(load_default=None)
    unit_id = Id(required=True)
    source = fields.String(required=True, validate=validate.OneOf(FINDING_SOURCES))
    source_ref = Name(200, load_default=None)
    inspection_id = Id(load_default=None)
    description = Text(2000, required=True)
    severity = fields.String(load_default="general", validate=validate.OneOf(SEVERITIES))
    category = Name(100, load_default=None)
    found_on = Date(load_default=None)
    # the rectification the finding becomes
    owner_unit_id = Id(load_default=None)
    responsible_role = fields.String(required=True, validate=validate.OneOf(RESPONSIBLE_ROLES))
    deadline = Date(required=True)
    requirement = Text(2000, load_default="")


class RectRef(Schema):
    rect_id = Id(required=True)


class EvidenceItem(Schema):
    """A reference to a file in the node's evidence store: never the file itself."""

    path = fields.String(required=True, validate=Pattern(
        REF_RE, error="证据库里的文件引用（上传 /evidence 时返回的 path），形如 ab/<sha256>.pdf"))
    sha256 = SHA256
    size_bytes = Integer(load_default=None, validate=validate.Range(min=0))
    description = fields.String(load_default="", validate=validate.Length(max=500))

    @validates_schema
    def _path_names_its_hash(self, data, **kw):
        if data["path"][3:67] != data["sha256"]:
            raise ValidationError("引用的文件名就是它的 sha256：两者不符", "path")


class SubmitEvidence(RectRef):
    evidence = fields.List(fields.Nested(EvidenceItem), required=True,
                           validate=validate.Length(1, 20))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class VerifyRectification(RectRef):
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class RejectRectification(RectRef):
    reason = Text(1000, required=True)


class ReopenRectification(RectRef):
    reason = Text(1000, required=True)
    deadline = Date(required=True)


class ExtendDeadline(RectRef):
    deadline = Date(required=True)
    reason = Text(1000, required=True)


class ListRectifications(SubtreeQuery):
    status = fields.String(load_default=None,
                           validate=validate.OneOf(RECTIFICATION_STATUSES))
    source = fields.String(load_default=None, validate=validate.OneOf(FINDING_SOURCES))


class RectificationOverview(UnitRef):
    """工作台: counts by colour over the subtree, the most urgent open ones, the units
    with the most overdue."""
    soon_days = Integer(load_default=7, validate=validate.Range(0, 365))
    limit = Integer(load_default=20, validate=validate.Range(1, 200))
    units_limit = Integer(load_default=20, validate=validate.Range(1, 500))


class RectificationBoard(UnitRef):
    """整改看板: each status column's count and one page of it (or one column's page)."""
    soon_days = Integer(load_default=7, validate=validate.Range(0, 365))
    status = fields.String(load_default=None,
                           validate=validate.OneOf(RECTIFICATION_STATUSES))
    limit = Integer(load_default=50, validate=validate.Range(1, 500))
    offset = Offset()


class OverdueList(UnitRef):
    level = fields.String(load_default=None, validate=validate.OneOf(ESCALATION_LEVELS))
    limit = Limit()
    offset = Offset()
    as_of = AsOf(load_default=None)


# -- risk points ------------------------------------------------------------------------------------
class IdentifyRiskPoint(Schema):
    risk_point_id = Id(load_default=None)
    unit_id = Id(required=True)
    description = Text(2000, required=True)
    category = fields.String(required=True, validate=validate.OneOf(RISK_CATEGORIES))
    post = Name(200, load_default=None)
    # the units service's 微权力清单 id ("<unit>/<post>") and the names of its steps
    micro_power_list_id = fields.String(load_default=None, validate=validate.Length(1, 300))
    micro_power_steps = fields.List(Name(200), load_default=list, validate=validate.Length(max=50))
    post_flags = fields.List(fields.String(validate=validate.OneOf(POST_FLAGS)),
                             load_default=list, validate=validate.Length(max=3))
    # optional first assessment in the same step (辨识 + 评估 at once)
    likelihood = Integer(load_default=None)
    impact = Integer(load_default=None)

    @validates_schema
    def both_or_neither(self, data, **kw):
        if (data.get("likelihood") is None) != (data.get("impact") is None):
            raise ValidationError("可能性与影响须同时给出或同时不给", "impact")


class RiskPointRef(Schema):
    risk_point_id = Id(required=True)


class AssessRiskPoint(RiskPointRef):
    likelihood = Integer(required=True)
    impact = Integer(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    post_flags = fields.List(fields.String(validate=validate.OneOf(POST_FLAGS)),
                             load_default=None, validate=validate.Length(max=3))


class AddControl(RiskPointRef):
    control_id = Id(load_default=None)
    measure = Text(2000, required=True)
    owner_post = Name(200, required=True)
    review_date = Date(required=True)


class ReviewControl(RiskPointRef):
    control_id = Id(required=True)
    effective = fields.Boolean(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    next_review_date = Date(required=True)


class RetireRiskPoint(RiskPointRef):
    reason = Text(1000, required=True)


class ListRiskPoints(SubtreeQuery):
    level = fields.String(load_default=None, validate=validate.OneOf(RISK_LEVELS))


# -- screening ----------------------------------------------------------------------------------------
class EstablishScreening(UnitRef):
    cadence = fields.String(load_default=None, validate=validate.OneOf(CADENCES))


class SetCadence(UnitRef):
    cadence = fields.String(required=True, validate=validate.OneOf(CADENCES))


class RecordScreening(UnitRef):
    screened_on = Date(load_default=None)
    risk_points_reviewed = Integer(load_default=0, validate=validate.Range(0, 100_000))
    new_risk_points = Integer(load_default=0, validate=validate.Range(0, 100_000))
    summary = Text(2000, required=True)


class ScreeningStatus(UnitRef):
    overdue_only = fields.Boolean(load_default=False)
    limit = Limit()
    offset = Offset()


# -- political ecology -----------------------------------------------------------------------------------
class Indicator(Schema):
    code = fields.String(required=True, validate=Pattern(r"^[a-z][a-z0-9_]{0,49}$",
                                                                 error="小写字母开头，可含 a-z、0-9、_，最多 50 个字符"))
    name = Name(100, required=True)
    weight = Score(required=True, validate=validate.Range(min=0, max=1, min_inclusive=False))
    source = fields.String(load_default="manual", validate=validate.OneOf(FACT_SOURCES))
    max_score = Score(load_default=100, validate=validate.Range(min=1, max=1000))


class Dimension(Schema):
    code = fields.String(required=True, validate=Pattern(r"^[a-z][a-z0-9_]{0,49}$",
                                                                 error="小写字母开头，可含 a-z、0-9、_，最多 50 个字符"))
    name = Name(100, required=True)
    weight = Score(required=True, validate=validate.Range(min=0, max=1, min_inclusive=False))
    indicators = fields.List(fields.Nested(Indicator), required=True,
                             validate=validate.Length(1, 50))


class ReviseIndicatorSystem(Schema):
    system_id = Id(load_default="political-ecology")
    title = Name(200, load_default=None)
    dimensions = fields.List(fields.Nested(Dimension), required=True,
                             validate=validate.Length(1, 20))
    note = Text(1000, required=True)
    effective_from = Date(load_default=None)


class IndicatorSystemRef(Schema):
    system_id = Id(load_default="political-ecology")
    version = Integer(load_default=None, validate=validate.Range(min=1))


class OpenRound(Schema):
    round_id = Id(load_default=None)
    title = Name(200, required=True)
    period = Period(required=True)
    system_id = Id(load_default="political-ecology")
    unit_id = Id(load_default=None)  # assess the department-level units under this unit
    unit_ids = fields.List(Id(), load_default=None, validate=[validate.Length(1, 2000), distinct])

    @validates_schema
    def one_of(self, data, **kw):
        if (data.get("unit_id") is None) == (data.get("unit_ids") is None):
            raise ValidationError("unit_id 与 unit_ids 须且只能给出其一", "_schema")


class RoundRef(Schema):
    round_id = Id(required=True)


class RoundScore(Schema):
    unit_id = Id(required=True)
    indicator = fields.String(required=True, validate=validate.Length(1, 50))
    score = Score(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=1000))


class RecordRoundScores(RoundRef):
    scores = fields.List(fields.Nested(RoundScore), required=True,
                         validate=validate.Length(1, 20_000))


class RoundQuery(RoundRef):
    as_of = AsOf(load_default=None)


# -- four forms ---------------------------------------------------------------------------------------------
class RecordDiscipline(Schema):
    record_id = Id(load_default=None)
    unit_id = Id(required=True)
    form = Integer(required=True, validate=validate.OneOf(DISCIPLINE_FORMS))
    person_name = Name(100, required=True)
    person_id = Id(load_default=None)
    post = Name(200, load_default=None)
    measure = Name(200, required=True)   # e.g. 谈话提醒 / 批评教育 / 诫勉
    summary = Text(4000, required=True)
    handled_on = Date(required=True)


class VoidDiscipline(Schema):
    record_id = Id(required=True)
    reason = Text(1000, required=True)


class ListDiscipline(Schema):
    unit_id = Id(load_default=None)
    period = Quarter(load_default=None)


class EscalationInbox(Schema):
    """Without ``unit_id``: the caller's own inbox (a unit-admin's subtree, the whole node
    for the other roles); with it: that unit's items (``include_subtree``: and below)."""

    unit_id = Id(load_default=None)
    include_subtree = fields.Boolean(load_default=False)
    limit = Limit()


class DisciplineCountsQuery(Schema):
    period = Quarter(load_default=None)


# -- views -------------------------------------------------------------------------------------------------
class UnitView(UnitRef):
    as_of = AsOf(load_default=None)
    limit = Limit(500, 1000)
    cursor = Cursor(load_default=None)


class UnitLists(UnitRef):
    include_subtree = fields.Boolean(load_default=False)
    as_of = AsOf(load_default=None)


class History(Schema):
    # DisciplineRecord is not listed: its history is read through list_discipline_records
    stream = fields.String(required=True, validate=validate.OneOf(
        ("Checklist", "Inspection", "Finding", "Rectification", "RiskPoint",
         "ScreeningSchedule", "MicroPowerWatch", "IndicatorSystem", "AssessmentRound",
         "EducationFacts", "UnitIndicators", "DistrictIndicators", "DisciplineCounts")))
    id = fields.String(required=True, validate=validate.Length(1, 300))


# -- 跟踪问效: task lists, tasks, 推进会 ------------------------------------------------------------
class TaskItem(Schema):
    task_id = Id(load_default=None)
    unit_id = Id(required=True)           # the responsible unit
    title = Text(500, required=True)
    standard = Text(2000, required=True)  # 标准
    deadline = Date(required=True)        # 时限


class IssueTaskList(Schema):
    list_id = Id(load_default=None)
    title = Name(200, required=True)
    issuer_unit_id = Id(required=True)
    items = fields.List(fields.Nested(TaskItem), required=True, validate=validate.Length(1, 100))


class AddTask(TaskItem):
    list_id = Id(required=True)


class TaskRef(Schema):
    task_id = Id(required=True)


class ReportTaskCompletion(TaskRef):
    summary = Text(2000, required=True)
    evidence = fields.List(fields.Nested(EvidenceItem), required=True,
                           validate=validate.Length(1, 20))


class AcceptTask(TaskRef):
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class ReturnTask(TaskRef):
    reason = Text(1000, required=True)


class ExtendTask(TaskRef):
    deadline = Date(required=True)
    reason = Text(1000, required=True)


class CancelTask(TaskRef):
    reason = Text(1000, required=True)


class ListTasks(SubtreeQuery):
    status = fields.String(load_default=None, validate=validate.OneOf(TASK_STATUSES))
    list_id = Id(load_default=None)
    meeting_id = Id(load_default=None)
    overdue_only = fields.Boolean(load_default=False)
    soon_days = Integer(load_default=7, validate=validate.Range(0, 90))  # yellow: due within


class ListRef(Schema):
    unit_id = Id(required=True)
    limit = Limit()
    offset = Offset()


class Decision(Schema):
    text = Text(1000, required=True)      # what was decided (议定事项)
    unit_id = Id(required=True)           # the responsible unit, one of those present
    standard = Text(2000, required=True)
    deadline = Date(required=True)


class HoldMeeting(Schema):
    meeting_id = Id(load_default=None)
    title = Name(200, required=True)
    kind = fields.String(load_default="joint_promotion", validate=validate.OneOf(MEETING_KINDS))
    convener_unit_id = Id(required=True)
    held_on = Date(required=True)
    unit_ids = fields.List(Id(), required=True, validate=validate.Length(1, 50))
    summary = Text(4000, load_default="")
    decisions = fields.List(fields.Nested(Decision), load_default=list,
                            validate=validate.Length(0, 100))


class AddDecision(Decision):
    meeting_id = Id(required=True)


class MeetingRef(Schema):
    meeting_id = Id(required=True)
# -- 专项整治 / 专项治理 ----------------------------------------------------------------------------
class LaunchCampaign(Schema):
    campaign_id = Id(load_default=None)
    title = Name(200, required=True)
    kind = fields.String(load_default="rectification", validate=validate.OneOf(CAMPAIGN_KINDS))
    scope_unit_id = Id(required=True)
    starts_on = Date(required=True)
    ends_on = Date(required=True)
    categories = fields.List(fields.String(validate=validate.OneOf(FOUR_WINDS)),
                             load_default=list, validate=validate.Length(0, len(FOUR_WINDS)))
    description = Text(4000, load_default="")


class CampaignRef(Schema):
    campaign_id = Id(required=True)


class TagFinding(CampaignRef):
    finding_id = Id(required=True)
    four_winds = fields.String(load_default=None, validate=validate.OneOf(FOUR_WINDS))


class RecordCampaignFinding(RecordFinding):
    """record_finding's fields, and the campaign and 四风 category it is tagged with."""
    campaign_id = Id(required=True)
    four_winds = fields.String(load_default=None, validate=validate.OneOf(FOUR_WINDS))


class CloseCampaign(CampaignRef):
    summary = Text(4000, required=True)


class CampaignProgress(CampaignRef):
    soon_days = Integer(load_default=7, validate=validate.Range(0, 90))


# -- 重点岗位 / 一把手 -------------------------------------------------------------------------------
class FlagKeyPost(Schema):
    unit_id = Id(required=True)
    post = Name(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KEY_POST_KINDS))
    reason = Text(1000, load_default="")


class ClearKeyPost(Schema):
    unit_id = Id(required=True)
    post = Name(200, required=True)
    reason = Text(1000, required=True)


class FocusInspection(Schema):
    inspection_id = Id(required=True)
    post = Name(200, required=True)


class KeyPostQuery(UnitRef):
    include_subtree = fields.Boolean(load_default=True)
    kind = fields.String(load_default=None, validate=validate.OneOf(KEY_POST_KINDS))


class KeyPostAssessment(Schema):
    round_id = Id(required=True)


# -- end of 跟踪问效 (H7) --


# -- 群众监督 -----------------------------------------------------------------------------------
from services.supervision.domain import PUBLIC_REPORT_KINDS, PUBLIC_REPORT_STATUSES  # noqa: E402


class SubmitPublicReport(Schema):
    unit_id = Id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(
        PUBLIC_REPORT_KINDS, error=PUBLIC_REPORT_KINDS.error()))
    content = Text(2000, required=True)
    post = Name(200, load_default=None)
    contact = Name(200, load_default=None)   # optional: no personal data is required


class PublicReportRef(Schema):
    report_id = Id(required=True)


class ConvertPublicReport(PublicReportRef):
    description = Text(2000, load_default=None)   # default: the report's own words
    severity = fields.String(load_default="general", validate=validate.OneOf(SEVERITIES))
    owner_unit_id = Id(load_default=None)
    responsible_role = fields.String(required=True, validate=validate.OneOf(RESPONSIBLE_ROLES))
    deadline = Date(required=True)
    requirement = Text(2000, load_default="")


class DismissPublicReport(PublicReportRef):
    reason = Text(1000, required=True)


class ListPublicReports(Schema):
    unit_id = Id(required=True)
    status = fields.String(load_default=None, validate=validate.OneOf(
        PUBLIC_REPORT_STATUSES, error=PUBLIC_REPORT_STATUSES.error()))
