"""监督 - supervision. Pure domain code: aggregates, their events and the rules they keep.

Aggregates (each its own stream):
* ``Checklist`` 检查督导评分表: criteria as data, versioned; an inspection keeps the version
  (and a copy of its criteria) it was planned with.
* ``Inspection`` 检查督导: a planned visit to one unit, scored per criterion, with the
  findings noted on site and the 现场反馈 given before it can be completed.
* ``Finding`` 问题: what was found and where it came from (inspection, cross-supervision,
  audit, judicial, financial, public report).
* ``Rectification`` 限期整改: one per finding; open → evidence_submitted → closed, or
  rejected back to open; reopenable; overdue detection and the escalation ladder.
* ``RiskPoint`` 廉政风险点: identified per unit and post, assessed (likelihood × impact,
  weighted for sensitive posts, history kept), controlled (防控措施).
* ``ScreeningSchedule`` 风险排查计划: one per unit, calendar periods, overdue flag.
* ``MicroPowerWatch``: whether a window / law-enforcement unit has published its 微权力清单.
* ``IndicatorSystem`` 政治生态研判指标体系 and ``AssessmentRound`` 研判轮次.
* ``DisciplineRecord`` 四种形态 (private) and ``DisciplineCounts`` (the counts that leave).
* ``EducationFacts``: the education service's monthly indicators, recorded locally.
* ``UnitIndicators`` / ``DistrictIndicators``: figures published for 上下互比.

Dates in payloads are ISO strings (``YYYY-MM-DD``); "today" is always passed in by the
caller (the unit of work's clock in the users' time zone), never read here.
"""
from __future__ import annotations

from datetime import date, timedelta

from typing import Annotated

from shared.aggregate import Aggregate, IdStr, DateStr, DateTimeStr, MonthStr, NonEmptyStr, Count, OneOf
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation
# ESCALATION_LEVELS: the ladder's levels are configured in settings; named here too so the label
# catalogue (which reads domain modules) has them for the 督办 records of tasks and rectifications
from services.supervision.settings import CADENCE_MONTHS, ESCALATION_LEVELS, POST_FLAGS
from shared.labels import Choices
from shared.months import month_final

# -- vocabularies ------------------------------------------------------------------------
FINDING_SOURCES = Choices("问题来源", {
    "inspection": "检查督导",
    "department_to_department": "部门对部门",
    "community_to_department": "社区对部门",
    "enterprise_to_department": "企业对部门",
    "audit": "审计监督",
    "judicial": "司法监督",
    "financial": "财务监督",
    "public_report": "群众监督",
})
SEVERITIES = Choices("严重程度", {"minor": "轻微", "general": "一般", "serious": "严重"})
# The same role codes as the units service's people (no import: services stay separable).
RESPONSIBLE_ROLES = Choices("责任人职务", {"party_secretary": "党组织书记", "unit_head": "单位负责人",
                                         "discipline_member": "纪检委员", "cadre": "干部",
                                         "member": "党员"})
CADENCES = Choices("排查周期", {"monthly": "每月", "quarterly": "每季度",
                                "half_yearly": "每半年", "yearly": "每年"})  # of CADENCE_MONTHS
RISK_LEVELS = Choices("风险等级", {"high": "高", "medium": "中", "low": "低"})
LEVEL_COLOURS = {"high": "red", "medium": "yellow", "low": "green"}
RISK_CATEGORIES = Choices("风险类别", {
    "political": "政治风险",
    "post_duty": "岗位职责风险",
    "procedure": "制度机制、业务流程风险",
    "external": "外部环境风险",
    "ideological": "思想道德风险",
})
# Facts the platform has that an indicator may be scored from instead of by hand.
FACT_SOURCES = Choices("指标数据来源", {
    "manual": "人工评分",
    "rectification_closure_rate": "整改完成率",
    "rectification_timeliness": "整改及时率",
    "screening_on_time": "风险排查按时率",
    "education_compliance": "廉政教育落实",   # education service
    "inspection_score": "检查督导得分率",
})
INSPECTION_STATUSES = Choices("检查状态", {"planned": "已计划", "completed": "已完成",
                                          "cancelled": "已取消"})
ROUND_STATUSES = Choices("研判轮次状态", {"open": "评分中", "finalized": "已定稿"})
# a screening against its schedule (ScreeningSchedule.ScreeningRecorded)
SCREENING_STATUSES = Choices("排查情况", {"on_time": "按期排查", "late": "逾期排查", "extra": "提前排查"})
RECTIFICATION_STATUSES = Choices("整改状态", {"open": "整改中", "evidence_submitted": "已提交佐证",
                                             "closed": "已销号"})
DISCIPLINE_FORMS = (1, 2, 3, 4)  # 第一种形态 ... 第四种形态
DISCIPLINE_FORM_NAMES = {
    1: "第一种形态 (批评和自我批评、约谈函询, 咬耳扯袖)",
    2: "第二种形态 (党纪轻处分、组织调整)",
    3: "第三种形态 (党纪重处分、重大职务调整)",
    4: "第四种形态 (严重违纪涉嫌违法立案审查)",
}

DEFAULT_CHECKLIST_ID = "default"
DEFAULT_CRITERIA = (
    {"code": "prescribed_actions", "name": "规定动作全不全", "max_score": 25,
     "description": "上级部署的规定动作是否全部落实、有无缺项"},
    {"code": "optional_actions", "name": "自选动作实不实", "max_score": 25,
     "description": "结合本单位实际的自选动作是否务实管用、有无形式主义"},
    {"code": "business_integration", "name": "业务融合紧不紧", "max_score": 25,
     "description": "清廉机关建设与业务工作、模范机关创建是否深度融合"},
    {"code": "rectification_speed", "name": "问题整改快不快", "max_score": 25,
     "description": "以往发现问题是否按期整改到位"},
)

DEFAULT_INDICATOR_SYSTEM_ID = "political-ecology"
DEFAULT_DIMENSIONS = (
    {"code": "integrity_building", "name": "清廉机关建设情况", "weight": 0.5, "indicators": [
        {"code": "closure_rate", "name": "问题整改完成率", "weight": 0.25,
         "source": "rectification_closure_rate", "max_score": 100},
        {"code": "timeliness", "name": "问题整改及时率", "weight": 0.2,
         "source": "rectification_timeliness", "max_score": 100},
        {"code": "screening", "name": "廉政风险排查按时率", "weight": 0.2,
         "source": "screening_on_time", "max_score": 100},
        {"code": "education", "name": "廉政教育落实情况", "weight": 0.15,
         "source": "education_compliance", "max_score": 100},
        {"code": "inspection", "name": "检查督导得分", "weight": 0.2,
         "source": "inspection_score", "max_score": 100},
    ]},
    {"code": "leadership", "name": "领导班子团结干事创业情况", "weight": 0.3, "indicators": [
        {"code": "unity", "name": "班子团结、民主集中制执行", "weight": 0.4,
         "source": "manual", "max_score": 100},
        {"code": "enterprise", "name": "担当作为、干事创业", "weight": 0.35,
         "source": "manual", "max_score": 100},
        {"code": "life_meeting", "name": "民主生活会、组织生活会质量", "weight": 0.25,
         "source": "manual", "max_score": 100},
    ]},
    {"code": "civility", "name": "精神文明创建情况", "weight": 0.2, "indicators": [
        {"code": "civilisation", "name": "文明单位创建", "weight": 0.5,
         "source": "manual", "max_score": 100},
        {"code": "integrity_culture", "name": "廉洁文化氛围", "weight": 0.5,
         "source": "manual", "max_score": 100},
    ]},
)

WEIGHT_TOLERANCE = 1e-6


# -- dates and periods -------------------------------------------------------------------
def parse_date(value: str) -> date:
    return date.fromisoformat(value)


