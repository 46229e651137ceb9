"""五联五互 - what the city and the districts share, as aggregates. Pure domain code.

Five record kinds, each owned by the node that created it (its *owner*), each its own
aggregate and stream:

========================  ============  ===============================================
经验联享 ``Experience``     上下互学      a write-up others comment on and mark "learned from"
案例联编 ``Case``           上下互通      compiled and revised by its owner; others contribute
活动联办 ``JointActivity``  上下互动      organised by one node; units sign up, nodes attend
典型联树 ``Exemplar``       上下互比      a nomination with indicators; others endorse
难题联解 ``JointProblem``   上下互助      posted with context and deadline; proposals, a
                                         discussion, an accepted solution, a resolution
========================  ============  ===============================================

What other nodes add to a record is never an edit of it: it is a *sub-record* they own
(``Contribution``, ``Comment``, ``LearnedFrom``, ``SignUp``, ``Attendance``,
``Endorsement``, ``Proposal``), append-only, pointing at the record. The owner then acts
on it in its own stream (merges a contribution into a new case revision, accepts a
proposal). One writer per stream, on one node: co-editing never conflicts, by
construction, and a receiver can check "who may write this" from the id alone.

Record ids are ``<owner node>/<slug>`` (``district-a/case-2025-007``): the owner is
part of the identity, so a message about ``district-a/...`` that comes from any other
origin is refused as ``not_owner`` even before the record itself has arrived.

Sharing. Every event of these aggregates carries ``sharing`` and ``recipients`` in its
payload: the audience it may reach. A root record is a draft (``"node"``) until its
owner publishes it; publishing emits a ``Published`` event holding the record's whole
content, so a node that first hears of it then has everything. Later events carry the
record's level; ``Withdrawn`` carries the level it is withdrawn *from*, so the nodes
that saw the record learn that it is gone. A sub-record takes its parent's audience
(``sub_audience``, from the parent's row). ``IndicatorReport`` (figures for 上下互比, recorded
from the supervision and education services) is shared up to the city.

The rules a command decides with that need more than one aggregate take the facts
they need as arguments (the record's row as this node has it, its owner, the unit's row,
whether an id is taken, the trusted nodes): ``require_owner``, ``require_visible``,
``require_trusted``, ``own_unit_name``, ``require_new`` and the sub-records' ``check``
methods; the handlers (``application.py``) read those facts and call them.

Nothing here may describe a person: records are about units, sections and practice
(``Exemplar.description`` is person-free by rule), and input schemas refuse any field
not listed. People, discipline records and evidence files live in other services and
never reach this one's shared events.
"""
from __future__ import annotations

import hashlib
import math
import re
from typing import Annotated

from shared.aggregate import Aggregate, Event, IdStr, DateStr, DateTimeStr, Count, Text, OneOf
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation
from shared.labels import Choices

# as the console offers them: 本单位 (this node only), 上报市级 (this node and the city),
# 市区共享 (the city and every district), 指定单位 (this node and the nodes chosen)
SHARING_LEVELS = Choices("共享范围", {"node": "本单位", "city": "上报市级", "all": "市区共享",
                                   "named": "指定单位"})
RECORD_KINDS = Choices("交流记录类型", {"experience": "经验", "case": "案例", "activity": "活动",
                                    "exemplar": "典型", "problem": "难题", "escalation": "督办件"})
SUB_KINDS = Choices("附属记录类型", {"contribution": "补充内容", "comment": "评论", "learned": "学习记录",
                                 "signup": "报名", "attendance": "参加记录", "endorsement": "推荐",
                                 "proposal": "方案", "followup": "督办记录"})
# the statuses the five record kinds move through (each kind uses some of them)
ACTIVITY_STATUSES = ("planned", "announced", "completed", "cancelled")    # of RECORD_STATUSES
PROBLEM_STATUSES = ("draft", "open", "solution_accepted", "resolved")     # of RECORD_STATUSES
RECORD_STATUSES = Choices("记录状态", {"draft": "草稿", "planned": "计划中", "announced": "已发布",
                                   "completed": "已完成", "cancelled": "已取消", "open": "待解决",
                                   "solution_accepted": "已采纳方案", "resolved": "已解决",
                                   # experiences, cases and exemplars once shared, and any withdrawn
                                   "published": "已发布", "withdrawn": "已撤回"})


# why another node's message was refused (shared.federation's ``EnvelopeRejected.reason``;
# the console's test_console_outreach checks every reason has its label) and a broker federation
# link's state, as the node-status page names them
REJECTION_REASON_LABELS = Choices("拒收原因", {
    "feed_page_invalid": "同步页签名无效", "invalid_payload": "内容不符合契约",
    "malformed": "格式错误", "not_entitled": "本节点无权接收", "not_owner": "发送方不是记录所有者",
    "own_origin": "冒用本节点名义", "rejected": "其他原因", "sequence_reused": "序号重复使用",
    "signature_invalid": "签名无效", "signer_mismatch": "签名节点与来源不符",
    "unknown_type": "未知的事件类型", "unsupported_schema": "不支持的版本",
    "untrusted_node": "未受信任的节点"})
FEDERATION_LINK_STATES = Choices("联邦链路状态", {"starting": "正在连接", "running": "运行中",
                                            "error": "出错", "shutdown": "已停止"})


# what a comment may discuss: a shared record (督办件 aside: the city follows those up) or a proposal
COMMENT_PARENT_KINDS = (*(k for k in RECORD_KINDS if k != "escalation"), "proposal")


def kind_label(kind: str) -> str:
    """A record's or sub-record's kind as a person reads it (经验, 方案, ...)."""
    return RECORD_KINDS.labels.get(kind) or SUB_KINDS.label(kind)

CONTRIBUTION_TYPES = Choices("补充类型", {"analysis": "分析", "local_lesson": "本地教训",
                                      "supplement": "补充材料"})
EXEMPLAR_CATEGORIES = Choices("典型类别", {"model_section": "模范科室", "demonstration_site": "示范点",
                                       "practice": "典型做法", "window": "窗口"})
# what a sub-record's row says of it (projections.SharedRecords)
SUB_STATUSES = Choices("附属记录状态", {
    "open": "待合并", "merged": "已合并", "posted": "已发表", "marked": "已标记",
    "active": "已报名", "withdrawn": "已撤回", "recorded": "已登记", "corrected": "已更正",
    "given": "已推荐", "submitted": "已提交", "accepted": "已采纳"})
# a joint problem's deadline as the console colours it (red, yellow, green)
DEADLINE_STATES = Choices("期限状态", {"overdue": "已逾期", "due_soon": "即将到期",
                                   "on_track": "按期推进", "done": "已解决"})
INDICATOR_SOURCES = Choices("指标来源", {"supervision": "监督", "education": "教育",
                                      "units": "单位与责任"})
COMPARED_SOURCES = ("supervision", "education")  # the INDICATOR_SOURCES 上下互比 compares
# discipline: 四种形态 counts per quarter for the whole node (counts only, never records)
INDICATOR_SCOPES = Choices("指标范围", {"unit": "各单位指标", "district": "全区指标",
                                     "discipline": "四种形态数量"})
# 上下互比: the figures the districts' supervision and education services publish
# (supervision.domain UNIT_FIGURES / DISTRICT_FIGURES, education.domain INDICATOR_FIELDS),
# as the city's people read them
COMPARED_INDICATORS = Choices("上下互比指标", {
    "units": "单位数", "findings_total": "发现问题数", "rectifications_closed": "整改销号数",
    "closed_on_time": "按期销号数", "closure_rate": "整改销号率", "timeliness_rate": "按期整改率",
    "overdue_count": "逾期未整改数", "escalated_count": "升级督办数",
    "escalated_to_city": "升级至市级数", "risk_high": "高风险点数", "risk_medium": "中风险点数",
    "risk_low": "低风险点数", "screening_on_time": "按期排查", "screening_overdue": "排查逾期",
    "screening_on_time_rate": "按期排查率", "screening_overdue_units": "排查逾期单位数",
    "micro_power_missing": "缺少微权力清单数", "micro_power_missing_units": "缺少微权力清单的单位数",
    "warning_education_held": "开展警示教育", "checkin_coverage": "廉洁打卡覆盖率",
    "talks_on_time_rate": "廉政谈话按期率"})
_LOWER_IS_BETTER = ("overdue", "missing", "escalated", "risk_high", "risk_medium")


def lower_is_better(indicator: str) -> bool:
    """上下互比 ranks best first: counts of what went wrong (overdue, missing, escalated,
    high and medium risks) rank the other way round - fewest first."""
    return any(word in indicator for word in _LOWER_IS_BETTER)


def sort_value(indicator: str, value: float) -> float:
    """A figure's place in 上下互比's ranking order: ascending is best first (the value,
    negated where higher is better)."""
    return value if lower_is_better(indicator) else -value


def is_rate(indicator: str) -> bool:
    """A share 0..1 (shown as a percentage), not a count."""
    return indicator.endswith("_rate") or indicator.endswith("coverage")


# numbers a published-figures report carries that mark the report instead of measuring
# anything: never compared or ranked, carried as a flag on the unit's / district's row.
# ``provisional`` (1): the month is still open for late entries (education's and
# supervision's monthly figures, shared.months.month_final) - the final figures replace
# these when the grace period is over.
REPORT_MARKS = frozenset({"provisional"})
# how the city's pages name a report's month: 暂定 while it is open, 最终 after
REPORT_STATES = Choices("指标状态", {"provisional": "暂定", "final": "最终"})


