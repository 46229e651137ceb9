"""Refusals reach office workers in Chinese: one representative refused request per service,
sent over HTTP to the running service, must answer a message (and field messages) with
Chinese in it and no English word. Ids the caller sent are the only Latin text allowed,
so a new English message in a domain or application layer fails here.
"""
from __future__ import annotations

import re

from nameko.testing.utils import find_free_port, get_extension

from shared.service import EventSourcing
from tests.harness import Api, wait_for

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORD = re.compile(r"[A-Za-z]{4,}")


def _texts(body: dict) -> list[str]:
    """The message and every field message of an error body."""
    texts = [body["message"]]
    for messages in (body.get("fields") or {}).values():
        texts.extend(messages if isinstance(messages, list) else [str(messages)])
    return texts


def assert_chinese(status: int, body, expected_status: int, sent_ids: tuple[str, ...]):
    assert status == expected_status, body
    for text in _texts(body):
        assert CJK.search(text), (text, body)
        rest = text
        for sent in sent_ids:  # the caller's own ids may appear as given
            rest = rest.replace(sent, "")
        assert not ENGLISH_WORD.search(rest), (text, body)


def _start(container_factory, service: str, node_config, token: str, port=None):
    import importlib
    module = importlib.import_module("services.%s.service" % service)
    cls = next(v for v in vars(module).values()
               if isinstance(v, type) and getattr(v, "name", None) == service
               and getattr(v, "app", None) is not None)
    config = dict(node_config)
    if port is not None:
        config["WEB_SERVER_ADDRESS"] = "127.0.0.1:%d" % port
    container = container_factory(cls, config)
    container.start()
    runtime = get_extension(container, EventSourcing).runtime
    api = Api(config["WEB_SERVER_ADDRESS"], token)
    wait_for(lambda: api.raw_get("/health/ready").status_code == 200, timeout=30)
    return api, runtime


def _head(runtime) -> int:
    with runtime.read() as conn:
        return runtime.store.head(conn)


def test_each_service_refuses_in_chinese(container_factory, node_config, admin_token, make_user):
    node_config["QINGLIAN_FEDERATION"] = "off"
    # one node, four service processes; all listen before the units are registered
    (units, units_rt), (supervision, sup_rt), (education, edu_rt), (exchange, ex_rt) = [
        _start(container_factory, service, node_config, admin_token, find_free_port())
        for service in ("units", "supervision", "education", "exchange")]
    for unit_id, parent in (("qu-9", None), ("dw-1", "qu-9")):
        status, body = units.post("register_unit", {
            "unit_id": unit_id, "name": "单位" + unit_id, "kind": "government_dept",
            "level": "district" if parent is None else "unit", "parent_id": parent})
        assert status == 201, body
    wait_for(lambda: supervision.get("list_rectifications", {"unit_id": "dw-1"})[0] == 200
             and education.get("list_sessions", {"unit_id": "dw-1"})[0] == 200,
             timeout=30)  # their mirrors of the unit tree have the units

    # units: a unit id that is taken (409, a field message too)
    head = _head(units_rt)
    status, body = units.post("register_unit", {"unit_id": "dw-1", "name": "重复", "kind": "government_dept",
                                                 "level": "unit", "parent_id": "qu-9"})
    assert_chinese(status, body, 409, ("dw-1",))
    assert body["error"] == "conflict" and body["fields"] == {"unit_id": ["已被占用"]}
    assert _head(units_rt) == head  # nothing was written

    # supervision: a unit-admin asks for what only inspectors do (roles named in Chinese)
    ua = make_user("ua-1", ["unit-admin"], "dw-1")
    head = _head(sup_rt)
    status, body = supervision.post("plan_inspection", {"unit_id": "dw-1", "title": "年度检查",
                                                        "planned_on": "2026-03-05"}, token=ua)
    assert_chinese(status, body, 403, ("dw-1",))
    assert "单位管理员" in body["message"] and body["error"] == "forbidden"
    # and a rectification that does not exist
    status, body = supervision.post("verify_rectification", {"rect_id": "zg-7"})
    assert_chinese(status, body, 404, ("zg-7",))
    assert _head(sup_rt) == head

    # education: a session cancelled twice; its status is named by its label, not its code
    status, body = education.post("plan_session", {
        "session_id": "hd-1", "kind": "theme_joint_study", "title": "主题联学",
        "organiser_unit_id": "dw-1", "scheduled_at": "2026-03-05T09:30:00+08:00"})
    assert status == 201, body
    assert education.post("cancel_session", {"session_id": "hd-1", "reason": "改期"})[0] == 200
    head = _head(edu_rt)
    status, body = education.post("cancel_session", {"session_id": "hd-1", "reason": "再次取消"})
    assert_chinese(status, body, 409, ("hd-1",))
    assert "已取消" in body["message"] and body["error"] == "rule_violation"
    assert _head(edu_rt) == head

    # exchange: an experience of a unit this node does not have
    head = _head(ex_rt)
    status, body = exchange.post("draft_experience", {
        "experience_id": "jy-1", "unit_id": "wu-3", "title": "经验", "summary": "摘要",
        "body": "正文", "business_type": "审批"})
    assert_chinese(status, body, 404, ("jy-1", "wu-3"))
    assert _head(ex_rt) == head


def test_every_screening_cadence_has_its_label():
    """The cadences are configured in settings and named in messages by the domain's labels."""
    from services.supervision.domain import CADENCES
    from services.supervision.settings import CADENCE_MONTHS
    assert tuple(CADENCES) == tuple(CADENCE_MONTHS)