def period_of(day: date, cadence: str) -> str:
    """The calendar period containing ``day``: 2024-03 / 2024-Q1 / 2024-H1 / 2024."""
    months = CADENCE_MONTHS[cadence]
    index = (day.month - 1) // months + 1
    if months == 1:
        return "%04d-%02d" % (day.year, day.month)
    if months == 3:
        return "%04d-Q%d" % (day.year, index)
    if months == 6:
        return "%04d-H%d" % (day.year, index)
    return "%04d" % day.year


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a period label (any of the four forms)."""
    year = int(period[:4])
    if len(period) == 4:
        start_month, months = 1, 12
    elif period[5] == "Q":
        start_month, months = (int(period[6]) - 1) * 3 + 1, 3
    elif period[5] == "H":
        start_month, months = (int(period[6]) - 1) * 6 + 1, 6
    else:
        start_month, months = int(period[5:7]), 1
    start = date(year, start_month, 1)
    end_month = start_month + months
    end = (date(year + 1, 1, 1) if end_month > 12 else date(year, end_month, 1)) - timedelta(days=1)
    return start, end


def next_period(period: str, cadence: str) -> str:
    _, end = period_bounds(period)
    return period_of(end + timedelta(days=1), cadence)


def months_in(period: str) -> list[str]:
    start, end = period_bounds(period)
    out, y, m = [], start.year, start.month
    while date(y, m, 1) <= end:
        out.append("%04d-%02d" % (y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# -- the unit facts a command decides with ------------------------------------------------
# ``unit``: the unit directory's row (unit_id, path, level, active...), read by the service
# layer (``uow.supervision.unit(id)``) and passed in.
def require_active(unit: dict, field: str = "unit_id") -> dict:
    """Nothing new is recorded for a unit no longer in use (停用, e.g. 撤并)."""
    if not unit["active"]:
        raise RuleViolation("单位「%s」已停用" % unit["unit_id"], {field: ["已停用"]})
    return unit


def require_not_future(day: str, today: str, field: str) -> None:
    """What happened (a finding found, a screening done) did not happen after today."""
    if day > today:
        raise BadInput("%s 晚于今天" % field, {field: ["晚于今天（%s）" % today]})


# levels that get a screening schedule: departments, secondary units and 基层站所 (the
# report's cause #2 is supervision that stops at the department and never reaches them)
SCREENED_LEVELS = ("unit",)


class _BuiltIn:
    """A definition with a built-in default (``default()``, id ``DEFAULT_ID``), recorded
    with the first plan or round that uses it."""
    DEFAULT_ID: str
    WHAT: str  # what it is called in a 404

    @classmethod
    def default_for(cls, record_id: str):
        """What a plan or round uses when ``record_id`` is not recorded: the built-in
        default - any other id must have been defined."""
        if record_id != cls.DEFAULT_ID:
            raise NotFound("%s「%s」不存在" % (cls.WHAT, record_id))
        return cls.default()


# -- checklist ---------------------------------------------------------------------------
def _check_criteria(criteria: list[dict]) -> None:
    codes = [c["code"] for c in criteria]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise BadInput("考核标准的编号不能重复",
                       {"criteria": ["编号重复：%s" % ", ".join(dupes)]})


# payload field types several events share
Criteria = Annotated[list, {
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "name", "max_score", "description"],
        "properties": {
            "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,49}$"},
            "name": {"type": "string", "minLength": 1},
            "max_score": {"type": "number", "exclusiveMinimum": 0},
            "description": {"type": "string"},
        },
    },
    "minItems": 1,
}]
Inspectors = Annotated[list, {
    "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}$"},
}]
MaxScore = Annotated[float, {"exclusiveMinimum": 0}]
Percent = Annotated[float, {"minimum": 0, "maximum": 100}]
PostFlags = Annotated[list, {
    "items": {"enum": list(POST_FLAGS)},
    "uniqueItems": True,
}]
DuePeriod = Annotated[str, {"pattern": "^\\d{4}(-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?$"}]
Dimensions = Annotated[list, {
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "name", "weight", "indicators"],
        "properties": {
            "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,49}$"},
            "name": {"type": "string", "minLength": 1},
            "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "indicators": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["code", "name", "weight", "source", "max_score"],
                    "properties": {
                        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,49}$"},
                        "name": {"type": "string", "minLength": 1},
                        "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "source": {
                            "enum": list(FACT_SOURCES),
                        },
                        "max_score": {"type": "number", "exclusiveMinimum": 0},
                    },
                },
                "minItems": 1,
            },
        },
    },
    "minItems": 1,
}]
Rate = Annotated[float, {"minimum": 0, "maximum": 1}]
Quarter = Annotated[str, {"pattern": "^\\d{4}-Q[1-4]$"}]


class Checklist(_BuiltIn, Aggregate):
    """检查督导评分表. Each revision is a new version; old versions stay readable so an
    inspection planned under version 1 is scored under version 1."""
    DEFAULT_ID, WHAT = DEFAULT_CHECKLIST_ID, "检查清单"

    class Defined(Aggregate.Event):
        """检查督导评分表 defined (version 1): its criteria as data."""
        checklist_id: IdStr
        title: NonEmptyStr
        version: Annotated[int, {"const": 1}]
        criteria: Criteria

        def apply(self, c):
            c.title = self.title
            c.versions = {str(self.version): self.criteria}
            c.current = self.version

    class Revised(Aggregate.Event):
        """A new version of a checklist (criteria added or changed); earlier inspections keep theirs."""
        checklist_id: IdStr
        title: NonEmptyStr
        version: Annotated[int, {"minimum": 2}]
        criteria: Criteria
        note: NonEmptyStr

        def apply(self, c):
            c.title = self.title
            c.versions[str(self.version)] = self.criteria
            c.current = self.version

    @classmethod
    def define(cls, checklist_id: str, title: str, criteria: list[dict]):
        _check_criteria(criteria)
        c = cls(checklist_id)
        c.trigger(cls.Defined, checklist_id=checklist_id, title=title, version=1,
                  criteria=[dict(x) for x in criteria])
        return c

    @classmethod
    def default(cls):
        return cls.define(DEFAULT_CHECKLIST_ID, "清廉机关建设检查督导评分表", list(DEFAULT_CRITERIA))

    def criteria(self, version: int | None = None) -> list[dict]:
        return self.versions[str(version or self.current)]

    def revise(self, title: str, criteria: list[dict], note: str):
        _check_criteria(criteria)
        if title == self.title and criteria == self.criteria():
            raise RuleViolation("修订内容与当前版本相同，没有任何改动")
        self.trigger(self.Revised, checklist_id=self.id, title=title, version=self.current + 1,
                     criteria=[dict(x) for x in criteria], note=note)


# -- inspections -----------------------------------------------------------------------------
class Inspection(Aggregate):
    class Planned(Aggregate.Event):
        """检查督导 of one unit planned, with the checklist version (and a copy of its criteria) it is scored under."""
        inspection_id: IdStr
        unit_id: IdStr
        title: NonEmptyStr
        planned_on: DateStr
        batch_id: IdStr | None
        checklist_id: IdStr
        checklist_version: Annotated[int, {"minimum": 1}]
        criteria: Criteria
        inspectors: Inspectors

        def apply(self, i):
            i.unit_id = self.unit_id
            i.criteria = self.criteria
            i.checklist_version = self.checklist_version
            i.status = "planned"
            i.scores = {}
            i.findings = []
            i.fed_back = []
            i.feedback_count = 0

    class CriterionScored(Aggregate.Event):
        """One criterion scored (0..max_score of the planned version), with the deduction note."""
        inspection_id: IdStr
        unit_id: IdStr
        criterion: Annotated[str, {"pattern": "^[a-z][a-z0-9_]{0,49}$"}]
        score: Annotated[float, {"minimum": 0}]
        max_score: MaxScore
        note: str

        def apply(self, i):
            i.scores[self.criterion] = self.score

    class FindingNoted(Aggregate.Event):
        """A finding recorded on site during this inspection."""
        inspection_id: IdStr
        unit_id: IdStr
        finding_id: IdStr

        def apply(self, i):
            i.findings.append(self.finding_id)

    class FeedbackGiven(Aggregate.Event):
        """现场反馈: who at the unit was told, when, about which findings. Names people."""
        inspection_id: IdStr
        unit_id: IdStr
        told: Annotated[list, {
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["role", "name"],
                "properties": {
                    "role": {
                        "enum": list(RESPONSIBLE_ROLES),
                    },
                    "name": {"type": "string", "minLength": 1},
                },
            },
            "minItems": 1,
        }]
        told_at: DateTimeStr
        finding_ids: Inspectors
        summary: NonEmptyStr


        private = True

        def apply(self, i):
            i.fed_back = sorted(set(i.fed_back) | set(self.finding_ids))
            i.feedback_count += 1

    class Completed(Aggregate.Event):
        """Inspection closed: every criterion scored, every finding fed back."""
        inspection_id: IdStr
        unit_id: IdStr
        completed_on: DateStr
        total_score: Annotated[float, {"minimum": 0}]
        max_score: MaxScore
        percent: Percent
        findings: Count

        def apply(self, i):
            i.status = "completed"

    class Cancelled(Aggregate.Event):
        """Inspection cancelled before any finding was recorded."""
        inspection_id: IdStr
        unit_id: IdStr
        reason: NonEmptyStr

        def apply(self, i):
            i.status = "cancelled"

    @classmethod
    def plan(cls, inspection_id, unit_id, title, planned_on, checklist: Checklist,
             batch_id=None, inspectors=(), *, taken: bool = False):
        """``taken``: the inspection id is in use."""
        if taken:
            raise Conflict("检查「%s」已存在" % inspection_id, {"inspection_id": ["已被占用"]})
        i = cls(inspection_id)
        i.trigger(cls.Planned, inspection_id=inspection_id, unit_id=unit_id, title=title,
                  planned_on=planned_on, batch_id=batch_id, checklist_id=checklist.id,
                  checklist_version=checklist.current, criteria=checklist.criteria(),
                  inspectors=list(inspectors))
        return i

    def _require_open(self, doing: str):
        if self.status != "planned":
            raise RuleViolation("无法%s：该检查当前为「%s」" % (doing, INSPECTION_STATUSES.label(self.status)))

    def score(self, scores: list[dict]):
        """Score criteria of the version planned with; a deduction needs a note (扣分说明)."""
        self._require_open("评分")
        by_code = {c["code"]: c for c in self.criteria}
        errors = {}
        for n, s in enumerate(scores):
            c = by_code.get(s["criterion"])
            if c is None:
                errors["scores.%d.criterion" % n] = [
                    "不在第 %d 版检查清单中（可选：%s）" % (self.checklist_version, "、".join(by_code))]
            elif not 0 <= s["score"] <= c["max_score"]:
                errors["scores.%d.score" % n] = ["「%s」的得分须在 0 到 %s 之间"
                                                 % (c["name"], c["max_score"])]
            elif s["score"] < c["max_score"] and not (s.get("note") or "").strip():
                errors["scores.%d.note" % n] = ["扣分时必须填写扣分说明"]
        if errors:
            raise BadInput("评分与检查清单不符", errors)
        for s in scores:
            c = by_code[s["criterion"]]
            self.trigger(self.CriterionScored, inspection_id=self.id, unit_id=self.unit_id,
                         criterion=c["code"], score=s["score"], max_score=c["max_score"],
                         note=s.get("note") or "")

    def note_finding(self, finding_id: str, unit_id: str | None = None):
        """A finding recorded on site; ``unit_id``, the unit it was found in, must be the
        one inspected (None: it is)."""
        if unit_id is not None and unit_id != self.unit_id:
            raise RuleViolation("检查「%s」属于单位「%s」" % (self.id, self.unit_id),
                                {"inspection_id": ["检查的是另一个单位"]})
        self._require_open("记录问题")
        self.trigger(self.FindingNoted, inspection_id=self.id, unit_id=self.unit_id,
                     finding_id=finding_id)

    def give_feedback(self, told: list[dict], told_at: str, finding_ids: list[str] | None,
                      summary: str):
        self._require_open("反馈检查意见")
        if finding_ids is None:
            finding_ids = [f for f in self.findings if f not in self.fed_back]
        unknown = [f for f in finding_ids if f not in self.findings]
        if unknown:
            raise RuleViolation("问题「%s」不是在本次检查中记录的"
                                % ", ".join(unknown), {"finding_ids": ["不属于本次检查"]})
        self.trigger(self.FeedbackGiven, inspection_id=self.id, unit_id=self.unit_id,
                     told=told, told_at=told_at, finding_ids=list(finding_ids), summary=summary)

    def complete(self, completed_on: str):
        self._require_open("完成检查")
        missing = [c["code"] for c in self.criteria if c["code"] not in self.scores]
        if missing:
            raise RuleViolation("以下考核标准尚未评分：%s" % "、".join(
                c["name"] for c in self.criteria if c["code"] in missing))
        not_told = [f for f in self.findings if f not in self.fed_back]
        if not_told:
            raise RuleViolation("还有 %d 个问题尚未现场反馈，请先记录现场反馈" % len(not_told))
        total = sum(self.scores.values())
        maximum = sum(c["max_score"] for c in self.criteria)
        self.trigger(self.Completed, inspection_id=self.id, unit_id=self.unit_id,
                     completed_on=completed_on, total_score=total, max_score=maximum,
                     percent=round(100.0 * total / maximum, 2) if maximum else 0.0,
                     findings=len(self.findings))

    def cancel(self, reason: str):
        self._require_open("取消检查")
        if self.findings:
            raise RuleViolation("该检查有 %d 个问题正在整改，不能取消" % len(self.findings))
        self.trigger(self.Cancelled, inspection_id=self.id, unit_id=self.unit_id, reason=reason)


# -- findings and rectification -----------------------------------------------------------------
class Finding(Aggregate):
    class Recorded(Aggregate.Event):
        """A problem found in a unit, with its source (inspection, cross-supervision, audit, judicial, financial, public report)."""
        finding_id: IdStr
        unit_id: IdStr
        source: OneOf(FINDING_SOURCES)
        source_ref: NonEmptyStr | None
        inspection_id: IdStr | None
        description: NonEmptyStr
        severity: OneOf(SEVERITIES)
        category: NonEmptyStr | None
        found_on: DateStr

        def apply(self, f):
            f.unit_id = self.unit_id
            f.source = self.source

    @classmethod
    def record(cls, finding_id, unit_id, source, description, severity, found_on,
               inspection_id=None, source_ref=None, category=None, *, taken: bool = False):
        """``taken``: the finding id is in use."""
        if taken:
            raise Conflict("问题「%s」已存在" % finding_id, {"finding_id": ["已被占用"]})
        if (source == "inspection") != (inspection_id is not None):
            raise BadInput("检查发现的问题必须注明所属检查，其他来源的问题不能注明",
                           {"inspection_id": ["来源为检查时必填，其他来源不得填写"]})
        f = cls(finding_id)
        f.trigger(cls.Recorded, finding_id=finding_id, unit_id=unit_id, source=source,
                  source_ref=source_ref, inspection_id=inspection_id, description=description,
                  severity=severity, category=category, found_on=found_on)
        return f


def require_owner_within(unit: dict, owner: dict) -> None:
    """A finding's rectification is owned by the unit it was found in or one below it
    (their directory rows)."""
    if not owner["path"].startswith(unit["path"]):
        raise RuleViolation("整改责任单位必须是被查出问题的单位或其下级单位",
                            {"owner_unit_id": ["不是「%s」或其下级单位" % unit["unit_id"]]})


def days_overdue(deadline: str, status: str, submitted_on: str | None, today: str) -> int:
    """How many days an overdue rectification is past its deadline on ``today``.

    An open one keeps counting every day, after the ladder's last rung too (the count is
    not the one recorded with the last escalation); once evidence is in, the count stops
    at the day it came, since the next move is the inspector's.
    """
    until = today if status == "open" or not submitted_on else min(submitted_on, today)
    return max(0, (parse_date(until) - parse_date(deadline)).days)


def due_escalations(ladder, days_overdue: int, reached: int) -> list[tuple[int, dict]]:
    """Ladder steps (1-based index, step) due at ``days_overdue`` and not reached yet."""
    return [(n, step) for n, step in enumerate(ladder, start=1)
            if n > reached and days_overdue >= step["after_days"]]


def district_office_of(path_units: list[dict]) -> str:
    """The unit the ladder's ``district_office`` rung reaches for a rectification whose
    owner sits at the end of ``path_units`` (its ancestors, root first, each with
    ``unit_id`` and ``level``): the district's own office - the topmost unit of level
    ``district`` on the path (区直机关工委) - not whatever city unit the district's tree
    hangs under on this node. A tree with no district-level unit falls back to its root."""
    for unit in path_units:
        if unit.get("level") == "district":
            return unit["unit_id"]
    return path_units[0]["unit_id"]


def ladder_targets(owner_unit_id: str, path_units: list[dict],
                   district_office_unit_id: str | None = None) -> dict:
    """Whom each level of the escalation ladder reaches for a record owned by
    ``owner_unit_id`` (``path_units``: the units on its path, root first, with their
    ``level``): the owner unit, its head and 纪检委员, the district office (the one
    configured, or ``district_office_of`` the path), the city."""
    office = district_office_unit_id or district_office_of(path_units)
    return {
        "owner_unit": {"unit_id": owner_unit_id},
        "unit_head": {"unit_id": owner_unit_id, "roles": ["unit_head", "discipline_member"]},
        "district_office": {"unit_id": office},
        "city": {"city": True},
    }


def inbox_scope(unit_id: str | None, unit_path: str | None, include_subtree: bool, *,
                scoped: bool, scope_path: str | None, privileged: bool,
                unit_admin: bool) -> tuple[str | None, str | None]:
    """What the escalation inbox shows a reader: (path prefix or None for the whole node,
    one unit exactly or None). ``unit_id`` / ``unit_path``: the unit asked for (None: none
    asked; its path None: not in the directory); ``scoped`` / ``scope_path``: the reader
    has a unit scope, and its path (None: not in the directory); ``privileged``: a
    node-admin, inspector or viewer, who read the whole node; a unit-admin otherwise sees
    only their subtree."""
    subtree_only = unit_admin and not privileged
    if scoped and not privileged and scope_path is None:
        raise Forbidden("您的管理范围内没有单位")
    if unit_id is None:
        return (scope_path if subtree_only else None), None
    if unit_path is None:
        raise NotFound("单位「%s」不存在" % unit_id, {"unit_id": ["不存在"]})
    if subtree_only and not unit_path.startswith(scope_path or "\x00"):
        raise Forbidden("单位「%s」不在您的管理范围内" % unit_id)
    return (unit_path, None) if include_subtree else (None, unit_id)


def rung_audience(level: str, target: dict) -> str:
    """Who a ladder rung's inbox item is for, in words (责任单位 / 单位负责人、纪检委员 ...)."""
    if level == "unit_head":
        return "单位负责人、纪检委员"
    return {"owner_unit": "整改责任单位", "district_office": "区直机关工委",
            "city": "市级"}.get(level, level)


