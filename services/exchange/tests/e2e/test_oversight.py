"""What the city oversees, across a city and two districts on this machine (issue 10,
items 5-7), with the real services: on each district its units, supervision and exchange
services on the district's own broker vhost and databases; on the city its exchange.

* 督办: a rectification whose ladder reaches the city rung arrives at the city as the case
  itself (what, which unit, how late, the trail); the city follows it up and the district
  sees that; the other district sees neither; closing it at the district closes it at
  the city; a refused follow-up writes nothing. A 跟踪问效 task does the same.
* the unit register and 责任书 coverage roll up to the city, without people;
* 四种形态 counts per form and quarter reach the city from both districts; the records
  (a person's name, the measure, the summary) never leave their node.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.utils import find_free_port, get_extension
from sqlalchemy import select

from services.exchange.federation import outbox, wire
from tests.harness import assert_nothing_after, wait_for
from tests.harness.exchange import UNITS, holds, send_marker, start_network, stop_network
from services.education.service import EducationService
from services.supervision.service import SupervisionService
from services.units.service import UnitsService
from shared import config
from shared.auth import Actor
from shared.errors import BadInput, RuleViolation
from shared.service import EventSourcing, NodeContainer

PRIVATE = "张三丰"           # a person's name planted in a discipline record
PRIVATE_MEASURE = "诫勉谈话记录保密内容"
PERSON = "李四光"            # a person registered in the district's units service
EVIDENCE = [{"path": "ab/" + "ab" * 32 + ".pdf", "sha256": "ab" * 32, "size_bytes": 10,
             "description": "整改报告"}]


def _today():
    return datetime.now(ZoneInfo(config.timezone_name())).date()


class Service:
    """One more nameko service of a district node (units, supervision)."""

    def __init__(self, cls, node):
        cfg = dict(node.local.config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
        self.container = NodeContainer(cls, cfg)
        self.container.start()
        self.provider = get_extension(self.container, EventSourcing)
        self.admin = Actor("admin", ("node-admin",), None, node.node_id)
        self.inspector = Actor("insp", ("inspector",), None, node.node_id)
        self.inspector_2 = Actor("insp-2", ("inspector",), None, node.node_id)

    @property
    def runtime(self):
        return self.provider.runtime

    def execute(self, name, data, actor=None):
        return self.provider.app.execute(self.runtime, name, data, actor or self.admin)

    def query(self, name, params=None, actor=None):
        return self.provider.app.run_query(self.runtime, name, params or {}, actor or self.admin)

    def stop(self):
        self.container.stop()


@pytest.fixture(scope="module")
def offices(tmp_path_factory):
    """City, district-a and district-b: exchange everywhere; units and supervision on
    both districts, their unit trees registered through the units service."""
    net, nodes = start_network(tmp_path_factory.mktemp("oversight"))
    extra = []
    try:
        for d in ("district-a", "district-b"):
            node = nodes[d]
            units = Service(UnitsService, node)
            supervision = Service(SupervisionService, node)
            extra += [supervision, units]
            node.units, node.supervision = units, supervision
            if d == "district-a":
                node.education = Service(EducationService, node)
                extra.append(node.education)
            for uid, name, kind, level, parent in UNITS[d]:
                units.execute("register_unit", {"unit_id": uid, "name": name, "kind": kind,
                                                "level": level, "parent_id": parent})
            last = UNITS[d][-1][0]
            wait_for(lambda s=supervision, u=last: _has_unit(s, u), what="units mirrored by %s" % d)
        yield nodes
    finally:
        for s in extra:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - teardown: the network below still stops
                pass
        stop_network(net, nodes)


def _has_unit(service, unit_id):
    from shared.unittree import directory_path
    with service.runtime.read() as c:
        return directory_path(c, unit_id) is not None


def _head(node_or_service):
    rt = node_or_service.runtime
    with rt.read() as c:
        return rt.store.head(c)


def _log_text(node_or_service) -> str:
    rt = node_or_service.runtime
    with rt.read() as c:
        return "\n".join(json.dumps(e.payload, ensure_ascii=False) for e in rt.store.iter_all(c))


def _outbox_text(node) -> str:
    with node.runtime.engine.connect() as conn:
        return "\n".join(r[0] for r in conn.execute(select(wire(outbox.c.envelope))))


def _publish_register(node):
    """What the exchange service's register timer does."""
    from services.exchange.application import publish_register
    with node.runtime.unit_of_work(node.admin) as uow:
        return publish_register(uow)