def split_marks(figures: dict) -> tuple[dict, bool]:
    """A report's numbers -> (the figures to compare, provisional?)."""
    return ({k: v for k, v in figures.items() if k not in REPORT_MARKS},
            bool(figures.get("provisional")))

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_NODE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


# -- identity --------------------------------------------------------------------------
def record_id(owner: str, slug: str) -> str:
    if not _NODE.match(owner or ""):
        raise BadInput("节点标识无效", {"owner": ["只能包含小写字母、数字和“-”"]})
    if not _SLUG.match(slug or ""):
        raise BadInput("标识无效", {"id": ["1 到 80 个字母、数字或“_ . -”（不能含“/”）"]})
    return "%s/%s" % (owner, slug)


def owner_of(rid: str) -> str | None:
    """The owner node named by a record id, or None if the id is not ``<node>/<slug>``."""
    if not isinstance(rid, str) or rid.count("/") != 1:
        return None
    owner, slug = rid.split("/", 1)
    return owner if _NODE.match(owner) and _SLUG.match(slug) else None


def derived_id(owner: str, prefix: str, *parts: str) -> str:
    """A deterministic id for "one per X" sub-records (one sign-up per activity and
    unit, one endorsement per exemplar and node): a second attempt finds the stream."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return record_id(owner, "%s-%s" % (prefix, digest))


def who_sees(sharing: str, recipients: list[str] | None, owner: str, city: str | None,
             nodes: list[str]) -> list[str]:
    """The nodes (of ``nodes``, the trusted ones) that will see a record shared so: the
    owner always; ``city`` adds the city; ``all`` is everyone; ``named`` the chosen."""
    if sharing == "all":
        seen = set(nodes) | {owner}
    else:
        seen = {owner}
        if sharing == "city" and city:
            seen.add(city)
        if sharing == "named":
            seen.update(recipients or ())
    return sorted(seen, key=lambda n: (n != owner, n != city, n))


def deadline_state(status: str, deadline: str | None, today: str, soon_days: int) -> str:
    """A joint problem's deadline: ``done`` once resolved, ``overdue`` past it while
    unresolved (``problem_overdue``), ``due_soon`` within ``soon_days``, else ``on_track``."""
    from datetime import date, timedelta
    if status == "resolved":
        return "done"
    if problem_overdue(status, deadline, today):
        return "overdue"
    if deadline and date.fromisoformat(deadline) <= date.fromisoformat(today) + timedelta(days=soon_days):
        return "due_soon"
    return "on_track"


def check_sharing(sharing: str, recipients: list[str] | None, owner: str) -> list[str]:
    """Validate a sharing choice; returns the normalised recipients."""
    recipients = sorted(set(recipients or ()))
    if sharing not in SHARING_LEVELS:
        raise BadInput("未知的共享范围", {"sharing": [SHARING_LEVELS.error()]})
    if sharing == "named":
        others = [r for r in recipients if r != owner]
        if not others:
            raise BadInput("“指定节点”共享必须填写接收节点",
                           {"recipients": ["至少一个本节点以外的节点"]})
        bad = [r for r in recipients if not _NODE.match(r)]
        if bad:
            raise BadInput("接收节点无效", {"recipients": ["不是节点标识：%s" % ", ".join(bad)]})
        return others
    if recipients:
        raise BadInput("只有“指定节点”共享才能填写接收节点",
                       {"recipients": ["仅限“指定节点”共享"]})
    return []


def audience_of(row: dict, city_id: str | None) -> set[str]:
    """Every node entitled to see a record row (its owner included; ``"*"``: every node)."""
    if row["sharing"] == "all":
        return {"*"}
    nodes = {row["owner"]}
    if row["sharing"] == "city" and city_id:
        nodes.add(city_id)
    if row["sharing"] == "named":
        nodes.update(row["recipients"])
    return nodes


def may_see(row: dict, node: str, city_id: str | None) -> bool:
    aud = audience_of(row, city_id)
    return "*" in aud or node in aud


def sub_audience(row: dict, this_node: str, city_id: str | None) -> tuple[str, list[str]]:
    """The audience of something this node adds to the record ``row``: the record's own
    audience (as sharing and recipients; this node itself is no recipient)."""
    if row["sharing"] in ("all", "node"):
        return row["sharing"], []
    others = sorted(audience_of(row, city_id) - {this_node})
    return ("named", others) if others else ("node", [])


# -- what a command checks in the facts its handler read ------------------------------------
# (application.py reads them: the record's row as this node has it, the unit's row in the
# mirrored directory, whether an id is taken, which nodes are trusted; these decide.)
def require_owner(rid: str, kind: str, this_node: str, instead: str) -> None:
    """Only the owner node changes a record: another node is told what it can do
    ``instead`` (comment, contribute, propose...). The message names no id, so the
    console shows it as it is (a person reads it; ids are for the API's ``fields``)."""
    owner = owner_of(rid)
    if owner != this_node:
        raise Forbidden("这条%s由其他节点创建，只有创建它的节点可以修改（%s）"
                        % (kind_label(kind), instead),
                        {"record_id": ["%s 属于节点 %s" % (rid, owner)]})


def require_trusted(nodes: list[str], trusted: set[str], field: str) -> None:
    """Named recipients and invited nodes are nodes this one trusts (``trusted``: those
    of ``nodes`` in the registry)."""
    unknown = [n for n in nodes if n not in trusted]
    if unknown:
        raise BadInput("未知的节点", {field: ["不是本节点信任的节点：%s" % ", ".join(unknown)]})


def own_unit_name(unit: dict | None, unit_id: str | None, field: str = "unit_id") -> str | None:
    """The name of a unit of this node (``unit``: its row in the mirrored unit tree, None
    if there is none), which must be in use; it travels with the record, since other
    nodes do not have this node's units. No unit named: no name."""
    if unit_id is None:
        return None
    if unit is None or not unit["active"]:
        raise NotFound("本节点没有单位「%s」" % unit_id, {field: ["没有这个在用的单位"]})
    return unit["name"]


def require_visible(row: dict | None, rid: str, kind: str | None = None) -> dict:
    """A node adds to a record only if it is here and published - its own, or shared
    with this node (``row``: the record's row here, None if there is none)."""
    if row is None or (kind and row["kind"] != kind):
        raise NotFound("本节点没有%s「%s」" % (kind_label(kind) if kind else "记录", rid),
                       {"record_id": ["未共享给本节点"]})
    if not row["published"]:
        raise RuleViolation("%s「%s」尚未发布（当前为「%s」）"
                            % (kind_label(row["kind"]), rid, RECORD_STATUSES.label(row["status"])))
    return row


def require_known(found, rid: str):
    """A record asked for by id (its detail, its history) is one this node has."""
    if not found:
        raise NotFound("本节点没有记录「%s」" % rid)
    return found


def require_new(kind: str, rid: str, taken: bool, field: str | None = None) -> None:
    """An id names one record or sub-record: another of ``kind`` with it is a conflict
    (``taken``: its stream exists; ``field``: the input field that named the id)."""
    if taken:
        raise Conflict("%s「%s」已存在" % (kind_label(kind), rid), {field: ["已被占用"]} if field else None)


def numbers(indicators: dict) -> dict:
    """Indicators as they are shared: finite numbers only, whole numbers as ints (they
    print the same in every language that verifies)."""
    out = {}
    for name, value in indicators.items():
        if not math.isfinite(value):
            raise BadInput("指标必须是有限的数值", {"indicators": [name]})
        out[name] = int(value) if float(value).is_integer() else value
    return out


# payload field types several events share
RecordId = Annotated[str, {
    "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
}, "the record's id: <owner node>/<slug>"]
Sharing = Annotated[OneOf(SHARING_LEVELS), "audience: node-only, up to the city, city and all districts, named nodes"]
Recipients = Annotated[list, {
    "items": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"},
    "uniqueItems": True,
}, "node ids, only with sharing 'named'"]
OwnerUnitId = Annotated[IdStr, "a unit of the owner node (机关单位/科室)"]
UnitName = Annotated[Text(200), "the unit's name, as the owner node knows it"]
Topics = Annotated[list, {
    "items": {"type": "string", "minLength": 1, "maxLength": 60},
    "maxItems": 20,
}]
Attachments = Annotated[list, {
    "maxItems": 20,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "uri", "sha256"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "uri": {"type": "string", "maxLength": 1000, "pattern": "^https?://"},
            "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
        },
    },
}, "references to documents kept elsewhere, never the files"]
RecordRef = Annotated[str, {
    "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
}]
UnitNameOrNone = Annotated[str, {"maxLength": 200}, "the unit's name, as the owner node knows it"]
Lessons = Annotated[list, {
    "items": {"type": "string", "minLength": 1, "maxLength": 2000},
    "minItems": 1,
    "maxItems": 50,
}]
MergedContributions = Annotated[list, {
    "items": {
        "type": "string",
        "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
    },
}, "contributions merged into the case so far"]
InvitedNodes = Annotated[list, {
    "items": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"},
}]
Outcome = Annotated[dict, {
    "additionalProperties": False,
    "required": ["summary", "results"],
    "properties": {
        "summary": {"type": "string", "minLength": 1, "maxLength": 5000},
        "results": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 2000},
            "minItems": 1,
            "maxItems": 50,
        },
    },
}]
Headcount = Annotated[int, {"minimum": 1, "maximum": 10000}]
Units = Annotated[list, {
    "minItems": 1,
    "maxItems": 200,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["unit_id", "unit_name", "attendees"],
        "properties": {
            "unit_id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                "description": "a unit of the owner node (机关单位/科室)",
            },
            "unit_name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "the unit's name, as the owner node knows it",
            },
            "attendees": {"type": "integer", "minimum": 0},
        },
    },
}]
Section = Annotated[str, {"maxLength": 100}, "科室/窗口 name: a place, never a person"]
Indicators = Annotated[dict, {
    "minProperties": 1,
    "maxProperties": 50,
    "additionalProperties": {"type": "number"},
    "propertyNames": {"minLength": 1, "maxLength": 60},
}, "indicator name -> value (numbers only)"]
Period = Annotated[str, {"pattern": "^\\d{4}(-(H[12]|Q[1-4]|\\d{2}))?$"}]
Resolution = Annotated[dict, {
    "additionalProperties": False,
    "required": ["summary", "results", "measures", "resolved_on", "proposal_id"],
    "properties": {
        "summary": {"type": "string", "minLength": 1, "maxLength": 5000},
        "results": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 2000},
            "minItems": 1,
            "maxItems": 50,
        },
        "measures": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 2000},
            "minItems": 0,
            "maxItems": 50,
        },
        "resolved_on": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
        "proposal_id": {
            "type": ["string", "null"],
            "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
        },
    },
}]


