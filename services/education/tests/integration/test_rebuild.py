"""Education's read models rebuilt in one pass (``shared.projections.rebuild_many``, as
``qinglian projections rebuild --service education`` runs it) hold exactly what the live
projections wrote - the JSON columns (audience, tags, materials, details, item ids, the
district's figures, the nodes a session is shared with) included, on SQLite and on
PostgreSQL by statements and by COPY."""
import pytest

from tests.harness.education import Node, unit_admin, utc
from tests.harness.rebuild import every_read_model, wreck_and_rebuild


def _a_month(node):
    node.tree()
    node.run("add_content", {"item_id": "s1", "kind": "slogan", "title": "标语", "text": "清风",
                             "tags": {"risk_points": ["收受礼品"]}})
    node.run("add_content", {"item_id": "t1", "kind": "short_text", "title": "短文", "text": "廉"})
    node.run("set_unit_profile", {"unit_id": "mkt", "business_types": ["市场监管"], "posts": ["窗口受理"]},
             unit_admin("mkt"))
    node.run("rotate_publicity_all")
    node.run("register_external_case", {"origin_node": "city", "record_id": "c1", "title": "某所长收受礼品案",
                                        "tags": {"risk_points": ["收受礼品"]}})
    planned = node.run("plan_session", {
        "kind": "updown_joint_study", "title": "上下联学", "organiser_unit_id": "dist",
        "scheduled_at": "2026-01-12T01:00:00Z", "audience": {"unit_ids": ["fin", "mkt"], "posts": ["科长"]},
        "materials": [{"title": "党纪处分条例", "ref": "doc://regs"}], "share_with_nodes": ["district-b"]})
    node.run("record_session", {
        "kind": "micro_party_lesson", "title": "廉政微党课", "organiser_unit_id": "fin",
        "scheduled_at": "2026-01-09T01:00:00Z", "speaker": {"post": "预算科科长"},
        "attendance": {"headcount": 18}, "discussion": "议", "leader_comment": "评",
        "tags": {"risk_points": ["预算审批"]}, "extra_materials": [{"title": "课件", "ref": "doc://ppt"}]})
    node.clock.set(2026, 1, 12, 3, 0)
    node.run("hold_session", {"session_id": planned["session_id"], "attendance": {"headcount": 60}})
    node.clock.set(2026, 2, 1, 3, 0)
    node.run("publish_indicators", {"period": "2026-01"})
    return planned["session_id"]


@pytest.mark.parametrize("database,copy", [("sqlite_url", False), ("pg_url", False), ("pg_url", True)],
                         ids=["sqlite", "postgresql-statements", "postgresql-copy"])
def test_rebuilt_read_models_equal_the_live_ones(request, database, copy):
    node = Node(request.getfixturevalue(database), utc(2026, 1, 10, 1, 0))
    try:
        session_id = _a_month(node)
        rt = node.rt
        live = every_read_model(rt)
        assert live["edu_sessions"] and live["edu_rotations"] and live["edu_shared_sessions"]
        assert live["edu_district_indicators"] and live["edu_external_refs"] and live["edu_unit_profiles"]
        wreck_and_rebuild(rt, copy)
        assert every_read_model(rt) == live
        session = node.ask("get_session", {"session_id": session_id})
        assert session["audience"]["unit_ids"] == ["fin", "mkt"] and session["shared_with_nodes"] == ["district-b"]
    finally:
        node.close()