def _at(moment, *runtimes):
    saved = [rt.clock for rt in runtimes]
    for rt in runtimes:
        rt.clock = lambda: moment
    return saved


def test_an_escalated_rectification_reaches_the_city_which_follows_it_up(offices):
    a, city, b = offices["district-a"], offices["city"], offices["district-b"]
    sup = a.supervision
    deadline = (_today() + timedelta(days=1)).isoformat()
    rid = sup.execute("record_finding", {
        "unit_id": "a-xj", "source": "audit", "description": "公务接待超标准（督办测试）",
        "responsible_role": "unit_head", "deadline": deadline, "source_ref": "审计2026-7",
        "requirement": "退还超标准费用并建立台账"}, sup.inspector)["rect_id"]
    later = datetime.now(timezone.utc) + timedelta(days=40)
    saved = _at(later, sup.runtime, city.runtime, a.runtime)
    try:
        sup.execute("detect_overdue", {})
        # every rung below the city is an inbox item on the district's node
        inbox = sup.query("escalation_inbox", {})
        mine = [i for i in inbox["items"] if i["rect_id"] == rid]
        assert {(i["level"], i["unit_id"]) for i in mine} == {
            ("owner_unit", "a-xj"), ("unit_head", "a-xj"), ("district_office", "a-gw")}
        # the city rung: the case itself, at the city
        case = wait_for(lambda: next((c for c in city.query("oversight_cases")["items"]
                                      if c["rect_id"] == rid), None), what="the case at the city")
        assert (case["origin"], case["unit_id"], case["unit_name"], case["description"],
                case["requirement"], case["deadline"], case["status"]) == (
            "district-a", "a-xj", "甲区x局（示范点）", "公务接待超标准（督办测试）",
            "退还超标准费用并建立台账", deadline, "open")
        assert case["days_late"] == 39 and case["awaiting_follow_up"] is True
        assert [(t["what"], t.get("level")) for t in case["trail"]] == [
            ("overdue", None), ("escalated", "owner_unit"), ("escalated", "unit_head"),
            ("escalated", "district_office"), ("escalated", "city")]
        cid = case["case_id"]
        # a district cannot follow up, and a bad action is refused: nothing written
        head_a = _head(a)
        with pytest.raises(RuleViolation) as err:
            a.execute("follow_up_escalation", {"case_id": cid, "unit_id": "a-gw",
                                               "action": "phone", "note": "自查"})
        assert "只有市级节点" in err.value.message and _head(a) == head_a
        head_c = _head(city)
        with pytest.raises(BadInput) as err:
            city.execute("follow_up_escalation", {"case_id": cid, "unit_id": "city-gw",
                                                  "action": "shout", "note": "督办"})
        assert "action" in err.value.fields and _head(city) == head_c
        # the city follows it up; the district sees it on its own node
        city.execute("follow_up_escalation", {
            "case_id": cid, "unit_id": "city-jw", "action": "letter",
            "note": "请于十日内报送整改情况", "respond_by": (later.date() + timedelta(days=10)).isoformat()})
        at_a = wait_for(lambda: next((c for c in a.query("oversight_cases")["items"]
                                      if c["case_id"] == cid and c["follow_ups"]), None),
                        what="the city's follow-up at district-a")
        (fu,) = at_a["follow_ups"]
        assert (fu["owner"], fu["action_label"], fu["note"]) == ("city", "发函督办", "请于十日内报送整改情况")
        assert city.query("oversight_cases")["awaiting_follow_up"] == 0 or all(
            c["case_id"] != cid for c in city.query("oversight_cases")["items"] if c["awaiting_follow_up"])
        # district-b sees neither: a record district-a shares with all after it is the signal
        # for the case, one of the city's for its follow-up
        signal = a.execute("draft_experience", {
            "unit_id": "a-gw", "title": "督办之后的信号", "summary": "s", "body": "b",
            "business_type": "party_building", "topics": [], "share": {"sharing": "all", "recipients": []}}
        )["experience_id"]
        assert_nothing_after(holds(signal, b), what="the signal at district-b")
        assert_nothing_after(holds(send_marker(city), b), what="the city's marker at district-b")
        assert b.record(cid) is None and b.query("oversight_cases")["total"] == 0
        # closed at the district: closed at the city, and no more follow-up
        sup.execute("submit_evidence", {"rect_id": rid, "evidence": EVIDENCE})
        sup.execute("verify_rectification", {"rect_id": rid}, sup.inspector)
        closed = wait_for(lambda: next((c for c in city.query("oversight_cases", {"status": "closed"})["items"]
                                        if c["case_id"] == cid), None), what="the closure at the city")
        assert closed["closed_on"] == later.astimezone(ZoneInfo(config.timezone_name())).date().isoformat()
        assert closed["trail"][-1]["what"] == "closed"
        assert [i for i in sup.query("escalation_inbox", {})["items"] if i["rect_id"] == rid] == []
        head_c = _head(city)
        with pytest.raises(RuleViolation) as err:
            city.execute("follow_up_escalation", {"case_id": cid, "unit_id": "city-jw",
                                                  "action": "phone", "note": "再督办"})
        assert "已销号" in err.value.message and _head(city) == head_c
        # nothing about the evidence or who judged it went up
        assert "submitted_by" not in _outbox_text(a) and "insp" not in json.dumps(closed["trail"])
    finally:
        for rt, clock in zip((sup.runtime, city.runtime, a.runtime), saved):
            rt.clock = clock


