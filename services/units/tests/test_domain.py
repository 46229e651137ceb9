"""Unit tier: the units aggregates alone, no I/O."""
import pytest

from services.units.domain import MicroPowerList, Person, ResponsibilityDocument, ResponsibilityLetter, Unit
from shared.errors import RuleViolation


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
