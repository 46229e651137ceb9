"""Unit tier: the units aggregates alone, no I/O. Every rule of the service is here - the
tree's facts a rule needs (the parent's row, paths, the active units below, whether an id
is taken) are given as arguments, as the service's read port supplies them."""
from datetime import date

import pytest

from services.units.domain import (
    DisciplineTraining, ExemplaryRound, IntegrityPledge, MicroPowerList, Person, ResponsibilityDocument,
    ResponsibilityLetter, Unit,
)
from shared.errors import Conflict, RuleViolation


def types(agg):
    return [e.event_type for e in agg.pending_events]


def test_only_city_or_district_can_be_a_root():
    with pytest.raises(RuleViolation):
        Unit.register("u", "x局", "government_dept", "unit", None)
    assert types(Unit.register("qu", "区", "district_authority", "district", None)) == ["Unit.Registered"]


def test_unit_changes_and_no_op_commands_record_nothing():
    u = Unit.register("u", "x局", "government_dept", "unit", "qu")
    u.rename("x局")
    u.move("qu")
    u.set_demonstration_site(False)
    u.set_pilot_flags([])
    assert types(u) == ["Unit.Registered"]
    u.rename("y局")
    u.set_pilot_flags(["清廉便民服务", "清廉便民服务"])
    assert u.pilot_flags == ["清廉便民服务"] and u.version == 3
    with pytest.raises(RuleViolation):
        u.move("u")
    u.deactivate("撤并")
    with pytest.raises(RuleViolation):
        u.rename("z局")


def test_replay_gives_the_state_the_commands_saw():
    u = Unit.register("u", "x局", "government_dept", "unit", "qu")
    u.rename("y局")
    u.move("other")
    rows = [(e.event_type, i + 1, e.data()) for i, e in enumerate(u.collect_events())]
    again = Unit.replay("u", rows)
    assert (again.name, again.parent_id, again.version) == ("y局", "other", 3)


def test_person_roles_and_promotion():
    p = Person.register("p", "张三", "u", "科员")
    p.assign_role("discipline_member", part_time=True)
    with pytest.raises(RuleViolation):
        p.assign_role("discipline_member")
    with pytest.raises(RuleViolation):
        p.remove_role("party_secretary")
    with pytest.raises(RuleViolation):
        p.promote("科员", "u", "2026-01-01")
    p.promote("副科长", "u", "2026-01-01")
    assert p.post == "副科长" and Person.Promoted.private


def test_document_revision_must_change_something():
    d = ResponsibilityDocument.draft("d", "u", "task_list", "清单", [{"text": "a"}])
    with pytest.raises(RuleViolation):
        d.revise("清单", [{"text": "a"}], "无变化")
    d.revise("清单", [{"text": "a"}, {"text": "b"}], "增加")
    assert d.revision == 2


def test_letter_lifecycle():
    with pytest.raises(RuleViolation):
        ResponsibilityLetter.issue("2026", "u", "u", "party_secretary", "x")
    letter = ResponsibilityLetter.issue("2026", "qu", "u", "party_secretary", "责任书")
    assert letter.id == "2026/u"
    with pytest.raises(RuleViolation):
        letter.sign("2026-01-01", "cadre")
    letter.sign("2026-01-01", "party_secretary")
    with pytest.raises(RuleViolation):
        letter.sign("2026-01-02", "party_secretary")
    letter.revoke("重签")
    with pytest.raises(RuleViolation):
        letter.revoke("again")


def test_micro_power_list_publishes_only_something_new():
    content = {"duties": ["d"], "power_boundary": "b", "steps": [{"name": "s", "responsible_post": "p"}]}
    m = MicroPowerList.draft_for("u", "窗口岗", content)
    m.publish("2026-01-01")
    with pytest.raises(RuleViolation):
        m.publish("2026-01-02")
    with pytest.raises(RuleViolation):
        m.edit(content)
    with pytest.raises(RuleViolation):
        MicroPowerList.draft_for("u", "岗", {"duties": ["d"], "power_boundary": "b",
                                           "steps": [{"name": "s", "responsible_post": ""}]})
    m.edit(dict(content, power_boundary="b2"))
    m.publish("2026-02-01")
    assert m.published_version == 2 and m.published["power_boundary"] == "b2"


# -- the rules that need the tree's facts -----------------------------------------------------
def test_only_a_node_admin_registers_a_root():
    with pytest.raises(RuleViolation, match="只有节点管理员"):
        Unit.register("qu", "区", "district_authority", "district", None, by_node_admin=False)
    # below a parent a unit-admin may register (their scope is checked before, by the app)
    assert types(Unit.register("u", "x局", "government_dept", "unit", "qu", parent={"active": True},
                               by_node_admin=False)) == ["Unit.Registered"]


