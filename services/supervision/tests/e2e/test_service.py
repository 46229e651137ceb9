"""The supervision service end to end: a real nameko runner with the units service beside
it, a real RabbitMQ vhost, SQLite files or PostgreSQL - over RPC and over HTTP."""
from __future__ import annotations

import hashlib
import io
import json
import re
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from nameko.testing.utils import find_free_port, get_extension
from openpyxl import load_workbook
from sqlalchemy import select

from services.supervision.service import SupervisionService
from tests.harness.supervision import Client, Clock
from services.units.service import UnitsService
from shared.aggregate import EVENT_TYPES
from shared.auth import Actor
from shared.contracts import validate_message
from shared.errors import BadInput, NotFound
from shared.service import EventSourcing
from shared.store import tracking
from tests.harness import Api, Capture, wait_for, wait_units_known

NODE = "district-test"
TREE = [
    {"unit_id": "qu", "name": "某区区直机关工委", "kind": "district_authority", "level": "district",
     "parent_id": None},
    {"unit_id": "u1", "name": "x局", "kind": "government_dept", "level": "unit", "parent_id": "qu"},
    {"unit_id": "u2", "name": "y局", "kind": "government_dept", "level": "unit", "parent_id": "qu"},
    {"unit_id": "u1-s1", "name": "x局办公室", "kind": "section", "level": "section", "parent_id": "u1"},
    {"unit_id": "w1", "name": "政务服务中心", "kind": "window_unit", "level": "unit", "parent_id": "qu"},
]
USERS = {  # user id -> roles, unit scope
    "insp-1": (["inspector"], None), "insp-2": (["inspector"], None),
    "ua-u1": (["unit-admin"], "u1"), "ua-u2": (["unit-admin"], "u2"), "viewer": (["viewer"], None),
}
EVIDENCE = [{"path": "ab/" + "ab" * 32 + ".pdf", "sha256": "ab" * 32, "size_bytes": 10,
             "description": "整改报告"}]


class Running:
    """Units + supervision running on one node, the tree registered and mirrored."""

    def __init__(self, container, config, users):
        self.config = config
        self.users = users
        self.container = container
        self.runtime = get_extension(self.container, EventSourcing).runtime
        self.clock = Clock("2024-03-01")
        self.runtime.clock = self.clock
        self.api = Api(config["WEB_SERVER_ADDRESS"], users["admin"][1])

    def rpc(self):
        return ClusterRpcProxy(self.config, timeout=30)

    def head(self) -> int:
        with self.runtime.read() as c:
            return self.runtime.store.head(c)

    def events(self, event_type=None):
        with self.runtime.read() as c:
            evs = list(self.runtime.store.iter_all(c))
        return [e for e in evs if event_type in (None, e.event_type)]

    def client(self, transport):
        return Client(transport, self.config, self.users)

    def actor(self, who) -> dict:
        """``who`` as an RPC actor: their token, the proof the service checks."""
        return {"token": self.users[who][1]}


