"""Issue 10 #3: one risk-point register. Education's tailoring (精准滴灌) uses supervision's
廉政风险点台账 through its events: units, supervision and education as nameko services of
one node (real RabbitMQ vhost, real databases). A risk point identified in supervision
changes what education offers a unit and its coverage-per-risk-point figure; retired, it
drops out of both. The profile no longer takes a hand-typed list (refused, nothing written)."""
from __future__ import annotations


import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port, get_extension

from shared.errors import BadInput
from shared.service import EventSourcing
from tests.harness import wait_for

from services.education.service import EducationService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService

POINT = "政府采购评审专家抽取"



@pytest.fixture
def node(container_factory, node_config):
    containers = {}
    for name, cls in (("units", UnitsService), ("supervision", SupervisionService),
                      ("education", EducationService)):
        cfg = dict(node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
        containers[name] = container_factory(cls, cfg)
        containers[name].start()
    return containers


def head(container):
    rt = get_extension(container, EventSourcing).runtime
    with rt.read() as conn:
        return rt.store.head(conn)


def test_identified_and_retired_in_supervision_changes_what_education_offers(node, node_config, admin_token):
    admin = {"token": admin_token}
    with ClusterRpcProxy(node_config) as n:
        n.units.register_unit({"unit_id": "dist", "name": "X区", "kind": "district_authority",
                               "level": "district"}, actor=admin)
        for uid, name in (("fin", "财政局"), ("mkt", "市场监管局")):
            n.units.register_unit({"unit_id": uid, "name": name, "kind": "government_dept", "level": "unit",
                                   "parent_id": "dist"}, actor=admin)
        n.units.register_unit({"unit_id": "fin-s1", "name": "采购科", "kind": "section", "level": "section",
                               "parent_id": "fin"}, actor=admin)
        edu, sv = n.education, n.supervision
        wait_for(lambda: edu.risk_point_coverage({"unit_id": "dist", "period": "2026-01"}, actor=admin)
                 ["units_without_risk_points"] == ["fin", "mkt"], what="the tree in education")
        edu.add_content({"item_id": "film-1", "kind": "short_text", "title": "政府采购领域警示录",
                         "text": "……", "tags": {"risk_points": [POINT]}}, actor=admin)
        edu.add_content({"item_id": "gen-1", "kind": "slogan", "title": "清正廉洁", "text": "廉"}, actor=admin)

        # the hand-typed list is refused, and nothing is written
        before = head(node["education"])
        with pytest.raises(BadInput) as exc:
            edu.set_unit_profile({"unit_id": "fin", "risk_points": [POINT]}, actor=admin)
        assert "risk_points" in exc.value.fields and "台账" in exc.value.fields["risk_points"][0]
        assert head(node["education"]) == before
        before_offer = edu.offer_for_unit({"unit_id": "fin"}, actor=admin)
        assert [c["item_id"] for c in before_offer["content"]] == ["gen-1"]   # film-1 fits nobody yet

        # identified in supervision (for a section of fin): education offers for it
        rp = sv.identify_risk_point({"unit_id": "fin-s1", "description": POINT, "category": "post_duty",
                                     "post": "采购岗"}, actor=admin)["risk_point_id"]
        offer = wait_for(lambda: (lambda o: o if "film-1" in [c["item_id"] for c in o["content"]] else None)(
            edu.offer_for_unit({"unit_id": "fin"}, actor=admin)), what="the register entry in education")
        assert offer["profile"]["risk_points"] == [POINT]
        assert offer["profile"]["register"] == [{"risk_point_id": rp, "unit_id": "fin-s1", "name": POINT,
                                                 "category": "post_duty", "post": "采购岗"}]
        assert [c["item_id"] for c in offer["content"]][0] == "film-1" and offer["content"][0]["fit"] == 3
        assert "film-1" not in [c["item_id"] for c in edu.offer_for_unit({"unit_id": "mkt"}, actor=admin)["content"]]
        cov = edu.risk_point_coverage({"unit_id": "dist", "period": "2026-01"}, actor=admin)
        assert [(p["risk_point"], p["units"], p["gaps"], p["library_items"], p["register_ids"])
                for p in cov["risk_points"]] == [(POINT, 1, ["fin"], 1, [rp])]
        assert cov["units_without_risk_points"] == ["mkt"]
        assert edu.risk_point_register({"unit_id": "dist"}, actor=admin)["risk_points"][0]["risk_point_id"] == rp

        # retired in supervision: gone from the offer and from the figure
        sv.retire_risk_point({"risk_point_id": rp, "reason": "岗位调整，风险已消除"}, actor=admin)
        wait_for(lambda: edu.risk_point_coverage({"unit_id": "dist", "period": "2026-01"}, actor=admin)
                 ["risk_points"] == [], what="the retirement in education")
        offer = edu.offer_for_unit({"unit_id": "fin"}, actor=admin)
        assert offer["profile"]["risk_points"] == [] and [c["item_id"] for c in offer["content"]] == ["gen-1"]
        assert edu.risk_point_register({"unit_id": "dist"}, actor=admin)["risk_points"] == []