# -- base classes ----------------------------------------------------------------------
class SharedAggregate(Aggregate):
    """Base of every aggregate here: one owner, and each event stamped with the audience
    it may reach (see the module doc)."""

    kind = ""       # the routing-key kind: experience, case, activity, exemplar, problem...
    id_field = ""   # payload field holding the aggregate's id

    @property
    def owner(self) -> str:
        return owner_of(self.id)

    def audience_now(self) -> tuple[str, list[str]]:
        return getattr(self, "sharing", "node"), list(getattr(self, "recipients", []))

    def trigger(self, event_cls, **data):
        data.setdefault(self.id_field, self.id)
        if "sharing" not in data:
            data["sharing"], data["recipients"] = self.audience_now()
        return super().trigger(event_cls, **data)


class _Opened(Event):
    """First event of a sub-record (or an indicator report): it sets the audience that
    every later event of the stream carries (``SharedAggregate.trigger``). Every such
    first event derives from this class, so a replayed stream never forgets its level
    and emits its next event as node-only."""

    def apply(self, s):
        s.sharing, s.recipients = self.sharing, list(self.recipients)


class _Created(Event):
    """First event of a record: its content, not yet shared."""

    def apply(self, r):
        r.sharing, r.recipients = self.sharing, list(self.recipients)
        r.published = False
        r.withdrawn = False
        r.load_content(self.__dict__)


class _Published(Event):
    """The record is shared at ``sharing``: the payload is its whole current content,
    so a node that first hears of it has everything."""

    def apply(self, r):
        r.load_content(self.__dict__)
        r.published, r.withdrawn = True, False
        r.sharing, r.recipients = self.sharing, list(self.recipients)


class _Withdrawn(Event):
    """No longer shared: the nodes that could see it drop it from their feeds."""

    def apply(self, r):
        r.published, r.withdrawn = False, True


class Record(SharedAggregate):
    """A root record: drafted by its owner, then published, revised, withdrawn."""

    CONTENT: tuple[str, ...] = ()

    def load_content(self, payload: dict) -> None:
        for field in self.CONTENT:
            if field in payload:
                setattr(self, field, payload[field])

    def content(self) -> dict:
        return {f: getattr(self, f, None) for f in self.CONTENT}

    def published_content(self) -> dict:
        """What the ``Published`` event carries (a kind may move its status on)."""
        return self.content()

    def audience_now(self):
        if getattr(self, "published", False):
            return self.sharing, list(self.recipients)
        return "node", []

    def require_published(self, what: str) -> None:
        if not getattr(self, "published", False):
            raise RuleViolation("%s「%s」尚未发布" % (kind_label(what), self.id))

    def check_audience(self, sharing: str, this_node: str, city_id: str | None) -> None:
        """Whether the record may be shared at ``sharing`` as this node and its city see
        it (nothing to check but for an activity's invited nodes)."""

    def share(self, sharing: str, recipients: list[str]) -> None:
        """Publish at a level; re-sharing at another level withdraws from the old
        audience first (nodes that lose sight of it must hear so)."""
        recipients = check_sharing(sharing, recipients, self.owner)
        if getattr(self, "published", False):
            if (self.sharing, self.recipients) == (sharing, recipients):
                raise RuleViolation("「%s」已经按「%s」共享" % (self.id, SHARING_LEVELS.label(sharing)))
            self.trigger(type(self).Withdrawn, reason="sharing changed to %s" % sharing)
        self.trigger(type(self).Published, sharing=sharing, recipients=recipients,
                     **self.published_content())

    def withdraw(self, reason: str) -> None:
        self.require_published(self.kind)
        self.trigger(type(self).Withdrawn, reason=reason)


class SubRecord(SharedAggregate):
    """Something a node adds to another record: created already shared, with its
    parent's audience, never edited by anyone but its owner."""

    parent_field = ""  # payload field naming the parent record


# -- 经验联享 ----------------------------------------------------------------------------
class Experience(Record):
    """经验联享: a write-up of what worked, tagged by business type and topic."""

    kind, id_field = "experience", "experience_id"
    CONTENT = ("unit_id", "unit_name", "title", "summary", "body", "business_type", "topics",
               "attachments")

    class Drafted(_Created):
        """An experience write-up was drafted (not shared yet)."""
        experience_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        summary: Text(1000)
        body: Text(20000)
        business_type: Annotated[Text(50), "业务类型"]
        topics: Topics
        attachments: Attachments

    class Edited(Event):
        """The write-up was edited (shared if the experience is published)."""
        experience_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        summary: Text(1000)
        body: Text(20000)
        business_type: Annotated[Text(50), "业务类型"]
        topics: Topics
        attachments: Attachments


        def apply(self, r):
            r.load_content(self.__dict__)

    class Published(_Published):
        """The experience was shared: full content."""
        experience_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        summary: Text(1000)
        body: Text(20000)
        business_type: Annotated[Text(50), "业务类型"]
        topics: Topics
        attachments: Attachments

    class Withdrawn(_Withdrawn):
        """The experience is no longer shared."""
        experience_id: RecordId
        sharing: Sharing
        recipients: Recipients
        reason: Text(500)

    @classmethod
    def draft(cls, eid: str, content: dict) -> "Experience":
        e = cls(eid)
        e.trigger(cls.Drafted, **{f: content.get(f) for f in cls.CONTENT})
        return e

    def edit(self, changes: dict) -> None:
        new = dict(self.content(), **{k: v for k, v in changes.items() if k in self.CONTENT})
        if new == self.content():
            raise RuleViolation("修改内容与当前版本相同，没有任何改动")
        self.trigger(self.Edited, **new)


class LearnedFrom(SubRecord):
    """上下互学: a unit of some node marks that it learnt from an experience."""

    kind, id_field, parent_field = "experience", "learned_id", "experience_id"

    class Marked(_Opened):
        """A unit marked an experience as learnt from, with what it took from it."""
        learned_id: RecordId
        sharing: Sharing
        recipients: Recipients
        experience_id: RecordRef
        unit_id: OwnerUnitId
        unit_name: UnitName
        note: Text(2000)

    @staticmethod
    def check(unit_id: str, experience_id: str, taken: bool) -> None:
        """One mark per unit and experience (``taken``: the unit's mark exists)."""
        if taken:
            raise Conflict("单位「%s」已将「%s」标记为学习过" % (unit_id, experience_id))

    @classmethod
    def mark(cls, lid, sharing, recipients, experience_id, unit_id, unit_name, note):
        m = cls(lid)
        m.trigger(cls.Marked, sharing=sharing, recipients=recipients,
                  experience_id=experience_id, unit_id=unit_id, unit_name=unit_name, note=note)
        return m


class Comment(SubRecord):
    """Discussion on any shared record (or on a proposal): append-only."""

    id_field, parent_field = "comment_id", "parent_id"

    class Posted(_Opened):
        """A comment in the discussion of a shared record."""
        comment_id: RecordId
        sharing: Sharing
        recipients: Recipients
        parent_kind: OneOf(COMMENT_PARENT_KINDS)
        parent_id: Annotated[str, {
            "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
        }, "the record or proposal commented on"]
        record_id: Annotated[str, {
            "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
        }, "the root record of the discussion"]
        text: Text(5000)
        unit_id: OwnerUnitId | None
        unit_name: UnitNameOrNone | None
        reply_to: RecordRef | None

    @staticmethod
    def on_proposal(proposal: dict | None, proposal_id: str) -> dict:
        """A comment on a proposal needs the proposal here (``proposal``: its row, None if
        there is none); its discussion is the problem's (``proposal["record_id"]``)."""
        if proposal is None or proposal["sub_kind"] != "proposal":
            raise NotFound("本节点没有方案「%s」" % proposal_id)
        return proposal

    @staticmethod
    def check_reply(reply: dict | None, record_id: str) -> None:
        """A reply answers a comment of the same discussion (``reply``: the row of the
        comment answered, None if there is none)."""
        if reply is None or reply["sub_kind"] != "comment" or reply["record_id"] != record_id:
            raise BadInput("回复的对象不是本讨论中的评论",
                           {"reply_to": ["「%s」下没有这条评论" % record_id]})

    @classmethod
    def post(cls, cid, sharing, recipients, parent_kind, parent_id, record_id, text, unit_id,
             unit_name, reply_to):
        """``record_id`` is the root record the discussion belongs to (the problem, for
        a comment on one of its proposals): a receiver files it without a lookup."""
        c = cls(cid)
        c.trigger(cls.Posted, sharing=sharing, recipients=recipients, parent_kind=parent_kind,
                  parent_id=parent_id, record_id=record_id, text=text, unit_id=unit_id,
                  unit_name=unit_name, reply_to=reply_to)
        return c


