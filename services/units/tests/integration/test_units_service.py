"""Every units command end to end through a running nameko service, over HTTP and RPC."""
import pytest

from shared.contracts import validate_message
from shared.errors import BadInput, ConcurrencyError, Forbidden, NotFound, RuleViolation
from tests.harness import wait_for


TREE = [
    {"unit_id": "qu", "name": "某区区直机关工委", "kind": "district_authority", "level": "district", "parent_id": None},
    {"unit_id": "xj", "name": "x局", "kind": "window_unit", "level": "unit", "parent_id": "qu"},
    {"unit_id": "yj", "name": "y局", "kind": "law_enforcement", "level": "unit", "parent_id": "qu"},
    {"unit_id": "xj-office", "name": "办公室", "kind": "section", "level": "section", "parent_id": "xj"},
    {"unit_id": "xj-station", "name": "某基层站所", "kind": "grassroots_station", "level": "section", "parent_id": "xj"},
    {"unit_id": "yj-team", "name": "执法大队", "kind": "section", "level": "section", "parent_id": "yj"},
]


def build_tree(api):
    for u in TREE:
        status, body = api.post("register_unit", u)
        assert status == 201, body


def test_register_and_list_the_tree_over_http(units_node):
    api = units_node.api
    build_tree(api)
    status, body = api.get("list_units", {"unit_id": "qu"})
    assert status == 200
    assert [u["unit_id"] for u in body["units"]] == ["qu", "xj", "xj-office", "xj-station", "yj", "yj-team"]
    station = next(u for u in body["units"] if u["unit_id"] == "xj-station")
    assert station["path"] == "/qu/xj/xj-station/" and station["depth"] == 2


def test_every_unit_command_over_rpc(units_node):
    with units_node.rpc() as n:
        for u in TREE:
            n.units.register_unit(u, actor=units_node.admin)
        assert n.units.rename_unit({"unit_id": "yj", "name": "y执法局"}, actor=units_node.admin)["name"] == "y执法局"
        moved = n.units.move_unit({"unit_id": "yj-team", "parent_id": "xj"}, actor=units_node.admin)
        assert moved["path"] == "/qu/xj/yj-team/"
        assert n.units.set_demonstration_site({"unit_id": "xj", "demonstration_site": True},
                                              actor=units_node.admin)["demonstration_site"] is True
        assert n.units.set_pilot_flags({"unit_id": "xj", "pilot_flags": ["清廉便民服务"]},
                                       actor=units_node.admin)["pilot_flags"] == ["清廉便民服务"]
        n.units.register_unit({"unit_id": "tmp", "name": "临时", "kind": "section", "level": "section",
                               "parent_id": "yj"}, actor=units_node.admin)
        assert n.units.deactivate_unit({"unit_id": "tmp", "reason": "撤并"}, actor=units_node.admin)["active"] is False
        assert "tmp" not in [u["unit_id"] for u in n.units.list_units({"unit_id": "qu"}, actor=units_node.admin)["units"]]
        unit = n.units.get_unit({"unit_id": "xj"}, actor=units_node.admin)
        assert unit["demonstration_site"] and unit["pilot_flags"] == ["清廉便民服务"]
        with pytest.raises(RuleViolation):
            n.units.deactivate_unit({"unit_id": "xj", "reason": "x"}, actor=units_node.admin)  # has children
        with pytest.raises(RuleViolation):
            n.units.move_unit({"unit_id": "xj", "parent_id": "xj-office"}, actor=units_node.admin)  # a cycle


def test_people_roles_and_promotion_event(units_node):
    api = units_node.api
    build_tree(api)
    assert api.post("register_person", {"person_id": "p1", "name": "张三", "unit_id": "xj",
                                         "post": "科员", "young_cadre": True})[0] == 201
    status, body = api.post("assign_role", {"person_id": "p1", "role": "discipline_member", "part_time": True})
    assert status == 200 and body["roles"] == ["discipline_member"]
    assert api.post("assign_role", {"person_id": "p1", "role": "discipline_member"})[0] == 409
    status, body = api.post("promote_person", {"person_id": "p1", "new_post": "副科长", "unit_id": "xj",
                                                "effective_on": "2026-11-01"})
    assert status == 200 and body["post"] == "副科长"
    status, body = api.get("list_people", {"unit_id": "xj"})
    assert body["people"][0]["part_time_roles"] == ["discipline_member"]
    assert body["people"][0]["last_promoted_on"] == "2026-11-01"
    assert api.post("remove_role", {"person_id": "p1", "role": "discipline_member"})[1]["roles"] == []
    # the promotion goes out on units.events for education to react to
    msgs = units_node.captured.drain(lambda m: any(x["type"] == "Person.Promoted" for x in m))
    promoted = next(m for m in msgs if m["type"] == "Person.Promoted")
    assert promoted["payload"]["new_post"] == "副科长" and promoted["metadata"]["actor"] == "admin"