def test_an_overdue_task_at_the_city_rung_is_referred_and_followed_up_like_a_rectification(offices):
    """跟踪问效 (issue 10 #5/#18): the task itself reaches the city (title, 标准, unit, how
    late, the trail); the city's 督办 reaches the district; accepting it closes the city's
    case; the completion report (who, what, evidence) never leaves the district."""
    a, city = offices["district-a"], offices["city"]
    sup = a.supervision
    deadline = (_today() + timedelta(days=1)).isoformat()
    (tid,) = sup.execute("issue_task_list", {
        "title": "清廉机关建设重点任务（督办测试）", "issuer_unit_id": "a-gw",
        "items": [{"unit_id": "a-xj", "title": "建立廉政风险台账", "standard": "每个岗位一张台账",
                   "deadline": deadline}]}, sup.inspector)["task_ids"]
    later = datetime.now(timezone.utc) + timedelta(days=40)
    saved = _at(later, sup.runtime, city.runtime, a.runtime)
    try:
        sup.execute("detect_task_overdue", {})
        case = wait_for(lambda: next((c for c in city.query("oversight_cases")["items"]
                                      if c["rect_id"] == "task-" + tid), None),
                        what="the task's case at the city")
        assert (case["origin"], case["subject"], case["unit_id"], case["unit_name"],
                case["description"], case["requirement"], case["source"], case["deadline"],
                case["status"], case["days_late"], case["awaiting_follow_up"]) == (
            "district-a", "task", "a-xj", "甲区x局（示范点）", "建立廉政风险台账", "每个岗位一张台账",
            "task_list", deadline, "open", 39, True)
        assert [(t["what"], t.get("level")) for t in case["trail"]] == [
            ("overdue", None), ("escalated", "owner_unit"), ("escalated", "unit_head"),
            ("escalated", "district_office"), ("escalated", "city")]
        cid = case["case_id"]
        city.execute("follow_up_escalation", {"case_id": cid, "unit_id": "city-jw",
                                              "action": "phone", "note": "请报送任务推进情况"})
        at_a = wait_for(lambda: next((c for c in a.query("oversight_cases")["items"]
                                      if c["case_id"] == cid and c["follow_ups"]), None),
                        what="the city's follow-up of the task at district-a")
        assert at_a["follow_ups"][0]["note"] == "请报送任务推进情况"
        sup.execute("report_task_completion", {"task_id": tid, "summary": "台账已建立（保密摘要）",
                                               "evidence": EVIDENCE})
        sup.execute("accept_task", {"task_id": tid, "note": "合格"}, sup.inspector)
        closed = wait_for(lambda: next((c for c in city.query("oversight_cases", {"status": "closed"})["items"]
                                        if c["case_id"] == cid), None), what="the task closed at the city")
        assert closed["trail"][-1]["what"] == "closed" and closed["closed_on"] == later.astimezone(
            ZoneInfo(config.timezone_name())).date().isoformat()
        sent = _outbox_text(a)
        assert "台账已建立（保密摘要）" not in sent and "reported_by" not in sent
    finally:
        for rt, clock in zip((sup.runtime, city.runtime, a.runtime), saved):
            rt.clock = clock


