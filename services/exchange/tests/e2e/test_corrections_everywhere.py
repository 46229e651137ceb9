"""A correction of a shared record keeps its sharing level and reaches every node that
has the record (issue 10, item 15), across a city and two districts on real brokers.

test_audience_after_edits proves it per aggregate in the domain; this is the same promise
on the wire: each kind's correcting command, run on the owner, arrives at the district it
was named for, through the city that only relays it, and the level stays what it was."""
from __future__ import annotations

from tests.harness import assert_nothing_after, wait_for
from tests.harness.exchange import holds, send_marker

NAMED_B = {"sharing": "named", "recipients": ["district-b"]}
ALL = {"sharing": "all", "recipients": []}


def _originals(a, share):
    """One record of each kind that has a correcting command, owned by district-a."""
    tag = share["sharing"]
    return {
        "experience": a.execute("draft_experience", {
            "experience_id": "fix-exp-%s" % tag, "unit_id": "a-xj", "title": "窗口服务“好差评”",
            "summary": "初稿", "body": "做法与成效。", "business_type": "窗口服务",
            "share": share})["experience_id"],
        "case": a.execute("compile_case", {
            "case_id": "fix-case-%s" % tag, "unit_id": "a-xj", "title": "违规发放补贴案",
            "category": "违规发放补贴", "summary": "初稿", "facts": "事实。", "analysis": "分析。",
            "lessons": ["举一反三"], "share": share})["case_id"],
        "activity": a.execute("plan_activity", {
            "activity_id": "fix-act-%s" % tag, "unit_id": "a-gw", "title": "警示教育专题党日",
            "theme": "警示教育", "description": "联办。",
            "starts_at": "2031-07-01T09:00:00+08:00", "ends_at": "2031-07-01T11:00:00+08:00",
            "location": "区廉政教育基地", "share": share})["activity_id"],
        "exemplar": a.execute("nominate_exemplar", {
            "exemplar_id": "fix-ex-%s" % tag, "unit_id": "a-xj", "category": "model_section",
            "title": "模范科室", "description": "互比互查成效明显。",
            "indicators": {"closure_rate": 0.9}, "period": "2031-03", "share": share})["exemplar_id"],
        "problem": a.execute("post_problem", {
            "problem_id": "fix-prob-%s" % tag, "unit_id": "a-gw", "title": "难题", "context": "背景",
            "deadline": "2031-06-30", "share": share})["problem_id"],
    }


def _correct(a, ids):
    """Each kind's correction, and how to read it back from a replica."""
    a.execute("edit_experience", {"experience_id": ids["experience"], "summary": "修订稿"})
    a.execute("revise_case", {"case_id": ids["case"], "summary": "修订稿", "note": "更正事实"})
    a.execute("reschedule_activity", {"activity_id": ids["activity"], "location": "市廉政教育基地",
                                      "starts_at": "2031-07-02T09:00:00+08:00",
                                      "ends_at": "2031-07-02T11:00:00+08:00", "note": "改期"})
    a.execute("update_exemplar_indicators", {"exemplar_id": ids["exemplar"], "period": "2031-04",
                                             "indicators": {"closure_rate": 0.95}})
    a.execute("extend_problem_deadline", {"problem_id": ids["problem"], "deadline": "2031-09-30",
                                          "reason": "征集更多方案"})
    return {
        "experience": lambda r: r["summary"] == "修订稿",
        "case": lambda r: r["summary"] == "修订稿",
        "activity": lambda r: r["content"]["location"] == "市廉政教育基地",
        "exemplar": lambda r: r["content"]["indicators"] == {"closure_rate": 0.95},
        "problem": lambda r: r["content"]["deadline"] == "2031-09-30",
    }


def _corrected_at(node, ids, checks, share):
    for kind, rid in ids.items():
        wait_for(lambda r=rid, k=kind: (node.record(r) or {}).get("updated_at") and
                 checks[k](node.record(r)), what="the %s correction at %s" % (kind, node.node_id))
        got = node.record(rid)
        assert (got["sharing"], got["recipients"]) == (share["sharing"], share["recipients"]), kind
        assert got["status"] not in ("withdrawn", "draft"), (kind, got["status"])


def test_corrections_keep_a_named_audience_and_reach_it(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    ids = _originals(a, NAMED_B)
    for rid in ids.values():
        wait_for(lambda r=rid: b.record(r), what="%s at district-b" % rid)
    checks = _correct(a, ids)
    _corrected_at(b, ids, checks, NAMED_B)
    _corrected_at(a, ids, checks, NAMED_B)
    # the city relayed every correction; none may have stayed with it (the city has
    # settled all of district-a's earlier numbers once it holds a later one)
    assert_nothing_after(holds(send_marker(a), city), what="district-a's marker at the city")
    assert [rid for rid in ids.values() if city.record(rid) is not None] == []


def test_corrections_of_a_record_shared_with_all_reach_every_node(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    ids = _originals(a, ALL)
    for node in (city, b):
        for rid in ids.values():
            wait_for(lambda r=rid, n=node: n.record(r), what="%s at %s" % (rid, node.node_id))
    checks = _correct(a, ids)
    for node in (a, city, b):
        _corrected_at(node, ids, checks, ALL)
