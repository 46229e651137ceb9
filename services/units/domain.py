"""单位与责任体系 - units and the responsibility system. Pure domain code.

Aggregates (each its own stream):
* ``Unit`` 机关单位 / 科室 / 基层站所: a node of the unit tree with kind, level, flags.
* ``Person`` 人员: someone whose role matters here (党组织书记, 纪检委员, cadres);
  promotions (新提拔干部) are events the education service reacts to. People are
  private: their events never leave the node.
* ``ResponsibilityDocument``: 任务清单 / 责任清单 / 考核细则, versioned by revision.
* ``ResponsibilityLetter`` 责任书: issued for a period to a unit, then signed.
* ``MicroPowerList`` 微权力清单: one post's duties, power boundary and procedure steps,
  drafted, then published for public supervision.

Every rule is here. Rules about the tree (the parent is active, no move under oneself,
no deactivation with active units below, a letter's target below its issuer) and the
uniqueness of an id need facts a read model or the log holds: the methods take those facts
as arguments (the parent's row, paths, the active units below, ``taken``) and the service
layer reads them through its read port (``uow.units``, ``queries.UnitsReadPort``) - it
loads, calls in here to decide, saves.
"""
from __future__ import annotations

from difflib import SequenceMatcher
from typing import Annotated

from shared.aggregate import Aggregate, IdStr, DateStr, NonEmptyStr, OneOf
from shared.errors import Conflict, RuleViolation
from shared.labels import Choices

UNIT_KINDS = Choices("单位类型", {
    "party_committee_dept": "党委部门",
    "government_dept": "政府部门",
    "subdistrict": "街道",
    "window_unit": "窗口单位",
    "law_enforcement": "执法部门",
    "grassroots_station": "基层站所",
    "section": "科室",
    "secondary_unit": "二级单位",
    "city_authority": "市级主管部门",      # the city itself
    "district_authority": "区直机关工委",  # / 牵头单位
})
UNIT_LEVELS = Choices("单位层级", {"city": "市级", "district": "区级", "unit": "机关单位",
                                  "section": "科室、站所"})
PERSON_ROLES = Choices("人员职务", {
    "party_secretary": "党组织书记",
    "discipline_member": "纪检委员",
    "unit_head": "单位负责人",
    "cadre": "干部",
    "member": "党员",
})
DOCUMENT_KINDS = Choices("清单类型", {"task_list": "任务清单", "responsibility_list": "责任清单",
                                     "assessment_criteria": "考评细则"})
# what a comparison of two versions of a document says about each item
ITEM_CHANGES = Choices("条目改动", {"added": "新增", "removed": "删除", "changed": "修改",
                                   "same": "未变"})
SIMILAR_TEXT = 0.6  # how alike two items' texts must be to count as one item reworded
# the fields of an item of a 任务清单 / 责任清单 / 考评细则 (ordered as shown)
DOCUMENT_ITEM_FIELDS = Choices("清单条目字段", {"text": "内容", "owner_post": "责任岗位",
                                             "score": "分值"})
# units whose micro-power list must be published (the report: 窗口和执法部门)
MICRO_POWER_KINDS = ("window_unit", "law_enforcement")


# payload field types several events share
Items = Annotated[list, {
    "minItems": 1,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "owner_post": {"type": ["string", "null"]},
            "score": {"type": ["number", "null"]},
        },
    },
}]
Content = Annotated[dict, {
    "additionalProperties": False,
    "required": ["duties", "power_boundary", "steps"],
    "properties": {
        "duties": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
        },
        "power_boundary": {"type": "string", "minLength": 1},
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "responsible_post"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "responsible_post": {"type": "string", "minLength": 1},
                    "time_limit": {"type": ["string", "null"]},
                },
            },
        },
        "accountability": {"type": ["string", "null"]},
    },
}]


