"""The federation scenarios of issue 3, on the real broker: city, district-a and
district-b are vhosts, each node runs its own exchange service on its own SQLite files,
keys and registry, linked by RabbitMQ exchange federation."""
from __future__ import annotations

import pytest

from tests.harness import wait_for

CASE = {
    "unit_id": "a-window", "title": "窗口单位虚报冒领补贴问题剖析",
    "category": "违规发放补贴", "summary": "x专项治理中发现的典型案例，深入剖析、举一反三。",
    "facts": "2024年，某窗口单位工作人员利用审核职权，虚报冒领惠民补贴。",
    "analysis": "审核环节一人说了算，微权力清单未公开，监督停留在部门层面、未延伸到基层站所。",
    "lessons": ["推行微权力清单公开制度", "审核与发放岗位分离"], "tags": ["微权力", "窗口单位"],
}


def test_case_is_compiled_jointly_across_three_nodes(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    case = a.execute("compile_case", dict(CASE, case_id="case-subsidy",
                                          share={"sharing": "all", "recipients": []}))
    cid = case["case_id"]
    assert cid == "district-a/case-subsidy"

    # published at district-a: in the city's and district-b's feeds
    for node in (city, b):
        wait_for(lambda: cid in node.feed_ids(kind="case"), what="the case at %s" % node.node_id)
        assert node.record(cid)["content"]["analysis"] == CASE["analysis"]

    # the city's contribution reaches both districts
    contribution = city.execute("contribute_to_case", {
        "case_id": cid, "contribution_type": "analysis", "unit_id": "city-jw",
        "text": "市级层面看，同类问题在多个区的惠民资金审核中都存在，应统一审核流程。"})
    kid = contribution["contribution_id"]
    assert kid.startswith("city/")
    for node in (a, b):
        wait_for(lambda: [c for c in (node.record(cid) or {}).get("sub_records", {})
                          .get("contribution", []) if c["id"] == kid],
                 what="the city's contribution at %s" % node.node_id)

    # the owner merges it into a new revision; every node sees revision 2 with it merged
    revised = a.execute("revise_case", {"case_id": cid, "merge_contributions": [kid],
                                        "lessons": CASE["lessons"] + ["市级统一审核流程"],
                                        "note": "吸收市级分析"})
    assert revised["revision"] == 2
    for node in (a, city, b):
        def merged():
            r = node.record(cid)
            return r and r["content"]["revision"] == 2 and \
                [c for c in r["sub_records"]["contribution"] if c["id"] == kid and c["status"] == "merged"]
        wait_for(merged, what="revision 2 at %s" % node.node_id)
        assert node.record(cid)["content"]["merged_contributions"] == [kid]

    # others cannot revise the owner's case: they contribute
    from shared.errors import Forbidden
    with pytest.raises(Forbidden):
        b.execute("revise_case", {"case_id": cid, "note": "x", "title": "改标题"})

    # the full history across nodes, identical everywhere
    histories = [[(e["event_type"], e["node"]) for e in n.query("record_history", {"record_id": cid})["events"]]
                 for n in (a, city, b)]
    assert histories[1] == histories[2]
    assert [t for t, _ in histories[1]] == ["Case.Published", "Contribution.Added", "Case.Revised"]
    assert histories[0][0] == ("Case.Compiled", "district-a")  # the draft never left the owner
    assert [n for _, n in histories[1]] == ["district-a", "city", "district-a"]


def test_joint_problem_gets_proposals_and_one_resolution_everywhere(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    pid = a.execute("post_problem", {
        "problem_id": "prob-part-time", "unit_id": "a-gw",
        "title": "纪检委员身兼数职，咬耳扯袖难以全覆盖",
        "context": "机关党组织纪检委员多数身兼数职且业务能力参差不齐，对党员干部的监督未做到全覆盖、经常化。",
        "deadline": "2031-09-30", "tags": ["监督", "纪检委员"],
        "share": {"sharing": "all", "recipients": []}})["problem_id"]
    for node in (city, b):
        wait_for(lambda: node.record(pid), what="the problem at %s" % node.node_id)

    p_city = city.execute("propose_solution", {
        "problem_id": pid, "unit_id": "city-gw", "summary": "“部门对部门”交叉监督",
        "detail": "由市直机关工委统筹，部门之间结对开展交叉监督，纪检委员轮值。"})["proposal_id"]
    p_b = b.execute("propose_solution", {
        "problem_id": pid, "unit_id": "b-xj", "summary": "“社区对部门”伴随式监督",
        "detail": "引入社区监督员，对窗口和执法部门开展伴随式监督。"})["proposal_id"]
    b.execute("post_comment", {"parent_kind": "proposal", "parent_id": p_b,
                               "text": "乙区已试行半年，效果较好。"})
    wait_for(lambda: len((a.record(pid) or {}).get("sub_records", {}).get("proposal", [])) == 2,
             what="both proposals at district-a")
    a.execute("accept_proposal", {"problem_id": pid, "proposal_id": p_city, "note": "先在区直机关试行"})
    a.execute("record_resolution", {
        "problem_id": pid, "summary": "建立部门对部门交叉监督机制",
        "results": ["12个部门结对", "纪检委员谈话提醒覆盖率100%"],
        "measures": ["季度轮值", "问题清单共享"], "resolved_on": "2025-08-31"})

    def resolution(node):
        r = node.record(pid)
        return r and r["status"] == "resolved" and r["content"]["resolution"]

    records = [wait_for(lambda n=n: resolution(n), what="the resolution at %s" % n.node_id)
               for n in (a, city, b)]
    assert records[0] == records[1] == records[2]
    assert records[0]["proposal_id"] == p_city
    for node in (a, city, b):
        r = node.record(pid)
        assert r["content"]["accepted_proposal_id"] == p_city
        statuses = {p["id"]: p["status"] for p in r["sub_records"]["proposal"]}
        assert statuses == {p_city: "accepted", p_b: "submitted"}
    # the discussion on district-b's proposal reached the owner too
    wait_for(lambda: a.record(pid)["sub_records"].get("comment"), what="the comment at district-a")