@pytest.fixture
def running(container_factory, node_config, admin_token, make_user, request):
    extra = getattr(request, "param", {}) or {}
    if extra.get("pg"):
        node_config["SUPERVISION_DATABASE_URL"] = request.getfixturevalue("pg_url")
    node_config.update(extra.get("config", {}))
    users = {"admin": (Actor("admin", ("node-admin",), None, NODE), admin_token)}
    for uid, (roles, scope) in USERS.items():
        users[uid] = (Actor(uid, tuple(roles), scope, NODE), make_user(uid, roles, scope))
    # one node, two service processes: same broker and var folder, each its own HTTP port
    units_config = dict(node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
    container_factory(UnitsService, units_config).start()
    container = container_factory(SupervisionService, node_config)
    container.start()
    node = Running(container, node_config, users)
    admin = node.actor("admin")
    with node.rpc() as n:
        for u in TREE:
            n.units.register_unit(u, actor=admin)
        # the mirror and the reaction both follow from units' events
        def mirrored():
            try:
                return n.supervision.screening_status({"unit_id": "qu"}, actor=admin)["total"] == 3
            except NotFound:  # the mirror has not seen the root yet
                return False
        wait_for(mirrored, timeout=20)
    # and the mirror holds every unit (u1-s1 has no schedule to wait for): a unit it held
    # back until its parent arrived would otherwise be appended under a test's count
    wait_units_known(node.runtime, [u["unit_id"] for u in TREE], timeout=20)
    return node


def test_units_events_give_schedules_and_flag_missing_micro_power_lists(running):
    admin = running.actor("admin")
    with running.rpc() as n:
        status = n.supervision.screening_status({"unit_id": "qu"}, actor=admin)
        assert {i["unit_id"]: i["due_on"] for i in status["items"]} == {
            "u1": "2024-03-31", "u2": "2024-03-31", "w1": "2024-03-31"}
        gaps = n.supervision.micro_power_gaps({"unit_id": "qu"}, actor=admin)
        assert [g["unit_id"] for g in gaps["missing"]] == ["w1"]
        content = {"duties": ["受理"], "power_boundary": "法定条件", "steps": [
            {"name": "受理", "responsible_post": "窗口受理岗"}]}
        n.units.draft_micro_power({"unit_id": "w1", "post": "窗口受理岗", "content": content}, actor=admin)
        n.units.publish_micro_power({"unit_id": "w1", "post": "窗口受理岗",
                                     "published_on": "2024-03-01"}, actor=admin)
        wait_for(lambda: not n.supervision.micro_power_gaps({"unit_id": "qu"}, actor=admin)["missing"],
                 timeout=20)
        n.units.rename_unit({"unit_id": "u2", "name": "y执法局"}, actor=admin)
        wait_for(lambda: n.supervision.unit_view({"unit_id": "u2"}, actor=admin)["unit"]["name"]
                 == "y执法局", timeout=20)


LADDER = {"SUPERVISION_ESCALATION_LADDER": json.dumps([
    {"level": "owner_unit", "after_days": 0}, {"level": "unit_head", "after_days": 5},
    {"level": "district_office", "after_days": 10}])}


@pytest.mark.parametrize("transport,running", [
    ("rpc", {"config": LADDER}),
    ("http", {"config": LADDER, "pg": True}),
], indirect=["running"], ids=["rpc-sqlite", "http-postgresql"])
def test_rectification_lifecycle_rules_and_ladder(running, transport):
    with running.client(transport) as c:
        status, f = c.cmd("record_finding", {
            "unit_id": "u1", "source": "department_to_department", "source_ref": "y局互查",
            "description": "公务用车登记不全", "responsible_role": "unit_head",
            "deadline": "2024-03-10"}, "insp-1")
        assert status == 200, f
        rid = f["rect_id"]

        def refused(expect, name, data, who):
            head = running.head()
            status, body = c.cmd(name, data, who)
            assert status == expect, (name, body)
            assert running.head() == head, "%s wrote although refused" % name
            return body

        assert "尚未提交整改材料" in refused(409, "verify_rectification", {"rect_id": rid}, "insp-1")["message"]
        refused(403, "submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, "ua-u2")
        refused(403, "submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, "viewer")
        body = refused(400, "submit_evidence", {"rect_id": rid, "evidence": [
            {"path": "/abs", "sha256": "nothex"}], "extra": 1}, "ua-u1")
        assert set(body["fields"]) == {"evidence", "extra"}
        refused(404, "submit_evidence", {"rect_id": "nope", "evidence": EVIDENCE}, "ua-u1")
        assert c.cmd("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, "ua-u1")[0] == 200
        refused(403, "verify_rectification", {"rect_id": rid}, "ua-u1")
        refused(409, "submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, "ua-u1")
        assert c.cmd("reject_rectification", {"rect_id": rid, "reason": "材料不全"}, "insp-1")[0] == 200
        assert c.get("get_rectification", {"rect_id": rid}, "ua-u1")[1]["status"] == "open"
        status, _ = c.get("get_rectification", {"rect_id": rid}, "ua-u2")
        assert status == 403
        # the clock moves; the timer's command detects and escalates, once per step
        running.clock.set("2024-03-16")
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            first = tick()
        assert (first["overdue_detected"], first["escalations"]) == (1, 2)
        head = running.head()
        assert c.cmd("detect_overdue", {}, "insp-1")[1]["escalations"] == 0
        assert running.head() == head
        status, listed = c.get("overdue_list", {"unit_id": "qu"}, "viewer")
        assert [(i["rect_id"], i["escalation_level"]) for i in listed["items"]] == [(rid, "unit_head")]
        running.clock.set("2024-03-25")
        assert c.cmd("detect_overdue", {}, "admin")[1]["escalations"] == 1
        esc = c.get("get_rectification", {"rect_id": rid}, "insp-2")[1]["escalations"]
        assert [e["level"] for e in esc] == ["owner_unit", "unit_head", "district_office"]
        assert esc[2]["target"] == {"unit_id": "qu"}
        # as of the day of the first detection
        status, past = c.get("overdue_list", {"unit_id": "qu", "as_of": "2024-03-16"}, "viewer")
        assert status == 200 and past["items"][0]["escalation_level"] == "unit_head"
        assert past["items"][0]["days_overdue"] == 6
        # past the last rung nothing more is escalated, but the count goes on (not 15 for ever)
        running.clock.set("2025-01-14")
        assert c.cmd("detect_overdue", {}, "admin")[1]["escalations"] == 0
        listed = c.get("overdue_list", {"unit_id": "qu"}, "viewer")[1]["items"]
        assert [(i["escalation_level"], i["days_overdue"]) for i in listed] == [
            ("district_office", 310)]
        assert c.get("get_rectification", {"rect_id": rid}, "insp-2")[1]["days_overdue"] == 310
        assert [i["days_overdue"] for i in c.get("list_rectifications", {
            "unit_id": "qu", "include_subtree": True}, "viewer")[1]["items"]] == [310]
        running.clock.set("2024-03-25")
        assert c.cmd("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE}, "ua-u1")[0] == 200
        assert c.cmd("verify_rectification", {"rect_id": rid, "note": "销号"}, "insp-2")[0] == 200
        status, r = c.get("get_rectification", {"rect_id": rid}, "ua-u1")
        assert (r["status"], r["on_time"]) == ("closed", False)
        refused(409, "verify_rectification", {"rect_id": rid}, "insp-1")
        assert c.cmd("reopen_rectification", {"rect_id": rid, "reason": "问题反弹",
                                              "deadline": "2024-04-30"}, "insp-1")[0] == 200
        assert c.get("overdue_list", {"unit_id": "qu"}, "viewer")[1]["total"] == 0
        with entrypoint_hook(running.container, "publish_timer") as tick:
            assert tick()["districts"] == 1
    for ev in running.events():
        if ev.event_type.startswith(("Rectification.", "Finding.")):
            validate_message(ev.to_message())


@pytest.mark.parametrize("running", [{}, {"pg": True}], indirect=True, ids=["sqlite", "postgresql"])
def test_a_monthly_screening_schedule_flags_every_missed_month(running):
    with running.client("http") as c:
        status, body = c.cmd("set_screening_cadence", {"unit_id": "u1", "cadence": "weekly"}, "admin")
        assert status == 400 and "cadence" in body["fields"]
        # nothing written (the log's head may move meanwhile: units' events still arriving)
        assert running.events("ScreeningSchedule.CadenceChanged") == []
        assert c.cmd("set_screening_cadence", {"unit_id": "u1", "cadence": "monthly"}, "admin")[0] == 200
        # nobody screens March, April or May; the timer first runs on June 2
        running.clock.set("2024-06-02")
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            assert tick()["screenings_flagged"] == 5  # u1: 3 months; u2, w1: their first quarter
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            assert tick()["screenings_flagged"] == 0
        status, listed = c.get("screening_status", {"unit_id": "u1", "overdue_only": True}, "viewer")
        item = listed["items"][0]
        assert (item["missed_periods"], item["overdue_since"]) == (3, "2024-06-02")
        assert [(p["period"], p["status"]) for p in item["periods"]] == [
            ("2024-05", "overdue"), ("2024-04", "overdue"), ("2024-03", "overdue")]
        flagged = [e.payload["due_period"] for e in running.events("ScreeningSchedule.OverdueFlagged")
                   if e.payload["unit_id"] == "u1"]
        assert flagged == ["2024-03", "2024-04", "2024-05"]
        # a late screening in June covers June; the three months stay on the record as missed
        assert c.cmd("record_screening", {"unit_id": "u1", "summary": "补查"}, "ua-u1")[1]["status"] == "late"
        item = c.get("screening_status", {"unit_id": "u1"}, "viewer")[1]["items"][0]
        assert (item["overdue"], item["missed_periods"]) == (False, 0)
        assert [(p["period"], p["status"]) for p in item["periods"]][:4] == [
            ("2024-06", "on_time"), ("2024-05", "missed"), ("2024-04", "missed"), ("2024-03", "late")]
    for ev in running.events("ScreeningSchedule.OverdueFlagged"):
        validate_message(ev.to_message())


@pytest.mark.parametrize("running", [{}, {"pg": True}], indirect=True, ids=["sqlite", "postgresql"])
def test_a_control_past_its_review_date_is_flagged_for_its_owner(running):
    with running.client("http") as c:
        status, rp = c.cmd("identify_risk_point", {"unit_id": "u1", "description": "公车私用",
                                                   "category": "post_duty"}, "ua-u1")
        assert status == 200, rp  # the HTTP client's commands answer 200 (see the ladder test)
        rid = rp["risk_point_id"]
        status, ctl = c.cmd("add_control", {"risk_point_id": rid, "measure": "车辆GPS+出车登记",
                                            "owner_post": "办公室主任", "review_date": "2024-03-31"},
                            "ua-u1")
        assert status == 200, ctl
        status, body = c.cmd("add_control", {"risk_point_id": rid, "measure": "x", "owner_post": "y",
                                             "review_date": "2024-02-01"}, "ua-u1")
        assert status == 409 and "review_date" in body["fields"]
        assert len(running.events("RiskPoint.ControlAdded")) == 1  # nothing written
        status, body = c.get("control_reviews_due", {"unit_id": "u1", "limit": 0}, "ua-u1")
        assert status == 400 and "limit" in body["fields"]
        assert c.get("control_reviews_due", {"unit_id": "nope"}, "admin")[0] == 404
        running.clock.set("2024-03-31")
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            assert tick()["control_reviews_flagged"] == 0  # due today, not past
        running.clock.set("2024-04-12")
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            assert tick()["control_reviews_flagged"] == 1
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            assert tick()["control_reviews_flagged"] == 0  # flagged once
        status, due = c.get("control_reviews_due", {"unit_id": "u1"}, "ua-u1")
        assert status == 200 and (due["total"], due["by_unit"]) == (1, {"u1": 1})
        item = due["items"][0]
        assert (item["control_id"], item["owner_post"], item["review_date"], item["days_overdue"],
                item["review_overdue_since"]) == (ctl["control_id"], "办公室主任", "2024-03-31", 12,
                                                  "2024-04-12")
        # the district sees its units' counts; another unit's admin does not see u1's
        assert c.get("control_reviews_due", {"unit_id": "qu"}, "viewer")[1]["by_unit"] == {"u1": 1}
        assert c.get("control_reviews_due", {"unit_id": "u1"}, "ua-u2")[0] == 403
        assert c.cmd("review_control", {"risk_point_id": rid, "control_id": ctl["control_id"],
                                        "effective": True, "next_review_date": "2024-09-30"},
                     "ua-u1")[0] == 200
        assert c.get("control_reviews_due", {"unit_id": "qu"}, "viewer")[1]["total"] == 0
    flags = running.events("RiskPoint.ControlReviewOverdue")
    assert [e.payload["control_id"] for e in flags] == [ctl["control_id"]]
    validate_message(flags[0].to_message())


def test_inspection_and_risk_work_over_http(running):
    admin, insp, ua = (Api(running.config["WEB_SERVER_ADDRESS"], running.users[w][1])
                       for w in ("admin", "insp-1", "ua-u1"))
    status, plan = insp.post("plan_inspection", {"unit_id": "u1", "title": "一季度督导",
                                                 "planned_on": "2024-03-05"})
    assert status == 201, plan
    iid = plan["inspection_id"]
    status, f = insp.post("record_finding", {"unit_id": "u1", "source": "inspection",
                                             "inspection_id": iid, "description": "台账不全",
                                             "responsible_role": "party_secretary",
                                             "deadline": "2024-04-05"})
    assert status == 201, f
    scores = [{"criterion": c["code"], "score": 24, "note": "扣1分"} for c in plan["criteria"]]
    assert insp.post("score_inspection", {"inspection_id": iid, "scores": scores})[0] == 200
    status, body = insp.post("score_inspection", {"inspection_id": iid, "scores": [
        {"criterion": "prescribed_actions", "score": 99, "note": "x"}]})
    assert status == 400 and body["fields"] == {"scores.0.score": ["「规定动作全不全」的得分须在 0 到 25 之间"]}
    assert insp.post("complete_inspection", {"inspection_id": iid})[0] == 409
    assert insp.post("give_feedback", {"inspection_id": iid, "told": [{"role": "party_secretary",
                                                                        "name": "张书记"}],
                                       "told_at": "2024-03-05T11:00:00+08:00",
                                       "summary": "现场反馈1个问题"})[0] == 200
    status, done = insp.post("complete_inspection", {"inspection_id": iid})
    assert (status, done["percent"]) == (200, 96.0)
    assert ua.post("plan_inspection", {"unit_id": "u1", "title": "x", "planned_on": "2024-03-05"})[0] == 403
    status, rp = ua.post("identify_risk_point", {"unit_id": "u1", "description": "执法裁量",
                                                 "category": "post_duty", "post": "执法岗",
                                                 "post_flags": ["concentrated_power"],
                                                 "likelihood": 3, "impact": 4})
    assert status == 201 and rp["level"] == "medium" and rp["weighted_score"] == 14.4
    assert ua.post("identify_risk_point", {"unit_id": "u2", "description": "x",
                                           "category": "post_duty"})[0] == 403
    status, body = ua.post("assess_risk_point", {"risk_point_id": rp["risk_point_id"],
                                                 "likelihood": 0, "impact": 9})
    assert status == 400 and set(body["fields"]) == {"likelihood", "impact"}
    status, view = admin.get("unit_view", {"unit_id": "qu"})
    assert status == 200 and view["subtree"]["risk_medium"] == 1 and view["subtree"]["findings_total"] == 1
    assert ua.get("unit_view", {"unit_id": "u2"})[0] == 403
    assert admin.post("record_finding", {"unit_id": "u1"})[1]["fields"].keys() >= {
        "source", "description", "responsible_role", "deadline"}


def test_lists_and_reports_download_as_files(running):
    admin = running.actor("admin")
    with running.rpc() as n:
        n.supervision.record_finding({"unit_id": "u1", "source": "audit", "description": "预算执行偏差",
                                      "responsible_role": "unit_head", "deadline": "2024-04-30",
                                      "requirement": "调整预算并说明"}, actor=admin)
        n.supervision.identify_risk_point({"unit_id": "u1", "description": "合同签订",
                                           "category": "procedure", "likelihood": 2, "impact": 5},
                                          actor=admin)
        lists = n.supervision.unit_lists({"unit_id": "u1"}, actor=admin)  # over RPC: as data
        assert len(lists["problems"]["rows"]) == 2
        rnd = n.supervision.open_round({"title": "2024年一季度研判", "period": "2024-Q1",
                                        "unit_id": "qu"}, actor=admin)
    ua = Api(running.config["WEB_SERVER_ADDRESS"], running.users["ua-u1"][1])
    import requests
    base = ua.base
    headers = {"Authorization": "Bearer %s" % running.users["ua-u1"][1]}
    r = requests.get(base + "/export/unit_lists", params={"unit_id": "u1", "format": "xlsx"},
                     headers=headers, timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["问题清单", "责任清单", "整改清单"]
    assert wb["整改清单"]["D3"].value == "调整预算并说明"
    r = requests.get(base + "/export/unit_lists", params={"unit_id": "u1", "format": "csv",
                                                          "list": "rectifications"},
                     headers=headers, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("序号,责任单位,问题") and "预算执行偏差" in text
    r = requests.get(base + "/export/unit_lists", params={"unit_id": "u1", "format": "csv"},
                     headers=headers, timeout=30)
    assert r.status_code == 400 and "list" in r.json()["fields"]
    r = requests.get(base + "/export/unit_lists", params={"unit_id": "u2", "format": "xlsx"},
                     headers=headers, timeout=30)
    assert r.status_code == 403
    assert requests.get(base + "/export/unit_lists", params={"unit_id": "u1"}, timeout=30).status_code == 401
    r = requests.get(base + "/export/assessment_report", params={"round_id": rnd["round_id"]},
                     headers=headers, timeout=30)
    assert r.status_code == 200
    assert load_workbook(io.BytesIO(r.content)).sheetnames == ["排名", "研判意见"]


def test_evidence_is_uploaded_by_hash_and_referenced(running):
    import requests
    base = Api(running.config["WEB_SERVER_ADDRESS"]).base
    token = running.users["ua-u1"][1]
    content = "整改情况报告：已完成制度修订。".encode("utf-8")
    r = requests.post(base + "/evidence", params={"unit_id": "u1", "filename": "报告.pdf"},
                      data=content, headers={"Authorization": "Bearer %s" % token}, timeout=30)
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["sha256"] == hashlib.sha256(content).hexdigest() and ref["path"].endswith(".pdf")
    assert ref["path"] == "%s/%s.pdf" % (ref["sha256"][:2], ref["sha256"])  # by content only
    stored = get_extension(running.container, EventSourcing).runtime.ext.evidence.root / ref["path"]
    assert stored.read_bytes() == content
    r = requests.post(base + "/evidence", params={"unit_id": "u2"}, data=content,
                      headers={"Authorization": "Bearer %s" % token}, timeout=30)
    assert r.status_code == 403
    with running.rpc() as n:
        f = n.supervision.record_finding({"unit_id": "u1", "source": "financial", "description": "票据",
                                          "responsible_role": "cadre", "deadline": "2024-04-01"},
                                         actor=running.actor("insp-1"))
        n.supervision.submit_evidence({"rect_id": f["rect_id"], "evidence": [ref]},
                                      actor=running.actor("ua-u1"))
    submitted = running.events("Rectification.EvidenceSubmitted")[0]
    assert submitted.payload["evidence"][0]["sha256"] == ref["sha256"]
    assert content.decode("utf-8") not in json.dumps(submitted.payload, ensure_ascii=False)


TRAVERSALS = ["../../../../outside", "/etc", "/tmp/outside", "u1/../../../outside", "u1/..", "..",
              "u1\x00", "u1\x00/../../x", "..\\..\\outside", "u1\\..\\..\\x", "C:\\outside",
              "C:outside", "\\\\server\\share", "u1\n", "u1/x"]
BAD_NAMES = ["../../outside.txt", "/etc/passwd", "a\x00.txt", "x.txt\x00.pdf", "..\\..\\x.txt",
             "C:\\x.txt", "C:x.txt", "..", ".", "sub/x.pdf", "x.txt:stream", "a\tb.txt"]


def test_evidence_upload_refuses_every_path_trick_and_writes_nothing(running, tmp_path):
    """Issue 11 C13: a node-admin's `unit_id=../../../../outside` wrote outside the store.
    Every trick is a 400 (or 404 for a unit that does not exist) and no file appears
    anywhere under the node's folders; then a plain upload lands under the fixed root."""
    import requests
    base = Api(running.config["WEB_SERVER_ADDRESS"]).base
    root = get_extension(running.container, EventSourcing).runtime.ext.evidence.root

    outside = [(root / "../../../../outside").resolve(), (root / "../outside").resolve()]

    def files():  # every file the test node has, but its databases (which the queries touch)
        return sorted(str(p) for p in tmp_path.rglob("*")
                      if p.is_file() and not re.search(r"\.db(-wal|-shm|-journal)?$", p.name))
    before = files()
    content = b"%PDF-1.4 evidence"
    for who in ("admin", "ua-u1"):
        headers = {"Authorization": "Bearer %s" % running.users[who][1]}
        for unit_id in TRAVERSALS:
            r = requests.post(base + "/evidence", params={"unit_id": unit_id, "filename": "x.txt"},
                              data=content, headers=headers, timeout=30)
            assert r.status_code == 400, (who, unit_id, r.status_code, r.text)
            assert r.json()["fields"]["unit_id"]
        for name in BAD_NAMES:
            r = requests.post(base + "/evidence", params={"unit_id": "u1", "filename": name},
                              data=content, headers=headers, timeout=30)
            assert r.status_code == 400, (who, name, r.status_code, r.text)
            assert r.json()["fields"]["filename"]
        r = requests.post(base + "/evidence", params={"unit_id": "no-such-unit", "filename": "x.txt"},
                          data=content, headers=headers, timeout=30)
        assert r.status_code == 404, r.text
    assert files() == before and not any(p.exists() for p in outside)
    # a reference that is not the store's own form is refused by submit_evidence too
    with running.rpc() as n:
        f = n.supervision.record_finding({"unit_id": "u1", "source": "financial", "description": "票据",
                                          "responsible_role": "cadre", "deadline": "2024-04-01"},
                                         actor=running.actor("insp-1"))
        head = running.head()
        digest = hashlib.sha256(content).hexdigest()
        for path in ("u1/%s/%s.pdf" % (digest[:2], digest), "../%s/%s.pdf" % (digest[:2], digest),
                     "/%s/%s.pdf" % (digest[:2], digest), "%s\\%s.pdf" % (digest[:2], digest),
                     "%s/%s.pdf" % ("00", "0" * 64)):
            with pytest.raises(BadInput):
                n.supervision.submit_evidence({"rect_id": f["rect_id"], "evidence": [
                    {"path": path, "sha256": digest}]}, actor=running.actor("ua-u1"))
        assert running.head() == head
    r = requests.post(base + "/evidence", params={"unit_id": "u1", "filename": "整改报告.PDF"}, data=content,
                      headers={"Authorization": "Bearer %s" % running.users["admin"][1]}, timeout=30)
    assert r.status_code == 201, r.text
    assert (root / r.json()["path"]).read_bytes() == content
    assert r.json()["path"] == "%s/%s.pdf" % (digest[:2], digest)
    assert files() == sorted(before + [str(root / r.json()["path"])])


def _education_message(payload: dict) -> dict:
    return {"event_id": str(uuid.uuid4()), "position": 7,
            "stream_id": "EducationIndicators:%s/%s" % (payload.get("unit_id"), payload.get("period")),
            "stream_type": "EducationIndicators", "version": 1,
            "type": "EducationIndicators.Published", "schema_version": 1, "payload": payload,
            "metadata": {"node": NODE, "correlation_id": "c1",
                         "occurred_at": "2024-03-31T10:00:00+08:00"}}


def test_education_indicators_are_consumed_once(running):
    bad = _education_message({"unit_id": "u1", "period": "2024-3", "warning_education_held": "yes",
                              "checkin_coverage": 7, "talks_on_time_rate": None})
    good = _education_message({"unit_id": "u1", "period": "2024-03", "warning_education_held": True,
                               "checkin_coverage": 0.85, "talks_on_time_rate": None})
    with Connection(running.config["AMQP_URI"]) as conn:
        producer = Producer(conn.channel(), exchange=Exchange("education.events", type="topic",
                                                              durable=True, auto_delete=False),
                            serializer="json")
        # a payload breaking its contract first, then at-least-once delivery: the same event twice
        for body in (bad, good, good):
            producer.publish(body, routing_key="EducationIndicators.Published",
                             declare=[producer.exchange])

    def handled():
        with running.runtime.read() as c:
            return {r.event_id for r in c.execute(select(tracking.c.event_id).where(
                tracking.c.consumer == "supervision.on_education_indicators"))}
    wait_for(lambda: handled() == {bad["event_id"], good["event_id"]}, timeout=20)
    facts = running.events("EducationFacts.Recorded")
    assert len(facts) == 1 and facts[0].payload["compliance"] == round(100 * (0.4 + 0.3 * 0.85) / 0.7, 2)
    assert facts[0].payload["source_event_id"] == good["event_id"]


def test_four_forms_stay_private_on_the_wire(running):
    capture = Capture(running.config["AMQP_URI"], "supervision.events")
    try:
        record = {"unit_id": "u1", "form": 1, "person_name": "钱某某", "post": "出纳",
                  "measure": "谈话提醒", "summary": "报销单据不规范被提醒", "handled_on": "2024-02-27"}
        for who in ("viewer", "ua-u1", "admin"):
            api = Api(running.config["WEB_SERVER_ADDRESS"], running.users[who][1])
            assert api.post("record_discipline", record)[0] == 403
            assert api.get("list_discipline_records", {})[0] == 403
        insp = Api(running.config["WEB_SERVER_ADDRESS"], running.users["insp-1"][1])
        assert insp.post("record_discipline", record)[0] == 201
        assert insp.get("list_discipline_records", {})[1]["records"][0]["person_name"] == "钱某某"
        viewer = Api(running.config["WEB_SERVER_ADDRESS"], running.users["viewer"][1])
        assert viewer.get("discipline_counts", {})[1]["periods"][0]["form_1"] == 1
        with running.rpc() as n:
            n.supervision.publish_indicators({}, actor=running.actor("admin"))
        msgs = capture.drain(lambda m: any(x["type"] == "DisciplineCounts.Published" for x in m),
                             timeout=20)
        counts = next(m for m in msgs if m["type"] == "DisciplineCounts.Published")
        assert set(counts["payload"]) == {"period", "form_1", "form_2", "form_3", "form_4", "total",
                                          "published_on"}
        assert (counts["payload"]["period"], counts["payload"]["form_1"]) == ("2024-Q1", 1)
        for m in msgs:
            if EVENT_TYPES[m["type"]].private:
                continue
            text = json.dumps(m["payload"], ensure_ascii=False)
            for secret in ("钱某某", "出纳", "谈话提醒", "报销单据"):
                assert secret not in text, m["type"]
    finally:
        capture.close()
