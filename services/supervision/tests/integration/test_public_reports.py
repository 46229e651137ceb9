"""群众监督 (issue 10 #23) through the supervision application on SQLite and PostgreSQL: a
complaint from the public (no personal data required) is queued for inspectors, who turn it
into a finding with source 群众监督 - and so a rectification - or dismiss it; refusals write
nothing. The public page, its rate limit and CSRF: console test_console_practices."""
from __future__ import annotations

import pytest

from services.supervision.domain import PublicReport
from tests.harness.supervision import ADMIN, INSPECTOR, VIEWER, unit_admin
from services.supervision.tests.integration.test_application import must_fail
from shared.errors import RuleViolation


def submit(node, **kw):
    data = {"unit_id": "u1", "kind": "complaint", "content": "窗口办事要求提供无关材料，来回跑了三趟。"}
    data.update(kw)
    return node.run("submit_public_report", data, VIEWER)["report_id"]


def test_a_report_is_converted_or_dismissed_once():
    r = PublicReport.receive("r1", "u1", "report", "某科长收受礼品", None, None, "2024-03-01")
    r.convert("f1", "2024-03-02", "insp")
    with pytest.raises(RuleViolation) as e:
        r.dismiss("重复", "2024-03-02", "insp")
    assert "已转为问题" in str(e.value) and "report_id" in e.value.fields


def test_a_public_report_becomes_a_finding_with_source_public_supervision(any_node):
    node = any_node
    node.district()
    a = submit(node)  # no contact: none is required
    b = submit(node, kind="report", content="执法人员吃拿卡要", post="执法岗", contact="13800000000")
    queue = node.query("list_public_reports", {"unit_id": "district", "status": "received"}, INSPECTOR)
    assert {r["report_id"]: (r["kind"], r["contact"], r["unit_name"]) for r in queue["reports"]} == {
        a: ("complaint", None, "单位u1"), b: ("report", "13800000000", "单位u1")}
    out = node.run("convert_public_report", {"report_id": a, "responsible_role": "unit_head",
                                             "deadline": "2024-03-31", "severity": "general"}, INSPECTOR)
    rect = out["rectification"]  # the rectification the finding opened at once
    assert (rect["unit_id"], rect["source"], rect["source_ref"], rect["status"]) == \
        ("u1", "public_report", a, "open")
    assert rect["description"] == "窗口办事要求提供无关材料，来回跑了三趟。"  # the public's words
    listed = node.query("list_rectifications", {"unit_id": "u1", "source": "public_report"}, INSPECTOR)
    assert [i["rect_id"] for i in listed["items"]] == [out["finding_id"]]
    reports = {r["report_id"]: r for r in node.query("list_public_reports", {"unit_id": "u1"}, ADMIN)["reports"]}
    assert (reports[a]["status"], reports[a]["finding_id"]) == ("converted", out["finding_id"])
    node.run("dismiss_public_report", {"report_id": b, "reason": "反映内容不属于本单位职责"}, INSPECTOR)
    assert node.query("list_public_reports", {"unit_id": "u1", "status": "dismissed"}, INSPECTOR)["reports"][0]["reason"] \
        == "反映内容不属于本单位职责"


def test_refused_public_report_requests_write_nothing(node):
    node.district()
    rid = submit(node)
    err = must_fail(node, 400, "submit_public_report", {"unit_id": "u1", "kind": "gossip", "content": "x"}, VIEWER)
    assert "kind" in err.fields and "投诉" in err.fields["kind"][0]
    must_fail(node, 400, "submit_public_report", {"unit_id": "u1", "kind": "complaint", "content": ""}, VIEWER)
    must_fail(node, 404, "submit_public_report", {"unit_id": "nowhere", "kind": "complaint", "content": "x"}, VIEWER)
    must_fail(node, 403, "list_public_reports", {"unit_id": "u1"}, VIEWER, kind="query")
    must_fail(node, 403, "list_public_reports", {"unit_id": "u1"}, unit_admin("u1"), kind="query")
    must_fail(node, 403, "convert_public_report", {"report_id": rid, "responsible_role": "unit_head",
                                                   "deadline": "2024-03-31"}, unit_admin("u1"))
    must_fail(node, 400, "convert_public_report", {"report_id": rid, "deadline": "2024-03-31"}, INSPECTOR)
    must_fail(node, 400, "dismiss_public_report", {"report_id": rid, "reason": ""}, INSPECTOR)
    must_fail(node, 404, "dismiss_public_report", {"report_id": "nope", "reason": "无"}, INSPECTOR)
    node.run("dismiss_public_report", {"report_id": rid, "reason": "无法核实"}, INSPECTOR)
    err = must_fail(node, 409, "convert_public_report", {"report_id": rid, "responsible_role": "unit_head",
                                                         "deadline": "2024-03-31"}, INSPECTOR)
    assert "不予受理" in str(err)