def referral_trail(trail: list[dict]) -> list[dict]:
    """What the city is told happened to an escalated rectification, oldest first: the
    deadline, overdue, every rung climbed (and later, progress). Dates and codes only -
    never who submitted or judged evidence."""
    return [{k: v for k, v in t.items() if k in ("on", "what", "step", "level", "days_overdue",
                                                  "deadline")} for t in trail]


class Rectification(Aggregate):
    """限期整改 of one finding (same id as the finding)."""

    class Opened(Aggregate.Event):
        """限期整改 opened for a finding: owner unit, responsible role, deadline."""
        rect_id: IdStr
        finding_id: IdStr
        unit_id: IdStr
        finding_unit_id: IdStr
        responsible_role: OneOf(RESPONSIBLE_ROLES)
        deadline: DateStr
        requirement: str

        def apply(self, r):
            r.unit_id = self.unit_id
            r.finding_unit_id = self.finding_unit_id
            r.deadline = self.deadline
            r.status = "open"
            r.evidence = []
            r.submitted_by = None
            r.submitted_on = None
            r.overdue = False
            r.escalation_step = 0
            r.trail = []
            r.referred = False

    class EvidenceSubmitted(Aggregate.Event):
        """Evidence by reference (path + sha256) - the files stay in the node's store."""
        rect_id: IdStr
        unit_id: IdStr
        evidence: Annotated[list, {
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "sha256", "size_bytes", "description"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "size_bytes": {"type": ["integer", "null"], "minimum": 0},
                    "description": {"type": "string"},
                },
            },
            "minItems": 1,
        }]
        note: str
        submitted_on: DateStr
        submitted_by: NonEmptyStr


        private = True

        def apply(self, r):
            r.status = "evidence_submitted"
            r.evidence = self.evidence
            r.submitted_by = self.submitted_by
            r.submitted_on = self.submitted_on

    class Verified(Aggregate.Event):
        """验收销号: evidence accepted, rectification closed; on_time if the evidence came by the deadline."""
        rect_id: IdStr
        unit_id: IdStr
        verified_on: DateStr
        verified_by: NonEmptyStr
        note: str
        deadline: DateStr
        on_time: bool

        def apply(self, r):
            r.status = "closed"

    class Rejected(Aggregate.Event):
        """Evidence rejected: the rectification is open again, with the reason."""
        rect_id: IdStr
        unit_id: IdStr
        reason: NonEmptyStr
        rejected_on: DateStr
        rejected_by: NonEmptyStr

        def apply(self, r):
            r.status = "open"

    class Reopened(Aggregate.Event):
        """A closed rectification reopened with a reason and a new deadline."""
        rect_id: IdStr
        unit_id: IdStr
        reason: NonEmptyStr
        reopened_on: DateStr
        deadline: DateStr

        def apply(self, r):
            r.status = "open"
            r.deadline = self.deadline
            r.overdue = False
            r.escalation_step = 0
            r.trail = []  # a fresh ladder

    class DeadlineExtended(Aggregate.Event):
        """延期: a later deadline; the escalation ladder starts again from it."""
        rect_id: IdStr
        unit_id: IdStr
        previous_deadline: DateStr
        deadline: DateStr
        reason: NonEmptyStr
        extended_on: DateStr

        def apply(self, r):
            r.deadline = self.deadline
            r.overdue = False
            r.escalation_step = 0
            r.trail = []  # a fresh ladder

    class OverdueDetected(Aggregate.Event):
        """The system found the rectification open past its deadline."""
        rect_id: IdStr
        unit_id: IdStr
        deadline: DateStr
        detected_on: DateStr
        days_overdue: Annotated[int, {"minimum": 1}]

        def apply(self, r):
            r.overdue = True
            r.trail = [{"on": self.detected_on, "what": "overdue", "deadline": self.deadline,
                        "days_overdue": self.days_overdue}]

    class Escalated(Aggregate.Event):
        """One step of the escalation ladder reached (owner unit -> unit head / 纪检委员 -> district office -> city, which also gets the case)."""
        rect_id: IdStr
        unit_id: IdStr
        step: Annotated[int, {"minimum": 1}]
        level: OneOf(ESCALATION_LEVELS)
        target: Annotated[dict, {
            "additionalProperties": False,
            "properties": {
                "unit_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}$"},
                "roles": {
                    "type": "array",
                    "items": {
                        "enum": list(RESPONSIBLE_ROLES),
                    },
                },
                "counts_only": {"type": "boolean"},  # the city rung before it got the case
                "city": {"type": "boolean"},         # the city rung (ReferredToCity follows)
            },
        }]
        days_overdue: Annotated[int, {"minimum": 1}]
        escalated_on: DateStr
        deadline: DateStr

        def apply(self, r):
            r.escalation_step = self.step
            r.trail = list(getattr(r, "trail", [])) + [
                {"on": self.escalated_on, "what": "escalated", "step": self.step,
                 "level": self.level, "days_overdue": self.days_overdue}]

    class ReferredToCity(Aggregate.Event):
        """The ladder's city rung: the case itself (what, which unit, how late, the trail)
        goes up to the city, where it can be followed up (督办). No person, no evidence."""

        rect_id: str
        unit_id: str
        unit_name: str | None
        description: str
        severity: str
        source: str
        category: str | None
        requirement: str | None
        found_on: str            # ISO date
        deadline: str            # ISO date
        days_overdue: int
        referred_on: str         # ISO date
        trail: list

        def apply(self, r):
            r.referred = True

    @classmethod
    def open(cls, finding: Finding, owner_unit_id, responsible_role, deadline, found_on,
             requirement=""):
        if deadline < found_on:
            raise BadInput("整改期限早于问题发现日期",
                           {"deadline": ["不得早于 %s" % found_on]})
        r = cls(finding.id)
        r.trigger(cls.Opened, rect_id=finding.id, finding_id=finding.id, unit_id=owner_unit_id,
                  finding_unit_id=finding.unit_id, responsible_role=responsible_role,
                  deadline=deadline, requirement=requirement)
        return r

    def submit_evidence(self, evidence: list[dict], note: str, submitted_on: str, by: str):
        if self.status == "closed":
            raise RuleViolation("该整改已销号，请先重新打开")
        if self.status == "evidence_submitted":
            raise RuleViolation("整改材料已提交，正在等待核查")
        self.trigger(self.EvidenceSubmitted, rect_id=self.id, unit_id=self.unit_id,
                     evidence=evidence, note=note, submitted_on=submitted_on, submitted_by=by)

    def _require_evidence(self, doing: str, by: str):
        if self.status == "closed":
            raise RuleViolation("该整改已经销号")
        if self.status != "evidence_submitted" or not self.evidence:
            raise RuleViolation("无法%s：尚未提交整改材料" % doing)
        if by == self.submitted_by:
            # 四眼原则: whoever submitted the evidence does not also judge it
            raise RuleViolation("不能%s自己提交的整改材料" % doing)

    def verify(self, verified_on: str, by: str, note: str):
        self._require_evidence("核查通过", by)
        self.trigger(self.Verified, rect_id=self.id, unit_id=self.unit_id, verified_on=verified_on,
                     verified_by=by, note=note, deadline=self.deadline,
                     # on time if the evidence that closed it came in by the deadline
                     on_time=self.submitted_on <= self.deadline)

    def reject(self, reason: str, rejected_on: str, by: str):
        self._require_evidence("退回", by)
        self.trigger(self.Rejected, rect_id=self.id, unit_id=self.unit_id, reason=reason,
                     rejected_on=rejected_on, rejected_by=by)

    def reopen(self, reason: str, deadline: str, today: str):
        if self.status != "closed":
            raise RuleViolation("只有已销号的整改才能重新打开（当前为「%s」）"
                                % RECTIFICATION_STATUSES.label(self.status))
        if deadline < today:
            raise RuleViolation("新的整改期限已经过去", {"deadline": ["早于今天"]})
        self.trigger(self.Reopened, rect_id=self.id, unit_id=self.unit_id, reason=reason,
                     reopened_on=today, deadline=deadline)

    def extend_deadline(self, deadline: str, reason: str, today: str):
        if self.status == "closed":
            raise RuleViolation("该整改已销号")
        if deadline <= self.deadline:
            raise RuleViolation("延期后的期限必须晚于 %s" % self.deadline,
                                {"deadline": ["不晚于当前期限"]})
        if deadline < today:
            raise RuleViolation("新的整改期限已经过去", {"deadline": ["早于今天"]})
        self.trigger(self.DeadlineExtended, rect_id=self.id, unit_id=self.unit_id,
                     previous_deadline=self.deadline, deadline=deadline, reason=reason,
                     extended_on=today)

    def detect_overdue(self, today: str, ladder, targets: dict, case: dict | None = None) -> int:
        """Record overdue and every ladder step now due; returns the events recorded.

        Idempotent: a second run the same day finds the flag set and the steps reached.
        Only an *open* rectification moves up the ladder - once evidence is in, the next
        move is the inspector's, not the unit's. ``targets``: level -> who is told.
        ``case``: what the finding was (description, severity, source, category,
        requirement, found_on, unit_name); when the ``city`` rung is reached it goes up
        with the trail as ``ReferredToCity`` (once per rectification: a later ladder after
        an extension reaches the city's case through the exchange service's progress).
        """
        if self.status != "open" or today <= self.deadline:
            return 0
        days = (parse_date(today) - parse_date(self.deadline)).days
        n = 0
        if not self.overdue:
            self.trigger(self.OverdueDetected, rect_id=self.id, unit_id=self.unit_id,
                         deadline=self.deadline, detected_on=today, days_overdue=days)
            n += 1
        for step, rung in due_escalations(ladder, days, self.escalation_step):
            self.trigger(self.Escalated, rect_id=self.id, unit_id=self.unit_id, step=step,
                         level=rung["level"], target=targets.get(rung["level"], {}),
                         days_overdue=days, escalated_on=today, deadline=self.deadline)
            n += 1
            if rung["level"] == "city" and case is not None and not getattr(self, "referred", False):
                self.trigger(self.ReferredToCity, rect_id=self.id, unit_id=self.unit_id,
                             unit_name=case.get("unit_name"), description=case["description"],
                             severity=case["severity"], source=case["source"],
                             category=case.get("category"), requirement=case.get("requirement"),
                             found_on=case["found_on"], deadline=self.deadline, days_overdue=days,
                             referred_on=today, trail=referral_trail(self.trail))
                n += 1
        return n


# -- integrity-risk points ------------------------------------------------------------------------
def assess_level(likelihood: int, impact: int, flags: list[str], rules: dict) -> dict:
    """likelihood × impact, weighted up for sensitive posts, mapped to a level.

    ``rules``: {scale, high, medium, flag_weights} - recorded with the assessment, so an
    old assessment keeps its level when the district later changes the rules.
    """
    scale = rules["scale"]
    errors = {}
    for name, value in (("likelihood", likelihood), ("impact", impact)):
        if not 1 <= value <= scale:
            errors[name] = ["须在 1 到 %d 之间" % scale]
    if errors:
        raise BadInput("超出 %d×%d 的风险等级范围" % (scale, scale), errors)
    score = likelihood * impact
    weight = round(1.0 + sum(rules["flag_weights"].get(f, 0.0) for f in flags), 4)
    weighted = round(score * weight, 2)
    share = weighted / float(scale * scale)
    level = "high" if share >= rules["high"] else "medium" if share >= rules["medium"] else "low"
    return {"score": score, "weight": weight, "weighted_score": weighted, "level": level,
            "colour": LEVEL_COLOURS[level]}