class Unit(Aggregate):
    class Registered(Aggregate.Event):
        """A unit joined the tree (机关单位 / 科室 / 基层站所)."""
        unit_id: IdStr
        name: NonEmptyStr
        kind: OneOf(UNIT_KINDS)
        level: OneOf(UNIT_LEVELS)
        parent_id: str | None

        def apply(self, unit):
            unit.name = self.name
            unit.kind = self.kind
            unit.level = self.level
            unit.parent_id = self.parent_id
            unit.demonstration_site = False
            unit.pilot_flags = []
            unit.active = True

    class Renamed(Aggregate.Event):
        """A unit's name changed."""
        unit_id: IdStr
        name: NonEmptyStr

        def apply(self, unit):
            unit.name = self.name

    class Moved(Aggregate.Event):
        """A unit (with its subtree) moved under another parent."""
        unit_id: IdStr
        parent_id: IdStr
        previous_parent_id: str | None

        def apply(self, unit):
            unit.parent_id = self.parent_id

    class DemonstrationSiteSet(Aggregate.Event):
        """示范点 flag switched on or off."""
        unit_id: IdStr
        demonstration_site: bool


        def apply(self, unit):
            unit.demonstration_site = self.demonstration_site

    class PilotFlagsSet(Aggregate.Event):
        """试点 flags, e.g. 清廉便民服务."""
        unit_id: IdStr
        pilot_flags: Annotated[list, {"items": {"type": "string", "minLength": 1}}]


        def apply(self, unit):
            unit.pilot_flags = list(self.pilot_flags)

    class Deactivated(Aggregate.Event):
        """A unit left the tree (kept for history)."""
        unit_id: IdStr
        reason: NonEmptyStr

        def apply(self, unit):
            unit.active = False

    @classmethod
    def register(cls, unit_id: str, name: str, kind: str, level: str, parent_id: str | None, *,
                 parent: dict | None = None, by_node_admin: bool = True, taken: bool = False):
        """The facts: ``parent`` the parent's row (its ``active``), ``by_node_admin`` whether
        a node-admin asks (only one registers a root), ``taken`` whether the id is in use.
        (The defaults are a direct import's, which builds the log itself.)"""
        if parent_id is None and not by_node_admin:
            raise RuleViolation("只有节点管理员可以登记顶级单位")
        if parent is not None and not parent["active"]:
            raise RuleViolation("上级单位「%s」已停用" % parent_id)
        if taken:
            raise Conflict("单位「%s」已存在" % unit_id, {"unit_id": ["已被占用"]})
        if parent_id is None and level not in ("city", "district"):
            raise RuleViolation("只有市或区一级的单位才能作为顶级单位",
                                {"parent_id": ["层级为「%s」的单位必须填写上级单位" % UNIT_LEVELS.label(level)]})
        unit = cls(unit_id)
        unit.trigger(cls.Registered, unit_id=unit_id, name=name, kind=kind, level=level,
                     parent_id=parent_id)
        return unit

    def _require_active(self):
        if not self.active:
            raise RuleViolation("单位「%s」已停用" % self.id)

    def rename(self, name: str):
        self._require_active()
        if name == self.name:
            return
        self.trigger(self.Renamed, unit_id=self.id, name=name)

    def move(self, parent_id: str, *, parent_path: str | None = None, own_path: str | None = None):
        """No cycle: the new parent is neither the unit itself nor below it (``parent_path``,
        ``own_path``: the tree's materialised paths, when the caller has them)."""
        if parent_path is not None and own_path is not None and parent_path.startswith(own_path):
            raise RuleViolation("不能把单位移到它自己的下级单位之下",
                                {"parent_id": ["位于被移动的单位之下"]})
        self._require_active()
        if parent_id == self.id:
            raise RuleViolation("单位不能把自己设为上级单位", {"parent_id": ["就是该单位本身"]})
        if parent_id == self.parent_id:
            return
        self.trigger(self.Moved, unit_id=self.id, parent_id=parent_id, previous_parent_id=self.parent_id)

    def set_demonstration_site(self, on: bool):
        self._require_active()
        if on != self.demonstration_site:
            self.trigger(self.DemonstrationSiteSet, unit_id=self.id, demonstration_site=on)

    def set_pilot_flags(self, flags: list[str]):
        self._require_active()
        flags = sorted(set(flags))
        if flags != self.pilot_flags:
            self.trigger(self.PilotFlagsSet, unit_id=self.id, pilot_flags=flags)

    def deactivate(self, reason: str, active_below: int = 0):
        """``active_below``: how many active units the subtree holds under this one."""
        if active_below:
            raise RuleViolation("该单位下还有 %d 个在用的下级单位，请先移走或停用它们" % active_below)
        self._require_active()
        self.trigger(self.Deactivated, unit_id=self.id, reason=reason)