def test_the_unit_register_and_letter_coverage_roll_up_to_the_city_without_people(offices):
    a, city = offices["district-a"], offices["city"]
    a.units.execute("register_person", {"name": PERSON, "unit_id": "a-xj", "post": "局长"})
    period = str(_today().year)
    for target in ("a-xj", "a-window"):
        a.units.execute("issue_letter", {"period": period, "issuer_unit_id": "a-gw",
                                         "target_unit_id": target, "signatory_role": "unit_head",
                                         "content": "全面从严治党主体责任书"})
    a.units.execute("sign_letter", {"period": period, "target_unit_id": "a-xj",
                                    "signed_on": _today().isoformat(), "signatory_role": "unit_head"})
    assert _publish_register(a)["changed"] is True
    assert _publish_register(a)["changed"] is False  # only when it changed

    def registered():
        regs = city.query("district_registers", {"origin": "district-a"})["registers"]
        return regs and regs[0]["letter_coverage"] and regs[0]
    reg = wait_for(lambda: (lambda r: r and r["letter_coverage"][-1].get("letters_signed") == 1 and r)(
        registered()), what="district-a's register and coverage at the city")
    assert [(u["unit_id"], u["name"], u["kind"]) for u in reg["units"]] == [
        ("a-gw", "甲区区直机关工委", "district_authority"), ("a-window", "甲区政务服务窗口", "window_unit"),
        ("a-xj", "甲区x局（示范点）", "government_dept")]
    assert set(reg["units"][0]) == {"unit_id", "name", "kind", "level", "parent_id", "active",
                                    "demonstration_site", "pilot_flags"}
    cov = reg["letter_coverage"][-1]
    assert (cov["period"], cov["units_required"], cov["letters_signed"], cov["letter_coverage"]) == (
        period, 2, 1, 0.5)
    assert reg["counts"]["units"] == 3
    # read-only at the city: it has no command on another node's register, and no people
    assert PERSON not in _log_text(city) and PERSON not in _outbox_text(a)


