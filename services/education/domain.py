"""教育 - integrity education. Pure domain code (no nameko, SQLAlchemy or kombu).

Aggregates (each its own stream):

* ``StudySession`` 学习教育活动: 主题联学, 上下联学, 廉政微党课, 专题党日, 警示教育,
  集体廉政谈话 - planned by an organiser unit, then held (attendance, and what each
  kind requires: the micro-lesson's discussion and leader's comment, the party day's
  four 共) or cancelled. A roster of who attended is a separate, private event.
* ``SessionParticipation``: one unit joining a session organised elsewhere - at
  another level of this node, or on another node (上下联学 with the city).
* ``ExternalSession`` / ``ExternalCase``: references to a session or a typical case
  (典型案例) recorded on another node and received from its feed.
* ``DailyReminder`` 廉洁提醒: the one-line reminder of a day.
* ``ReminderCheckIn`` 日打卡: one member acknowledging one day's reminder. One stream
  per member and day, so a whole district checking in at once never contends on a
  stream, and the unique (stream, version) makes a second check-in impossible.
* ``ContentItem`` 廉政宣传内容 and ``PublicityRotation`` 周更新: the library and what a
  unit shows in one ISO week.
* ``UnitProfile``: a unit's business types, posts and integrity-risk points (精准滴灌).
* ``IntegrityNotice`` 廉洁通知 and ``NoticeReceipt`` (one per notice and unit).
* ``IntegrityTalk`` 廉政谈话 for a newly promoted cadre; ``YoungCadreProgramme`` for
  young cadres' periodic education.
* ``MemberMirror``: what this service keeps of the units service's people (unit, post,
  young-cadre flag - never the name).
* ``UserInbox``: which inbox items a node user has read.
* ``EducationIndicators`` / ``DistrictEducationIndicators``: the monthly figures the
  supervision and exchange services consume.

Events about people (check-ins, rosters, talks, young cadres, members) are
``private``: they never leave the node; only counts do, via the indicators.

Every rule of the service is here. A rule that needs what a read model or the log knows
(the members a roster names, whether an id is taken, a notice's receipt, the units an
inbox item belongs to, a bulletin's scope in the tree...) takes that fact as an argument;
the service layer reads it through its read port (``uow.education``,
``queries.EducationReadPort``), calls in here to decide, and saves.
"""
from __future__ import annotations

from datetime import date, timedelta

from typing import Annotated

from shared.aggregate import Aggregate, IsoDate, DateTimeStr, MonthStr, Count, OneOf
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation
from shared.labels import Choices
from shared.months import month_final

from services.education.dates import month_bounds, parse_date

SESSION_KINDS = {
    "theme_joint_study": "主题联学",
    "updown_joint_study": "上下联学",
    "micro_party_lesson": "廉政微党课",
    "themed_party_day": "专题党日",
    "warning_education": "警示教育",
    "integrity_talk": "廉政谈话",
}
# Kinds other units (here or on other nodes) are expected to join.
JOINABLE_KINDS = ("theme_joint_study", "updown_joint_study")
WARNING_EDUCATION = "warning_education"
MICRO_PARTY_LESSON = "micro_party_lesson"
THEMED_PARTY_DAY = "themed_party_day"

# 专题党日: 共学党纪法规、共看警示短片、共上廉政党课、共话清廉感悟
PARTY_DAY_ACTIVITIES = {
    "study_regulations": "共学党纪法规",
    "watch_warning_film": "共看警示短片",
    "integrity_lesson": "共上廉政党课",
    "share_reflections": "共话清廉感悟",
}

# the label catalogue's view of the two tables above (shared.labels)
SESSION_KIND_LABELS = Choices("活动类型", SESSION_KINDS)
PARTY_DAY_ACTIVITY_LABELS = Choices("专题党日内容", PARTY_DAY_ACTIVITIES)
# a 廉政谈话 as a person reads it ("overdue": still scheduled, past its due date)
# what an inbox item asks of its unit (edu_inbox.kind), as the home page's 待办 names it
INBOX_KINDS = Choices("待办类别", {
    "notice": "廉洁通知待确认", "case_bulletin": "典型案例待学习", "talk_due": "廉政谈话待开展",
    "talk_overdue": "廉政谈话已逾期", "talk_escalated": "廉政谈话督办",
    "young_cadre_overdue": "年轻干部教育逾期", "publicity": "廉政宣传周更新",
    "warning_education_missed": "警示教育未开展"})
TALK_STATES = Choices("廉政谈话状态", {"scheduled": "待谈话", "overdue": "已逾期", "held": "已谈话"})
SESSION_STATUSES = Choices("活动状态", {"planned": "已计划", "held": "已开展", "cancelled": "已取消"})
NOTICE_STATUSES = Choices("通知状态", {"scheduled": "待发送", "sent": "已发送", "cancelled": "已取消"})

CONTENT_KINDS = {
    "slogan": "廉政短句",        # 贴桌面
    "image": "廉政图片",         # 作屏保 (by reference: the file lives elsewhere)
    "short_text": "廉政短文",
    "reminder": "一句话提醒",     # the daily 廉洁提醒 library
}
# what a weekly rotation puts on desks and screens, in this order
ROTATION_KINDS = ("slogan", "image", "short_text")
CONTENT_KIND_LABELS = Choices("内容类型", CONTENT_KINDS)
ROTATION_CHOICES = Choices("周更新方式", {"auto": "自动轮换", "manual": "手动选择"})
NOTICE_SOURCES = Choices("通知来源", {"calendar": "节假日日历", "manual": "敏感时期（手动安排）"})

TAG_DIMENSIONS = ("business_types", "posts", "risk_points")


def normalise_tags(tags: dict | None) -> dict:
    """Every dimension present, each a sorted list without duplicates."""
    tags = tags or {}
    return {dim: sorted(set(tags.get(dim) or ())) for dim in TAG_DIMENSIONS}


def session_audience(audience: dict | None) -> dict:
    """A session's audience as recorded: unit ids, roles and posts, each sorted, once."""
    audience = audience or {}
    return {k: sorted(set(audience.get(k) or ())) for k in ("unit_ids", "roles", "posts")}


def session_key(node: str, session_id: str) -> str:
    """A session's name across nodes: ``<node>/<id>``. A local session is keyed by this
    node's id, one from the city's feed by the city's - so a join always names both."""
    return "%s/%s" % (node, session_id)


# payload field types several events share
Tags = Annotated[dict, {
    "additionalProperties": False,
    "required": ["business_types", "posts", "risk_points"],
    "properties": {
        "business_types": {"type": "array", "items": {"type": "string"}},
        "posts": {"type": "array", "items": {"type": "string"}},
        "risk_points": {"type": "array", "items": {"type": "string"}},
    },
}]
MATERIAL_KINDS = ("document", "video", "image", "link")  # what a referenced material is
Materials = Annotated[list, {
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "ref", "kind"],
        "properties": {
            "title": {"type": "string"},
            "ref": {"type": "string"},
            "kind": {"type": "string", "enum": list(MATERIAL_KINDS)},
        },
    },
}]
CaseRefs = Annotated[list, {"items": {"type": "string"}}]
Rate = Annotated[float, {"minimum": 0, "maximum": 1}]