class Person(Aggregate):
    """Someone in a unit. Private to the node: names never leave it."""

    class Registered(Aggregate.Event):
        """Someone whose role matters here. PRIVATE: never leaves the node."""
        person_id: IdStr
        name: NonEmptyStr
        unit_id: IdStr
        post: NonEmptyStr
        young_cadre: bool

        private = True

        def apply(self, p):
            p.name = self.name
            p.unit_id = self.unit_id
            p.roles = []
            p.young_cadre = self.young_cadre
            p.post = self.post

    class RoleAssigned(Aggregate.Event):
        """A role (党组织书记, 纪检委员...) given; part_time = 身兼数职. PRIVATE."""
        person_id: IdStr
        unit_id: IdStr
        role: OneOf(PERSON_ROLES)
        part_time: bool

        private = True

        def apply(self, p):
            p.roles = sorted(set(p.roles) | {self.role})

    class RoleRemoved(Aggregate.Event):
        """A role taken away. PRIVATE."""
        person_id: IdStr
        unit_id: IdStr
        role: OneOf(PERSON_ROLES)

        private = True

        def apply(self, p):
            p.roles = [r for r in p.roles if r != self.role]

    class Promoted(Aggregate.Event):
        """新提拔干部: the education service schedules a 廉政谈话 from this."""
        person_id: IdStr
        unit_id: IdStr
        previous_post: NonEmptyStr
        new_post: NonEmptyStr
        effective_on: DateStr


        private = True

        def apply(self, p):
            p.post = self.new_post
            p.unit_id = self.unit_id

    @classmethod
    def register(cls, person_id, name, unit_id, post, young_cadre=False, *, taken: bool = False):
        if taken:
            raise Conflict("人员「%s」已存在" % person_id, {"person_id": ["已被占用"]})
        p = cls(person_id)
        p.trigger(cls.Registered, person_id=person_id, name=name, unit_id=unit_id, post=post,
                  young_cadre=young_cadre)
        return p

    def assign_role(self, role: str, part_time: bool = False):
        if role in self.roles:
            raise RuleViolation("「%s」已担任「%s」" % (self.id, PERSON_ROLES.label(role)))
        self.trigger(self.RoleAssigned, person_id=self.id, unit_id=self.unit_id, role=role,
                     part_time=part_time)

    def remove_role(self, role: str):
        if role not in self.roles:
            raise RuleViolation("「%s」未担任「%s」" % (self.id, PERSON_ROLES.label(role)))
        self.trigger(self.RoleRemoved, person_id=self.id, unit_id=self.unit_id, role=role)

    def promote(self, new_post: str, unit_id: str, effective_on: str):
        if new_post == self.post and unit_id == self.unit_id:
            raise RuleViolation("新岗位与现任岗位相同", {"new_post": ["没有变化"]})
        self.trigger(self.Promoted, person_id=self.id, unit_id=unit_id, previous_post=self.post,
                     new_post=new_post, effective_on=effective_on)


class ResponsibilityDocument(Aggregate):
    """任务清单 / 责任清单 / 考核细则 of a unit; each revision is a new version."""

    class Drafted(Aggregate.Event):
        """任务清单 / 责任清单 / 考核细则, first revision."""
        doc_id: IdStr
        unit_id: IdStr
        kind: OneOf(DOCUMENT_KINDS)
        title: NonEmptyStr
        items: Items
        revision: Annotated[int, {"const": 1}]

        def apply(self, d):
            d.unit_id = self.unit_id
            d.kind = self.kind
            d.title = self.title
            d.items = self.items
            d.revision = 1

    class Revised(Aggregate.Event):
        """A new revision of a responsibility document."""
        doc_id: IdStr
        unit_id: IdStr
        title: NonEmptyStr
        items: Items
        revision: Annotated[int, {"minimum": 2}]
        note: NonEmptyStr

        def apply(self, d):
            d.title = self.title
            d.items = self.items
            d.revision = self.revision

    @classmethod
    def draft(cls, doc_id, unit_id, kind, title, items, *, taken: bool = False):
        if taken:
            raise Conflict("文件「%s」已存在" % doc_id, {"doc_id": ["已被占用"]})
        d = cls(doc_id)
        d.trigger(cls.Drafted, doc_id=doc_id, unit_id=unit_id, kind=kind, title=title,
                  items=items, revision=1)
        return d

    def revise(self, title: str, items: list[dict], note: str):
        if title == self.title and items == self.items:
            raise RuleViolation("修订内容与当前版本相同，没有任何改动")
        self.trigger(self.Revised, doc_id=self.id, unit_id=self.unit_id, title=title,
                     items=items, revision=self.revision + 1, note=note)