class RiskPoint(Aggregate):
    class Identified(Aggregate.Event):
        """廉政风险点 identified (辨识) for a unit or a post; links the units service's 微权力清单 by id."""
        risk_point_id: IdStr
        unit_id: IdStr
        description: NonEmptyStr
        category: OneOf(RISK_CATEGORIES)
        post: NonEmptyStr | None
        micro_power_list_id: NonEmptyStr | None
        micro_power_steps: Annotated[list, {"items": {"type": "string", "minLength": 1}}]
        post_flags: PostFlags
        identified_on: DateStr | None

        def apply(self, p):
            p.unit_id = self.unit_id
            p.post_flags = self.post_flags
            p.assessments = 0
            p.controls = {}
            p.retired = False

    class Assessed(Aggregate.Event):
        """评估: likelihood × impact, weighted for 权力集中/资金密集/资源富集 posts, with the rules it was made under."""
        risk_point_id: IdStr
        unit_id: IdStr
        seq: Annotated[int, {"minimum": 1}]
        likelihood: Annotated[int, {"minimum": 1}]
        impact: Annotated[int, {"minimum": 1}]
        post_flags: PostFlags
        rules: Annotated[dict, {
            "additionalProperties": False,
            "required": ["scale", "high", "medium", "flag_weights"],
            "properties": {
                "scale": {"type": "integer", "minimum": 2},
                "high": {"type": "number"},
                "medium": {"type": "number"},
                "flag_weights": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "concentrated_power": {"type": "number"},
                        "fund_intensive": {"type": "number"},
                        "resource_rich": {"type": "number"},
                    },
                },
            },
        }]
        assessed_on: DateStr
        assessed_by: NonEmptyStr
        note: str
        score: Annotated[int, {"minimum": 1}]
        weight: Annotated[float, {"minimum": 1}]
        weighted_score: Annotated[float, {"minimum": 0}]
        level: OneOf(RISK_LEVELS)
        colour: OneOf(tuple(LEVEL_COLOURS.values()))

        def apply(self, p):
            p.assessments += 1
            p.post_flags = self.post_flags
            p.level = self.level

    class ControlAdded(Aggregate.Event):
        """防控措施 with its owner post and review date."""
        risk_point_id: IdStr
        unit_id: IdStr
        control_id: IdStr
        measure: NonEmptyStr
        owner_post: NonEmptyStr
        review_date: DateStr
        added_on: DateStr

        def apply(self, p):
            p.controls[self.control_id] = {"review_date": self.review_date,
                                           "owner_post": self.owner_post, "overdue": False}

    class ControlReviewed(Aggregate.Event):
        """A control reviewed: effective or not, and when it is reviewed next."""
        risk_point_id: IdStr
        unit_id: IdStr
        control_id: IdStr
        reviewed_on: DateStr
        effective: bool
        note: str
        next_review_date: DateStr

        def apply(self, p):
            p.controls[self.control_id].update(review_date=self.next_review_date, overdue=False)

    class ControlReviewOverdue(Aggregate.Event):
        """A control's review date passed without a review: once per review date."""
        risk_point_id: IdStr
        unit_id: IdStr
        control_id: IdStr
        owner_post: NonEmptyStr
        review_date: DateStr
        flagged_on: DateStr


        def apply(self, p):
            p.controls[self.control_id]["overdue"] = True

    class Retired(Aggregate.Event):
        """A risk point no longer applies."""
        risk_point_id: IdStr
        unit_id: IdStr
        reason: NonEmptyStr
        retired_on: DateStr

        def apply(self, p):
            p.retired = True

    @classmethod
    def identify(cls, risk_point_id, unit_id, description, category, post=None,
                 micro_power_list_id=None, micro_power_steps=(), post_flags=(),
                 identified_on=None, *, taken: bool = False):
        """``taken``: the risk point id is in use."""
        if micro_power_list_id and not micro_power_list_id.startswith(unit_id + "/"):
            # the units service names a 微权力清单 "<unit id>/<post>"
            raise BadInput("不是本单位的微权力清单",
                           {"micro_power_list_id": ["必须是「%s/岗位」的形式" % unit_id]})
        if taken:
            raise Conflict("风险点「%s」已存在" % risk_point_id, {"risk_point_id": ["已被占用"]})
        flags = sorted(set(post_flags))
        bad = [f for f in flags if f not in POST_FLAGS]
        if bad:
            raise BadInput("未知的岗位标记", {"post_flags": ["未知：%s" % ", ".join(bad)]})
        if micro_power_steps and not micro_power_list_id:
            raise BadInput("流程环节必须属于一份微权力清单",
                           {"micro_power_list_id": ["填写流程环节时必填"]})
        p = cls(risk_point_id)
        p.trigger(cls.Identified, risk_point_id=risk_point_id, unit_id=unit_id,
                  description=description, category=category, post=post,
                  micro_power_list_id=micro_power_list_id,
                  micro_power_steps=list(micro_power_steps), post_flags=flags,
                  identified_on=identified_on)
        return p

    def _require_active(self):
        if self.retired:
            raise RuleViolation("风险点「%s」已停用" % self.id)

    def assess(self, likelihood: int, impact: int, rules: dict, assessed_on: str, by: str,
               note: str = "", post_flags: list[str] | None = None):
        """评估 (or re-assessment): every assessment is kept; the latest is current."""
        self._require_active()
        flags = sorted(set(self.post_flags if post_flags is None else post_flags))
        result = assess_level(likelihood, impact, flags, rules)
        self.trigger(self.Assessed, risk_point_id=self.id, unit_id=self.unit_id,
                     seq=self.assessments + 1, likelihood=likelihood, impact=impact,
                     post_flags=flags, rules=rules, assessed_on=assessed_on, assessed_by=by,
                     note=note, **result)
        return result

    def add_control(self, control_id: str, measure: str, owner_post: str, review_date: str,
                    today: str):
        self._require_active()
        if control_id in self.controls:
            raise RuleViolation("防控措施「%s」已存在" % control_id)
        if review_date < today:
            raise RuleViolation("复核日期已经过去",
                                {"review_date": ["早于今天"]})
        self.trigger(self.ControlAdded, risk_point_id=self.id, unit_id=self.unit_id,
                     control_id=control_id, measure=measure, owner_post=owner_post,
                     review_date=review_date, added_on=today)

    def review_control(self, control_id: str, reviewed_on: str, effective: bool, note: str,
                       next_review_date: str):
        self._require_active()
        if control_id not in self.controls:
            raise RuleViolation("该风险点没有防控措施「%s」" % control_id,
                                {"control_id": ["未知"]})
        if next_review_date <= reviewed_on:
            raise RuleViolation("下次复核日期必须晚于本次复核",
                                {"next_review_date": ["必须晚于本次复核日期"]})
        self.trigger(self.ControlReviewed, risk_point_id=self.id, unit_id=self.unit_id,
                     control_id=control_id, reviewed_on=reviewed_on, effective=effective,
                     note=note, next_review_date=next_review_date)

    def flag_overdue_reviews(self, today: str) -> int:
        """防控措施 past their review date and not reviewed: each flagged once (until the
        next review sets a new date). A retired risk point has nothing left to review."""
        if self.retired:
            return 0
        due = sorted(cid for cid, c in self.controls.items()
                     if c["review_date"] < today and not c["overdue"])
        for cid in due:
            c = self.controls[cid]
            self.trigger(self.ControlReviewOverdue, risk_point_id=self.id, unit_id=self.unit_id,
                         control_id=cid, owner_post=c["owner_post"],
                         review_date=c["review_date"], flagged_on=today)
        return len(due)

    def retire(self, reason: str, retired_on: str):
        self._require_active()
        self.trigger(self.Retired, risk_point_id=self.id, unit_id=self.unit_id, reason=reason,
                     retired_on=retired_on)


# -- routine screening (排查) ----------------------------------------------------------------------
def ended_periods(first: str, cadence: str, today: str) -> list[str]:
    """``first`` and the periods after it whose last day is before ``today``."""
    out, period = [], first
    while period_bounds(period)[1].isoformat() < today:
        out.append(period)
        period = next_period(period, cadence)
    return out


class ScreeningSchedule(Aggregate):
    """One per unit (id = unit id). Each calendar period of the cadence needs a screening;
    the due date is the period's last day. Problem #1 of the report: screening not done
    routinely - so a missed period is flagged, not silently skipped."""

    class Established(Aggregate.Event):
        """A unit's routine risk screening (排查) schedule: cadence and the first period due."""
        unit_id: IdStr
        cadence: OneOf(CADENCES)
        due_period: DuePeriod
        due_on: DateStr
        established_on: DateStr

        def apply(self, s):
            s.unit_id = self.unit_id
            s.cadence = self.cadence
            s.due_period = self.due_period
            s.due_on = self.due_on
            s.overdue = False
            s.flagged_through = None

    class CadenceChanged(Aggregate.Event):
        """The screening cadence changed; the current period is due next."""
        unit_id: IdStr
        cadence: OneOf(CADENCES)
        due_period: DuePeriod
        due_on: DateStr
        previous: OneOf(CADENCES)

        def apply(self, s):
            s.cadence = self.cadence
            s.due_period = self.due_period
            s.due_on = self.due_on
            s.overdue = False
            s.flagged_through = None

    class ScreeningRecorded(Aggregate.Event):
        """排查 done: on time, late (missed periods counted) or extra."""
        unit_id: IdStr
        screened_on: DateStr
        period: DuePeriod
        due_period: DuePeriod
        due_on: DateStr
        status: OneOf(SCREENING_STATUSES)
        missed_periods: Count
        risk_points_reviewed: Count
        new_risk_points: Count
        summary: NonEmptyStr
        next_period: DuePeriod
        next_due_on: DateStr

        def apply(self, s):
            s.due_period = self.next_period
            s.due_on = self.next_due_on
            if self.status != "extra":
                s.overdue = False
                s.flagged_through = None

    class OverdueFlagged(Aggregate.Event):
        """One per period that ended unscreened (``due_period`` is that period)."""
        unit_id: IdStr
        due_period: DuePeriod
        due_on: DateStr
        flagged_on: DateStr


        def apply(self, s):
            s.overdue = True
            s.flagged_through = self.due_period

    @classmethod
    def establish(cls, unit_id: str, cadence: str, today: str, *, taken: bool = False):
        """``taken``: the unit has a schedule already."""
        if taken:
            raise Conflict("单位「%s」已有排查计划" % unit_id)
        period = period_of(parse_date(today), cadence)
        s = cls(unit_id)
        s.trigger(cls.Established, unit_id=unit_id, cadence=cadence, due_period=period,
                  due_on=period_bounds(period)[1].isoformat(), established_on=today)
        return s

    def change_cadence(self, cadence: str, today: str):
        if cadence == self.cadence:
            raise RuleViolation("排查周期已经是「%s」" % CADENCES.label(cadence))
        period = period_of(parse_date(today), cadence)
        self.trigger(self.CadenceChanged, unit_id=self.id, cadence=cadence, due_period=period,
                     due_on=period_bounds(period)[1].isoformat(), previous=self.cadence)

    def record(self, screened_on: str, reviewed: int, new_points: int, summary: str) -> str:
        """A screening covers the period it falls in. Before the due period: an extra
        screening (kept, moves nothing). In it: on time. After it: late, and the periods
        in between were missed."""
        day = parse_date(screened_on)
        period = period_of(day, self.cadence)
        start = period_bounds(period)[0]
        due_start = period_bounds(self.due_period)[0]
        missed = 0
        if start < due_start:
            status, next_p = "extra", self.due_period
        elif period == self.due_period:
            status, next_p = "on_time", next_period(period, self.cadence)
        else:
            status, next_p = "late", next_period(period, self.cadence)
            p = next_period(self.due_period, self.cadence)
            while p != period:
                missed += 1
                p = next_period(p, self.cadence)
        self.trigger(self.ScreeningRecorded, unit_id=self.id, screened_on=screened_on,
                     period=period, due_period=self.due_period, due_on=self.due_on,
                     status=status, missed_periods=missed, risk_points_reviewed=reviewed,
                     new_risk_points=new_points, summary=summary, next_period=next_p,
                     next_due_on=period_bounds(next_p)[1].isoformat())
        return status

    def detect_overdue(self, today: str) -> int:
        """Flag every period that has ended unscreened and was not flagged yet - a
        monthly schedule left alone for a quarter shows three missed months, not one."""
        start = (next_period(self.flagged_through, self.cadence) if self.flagged_through
                 else self.due_period)
        missed = ended_periods(start, self.cadence, today)
        for period in missed:
            self.trigger(self.OverdueFlagged, unit_id=self.id, due_period=period,
                         due_on=period_bounds(period)[1].isoformat(), flagged_on=today)
        return len(missed)


# -- 微权力清单 watch --------------------------------------------------------------------------------
MICRO_POWER_KINDS = ("window_unit", "law_enforcement")