# -- sessions ------------------------------------------------------------------------------
class StudySession(Aggregate):
    class Planned(Aggregate.Event):
        """A session (主题联学, 上下联学, 廉政微党课, 专题党日, 警示教育, 廉政谈话) planned by its organiser unit."""
        session_id: str
        kind: OneOf(SESSION_KIND_LABELS)
        title: str
        organiser_unit_id: str
        scheduled_at: DateTimeStr
        local_date: IsoDate
        period: MonthStr
        audience: Annotated[dict, {
            "additionalProperties": False,
            "required": ["unit_ids", "roles", "posts"],
            "properties": {
                "unit_ids": {"type": "array", "items": {"type": "string"}},
                "roles": {"type": "array", "items": {"type": "string"}},
                "posts": {"type": "array", "items": {"type": "string"}},
            },
        }]
        tags: Tags
        materials: Materials
        joinable: bool
        speaker: Annotated[dict, {
            "additionalProperties": False,
            "required": ["post", "person_id"],
            "properties": {"post": {"type": "string"}, "person_id": {"type": ["string", "null"]}},
        }] | None
        case_refs: CaseRefs

        def apply(self, s):
            s.kind = self.kind
            s.organiser_unit_id = self.organiser_unit_id
            s.scheduled_at = self.scheduled_at
            s.local_date = self.local_date
            s.joinable = self.joinable
            s.speaker = self.speaker
            s.status = "planned"

    class Held(Aggregate.Event):
        """The session took place: headcount, the units that attended, and what its kind requires."""
        session_id: str
        kind: OneOf(SESSION_KIND_LABELS)
        organiser_unit_id: str
        held_at: DateTimeStr
        local_date: IsoDate
        period: MonthStr
        headcount: Count
        attended_unit_ids: CaseRefs
        discussion: str | None
        leader_comment: str | None
        activities: Annotated[list, {
            "items": {
                "type": "string",
                "enum": [
                    "study_regulations",
                    "watch_warning_film",
                    "integrity_lesson",
                    "share_reflections",
                ],
            },
        }]
        case_analysis: Annotated[list, {
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["case_ref", "lessons"],
                "properties": {"case_ref": {"type": "string"}, "lessons": {"type": "string"}},
            },
        }]
        materials: Materials

        def apply(self, s):
            s.status = "held"
            s.local_date = self.local_date
            s.attended_unit_ids = list(self.attended_unit_ids)

    class RosterRecorded(Aggregate.Event):
        """Who attended, by person id. Private: people stay on the node."""
        session_id: str
        organiser_unit_id: str
        person_ids: CaseRefs
        local_date: IsoDate


        private = True

        def apply(self, s):
            s.roster_size = len(self.person_ids)

    class Cancelled(Aggregate.Event):
        """A planned session was called off."""
        session_id: str
        organiser_unit_id: str
        reason: str

        def apply(self, s):
            s.status = "cancelled"

    class SharedWithNodes(Aggregate.Event):
        """The session is organised for other nodes too (上下联学 the city organises for
        its districts): the exchange service shares it with them as a 活动联办 record."""

        session_id: str
        organiser_unit_id: str
        kind: str
        title: str
        scheduled_at: str
        local_date: str
        nodes: list
        slug: str        # the exchange record is "<this node>/<slug>" (shared_slug)
        theme: str       # the kind's name (警示教育 ...): the exchange record's theme

        def apply(self, s):
            s.shared_nodes = list(self.nodes)

    class NodeAttendanceReported(Aggregate.Event):
        """Another node's attendance at the shared session, as its exchange service
        reported it back: which of its units came and how many (no names)."""

        session_id: str
        organiser_unit_id: str
        node: str
        units: list      # [{unit_id, unit_name, attendees}]
        attendees: int
        source_version: int   # of the node's attendance record: an older report never wins

        def apply(self, s):
            s.node_attendance = dict(getattr(s, "node_attendance", {}) or {})
            s.node_attendance[self.node] = (self.source_version, list(self.units))

    @classmethod
    def plan(cls, session_id, kind, title, organiser_unit_id, scheduled_at, local_date,
             audience, tags, materials, joinable=None, speaker=None, case_refs=(), *,
             taken: bool = False):
        """``joinable`` None: as the kind has it (主题联学 and 上下联学 are open to other
        units); ``taken``: the session id is in use."""
        if taken:
            raise Conflict("活动「%s」已存在" % session_id, {"session_id": ["已被占用"]})
        if joinable is None:
            joinable = kind in JOINABLE_KINDS
        if kind not in SESSION_KINDS:
            raise RuleViolation("未知的活动类型「%s」" % kind, {"kind": ["未知"]})
        if kind == MICRO_PARTY_LESSON and not speaker:
            raise RuleViolation("廉政微党课须有主讲人（一人讲）",
                                {"speaker": ["廉政微党课必须填写"]})
        s = cls(session_id)
        s.trigger(cls.Planned, session_id=session_id, kind=kind, title=title,
                  organiser_unit_id=organiser_unit_id, scheduled_at=scheduled_at,
                  local_date=local_date, period=local_date[:7], audience=session_audience(audience),
                  tags=normalise_tags(tags), materials=list(materials), joinable=joinable,
                  speaker=speaker, case_refs=sorted(set(case_refs)))
        return s

    def hold(self, held_at: str, local_date: str, today: date, headcount: int | None,
             attended_unit_ids: list[str], discussion=None, leader_comment=None,
             activities=(), case_analysis=(), materials=(), *, roster=None, known_members=()):
        """``roster``: who attended, by person id (then the headcount is the roster's, and
        the roster is recorded too); ``known_members``: those of them this node knows -
        a roster naming anyone else is refused before anything else."""
        if roster:
            unknown = sorted(set(roster) - set(known_members))
            if unknown:
                raise NotFound("参加名单中有本节点不认识的人员", {"attendance.roster": [
                    "未知的成员：%s" % ", ".join(unknown[:20])]})
            headcount = len(set(roster))
        if self.status != "planned":
            raise RuleViolation("活动「%s」当前为「%s」，不是计划中的活动" % (self.id, SESSION_STATUSES.label(self.status)))
        if parse_date(local_date) > today:
            raise RuleViolation("活动须在举办当天或之后才能登记为已举办",
                                {"held_at": ["晚于今天"]})
        errors = {}
        if self.kind == MICRO_PARTY_LESSON:
            # 一人讲、大家议、领导评: the lesson counts only with all three
            if not discussion:
                errors["discussion"] = ["廉政微党课必须填写“大家议”"]
            if not leader_comment:
                errors["leader_comment"] = ["廉政微党课必须填写“领导评”"]
        if self.kind == THEMED_PARTY_DAY:
            missing = [PARTY_DAY_ACTIVITIES[a] for a in PARTY_DAY_ACTIVITIES if a not in activities]
            if missing:
                errors["activities"] = ["专题党日须包含全部四项“共”，缺少：%s" % "、".join(missing)]
        if errors:
            raise RuleViolation("该活动缺少其类型所要求的内容", errors)
        units = [self.organiser_unit_id] + [u for u in dict.fromkeys(attended_unit_ids)
                                            if u != self.organiser_unit_id]
        self.trigger(self.Held, session_id=self.id, kind=self.kind,
                     organiser_unit_id=self.organiser_unit_id, held_at=held_at,
                     local_date=local_date, period=local_date[:7], headcount=headcount,
                     attended_unit_ids=units, discussion=discussion,
                     leader_comment=leader_comment, activities=sorted(set(activities)),
                     case_analysis=list(case_analysis), materials=list(materials))
        if roster:
            self.record_roster(roster)

    def credit_young_cadres(self, programmes: list, cadence_days: int, today: date) -> list:
        """A young cadre on the roster has had this session's education: each of their
        ``programmes`` (``YoungCadreProgramme``, those enrolled) records it. Returns them."""
        for y in programmes:
            y.record(parse_date(self.local_date), SESSION_KINDS[self.kind], self.id, cadence_days, today)
        return list(programmes)

    def record_roster(self, person_ids: list[str]):
        if self.status != "held":
            raise RuleViolation("只能为已举办的活动登记参加名单")
        self.trigger(self.RosterRecorded, session_id=self.id,
                     organiser_unit_id=self.organiser_unit_id,
                     person_ids=sorted(set(person_ids)), local_date=self.local_date)

    def cancel(self, reason: str):
        if self.status != "planned":
            raise RuleViolation("只有计划中的活动才能取消（当前为「%s」）" % SESSION_STATUSES.label(self.status))
        self.trigger(self.Cancelled, session_id=self.id,
                     organiser_unit_id=self.organiser_unit_id, reason=reason)


class SessionParticipation(Aggregate):
    """A unit joining a session organised elsewhere, and its attendance."""

    class Joined(Aggregate.Event):
        """A unit joined a session organised at another level or on another node."""
        participation_id: str
        session_key: str
        session_node: str
        session_id: str
        unit_id: str
        kind: OneOf(SESSION_KIND_LABELS)
        title: str
        local_date: IsoDate
        period: MonthStr
        external: bool

        def apply(self, p):
            p.unit_id = self.unit_id
            p.kind = self.kind
            p.session_key = self.session_key
            p.attended = False

    class Attended(Aggregate.Event):
        """The joining unit's attendance."""
        participation_id: str
        session_key: str
        unit_id: str
        kind: OneOf(SESSION_KIND_LABELS)
        headcount: Count
        local_date: IsoDate
        period: MonthStr

        def apply(self, p):
            p.attended = True
            p.headcount = self.headcount

    class Corrected(Aggregate.Event):
        """The joining unit's attendance corrected (a joint activity's attendance corrected
        on its node): a new headcount, or not attended after all."""

        participation_id: str
        session_key: str
        unit_id: str
        kind: str
        attended: bool
        headcount: int
        local_date: str
        period: str

        def apply(self, p):
            p.attended = self.attended
            p.headcount = self.headcount

    @staticmethod
    def participation_id(session_node: str, session_id: str, unit_id: str) -> str:
        return "%s/%s" % (session_key(session_node, session_id), unit_id)

    @staticmethod
    def check_joinable(session: dict, unit_id: str) -> None:
        """A unit may join a session of this node (``session``: its row - status,
        organiser, joinable) unless it is cancelled, the unit organises it, or it is not
        open to other units. Checked on every join, a repeated one too."""
        if session["status"] == "cancelled":
            raise RuleViolation("活动「%s」已取消" % session["session_id"])
        if session["organiser_unit_id"] == unit_id:
            raise RuleViolation("单位「%s」是本次活动的组织单位，不需要报名参加" % unit_id,
                                {"unit_id": ["是组织单位"]})
        if not session["joinable"]:
            raise RuleViolation("活动「%s」不对其他单位开放" % session["session_id"])

    @classmethod
    def join(cls, session_node, session_id, unit_id, kind, title, local_date, external):
        p = cls(cls.participation_id(session_node, session_id, unit_id))
        p.trigger(cls.Joined, participation_id=p.id, session_key=session_key(session_node, session_id),
                  session_node=session_node, session_id=session_id, unit_id=unit_id, kind=kind,
                  title=title, local_date=local_date, period=local_date[:7], external=external)
        return p

    def attend(self, headcount: int, local_date: str, today: date, session_status: str = "held"):
        """``session_status``: the session's, as its node has it (one received from
        another node's feed was held there)."""
        if session_status != "held":
            raise RuleViolation("该活动尚未举办", {"session_id": ["仍为「%s」" % SESSION_STATUSES.label(session_status)]})
        if self.attended:
            raise RuleViolation("「%s」参加本次活动的情况已经登记" % self.unit_id)
        if parse_date(local_date) > today:
            raise RuleViolation("该活动尚未举办", {"session_id": ["晚于今天"]})
        self.trigger(self.Attended, participation_id=self.id, session_key=self.session_key,
                     unit_id=self.unit_id, kind=self.kind, headcount=headcount,
                     local_date=local_date, period=local_date[:7])