# -- 案例联编 ----------------------------------------------------------------------------
class Case(Record):
    """案例联编: a typical case compiled by its owner node, analysed jointly."""

    kind, id_field = "case", "case_id"
    CONTENT = ("unit_id", "unit_name", "title", "category", "summary", "facts", "analysis",
               "lessons", "tags", "revision", "merged_contributions")
    EDITABLE = ("title", "category", "summary", "facts", "analysis", "lessons", "tags")

    class Compiled(_Created):
        """A case was compiled (revision 1, not shared yet)."""
        case_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        category: Text(100)
        summary: Text(1000)
        facts: Text(20000)
        analysis: Text(20000)
        lessons: Lessons
        tags: Topics
        revision: Annotated[int, {"minimum": 1}]
        merged_contributions: MergedContributions

    class Published(_Published):
        """The case was shared: full content of its current revision."""
        case_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        category: Text(100)
        summary: Text(1000)
        facts: Text(20000)
        analysis: Text(20000)
        lessons: Lessons
        tags: Topics
        revision: Annotated[int, {"minimum": 1}]
        merged_contributions: MergedContributions

    class Revised(Event):
        """The owner made a new revision, possibly merging others' contributions."""
        case_id: RecordId
        sharing: Sharing
        recipients: Recipients
        title: Text(200)
        category: Text(100)
        summary: Text(1000)
        facts: Text(20000)
        analysis: Text(20000)
        lessons: Lessons
        tags: Topics
        revision: Annotated[int, {"minimum": 2}]
        merged_now: Annotated[list, {
            "items": {
                "type": "string",
                "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
            },
        }, "contributions merged by this revision"]
        note: Text(1000)


        def apply(self, c):
            c.load_content(self.__dict__)
            c.merged_contributions = sorted(set(c.merged_contributions)
                                            | set(self.merged_now))

    class Withdrawn(_Withdrawn):
        """The case is no longer shared."""
        case_id: RecordId
        sharing: Sharing
        recipients: Recipients
        reason: Text(500)

    @classmethod
    def compile(cls, cid: str, content: dict) -> "Case":
        c = cls(cid)
        data = {f: content.get(f) for f in cls.CONTENT}
        data.update(revision=1, merged_contributions=[])
        c.trigger(cls.Compiled, **data)
        return c

    @staticmethod
    def check_merge(case_id: str, contributions: list[tuple[str, dict | None]]) -> None:
        """What a revision merges are contributions to this case (``contributions``: each
        id asked for with its row here, None if there is none)."""
        for cid, row in contributions:
            if row is None or row["sub_kind"] != "contribution" or row["parent_id"] != case_id:
                raise BadInput("不是该案例的补充内容",
                               {"merge_contributions": ["「%s」不是「%s」的补充内容" % (cid, case_id)]})

    def revise(self, changes: dict, merge: list[str], note: str) -> None:
        merge = sorted(set(merge))
        already = sorted(set(merge) & set(self.merged_contributions))
        if already:
            raise RuleViolation("以下补充内容已合并：%s" % ", ".join(already),
                                {"merge_contributions": ["已合并"]})
        new = {f: getattr(self, f) for f in self.EDITABLE}
        new.update({k: v for k, v in changes.items() if k in self.EDITABLE})
        if new == {f: getattr(self, f) for f in self.EDITABLE} and not merge:
            raise RuleViolation("修订既没有改动内容，也没有合并任何补充")
        self.trigger(self.Revised, revision=self.revision + 1, merged_now=merge, note=note,
                     **new)


class Contribution(SubRecord):
    """What another node adds to a case: analysis, a local lesson, supplementary facts."""

    kind, id_field, parent_field = "case", "contribution_id", "case_id"

    class Added(_Opened):
        """A node contributed to another node's case (append-only)."""
        contribution_id: RecordId
        sharing: Sharing
        recipients: Recipients
        case_id: RecordRef
        contribution_type: OneOf(CONTRIBUTION_TYPES)
        text: Text(20000)
        unit_id: OwnerUnitId | None
        unit_name: UnitNameOrNone | None

    @staticmethod
    def check(case: dict, this_node: str) -> None:
        """Contributions come from other nodes: the owner revises its case instead
        (``case``: the case's row)."""
        if case["owner"] == this_node:
            raise RuleViolation("该案例属于本节点：请直接修订，而不是提交补充")

    @classmethod
    def add(cls, cid, sharing, recipients, case_id, contribution_type, text, unit_id, unit_name):
        c = cls(cid)
        c.trigger(cls.Added, sharing=sharing, recipients=recipients, case_id=case_id,
                  contribution_type=contribution_type, text=text, unit_id=unit_id,
                  unit_name=unit_name)
        return c


# -- 活动联办 ----------------------------------------------------------------------------
def require_activity_open(status: str) -> None:
    """An activity takes sign-ups and changes until it is completed or cancelled."""
    if status in ("completed", "cancelled"):
        raise RuleViolation("该活动当前为「%s」" % RECORD_STATUSES.label(status))


class JointActivity(Record):
    """活动联办: an activity one node organises with others (e.g. a 专题党日 where
    everyone 共学党纪法规、共看警示短片、共上廉政党课、共话清廉感悟)."""

    kind, id_field = "activity", "activity_id"
    CONTENT = ("unit_id", "unit_name", "title", "theme", "description", "starts_at", "ends_at",
               "location", "invited_nodes", "status", "outcome")

    class Planned(_Created):
        """A joint activity was planned (not announced yet)."""
        activity_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        theme: Text(200)
        description: Text(5000)
        starts_at: DateTimeStr
        ends_at: DateTimeStr
        location: Text(300)
        invited_nodes: InvitedNodes
        status: OneOf(ACTIVITY_STATUSES)
        outcome: Outcome | None

    class Published(_Published):
        """The activity was announced to the invited nodes."""
        activity_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        theme: Text(200)
        description: Text(5000)
        starts_at: DateTimeStr
        ends_at: DateTimeStr
        location: Text(300)
        invited_nodes: InvitedNodes
        status: OneOf(ACTIVITY_STATUSES)
        outcome: Outcome | None

    class Rescheduled(Event):
        """The schedule or place changed."""
        activity_id: RecordId
        sharing: Sharing
        recipients: Recipients
        starts_at: DateTimeStr
        ends_at: DateTimeStr
        location: Text(300)
        note: Text(500)


        def apply(self, a):
            a.starts_at, a.ends_at, a.location = self.starts_at, self.ends_at, self.location

    class OutcomeReported(Event):
        """The organiser reported how it went (成效)."""
        activity_id: RecordId
        sharing: Sharing
        recipients: Recipients
        summary: Text(5000)
        results: Lessons


        def apply(self, a):
            a.status = "completed"
            a.outcome = {"summary": self.summary, "results": self.results}

    class Cancelled(Event):
        """The activity will not take place."""
        activity_id: RecordId
        sharing: Sharing
        recipients: Recipients
        reason: Text(500)


        def apply(self, a):
            a.status = "cancelled"

    class Withdrawn(_Withdrawn):
        """The activity is no longer shared."""
        activity_id: RecordId
        sharing: Sharing
        recipients: Recipients
        reason: Text(500)

    @classmethod
    def plan(cls, aid: str, content: dict) -> "JointActivity":
        if content["ends_at"] < content["starts_at"]:
            raise BadInput("活动的结束时间早于开始时间", {"ends_at": ["早于开始时间"]})
        a = cls(aid)
        data = {f: content.get(f) for f in cls.CONTENT}
        data.update(status="planned", outcome=None,
                    invited_nodes=sorted(set(content.get("invited_nodes") or ())))
        a.trigger(cls.Planned, **data)
        return a

    @classmethod
    def for_session(cls, aid: str, session: dict, this_node: str, trusted: set[str],
                    organiser: dict | None) -> "JointActivity | None":
        """上下联学: a session this node's education service shares with other nodes
        (``StudySession.SharedWithNodes``) as this node's activity, shared ``named`` with
        the nodes this one trusts (``trusted``: those of the session's nodes in the
        registry; the others are left out) - None when none is left. Its theme is the
        session's kind, its unit the organiser (``organiser``: the unit's row here); it
        starts and ends at the session's time."""
        nodes = sorted((set(session["nodes"]) & trusted) - {this_node})
        if not nodes:
            return None
        activity = cls.plan(aid, {
            "unit_id": session["organiser_unit_id"],
            "unit_name": own_unit_name(organiser, session["organiser_unit_id"]),
            "title": session["title"], "theme": session["theme"],
            "description": "%s（%s，由%s组织）" % (session["title"], session["theme"], this_node),
            "starts_at": session["scheduled_at"], "ends_at": session["scheduled_at"],
            "location": "见活动通知", "invited_nodes": nodes})
        activity.share("named", nodes)
        return activity

    def check_audience(self, sharing: str, this_node: str, city_id: str | None) -> None:
        """The invited nodes must see the activity: shared with everyone or named (the
        invited are added to the recipients, ``share``), or up to the city when only the
        city is invited; this node's own view or the city's leave the others blind."""
        if sharing in ("all", "named") or not self.invited_nodes:
            return
        visible = {this_node} | ({city_id} if sharing == "city" and city_id else set())
        blind = [n for n in self.invited_nodes if n not in visible]
        if blind:
            raise RuleViolation("按「%s」共享时，受邀节点看不到该活动" % SHARING_LEVELS.label(sharing),
                                {"sharing": ["请设为“市区共享”或“指定单位”共享（受邀节点：%s）"
                                             % "、".join(blind)]})

    def share(self, sharing: str, recipients: list[str]) -> None:
        """Announcing. Shared 'named', the invited nodes are always among the recipients
        (``check_audience``: at every other level, whether they can see it)."""
        if sharing == "named":
            recipients = sorted(set(recipients or ()) | set(self.invited_nodes))
        super().share(sharing, recipients)

    def published_content(self) -> dict:
        content = self.content()
        if content["status"] == "planned":
            content["status"] = "announced"
        return content

    def _require_open(self) -> None:
        self.require_published("activity")
        require_activity_open(self.status)

    def reschedule(self, starts_at: str, ends_at: str, location: str, note: str) -> None:
        self._require_open()
        if ends_at < starts_at:
            raise BadInput("活动的结束时间早于开始时间", {"ends_at": ["早于开始时间"]})
        if (starts_at, ends_at, location) == (self.starts_at, self.ends_at, self.location):
            raise RuleViolation("活动时间没有变化")
        self.trigger(self.Rescheduled, starts_at=starts_at, ends_at=ends_at, location=location,
                     note=note)

    def report_outcome(self, summary: str, results: list[str]) -> None:
        self._require_open()
        self.trigger(self.OutcomeReported, summary=summary, results=results)

    def cancel(self, reason: str) -> None:
        self._require_open()
        self.trigger(self.Cancelled, reason=reason)


