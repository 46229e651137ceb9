"""集中廉政承诺 (issue 10 #22) through the units application on SQLite and PostgreSQL: a
party secretary's or 纪检委员's pledge per year with its text and the enterprise and resident
representatives who witnessed it; one per person and year; a subtree's coverage (who has
not pledged, units with nobody to pledge); every refused request writes nothing."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from services.units.application import app
from services.units.domain import IntegrityPledge, witness_errors
from shared.auth import NODE_ADMIN, UNIT_ADMIN, VIEWER, Actor
from shared.db import make_engine
from shared.errors import BadInput, Conflict, Forbidden, NotFound, RuleViolation
from shared.projections import prepare
from shared.uow import Runtime

NODE = "district-test"
ADMIN = Actor("admin", (NODE_ADMIN,), None, NODE)
WITNESSES = [{"kind": "enterprise", "name": "周企业", "organisation": "某建筑公司"},
             {"kind": "resident", "name": "吴居民", "organisation": "东街社区"}]


class Node:
    def __init__(self, url):
        self.engine = make_engine(url)
        self.now = datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)  # 12-02 01:00 in Shanghai
        self.rt = Runtime(self.engine, app.projections, NODE, "units", clock=lambda: self.now)
        self.rt.create_schema()
        prepare(self.rt.store, self.rt.projections, self.rt.inline_checkpoint)

    def run(self, name, data, actor=ADMIN):
        return app.execute(self.rt, name, data, actor)

    def ask(self, name, params, actor=ADMIN):
        return app.run_query(self.rt, name, params, actor)

    def head(self):
        with self.rt.read() as conn:
            return self.rt.store.head(conn)


@pytest.fixture
def node(db_url):
    n = Node(db_url)
    root = n.run("register_unit", {"unit_id": "dist", "name": "X区直机关工委", "kind": "district_authority",
                                   "level": "district", "parent_id": None})["unit_id"]
    for uid, name in (("fin", "财政局"), ("aud", "审计局"), ("edu", "教育局")):
        n.run("register_unit", {"unit_id": uid, "name": name, "kind": "government_dept", "level": "unit",
                                "parent_id": root})
    for pid, name, unit, roles in (("p-qian", "钱书记", "fin", ["party_secretary"]),
                                   ("p-sun", "孙委员", "fin", ["discipline_member"]),
                                   ("p-li", "李科员", "fin", []),
                                   ("p-wu", "吴书记", "aud", ["party_secretary", "discipline_member"])):
        n.run("register_person", {"person_id": pid, "name": name, "unit_id": unit, "post": "干部"})
        for role in roles:
            n.run("assign_role", {"person_id": pid, "role": role})
    yield n
    n.engine.dispose()


def refused(n, exc, name, data, actor=ADMIN):
    before = n.head()
    with pytest.raises(exc) as info:
        n.run(name, data, actor)
    assert n.head() == before
    return info.value


def pledge(person_id, role, on="2026-11-20", **kw):
    return {"person_id": person_id, "role": role, "pledged_on": on, "text": "严守纪律，廉洁用权。",
            "witnesses": WITNESSES, "occasion": "第一期清廉品牌活动", **kw}


def test_witnesses_must_include_an_enterprise_and_a_resident_representative():
    assert witness_errors(WITNESSES) == []
    assert witness_errors(WITNESSES[:1]) == ["居民代表"]
    with pytest.raises(RuleViolation) as e:
        IntegrityPledge.make({"person_id": "p", "unit_id": "u", "roles": ["member"]}, "party_secretary",
                             date(2026, 12, 3), date(2026, 12, 2), "承诺", WITNESSES[1:], None)
    assert set(e.value.fields) == {"role", "pledged_on", "witnesses"}
    assert e.value.fields["witnesses"] == ["须有企业代表见证"]


def test_pledges_per_person_and_year_and_the_coverage_of_a_subtree(node):
    ua = Actor("ua-fin", (UNIT_ADMIN,), "fin", NODE)
    assert node.run("record_pledge", pledge("p-qian", "party_secretary"), ua) == \
        {"pledge_id": "2026/p-qian", "year": 2026}
    node.run("record_pledge", pledge("p-wu", "party_secretary"))
    # last year's pledge is another year's: allowed, and not counted for 2026
    node.run("record_pledge", pledge("p-sun", "discipline_member", on="2025-12-01"), ua)

    cov = node.ask("pledge_coverage", {"unit_id": "dist", "year": 2026})
    fin = next(u for u in cov["units"] if u["unit_id"] == "fin")
    assert [p["name"] for p in fin["pledged"]] == ["钱书记"]
    assert [(p["name"], p["role"]) for p in fin["missing"]] == [("孙委员", "discipline_member")]
    assert (fin["holders"], fin["coverage"], fin["complete"]) == (2, 0.5, False)
    aud = next(u for u in cov["units"] if u["unit_id"] == "aud")
    # one person with both roles pledged as party secretary: the 纪检委员 pledge is missing
    assert [p["role"] for p in aud["missing"]] == ["discipline_member"]
    assert {u["name"] for u in cov["without_holders"]} == {"X区直机关工委", "教育局"}
    assert (cov["holders"], cov["pledged"], cov["coverage"], cov["units_complete"]) == (4, 2, 0.5, 0)

    listed = node.ask("list_pledges", {"unit_id": "dist", "year": 2026},
                      Actor("v", (VIEWER,), None, NODE))["pledges"]
    assert [(p["name"], p["unit_name"]) for p in listed] == [("钱书记", "财政局"), ("吴书记", "审计局")]
    one = node.ask("get_pledge", {"pledge_id": "2026/p-qian"})
    assert one["witnesses"][0] == WITNESSES[0] and one["occasion"] == "第一期清廉品牌活动"
    assert node.ask("pledge_coverage", {"unit_id": "dist", "year": 2025})["pledged"] == 1


def test_refused_pledges_write_nothing(node):
    ua = Actor("ua-fin", (UNIT_ADMIN,), "fin", NODE)
    node.run("record_pledge", pledge("p-qian", "party_secretary"), ua)
    e = refused(node, Conflict, "record_pledge", pledge("p-qian", "party_secretary", on="2026-12-01"), ua)
    assert e.fields == {"person_id": ["本年度已承诺"]} and "2026" in str(e)
    e = refused(node, RuleViolation, "record_pledge", pledge("p-li", "party_secretary"), ua)
    assert e.fields == {"role": ["该人员不是党组织书记"]}
    e = refused(node, RuleViolation, "record_pledge",
                pledge("p-sun", "discipline_member", witnesses=WITNESSES[:1]), ua)
    assert e.fields == {"witnesses": ["须有居民代表见证"]}
    e = refused(node, RuleViolation, "record_pledge", pledge("p-sun", "discipline_member", on="2026-12-03"), ua)
    assert "pledged_on" in e.fields
    e = refused(node, BadInput, "record_pledge", pledge("p-sun", "member"), ua)
    assert "纪检委员" in str(e.fields["role"])
    e = refused(node, BadInput, "record_pledge", pledge("p-sun", "discipline_member", text=""), ua)
    assert "text" in e.fields
    e = refused(node, BadInput, "record_pledge", pledge("p-sun", "discipline_member",
                                                        witnesses=[{"kind": "official", "name": "某"}]), ua)
    assert "witnesses" in e.fields
    refused(node, Forbidden, "record_pledge", pledge("p-wu", "party_secretary"), ua)  # another unit
    refused(node, Forbidden, "record_pledge", pledge("p-sun", "discipline_member"),
            Actor("v", (VIEWER,), None, NODE))
    e = refused(node, NotFound, "record_pledge", pledge("p-nobody", "party_secretary"))
    assert "person_id" in e.fields