def test_four_forms_counts_reach_the_city_and_the_records_never_leave(offices):
    a, b, city = offices["district-a"], offices["district-b"], offices["city"]
    quarter = "%d-Q%d" % (_today().year, (_today().month - 1) // 3 + 1)
    for node, forms in ((a, (1, 1, 2)), (b, (1, 3))):
        for form in forms:
            node.supervision.execute("record_discipline", {
                "form": form, "person_name": PRIVATE, "unit_id": node.local.node_id[-1] + "-xj",
                "measure": PRIVATE_MEASURE, "summary": "违反中央八项规定精神 %s" % PRIVATE,
                "handled_on": _today().isoformat()}, node.supervision.inspector)
        node.supervision.execute("publish_indicators", {})

    def counts():
        items = city.query("discipline_counts_by_node", {"period": quarter})["items"]
        return len(items) == 2 and items
    a_row, b_row = wait_for(counts, what="both districts' counts at the city")
    assert (a_row["node"], a_row["form_1"], a_row["form_2"], a_row["total"]) == ("district-a", 2, 1, 3)
    assert (b_row["node"], b_row["form_1"], b_row["form_3"], b_row["total"]) == ("district-b", 1, 1, 2)
    # the records never appear in any shared feed: not in what either district sent, not
    # in anything the city holds, not in the city's shared feed
    for node in (a, b):
        assert PRIVATE not in _outbox_text(node) and PRIVATE_MEASURE not in _outbox_text(node)
    assert PRIVATE not in _log_text(city) and PRIVATE_MEASURE not in _log_text(city)
    feed = json.dumps(city.query("shared_feed", {"limit": 200}), ensure_ascii=False)
    assert PRIVATE not in feed and "DisciplineRecord" not in _outbox_text(a)


def test_an_exemplars_indicators_come_from_the_published_figures_and_typed_ones_are_marked(offices):
    a, city = offices["district-a"], offices["city"]
    month = _today().strftime("%Y-%m")
    # a-xj's own finding of this month (not one an earlier test of the module recorded):
    # its published findings_total is at least 1 when the test runs alone
    a.supervision.execute("record_finding", {
        "unit_id": "a-xj", "source": "audit", "description": "典型联树测试的问题",
        "responsible_role": "unit_head", "deadline": (_today() + timedelta(days=30)).isoformat()},
        a.supervision.inspector)
    a.supervision.execute("publish_indicators", {})
    wait_for(lambda: any(u["unit_id"] == "a-xj" for u in a.query(
        "compare_indicators", {"period": month, "source": "supervision"})["units"]),
        what="a-xj's published figures at district-a's exchange")
    # re-typing a published figure is refused, and writes nothing
    head = _head(a)
    with pytest.raises(BadInput) as err:
        a.execute("nominate_exemplar", {
            "unit_id": "a-xj", "category": "model_section", "title": "模范科室（重复填写）",
            "description": "d", "period": month, "indicators": {"findings_total": 0}})
    assert "已有发布数据" in err.value.message and list(err.value.fields) == ["indicators"]
    assert _head(a) == head
    eid = a.execute("nominate_exemplar", {
        "unit_id": "a-xj", "category": "model_section", "title": "模范科室：x局办公室",
        "description": "整改闭环，台账清楚。", "period": month, "indicators": {"群众满意度": 98.5},
        "share": {"sharing": "all", "recipients": []}})["exemplar_id"]
    rec = wait_for(lambda: city.record(eid), what="the exemplar at the city")
    content = rec["content"]
    assert content["indicators"]["群众满意度"] == 98.5
    assert content["indicator_sources"]["群众满意度"] == "manual"
    assert content["indicators"]["findings_total"] >= 1
    assert content["indicator_sources"]["findings_total"] == "published"
    assert {v for k, v in content["indicator_sources"].items() if k != "群众满意度"} == {"published"}
    # the unit's figures are published again: the exemplar follows, the typed one stays
    before = content["indicators"]["findings_total"]
    a.supervision.execute("record_finding", {
        "unit_id": "a-xj", "source": "audit", "description": "新发现的问题", "responsible_role": "unit_head",
        "deadline": (_today() + timedelta(days=30)).isoformat()}, a.supervision.inspector)
    a.supervision.execute("publish_indicators", {})
    now = wait_for(lambda: (lambda c: c["indicators"]["findings_total"] == before + 1 and c)(
        city.record(eid)["content"]), what="the republished figure on the exemplar at the city")
    assert now["indicators"]["群众满意度"] == 98.5 and now["indicator_sources"]["群众满意度"] == "manual"
    assert now["indicator_sources"]["findings_total"] == "published"
    # nothing published and nothing typed: refused
    with pytest.raises(BadInput) as err:
        a.execute("nominate_exemplar", {"unit_id": "a-window", "category": "window", "title": "窗口",
                                        "description": "d", "period": "2019-01"})
    assert "没有发布数据" in err.value.message


def test_an_overdue_integrity_talk_reaches_the_city_without_the_person(offices):
    """A 廉政谈话 after a promotion that is 30 days late reaches the ladder's city rung: the
    city gets the case - the unit, the due date, how late - and never the person."""
    a, city = offices["district-a"], offices["city"]
    edu = a.education
    pid = a.units.execute("register_person", {"name": "王五六", "unit_id": "a-xj", "post": "科员"})["person_id"]
    promoted = _today().isoformat()
    a.units.execute("promote_person", {"person_id": pid, "new_post": "审批科科长（督办测试）",
                                       "unit_id": "a-xj", "effective_on": promoted})
    talk_id = "%s/%s" % (pid, promoted)
    wait_for(lambda: any(t["talk_id"] == talk_id for t in edu.query(
        "list_talks", {"unit_id": "a-gw"})["talks"]), what="the talk scheduled by education")
    later = datetime.now(timezone.utc) + timedelta(days=61)   # due in 30 days, 31 late
    saved = _at(later, edu.runtime, city.runtime)
    try:
        out = edu.execute("detect_overdue", {})
        assert [e["step"] for e in out["escalations"] if e["talk_id"] == talk_id] == [1, 2, 3, 4]
        case = wait_for(lambda: next((c for c in city.query("oversight_cases")["items"]
                                      if c["subject"] == "talk" and c["unit_id"] == "a-xj"), None),
                        what="the talk's case at the city")
        assert (case["origin"], case["unit_name"], case["days_late"], case["status"]) == (
            "district-a", "甲区x局（示范点）", 31, "open")
        for secret in (pid, "王五六", "审批科科长"):
            assert secret not in _log_text(city) and secret not in _outbox_text(a), secret
        # held at last: closed at the city
        edu.execute("record_talk_held", {"talk_id": talk_id, "held_on": later.astimezone(
            ZoneInfo(config.timezone_name())).date().isoformat(), "conducted_by": "局党组书记"})
        wait_for(lambda: any(c["case_id"] == case["case_id"] for c in city.query(
            "oversight_cases", {"status": "closed"})["items"]), what="the talk closed at the city")
    finally:
        for rt, clock in zip((edu.runtime, city.runtime), saved):
            rt.clock = clock


def test_a_districts_supervision_month_reaches_the_city_provisional_then_final(offices):
    """Issue 10 #13: supervision's figures for the running month are 暂定 at the city - a
    flag on the rows, never a ranked figure; a finding of that month entered during its
    grace period republishes it by the timer's own command; after the grace period it is
    published once more, final."""
    a, city = offices["district-a"], offices["city"]
    sup, month = a.supervision, _today().strftime("%Y-%m")
    sup.execute("publish_indicators", {})

    def at_city(wanted):
        cmp = city.query("compare_indicators", {"period": month, "source": "supervision"})
        u = {(r["node"], r["unit_id"]): r for r in cmp["units"]}.get(("district-a", "a-xj"))
        d = {r["node"]: r for r in cmp["districts"]}.get("district-a")
        return (u, d, cmp) if u and d and wanted(u, d) else None
    u, d, cmp = wait_for(lambda: at_city(lambda u, d: u["provisional"] and d["provisional"]),
                         what="district-a's provisional supervision figures at the city")
    assert "provisional" not in cmp["indicators"] and "provisional" not in u["values"]
    assert "provisional" not in cmp["ranking"]
    before = u["values"]["findings_total"]
    year, mon = map(int, month.split("-"))
    nxt = datetime(year + (mon == 12), mon % 12 + 1, 2, 2, 0, tzinfo=timezone.utc)
    saved = _at(nxt, sup.runtime)  # the 2nd of next month: this one in its grace period
    try:
        sup.execute("record_finding", {
            "unit_id": "a-xj", "source": "audit", "description": "月末发现、次月补录的问题",
            "responsible_role": "unit_head", "found_on": (nxt.date() - timedelta(days=2)).isoformat(),
            "deadline": (nxt.date() + timedelta(days=40)).isoformat()}, sup.inspector)
        assert sup.execute("publish_indicators", {})["months"][month] == "provisional"
        wait_for(lambda: at_city(lambda u, d: u["provisional"]
                                 and u["values"]["findings_total"] == before + 1),
                 what="the late finding in this month's provisional figures at the city")
        _at(nxt + timedelta(days=10), sup.runtime)  # grace over
        assert sup.execute("publish_indicators", {})["months"][month] == "final"
        u, d, _ = wait_for(lambda: at_city(lambda u, d: not u["provisional"] and not d["provisional"]),
                           what="district-a's final supervision figures at the city")
        assert u["values"]["findings_total"] == before + 1
        row = {r["node"]: r for r in city.query("city_comparison", {
            "period": month, "source": "supervision"})["districts"]}["district-a"]
        assert row["provisional"] is False and row["values"]
    finally:
        sup.runtime.clock = saved[0]