class SignUp(SubRecord):
    """报名: one unit of some node signs up for a joint activity, with a headcount."""

    kind, id_field, parent_field = "activity", "signup_id", "activity_id"

    class Registered(_Opened):
        """A unit signed up for a joint activity."""
        signup_id: RecordId
        sharing: Sharing
        recipients: Recipients
        activity_id: RecordRef
        unit_id: OwnerUnitId
        unit_name: UnitName
        headcount: Headcount


        def apply(self, s):
            super().apply(s)
            s.activity_id, s.unit_id, s.headcount, s.active = (
                self.activity_id, self.unit_id, self.headcount, True)

    class HeadcountChanged(Event):
        """The unit changed how many people it sends."""
        signup_id: RecordId
        sharing: Sharing
        recipients: Recipients
        activity_id: RecordRef
        unit_id: OwnerUnitId
        headcount: Headcount


        def apply(self, s):
            s.headcount = self.headcount

    class Withdrawn(Event):
        """The unit withdrew its sign-up."""
        signup_id: RecordId
        sharing: Sharing
        recipients: Recipients
        activity_id: RecordRef
        unit_id: OwnerUnitId
        reason: Text(500)


        def apply(self, s):
            s.active = False

    @classmethod
    def register(cls, sid, sharing, recipients, activity_id, unit_id, unit_name, headcount):
        s = cls(sid)
        s.trigger(cls.Registered, sharing=sharing, recipients=recipients,
                  activity_id=activity_id, unit_id=unit_id, unit_name=unit_name,
                  headcount=headcount)
        return s

    @staticmethod
    def require_signed_up(taken: bool, unit_id: str, activity_id: str) -> None:
        """Changing or withdrawing a sign-up needs one (``taken``: its stream exists)."""
        if not taken:
            raise NotFound("单位「%s」未报名「%s」" % (unit_id, activity_id))

    @classmethod
    def sign_up(cls, existing: "SignUp | None", sid, sharing, recipients, activity_id, unit_id,
                unit_name, headcount) -> "SignUp":
        """报名 (the command): a first sign-up, or again after withdrawing (``existing``:
        the unit's sign-up for the activity, None if it never signed up); a unit signed
        up already changes its headcount instead."""
        if existing is None:
            return cls.register(sid, sharing, recipients, activity_id, unit_id, unit_name, headcount)
        if existing.active:
            raise Conflict("单位「%s」已报名，请改为修改人数" % unit_id)
        existing.register_again(sharing, recipients, unit_name, headcount)
        return existing

    def register_again(self, sharing, recipients, unit_name, headcount) -> None:
        """Sign up again after withdrawing (same unit, same activity, same stream)."""
        if self.active:
            raise RuleViolation("该单位已报名")
        self.trigger(self.Registered, sharing=sharing, recipients=recipients,
                     activity_id=self.activity_id, unit_id=self.unit_id, unit_name=unit_name,
                     headcount=headcount)

    def change(self, headcount: int) -> None:
        if not self.active:
            raise RuleViolation("报名已撤回，请重新报名")
        if headcount == self.headcount:
            raise RuleViolation("人数没有变化")
        self.trigger(self.HeadcountChanged, activity_id=self.activity_id, unit_id=self.unit_id,
                     headcount=headcount)

    def withdraw(self, reason: str) -> None:
        if not self.active:
            raise RuleViolation("报名已经撤回")
        self.trigger(self.Withdrawn, activity_id=self.activity_id, unit_id=self.unit_id,
                     reason=reason)


class Attendance(SubRecord):
    """出席: one participant node's attendance at a joint activity - its own event,
    recorded by that node (units and headcounts, no names)."""

    kind, id_field, parent_field = "activity", "attendance_id", "activity_id"

    class Recorded(_Opened):
        """A participant node recorded who of its units attended, and how many."""
        attendance_id: RecordId
        sharing: Sharing
        recipients: Recipients
        activity_id: RecordRef
        attendees: Count
        units: Units
        note: Annotated[str, {"maxLength": 1000}] | None


        def apply(self, a):
            super().apply(a)
            a.activity_id, a.attendees = self.activity_id, self.attendees

    class Corrected(Event):
        """The participant node corrected its attendance."""
        attendance_id: RecordId
        sharing: Sharing
        recipients: Recipients
        activity_id: RecordRef
        attendees: Count
        units: Units
        note: Annotated[str, {"maxLength": 1000}] | None


        def apply(self, a):
            a.attendees = self.attendees

    @staticmethod
    def takes_participation(activity: dict | None) -> bool:
        """A unit's participation the education service recorded counts for this node's
        attendance at a joint activity this node can see and that is not cancelled
        (``activity``: the row of the session's record here, None if there is none)."""
        return activity is not None and activity["kind"] == "activity" and \
            bool(activity["published"]) and activity["status"] != "cancelled"

    @staticmethod
    def units_with(units: list[dict], unit_id: str, attended: bool, unit_name: str | None,
                   headcount: int) -> list[dict]:
        """This node's units at the activity once a unit attended (with its headcount) or
        no longer did, in unit order (``units``: as recorded so far)."""
        by_unit = {u["unit_id"]: dict(u) for u in units}
        if attended:
            by_unit[unit_id] = {"unit_id": unit_id, "unit_name": unit_name, "attendees": int(headcount)}
        else:
            by_unit.pop(unit_id, None)
        return [by_unit[u] for u in sorted(by_unit)]

    @staticmethod
    def check(activity: dict) -> None:
        """Attendance is recorded (or corrected) for any activity but a cancelled one
        (``activity``: its row here)."""
        if activity["status"] == "cancelled":
            raise RuleViolation("该活动已取消")

    @classmethod
    def record(cls, aid, sharing, recipients, activity_id, units, note):
        a = cls(aid)
        a.trigger(cls.Recorded, sharing=sharing, recipients=recipients, activity_id=activity_id,
                  attendees=sum(u["attendees"] for u in units), units=units, note=note)
        return a

    def correct(self, units: list[dict], note: str) -> None:
        self.trigger(self.Corrected, activity_id=self.activity_id,
                     attendees=sum(u["attendees"] for u in units), units=units, note=note)


# -- 典型联树 ----------------------------------------------------------------------------
INDICATOR_ORIGINS = Choices("指标来源", {"published": "发布数据", "manual": "手工填写"})


def exemplar_indicators(published: dict, typed: dict) -> tuple[dict, dict]:
    """An exemplar's figures: every figure its unit's services published for the period,
    plus what was typed by hand for indicators nobody publishes - each marked by where it
    came from (``INDICATOR_ORIGINS``). Typing a figure that is published is refused (it
    would be re-typing, and could disagree with the published one)."""
    retyped = sorted(set(typed) & set(published))
    if retyped:
        raise BadInput("这些指标已有发布数据，不能手工填写：%s" % "、".join(retyped),
                       {"indicators": ["已有发布数据：%s" % "、".join(retyped)]})
    if not published and not typed:
        raise BadInput("该单位本期没有发布数据，请手工填写至少一项指标",
                       {"indicators": ["本期没有发布数据，至少填写一项"]})
    indicators = dict(published, **typed)
    sources = {name: ("published" if name in published else "manual") for name in indicators}
    return indicators, sources


def follows_publication(content: dict, period: str) -> bool:
    """An exemplar's figures follow its unit's publications for ``period`` when they were
    taken from them (figures typed before any were taken are left as they are)."""
    return content.get("period") == period and bool(content.get("indicator_sources"))


def republished_indicators(content: dict, published: dict) -> tuple[dict, dict]:
    """An exemplar's figures once its unit published them again: the published ones, and
    the hand-typed ones of indicators nobody publishes (``exemplar_indicators``)."""
    sources = content.get("indicator_sources") or {}
    typed = {k: v for k, v in (content.get("indicators") or {}).items()
             if sources.get(k) == "manual" and k not in published}
    return exemplar_indicators(published, typed)


