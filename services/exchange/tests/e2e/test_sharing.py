"""Sharing levels end to end, and the other record kinds (经验联享, 活动联办, 典型联树,
上下互比) across the three nodes."""
from __future__ import annotations

import uuid

import pytest

from kombu import Connection, Exchange, Producer
from sqlalchemy import select

from services.exchange.federation import outbox
from tests.harness import assert_nothing_after, wait_for
from tests.harness.exchange import holds, send_marker


def problem(node, slug, sharing, recipients=(), unit="a-gw"):
    return node.execute("post_problem", {
        "problem_id": slug, "unit_id": unit, "title": "难题 %s" % slug, "context": "背景",
        "deadline": "2031-12-31", "share": {"sharing": sharing, "recipients": list(recipients)}})["problem_id"]


def test_each_sharing_level_reaches_exactly_its_audience(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    node_only = problem(a, "lvl-node", "node")
    up = problem(a, "lvl-city", "city")
    named_b = problem(a, "lvl-named-b", "named", ["district-b"])
    everyone = problem(a, "lvl-all", "all")
    wait_for(lambda: city.record(everyone) and b.record(everyone), what="the 'all' record everywhere")
    wait_for(lambda: city.record(up) and b.record(named_b), what="city / named records")
    # district-b missed some of district-a's numbers (not for it) yet is not stuck:
    # the feed told it those were not its to have, and later records still apply; the
    # later record is also the marker: whatever of the earlier ones was to arrive has
    later = problem(a, "lvl-after", "all")
    assert_nothing_after(holds(later, city, b), what="a later record at the city and district-b")
    assert city.record(node_only) is None and b.record(node_only) is None
    assert b.record(up) is None                 # city-only never reaches a district
    assert city.record(named_b) is None         # named: the city is only the hub it crossed
    assert a.record(node_only)["status"] == "open"  # published on its node, for its node
    assert b.fed.sequencer.held_count("district-a") == 0
    # the node-only record was never even staged, so it cannot leave by any path
    with a.runtime.engine.connect() as conn:
        staged = {r[0]["payload"]["problem_id"] for r in
                  conn.execute(select(outbox.c.envelope).where(outbox.c.event_type.like("JointProblem.%")))}
    assert node_only not in staged and {up, named_b, everyone, later} <= staged


def test_resharing_moves_a_record_between_audiences(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    rid = problem(a, "reshare", "all")
    wait_for(lambda: b.record(rid), what="the record at district-b")
    a.execute("share_record", {"kind": "problem", "record_id": rid, "sharing": "city"})
    wait_for(lambda: rid not in b.feed_ids(kind="problem"), what="district-b to drop it")
    assert rid in city.feed_ids(kind="problem")
    assert b.record(rid)["status"] == "withdrawn"


def test_sub_records_follow_their_record_audience(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    rid = problem(a, "subs-city", "city")
    wait_for(lambda: city.record(rid), what="the city-level problem at the city")
    pid = city.execute("propose_solution", {"problem_id": rid, "summary": "市级建议",
                                            "detail": "统一标准"})["proposal_id"]
    wait_for(lambda: a.record(rid)["sub_records"].get("proposal"), what="the proposal at the owner")
    assert_nothing_after(holds(send_marker(city), b), what="the city's marker at district-b")
    assert b.fed.sequencer.held_count("city") == 0
    with b.runtime.engine.connect() as conn:
        from services.exchange.projections import subs
        assert conn.execute(select(subs).where(subs.c.sub_id == pid)).first() is None
    # district-b cannot add to what it cannot see
    from shared.errors import NotFound
    with pytest.raises(NotFound):  # district-b may not propose to a problem it cannot see
        b.execute("propose_solution", {"problem_id": rid, "summary": "x", "detail": "y"})


def test_experience_learned_from_and_comments(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    eid = a.execute("draft_experience", {
        "experience_id": "seven-focus", "unit_id": "a-xj",
        "title": "“清廉机关示范点建设深化拓展年”七个聚焦",
        "summary": "聚焦责任抓落实、聚焦风险抓防控、聚焦思想抓教育……",
        "body": "通过七个方面持续发力，推动清廉机关建设与党建、业务深度融合。",
        "business_type": "示范点建设", "topics": ["示范点", "融合"],
        "attachments": [{"title": "工作方案", "uri": "https://a.example/docs/plan.pdf", "sha256": None}]})
    assert eid["published"] is False
    a.execute("share_record", {"kind": "experience", "record_id": eid["experience_id"], "sharing": "all"})
    rid = eid["experience_id"]
    for node in (b, city):  # each node receives on its own: waiting for one proves nothing of the other
        wait_for(lambda n=node: n.record(rid), what="the experience at %s" % node.node_id)
    assert rid in b.feed_ids(tag="示范点") and rid in city.feed_ids(origin="district-a")
    assert rid not in b.feed_ids(tag="不存在")
    b.execute("mark_learned", {"experience_id": rid, "unit_id": "b-xj", "note": "借鉴七个聚焦做法"})
    city.execute("post_comment", {"parent_kind": "experience", "parent_id": rid,
                                  "text": "值得在全市推广。"})
    for node in (a, city, b):
        wait_for(lambda n=node: n.record(rid)["sub_records"].get("learned")
                 and n.record(rid)["sub_records"].get("comment"), what="learned+comment at %s" % node.node_id)
    a.execute("edit_experience", {"experience_id": rid, "summary": "七个聚焦（修订）"})
    wait_for(lambda: b.record(rid)["summary"] == "七个聚焦（修订）", what="the edit at district-b")


def test_joint_activity_signups_and_attendance_per_node(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    act = city.execute("plan_activity", {
        "activity_id": "party-day-2025-06", "unit_id": "city-gw",
        "title": "“共学党纪法规、共看警示短片、共上廉政党课、共话清廉感悟”专题党日",
        "theme": "警示教育", "description": "市区联办专题党日活动。",
        "starts_at": "2025-06-20T09:00:00+08:00", "ends_at": "2025-06-20T11:30:00+08:00",
        "location": "市廉政教育基地", "invited_nodes": ["district-a", "district-b"],
        "share": {"sharing": "named", "recipients": []}})
    aid = act["activity_id"]
    assert act["status"] == "announced"
    for node in (a, b):
        wait_for(lambda n=node: n.record(aid), what="the invitation at %s" % node.node_id)
    a.execute("sign_up", {"activity_id": aid, "unit_id": "a-xj", "headcount": 12})
    a.execute("sign_up", {"activity_id": aid, "unit_id": "a-window", "headcount": 6})
    b.execute("sign_up", {"activity_id": aid, "unit_id": "b-xj", "headcount": 8})
    b.execute("change_headcount", {"activity_id": aid, "unit_id": "b-xj", "headcount": 10})
    a.execute("record_attendance", {"activity_id": aid, "units": [
        {"unit_id": "a-xj", "attendees": 11}, {"unit_id": "a-window", "attendees": 6}]})
    b.execute("record_attendance", {"activity_id": aid, "units": [{"unit_id": "b-xj", "attendees": 10}]})
    city.execute("record_attendance", {"activity_id": aid, "units": [{"unit_id": "city-gw", "attendees": 5}]})

    def participation(node):
        r = node.record(aid)
        return r and r.get("participation")
    expected = {"units_signed_up": 3, "headcount": 28,
                "nodes_attended": ["city", "district-a", "district-b"], "attendees": 32}
    for node in (a, city, b):
        wait_for(lambda n=node: participation(n) == expected, what="participation at %s" % node.node_id)
    city.execute("report_outcome", {"activity_id": aid, "summary": "三级联动，入脑入心",
                                    "results": ["参加32人", "形成心得体会40篇"]})
    for node in (a, b):
        wait_for(lambda n=node: n.record(aid)["status"] == "completed", what="the outcome")
    # each participant node's attendance is its own record, owned by that node
    owners = sorted(x["owner"] for x in a.record(aid)["sub_records"]["attendance"])
    assert owners == ["city", "district-a", "district-b"]


def test_a_corrected_attendance_reaches_every_node(network):
    """A correction keeps its sharing level (issue 11, A5): it was emitted node-only, so
    the district showed 39 attendees and the other nodes 40, for ever."""
    a, city, b = network["district-a"], network["city"], network["district-b"]
    aid = city.execute("plan_activity", {
        "activity_id": "correction-day", "unit_id": "city-gw", "title": "警示教育专题党日",
        "theme": "警示教育", "description": "更正出席人数。",
        "starts_at": "2025-07-01T09:00:00+08:00", "ends_at": "2025-07-01T11:00:00+08:00",
        "location": "市廉政教育基地", "invited_nodes": ["district-a", "district-b"],
        "share": {"sharing": "all", "recipients": []}})["activity_id"]
    wait_for(lambda: a.record(aid), what="the activity at district-a")

    def attendees(node):
        r = node.record(aid)
        return r and (r.get("participation") or {}).get("attendees")
    a.execute("record_attendance", {"activity_id": aid, "units": [{"unit_id": "a-xj", "attendees": 40}]})
    for node in (a, city, b):
        wait_for(lambda n=node: attendees(n) == 40, what="40 attendees at %s" % node.node_id)
    a.execute("record_attendance", {"activity_id": aid, "units": [{"unit_id": "a-xj", "attendees": 39}]})
    for node in (a, city, b):
        wait_for(lambda n=node: attendees(n) == 39, what="the correction at %s" % node.node_id)


def dispatch_supervision(node, event_type: str, payload: dict) -> None:
    """What the supervision service's relay publishes on this node's broker."""
    body = {"event_id": str(uuid.uuid4()), "position": 1, "stream_id": "X:%s" % uuid.uuid4().hex,
            "stream_type": event_type.split(".")[0], "version": 1, "type": event_type,
            "schema_version": 1, "payload": payload,
            "metadata": {"node": node.node_id, "correlation_id": str(uuid.uuid4()),
                         "occurred_at": "2025-03-31T08:00:00+00:00"}}
    service = "education" if event_type.startswith(("Education", "DistrictEducation")) else "supervision"
    with Connection(node.local.amqp_uri) as conn:
        Producer(conn.channel(), Exchange("%s.events" % service, type="topic", durable=True)).publish(
            body, routing_key=event_type, serializer="json", delivery_mode=2)


def unit_figures(unit_id, closure, overdue):
    return {"unit_id": unit_id, "as_of": "2025-03-31", "findings_total": 10,
            "rectifications_closed": 9, "closed_on_time": 8, "closure_rate": closure,
            "timeliness_rate": 0.8, "overdue_count": overdue, "escalated_count": 0,
            "risk_high": 1, "risk_medium": 2, "risk_low": 3, "screening_on_time": True,
            "screening_overdue": False, "micro_power_missing": False}


def test_city_compares_districts_without_retyping(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    dispatch_supervision(a, "UnitIndicators.Published", unit_figures("a-xj", 0.9, 1))
    dispatch_supervision(b, "UnitIndicators.Published", unit_figures("b-xj", 0.95, 0))
    dispatch_supervision(a, "EducationIndicators.Published", {
        "unit_id": "a-xj", "period": "2025-03", "warning_education_held": True,
        "checkin_coverage": 0.97, "talks_on_time_rate": None})

    def compared():
        view = city.query("compare_indicators", {"period": "2025-03"})
        return view if len(view["units"]) == 2 and "checkin_coverage" in view["indicators"] else None
    view = wait_for(compared, what="both districts' figures at the city")
    ranking = view["ranking"]["closure_rate"]["units"]
    assert [(r["node"], r["unit_id"], r["rank"]) for r in ranking] == [
        ("district-b", "b-xj", 1), ("district-a", "a-xj", 2)]
    overdue = view["ranking"]["overdue_count"]
    assert overdue["lower_is_better"] and overdue["units"][0]["node"] == "district-b"
    by_unit = {u["unit_id"]: u for u in view["units"]}
    assert by_unit["a-xj"]["unit_name"] == "甲区x局（示范点）"
    assert by_unit["a-xj"]["values"]["warning_education_held"] == 1
    # figures go up to the city only: a district sees its own, not its peer's
    assert_nothing_after(holds(send_marker(a), b), what="district-a's marker at district-b")
    assert [u["node"] for u in b.query("compare_indicators", {"period": "2025-03"})["units"]] == ["district-b"]
    # the same figures again do not make a new report; changed ones update it
    dispatch_supervision(a, "UnitIndicators.Published", unit_figures("a-xj", 0.99, 1))
    wait_for(lambda: {u["unit_id"]: u for u in city.query("compare_indicators", {"period": "2025-03"})["units"]}
             ["a-xj"]["values"]["closure_rate"] == 0.99, what="the updated figure at the city")


def test_exemplar_endorsed_and_district_summary(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    dispatch_supervision(b, "UnitIndicators.Published", unit_figures("b-xj", 0.95, 0))
    wait_for(lambda: "b-xj" in {u["unit_id"] for u in b.query(
        "compare_indicators", {"period": "2025-03"})["units"]}, what="b-xj's figures at district-b")
    ex = b.execute("nominate_exemplar", {
        "exemplar_id": "model-section-1", "unit_id": "b-xj", "category": "model_section",
        "title": "“讲政治、守纪律、负责任、有效率”模范科室", "section": "审批科",
        "description": "以廉肃纪、以廉明德、以廉强责，互比互查成效明显。",
        # b-xj's published figures for 2025-03 are taken as they are (issue 10 item 8);
        # only what nobody publishes is typed, and marked so
        "indicators": {"checkin_coverage": 0.99}, "period": "2025-03",
        "share": {"sharing": "all", "recipients": []}})["exemplar_id"]
    wait_for(lambda: city.record(ex) and a.record(ex), what="the exemplar everywhere")
    city.execute("endorse_exemplar", {"exemplar_id": ex, "comment": "全市推广"})
    a.execute("endorse_exemplar", {"exemplar_id": ex, "comment": "学习借鉴"})
    wait_for(lambda: len(b.record(ex)["sub_records"].get("endorsement", [])) == 2,
             what="both endorsements at the owner")
    content = b.record(ex)["content"]
    assert content["indicators"]["checkin_coverage"] == 0.99
    assert content["indicator_sources"]["checkin_coverage"] == "manual"
    assert content["indicator_sources"]["closure_rate"] == "published"
    assert content["indicators"]["closure_rate"] == 0.95

    summary = {n["node"]: n for n in city.query("district_summary")["nodes"]}
    assert summary["district-b"]["records_shared"].get("exemplar", 0) >= 1
    assert summary["city"]["endorsements"] >= 1
    assert {"district-a", "district-b", "city"} <= set(summary)