class MicroPowerWatch(Aggregate):
    """Does a window / law-enforcement unit have a published 微权力清单? (id = unit id).
    Either event may come first: they arrive on different queues."""

    class Required(Aggregate.Event):
        """A window or law-enforcement unit must publish a 微权力清单; flagged until it does."""
        unit_id: IdStr
        kind: OneOf(MICRO_POWER_KINDS)
        since: DateStr

        def apply(self, w):
            w.required = True

    class ListPublished(Aggregate.Event):
        """The units service published a 微权力清单 of this unit (ids only, not its content)."""
        unit_id: IdStr
        list_id: NonEmptyStr
        post: NonEmptyStr
        published_version: Annotated[int, {"minimum": 1}]
        published_on: DateStr

        def apply(self, w):
            w.published = sorted(set(w.published) | {self.list_id})

    # defaults as class attributes: replay builds the object without __init__
    required = False
    published: tuple = ()

    @classmethod
    def start(cls, unit_id: str):
        return cls(unit_id)

    def require(self, kind: str, since: str):
        if not self.required:
            self.trigger(self.Required, unit_id=self.id, kind=kind, since=since)

    def list_published(self, list_id: str, post: str, published_version: int, published_on: str):
        self.trigger(self.ListPublished, unit_id=self.id, list_id=list_id, post=post,
                     published_version=published_version, published_on=published_on)


def follow_new_unit(level: str, kind: str, scheduled: bool) -> tuple[bool, bool]:
    """What a unit the units service registered sets going here: (a screening schedule -
    for a unit of a screened level without one (``scheduled``: it has one), a 微权力清单
    watch - for a window or law-enforcement unit)."""
    return level in SCREENED_LEVELS and not scheduled, kind in MICRO_POWER_KINDS


# -- political-ecology assessment (政治生态分析研判) --------------------------------------------------------
def check_dimensions(dimensions: list[dict]) -> None:
    """Weights add up to 1 at each level; codes are unique across the whole system."""
    errors = {}
    total = sum(d["weight"] for d in dimensions)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        errors["dimensions"] = ["各维度权重之和为 %g，应为 1" % round(total, 6)]
    codes = []
    for n, d in enumerate(dimensions):
        codes.append(d["code"])
        sub = sum(i["weight"] for i in d["indicators"])
        if abs(sub - 1.0) > WEIGHT_TOLERANCE:
            errors["dimensions.%d.indicators" % n] = [
                "「%s」下各指标权重之和为 %g，应为 1" % (d["name"], round(sub, 6))]
        codes.extend(i["code"] for i in d["indicators"])
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        errors.setdefault("dimensions", []).append("编号重复：%s" % "、".join(dupes))
    if errors:
        raise BadInput("指标体系的格式不正确", errors)


def indicators_of(dimensions: list[dict]) -> dict[str, dict]:
    return {i["code"]: i for d in dimensions for i in d["indicators"]}


class IndicatorSystem(_BuiltIn, Aggregate):
    """政治生态研判指标体系, versioned: a round records the version (and its weights) it was
    opened under, so revising the system never rescores the past."""
    DEFAULT_ID, WHAT = DEFAULT_INDICATOR_SYSTEM_ID, "指标体系"

    class Defined(Aggregate.Event):
        """政治生态研判指标体系 version 1: dimensions, indicators, weights."""
        system_id: IdStr
        title: NonEmptyStr
        version: Annotated[int, {"const": 1}]
        dimensions: Dimensions

        def apply(self, s):
            s.title = self.title
            s.versions = {str(self.version): self.dimensions}
            s.current = self.version

    class Revised(Aggregate.Event):
        """A new version of the indicator system; earlier rounds keep the version they were opened under."""
        system_id: IdStr
        title: NonEmptyStr
        version: Annotated[int, {"minimum": 2}]
        dimensions: Dimensions
        note: NonEmptyStr
        effective_from: DateStr

        def apply(self, s):
            s.title = self.title
            s.versions[str(self.version)] = self.dimensions
            s.current = self.version

    @classmethod
    def define(cls, system_id: str, title: str, dimensions: list[dict]):
        check_dimensions(dimensions)
        s = cls(system_id)
        s.trigger(cls.Defined, system_id=system_id, title=title, version=1,
                  dimensions=dimensions)
        return s

    @classmethod
    def default(cls):
        return cls.define(DEFAULT_INDICATOR_SYSTEM_ID, "政治生态分析研判指标体系",
                          [dict(d, indicators=[dict(i) for i in d["indicators"]])
                           for d in DEFAULT_DIMENSIONS])

    def dimensions(self, version: int | None = None) -> list[dict]:
        return self.versions[str(version or self.current)]

    def revise(self, title: str, dimensions: list[dict], note: str, effective_from: str):
        check_dimensions(dimensions)
        if title == self.title and dimensions == self.dimensions():
            raise RuleViolation("修订内容与当前版本相同，没有任何改动")
        self.trigger(self.Revised, system_id=self.id, title=title, version=self.current + 1,
                     dimensions=dimensions, note=note, effective_from=effective_from)


def score_unit(dimensions: list[dict], manual: dict, facts: dict) -> dict:
    """One unit's score under one indicator system version.

    Every indicator is brought to 0..100. An indicator without a value (a fact the
    platform does not have for this unit, e.g. no rectifications due in the period)
    is left out and the remaining weights of its dimension are re-normalised - a unit
    is neither rewarded nor punished for data that does not exist; the report lists
    what was missing.
    """
    dims, missing, total, total_w = {}, [], 0.0, 0.0
    for d in dimensions:
        acc, acc_w = 0.0, 0.0
        for ind in d["indicators"]:
            if ind["source"] == "manual":
                raw = manual.get(ind["code"])
                value = None if raw is None else 100.0 * raw / ind["max_score"]
            else:
                value = facts.get(ind["code"])
            if value is None:
                missing.append(ind["code"])
                continue
            acc += ind["weight"] * value
            acc_w += ind["weight"]
        if acc_w > 0:
            dims[d["code"]] = round(acc / acc_w, 2)
            total += d["weight"] * acc / acc_w
            total_w += d["weight"]
        else:
            dims[d["code"]] = None
    return {"total": round(total / total_w, 2) if total_w else None, "dimensions": dims,
            "missing": missing}


def rank(scored: dict[str, dict]) -> list[dict]:
    """Competition ranking (1, 2, 2, 4) by total, highest first; unscored units last."""
    rows = sorted(scored.items(), key=lambda kv: (kv[1]["total"] is None,
                                                  -(kv[1]["total"] or 0), kv[0]))
    out, last, last_rank = [], object(), 0
    for n, (unit_id, s) in enumerate(rows, start=1):
        if s["total"] != last:
            last, last_rank = s["total"], n
        out.append({"unit_id": unit_id, "rank": last_rank if s["total"] is not None else None,
                    **s})
    return out


class AssessmentRound(Aggregate):
    """研判轮次: units scored for a period, ranked, and frozen for the collective review."""

    class Opened(Aggregate.Event):
        """研判轮次 opened for a period, with a copy of the indicator system version in force."""
        round_id: IdStr
        title: NonEmptyStr
        period: DuePeriod
        system_id: IdStr
        system_version: Annotated[int, {"minimum": 1}]
        dimensions: Dimensions
        unit_ids: Annotated[list, {
            "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}$"},
            "minItems": 1,
        }]
        opened_on: DateStr

        def apply(self, r):
            r.dimensions = self.dimensions
            r.unit_ids = self.unit_ids
            r.period = self.period
            r.status = "open"
            r.manual = {}
            r.facts = None

    class ScoresRecorded(Aggregate.Event):
        """Manual indicator scores for units of the round."""
        round_id: IdStr
        recorded_by: NonEmptyStr
        scores: Annotated[list, {
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["unit_id", "indicator", "score", "note"],
                "properties": {
                    "unit_id": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}$",
                    },
                    "indicator": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,49}$"},
                    "score": {"type": "number", "minimum": 0},
                    "note": {"type": "string"},
                },
            },
            "minItems": 1,
        }]

        def apply(self, r):
            for s in self.scores:
                r.manual.setdefault(s["unit_id"], {})[s["indicator"]] = s["score"]

    class FactsCollected(Aggregate.Event):
        """The platform's facts (0..100, null when it has none) frozen into the round."""
        round_id: IdStr
        collected_on: DateStr
        facts: Annotated[dict, {
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
            },
        }]

        def apply(self, r):
            r.facts = self.facts

    class Finalized(Aggregate.Event):
        """The round ranked and frozen for the collective review (集中研判)."""
        round_id: IdStr
        finalized_on: DateStr
        ranking: Annotated[list, {
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["unit_id", "rank", "total", "dimensions", "missing"],
                "properties": {
                    "unit_id": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}$",
                    },
                    "rank": {"type": ["integer", "null"], "minimum": 1},
                    "total": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
                    "dimensions": {
                        "type": "object",
                        "additionalProperties": {
                            "type": ["number", "null"],
                            "minimum": 0,
                            "maximum": 100,
                        },
                    },
                    "missing": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,49}$"},
                    },
                },
            },
        }]

        def apply(self, r):
            r.status = "finalized"

    @classmethod
    def open(cls, round_id, title, period, system: IndicatorSystem, unit_ids, opened_on, *,
             taken: bool = False):
        """``taken``: the round id is in use."""
        if taken:
            raise Conflict("考核轮次「%s」已存在" % round_id, {"round_id": ["已被占用"]})
        if not unit_ids:
            raise RuleViolation("考核轮次至少要有一个被考核单位")
        r = cls(round_id)
        r.trigger(cls.Opened, round_id=round_id, title=title, period=period,
                  system_id=system.id, system_version=system.current,
                  dimensions=system.dimensions(), unit_ids=sorted(unit_ids), opened_on=opened_on)
        return r

    @staticmethod
    def units_under(root_id: str, subtree: list[dict]) -> list[str]:
        """The units a round opened for a subtree assesses: the department-level ones
        below its root (``subtree``: the active units, root included)."""
        return [u["unit_id"] for u in subtree if u["unit_id"] != root_id and u["level"] == "unit"]

    def _require_open(self):
        if self.status != "open":
            raise RuleViolation("该考核轮次已定稿，分数不能再修改")

    def record_scores(self, scores: list[dict], by: str):
        self._require_open()
        indicators = indicators_of(self.dimensions)
        units = set(self.unit_ids)
        errors = {}
        for n, s in enumerate(scores):
            ind = indicators.get(s["indicator"])
            if s["unit_id"] not in units:
                errors["scores.%d.unit_id" % n] = ["不是本轮的被考核单位"]
            if ind is None:
                errors["scores.%d.indicator" % n] = ["本轮指标体系中没有这项指标"]
            elif ind["source"] != "manual":
                errors["scores.%d.indicator" % n] = [
                    "该指标由平台数据（%s）自动计分，不能人工评分" % FACT_SOURCES.label(ind["source"])]
            elif not 0 <= s["score"] <= ind["max_score"]:
                errors["scores.%d.score" % n] = ["须在 0 到 %g 之间" % ind["max_score"]]
        if errors:
            raise BadInput("评分与本轮考核不符", errors)
        self.trigger(self.ScoresRecorded, round_id=self.id, recorded_by=by,
                     scores=[{"unit_id": s["unit_id"], "indicator": s["indicator"],
                              "score": s["score"], "note": s.get("note") or ""} for s in scores])

    def auto_indicators(self) -> dict[str, str]:
        return {i["code"]: i["source"] for i in indicators_of(self.dimensions).values()
                if i["source"] != "manual"}

    def collect_facts(self, facts: dict[str, dict], collected_on: str):
        """Freeze the platform's facts into the round, so the ranking can be re-derived
        from the log alone however the facts move afterwards."""
        self._require_open()
        self.trigger(self.FactsCollected, round_id=self.id, collected_on=collected_on,
                     facts={u: facts.get(u, {}) for u in self.unit_ids})

    def scores(self) -> dict[str, dict]:
        facts = self.facts or {}
        return {u: score_unit(self.dimensions, self.manual.get(u, {}), facts.get(u, {}))
                for u in self.unit_ids}

    def finalize(self, finalized_on: str):
        self._require_open()
        if self.auto_indicators() and self.facts is None:
            raise RuleViolation("定稿前请先采集平台数据")
        manual = [c for c, i in indicators_of(self.dimensions).items() if i["source"] == "manual"]
        gaps = sum(1 for u in self.unit_ids for c in manual if c not in self.manual.get(u, {}))
        if gaps:
            raise RuleViolation("还有 %d 项人工评分未填写" % gaps)
        ranking = rank(self.scores())
        self.trigger(self.Finalized, round_id=self.id, finalized_on=finalized_on,
                     ranking=ranking)
        return ranking


# -- education facts (from the education service) -------------------------------------------------
def education_compliance(held: bool, coverage: float, talks: float | None) -> float:
    """One month's 廉政教育落实 score, 0..100: warning education held (月月行) weighs 0.4,
    check-in coverage 0.3, 廉政谈话 on time 0.3 (re-normalised when no talk was due)."""
    parts = [(0.4, 1.0 if held else 0.0), (0.3, coverage)]
    if talks is not None:
        parts.append((0.3, talks))
    return round(100.0 * sum(w * v for w, v in parts) / sum(w for w, _ in parts), 2)