class ResponsibilityLetter(Aggregate):
    """责任书 for one period, from an issuing unit to a unit below it."""

    class Issued(Aggregate.Event):
        """责任书 issued for a period to a unit below the issuer."""
        letter_id: NonEmptyStr
        period: NonEmptyStr
        issuer_unit_id: IdStr
        target_unit_id: IdStr
        signatory_role: OneOf(PERSON_ROLES)
        content: NonEmptyStr

        def apply(self, letter):
            letter.period = self.period
            letter.issuer_unit_id = self.issuer_unit_id
            letter.target_unit_id = self.target_unit_id
            letter.signatory_role = self.signatory_role
            letter.signed = False
            letter.revoked = False

    class Signed(Aggregate.Event):
        """责任书 signed."""
        letter_id: NonEmptyStr
        period: NonEmptyStr
        target_unit_id: IdStr
        signed_on: DateStr

        def apply(self, letter):
            letter.signed = True

    class Revoked(Aggregate.Event):
        """责任书 revoked."""
        letter_id: NonEmptyStr
        period: NonEmptyStr
        target_unit_id: IdStr
        reason: NonEmptyStr

        def apply(self, letter):
            letter.revoked = True

    @classmethod
    def letter_id(cls, period: str, target_unit_id: str) -> str:
        # one letter per unit and period: the id says so, the unique stream enforces it
        return "%s/%s" % (period, target_unit_id)

    @classmethod
    def issue(cls, period, issuer_unit_id, target_unit_id, signatory_role, content, *,
              issuer_path: str | None = None, target_path: str | None = None, taken: bool = False):
        """The target is below the issuer (never the issuer itself; ``issuer_path`` and
        ``target_path``: the tree's paths, when the caller has them); one letter per unit
        and period (``taken``: it exists)."""
        below = target_unit_id != issuer_unit_id and (
            issuer_path is None or (target_path or "").startswith(issuer_path))
        if not below:
            raise RuleViolation("责任书的对象单位必须是下达单位的下级单位",
                                {"target_unit_id": ["不是「%s」的下级单位" % issuer_unit_id]})
        if taken:
            raise Conflict("单位「%s」在 %s 的责任书已存在" % (target_unit_id, period))
        letter = cls(cls.letter_id(period, target_unit_id))
        letter.trigger(cls.Issued, letter_id=letter.id, period=period,
                       issuer_unit_id=issuer_unit_id, target_unit_id=target_unit_id,
                       signatory_role=signatory_role, content=content)
        return letter

    def sign(self, signed_on: str, signatory_role: str):
        if self.revoked:
            raise RuleViolation("该责任书已撤销")
        if self.signed:
            raise RuleViolation("该责任书已签署")
        if signatory_role != self.signatory_role:
            raise RuleViolation("该责任书须由「%s」签署" % PERSON_ROLES.label(self.signatory_role),
                                {"signatory_role": ["必须是「%s」" % PERSON_ROLES.label(self.signatory_role)]})
        self.trigger(self.Signed, letter_id=self.id, period=self.period,
                     target_unit_id=self.target_unit_id, signed_on=signed_on)

    def revoke(self, reason: str):
        if self.revoked:
            raise RuleViolation("该责任书已经撤销")
        self.trigger(self.Revoked, letter_id=self.id, period=self.period,
                     target_unit_id=self.target_unit_id, reason=reason)


class MicroPowerList(Aggregate):
    """微权力清单 for one post of a window or law-enforcement unit."""

    class Drafted(Aggregate.Event):
        """微权力清单 of a post, first draft."""
        list_id: NonEmptyStr
        unit_id: IdStr
        post: NonEmptyStr
        content: Content

        def apply(self, m):
            m.unit_id = self.unit_id
            m.post = self.post
            m.draft = self.content
            m.published = None
            m.published_version = 0

    class DraftEdited(Aggregate.Event):
        """The draft changed (the published version does not)."""
        list_id: NonEmptyStr
        unit_id: IdStr
        content: Content

        def apply(self, m):
            m.draft = self.content

    class Published(Aggregate.Event):
        """微权力清单 published for public supervision."""
        list_id: NonEmptyStr
        unit_id: IdStr
        post: NonEmptyStr
        content: Content
        published_version: Annotated[int, {"minimum": 1}]
        published_on: DateStr

        def apply(self, m):
            m.published = self.content
            m.published_version = self.published_version

    @classmethod
    def list_id(cls, unit_id: str, post: str) -> str:
        return "%s/%s" % (unit_id, post)

    @classmethod
    def draft_for(cls, unit_id: str, post: str, content: dict, *, taken: bool = False):
        if taken:  # one list per post: the id says so
            raise Conflict("岗位「%s」的小微权力清单已存在，请直接修改" % post)
        _check_steps(content)
        m = cls(cls.list_id(unit_id, post))
        m.trigger(cls.Drafted, list_id=m.id, unit_id=unit_id, post=post, content=content)
        return m

    def edit(self, content: dict):
        _check_steps(content)
        if content == self.draft:
            raise RuleViolation("草稿没有任何改动")
        self.trigger(self.DraftEdited, list_id=self.id, unit_id=self.unit_id, content=content)

    def publish(self, published_on: str):
        if self.draft == self.published:
            raise RuleViolation("没有可发布的新内容：草稿与已发布版本相同")
        self.trigger(self.Published, list_id=self.id, unit_id=self.unit_id, post=self.post,
                     content=self.draft, published_version=self.published_version + 1,
                     published_on=published_on)


def _check_steps(content: dict) -> None:
    posts = {s["responsible_post"] for s in content.get("steps", [])}
    if content.get("steps") and not all(posts):
        raise RuleViolation("每个流程环节都必须指定责任岗位")