class ExternalSession(Aggregate):
    """A session recorded on another node (the city's 上下联学), as its feed told us."""

    class Registered(Aggregate.Event):
        """A session recorded on another node, received from its feed (上下联学)."""
        key: str
        origin_node: str
        record_id: str
        title: str
        kind: OneOf(SESSION_KIND_LABELS)
        held_at: DateTimeStr
        local_date: IsoDate
        period: MonthStr
        organiser: str | None
        tags: Tags

        def apply(self, s):
            s.fields = {k: v for k, v in self.__dict__.items()}

    class Updated(Aggregate.Event):
        """The other node corrected the session."""
        key: str
        origin_node: str
        record_id: str
        title: str
        kind: OneOf(SESSION_KIND_LABELS)
        held_at: DateTimeStr
        local_date: IsoDate
        period: MonthStr
        organiser: str | None
        tags: Tags

        def apply(self, s):
            s.fields = {k: v for k, v in self.__dict__.items()}

    OWN_NODE = "本节点的活动应在本节点计划，不能登记为外部活动"

    @classmethod
    def require_foreign(cls, origin_node: str, this_node: str) -> None:
        """What another node's feed brings is registered as external, never this node's own."""
        if origin_node == this_node:
            raise RuleViolation(cls.OWN_NODE, {"origin_node": ["就是本节点"]})

    @classmethod
    def register(cls, key, **fields):
        s = cls(key)
        s.trigger(cls.Registered, key=key, **fields)
        return s

    def update(self, **fields) -> bool:
        """Record changes; False when the feed repeated what we have (at-least-once)."""
        if {**self.fields, **fields, "key": self.id} == self.fields:
            return False
        self.trigger(self.Updated, key=self.id, **fields)
        return True


class ExternalCase(ExternalSession):
    """A typical case (典型案例) from another node's case library (案例联编)."""

    stream_type = "ExternalCase"
    OWN_NODE = "本节点自己的案例不是外部案例"

    class Registered(Aggregate.Event):
        """A typical case (典型案例) from another node's case library."""
        key: str
        origin_node: str
        record_id: str
        title: str
        summary: str | None
        tags: Tags

        def apply(self, s):
            s.fields = {k: v for k, v in self.__dict__.items()}

    class Updated(Aggregate.Event):
        """The other node corrected the case."""
        key: str
        origin_node: str
        record_id: str
        title: str
        summary: str | None
        tags: Tags

        def apply(self, s):
            s.fields = {k: v for k, v in self.__dict__.items()}


# -- daily reminder and check-in -----------------------------------------------------------
class DailyReminder(Aggregate):
    class Published(Aggregate.Event):
        """The one-line 廉洁提醒 of a day."""
        on: IsoDate
        text: str
        item_id: str | None

        def apply(self, r):
            r.text = self.text

    class Revised(Aggregate.Event):
        """A day's reminder reworded before anyone acknowledged it."""
        on: IsoDate
        text: str
        item_id: str | None

        def apply(self, r):
            r.text = self.text

    @classmethod
    def publish(cls, on: str, text: str, item_id: str | None, today: date | None = None):
        """``today``: the users' today - a past day's reminder is closed (the routine
        publishes today's)."""
        if today is not None and parse_date(on) < today:
            raise RuleViolation("过去日期的提醒已关闭，不能再打卡", {"on": ["已经过去"]})
        r = cls(on)
        r.trigger(cls.Published, on=on, text=text, item_id=item_id)
        return r

    def revise(self, text: str, item_id: str | None, today: date, checked_in: int):
        if parse_date(self.id) < today:
            raise RuleViolation("过去日期的提醒已关闭，不能再打卡", {"on": ["已经过去"]})
        if checked_in:
            raise RuleViolation("已有 %d 名成员确认了这条提醒" % checked_in)
        if text != self.text:
            self.trigger(self.Revised, on=self.id, text=text, item_id=item_id)


class ReminderCheckIn(Aggregate):
    """日打卡: one member, one day. ``streak`` is the run of consecutive days this
    check-in completes - what the member is told ("连续打卡第 N 天") - decided when it is
    recorded, from the member's previous check-in. ``by`` is the user who recorded it
    (the member, or a gateway account): check-ins are group-committed, several users'
    in one append, so the payload rather than the envelope's actor names who."""

    class CheckedIn(Aggregate.Event):
        """日打卡: a member acknowledged the day's reminder (private)."""
        person_id: str
        unit_id: str
        on: IsoDate
        checked_at: DateTimeStr
        streak: Annotated[int, {"minimum": 1}]
        by: str

        private = True

        def apply(self, c):
            c.unit_id = self.unit_id

    @staticmethod
    def checkin_id(on: str, person_id: str) -> str:
        return "%s/%s" % (on, person_id)

    @classmethod
    def check_in(cls, person_id: str, unit_id: str, on: str, checked_at: str, streak: int, by: str):
        c = cls(cls.checkin_id(on, person_id))
        c.trigger(cls.CheckedIn, person_id=person_id, unit_id=unit_id, on=on,
                  checked_at=checked_at, streak=streak, by=by)
        return c

    @classmethod
    def decide(cls, person_id: str, on: str, checked_at: str, by: str, member,
               earlier_here: tuple | None = None):
        """One member's check-in on ``on``, decided from the facts: ``member`` their row
        (None: not known on this node; else its ``unit_id``, ``reminder_day`` - None when
        no reminder was published for ``on`` -, ``checked_at`` today's check-in if any,
        ``last_day`` and ``current`` their streak so far), ``earlier_here`` the
        (checked_at, streak) of the same member earlier in the same batch.

        Returns (outcome, new check-in or None): a repeat is answered with the first
        check-in's time and counted once."""
        if member is None:
            raise NotFound("本节点（尚）不认识成员「%s」" % person_id,
                           {"person_id": ["不是已登记的成员"]})
        if member.reminder_day is None:
            raise RuleViolation("%s 没有发布廉洁提醒" % on)
        if member.checked_at is not None or earlier_here is not None:
            first = member.checked_at or earlier_here[0]
            streak = (live_streak(member.last_day, member.current, parse_date(on))
                      if member.checked_at else earlier_here[1])
            return ({"person_id": person_id, "on": on, "checked_at": first,
                     "duplicate": True, "streak": streak}, None)
        streak = next_streak(member.last_day, member.current or 0, on)
        return ({"person_id": person_id, "on": on, "checked_at": checked_at,
                 "duplicate": False, "streak": streak},
                cls.check_in(person_id, member.unit_id, on, checked_at, streak, by))


def require_check_in_for_other(may_act_for_members: bool) -> None:
    """A member checks in for themselves; only a unit-admin or node-admin (e.g. the 打卡
    mini-program's gateway account) for someone else - within their scope, which the
    handler checks against the unit tree."""
    if not may_act_for_members:
        raise Forbidden("成员须本人打卡（单位管理员可为其管理范围内的成员代打卡）")


def next_streak(last_on: str | None, current: int, on: str) -> int:
    """Consecutive calendar days ending on ``on``. Days, not months: 31 Dec then 1 Jan
    continue a streak."""
    if last_on is None:
        return 1
    gap = (parse_date(on) - parse_date(last_on)).days
    if gap <= 0:  # the same day again, or a day before the streak's end: no change
        return current
    return current + 1 if gap == 1 else 1


def longest_run(days: list[str]) -> int:
    """The longest run of consecutive days in a member's check-in history."""
    best = run = 0
    previous = None
    for d in sorted(set(days)):
        day = parse_date(d)
        run = run + 1 if previous is not None and (day - previous).days == 1 else 1
        best = max(best, run)
        previous = day
    return best


def coverage_days(period: str, today: date) -> tuple[date, date] | None:
    """The days of a month that count in its check-in coverage on ``today``: those that
    have come. A reminder set in advance for tomorrow is not a day anyone could have
    acknowledged yet, so it does not lower today's coverage. None: the month is ahead."""
    first, last = month_bounds(period)
    last = min(last, today)
    return (first, last) if first <= last else None


def live_streak(last_on: str | None, current: int, today: date) -> int:
    """A streak still counts today if the member checked in today or yesterday."""
    if last_on is None:
        return 0
    return current if (today - parse_date(last_on)).days <= 1 else 0


# -- library, weekly rotation, tailoring -----------------------------------------------------
def check_streak_viewer(viewer_id: str, person_id: str, privileged: bool) -> None:
    """A member sees their own streak only; admins and inspectors (``privileged``) anyone's."""
    if not privileged and viewer_id != person_id:
        raise Forbidden("成员只能查看自己的连续打卡记录")


class ContentItem(Aggregate):
    class Added(Aggregate.Event):
        """A slogan, image (by reference), short text or one-line reminder added to the library."""
        item_id: str
        kind: OneOf(CONTENT_KIND_LABELS)
        title: str
        text: str | None
        ref: str | None
        tags: Tags

        def apply(self, c):
            c.kind = self.kind
            c.tags = self.tags
            c.retired = False

    class Retagged(Aggregate.Event):
        """New business-type / post / risk-point tags."""
        item_id: str
        tags: Tags

        def apply(self, c):
            c.tags = self.tags

    class Retired(Aggregate.Event):
        """Taken out of rotation."""
        item_id: str
        reason: str

        def apply(self, c):
            c.retired = True

    @classmethod
    def add(cls, item_id, kind, title, text, ref, tags, *, taken: bool = False):
        """``taken``: the item id is in use."""
        if taken:
            raise Conflict("内容「%s」已存在" % item_id, {"item_id": ["已被占用"]})
        if kind not in CONTENT_KINDS:
            raise RuleViolation("未知的内容类型「%s」" % kind, {"kind": ["未知"]})
        if kind == "image" and not ref:
            raise RuleViolation("图片须以引用方式存储", {"ref": ["图片必须填写"]})
        if kind != "image" and not text:
            raise RuleViolation("「%s」必须填写正文" % CONTENT_KINDS[kind], {"text": ["必填"]})
        c = cls(item_id)
        c.trigger(cls.Added, item_id=item_id, kind=kind, title=title, text=text, ref=ref,
                  tags=normalise_tags(tags))
        return c

    def retag(self, tags):
        self._require_active()
        tags = normalise_tags(tags)
        if tags == self.tags:
            raise RuleViolation("标签没有变化")
        self.trigger(self.Retagged, item_id=self.id, tags=tags)

    def retire(self, reason: str):
        self._require_active()
        self.trigger(self.Retired, item_id=self.id, reason=reason)

    def _require_active(self):
        if self.retired:
            raise RuleViolation("内容「%s」已停用" % self.id)