def test_documents_are_versioned(units_node):
    api = units_node.api
    build_tree(api)
    items = [{"text": "落实主体责任", "owner_post": "党组书记"}]
    status, body = api.post("draft_document", {"doc_id": "tl-2026", "unit_id": "xj", "kind": "task_list",
                                                "title": "2026年清廉机关建设任务清单", "items": items})
    assert status == 201 and body["revision"] == 1
    status, body = api.post("revise_document", {"doc_id": "tl-2026", "title": "2026年任务清单（修订）",
                                                 "items": items + [{"text": "廉政风险排查"}], "note": "增加排查"})
    assert body["revision"] == 2
    assert api.post("revise_document", {"doc_id": "tl-2026", "title": "2026年任务清单（修订）",
                                         "items": items + [{"text": "廉政风险排查"}], "note": "同上"})[0] == 409
    status, doc = api.get("get_document", {"doc_id": "tl-2026"})
    assert doc["revision"] == 2 and len(doc["items"]) == 2
    status, hist = api.get("history", {"stream": "ResponsibilityDocument", "id": "tl-2026"})
    assert [e["type"] for e in hist["events"]] == ["ResponsibilityDocument.Drafted",
                                                   "ResponsibilityDocument.Revised"]
    assert api.get("list_documents", {"unit_id": "xj", "kind": "task_list"})[1]["documents"][0]["doc_id"] == "tl-2026"


def test_letter_coverage_reaches_grassroots_stations(units_node):
    api = units_node.api
    build_tree(api)
    for target, issuer in (("xj", "qu"), ("yj", "qu"), ("xj-office", "xj"), ("xj-station", "xj")):
        status, body = api.post("issue_letter", {"period": "2026", "issuer_unit_id": issuer, "target_unit_id": target,
                                                  "signatory_role": "party_secretary", "content": "清廉机关建设责任书"})
        assert status == 201, body
    for target in ("xj", "yj", "xj-office"):
        assert api.post("sign_letter", {"period": "2026", "target_unit_id": target, "signed_on": "2026-02-01",
                                         "signatory_role": "party_secretary"})[0] == 200
    status, cov = api.get("letter_coverage", {"unit_id": "qu", "period": "2026"})
    assert (cov["total"], cov["signed"]) == (5, 3)
    assert {u["unit_id"]: u["letter"] for u in cov["unsigned"]} == {"xj-station": "issued", "yj-team": "none"}
    assert cov["by_kind"]["grassroots_station"] == {"total": 1, "signed": 0}
    # rules: sign twice, sign by the wrong role, issue upward
    assert api.post("sign_letter", {"period": "2026", "target_unit_id": "xj", "signed_on": "2026-02-01",
                                     "signatory_role": "party_secretary"})[0] == 409
    assert api.post("sign_letter", {"period": "2026", "target_unit_id": "xj-station", "signed_on": "2026-02-01",
                                     "signatory_role": "cadre"})[0] == 409
    assert api.post("issue_letter", {"period": "2026", "issuer_unit_id": "xj", "target_unit_id": "yj-team",
                                      "signatory_role": "party_secretary", "content": "x"})[0] == 409
    assert api.post("revoke_letter", {"period": "2026", "target_unit_id": "xj-station", "reason": "重签"})[0] == 200
    assert api.get("letter_coverage", {"unit_id": "xj", "period": "2026"})[1]["coverage"] == 0.5


def test_micro_power_list_publish_and_public_view(units_node):
    api = units_node.api
    build_tree(api)
    content = {"duties": ["受理行政许可申请"], "power_boundary": "仅限法定条件审查",
               "steps": [{"name": "受理", "responsible_post": "窗口受理岗"},
                         {"name": "审核", "responsible_post": "审核岗", "time_limit": "3个工作日"}]}
    assert api.post("draft_micro_power", {"unit_id": "xj", "post": "窗口受理岗", "content": content})[0] == 201
    # nothing published yet: the public sees an empty list, no draft
    status, public = api.get("published_micro_power", {"unit_id": "xj"}, token=None)
    assert status == 200 and public["lists"] == []
    assert api.post("publish_micro_power", {"unit_id": "xj", "post": "窗口受理岗",
                                             "published_on": "2026-03-01"})[1]["published_version"] == 1
    assert api.post("publish_micro_power", {"unit_id": "xj", "post": "窗口受理岗",
                                             "published_on": "2026-03-02"})[0] == 409
    edited = dict(content, power_boundary="仅限法定条件审查，不得附加条件")
    assert api.post("edit_micro_power", {"unit_id": "xj", "post": "窗口受理岗", "content": edited})[0] == 200
    status, public = api.get("published_micro_power", {"unit_id": "xj"}, token=None)
    assert public["lists"][0]["power_boundary"] == "仅限法定条件审查"  # the draft is not public
    assert public["lists"][0]["steps"][1]["responsible_post"] == "审核岗"
    # the private draft view needs a token
    assert api.get("get_micro_power", {"unit_id": "xj", "post": "窗口受理岗"}, token=None)[0] == 401