class Exemplar(Record):
    """典型联树: a unit or section nominated as an example (模范科室, 示范点...), with the
    indicators it stands out on. The description is about practice, never a person."""

    kind, id_field = "exemplar", "exemplar_id"
    CONTENT = ("unit_id", "unit_name", "category", "title", "section", "description",
               "indicators", "period", "indicator_sources")

    class Nominated(_Created):
        """A unit or section was nominated (not shared yet)."""
        exemplar_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        category: OneOf(EXEMPLAR_CATEGORIES)
        title: Text(200)
        section: Section | None
        description: Text(5000)
        indicators: Indicators
        period: Period
        indicator_sources: dict | None = None  # indicator -> published | manual

    class Published(_Published):
        """The nomination was shared."""
        exemplar_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        category: OneOf(EXEMPLAR_CATEGORIES)
        title: Text(200)
        section: Section | None
        description: Text(5000)
        indicators: Indicators
        period: Period
        indicator_sources: dict | None = None  # indicator -> published | manual

    class IndicatorsUpdated(Event):
        """The figures the exemplar stands out on were updated for a period."""
        exemplar_id: RecordId
        sharing: Sharing
        recipients: Recipients
        indicators: Indicators
        period: Period
        indicator_sources: dict | None = None  # indicator -> published | manual


        def apply(self, e):
            e.indicators, e.period = self.indicators, self.period
            e.indicator_sources = self.indicator_sources

    class Withdrawn(_Withdrawn):
        """The nomination is no longer shared."""
        exemplar_id: RecordId
        sharing: Sharing
        recipients: Recipients
        reason: Text(500)

    @classmethod
    def nominate(cls, eid: str, content: dict) -> "Exemplar":
        e = cls(eid)
        e.trigger(cls.Nominated, **{f: content.get(f) for f in cls.CONTENT})
        return e

    def update_indicators(self, indicators: dict, period: str, sources: dict | None = None) -> None:
        if (indicators, period) == (self.indicators, self.period) and \
                sources == getattr(self, "indicator_sources", None):
            raise RuleViolation("指标没有变化")
        self.trigger(self.IndicatorsUpdated, indicators=indicators, period=period,
                     indicator_sources=sources)


class Endorsement(SubRecord):
    """Another node endorses an exemplar (one endorsement per node and exemplar)."""

    kind, id_field, parent_field = "exemplar", "endorsement_id", "exemplar_id"

    class Given(_Opened):
        """A node endorsed another node's exemplar."""
        endorsement_id: RecordId
        sharing: Sharing
        recipients: Recipients
        exemplar_id: RecordRef
        comment: Text(2000)
        unit_id: OwnerUnitId | None
        unit_name: UnitNameOrNone | None

    @staticmethod
    def check(exemplar: dict, this_node: str, taken: bool) -> None:
        """Another node endorses an exemplar, once (``exemplar``: its row; ``taken``: this
        node's endorsement exists)."""
        if exemplar["owner"] == this_node:
            raise RuleViolation("节点不能为自己的典型点赞推荐")
        if taken:
            raise Conflict("本节点已推荐过「%s」" % exemplar["record_id"])

    @classmethod
    def give(cls, eid, sharing, recipients, exemplar_id, comment, unit_id, unit_name):
        e = cls(eid)
        e.trigger(cls.Given, sharing=sharing, recipients=recipients, exemplar_id=exemplar_id,
                  comment=comment, unit_id=unit_id, unit_name=unit_name)
        return e


# fields of a published-figures payload that identify rather than measure
_NOT_FIGURES = {"unit_id", "node_id", "as_of", "period", "source_event_id"}


def indicator_figures(payload: dict) -> dict:
    """The numbers of a published-figures payload: an ``indicators`` object if there is
    one, else every top-level number (booleans as 0/1). Strings are never taken, so
    no name, finding or file can ride along."""
    raw = payload.get("indicators") if isinstance(payload.get("indicators"), dict) else {
        k: v for k, v in payload.items() if k not in _NOT_FIGURES}
    out = {}
    for k, v in raw.items():
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[str(k)[:60]] = v
    return out


def figures_taken(scope: str, payload) -> tuple[str, str | None, dict] | None:
    """What an ``IndicatorReport`` takes of another service's published figures: the
    period (``period``, or the month of ``as_of``), the unit (a ``unit`` scope's
    ``unit_id``) and the numbers (``indicator_figures``) - ``(period, unit_id,
    indicators)``, or None when the payload has no period or no numbers. Whatever else
    the source put in its payload stays on its node, because it is never copied."""
    p = payload if isinstance(payload, dict) else {}
    period = p.get("period") or (p.get("as_of") or "")[:7] or None
    values = indicator_figures(p)
    if not isinstance(period, str) or not values:
        return None
    unit_id = p.get("unit_id") if scope == "unit" and isinstance(p.get("unit_id"), str) else None
    return period, unit_id, numbers(values)


class IndicatorReport(SharedAggregate):
    """上下互比 figures recorded on this node from its supervision and education services
    (``UnitIndicators.Published`` ...), shared up to the city so it can compare districts
    without anyone re-typing them. Only numbers per unit and period; never people."""

    kind, id_field = "indicators", "report_id"

    class Recorded(_Opened):
        """Figures for one unit (or the whole district) and period."""
        report_id: RecordId
        sharing: Sharing
        recipients: Recipients
        source: OneOf(INDICATOR_SOURCES)
        scope: OneOf(INDICATOR_SCOPES)
        unit_id: OwnerUnitId | None
        unit_name: UnitNameOrNone | None
        period: Period
        indicators: Indicators
        # 基层减负: the published event the figures were derived from (never typed)
        derived_from: dict | None = None


        def apply(self, r):
            super().apply(r)
            r.indicators = self.indicators

    class Updated(Event):
        """The source published new figures for the same unit and period."""
        report_id: RecordId
        sharing: Sharing
        recipients: Recipients
        source: OneOf(INDICATOR_SOURCES)
        scope: OneOf(INDICATOR_SCOPES)
        unit_id: OwnerUnitId | None
        unit_name: UnitNameOrNone | None
        period: Period
        indicators: Indicators
        derived_from: dict | None = None   # as in Recorded


        def apply(self, r):
            r.indicators = self.indicators

    @classmethod
    def record(cls, rid, sharing, source, scope, unit_id, unit_name, period, indicators,
               derived_from=None):
        r = cls(rid)
        r.trigger(cls.Recorded, sharing=sharing, recipients=[], source=source, scope=scope,
                  unit_id=unit_id, unit_name=unit_name, period=period, indicators=indicators,
                  **({"derived_from": derived_from} if derived_from else {}))
        return r

    def update(self, source, scope, unit_id, unit_name, period, indicators,
               derived_from=None) -> bool:
        if indicators == self.indicators:
            return False
        self.trigger(self.Updated, source=source, scope=scope, unit_id=unit_id,
                     unit_name=unit_name, period=period, indicators=indicators,
                     **({"derived_from": derived_from} if derived_from else {}))
        return True


# -- 难题联解 ----------------------------------------------------------------------------
def problem_overdue(status: str, deadline: str | None, today: str) -> bool:
    """A shared problem not resolved by its deadline. Every node that has the problem has
    its deadline and status, so each works this out for itself from the same facts: the
    owner's node flags it and every other node shows the same flag, with no extra event."""
    return status in ("open", "solution_accepted") and bool(deadline) and deadline < today