def fit_score(tags: dict, profile: dict) -> int:
    """How well tagged material fits a unit (精准滴灌): a shared risk point weighs most,
    then a post, then a business type. Untagged material is general (score 0)."""
    tags = normalise_tags(tags)
    profile = normalise_tags(profile)
    return (3 * len(set(tags["risk_points"]) & set(profile["risk_points"]))
            + 2 * len(set(tags["posts"]) & set(profile["posts"]))
            + len(set(tags["business_types"]) & set(profile["business_types"])))


def fits(tags: dict, profile: dict) -> bool:
    """Material is offered to a unit if it is general (untagged) or shares a tag."""
    tags = normalise_tags(tags)
    return not any(tags.values()) or fit_score(tags, profile) > 0


def choose_rotation(items: list[dict], profile: dict, last_shown: dict[str, str]) -> list[str]:
    """One item of each rotation kind for a unit's week: among the items that fit the
    unit, the one shown longest ago (never shown first), best fit breaking ties, then id
    - deterministic, so a replay or a retried timer picks the same items."""
    chosen = []
    for kind in ROTATION_KINDS:
        candidates = [i for i in items if i["kind"] == kind and fits(i["tags"], profile)]
        if not candidates:
            continue
        best = min(candidates, key=lambda i: (last_shown.get(i["item_id"], ""),
                                              -fit_score(i["tags"], profile), i["item_id"]))
        chosen.append(best["item_id"])
    return chosen


def rotation_candidates(library: list[dict]) -> list[dict]:
    """What 周更新 may show: the library's items in use of the rotation kinds."""
    return [i for i in library if i["kind"] in ROTATION_KINDS]


def manual_rotation(item_ids: list[str], candidates: list[dict]) -> list[str]:
    """A hand-picked week: each item a slogan, image or short text in use; once each, in
    the order given."""
    active = {i["item_id"] for i in candidates}
    bad = [i for i in item_ids if i not in active]
    if bad:
        raise RuleViolation("以下条目不是在用的标语、图片或短文：%s" % ", ".join(bad),
                            {"item_ids": ["不能轮播：%s" % ", ".join(bad)]})
    return list(dict.fromkeys(item_ids))


class PublicityRotation(Aggregate):
    """周更新: what one unit shows in one ISO week; a later choice in the same week is a
    new version, so the log keeps what was shown when."""

    class Rotated(Aggregate.Event):
        """周更新: what a unit shows in an ISO week (a later version replaces an earlier one)."""
        rotation_id: str
        unit_id: str
        week: Annotated[str, {"pattern": "^[0-9]{4}-W[0-9]{2}$"}]
        starts_on: IsoDate
        item_ids: CaseRefs
        chosen_by: OneOf(ROTATION_CHOICES)

        def apply(self, r):
            r.item_ids = list(self.item_ids)

    @staticmethod
    def rotation_id(unit_id: str, week: str) -> str:
        return "%s/%s" % (unit_id, week)

    @classmethod
    def start(cls, unit_id, week, starts_on, item_ids, chosen_by):
        r = cls(cls.rotation_id(unit_id, week))
        r._rotate(unit_id, week, starts_on, item_ids, chosen_by)
        return r

    @classmethod
    def choose(cls, existing: "PublicityRotation | None", unit_id, week, starts_on, item_ids,
               chosen_by) -> tuple["PublicityRotation", bool]:
        """The week's rotation of a unit: a first choice starts it; a manual choice
        replaces what the week shows; an automatic one leaves a chosen week as it is.
        Returns the rotation and whether it changed."""
        if existing is None:
            return cls.start(unit_id, week, starts_on, item_ids, chosen_by), True
        if chosen_by == "auto":
            return existing, False
        existing.replace(unit_id, week, starts_on, item_ids, chosen_by)
        return existing, True

    def replace(self, unit_id, week, starts_on, item_ids, chosen_by):
        if list(item_ids) == self.item_ids:
            raise RuleViolation("本周展示的已经是这些内容")
        self._rotate(unit_id, week, starts_on, item_ids, chosen_by)

    def _rotate(self, unit_id, week, starts_on, item_ids, chosen_by):
        if not item_ids:
            raise RuleViolation("没有可展示的内容：内容库中没有合适的条目",
                                {"item_ids": ["为空"]})
        self.trigger(self.Rotated, rotation_id=self.id, unit_id=unit_id, week=week,
                     starts_on=starts_on, item_ids=list(item_ids), chosen_by=chosen_by)


class UnitProfile(Aggregate):
    class Set(Aggregate.Event):
        """A unit's business types, posts and integrity-risk points."""
        unit_id: str
        business_types: CaseRefs
        posts: CaseRefs
        risk_points: CaseRefs

        def apply(self, p):
            p.tags = {k: self.__dict__[k] for k in TAG_DIMENSIONS}

    @classmethod
    def create(cls, unit_id: str, tags: dict):
        p = cls(unit_id)
        p.tags = None
        p.set(tags)
        return p

    def set(self, tags: dict):
        tags = normalise_tags(tags)
        if tags == getattr(self, "tags", None):
            raise RuleViolation("档案没有变化")
        self.trigger(self.Set, unit_id=self.id, **tags)


# -- 廉洁通知 ----------------------------------------------------------------------------------
NOTICE_BODY = ("%s将至。请各单位教育提醒党员干部严守中央八项规定及其实施细则精神，"
               "严禁公款吃喝、违规收送礼品礼金、公车私用，坚决防止\"四风\"问题反弹回潮，"
               "风清气正过节。收到后请回执。")


class IntegrityNotice(Aggregate):
    class Scheduled(Aggregate.Event):
        """A 廉洁通知 scheduled in advance (from the calendar or by hand)."""
        notice_id: str
        title: str
        body: str
        send_on: IsoDate
        occasion: str | None
        occasion_date: IsoDate | None
        source: OneOf(NOTICE_SOURCES)

        def apply(self, n):
            n.status = "scheduled"
            n.title = self.title
            n.send_on = self.send_on

    class Sent(Aggregate.Event):
        """The notice went out to every party organisation listed."""
        notice_id: str
        title: str
        unit_ids: CaseRefs
        sent_at: DateTimeStr
        send_on: IsoDate

        def apply(self, n):
            n.status = "sent"
            n.recipients = list(self.unit_ids)

    class Cancelled(Aggregate.Event):
        """A scheduled notice was withdrawn."""
        notice_id: str
        reason: str

        def apply(self, n):
            n.status = "cancelled"

    @staticmethod
    def calendar_id(key: str, occasion: date) -> str:
        return "%s-%s" % (key, occasion.isoformat())

    @classmethod
    def schedule(cls, notice_id, title, body, send_on, occasion, occasion_date, source, today, *,
                 taken: bool = False):
        """``taken``: the notice id is in use."""
        if taken:
            raise Conflict("通知「%s」已存在" % notice_id, {"notice_id": ["已被占用"]})
        if parse_date(send_on) < today:
            raise RuleViolation("通知的发送日期必须是今天或以后", {"send_on": ["已经过去"]})
        n = cls(notice_id)
        n.trigger(cls.Scheduled, notice_id=notice_id, title=title, body=body, send_on=send_on,
                  occasion=occasion, occasion_date=occasion_date, source=source)
        return n

    @classmethod
    def for_occasion(cls, key: str, name: str, occasion: date, lead_days: int, today: date):
        """The calendar's notice of a holiday (``key``, ``name``) on ``occasion``: sent
        ``lead_days`` before it - today, if that day has passed and the holiday has not."""
        send_on = max(occasion - timedelta(days=lead_days), today)
        return cls.schedule(cls.calendar_id(key, occasion), "关于%s期间严守纪律、廉洁过节的通知" % name,
                            NOTICE_BODY % name, send_on.isoformat(), name, occasion.isoformat(),
                            "calendar", today)

    @property
    def sendable(self) -> bool:
        """Still to go out (one cancelled meanwhile is not sent)."""
        return self.status == "scheduled"

    def send(self, unit_ids: list[str], sent_at: str, today: date):
        if self.status != "scheduled":
            raise RuleViolation("通知「%s」当前为「%s」" % (self.id, NOTICE_STATUSES.label(self.status)))
        if parse_date(self.send_on) > today:
            raise RuleViolation("通知「%s」定于 %s 发送" % (self.id, self.send_on))
        self.trigger(self.Sent, notice_id=self.id, title=self.title,
                     unit_ids=sorted(set(unit_ids)), sent_at=sent_at, send_on=self.send_on)

    def cancel(self, reason: str):
        if self.status != "scheduled":
            raise RuleViolation("只有待发送的通知才能取消（当前为「%s」）" % NOTICE_STATUSES.label(self.status))
        self.trigger(self.Cancelled, notice_id=self.id, reason=reason)