def test_the_parent_must_be_active():
    with pytest.raises(RuleViolation, match="上级单位「qu」已停用"):
        Unit.register("u", "x局", "government_dept", "unit", "qu", parent={"active": False})


def test_no_move_under_its_own_subtree_nor_under_itself():
    u = Unit.register("xj", "x局", "government_dept", "unit", "qu")
    for parent, path in (("xj-office", "/qu/xj/xj-office/"), ("xj", "/qu/xj/")):
        with pytest.raises(RuleViolation) as exc:
            u.move(parent, parent_path=path, own_path="/qu/xj/")
        assert exc.value.fields == {"parent_id": ["位于被移动的单位之下"]}
    # a sibling whose id merely starts the same is not below it
    u.move("xj2", parent_path="/qu/xj2/", own_path="/qu/xj/")
    assert types(u)[-1] == "Unit.Moved" and u.parent_id == "xj2"


def test_no_deactivation_while_active_units_are_below():
    u = Unit.register("xj", "x局", "government_dept", "unit", "qu")
    with pytest.raises(RuleViolation, match="还有 2 个在用的下级单位"):
        u.deactivate("撤并", active_below=2)
    assert u.active
    u.deactivate("撤并", active_below=0)
    assert types(u)[-1] == "Unit.Deactivated"


def test_a_letter_goes_to_a_unit_below_its_issuer():
    for issuer, target, ip, tp in (("xj", "yj-team", "/qu/xj/", "/qu/yj/yj-team/"),  # another branch
                                   ("xj", "qu", "/qu/xj/", "/qu/"),                   # upward
                                   ("xj", "xj", "/qu/xj/", "/qu/xj/")):               # itself
        with pytest.raises(RuleViolation) as exc:
            ResponsibilityLetter.issue("2026", issuer, target, "party_secretary", "x", issuer_path=ip, target_path=tp)
        assert exc.value.fields == {"target_unit_id": ["不是「%s」的下级单位" % issuer]}
    letter = ResponsibilityLetter.issue("2026", "xj", "xj-office", "party_secretary", "x",
                                        issuer_path="/qu/xj/", target_path="/qu/xj/xj-office/")
    assert types(letter) == ["ResponsibilityLetter.Issued"]


def test_a_nominee_is_below_the_organising_unit():
    r = ExemplaryRound.open("fin", 2026, "评选", 1)
    with pytest.raises(RuleViolation) as exc:
        r.nominate({"unit_id": "x", "kind": "section", "path": "/dist/other/x/"}, organiser_path="/dist/fin/")
    assert exc.value.fields == {"nominee_unit_id": ["须是本单位的下级单位"]}
    r.nominate({"unit_id": "o", "kind": "section", "path": "/dist/fin/o/"}, organiser_path="/dist/fin/")
    assert r.nominees == ["o"]


def test_a_taken_id_is_a_conflict_before_any_other_rule():
    person = {"person_id": "p", "unit_id": "u", "name": "张三", "roles": []}
    for make, fields in (
        (lambda: Unit.register("u", "x局", "government_dept", "unit", "qu", taken=True), {"unit_id": ["已被占用"]}),
        (lambda: Person.register("p", "张三", "u", "科员", taken=True), {"person_id": ["已被占用"]}),
        (lambda: ResponsibilityDocument.draft("d", "u", "task_list", "清单", [{"text": "a"}], taken=True),
         {"doc_id": ["已被占用"]}),
        (lambda: ResponsibilityLetter.issue("2026", "qu", "u", "party_secretary", "x", taken=True), {}),
        (lambda: MicroPowerList.draft_for("u", "岗", {"steps": []}, taken=True), {}),
        (lambda: ExemplaryRound.open("u", 2026, "评选", 1, unit_name="x局", taken=True), {"year": ["本年度已有评选"]}),
        # the person holds no role and the date is tomorrow: still the conflict first, as before
        (lambda: IntegrityPledge.make(person, "party_secretary", date(2026, 3, 2), date(2026, 3, 1), "承诺", [],
                                      None, taken=True), {"person_id": ["本年度已承诺"]}),
        (lambda: DisciplineTraining.record(person, "课程", date(2026, 3, 2), date(2026, 3, 1), 0, None, taken=True),
         {"course": ["同一天的同一课程已登记"]}),
    ):
        with pytest.raises(Conflict) as exc:
            make()
        assert type(exc.value) is Conflict and exc.value.fields == fields  # not a RuleViolation (409 too)