def test_unit_tree_as_of_a_past_position(units_node):
    api = units_node.api
    build_tree(api)
    before = units_node.head()
    api.post("move_unit", {"unit_id": "yj-team", "parent_id": "xj"})
    api.post("rename_unit", {"unit_id": "xj", "name": "x局（新）"})
    status, old = api.get("unit_tree_as_of", {"unit_id": "qu", "position": before})
    assert status == 200
    team = next(u for u in old["units"] if u["unit_id"] == "yj-team")
    assert team["path"] == "/qu/yj/yj-team/"
    assert next(u for u in old["units"] if u["unit_id"] == "xj")["name"] == "x局"
    assert api.get("unit_tree_as_of", {"unit_id": "qu"})[0] == 400  # neither position nor at


# -- bad input, 403, 404, 409: clear errors and nothing written ---------------------------------
BAD = [
    ("register_unit", {"unit_id": "a", "name": "A", "kind": "nonsense", "level": "unit", "parent_id": "qu"}, "kind"),
    ("register_unit", {"name": "A", "level": "unit", "parent_id": "qu"}, "kind"),
    ("register_unit", {"name": "A" * 201, "kind": "section", "level": "unit", "parent_id": "qu"}, "name"),
    ("register_unit", {"name": "A", "kind": "section", "level": "unit", "parent_id": "qu", "colour": "red"}, "colour"),
    ("register_unit", {"unit_id": "bad id!", "name": "A", "kind": "section", "level": "unit", "parent_id": "qu"}, "unit_id"),
    ("rename_unit", {"unit_id": "xj"}, "name"),
    ("set_pilot_flags", {"unit_id": "xj", "pilot_flags": "not a list"}, "pilot_flags"),
    ("register_person", {"name": "", "unit_id": "xj", "post": "x"}, "name"),
    ("promote_person", {"person_id": "p", "new_post": "x", "unit_id": "xj", "effective_on": "01/11/2026"}, "effective_on"),
    ("draft_document", {"unit_id": "xj", "kind": "task_list", "title": "t", "items": []}, "items"),
    ("issue_letter", {"period": "twenty", "issuer_unit_id": "qu", "target_unit_id": "xj",
                      "signatory_role": "party_secretary", "content": "x"}, "period"),
    ("draft_micro_power", {"unit_id": "xj", "post": "p", "content": {"duties": [], "power_boundary": "b",
                                                                       "steps": []}}, "content"),
]


@pytest.mark.parametrize("command,data,field", BAD, ids=[b[0] + ":" + b[2] for b in BAD])
def test_bad_input_is_400_with_field_messages_and_writes_nothing(units_node, command, data, field):
    build_tree(units_node.api)
    head = units_node.head()
    status, body = units_node.api.post(command, data)
    assert status == 400, body
    assert body["error"] == "bad_input" and field in body["fields"]
    assert units_node.head() == head


def test_malformed_json_and_unknown_command(units_node):
    status, body = units_node.api.post("register_unit", raw="{not json")
    assert status == 400 and body["error"] == "bad_input"
    assert units_node.api.post("no_such_command", {})[0] == 404
    assert units_node.api.get("no_such_query")[0] == 404
    assert units_node.api.post("register_unit", TREE[0], token="ql_wrong")[0] == 401
    assert units_node.head() == 0


def test_bad_input_over_rpc_is_a_typed_error(units_node):
    with units_node.rpc() as n:
        with pytest.raises(BadInput) as exc:
            n.units.register_unit({"name": "x", "kind": "?", "level": "unit"}, actor=units_node.admin)
        assert "kind" in exc.value.fields
        with pytest.raises(NotFound):
            n.units.get_unit({"unit_id": "nope"}, actor=units_node.admin)
    assert units_node.head() == 0


def test_not_found_and_conflicts(units_node):
    api = units_node.api
    build_tree(api)
    assert api.post("rename_unit", {"unit_id": "ghost", "name": "x"})[0] == 404
    status, body = api.post("register_unit", TREE[1])
    assert status == 409 and body["fields"] == {"unit_id": ["已被占用"]}
    head = units_node.head()
    # If-Match: an edit made on a stale version is refused
    status, body = api.post("rename_unit", {"unit_id": "xj", "name": "新名"}, if_match=5)
    assert status == 409 and body["error"] == "version_conflict"
    assert units_node.head() == head
    assert api.post("rename_unit", {"unit_id": "xj", "name": "新名"}, if_match=1)[0] == 200
    with units_node.rpc() as n:
        with pytest.raises(ConcurrencyError):
            n.units.rename_unit({"unit_id": "xj", "name": "又名"}, actor=units_node.admin, expected_version=1)