class NoticeReceipt(Aggregate):
    """A unit's receipt of one notice (回执)."""

    class Acknowledged(Aggregate.Event):
        """A unit's receipt (回执) of a notice."""
        notice_id: str
        unit_id: str
        acknowledged_at: DateTimeStr
        by: str

        pass

    @staticmethod
    def receipt_id(notice_id: str, unit_id: str) -> str:
        return "%s/%s" % (notice_id, unit_id)

    @classmethod
    def acknowledge(cls, notice_id, unit_id, acknowledged_at, by, *, receipt: dict | None,
                    notice_known: bool = True):
        """``receipt``: the unit's receipt row of the notice (None: the notice was not sent
        to it - or, ``notice_known`` False, there is no such notice). An acknowledged
        receipt stays as it was: None, nothing to record (the first receipt answers)."""
        if receipt is None:
            if not notice_known:
                raise NotFound("通知「%s」不存在" % notice_id, {"notice_id": ["没有这条通知"]})
            raise RuleViolation("单位「%s」尚未收到通知「%s」" % (unit_id, notice_id),
                                {"unit_id": ["（尚）不是接收单位"]})
        if receipt["acknowledged_at"]:
            return None
        r = cls(cls.receipt_id(notice_id, unit_id))
        r.trigger(cls.Acknowledged, notice_id=notice_id, unit_id=unit_id,
                  acknowledged_at=acknowledged_at, by=by)
        return r


# -- 廉政谈话 and young cadres ----------------------------------------------------------------
class IntegrityTalk(Aggregate):
    """The 廉政谈话 a newly promoted cadre is due within N days of the promotion."""

    class Scheduled(Aggregate.Event):
        """A 廉政谈话 due for a newly promoted cadre (private)."""
        talk_id: str
        person_id: str
        unit_id: str
        new_post: str
        promoted_on: IsoDate
        due_on: IsoDate

        private = True

        def apply(self, t):
            t.person_id = self.person_id
            t.unit_id = self.unit_id
            t.promoted_on = self.promoted_on
            t.due_on = self.due_on
            t.status = "scheduled"
            t.overdue = False
            t.escalation_step = 0

    class Held(Aggregate.Event):
        """The talk took place (private)."""
        talk_id: str
        person_id: str
        unit_id: str
        held_on: IsoDate
        conducted_by: str
        note: str | None
        due_on: IsoDate
        on_time: bool
        days_late: Count

        private = True

        def apply(self, t):
            t.status = "held"

    class BecameOverdue(Aggregate.Event):
        """The due date passed without a talk (private)."""
        talk_id: str
        person_id: str
        unit_id: str
        due_on: IsoDate
        detected_on: IsoDate

        private = True

        def apply(self, t):
            t.overdue = True

    class Escalated(Aggregate.Event):
        """An overdue talk climbed a rung of the escalation ladder (private)."""
        talk_id: str
        person_id: str
        unit_id: str
        step: Annotated[int, {"minimum": 1}]
        notify: OneOf(("unit", "parent", "district",))
        label: str
        notify_unit_id: str
        overdue_days: Annotated[int, {"minimum": 1}]
        due_on: IsoDate

        private = True

        def apply(self, t):
            t.escalation_step = self.step

    @staticmethod
    def talk_id(person_id: str, promoted_on: str) -> str:
        return "%s/%s" % (person_id, promoted_on)

    @classmethod
    def schedule(cls, person_id, unit_id, new_post, promoted_on, due_days):
        due = parse_date(promoted_on) + timedelta(days=due_days)
        t = cls(cls.talk_id(person_id, promoted_on))
        t.trigger(cls.Scheduled, talk_id=t.id, person_id=person_id, unit_id=unit_id,
                  new_post=new_post, promoted_on=promoted_on, due_on=due.isoformat())
        return t

    def hold(self, held_on: str, conducted_by: str, note: str | None, today: date):
        if self.status == "held":
            raise RuleViolation("该谈话已登记为已进行")
        held = parse_date(held_on)
        if held > today:
            raise RuleViolation("谈话须在进行后才能登记", {"held_on": ["晚于今天"]})
        if held < parse_date(self.promoted_on):
            raise RuleViolation("任前谈话须在提拔之后进行",
                                {"held_on": ["早于提拔日期（%s）" % self.promoted_on]})
        late = (held - parse_date(self.due_on)).days
        self.trigger(self.Held, talk_id=self.id, person_id=self.person_id, unit_id=self.unit_id,
                     held_on=held_on, conducted_by=conducted_by, note=note, due_on=self.due_on,
                     on_time=late <= 0, days_late=max(0, late))

    def detect_overdue(self, today: date, ladder) -> list[dict]:
        """Record what ``today`` makes true: overdue, then each rung of the ladder reached
        and not yet climbed. Returns the escalations (the caller resolves the target)."""
        if self.status != "scheduled":
            return []
        overdue_days = (today - parse_date(self.due_on)).days
        if overdue_days <= 0:
            return []
        if not self.overdue:
            self.trigger(self.BecameOverdue, talk_id=self.id, person_id=self.person_id,
                         unit_id=self.unit_id, due_on=self.due_on, detected_on=today.isoformat())
        return [step for step in ladder
                if step.step > self.escalation_step and overdue_days >= step.overdue_days]

    def escalate(self, step, notify_unit_id: str, today: date):
        self.trigger(self.Escalated, talk_id=self.id, person_id=self.person_id,
                     unit_id=self.unit_id, step=step.step, notify=step.notify, label=step.label,
                     notify_unit_id=notify_unit_id,
                     overdue_days=(today - parse_date(self.due_on)).days, due_on=self.due_on)


def escalation_target(notify: str, unit_id: str, parent_id: str | None, root_id: str) -> str:
    """The unit a rung of the talk ladder notifies: the talk's unit itself, its parent
    (the unit itself at the top of the tree), or the district - the root of its tree."""
    if notify == "unit":
        return unit_id
    if notify == "parent":
        return parent_id or unit_id
    return root_id


class YoungCadreProgramme(Aggregate):
    """年轻干部 periodic discipline and integrity education, on a cadence."""

    class Enrolled(Aggregate.Event):
        """A young cadre's periodic education starts (private)."""
        person_id: str
        unit_id: str
        enrolled_on: IsoDate
        cadence_days: Annotated[int, {"minimum": 1}]
        next_due_on: IsoDate

        private = True

        def apply(self, y):
            y.unit_id = self.unit_id
            y.next_due_on = self.next_due_on
            y.last_on = None
            y.overdue = False

    class EducationRecorded(Aggregate.Event):
        """A young cadre had discipline and integrity education (private)."""
        person_id: str
        unit_id: str
        on: IsoDate
        topic: str
        session_id: str | None
        next_due_on: IsoDate

        private = True

        def apply(self, y):
            y.next_due_on = self.next_due_on
            y.last_on = max(self.on, y.last_on) if y.last_on else self.on
            y.overdue = False

    class BecameOverdue(Aggregate.Event):
        """The cadence passed without education (private)."""
        person_id: str
        unit_id: str
        due_on: IsoDate
        detected_on: IsoDate

        private = True

        def apply(self, y):
            y.overdue = True

    class Moved(Aggregate.Event):
        """The young cadre now belongs to another unit (private)."""
        person_id: str
        unit_id: str

        private = True

        def apply(self, y):
            y.unit_id = self.unit_id

    @classmethod
    def enrol(cls, person_id, unit_id, enrolled_on: date, cadence_days: int):
        y = cls(person_id)
        y.trigger(cls.Enrolled, person_id=person_id, unit_id=unit_id,
                  enrolled_on=enrolled_on.isoformat(), cadence_days=cadence_days,
                  next_due_on=(enrolled_on + timedelta(days=cadence_days)).isoformat())
        return y

    def record(self, on: date, topic: str, session_id: str | None, cadence_days: int, today: date):
        if on > today:
            raise RuleViolation("教育须在开展后才能登记", {"on": ["晚于今天"]})
        # the next one is due a cadence after the latest education on record: entering an
        # older session late never brings the due date forward
        latest = max(on, parse_date(self.last_on)) if self.last_on else on
        self.trigger(self.EducationRecorded, person_id=self.id, unit_id=self.unit_id,
                     on=on.isoformat(), topic=topic, session_id=session_id,
                     next_due_on=(latest + timedelta(days=cadence_days)).isoformat())

    def detect_overdue(self, today: date) -> bool:
        if self.overdue or today <= parse_date(self.next_due_on):
            return False
        self.trigger(self.BecameOverdue, person_id=self.id, unit_id=self.unit_id,
                     due_on=self.next_due_on, detected_on=today.isoformat())
        return True

    def move(self, unit_id: str):
        if unit_id != self.unit_id:
            self.trigger(self.Moved, person_id=self.id, unit_id=unit_id)


# -- people, as the units service tells us --------------------------------------------------
class MemberMirror(Aggregate):
    """A member's unit, post and young-cadre flag, merged from the units service's
    ``Person.Registered`` / ``Person.Promoted``. Those arrive on two queues and may be
    handled in either order, so each is merged by its source version rather than applied
    in arrival order: the newest unit and post win, the young-cadre flag comes from the
    registration whenever it arrives."""

    class Recorded(Aggregate.Event):
        """A member's unit, post and young-cadre flag as the units service told us (private; no name)."""
        person_id: str
        unit_id: str
        post: str | None
        young_cadre: bool
        source_version: Annotated[int, {"minimum": 1}]
        registered: bool

        private = True

        def apply(self, m):
            m.unit_id = self.unit_id
            m.post = self.post
            m.young_cadre = self.young_cadre
            m.source_version = self.source_version
            m.registered = self.registered

    @classmethod
    def blank(cls, person_id: str) -> "MemberMirror":
        m = cls(person_id)
        m.unit_id = m.post = None
        m.young_cadre = False
        m.source_version = 0
        m.registered = False
        return m

    def merge(self, kind: str, version: int, payload: dict) -> bool:
        """Fold one source event in; False if it changes nothing (an old promotion)."""
        unit_id, post, young, registered = self.unit_id, self.post, self.young_cadre, self.registered
        newer = version > self.source_version
        if kind == "Registered":
            registered = True
            young = bool(payload.get("young_cadre"))
            if newer:
                unit_id, post = payload["unit_id"], payload["post"]
        elif kind == "Promoted" and newer:
            unit_id, post = payload["unit_id"], payload["new_post"]
        source_version = max(version, self.source_version)
        state = (unit_id, post, young, source_version, registered)
        if state == (self.unit_id, self.post, self.young_cadre, self.source_version, self.registered):
            return False
        self.trigger(self.Recorded, person_id=self.id, unit_id=unit_id, post=post,
                     young_cadre=young, source_version=source_version, registered=registered)
        return True


