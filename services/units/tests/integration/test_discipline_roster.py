"""纪检委员 roster (issue 10 #25) through the units application on SQLite and PostgreSQL: who
the 纪检委员 of each unit are (兼职 or 专职, from the people register), their training records
(选优配强: course, date, hours), the year's figures of a subtree, the units without one (a
科室 is not expected to have one); every refused request writes nothing."""
from __future__ import annotations

from datetime import date

import pytest

from services.units.domain import DisciplineTraining, discipline_duty, needs_discipline_member
from services.units.tests.integration.test_pledges import ADMIN, NODE, Node, refused  # noqa: F401 - same node
from shared.auth import UNIT_ADMIN, VIEWER, Actor
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation


@pytest.fixture
def node(db_url):
    n = Node(db_url)
    n.run("register_unit", {"unit_id": "dist", "name": "X区直机关工委", "kind": "district_authority",
                            "level": "district", "parent_id": None})
    for uid, name, kind, level, parent in (("fin", "财政局", "government_dept", "unit", "dist"),
                                           ("aud", "审计局", "government_dept", "unit", "dist"),
                                           ("edu", "教育局", "government_dept", "unit", "dist"),
                                           ("fin-office", "财政局办公室", "section", "section", "fin")):
        n.run("register_unit", {"unit_id": uid, "name": name, "kind": kind, "level": level, "parent_id": parent})
    for pid, name, unit, role, part_time in (("p-sun", "孙委员", "fin", "discipline_member", True),
                                             ("p-zhou", "周委员", "fin", "discipline_member", False),
                                             ("p-li", "李科员", "fin", None, False),
                                             ("p-wu", "吴书记", "aud", "discipline_member", False),
                                             ("p-dist", "郑委员", "dist", "discipline_member", True)):
        n.run("register_person", {"person_id": pid, "name": name, "unit_id": unit, "post": "干部"})
        if role:
            n.run("assign_role", {"person_id": pid, "role": role, "part_time": part_time})
    yield n
    n.engine.dispose()


def training(person_id, course="纪检监察业务培训班", on="2026-11-20", hours=16, **kw):
    return {"person_id": person_id, "course": course, "trained_on": on, "hours": hours,
            "organiser": "区纪委监委", **kw}


def test_the_rules_of_a_training_record_and_who_needs_a_discipline_member():
    assert discipline_duty(["discipline_member"]) == "part_time"
    assert discipline_duty(["party_secretary"]) == "full_time"
    assert needs_discipline_member({"level": "unit"}) and not needs_discipline_member({"level": "section"})
    with pytest.raises(RuleViolation) as e:
        DisciplineTraining.record({"person_id": "p", "unit_id": "u", "roles": ["member"]}, "课程",
                                  date(2026, 12, 3), date(2026, 12, 2), 0, None)
    assert e.value.fields == {"person_id": ["该人员不是纪检委员"], "trained_on": ["不能晚于今天"],
                              "hours": ["学时应大于 0 且不超过 200"]}
    t = DisciplineTraining.record({"person_id": "p", "unit_id": "u", "roles": ["discipline_member"]},
                                  " 课程 ", date(2026, 12, 2), date(2026, 12, 2), 200, None)
    assert t.id == DisciplineTraining.training_id("p", "2026-12-02", "课程")


def test_the_roster_of_a_subtree_with_trainings_and_units_without_one(node):
    ua = Actor("ua-fin", (UNIT_ADMIN,), "fin", NODE)
    assert node.run("record_discipline_training", training("p-sun"), ua)["person_id"] == "p-sun"
    node.run("record_discipline_training", training("p-sun", course="监督执纪实务", on="2026-03-05", hours=4.5), ua)
    node.run("record_discipline_training", training("p-sun", course="往年培训", on="2025-06-01", hours=8), ua)
    node.run("record_discipline_training", training("p-wu", hours=12))

    r = node.ask("discipline_roster", {"unit_id": "dist", "year": 2026}, Actor("v", (VIEWER,), None, NODE))
    assert [u["name"] for u in r["units"]] == ["X区直机关工委", "审计局", "财政局"]  # path order
    fin = next(u for u in r["units"] if u["unit_id"] == "fin")
    assert [(m["name"], m["duty"]) for m in fin["members"]] == [("周委员", "full_time"), ("孙委员", "part_time")]
    sun = fin["members"][1]
    assert [t["course"] for t in sun["trainings"]] == ["纪检监察业务培训班", "监督执纪实务", "往年培训"]
    assert (sun["trainings_in_year"], sun["hours_in_year"], sun["last_trained_on"]) == (2, 20.5, "2026-11-20")
    assert fin["members"][0]["trainings"] == [] and fin["members"][0]["last_trained_on"] is None
    # the section is not expected to have one; 教育局 is
    assert [u["name"] for u in r["without"]] == ["教育局"]
    assert (r["members"], r["part_time"], r["full_time"], r["trained_in_year"], r["hours_in_year"]) == \
        (4, 2, 2, 2, 32.5)
    assert node.ask("discipline_roster", {"unit_id": "dist", "year": 2025})["hours_in_year"] == 8
    # a unit-admin reads their own subtree
    mine = node.ask("discipline_roster", {"unit_id": "fin", "year": 2026}, ua)
    assert [u["name"] for u in mine["units"]] == ["财政局"] and mine["without"] == []
    with pytest.raises(Forbidden):
        node.ask("discipline_roster", {"unit_id": "aud", "year": 2026}, ua)
    # the role removed: no longer on the roster, the unit then listed without one
    node.run("remove_role", {"person_id": "p-wu", "role": "discipline_member"})
    r = node.ask("discipline_roster", {"unit_id": "dist", "year": 2026})
    assert [u["name"] for u in r["without"]] == ["审计局", "教育局"]


def test_refused_training_records_write_nothing(node):
    ua = Actor("ua-fin", (UNIT_ADMIN,), "fin", NODE)
    node.run("record_discipline_training", training("p-sun"), ua)
    e = refused(node, Conflict, "record_discipline_training", training("p-sun", hours=8), ua)
    assert e.fields == {"course": ["同一天的同一课程已登记"]} and "孙委员" in str(e)
    e = refused(node, RuleViolation, "record_discipline_training", training("p-li"), ua)
    assert e.fields == {"person_id": ["该人员不是纪检委员"]} and "培训记录未能登记" in str(e)
    e = refused(node, RuleViolation, "record_discipline_training", training("p-sun", on="2026-12-03"), ua)
    assert e.fields == {"trained_on": ["不能晚于今天"]}
    e = refused(node, RuleViolation, "record_discipline_training", training("p-sun", course="新课", hours=0), ua)
    assert e.fields == {"hours": ["学时应大于 0 且不超过 200"]}
    e = refused(node, RuleViolation, "record_discipline_training", training("p-sun", course="新课", hours=201), ua)
    assert "hours" in e.fields
    e = refused(node, BadInput, "record_discipline_training", training("p-sun", course=""), ua)
    assert "course" in e.fields
    e = refused(node, BadInput, "record_discipline_training", training("p-sun", on="2026-13-01"), ua)
    assert "trained_on" in e.fields
    e = refused(node, BadInput, "record_discipline_training", training("p-sun", hours="many"), ua)
    assert "hours" in e.fields
    refused(node, Forbidden, "record_discipline_training", training("p-wu"), ua)  # another unit
    refused(node, Forbidden, "record_discipline_training", training("p-sun", course="新课"),
            Actor("v", (VIEWER,), None, NODE))
    e = refused(node, NotFound, "record_discipline_training", training("p-nobody"))
    assert "person_id" in e.fields