def test_roles_and_unit_admin_subtree(units_node, make_user):
    api = units_node.api
    build_tree(api)
    xj_admin = make_user("xj-admin", ["unit-admin"], unit_scope="xj")
    viewer = make_user("viewer", ["viewer"])
    head = units_node.head()
    # inside the subtree: allowed
    assert api.post("register_unit", {"unit_id": "xj-new", "name": "新科室", "kind": "section",
                                       "level": "section", "parent_id": "xj"}, token=xj_admin)[0] == 201
    assert api.post("rename_unit", {"unit_id": "xj-office", "name": "综合办"}, token=xj_admin)[0] == 200
    head = units_node.head()
    # outside: 403 and nothing written
    for command, data in [
        ("register_unit", {"name": "越权", "kind": "section", "level": "section", "parent_id": "yj"}),
        ("rename_unit", {"unit_id": "yj-team", "name": "越权"}),
        ("rename_unit", {"unit_id": "qu", "name": "越权"}),  # the parent of their scope
        ("move_unit", {"unit_id": "xj-office", "parent_id": "yj"}),  # target outside
        ("set_demonstration_site", {"unit_id": "xj", "demonstration_site": True}),  # node-admin only
        ("register_person", {"name": "李四", "unit_id": "yj", "post": "科员"}),
    ]:
        status, body = api.post(command, data, token=xj_admin)
        assert status == 403, (command, body)
    assert api.post("rename_unit", {"unit_id": "xj", "name": "只读"}, token=viewer)[0] == 403
    assert units_node.head() == head
    # viewers read
    assert api.get("get_unit", {"unit_id": "xj"}, token=viewer)[0] == 200
    with units_node.rpc() as n:
        with pytest.raises(Forbidden):
            n.units.rename_unit({"unit_id": "yj", "name": "x"}, actor={"token": xj_admin})


def test_every_published_message_matches_the_contracts(units_node):
    api = units_node.api
    build_tree(api)
    api.post("register_person", {"person_id": "p1", "name": "张三", "unit_id": "xj", "post": "科员"})
    api.post("promote_person", {"person_id": "p1", "new_post": "副科长", "unit_id": "xj", "effective_on": "2026-11-01"})
    api.post("draft_micro_power", {"unit_id": "xj", "post": "岗", "content": {
        "duties": ["d"], "power_boundary": "b", "steps": [{"name": "s", "responsible_post": "岗"}]}})
    api.post("publish_micro_power", {"unit_id": "xj", "post": "岗", "published_on": "2026-01-01"})
    head = units_node.head()
    msgs = units_node.captured.drain(lambda m: len(m) >= head)
    assert len(msgs) >= head
    for body, key in zip(msgs, units_node.captured.routing_keys):
        validate_message(body)
        assert key == body["type"]
    assert sorted({m["position"] for m in msgs}) == list(range(1, head + 1))


def test_metrics_count_commands_by_outcome(units_node):
    api = units_node.api
    build_tree(api)
    api.post("rename_unit", {"unit_id": "ghost", "name": "x"})
    text = wait_for(lambda: (lambda t: t if "qinglian_relay_published_total" in t else None)(
        api.raw_get("/metrics").text))
    assert 'qinglian_commands_total{command="register_unit",outcome="ok",service="units"} 6.0' in text
    assert 'qinglian_commands_total{command="rename_unit",outcome="not_found",service="units"} 1.0' in text
    assert 'qinglian_events_appended_total{service="units"} 6.0' in text
    assert "qinglian_command_seconds_bucket" in text and "qinglian_relay_lag_events" in text


def test_the_same_commands_on_postgresql(pg_units_node):
    api = pg_units_node.api
    build_tree(api)
    assert api.post("move_unit", {"unit_id": "yj-team", "parent_id": "xj"})[0] == 200
    status, body = api.get("list_units", {"unit_id": "xj"})
    assert [u["unit_id"] for u in body["units"]] == ["xj", "xj-office", "xj-station", "yj-team"]
    assert api.post("register_unit", TREE[1])[0] == 409


def test_unit_admin_on_a_record_that_does_not_exist_gets_404_not_a_pass(units_node, make_user):
    build_tree(units_node.api)
    xj_admin = make_user("xj-admin2", ["unit-admin"], unit_scope="xj")
    head = units_node.head()
    # the scope is derived from the person's unit: no person, no unit, no pass
    status, body = units_node.api.post("assign_role", {"person_id": "ghost", "role": "cadre"}, token=xj_admin)
    assert status == 404, body
    assert units_node.head() == head