def education_payload(p: dict) -> dict:
    """The education service's ``EducationIndicators.Published`` payload, checked
    against its contract before it is recorded here (a wrong one: BadInput, nothing kept)."""
    errors = {}
    if not isinstance(p.get("unit_id"), str) or not p["unit_id"]:
        errors["unit_id"] = ["a unit id"]
    period = p.get("period")
    if not (isinstance(period, str) and len(period) == 7 and period[4] == "-"
            and period[:4].isdigit() and period[5:].isdigit() and 1 <= int(period[5:]) <= 12):
        errors["period"] = ["YYYY-MM"]
    if not isinstance(p.get("warning_education_held"), bool):
        errors["warning_education_held"] = ["true or false"]
    cov = p.get("checkin_coverage")
    if isinstance(cov, bool) or not isinstance(cov, (int, float)) or not 0 <= cov <= 1:
        errors["checkin_coverage"] = ["a share 0..1"]
    talks = p.get("talks_on_time_rate")
    if talks is not None and (isinstance(talks, bool) or not isinstance(talks, (int, float))
                              or not 0 <= talks <= 1):
        errors["talks_on_time_rate"] = ["a share 0..1, or null"]
    if errors:
        raise BadInput("收到的教育指标事件内容与约定的格式不符", errors)
    return p


class EducationFacts(Aggregate):
    """The education service's indicators for one unit and month (id ``unit/YYYY-MM``)."""

    class Recorded(Aggregate.Event):
        """The education service's monthly indicators for a unit, recorded here for the ecology assessment."""
        unit_id: IdStr
        period: Annotated[str, {"pattern": "^\\d{4}-(0[1-9]|1[0-2])$"}]
        warning_education_held: bool
        checkin_coverage: Rate
        talks_on_time_rate: Rate | None
        compliance: Percent
        source_event_id: NonEmptyStr

        def apply(self, e):
            e.values = (self.warning_education_held, self.checkin_coverage,
                        self.talks_on_time_rate)

    @classmethod
    def fact_id(cls, unit_id: str, period: str) -> str:
        return "%s/%s" % (unit_id, period)

    values = None  # class default: replay builds the object without __init__

    @classmethod
    def start(cls, unit_id: str, period: str):
        return cls(cls.fact_id(unit_id, period))

    def record(self, unit_id, period, held, coverage, talks, source_event_id) -> bool:
        """False (nothing recorded) when the figures are the ones already held."""
        if self.values == (held, coverage, talks):
            return False
        self.trigger(self.Recorded, unit_id=unit_id, period=period, warning_education_held=held,
                     checkin_coverage=coverage, talks_on_time_rate=talks,
                     compliance=education_compliance(held, coverage, talks),
                     source_event_id=source_event_id)
        return True


# -- four forms of discipline (四种形态) --------------------------------------------------------------
def quarter_of(day: str) -> str:
    return period_of(parse_date(day), "quarterly")


class DisciplineRecord(Aggregate):
    """One instance of 四种形态 handling. Private: names and details never leave the node;
    only ``DisciplineCounts`` (numbers per form and quarter) do."""

    class Recorded(Aggregate.Event):
        """四种形态 handling of one person. PRIVATE: never leaves the node."""
        record_id: IdStr
        unit_id: IdStr
        form: OneOf(DISCIPLINE_FORMS)
        person_name: NonEmptyStr
        person_id: IdStr | None
        post: NonEmptyStr | None
        measure: NonEmptyStr
        summary: NonEmptyStr
        handled_on: DateStr
        period: Quarter
        recorded_by: NonEmptyStr

        private = True

        def apply(self, d):
            d.form = self.form
            d.period = self.period
            d.unit_id = self.unit_id
            d.voided = False

    class Voided(Aggregate.Event):
        """A 四种形态 record voided (recorded in error). PRIVATE: never leaves the node."""
        record_id: IdStr
        unit_id: IdStr
        form: OneOf(DISCIPLINE_FORMS)
        period: Quarter
        reason: NonEmptyStr
        voided_by: NonEmptyStr

        private = True

        def apply(self, d):
            d.voided = True

    @classmethod
    def record(cls, record_id, unit_id, form, person_name, person_id, post, measure, summary,
               handled_on, today, by, *, taken: bool = False):
        """``taken``: the record id is in use."""
        if taken:
            raise Conflict("记录「%s」已存在" % record_id, {"record_id": ["已被占用"]})
        if form not in DISCIPLINE_FORMS:
            raise BadInput("未知的处理形式", {"form": ["1, 2, 3 or 4"]})
        if handled_on > today:
            raise BadInput("处理日期晚于今天", {"handled_on": ["晚于今天"]})
        d = cls(record_id)
        d.trigger(cls.Recorded, record_id=record_id, unit_id=unit_id, form=form,
                  person_name=person_name, person_id=person_id, post=post, measure=measure,
                  summary=summary, handled_on=handled_on, period=quarter_of(handled_on),
                  recorded_by=by)
        return d

    def void(self, reason: str, by: str):
        if self.voided:
            raise RuleViolation("该记录已作废")
        self.trigger(self.Voided, record_id=self.id, unit_id=self.unit_id, form=self.form,
                     period=self.period, reason=reason, voided_by=by)


class DisciplineCounts(Aggregate):
    """Counts per form for one quarter (id = ``YYYY-Qn``): the only discipline figures
    that leave the service. No unit id: per-unit numbers this small would point at people."""

    class Published(Aggregate.Event):
        """Counts of 四种形态 handling per form for one quarter of this node - numbers only, no unit, no names."""
        period: Quarter
        form_1: Count
        form_2: Count
        form_3: Count
        form_4: Count
        total: Count
        published_on: DateStr

        def apply(self, c):
            c.counts = {k: getattr(self, k) for k in ("form_1", "form_2", "form_3", "form_4")}

    counts = None  # class default: replay builds the object without __init__

    @classmethod
    def start(cls, period: str):
        return cls(period)

    def publish(self, counts: dict, published_on: str) -> bool:
        figures = {"form_%d" % f: int(counts.get(f, 0)) for f in DISCIPLINE_FORMS}
        if figures == self.counts:
            return False
        self.trigger(self.Published, period=self.id, total=sum(figures.values()),
                     published_on=published_on, **figures)
        return True


# -- indicators for 上下互比 ------------------------------------------------------------------------
UNIT_FIGURES = ("findings_total", "rectifications_closed", "closed_on_time", "closure_rate",
                "timeliness_rate", "overdue_count", "escalated_count", "risk_high",
                "risk_medium", "risk_low", "screening_on_time", "screening_overdue",
                "micro_power_missing")
DISTRICT_FIGURES = ("units", "findings_total", "rectifications_closed", "closure_rate",
                    "timeliness_rate", "overdue_count", "escalated_to_city", "risk_high",
                    "risk_medium", "risk_low", "screening_on_time_rate", "screening_overdue_units",
                    "micro_power_missing_units")


def indicator_months(today: date, still_provisional, grace_days: int) -> list[tuple[str, bool]]:
    """The months a publication run publishes figures for, each with "provisional?": the
    running month (never final: it is not over), and every earlier month last published
    provisional - still provisional while its grace period lasts, so an entry recorded
    late reaches the city, or final once it is over (published once more, then left)."""
    running = period_of(today, "monthly")
    months = sorted({p for p in still_provisional if p < running}) + [running]
    return [(p, not month_final(p, today, grace_days)) for p in months]


class _Published(Aggregate):
    """Figures published for one month (``period``): a state (what is open, overdue, at
    risk), not a sum, so a month's figures are those standing when it closes. While the
    month runs and for SUPERVISION_INDICATOR_GRACE_DAYS after it they are provisional
    (暂定, ``shared.months.month_final``): published again as late entries change them,
    then once more as final."""
    FIGURES: tuple = ()
    months = None  # class default: replay builds the object without __init__

    @classmethod
    def start(cls, key: str):
        return cls(key)

    def published(self, period: str):
        """(figures, provisional) last published for ``period``, or None."""
        return (self.months or {}).get(period)

    def publish(self, figures: dict, as_of: str, period: str, provisional: bool) -> bool:
        """Record only what changed: a timer publishing every hour must not flood the
        city with identical figures."""
        values = {k: figures[k] for k in self.FIGURES}
        if self.published(period) == (values, provisional):
            return False
        self.trigger(self.Published, unit_id=self.id, as_of=as_of, period=period,
                     provisional=provisional, **values)
        return True

    @staticmethod
    def _apply(p, event, names):
        # before issue 10 #13 a publication stood for the month of its as_of, and was final
        period = getattr(event, "period", None) or event.as_of[:7]
        p.months = dict(p.months or {})
        p.months[period] = ({k: getattr(event, k) for k in names},
                            bool(getattr(event, "provisional", False)))


class UnitIndicators(_Published):
    """Per-unit supervision figures (id = unit id)."""

    FIGURES = UNIT_FIGURES

    class Published(Aggregate.Event):
        """Per-unit supervision figures for 上下互比 (published when they change)."""
        unit_id: IdStr
        as_of: DateStr
        findings_total: Count
        rectifications_closed: Count
        closed_on_time: Count
        closure_rate: Rate | None
        timeliness_rate: Rate | None
        overdue_count: Count
        escalated_count: Count
        risk_high: Count
        risk_medium: Count
        risk_low: Count
        screening_on_time: bool | None
        screening_overdue: bool
        micro_power_missing: bool
        period: MonthStr | None = None  # the month they stand for (absent before: as_of's)
        provisional: bool = False       # that month still open for late entries

        def apply(self, p):
            p._apply(p, self, UNIT_FIGURES)


class DistrictIndicators(_Published):
    """Figures of a whole district (id = the district's root unit id)."""

    FIGURES = DISTRICT_FIGURES

    class Published(Aggregate.Event):
        """Figures of a whole district for 上下互比; escalated_to_city is the ladder's counts-only city step."""
        unit_id: IdStr
        as_of: DateStr
        units: Count
        findings_total: Count
        rectifications_closed: Count
        closure_rate: Rate | None
        timeliness_rate: Rate | None
        overdue_count: Count
        escalated_to_city: Count
        risk_high: Count
        risk_medium: Count
        risk_low: Count
        screening_on_time_rate: Rate | None
        screening_overdue_units: Count
        micro_power_missing_units: Count
        period: MonthStr | None = None  # as UnitIndicators.Published
        provisional: bool = False

        def apply(self, p):
            p._apply(p, self, DISTRICT_FIGURES)


# -- 跟踪问效: tasks with a standard, a deadline and a responsible unit ----------------------------
# A task list (任务清单) is issued by a unit (the district office, a leading group); each of
# its items is a ``Task`` carrying a standard (标准: what "done" means), a deadline (时限) and
# the unit responsible. A 推进会 (``Meeting``) of the responsible units records decisions,
# and each decision becomes a ``Task`` of the meeting's own list, tracked the same way.
# Overdue tasks behave as overdue rectifications do: flagged once, every ladder step taken
# once (the same ``due_escalations`` and grace periods), paused while a completion awaits
# acceptance, restarted by an extension.
TASK_STATUSES = Choices("任务状态", {"open": "推进中", "reported": "已报完成待验收",
                                     "accepted": "已验收办结", "cancelled": "已撤销"})
TASK_SOURCES = Choices("任务来源", {"task_list": "任务清单", "meeting": "推进会议定事项"})
MEETING_KINDS = Choices("会议类型", {"joint_promotion": "联席推进会",
                                     "special_promotion": "专题推进会",
                                     "regular": "例会"})


def task_days_overdue(deadline: str, status: str, reported_on: str | None, today: str) -> int:
    """Days past the deadline: counting while open; stopped on the day completion was
    reported (the next move is the issuer's); 0 once accepted or cancelled."""
    if status in ("accepted", "cancelled"):
        return 0
    return days_overdue(deadline, "open" if status == "open" else "evidence_submitted",
                        reported_on, today)


TASK_COLOURS = Choices("任务提示", {"red": "已逾期", "yellow": "临近时限", "green": "按期推进"})


def task_colour(deadline: str, status: str, today: str, soon_days: int) -> str:
    """Three colours, as overdue rectifications show: red past the deadline and not done,
    yellow within ``soon_days`` of it, green otherwise (and once accepted or cancelled)."""
    if status in ("accepted", "cancelled"):
        return "green"
    if deadline < today and status == "open":
        return "red"
    soon = (parse_date(today) + timedelta(days=soon_days)).isoformat()
    return "yellow" if deadline <= soon and status == "open" else "green"


def in_subtree(path: str | None, top_path: str | None) -> bool:
    """Whether the unit at ``path`` is ``top_path``'s unit or below it (a path None: the
    unit is not in the directory - below nothing but the node itself, ``top_path`` "")."""
    return (path or "").startswith(top_path or "")


def require_responsible(unit: dict, issuer_path: str, field: str) -> dict:
    """A task's (or a meeting's) responsible unit is in use and inside the subtree of the
    unit that issues the list (convenes the meeting). ``unit``: its directory row;
    ``issuer_path``: the issuer's path."""
    require_active(unit, field)
    if not in_subtree(unit["path"], issuer_path):
        raise BadInput("责任单位不在下达单位的管辖范围内", {field: ["不在下达单位之下"]})
    return unit