# -- comparing two versions of a document ---------------------------------------------------
def _item_key(item: dict) -> tuple:
    return tuple(item.get(f) for f in DOCUMENT_ITEM_FIELDS)


def _similar(old: dict, new: dict) -> bool:
    """The same item reworded or rescored: the same text, or texts mostly alike."""
    a, b = old.get("text") or "", new.get("text") or ""
    return a == b or SequenceMatcher(a=a, b=b, autojunk=False).ratio() >= SIMILAR_TEXT


def diff_items(old: list[dict], new: list[dict]) -> list[dict]:
    """Two versions' items side by side, in order: each row ``{"change", "old", "new",
    "fields"}`` - ``same`` (identical), ``changed`` (the same item with some field
    different - ``fields`` names those), ``added`` (only in ``new``) or ``removed`` (only
    in ``old``). Items have no ids: identical items are aligned first (``difflib``);
    within a stretch that differs, an old item is paired, in order, with the next new one
    whose text is the same or mostly alike (``SIMILAR_TEXT``); what finds no partner was
    removed or added."""
    rows: list[dict] = []
    matcher = SequenceMatcher(a=[_item_key(i) for i in old], b=[_item_key(i) for i in new],
                              autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            rows += [{"change": "same", "old": old[a], "new": new[b], "fields": []}
                     for a, b in zip(range(a0, a1), range(b0, b1))]
            continue
        b = b0
        for a in range(a0, a1):
            partner = next((k for k in range(b, b1) if _similar(old[a], new[k])), None)
            if partner is None:
                rows.append({"change": "removed", "old": old[a], "new": None, "fields": []})
                continue
            rows += [{"change": "added", "old": None, "new": new[k], "fields": []}
                     for k in range(b, partner)]
            o, n = old[a], new[partner]
            rows.append({"change": "changed", "old": o, "new": n,
                         "fields": [f for f in DOCUMENT_ITEM_FIELDS if o.get(f) != n.get(f)]})
            b = partner + 1
        rows += [{"change": "added", "old": None, "new": new[k], "fields": []}
                 for k in range(b, b1)]
    return rows


def diff_summary(rows: list[dict]) -> dict:
    """How many items each kind of change touched (every ``ITEM_CHANGES`` code)."""
    return {c: sum(1 for r in rows if r["change"] == c) for c in ITEM_CHANGES}


# -- 责任书 coverage for the city (issue 10 item 6) -------------------------------------------------
def coverage_figures(cov: dict) -> dict:
    """The numbers of a tree's 责任书 coverage for one period (``projections.coverage``) as
    the city reads them: how many units should hold a signed letter, how many do, the
    share, and the same per unit kind. Counts only - no unit is named."""
    out = {"units_required": cov["total"], "letters_signed": cov["signed"],
           "letter_coverage": cov["coverage"]}
    for kind, k in sorted(cov["by_kind"].items()):
        out["required_%s" % kind] = k["total"]
        out["signed_%s" % kind] = k["signed"]
    return out


class LetterCoverage(Aggregate):
    """责任书 coverage of this node's tree for a period, recorded whenever it changes:
    the exchange service shares it up to the city (so the city reads coverage across
    districts without asking for a spreadsheet)."""

    class Published(Aggregate.Event):
        """The coverage of a tree for a period changed."""
        unit_id: str          # the tree's root
        period: str
        indicators: dict      # coverage_figures

        def apply(self, c):
            c.indicators = self.indicators

    @staticmethod
    def coverage_id(root_unit_id: str, period: str) -> str:
        return "%s/%s" % (period, root_unit_id)

    def publish(self, root_unit_id: str, period: str, indicators: dict) -> bool:
        if getattr(self, "indicators", None) == indicators:
            return False
        self.trigger(self.Published, unit_id=root_unit_id, period=period, indicators=indicators)
        return True


# -- 集中廉政承诺 (issue 10 #22) -----------------------------------------------------------------
PLEDGE_ROLES = ("party_secretary", "discipline_member")  # who pledges (labels: PERSON_ROLES)
WITNESS_KINDS = Choices("见证人类别", {"enterprise": "企业代表", "resident": "居民代表"})
Witnesses = Annotated[list, {"minItems": 2, "maxItems": 20, "items": {
    "type": "object", "required": ["kind", "name"], "additionalProperties": False,
    "properties": {"kind": {"enum": list(WITNESS_KINDS)}, "name": {"type": "string", "minLength": 1},
                   "organisation": {"type": ["string", "null"]}}}}]


def witness_errors(witnesses: list[dict]) -> list[str]:
    """A 集中廉政承诺 is made before enterprise AND resident representatives: the kinds
    missing (their labels), empty when both are there."""
    present = {w["kind"] for w in witnesses}
    return [WITNESS_KINDS.label(k) for k in WITNESS_KINDS if k not in present]


class IntegrityPledge(Aggregate):
    """集中廉政承诺: a party secretary's or 纪检委员's pledge for a year, with its text, made
    before enterprise and resident representatives. One per person and year (the id says
    so, the unique stream enforces it). Names people: the events stay on the node."""

    class Made(Aggregate.Event):
        """A party secretary or 纪检委员 made the year's integrity pledge before witnesses."""
        private = True
        pledge_id: NonEmptyStr
        unit_id: IdStr
        person_id: IdStr
        role: OneOf(PLEDGE_ROLES)
        year: Annotated[int, {"minimum": 2000, "maximum": 2100}]
        pledged_on: DateStr
        text: Annotated[str, {"minLength": 1, "maxLength": 5000}]
        witnesses: Witnesses
        occasion: str | None = None          # the 集中承诺 event it was part of

        def apply(self, p):
            p.unit_id = self.unit_id
            p.person_id = self.person_id

    @staticmethod
    def pledge_id(year: int, person_id: str) -> str:
        return "%d/%s" % (year, person_id)

    @classmethod
    def make(cls, person: dict, role: str, pledged_on, today, text: str, witnesses: list[dict],
             occasion: str | None, *, taken: bool = False):
        """``person``: the register's row (unit_id, roles, name); dates are ``date``s;
        ``taken``: the person's pledge of that year exists."""
        if taken:
            raise Conflict("%s已作出 %d 年度的廉政承诺" % (person.get("name"), pledged_on.year),
                           {"person_id": ["本年度已承诺"]})
        errors = {}
        if role not in (person.get("roles") or ()):
            errors["role"] = ["该人员不是%s" % PERSON_ROLES.label(role)]
        if pledged_on > today:
            errors["pledged_on"] = ["不能晚于今天"]
        missing = witness_errors(witnesses)
        if missing:
            errors["witnesses"] = ["须有%s见证" % "和".join(missing)]
        if errors:
            raise RuleViolation("集中廉政承诺未能登记：%s" % "；".join(v[0] for v in errors.values()), errors)
        p = cls(cls.pledge_id(pledged_on.year, person["person_id"]))
        p.trigger(cls.Made, pledge_id=p.id, unit_id=person["unit_id"], person_id=person["person_id"],
                  role=role, year=pledged_on.year, pledged_on=pledged_on.isoformat(), text=text,
                  witnesses=[{"kind": w["kind"], "name": w["name"],
                              "organisation": w.get("organisation")} for w in witnesses],
                  **({"occasion": occasion} if occasion else {}))
        return p


# -- 纪检委员 roster, 选优配强 (issue 10 #25) ---------------------------------------------------
# Who the 纪检委员 are is the people register's (Person.RoleAssigned with part_time = 身兼数职);
# this adds their training records. Owned by the units service: people and roles live here.
DISCIPLINE_DUTIES = Choices("纪检委员任职方式", {"part_time": "兼职", "full_time": "专职"})
TRAINING_MAX_HOURS = 200  # one record's hours: more than 0, at most this


def discipline_duty(part_time_roles) -> str:
    """兼职 or 专职 of a 纪检委员, from the register's part-time roles."""
    return "part_time" if "discipline_member" in (part_time_roles or ()) else "full_time"


def needs_discipline_member(unit: dict) -> bool:
    """Units whose party organisation should have a 纪检委员: every unit except 科室、站所
    level ones (a section's members belong to its unit's party organisation)."""
    return unit.get("level") != "section"


def training_errors(person: dict, trained_on, today, hours: float) -> dict:
    errors = {}
    if "discipline_member" not in (person.get("roles") or ()):
        errors["person_id"] = ["该人员不是纪检委员"]
    if trained_on > today:
        errors["trained_on"] = ["不能晚于今天"]
    if not 0 < hours <= TRAINING_MAX_HOURS:
        errors["hours"] = ["学时应大于 0 且不超过 %d" % TRAINING_MAX_HOURS]
    return errors


class DisciplineTraining(Aggregate):
    """选优配强: one training a 纪检委员 attended (course, date, hours). One per person, date
    and course (the id says so). Names people: the events stay on the node."""

    class Recorded(Aggregate.Event):
        """A 纪检委员's training (选优配强) was recorded: the course, its date and hours."""
        private = True
        training_id: NonEmptyStr
        person_id: IdStr
        unit_id: IdStr
        course: Annotated[str, {"minLength": 1, "maxLength": 200}]
        trained_on: DateStr
        hours: Annotated[float, {"exclusiveMinimum": 0, "maximum": TRAINING_MAX_HOURS}]
        organiser: str | None = None

        def apply(self, t):
            t.person_id = self.person_id
            t.unit_id = self.unit_id

    @staticmethod
    def training_id(person_id: str, trained_on: str, course: str) -> str:
        from hashlib import sha1
        return "%s/%s/%s" % (person_id, trained_on, sha1(course.strip().encode()).hexdigest()[:12])

    @classmethod
    def record(cls, person: dict, course: str, trained_on, today, hours: float, organiser: str | None, *,
               taken: bool = False):
        """``person``: the register's row (person_id, unit_id, roles, name); dates are ``date``s;
        ``taken``: the same course on the same day is recorded already."""
        if taken:
            raise Conflict("%s %s 的「%s」培训已登记" % (person.get("name"), trained_on.isoformat(), course),
                           {"course": ["同一天的同一课程已登记"]})
        errors = training_errors(person, trained_on, today, hours)
        if errors:
            raise RuleViolation("培训记录未能登记：%s" % "；".join(v[0] for v in errors.values()), errors)
        t = cls(cls.training_id(person["person_id"], trained_on.isoformat(), course))
        t.trigger(cls.Recorded, training_id=t.id, person_id=person["person_id"], unit_id=person["unit_id"],
                  course=course.strip(), trained_on=trained_on.isoformat(), hours=float(hours),
                  **({"organiser": organiser} if organiser else {}))
        return t


# -- 模范科室评选 (issue 10 #24) ----------------------------------------------------------------
# 以廉肃纪、以廉明德、以廉强责 互比互查 among sections, secondary units and windows, then the
# "讲政治、守纪律、负责任、有效率" selection. Kept by the units service: the nominees are units.
EXEMPLARY_CRITERIA = Choices("模范科室评选标准", {"politics": "讲政治", "discipline": "守纪律",
                                             "responsibility": "负责任", "efficiency": "有效率"})
EXEMPLARY_KINDS = ("section", "secondary_unit", "window_unit")  # who may be nominated (UNIT_KINDS labels)
EXEMPLARY_STATUSES = Choices("评选状态", {"open": "评选中", "closed": "已结束"})
EXEMPLARY_MAX_SCORE = 25  # each criterion is scored 0..this (four criteria: 100 in all)
Scores = Annotated[dict, {"required": list(EXEMPLARY_CRITERIA), "additionalProperties": False,
                          "properties": {c: {"type": "number", "minimum": 0, "maximum": EXEMPLARY_MAX_SCORE}
                                         for c in EXEMPLARY_CRITERIA}}]


def score_errors(scores: dict) -> dict:
    """Every criterion scored, each within 0..EXEMPLARY_MAX_SCORE; field -> messages."""
    errors = {}
    for c in EXEMPLARY_CRITERIA:
        v = scores.get(c)
        if v is None:
            errors[c] = ["请为「%s」打分" % EXEMPLARY_CRITERIA.label(c)]
        elif not 0 <= v <= EXEMPLARY_MAX_SCORE:
            errors[c] = ["「%s」应在 0 至 %d 分之间" % (EXEMPLARY_CRITERIA.label(c), EXEMPLARY_MAX_SCORE)]
    unknown = set(scores) - set(EXEMPLARY_CRITERIA)
    if unknown:
        errors["scores"] = ["没有这项标准"]
    return errors


def exemplary_ranking(nominees: list[str], scores: list[dict]) -> list[dict]:
    """Each nominee's average per criterion over the units that scored it, the total of the
    averages, ranked (highest first; equal totals share a rank; unscored last, no rank)."""
    rows = []
    for n in nominees:
        given = [s["scores"] for s in scores if s["nominee_unit_id"] == n]
        avg = {c: round(sum(g[c] for g in given) / len(given), 2) for c in EXEMPLARY_CRITERIA} if given else None
        rows.append({"unit_id": n, "scored_by": len(given), "averages": avg,
                     "total": round(sum(avg.values()), 2) if avg else None})
    rows.sort(key=lambda r: (r["total"] is None, -(r["total"] or 0), r["unit_id"]))
    rank, last = 0, object()
    for i, r in enumerate(rows, 1):
        if r["total"] is None:
            r["rank"] = None
            continue
        if r["total"] != last:
            rank, last = i, r["total"]
        r["rank"] = rank
    return rows


class ExemplaryRound(Aggregate):
    """模范科室评选: a unit's selection round for a year - nominations among its sections,
    secondary units and windows, their 互比互查 scores of each other on the four criteria, and
    the result. A closed round is final: nothing changes it."""

    class Opened(Aggregate.Event):
        """A 模范科室评选 round opened by a unit for a year."""
        round_id: IdStr
        unit_id: IdStr
        year: Annotated[int, {"minimum": 2000, "maximum": 2100}]
        title: Annotated[str, {"minLength": 1, "maxLength": 200}]
        exemplars: Annotated[int, {"minimum": 1, "maximum": 50}]   # how many are selected

        def apply(self, r):
            r.unit_id, r.year, r.title, r.exemplars = self.unit_id, self.year, self.title, self.exemplars
            r.status, r.nominees, r.scores = "open", [], []

    class Nominated(Aggregate.Event):
        """A section, secondary unit or window nominated in the round."""
        round_id: IdStr
        unit_id: IdStr
        nominee_unit_id: IdStr

        def apply(self, r):
            r.nominees = [*r.nominees, self.nominee_unit_id]

    class Scored(Aggregate.Event):
        """One nominee's 互比互查 scores of another on the four criteria."""
        round_id: IdStr
        unit_id: IdStr
        scorer_unit_id: IdStr
        nominee_unit_id: IdStr
        scores: Scores

        def apply(self, r):
            r.scores = [*r.scores, {"scorer_unit_id": self.scorer_unit_id,
                                    "nominee_unit_id": self.nominee_unit_id, "scores": self.scores}]

    class Closed(Aggregate.Event):
        """The round closed: its ranking and the selected exemplars (final)."""
        round_id: IdStr
        unit_id: IdStr
        ranking: list
        selected: list

        def apply(self, r):
            r.status = "closed"

    @staticmethod
    def round_id(unit_id: str, year: int) -> str:
        return ("exr-%d-%s" % (year, unit_id))[:100]

    @classmethod
    def open(cls, unit_id: str, year: int, title: str, exemplars: int, *, unit_name: str | None = None,
             taken: bool = False):
        """One round per unit and year (``taken``: that round exists)."""
        if taken:
            raise Conflict("%s %d 年度的模范科室评选已开启" % (unit_name or unit_id, year), {"year": ["本年度已有评选"]})
        r = cls(cls.round_id(unit_id, year))
        r.trigger(cls.Opened, round_id=r.id, unit_id=unit_id, year=year, title=title, exemplars=exemplars)
        return r

    def _require_open(self):
        if self.status != "open":
            raise RuleViolation("评选已结束，结果不能再改动", {"round_id": ["评选已结束"]})

    def nominate(self, nominee: dict, organiser_path: str | None):
        """``nominee``: the unit's row (``kind``, ``path``); ``organiser_path``: the organising
        unit's path in the tree - the nominee must be below it."""
        self._require_open()
        mine = nominee.get("path")
        in_scope = bool(organiser_path and mine and mine.startswith(organiser_path))
        errors = {}
        if not in_scope or nominee["unit_id"] == self.unit_id:
            errors["nominee_unit_id"] = ["须是本单位的下级单位"]
        elif nominee.get("kind") not in EXEMPLARY_KINDS:
            errors["nominee_unit_id"] = ["只能推荐内设科室、二级单位或窗口单位"]
        elif nominee["unit_id"] in self.nominees:
            errors["nominee_unit_id"] = ["已被推荐"]
        if errors:
            raise RuleViolation("未能推荐：%s" % errors["nominee_unit_id"][0], errors)
        self.trigger(self.Nominated, round_id=self.id, unit_id=self.unit_id, nominee_unit_id=nominee["unit_id"])

    def score(self, scorer_unit_id: str, nominee_unit_id: str, scores: dict):
        self._require_open()
        errors = {}
        if scorer_unit_id not in self.nominees:
            errors["scorer_unit_id"] = ["评分单位须是参评单位"]
        if nominee_unit_id not in self.nominees:
            errors["nominee_unit_id"] = ["被评单位须是参评单位"]
        elif nominee_unit_id == scorer_unit_id:
            errors["nominee_unit_id"] = ["不能给本单位打分"]
        elif any(s["scorer_unit_id"] == scorer_unit_id and s["nominee_unit_id"] == nominee_unit_id
                 for s in self.scores):
            errors["nominee_unit_id"] = ["已评过分"]
        errors.update(score_errors(scores))
        if errors:
            raise RuleViolation("评分未能登记：%s" % "；".join(v[0] for v in errors.values()), errors)
        self.trigger(self.Scored, round_id=self.id, unit_id=self.unit_id, scorer_unit_id=scorer_unit_id,
                     nominee_unit_id=nominee_unit_id,
                     scores={c: float(scores[c]) for c in EXEMPLARY_CRITERIA})

    def close(self):
        self._require_open()
        ranking = exemplary_ranking(self.nominees, self.scores)
        unscored = [r["unit_id"] for r in ranking if r["total"] is None]
        if not ranking or unscored:
            raise RuleViolation("尚有参评单位未被评分，不能结束评选" if ranking else "尚无参评单位，不能结束评选",
                                {"round_id": ["评分未完成"]})
        selected = [r["unit_id"] for r in ranking if r["rank"] <= self.exemplars]
        self.trigger(self.Closed, round_id=self.id, unit_id=self.unit_id, ranking=ranking, selected=selected)
        return selected