class JointProblem(Record):
    """难题联解: a problem a node cannot solve alone, posted with its context and a
    deadline; entitled nodes propose, discuss; the owner accepts one proposal and
    records the resolution with its results. Status is visible to every node that
    can see the problem."""

    kind, id_field = "problem", "problem_id"
    CONTENT = ("unit_id", "unit_name", "title", "context", "deadline", "tags", "status",
               "accepted_proposal_id", "resolution")

    class Posted(_Created):
        """A problem was written up (not shared yet)."""
        problem_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        context: Text(20000)
        deadline: DateStr
        tags: Topics
        status: OneOf(PROBLEM_STATUSES)
        accepted_proposal_id: RecordRef | None
        resolution: Resolution | None

    class Published(_Published):
        """The problem was shared: proposals are welcome."""
        problem_id: RecordId
        sharing: Sharing
        recipients: Recipients
        unit_id: OwnerUnitId
        unit_name: UnitName
        title: Text(200)
        context: Text(20000)
        deadline: DateStr
        tags: Topics
        status: OneOf(PROBLEM_STATUSES)
        accepted_proposal_id: RecordRef | None
        resolution: Resolution | None

    class DeadlineExtended(Event):
        """More time for proposals."""
        problem_id: RecordId
        sharing: Sharing
        recipients: Recipients
        deadline: DateStr
        reason: Text(500)


        def apply(self, p):
            p.deadline = self.deadline

    class SolutionAccepted(Event):
        """The owner accepted one proposal as the solution."""
        problem_id: RecordId
        sharing: Sharing
        recipients: Recipients
        proposal_id: RecordRef
        proposal_origin: Annotated[str, {"pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"}]
        note: Text(1000)


        def apply(self, p):
            p.status = "solution_accepted"
            p.accepted_proposal_id = self.proposal_id

    class Resolved(Event):
        """The resolution record: what was done and with what results."""
        problem_id: RecordId
        sharing: Sharing
        recipients: Recipients
        summary: Text(5000)
        results: Lessons
        measures: Annotated[list, {
            "items": {"type": "string", "minLength": 1, "maxLength": 2000},
            "minItems": 0,
            "maxItems": 50,
        }]
        resolved_on: DateStr
        proposal_id: RecordRef


        def apply(self, p):
            p.status = "resolved"
            p.resolution = {"summary": self.summary, "results": self.results,
                            "measures": self.measures, "resolved_on": self.resolved_on,
                            "proposal_id": self.proposal_id}

    class Withdrawn(_Withdrawn):
        """The problem is no longer shared."""
        problem_id: RecordId
        sharing: Sharing
        recipients: Recipients
        reason: Text(500)

    @classmethod
    def post(cls, pid: str, content: dict, today: str) -> "JointProblem":
        if content.get("deadline") and content["deadline"] < today:
            raise BadInput("期限已过：难题的期限不能早于今天",
                           {"deadline": ["早于今天（%s）" % today]})
        p = cls(pid)
        data = {f: content.get(f) for f in cls.CONTENT}
        data.update(status="draft", accepted_proposal_id=None, resolution=None)
        p.trigger(cls.Posted, **data)
        return p

    def published_content(self) -> dict:
        content = self.content()
        if content["status"] == "draft":
            content["status"] = "open"
        return content

    def extend_deadline(self, deadline: str, reason: str, today: str) -> None:
        self.require_published("problem")
        if self.status == "resolved":
            raise RuleViolation("该难题已解决")
        if deadline < today:
            raise BadInput("期限已过：新的期限不能早于今天", {"deadline": ["早于今天（%s）" % today]})
        if deadline <= self.deadline:
            raise RuleViolation("新的期限必须晚于 %s" % self.deadline,
                                {"deadline": ["不晚于当前期限"]})
        self.trigger(self.DeadlineExtended, deadline=deadline, reason=reason)

    @staticmethod
    def proposal_of(proposal: dict | None, proposal_id: str, problem_id: str) -> dict:
        """The proposal accepted is one for this problem (``proposal``: its row here, None
        if there is none)."""
        if proposal is None or proposal["sub_kind"] != "proposal" or proposal["parent_id"] != problem_id:
            raise BadInput("不是该难题的方案",
                           {"proposal_id": ["本节点没有方案「%s」（难题「%s」）" % (proposal_id, problem_id)]})
        return proposal

    def accept(self, proposal_id: str, proposal_origin: str, note: str) -> None:
        self.require_published("problem")
        if self.status != "open":
            raise RuleViolation("只有待解决的难题才能采纳解决方案（当前为「%s」）" % RECORD_STATUSES.label(self.status))
        self.trigger(self.SolutionAccepted, proposal_id=proposal_id,
                     proposal_origin=proposal_origin, note=note)

    def resolve(self, summary: str, results: list[str], measures: list[str],
                resolved_on: str) -> None:
        if self.status != "solution_accepted":
            raise RuleViolation("请先采纳一个方案，再登记解决结果（当前为「%s」）" % RECORD_STATUSES.label(self.status))
        self.trigger(self.Resolved, summary=summary, results=results, measures=measures,
                     resolved_on=resolved_on, proposal_id=self.accepted_proposal_id)


class Proposal(SubRecord):
    """A node's proposed solution to another (or its own) node's joint problem."""

    kind, id_field, parent_field = "problem", "proposal_id", "problem_id"

    class Submitted(_Opened):
        """A proposal for a joint problem."""
        proposal_id: RecordId
        sharing: Sharing
        recipients: Recipients
        problem_id: RecordRef
        summary: Text(500)
        detail: Text(20000)
        unit_id: OwnerUnitId | None
        unit_name: UnitNameOrNone | None

    @staticmethod
    def check(problem: dict) -> None:
        """Proposals are taken while the problem is open (``problem``: its row here)."""
        if problem["status"] != "open":
            raise RuleViolation("该难题当前为「%s」，不再接受方案" % RECORD_STATUSES.label(problem["status"]))

    @classmethod
    def submit(cls, pid, sharing, recipients, problem_id, summary, detail, unit_id, unit_name):
        p = cls(pid)
        p.trigger(cls.Submitted, sharing=sharing, recipients=recipients, problem_id=problem_id,
                  summary=summary, detail=detail, unit_id=unit_id, unit_name=unit_name)
        return p


# -- 督办: rectifications a district escalated to the city ------------------------------------
# The supervision ladder's last rung (``Rectification.ReferredToCity``) becomes, on the
# district's node, an ``EscalatedCase`` shared up to the city: the case itself (what, which
# unit, how late, the trail), never a person or evidence. The district's supervision keeps
# it current (``Progressed``: extended, evidence rejected, verified and closed). The city
# records that it follows it up (``FollowUp``, a sub-record the city owns, named to the
# district), which the district sees on its own node.
ESCALATION_STATUSES = Choices("督办件状态", {"open": "逾期未整改", "extended": "已延期",
                                        "closed": "已销号"})
ESCALATION_SUBJECTS = Choices("督办事项", {"rectification": "限期整改", "talk": "新提拔干部廉政谈话",
                                       "task": "跟踪问效任务"})


def talk_referral(talk: dict, unit_name: str | None) -> dict:
    """A 廉政谈话 whose ladder reached the city rung (education's ``IntegrityTalk.Escalated``
    with ``notify: city``), as the city may see it: the unit, the due date, how late, the
    rung - never the person (no person id, no name, no post: in a small unit a post names
    someone). ``ref`` is a digest of the talk's id, so the case stays one per talk."""
    from datetime import date, timedelta
    on = (date.fromisoformat(talk["due_on"]) + timedelta(days=talk["overdue_days"])).isoformat()
    ref = "talk-" + hashlib.sha256(talk["talk_id"].encode("utf-8")).hexdigest()[:16]
    return {"rect_id": ref, "unit_id": talk["unit_id"], "unit_name": unit_name,
            "description": "新提拔干部任前廉政谈话逾期未开展", "severity": "general",
            "source": "integrity_talk", "category": None,
            "requirement": "按期开展任前廉政谈话", "found_on": talk["due_on"],
            "deadline": talk["due_on"], "days_overdue": talk["overdue_days"], "referred_on": on,
            "trail": [{"on": talk["due_on"], "what": "overdue", "deadline": talk["due_on"]},
                      {"on": on, "what": "escalated", "step": talk["step"], "level": "city",
                       "days_overdue": talk["overdue_days"]}],
            "subject": "talk"}


def task_ref(task_id: str) -> str:
    """The case reference of a 跟踪问效 task (``EscalatedCase.rect_id``): its own space,
    so a task and a rectification of the same id are two cases."""
    return "task-" + task_id


def task_referral(p: dict) -> dict:
    """A 跟踪问效 task whose ladder reached the city rung (supervision's
    ``Task.ReferredToCity``) as an escalated case: the title is the problem, the 标准 the
    requirement, assigned → found. Nothing else of the task is taken (no completion
    report, no evidence, no person)."""
    return {"rect_id": task_ref(p["task_id"]), "unit_id": p["unit_id"],
            "unit_name": p.get("unit_name"), "description": p["title"], "severity": "general",
            "source": p["source"], "category": None, "requirement": p["standard"],
            "found_on": p["assigned_on"], "deadline": p["deadline"],
            "days_overdue": p["days_overdue"], "referred_on": p["referred_on"],
            "trail": list(p["trail"]), "subject": "task"}


# what the trail of an escalated case records (the codes of ``escalation_progress``)
ESCALATION_TRAIL = Choices("督办件经过", {"overdue": "逾期", "escalated": "逐级督办",
                                      "extended": "延期", "rejected": "整改材料被退回",
                                      "closed": "验收销号", "reopened": "重新打开",
                                      "returned": "完成情况被退回", "cancelled": "任务撤销"})
FOLLOW_UP_ACTIONS = Choices("督办方式", {"supervise": "督办", "phone": "电话督办",
                                     "letter": "发函督办", "visit": "实地督办",
                                     "interview": "约谈提醒"})


def escalated_days_late(deadline: str, status: str, closed_on: str | None, today: str) -> int:
    """How late an escalated rectification is on ``today``: counting from its deadline
    every day while it is open (after the ladder's last rung too), stopped on the day it
    was closed."""
    from datetime import date
    until = closed_on if status == "closed" and closed_on else today
    return max(0, (date.fromisoformat(until[:10]) - date.fromisoformat(deadline[:10])).days)


def awaiting_follow_up(status: str, follow_ups: list) -> bool:
    """The city rung's inbox: an escalated case still open that nobody has followed up."""
    return status != "closed" and not follow_ups


def escalation_progress(event_type: str, payload: dict, status: str, deadline: str) -> dict | None:
    """What a supervision event about an escalated rectification changes in the city's
    case: ``{status, deadline, closed_on, entry}`` (``entry`` goes on the trail), or None
    for an event that changes nothing the city reads. Dates and codes only."""
    kind = event_type.split(".", 1)[1]
    if kind == "DeadlineExtended":
        return {"status": "extended", "deadline": payload["deadline"], "closed_on": None,
                "entry": {"on": payload["extended_on"], "what": "extended",
                          "deadline": payload["deadline"]}}
    if kind == "Rejected":
        return {"status": "open" if status != "extended" else status, "deadline": deadline,
                "closed_on": None, "entry": {"on": payload["rejected_on"], "what": "rejected"}}
    if kind == "Verified":
        return {"status": "closed", "deadline": deadline, "closed_on": payload["verified_on"],
                "entry": {"on": payload["verified_on"], "what": "closed"}}
    if kind == "Reopened":
        return {"status": "open", "deadline": payload["deadline"], "closed_on": None,
                "entry": {"on": payload["reopened_on"], "what": "reopened",
                          "deadline": payload["deadline"]}}
    if kind == "Returned":  # a task's reported completion was sent back
        return {"status": "open" if status != "extended" else status, "deadline": deadline,
                "closed_on": None, "entry": {"on": payload["returned_on"], "what": "returned"}}
    if kind == "Accepted":  # a task accepted as done
        return {"status": "closed", "deadline": deadline, "closed_on": payload["accepted_on"],
                "entry": {"on": payload["accepted_on"], "what": "closed"}}
    if kind == "Cancelled":  # a task withdrawn by its issuer: nothing left to follow up
        return {"status": "closed", "deadline": deadline, "closed_on": payload["cancelled_on"],
                "entry": {"on": payload["cancelled_on"], "what": "cancelled"}}
    if kind == "Held":  # a 廉政谈话 referred to the city was held at last
        return {"status": "closed", "deadline": deadline, "closed_on": payload["held_on"],
                "entry": {"on": payload["held_on"], "what": "closed"}}
    if kind == "Escalated":
        return {"status": "open", "deadline": payload["deadline"], "closed_on": None,
                "entry": {"on": payload["escalated_on"], "what": "escalated",
                          "step": payload["step"], "level": payload["level"],
                          "days_overdue": payload["days_overdue"]}}
    return None