class TaskList(Aggregate):
    """任务清单: who issued it, when, and where it came from (a list or a meeting)."""

    class Issued(Aggregate.Event):
        list_id: IdStr
        title: str
        issuer_unit_id: IdStr
        issued_on: DateStr           # ISO date
        source: OneOf(TASK_SOURCES)
        meeting_id: IdStr | None = None

        def apply(self, t):
            t.title = self.title
            t.issuer_unit_id = self.issuer_unit_id
            t.source = self.source
            t.meeting_id = self.meeting_id
            t.items = 0

    class ItemAdded(Aggregate.Event):
        list_id: IdStr
        task_id: IdStr
        seq: Annotated[int, {"minimum": 1}]

        def apply(self, t):
            t.items = self.seq

    @classmethod
    def issue(cls, list_id, title, issuer_unit_id, issued_on, source="task_list", meeting_id=None,
              *, issuer: dict | None = None, taken: bool = False):
        """``issuer``: the issuing unit's directory row (it must be in use); ``taken``: the
        list id is in use. (A meeting's list is checked as the meeting: ``Meeting.hold``.)"""
        if issuer is not None:
            require_active(issuer, "issuer_unit_id")
        if taken:
            raise Conflict("任务清单「%s」已存在" % list_id, {"list_id": ["已被占用"]})
        if (source == "meeting") != (meeting_id is not None):
            raise BadInput("推进会议定事项的清单必须注明会议", {"meeting_id": ["与来源不符"]})
        t = cls(list_id)
        t.trigger(cls.Issued, list_id=list_id, title=title, issuer_unit_id=issuer_unit_id,
                  issued_on=issued_on, source=source, meeting_id=meeting_id)
        return t

    def add_item(self, task_id: str) -> int:
        self.trigger(self.ItemAdded, list_id=self.id, task_id=task_id, seq=self.items + 1)
        return self.items

    def assign_task(self, task_id: str, unit: dict, issuer_path: str, title: str, standard: str,
                    deadline: str, today: str, *, field: str = "unit_id",
                    taken: bool = False) -> "Task":
        """A new item of the list, tracked as a ``Task``: its responsible unit (``unit``, the
        directory row) is in use and below the issuer (``issuer_path``), its id is free
        (``taken``: in use); ``field`` names the unit's input field in an error."""
        require_responsible(unit, issuer_path, field)
        if taken:
            raise Conflict("任务「%s」已存在" % task_id, {"task_id": ["已被占用"]})
        seq = self.add_item(task_id)
        return Task.assign(task_id, self, seq, unit["unit_id"], title, standard, deadline, today)


class Task(Aggregate):
    """One item of a task list: 标准, 时限, 责任单位, completion reported with evidence and
    accepted by someone other than the reporter (四眼原则, as for rectifications)."""

    class Assigned(Aggregate.Event):
        task_id: IdStr
        list_id: IdStr
        seq: Annotated[int, {"minimum": 1}]
        unit_id: IdStr             # the responsible unit
        title: str
        standard: str            # 标准: what counts as done
        deadline: DateStr            # ISO date (时限)
        assigned_on: DateStr
        source: OneOf(TASK_SOURCES)
        meeting_id: IdStr | None = None

        def apply(self, t):
            t.list_id = self.list_id
            t.unit_id = self.unit_id
            t.deadline = self.deadline
            t.status = "open"
            t.reported_by = None
            t.reported_on = None
            t.overdue = False
            t.escalation_step = 0
            # what the city rung sends up (ReferredToCity)
            t.title, t.standard, t.source = self.title, self.standard, self.source
            t.assigned_on = self.assigned_on
            t.trail = []

    class CompletionReported(Aggregate.Event):
        """What was done and the evidence (references into the node's evidence store)."""

        private = True
        task_id: IdStr
        unit_id: IdStr
        summary: str
        evidence: list
        reported_on: DateStr
        reported_by: str

        def apply(self, t):
            t.status = "reported"
            t.reported_by = self.reported_by
            t.reported_on = self.reported_on

    class Accepted(Aggregate.Event):
        task_id: IdStr
        unit_id: IdStr
        accepted_on: DateStr
        accepted_by: str
        note: str
        deadline: DateStr
        on_time: bool

        def apply(self, t):
            t.status = "accepted"

    class Returned(Aggregate.Event):
        task_id: IdStr
        unit_id: IdStr
        reason: str
        returned_on: DateStr
        returned_by: str

        def apply(self, t):
            t.status = "open"
            t.reported_on = None

    class DeadlineExtended(Aggregate.Event):
        task_id: IdStr
        unit_id: IdStr
        previous_deadline: DateStr
        deadline: DateStr
        reason: str
        extended_on: DateStr

        def apply(self, t):
            t.deadline = self.deadline
            t.overdue = False
            t.escalation_step = 0
            t.trail = []  # a fresh ladder

    class Cancelled(Aggregate.Event):
        task_id: IdStr
        unit_id: IdStr
        reason: str
        cancelled_on: DateStr

        def apply(self, t):
            t.status = "cancelled"

    class OverdueDetected(Aggregate.Event):
        task_id: IdStr
        unit_id: IdStr
        deadline: DateStr
        detected_on: DateStr
        days_overdue: Annotated[int, {"minimum": 1}]

        def apply(self, t):
            t.overdue = True
            t.trail = [{"on": self.detected_on, "what": "overdue", "deadline": self.deadline,
                        "days_overdue": self.days_overdue}]

    class Escalated(Aggregate.Event):
        task_id: IdStr
        unit_id: IdStr
        step: Annotated[int, {"minimum": 1}]
        level: OneOf(ESCALATION_LEVELS)
        target: dict
        days_overdue: Annotated[int, {"minimum": 1}]
        escalated_on: DateStr
        deadline: DateStr

        def apply(self, t):
            t.escalation_step = self.step
            t.trail = list(getattr(t, "trail", [])) + [
                {"on": self.escalated_on, "what": "escalated", "step": self.step,
                 "level": self.level, "days_overdue": self.days_overdue}]

    class ReferredToCity(Aggregate.Event):
        """The ladder's city rung of a 跟踪问效 task, as for a rectification: the task itself
        (title, 标准, which unit, how late, the trail) goes up to the city for 督办. No
        person, no completion report, no evidence."""
        task_id: IdStr
        unit_id: IdStr
        unit_name: str | None
        title: str
        standard: str
        source: OneOf(TASK_SOURCES)
        assigned_on: DateStr
        deadline: DateStr
        days_overdue: Annotated[int, {"minimum": 1}]
        referred_on: DateStr
        trail: list

        def apply(self, t):
            t.referred = True

    @classmethod
    def assign(cls, task_id, task_list: TaskList, seq, unit_id, title, standard, deadline, today):
        if deadline < today:
            raise BadInput("任务时限已经过去", {"deadline": ["不得早于今天"]})
        t = cls(task_id)
        t.trigger(cls.Assigned, task_id=task_id, list_id=task_list.id, seq=seq, unit_id=unit_id,
                  title=title, standard=standard, deadline=deadline, assigned_on=today,
                  source=task_list.source, meeting_id=task_list.meeting_id)
        return t

    def _require(self, *statuses, doing: str):
        if self.status not in statuses:
            raise RuleViolation("任务当前为「%s」，不能%s" % (TASK_STATUSES.label(self.status), doing))

    def report_completion(self, summary: str, evidence: list[dict], today: str, by: str):
        self._require("open", doing="报告完成")
        if not evidence:
            raise BadInput("报告完成需附佐证材料", {"evidence": ["至少一份佐证材料"]})
        self.trigger(self.CompletionReported, task_id=self.id, unit_id=self.unit_id,
                     summary=summary, evidence=evidence, reported_on=today, reported_by=by)

    def accept(self, note: str, today: str, by: str):
        self._require("reported", doing="验收")
        if by == self.reported_by:
            raise RuleViolation("不能验收自己报告的完成情况")
        self.trigger(self.Accepted, task_id=self.id, unit_id=self.unit_id, accepted_on=today,
                     accepted_by=by, note=note, deadline=self.deadline,
                     on_time=self.reported_on <= self.deadline)

    def return_(self, reason: str, today: str, by: str):
        self._require("reported", doing="退回")
        if by == self.reported_by:
            raise RuleViolation("不能退回自己报告的完成情况")
        self.trigger(self.Returned, task_id=self.id, unit_id=self.unit_id, reason=reason,
                     returned_on=today, returned_by=by)

    def extend_deadline(self, deadline: str, reason: str, today: str):
        self._require("open", "reported", doing="延期")
        if deadline <= self.deadline:
            raise RuleViolation("延期后的时限必须晚于 %s" % self.deadline,
                                {"deadline": ["不晚于当前时限"]})
        if deadline < today:
            raise RuleViolation("新的时限已经过去", {"deadline": ["早于今天"]})
        self.trigger(self.DeadlineExtended, task_id=self.id, unit_id=self.unit_id,
                     previous_deadline=self.deadline, deadline=deadline, reason=reason,
                     extended_on=today)

    def cancel(self, reason: str, today: str):
        self._require("open", "reported", doing="撤销")
        self.trigger(self.Cancelled, task_id=self.id, unit_id=self.unit_id, reason=reason,
                     cancelled_on=today)

    def detect_overdue(self, today: str, ladder, targets: dict, unit_name: str | None = None) -> int:
        """As ``Rectification.detect_overdue``: only an open task moves up the ladder, and
        its city rung refers the task to the city (``ReferredToCity``, once per task: a
        later ladder after an extension reaches the city's case as progress)."""
        if self.status != "open" or today <= self.deadline:
            return 0
        days = (parse_date(today) - parse_date(self.deadline)).days
        n = 0
        if not self.overdue:
            self.trigger(self.OverdueDetected, task_id=self.id, unit_id=self.unit_id,
                         deadline=self.deadline, detected_on=today, days_overdue=days)
            n += 1
        for step, rung in due_escalations(ladder, days, self.escalation_step):
            self.trigger(self.Escalated, task_id=self.id, unit_id=self.unit_id, step=step,
                         level=rung["level"], target=targets.get(rung["level"], {}),
                         days_overdue=days, escalated_on=today, deadline=self.deadline)
            n += 1
            if rung["level"] == "city" and not getattr(self, "referred", False):
                self.trigger(self.ReferredToCity, task_id=self.id, unit_id=self.unit_id,
                             unit_name=unit_name, title=self.title, standard=self.standard,
                             source=self.source, assigned_on=self.assigned_on,
                             deadline=self.deadline, days_overdue=days, referred_on=today,
                             trail=referral_trail(self.trail))
                n += 1
        return n


class Meeting(Aggregate):
    """推进会 / 联席推进会: the responsible units that met, and what they decided. Each
    decision is assigned to one of the units present and becomes a tracked ``Task``."""

    class Held(Aggregate.Event):
        meeting_id: IdStr
        title: str
        kind: OneOf(MEETING_KINDS)
        convener_unit_id: IdStr
        held_on: DateStr
        unit_ids: list[IdStr]    # the responsible units taking part
        summary: str
        list_id: IdStr             # the task list its decisions go into

        def apply(self, m):
            m.title = self.title
            m.unit_ids = list(self.unit_ids)
            m.convener_unit_id = self.convener_unit_id
            m.list_id = self.list_id
            m.decisions = 0

    class DecisionRecorded(Aggregate.Event):
        meeting_id: IdStr
        seq: Annotated[int, {"minimum": 1}]
        text: str
        unit_id: IdStr
        task_id: IdStr

        def apply(self, m):
            m.decisions = self.seq

    @classmethod
    def hold(cls, meeting_id, title, kind, convener_unit_id, held_on, unit_ids, summary, today,
             *, convener: dict | None = None, units=(), taken: bool = False):
        """``convener``: the convening unit's directory row (it must be in use); ``taken``:
        the id is in use (by a meeting, or a task list - the meeting's list has its id);
        ``units``: the rows of ``unit_ids`` in order (an iterable: each may be read as it
        is checked), every one a responsible unit below the convener."""
        if convener is not None:
            require_active(convener, "convener_unit_id")
        if taken:
            raise Conflict("会议「%s」已存在" % meeting_id, {"meeting_id": ["已被占用"]})
        convener_path = (convener["path"] or "") if convener is not None else ""
        for i, unit in enumerate(units):
            require_responsible(unit, convener_path, "unit_ids.%d" % i)
        if held_on > today:
            raise BadInput("会议日期晚于今天", {"held_on": ["不得晚于今天"]})
        if len(set(unit_ids)) != len(unit_ids):
            raise BadInput("参会单位有重复", {"unit_ids": ["单位重复"]})
        m = cls(meeting_id)
        m.trigger(cls.Held, meeting_id=meeting_id, title=title, kind=kind,
                  convener_unit_id=convener_unit_id, held_on=held_on, unit_ids=list(unit_ids),
                  summary=summary, list_id=meeting_id)
        return m

    def check_decision_unit(self, unit_id: str, field: str = "unit_id") -> None:
        """A decision is carried out by a unit that took part (联席: the responsible units)."""
        if unit_id not in self.unit_ids:
            raise BadInput("议定事项的责任单位必须是参会单位", {field: ["不是本次会议的参会单位"]})

    def record_decision(self, text: str, unit_id: str, task_id: str) -> int:
        self.check_decision_unit(unit_id)
        self.trigger(self.DecisionRecorded, meeting_id=self.id, seq=self.decisions + 1,
                     text=text, unit_id=unit_id, task_id=task_id)
        return self.decisions