def inbox_root(node_admin: bool, unit_scope: str | None) -> str | None:
    """Whose inbox a user sees: a unit-admin's is their subtree's (the root returned);
    other roles see the whole node (None)."""
    return None if node_admin or not unit_scope else unit_scope


def follow_person(member: "MemberMirror", kind: str, payload: dict, *, talk_taken: bool,
                  programme: "YoungCadreProgramme | None", today: date, talk_due_days: int,
                  cadence_days: int) -> tuple[list, str | None]:
    """What a units-service ``Person.Registered`` / ``.Promoted`` (merged into ``member``
    first) sets going: a promotion schedules the 廉政谈话 (``talk_taken``: it is scheduled
    already); a registered young cadre is enrolled in periodic education, an enrolled one
    follows the member to their unit (``programme``: theirs, if any). Returns the
    aggregates changed (the member's mirror first) and the talk's id, if one was scheduled."""
    touched, talk_id = [member], None
    if kind == "Promoted":
        tid = IntegrityTalk.talk_id(member.id, payload["effective_on"])
        if not talk_taken:
            touched.append(IntegrityTalk.schedule(member.id, payload["unit_id"], payload["new_post"],
                                                  payload["effective_on"], talk_due_days))
            talk_id = tid
    if member.young_cadre and member.registered and programme is None:
        touched.append(YoungCadreProgramme.enrol(member.id, member.unit_id, today, cadence_days))
    elif programme is not None:
        programme.move(member.unit_id)
        touched.append(programme)
    return touched, talk_id


class UserInbox(Aggregate):
    class ItemsRead(Aggregate.Event):
        """A node user read inbox items."""
        user_id: str
        item_ids: CaseRefs
        read_at: DateTimeStr

        pass

    @classmethod
    def for_user(cls, user_id: str) -> "UserInbox":
        return cls(user_id)

    def read(self, item_ids: list[str], read_at: str, *, item_units: dict | None = None,
             visible: list[str] | None = None):
        """``item_units``: the unit of each known inbox item (item id -> unit id; None:
        not checked); ``visible``: the units the user's inbox covers (None: the node)."""
        if item_units is not None:
            unknown = sorted(set(item_ids) - set(item_units))
            if unknown:
                raise NotFound("收件箱中没有这些条目", {"item_ids": ["未知：%s" % ", ".join(unknown[:20])]})
            if visible is not None:
                mine = set(visible)
                outside = sorted(i for i, u in item_units.items() if u not in mine)
                if outside:
                    raise Forbidden("以下条目不在您的管理范围内：%s" % ", ".join(outside[:20]))
        self.trigger(self.ItemsRead, user_id=self.id, item_ids=sorted(set(item_ids)), read_at=read_at)


# -- indicators ------------------------------------------------------------------------------
INDICATOR_FIELDS = ("warning_education_held", "checkin_coverage", "talks_on_time_rate")


class EducationIndicators(Aggregate):
    """A unit's education figures for a month; published again only when they change
    (a late-recorded session corrects the month)."""

    class Published(Aggregate.Event):
        """A party organisation's education figures for a month (consumed by supervision; shared upward by exchange)."""
        unit_id: str
        period: MonthStr
        warning_education_held: bool
        checkin_coverage: Rate
        talks_on_time_rate: Rate | None
        # the month is still open for entries (running, or in its grace period): not a
        # final figure, so a "not held" is not a miss yet (shared.months.month_final)
        provisional: bool = False

        def apply(self, i):
            i.values = {k: self.__dict__[k] for k in INDICATOR_FIELDS}
            i.provisional = self.__dict__.get("provisional", False)

    @staticmethod
    def indicators_id(unit_id: str, period: str) -> str:
        return "%s/%s" % (unit_id, period)

    @classmethod
    def blank(cls, unit_id: str, period: str) -> "EducationIndicators":
        i = cls(cls.indicators_id(unit_id, period))
        i.values = None
        return i

    def publish(self, unit_id: str, period: str, values: dict, provisional: bool = False) -> bool:
        values = {k: values[k] for k in INDICATOR_FIELDS}
        if values == self.values and provisional == getattr(self, "provisional", False):
            return False
        # payload exactly {unit_id, period, warning_education_held, checkin_coverage,
        # talks_on_time_rate, provisional}: the supervision service's ecology scoring reads it
        self.trigger(self.Published, unit_id=unit_id, period=period, provisional=provisional,
                     **values)
        return True


def republish_due(period: str, provisional: bool, entry_position: int, seen_position: int,
                  today: date, grace_days: int) -> bool:
    """A month published before is published again (only what changed) when its figures
    were provisional and have just become final (``shared.months.month_final``), or when
    an entry counting for it was recorded (``entry_position``, a log position) since it
    was last looked at (``seen_position``): a late entry corrects the figures without
    anyone republishing."""
    becomes_final = provisional and month_final(period, today, grace_days)
    return becomes_final or entry_position > seen_position


DISTRICT_FIELDS = ("units_total", "units_warning_education_held", "warning_education_compliance",
                   "checkin_coverage", "talks_due", "talks_on_time", "talks_on_time_rate")


class DistrictEducationIndicators(Aggregate):
    class Published(Aggregate.Event):
        """The node's education figures for a month, over its party organisations."""
        node_id: str
        period: MonthStr
        units_total: Count
        units_warning_education_held: Count
        warning_education_compliance: Rate
        checkin_coverage: Rate
        talks_due: Count
        talks_on_time: Count
        talks_on_time_rate: Rate | None
        provisional: bool = False  # the month still open for entries (see EducationIndicators)

        def apply(self, i):
            i.values = {k: self.__dict__[k] for k in DISTRICT_FIELDS}
            i.provisional = self.__dict__.get("provisional", False)

    @classmethod
    def blank(cls, node_id: str, period: str) -> "DistrictEducationIndicators":
        i = cls("%s/%s" % (node_id, period))
        i.values = None
        return i

    def publish(self, node_id: str, period: str, values: dict, provisional: bool = False) -> bool:
        values = {k: values[k] for k in DISTRICT_FIELDS}
        if values == self.values and provisional == getattr(self, "provisional", False):
            return False
        self.trigger(self.Published, node_id=node_id, period=period, provisional=provisional,
                     **values)
        return True


# -- what other services and nodes tell education (nobody re-types it) -----------------------
class RiskPointMirror(Aggregate):
    """One entry of supervision's 廉政风险点台账 as its events told this service
    (``RiskPoint.Identified`` / ``RiskPoint.Retired``): the register tailoring (精准滴灌)
    offers material for. Both arrive on one queue but may be handled in either order by
    concurrent workers, so each is merged by the source stream's version: an older
    event never undoes a newer one, and a retirement handled before the identification
    still leaves the point retired."""

    class Recorded(Aggregate.Event):
        """A risk point of the register, as supervision has it now."""

        risk_point_id: str
        unit_id: str
        name: str | None       # the register's description of the risk (None until identified)
        category: str | None   # supervision's RISK_CATEGORIES code
        post: str | None
        active: bool
        source_version: int

        def apply(self, m):
            m.unit_id, m.name, m.category, m.post = self.unit_id, self.name, self.category, self.post
            m.active, m.source_version = self.active, self.source_version

    @classmethod
    def blank(cls, risk_point_id: str) -> "RiskPointMirror":
        m = cls(risk_point_id)
        m.unit_id = m.name = m.category = m.post = None
        m.active, m.source_version = False, 0
        return m

    def merge(self, kind: str, version: int, payload: dict) -> bool:
        """Fold ``RiskPoint.<kind>`` (source stream version ``version``) in; False when it
        changes nothing (a repeat, or an event older than what is recorded)."""
        name, category, post = self.name, self.category, self.post
        unit_id = payload.get("unit_id") or self.unit_id
        active = self.active
        if kind == "Identified":
            name, category, post = payload["description"], payload["category"], payload.get("post")
            if self.source_version == 0:
                active = True
        elif kind == "Retired":
            active = False
        else:
            return False
        if kind == "Identified" and version < self.source_version:
            active = self.active  # the newer event (a retirement) decides
        source_version = max(version, self.source_version)
        if (unit_id, name, category, post, active, source_version) == (
                self.unit_id, self.name, self.category, self.post, self.active, self.source_version):
            return False
        self.trigger(self.Recorded, risk_point_id=self.id, unit_id=unit_id, name=name,
                     category=category, post=post, active=active, source_version=source_version)
        return True


def case_tags(category: str | None, tags: list | None) -> dict:
    """How a 案例联编 case is matched to units: its category and tags name the risks it
    is about (违规发放补贴, 工程招投标 ...), so they are its risk points; its tags also
    name the business it happened in (政务服务, 工程建设 ...), matched to business types.
    A case with neither is general and offered to every unit."""
    points = set(tags or ())
    if category:
        points.add(category)
    return normalise_tags({"risk_points": sorted(points), "business_types": sorted(set(tags or ()))})