class _CaseContent(Event):
    """The fields of an escalated case, declared once: ``EscalatedCase.Referred`` and
    ``.Published`` both carry the whole case (its ``CONTENT`` and audience)."""
    case_id: str
    sharing: str
    recipients: list
    unit_id: str
    unit_name: str | None
    title: str
    rect_id: str
    description: str
    severity: str
    source: str
    category: str | None
    requirement: str | None
    found_on: str
    deadline: str
    status: str
    days_overdue: int
    referred_on: str
    closed_on: str | None
    trail: list
    subject: str | None = None   # ESCALATION_SUBJECTS (absent: a rectification)


class EscalatedCase(Record):
    """督办件: a rectification the district's escalation ladder referred to the city."""

    kind, id_field = "escalation", "case_id"
    CONTENT = ("unit_id", "unit_name", "title", "rect_id", "description", "severity", "source",
               "category", "requirement", "found_on", "deadline", "status", "days_overdue",
               "referred_on", "closed_on", "trail", "subject")

    class Referred(_CaseContent, _Created):
        """The city rung was reached: the case as the district recorded it."""

    class Published(_CaseContent, _Published):
        """The case went up to the city: its whole content."""

    class Progressed(Event):
        """The district's rectification moved on (extended, rejected, closed, escalated again)."""
        case_id: str
        sharing: str
        recipients: list
        status: str
        deadline: str
        closed_on: str | None
        trail: list

        def apply(self, c):
            c.status, c.deadline, c.closed_on, c.trail = (
                self.status, self.deadline, self.closed_on, self.trail)

    class Withdrawn(_Withdrawn):
        """The case is no longer shared."""
        case_id: str
        sharing: str
        recipients: list
        reason: str

    @classmethod
    def refer(cls, cid: str, p: dict, city_sharing: str = "city") -> "EscalatedCase":
        c = cls(cid)
        title = "%s：%s" % (p.get("unit_name") or p["unit_id"], p["description"][:80])
        c.trigger(cls.Referred, unit_id=p["unit_id"], unit_name=p.get("unit_name"), title=title,
                  rect_id=p["rect_id"], description=p["description"], severity=p["severity"],
                  source=p["source"], category=p.get("category"), requirement=p.get("requirement"),
                  found_on=p["found_on"], deadline=p["deadline"], status="open",
                  days_overdue=p["days_overdue"], referred_on=p["referred_on"], closed_on=None,
                  trail=list(p["trail"]), subject=p.get("subject") or "rectification")
        c.share(city_sharing, [])
        return c

    def progress(self, event_type: str, payload: dict) -> bool:
        change = escalation_progress(event_type, payload, self.status, self.deadline)
        if change is None or change["entry"] in self.trail:
            return False  # nothing the city reads, or already on the trail (the referral's rung)
        trail = list(self.trail) + [change["entry"]]
        self.trigger(self.Progressed, status=change["status"], deadline=change["deadline"],
                     closed_on=change["closed_on"], trail=trail)
        return True

    def check_follow_up(self, by_city: bool) -> None:
        """督办 is the city's: a district cannot follow up a case, and a closed one needs
        no more following up."""
        if not by_city:
            raise RuleViolation("只有市级节点可以登记督办")
        self.require_published("escalation")
        if self.status == "closed":
            raise RuleViolation("该整改已销号，无需再督办")


class FollowUp(SubRecord):
    """The city's 督办 of an escalated case: how (电话 / 发函 / 实地 ...), what it asked,
    by when it wants an answer. Owned by the city, seen by the district."""

    kind, id_field, parent_field = "escalation", "followup_id", "case_id"

    class Recorded(_Opened):
        """The city recorded that it is following the case up."""
        followup_id: str
        sharing: str
        recipients: list
        case_id: str
        unit_id: str
        unit_name: str | None
        action: str
        note: str
        followed_on: str
        respond_by: str | None

    @classmethod
    def record(cls, fid, sharing, recipients, case_id, unit_id, unit_name, action, note,
               followed_on, respond_by):
        if action not in FOLLOW_UP_ACTIONS:
            raise BadInput("未知的督办方式", {"action": [FOLLOW_UP_ACTIONS.error()]})
        if respond_by is not None and respond_by < followed_on:
            raise BadInput("反馈期限已过", {"respond_by": ["早于今天（%s）" % followed_on]})
        f = cls(fid)
        f.trigger(cls.Recorded, sharing=sharing, recipients=recipients, case_id=case_id,
                  unit_id=unit_id, unit_name=unit_name, action=action, note=note,
                  followed_on=followed_on, respond_by=respond_by)
        return f


# -- the city sees what it oversees: a district's unit register ------------------------------
def register_entries(units: list[dict]) -> list[dict]:
    """A district's unit register as the city may read it: names, kinds, levels, the tree,
    flags - and nothing else (no people, no contacts), in path order."""
    keep = ("unit_id", "name", "kind", "level", "parent_id", "active", "demonstration_site",
            "pilot_flags")
    return [{k: u.get(k) for k in keep} for u in units]


class UnitRegister(SharedAggregate):
    """单位台账 of a node, shared up to the city (read-only there): one per node."""

    kind, id_field = "register", "register_id"

    class Recorded(_Opened):
        """The node's unit register, first shared."""
        register_id: str
        sharing: str
        recipients: list
        units: list
        counts: dict

        def apply(self, r):
            super().apply(r)
            r.units, r.counts = self.units, self.counts

    class Updated(Event):
        """Units were registered, renamed, moved, flagged or deactivated since."""
        register_id: str
        sharing: str
        recipients: list
        units: list
        counts: dict

        def apply(self, r):
            r.units, r.counts = self.units, self.counts

    @staticmethod
    def counts_of(units: list[dict]) -> dict:
        active = [u for u in units if u["active"]]
        by_kind: dict = {}
        for u in active:
            by_kind[u["kind"]] = by_kind.get(u["kind"], 0) + 1
        return {"units": len(active), "by_kind": by_kind,
                "demonstration_sites": sum(1 for u in active if u["demonstration_site"]),
                "inactive": len(units) - len(active)}

    @classmethod
    def record(cls, rid: str, units: list[dict]) -> "UnitRegister":
        r = cls(rid)
        r.trigger(cls.Recorded, sharing="city", recipients=[], units=units,
                  counts=cls.counts_of(units))
        return r

    def update(self, units: list[dict]) -> bool:
        if units == self.units:
            return False
        self.trigger(self.Updated, units=units, counts=self.counts_of(units))
        return True


ROOTS: dict[str, type[Record]] = {
    "experience": Experience, "case": Case, "activity": JointActivity, "exemplar": Exemplar,
    "problem": JointProblem, "escalation": EscalatedCase,
}
SUBS: dict[str, type[SubRecord]] = {
    "contribution": Contribution, "comment": Comment, "learned": LearnedFrom,
    "signup": SignUp, "attendance": Attendance, "endorsement": Endorsement,
    "proposal": Proposal, "followup": FollowUp,
}
SHARED_AGGREGATES: tuple[type[SharedAggregate], ...] = (
    *ROOTS.values(), *SUBS.values(), IndicatorReport, UnitRegister)


_BY_STREAM = {cls.stream_type: cls for cls in SHARED_AGGREGATES}


def aggregate_of(event_type: str) -> type[SharedAggregate] | None:
    """The aggregate class of a shareable event type ("Case.Revised" -> Case)."""
    return _BY_STREAM.get(event_type.split(".", 1)[0])


def routing_kind(event_type: str, payload: dict) -> str:
    """The ``<kind>`` of the routing key: a sub-record travels under its parent's kind
    (a subscriber bound to ``case.#`` also gets contributions to cases)."""
    cls = aggregate_of(event_type)
    if cls is Comment:
        return "problem" if payload["parent_kind"] == "proposal" else payload["parent_kind"]
    return cls.kind


# -- 基层减负: figures the city receives, derived or typed (H7) ----------------------------------------
def relief_tally(derived: int, manual: int) -> dict:
    """One district's month: how many figures it sent, how many were derived from what the
    platform recorded (no one typed them) and how many were typed by hand; a district
    sent its figures "without any manual entry" when it sent some and typed none."""
    total = derived + manual
    return {"figures": total, "derived": derived, "manual": manual,
            "derived_share": round(derived / total, 4) if total else None,
            "without_manual_entry": total > 0 and manual == 0}
# -- end of 基层减负 (H7) --