# -- 专项整治 / 专项治理 and 四风 ------------------------------------------------------------------
CAMPAIGN_KINDS = Choices("专项类型", {"rectification": "专项整治", "governance": "专项治理"})
# 四风 and the new forms of 形式主义、官僚主义 the report names (文山会海、过度留痕 ...)
FOUR_WINDS = Choices("四风问题类别", {
    "formalism": "形式主义",
    "formalism_new": "形式主义新表现（文山会海、过度留痕、“指尖上的形式主义”）",
    "bureaucratism": "官僚主义",
    "bureaucratism_new": "官僚主义新表现（推诿扯皮、懒政怠政、“新官不理旧账”）",
    "hedonism": "享乐主义",
    "extravagance": "奢靡之风",
})
CAMPAIGN_STATES = Choices("专项进度", {"upcoming": "未开始", "running": "进行中",
                                       "ended": "已到期", "closed": "已总结收尾"})


def campaign_state(starts_on: str, ends_on: str, closed: bool, today: str) -> str:
    if closed:
        return "closed"
    if today < starts_on:
        return "upcoming"
    return "running" if today <= ends_on else "ended"


def campaign_item_colour(deadline: str | None, status: str, today: str, soon_days: int) -> str:
    """A campaign's rectification in the three colours of tasks: open past its deadline
    red, open and due soon yellow, else green (evidence in or closed)."""
    if not deadline:
        return "green"
    return task_colour(deadline, {"open": "open", "evidence_submitted": "reported",
                                  "closed": "accepted"}.get(status, status), today, soon_days)


class Campaign(Aggregate):
    """专项整治 / 专项治理: a scope (a unit and everything below it), a period, the 四风
    categories it targets; findings in its scope and period are tagged to it, each with
    a 四风 category, so its progress is their rectifications' progress."""

    class Launched(Aggregate.Event):
        campaign_id: IdStr
        title: str
        kind: OneOf(CAMPAIGN_KINDS)
        scope_unit_id: IdStr
        starts_on: DateStr
        ends_on: DateStr
        categories: list[OneOf(FOUR_WINDS)]   # the codes it targets (empty: any)
        description: str
        launched_on: DateStr

        def apply(self, c):
            c.scope_unit_id = self.scope_unit_id
            c.starts_on = self.starts_on
            c.ends_on = self.ends_on
            c.categories = list(self.categories)
            c.closed = False
            c.findings = []

    class FindingTagged(Aggregate.Event):
        campaign_id: IdStr
        finding_id: IdStr
        unit_id: IdStr
        four_winds: OneOf(FOUR_WINDS) | None   # None: not a 四风 problem
        found_on: DateStr
        tagged_on: DateStr

        def apply(self, c):
            c.findings.append(self.finding_id)

    class Closed(Aggregate.Event):
        campaign_id: IdStr
        summary: str
        closed_on: DateStr

        def apply(self, c):
            c.closed = True

    @classmethod
    def launch(cls, campaign_id, title, kind, scope_unit_id, starts_on, ends_on, categories,
               description, today, *, scope: dict | None = None, taken: bool = False):
        """``scope``: the scope unit's directory row (it must be in use); ``taken``: the id
        is in use."""
        if scope is not None:
            require_active(scope, "scope_unit_id")
        if taken:
            raise Conflict("专项「%s」已存在" % campaign_id, {"campaign_id": ["已被占用"]})
        if ends_on < starts_on:
            raise BadInput("结束日期早于开始日期", {"ends_on": ["不得早于开始日期"]})
        if ends_on < today:
            raise BadInput("专项的期限已经过去", {"ends_on": ["不得早于今天"]})
        if len(set(categories)) != len(categories):
            raise BadInput("四风问题类别有重复", {"categories": ["类别重复"]})
        c = cls(campaign_id)
        c.trigger(cls.Launched, campaign_id=campaign_id, title=title, kind=kind,
                  scope_unit_id=scope_unit_id, starts_on=starts_on, ends_on=ends_on,
                  categories=list(categories), description=description, launched_on=today)
        return c

    def tag(self, finding_id: str, unit_in_scope: bool, unit_id: str, found_on: str,
            four_winds: str | None, today: str):
        """A finding joins the campaign: inside its scope and period, once, with a 四风
        category among those the campaign targets (any, when it names none).
        ``unit_in_scope``: the unit it was found in is in the scope's subtree
        (``in_subtree``)."""
        if self.closed:
            raise RuleViolation("该专项已总结收尾，不能再纳入问题")
        if finding_id in self.findings:
            raise RuleViolation("该问题已纳入本专项", {"finding_id": ["已纳入"]})
        if not unit_in_scope:
            raise BadInput("问题所在单位不在专项范围内", {"unit_id": ["不在专项范围内"]})
        if not self.starts_on <= found_on <= self.ends_on:
            raise BadInput("问题发现日期不在专项期间内", {"found_on": ["不在专项期间内"]})
        if four_winds is not None and self.categories and four_winds not in self.categories:
            raise BadInput("该类别不是本专项整治的四风问题", {"four_winds": ["不是本专项的类别"]})
        self.trigger(self.FindingTagged, campaign_id=self.id, finding_id=finding_id,
                     unit_id=unit_id, four_winds=four_winds, found_on=found_on, tagged_on=today)

    def close(self, summary: str, today: str):
        if self.closed:
            raise RuleViolation("该专项已经总结收尾")
        if today < self.starts_on:
            raise RuleViolation("专项尚未开始，不能总结收尾")
        self.trigger(self.Closed, campaign_id=self.id, summary=summary, closed_on=today)



# -- 重点岗位 / 一把手 监督 ---------------------------------------------------------------------------
KEY_POST_KINDS = Choices("重点岗位类别", {"top_leader": "一把手", "key_post": "重点岗位"})


def post_key(post: str) -> str:
    """The register's key for a post name (names are compared trimmed)."""
    return post.strip()


class KeyPostRegister(Aggregate):
    """重点岗位 / 一把手 of one unit (id = unit id): which posts are flagged and why, and the
    inspections that looked at them. Risk points name their post, so a flag here is what
    lets them - and the inspections - be filtered to the posts supervision watches most."""

    class PostFlagged(Aggregate.Event):
        unit_id: IdStr
        post: Annotated[str, {"minLength": 1, "maxLength": 200}]
        kind: OneOf(KEY_POST_KINDS)
        reason: str
        flagged_on: DateStr

        def apply(self, r):
            r.posts = dict(getattr(r, "posts", None) or {})
            r.posts[self.post] = self.kind

    class FlagCleared(Aggregate.Event):
        unit_id: IdStr
        post: str
        reason: str
        cleared_on: DateStr

        def apply(self, r):
            r.posts = {k: v for k, v in r.posts.items() if k != self.post}

    class InspectionFocused(Aggregate.Event):
        unit_id: IdStr
        post: str
        inspection_id: IdStr
        focused_on: DateStr

        def apply(self, r):
            r.focused = list(getattr(r, "focused", None) or []) + [[self.inspection_id, self.post]]

    posts: dict | None = None
    focused: list | None = None

    @classmethod
    def start(cls, unit_id: str):
        r = cls(unit_id)
        r.posts, r.focused = {}, []
        return r

    def flag(self, post: str, kind: str, reason: str, today: str, *, unit: dict | None = None):
        """``unit``: the unit's directory row (it must be in use)."""
        if unit is not None:
            require_active(unit)
        post = post_key(post)
        if (self.posts or {}).get(post) == kind:
            raise RuleViolation("该岗位已标记为「%s」" % KEY_POST_KINDS.label(kind), {"post": ["已标记"]})
        if kind == "top_leader" and any(k == "top_leader" and p != post
                                        for p, k in (self.posts or {}).items()):
            raise RuleViolation("一个单位只有一个一把手岗位，请先取消原来的标记",
                                {"post": ["本单位已有一把手岗位"]})
        self.trigger(self.PostFlagged, unit_id=self.id, post=post, kind=kind, reason=reason,
                     flagged_on=today)

    def clear(self, post: str, reason: str, today: str):
        post = post_key(post)
        if post not in (self.posts or {}):
            raise RuleViolation("该岗位没有标记为重点岗位", {"post": ["未标记"]})
        self.trigger(self.FlagCleared, unit_id=self.id, post=post, reason=reason, cleared_on=today)

    def focus_inspection(self, inspection_id: str, inspection_unit_id: str, post: str, today: str):
        """An inspection of this unit looks at one of its flagged posts (检查聚焦)."""
        post = post_key(post)
        if inspection_unit_id != self.id:
            raise BadInput("检查的不是该岗位所在单位", {"inspection_id": ["检查的是另一个单位"]})
        if post not in (self.posts or {}):
            raise BadInput("该岗位没有标记为一把手或重点岗位", {"post": ["未标记"]})
        if [inspection_id, post] in (self.focused or []):
            raise RuleViolation("该检查已聚焦这个岗位", {"post": ["已聚焦"]})
        self.trigger(self.InspectionFocused, unit_id=self.id, post=post,
                     inspection_id=inspection_id, focused_on=today)

# -- end of 跟踪问效 (H7) --


# -- 群众监督: public reports from the micro-power page (issue 10 #23) ---------------------------
PUBLIC_REPORT_KINDS = Choices("群众反映类型", {"complaint": "投诉", "report": "举报", "opinion": "意见建议"})
PUBLIC_REPORT_STATUSES = Choices("群众反映处理状态", {
    "received": "待处理", "converted": "已转为问题", "dismissed": "不予受理"})


class PublicReport(Aggregate):
    """A complaint or report from the public (群众监督), made on a unit's published 微权力清单
    page without signing in and without personal data (contact details are optional).
    An inspector turns it into a finding (source 群众监督, ``public_report``) - which opens
    its rectification like any finding - or dismisses it with a reason. Whistle-blowing:
    private, it never leaves the node."""

    class Received(Aggregate.Event):
        """A complaint or report from the public about a unit (群众监督)."""
        private = True
        report_id: IdStr
        unit_id: IdStr
        kind: OneOf(PUBLIC_REPORT_KINDS)
        content: Annotated[str, {"minLength": 1, "maxLength": 2000}]
        post: Annotated[str, {"maxLength": 200}] | None   # the 微权力清单 post it concerns
        received_on: DateStr
        contact: Annotated[str, {"maxLength": 200}] | None = None  # optional: none required

        def apply(self, r):
            r.unit_id = self.unit_id
            r.status = "received"
            r.content = self.content
            r.post = self.post

    class Converted(Aggregate.Event):
        """An inspector recorded the report as a finding (source 群众监督)."""
        private = True
        report_id: IdStr
        unit_id: IdStr
        finding_id: IdStr
        on: DateStr
        by: NonEmptyStr

        def apply(self, r):
            r.status = "converted"

    class Dismissed(Aggregate.Event):
        """An inspector dismissed the report (不予受理), saying why."""
        private = True
        report_id: IdStr
        unit_id: IdStr
        reason: NonEmptyStr
        on: DateStr
        by: NonEmptyStr

        def apply(self, r):
            r.status = "dismissed"

    @classmethod
    def receive(cls, report_id, unit_id, kind, content, post, contact, received_on: str, *,
                unit: dict | None = None):
        """``unit``: the unit's directory row (it must be in use)."""
        if unit is not None:
            require_active(unit)
        r = cls(report_id)
        r.trigger(cls.Received, report_id=report_id, unit_id=unit_id, kind=kind, content=content,
                  post=post, received_on=received_on, **({"contact": contact} if contact else {}))
        return r

    def _require_received(self, doing: str):
        if self.status != "received":
            raise RuleViolation("该反映已%s，不能再%s" % (PUBLIC_REPORT_STATUSES.label(self.status), doing),
                                {"report_id": [PUBLIC_REPORT_STATUSES.label(self.status)]})

    def convert(self, finding_id: str, on: str, by: str):
        self._require_received("转为问题")
        self.trigger(self.Converted, report_id=self.id, unit_id=self.unit_id, finding_id=finding_id,
                     on=on, by=by)

    def dismiss(self, reason: str, on: str, by: str):
        self._require_received("不予受理")
        self.trigger(self.Dismissed, report_id=self.id, unit_id=self.unit_id, reason=reason, on=on, by=by)