class SharedCase(Aggregate):
    """A case of 案例联编 as this node's exchange service has it - compiled here or
    received from another node (the city's typical cases among them) - offered to units
    by tailoring without anyone entering it again. Merged by the case stream's version
    (the exchange's events arrive on one queue, handled by concurrent workers)."""

    class Recorded(Aggregate.Event):
        """The case as the exchange has it now; ``offered`` false once it is withdrawn."""

        case_id: str             # the exchange's record id, "<owner node>/<slug>"
        origin_node: str
        title: str
        category: str | None
        summary: str | None
        tags: dict
        offered: bool
        source_version: int

        def apply(self, c):
            c.fields = {k: getattr(self, k) for k in ("origin_node", "title", "category", "summary", "tags")}
            c.offered, c.source_version = self.offered, self.source_version

    @classmethod
    def blank(cls, case_id: str) -> "SharedCase":
        c = cls(case_id)
        c.fields, c.offered, c.source_version = None, False, 0
        return c

    def merge(self, kind: str, version: int, payload: dict) -> bool:
        """Fold ``Case.<kind>`` in: Published and Revised carry the case's content, a
        draft (sharing ``node``) or Withdrawn takes it off offer. False: nothing new."""
        if version <= self.source_version:
            return False
        fields = dict(self.fields or {})
        if kind in ("Published", "Revised", "Compiled"):
            fields.update(title=payload.get("title", fields.get("title")),
                          category=payload.get("category", fields.get("category")),
                          summary=payload.get("summary", fields.get("summary")),
                          tags=case_tags(payload.get("category", fields.get("category")),
                                         payload.get("tags", (fields.get("tags") or {}).get("risk_points"))))
            offered = payload.get("sharing", "node") != "node"
        elif kind == "Withdrawn":
            offered = False
        else:
            return False
        if not fields.get("title"):
            return False  # nothing to offer yet (withdrawn before we ever saw it)
        owner = self.id.split("/", 1)[0]
        self.trigger(self.Recorded, case_id=self.id, origin_node=owner, title=fields["title"],
                     category=fields.get("category"), summary=fields.get("summary"),
                     tags=fields.get("tags") or normalise_tags(None), offered=offered,
                     source_version=version)
        return True


# -- 上下联学 across nodes and 活动联办 (through the exchange service) ---------------------------
def shared_slug(session_id: str) -> str:
    """The slug of the exchange record a session shared with other nodes becomes
    (``<this node>/<slug>``): derived from the session id, so the organiser's education
    service knows which record the districts' attendance comes back on."""
    import hashlib
    return "session-%s" % hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]


def activity_kind(theme: str | None) -> str:
    """The session kind a 活动联办 activity (or a shared session, whose theme is its
    kind's name) counts as: warning education when its theme names it (警示教育, as
    ``SESSION_KINDS`` calls it), a 上下联学 when the theme says so, else 主题联学."""
    theme = theme or ""
    for kind in (WARNING_EDUCATION, "updown_joint_study", "micro_party_lesson", "themed_party_day"):
        if SESSION_KINDS[kind] in theme:
            return kind
    return "theme_joint_study"


def activity_session_fields(kind: str, payload: dict, registered: dict | None) -> dict:
    """What a 活动联办 activity's ``JointActivity.Published`` / ``.Rescheduled`` says of the
    session units here may join (the time aside): published, its title, the kind its
    theme names (``activity_kind``), the organising unit's name; rescheduled, what was
    registered stays (``registered``: the external session as recorded) - one handled
    before its Published (two workers) is refused, so it is retried."""
    if kind == "Rescheduled":
        if registered is None:
            raise RuleViolation("活动「%s」尚未登记" % payload["activity_id"])
        return {k: registered[k] for k in ("title", "kind", "organiser", "tags")}
    return {"title": payload["title"], "kind": activity_kind(payload.get("theme")),
            "organiser": payload.get("unit_name"), "tags": normalise_tags(None)}


def attendance_route(this_node: str, attendance_owner: str, shared_here: bool, caused_here: bool) -> str | None:
    """How an exchange attendance record (``Attendance.Recorded`` / ``.Corrected``) is taken
    here: ``"report"`` - another node's attendance at a session this node shared
    (``shared_here``), reported on the session; ``"follow"`` - this node's attendance at an
    activity, its units' participations kept in line with it; None - nothing to do: another
    node's attendance elsewhere, this node's own units at its own shared session (they
    attend as its audience), or the exchange summing up participations recorded here
    (``caused_here``: the record was caused by an event of this node's log)."""
    if attendance_owner != this_node:
        return "report" if shared_here else None
    if shared_here or caused_here:
        return None
    return "follow"


def attended_session(activity_id: str, registered: dict | None, today: date) -> dict | None:
    """The session an attendance this node follows counts for (``registered``: the
    external session as recorded): None while its day has not come (nothing to count
    yet); an attendance handled before the activity's Published is refused, to be retried."""
    if registered is None:
        raise RuleViolation("活动「%s」尚未登记" % activity_id)
    return None if parse_date(registered["local_date"]) > today else registered


def _nodes_attendance(units: list[dict]) -> list[dict]:
    return [{"unit_id": u["unit_id"], "unit_name": u.get("unit_name"), "attendees": int(u["attendees"])}
            for u in units]


def share_session_with_nodes(session: "StudySession", title: str, nodes: list[str],
                             this_node: str) -> None:
    """A session organised for other nodes: joinable, and never "shared" with this node."""
    nodes = sorted(set(nodes))
    if not nodes:
        return
    if this_node in nodes:
        raise RuleViolation("活动不能共享给本节点自己", {"share_with_nodes": ["包含本节点"]})
    if not session.joinable:
        raise RuleViolation("共享给其他节点的活动必须允许报名参加", {"joinable": ["须为是"]})
    if getattr(session, "shared_nodes", None):
        raise RuleViolation("活动已共享给其他节点", {"share_with_nodes": ["已共享"]})
    session.trigger(StudySession.SharedWithNodes, session_id=session.id,
                    organiser_unit_id=session.organiser_unit_id, kind=session.kind,
                    title=title, scheduled_at=session.scheduled_at,
                    local_date=session.local_date, nodes=nodes, slug=shared_slug(session.id),
                    theme=SESSION_KINDS[session.kind])


def report_node_attendance(session: "StudySession", node: str, units: list[dict],
                           source_version: int) -> bool:
    """Record another node's attendance at a shared session (version ``source_version``
    of its attendance record); False if it says nothing new, or is older than what is
    recorded (the record's events are handled by concurrent workers)."""
    units = _nodes_attendance(units)
    seen_version, seen_units = (getattr(session, "node_attendance", None) or {}).get(node, (0, None))
    if source_version <= seen_version or seen_units == units:
        return False
    session.trigger(StudySession.NodeAttendanceReported, session_id=session.id,
                    organiser_unit_id=session.organiser_unit_id, node=node, units=units,
                    attendees=sum(u["attendees"] for u in units), source_version=source_version)
    return True


class AttendanceFollowed(Aggregate):
    """How far this node's education service has followed one of this node's exchange
    attendance records (``<node>/attendance-...``): the participations it keeps in line
    with it are only ever moved forward, whatever order the record's events are
    handled in."""

    class Followed(Aggregate.Event):
        """The attendance record's units as of ``source_version``, applied to the units'
        participations."""

        attendance_id: str
        activity_id: str
        units: list
        source_version: int

        def apply(self, a):
            a.source_version = self.source_version

    @classmethod
    def blank(cls, attendance_id: str) -> "AttendanceFollowed":
        a = cls(attendance_id)
        a.source_version = 0
        return a

    def follow(self, activity_id: str, units: list[dict], source_version: int) -> bool:
        if source_version <= self.source_version:
            return False
        self.trigger(self.Followed, attendance_id=self.id, activity_id=activity_id,
                     units=_nodes_attendance(units), source_version=source_version)
        return True


def sync_participation(p: "SessionParticipation", attended: bool, headcount: int, local_date: str,
                       today: date) -> bool:
    """Bring a unit's participation in line with its node's recorded attendance (活动联办:
    one entry, in the exchange, is enough): attend, correct or withdraw. False: as is."""
    if not p.attended:
        if not attended:
            return False
        p.attend(headcount, local_date, today)
        return True
    if attended and getattr(p, "headcount", None) == headcount:
        return False
    p.trigger(SessionParticipation.Corrected, participation_id=p.id, session_key=p.session_key,
              unit_id=p.unit_id, kind=p.kind, attended=attended,
              headcount=headcount if attended else 0, local_date=local_date,
              period=local_date[:7])
    return True


# -- 我为清廉机关建设献一策 (issue 10 #21) ------------------------------------------------------
from shared.aggregate import Text  # noqa: E402 - the practices' text fields (below only)

SUGGESTION_STATUSES = Choices("建议办理状态", {
    "submitted": "待受理", "accepted": "已受理", "in_progress": "办理中", "answered": "已答复"})
SUGGESTION_OUTCOMES = Choices("采纳情况", {
    "adopted": "采纳", "partly_adopted": "部分采纳", "not_adopted": "未采纳"})
ADOPTED_OUTCOMES = ("adopted", "partly_adopted")  # what counts as 采纳 in the figures


def adoption_rate(adopted: int, answered: int) -> float | None:
    """Adopted (in full or in part) among the answered suggestions; None when none answered."""
    return round(adopted / answered, 4) if answered else None


UNCHECKED = object()  # a fact a direct caller (an import, a test) did not look up


class Suggestion(Aggregate):
    """一条「我为清廉机关建设献一策」建议: a member's suggestion to their unit, then
    受理 (accepted for handling, by whom), 办理 (progress notes) and 答复 (the reply, with
    whether it was 采纳). The proposer is a person: the events stay on the node."""

    class Submitted(Aggregate.Event):
        """A member's suggestion for building a clean organisation (献一策)."""
        private = True
        suggestion_id: str
        unit_id: str
        proposer_id: str                    # the member (units service person id)
        title: Text(200)
        content: Text(5000)
        submitted_on: IsoDate
        year: Annotated[int, {"minimum": 2000, "maximum": 2100}]

        def apply(self, s):
            s.status = "submitted"
            s.unit_id = self.unit_id
            s.proposer_id = self.proposer_id

    class Accepted(Aggregate.Event):
        """The suggestion was accepted for handling (受理), with who handles it."""
        private = True
        suggestion_id: str
        unit_id: str
        handler: Text(100)                  # 承办部门 / 承办人 as written
        accepted_on: IsoDate
        by: str

        def apply(self, s):
            s.status = "accepted"

    class Progressed(Aggregate.Event):
        """A note on how the suggestion is being handled (办理)."""
        private = True
        suggestion_id: str
        unit_id: str
        note: Text(2000)
        on: IsoDate
        by: str

        def apply(self, s):
            s.status = "in_progress"

    class Answered(Aggregate.Event):
        """The reply to the proposer (答复) and whether the suggestion was adopted (采纳)."""
        private = True
        suggestion_id: str
        unit_id: str
        reply: Text(2000)
        outcome: OneOf(SUGGESTION_OUTCOMES)
        answered_on: IsoDate
        by: str

        def apply(self, s):
            s.status = "answered"
            s.outcome = self.outcome

    @classmethod
    def submit(cls, suggestion_id, unit_id, proposer_id, title, content, on: date, *,
               proposer_unit=UNCHECKED, taken: bool = False):
        """``proposer_unit``: the proposer's unit in the member register (None: not a
        member known here) - a member suggests for their own unit; ``taken``: the id is in use.
        (Left out: a direct caller that checked the proposer itself.)"""
        if proposer_unit is None:
            raise NotFound("没有这名党员干部", {"proposer_id": ["没有这个人"]})
        if proposer_unit is not UNCHECKED and proposer_unit != unit_id:
            raise BadInput("提建议的人不是该单位的党员干部", {"proposer_id": ["不在该单位"]})
        if taken:
            raise Conflict("建议「%s」已存在" % suggestion_id, {"suggestion_id": ["已被占用"]})
        s = cls(suggestion_id)
        s.trigger(cls.Submitted, suggestion_id=suggestion_id, unit_id=unit_id,
                  proposer_id=proposer_id, title=title, content=content,
                  submitted_on=on.isoformat(), year=on.year)
        return s

    def _require(self, allowed: tuple, doing: str):
        if self.status not in allowed:
            raise RuleViolation("建议当前为「%s」，不能%s" % (SUGGESTION_STATUSES.label(self.status), doing),
                                {"suggestion_id": ["当前为%s" % SUGGESTION_STATUSES.label(self.status)]})

    def accept(self, handler: str, on: date, by: str):
        self._require(("submitted",), "受理")
        self.trigger(self.Accepted, suggestion_id=self.id, unit_id=self.unit_id, handler=handler,
                     accepted_on=on.isoformat(), by=by)

    def progress(self, note: str, on: date, by: str):
        self._require(("accepted", "in_progress"), "记录办理情况（须先受理）")
        self.trigger(self.Progressed, suggestion_id=self.id, unit_id=self.unit_id, note=note,
                     on=on.isoformat(), by=by)

    def answer(self, reply: str, outcome: str, on: date, by: str):
        self._require(("accepted", "in_progress"), "答复（须先受理）")
        self.trigger(self.Answered, suggestion_id=self.id, unit_id=self.unit_id, reply=reply,
                     outcome=outcome, answered_on=on.isoformat(), by=by)


# -- 典型案例通报 (issue 10 #27) ------------------------------------------------------------------
def bulletin_errors(unit_ids: list[str], issued_on: date, due_on: date | None) -> dict:
    """What stops a 典型案例通报 from going out (field -> messages): nobody to send it to,
    a study deadline before the day it is issued."""
    errors = {}
    if not unit_ids:
        errors["scope_unit_id"] = ["该单位及其下级没有可接收通报的单位"]
    if due_on is not None and due_on < issued_on:
        errors["due_on"] = ["学习期限不能早于通报日期"]
    return errors


def study_state(studied_on: str | None, due_on: str | None, today: date) -> str:
    """A recipient unit's state: studied, overdue (past the study deadline), pending."""
    if studied_on:
        return "studied"
    if due_on and parse_date(due_on) < today:
        return "overdue"
    return "pending"


STUDY_STATES = Choices("学习状态", {"studied": "已学习", "overdue": "逾期未学", "pending": "待学习"})


class CaseBulletin(Aggregate):
    """典型案例通报: a typical case pushed to every unit of a subtree, each of which owes a
    receipt that it has studied it (``CaseStudyReceipt``) - the 廉洁通知 pattern, for cases."""

    class Issued(Aggregate.Event):
        """A typical case was circulated (通报) to every unit of a subtree for study."""
        bulletin_id: str
        issuer_unit_id: str
        scope_unit_id: str
        title: Text(200)
        summary: Text(5000)                  # 案情
        requirements: Text(2000)             # 学习要求 / 举一反三
        unit_ids: CaseRefs                   # the recipients: the subtree's units when issued
        issued_on: IsoDate
        due_on: IsoDate | None = None        # 学习期限
        case_ref: str | None = None          # a case of 案例联编 it circulates (SharedCase id)

        def apply(self, b):
            b.recipients = list(self.unit_ids)
            b.issued_on = self.issued_on
            b.due_on = self.due_on

    @classmethod
    def issue(cls, bulletin_id, issuer_unit_id, scope_unit_id, title, summary, requirements,
              unit_ids, issued_on: date, due_on: date | None, case_ref: str | None, *,
              issuer_path: str | None = None, scope_path: str | None = None,
              case: dict | None = None, taken: bool = False):
        """``unit_ids``: the active units of the scope's subtree (the issuer is left out);
        ``issuer_path``, ``scope_path``: their places in the tree - the scope is the issuer
        or below it; ``case``: the case ``case_ref`` names, as on offer (None: not on
        offer), whose title and summary fill in what was left blank; ``taken``: the id is
        in use."""
        if issuer_path is not None and not (scope_path or "").startswith(issuer_path):
            raise BadInput("通报范围须是通报单位本身或其下级单位", {"scope_unit_id": ["不在通报单位之下"]})
        if case_ref:
            if case is None:
                raise NotFound("案例库中没有这个案例", {"case_ref": ["没有这个案例"]})
            title, summary = title or case["title"], summary or case["summary"] or case["title"]
        if taken:
            raise Conflict("通报「%s」已存在" % bulletin_id, {"bulletin_id": ["已被占用"]})
        unit_ids = [u for u in unit_ids if u != issuer_unit_id]
        errors = bulletin_errors(unit_ids, issued_on, due_on)
        if errors:
            raise RuleViolation("典型案例通报未能发出：%s" % "；".join(v[0] for v in errors.values()), errors)
        b = cls(bulletin_id)
        optional = {k: v for k, v in (("due_on", due_on and due_on.isoformat()), ("case_ref", case_ref)) if v}
        b.trigger(cls.Issued, bulletin_id=bulletin_id, issuer_unit_id=issuer_unit_id,
                  scope_unit_id=scope_unit_id, title=title, summary=summary, requirements=requirements,
                  unit_ids=sorted(set(unit_ids)), issued_on=issued_on.isoformat(), **optional)
        return b


class CaseStudyReceipt(Aggregate):
    """A recipient unit's receipt (回执) that it has studied a typical case: when, how many
    took part, what it drew from it for its own posts (举一反三). One per case and unit."""

    class Studied(Aggregate.Event):
        """A unit studied a circulated typical case (its receipt)."""
        bulletin_id: str
        unit_id: str
        studied_on: IsoDate
        headcount: Count
        note: Text(2000)                     # 学习情况 / 举一反三
        by: str

        def apply(self, r):
            r.studied_on = self.studied_on

    @staticmethod
    def receipt_id(bulletin_id: str, unit_id: str) -> str:
        return "%s/%s" % (bulletin_id, unit_id)

    @classmethod
    def record(cls, bulletin: "CaseBulletin", unit_id: str, studied_on: date, today: date,
               headcount: int, note: str, by: str, *, taken: bool = False):
        """``taken``: the unit's receipt of the bulletin is recorded already."""
        if taken:
            raise Conflict("该单位已登记学习这份通报", {"unit_id": ["已登记学习"]})
        errors = {}
        if unit_id not in bulletin.recipients:
            errors["unit_id"] = ["不是这份通报的接收单位"]
        if studied_on > today:
            errors["studied_on"] = ["不能晚于今天"]
        elif studied_on < parse_date(bulletin.issued_on):
            errors["studied_on"] = ["不能早于通报日期"]
        if headcount < 1:
            errors["headcount"] = ["至少 1 人"]
        if errors:
            raise RuleViolation("学习情况未能登记：%s" % "；".join(v[0] for v in errors.values()), errors)
        r = cls(cls.receipt_id(bulletin.id, unit_id))
        r.trigger(cls.Studied, bulletin_id=bulletin.id, unit_id=unit_id, studied_on=studied_on.isoformat(),
                  headcount=headcount, note=note, by=by)
        return r
