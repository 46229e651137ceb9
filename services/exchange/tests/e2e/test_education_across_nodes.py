"""Issue 10 #1, #2, #4, #13 across a city and two districts on this machine (vhosts of the
real broker as the nodes' brokers, SQLite files): on every node the exchange and the
education service run as nameko containers on that node's broker.

* #1 上下联学: the city plans a warning-education session for its districts; it reaches
  them through the exchange as a shared record with its audience; district units join it
  on their own node (nobody registers it); each district's attendance travels back, and
  the city's session shows which units of which districts came and how many; attending
  counts for the units' 月月行.
* #2 活动联办: attendance recorded once in the exchange for a warning-education activity
  counts for the attending units' 月月行; corrected, it is withdrawn.
* #4 cases of 案例联编 (the city's typical cases and a district's own) are offered by
  education's tailoring; withdrawn, they are not.
* #13 a district's month is published provisional, then final, and the city sees which.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.utils import find_free_port, get_extension

from services.education.dates import local_date
from services.education.service import EducationService
from tests.harness import wait_for
from tests.harness.exchange import UNITS, start_network, stop_network
from shared.events import StoredEvent
from shared.service import EventSourcing, NodeContainer
from shared.unittree import record_unit_event

ALL = {"sharing": "all", "recipients": []}


class Education:
    """One node's education service (or another of its services), on the node's broker and
    var folder, with the node's unit tree mirrored."""

    def __init__(self, node, service_cls=EducationService):
        cfg = dict(node.local.config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
        self.container = NodeContainer(service_cls, cfg)
        self.container.start()
        self.provider = get_extension(self.container, EventSourcing)
        self.admin = node.admin
        for uid, name, kind, level, parent in UNITS[node.node_id]:
            event = StoredEvent(0, "seed-edu-%s-%s" % (node.node_id, uid), "Unit:%s" % uid, "Unit", 1,
                                "Unit.Registered", 1, {"unit_id": uid, "name": name, "kind": kind,
                                                       "level": level, "parent_id": parent},
                                {"node": node.node_id}, 0)
            with self.provider.runtime.unit_of_work() as uow:
                record_unit_event(uow, event)

    def run(self, name, data=None):
        return self.provider.app.execute(self.provider.runtime, name, data or {}, self.admin)

    def ask(self, name, params=None):
        return self.provider.app.run_query(self.provider.runtime, name, params or {}, self.admin)

    def set_clock(self, dt):
        self.provider.runtime.clock = lambda: dt


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    net, exchanges = start_network(tmp_path_factory.mktemp("edu-net"))
    educations = {}
    try:
        for node_id, node in exchanges.items():
            educations[node_id] = Education(node)
        yield exchanges, educations
    finally:
        for e in educations.values():
            try:
                e.container.stop()
            except Exception:  # noqa: BLE001 - teardown: the network below still stops
                pass
        stop_network(net, exchanges)


def local_period(at: datetime) -> str:
    return local_date(at, "Asia/Shanghai").isoformat()[:7]


@pytest.fixture(scope="module")
def district_a_supervision(nodes):
    """district-a's supervision service (its 廉政风险点台账), on district-a's broker."""
    from services.supervision.service import SupervisionService
    x, _ = nodes
    sv = Education(x["district-a"], SupervisionService)
    yield sv
    sv.container.stop()


def held(edu, root, period, unit_id):
    rows = edu.ask("warning_education_compliance", {"unit_id": root, "period": period})["units"]
    return {u["unit_id"]: u["held"] for u in rows}[unit_id]


def test_updown_session_travels_to_districts_and_their_attendance_back(nodes):
    x, edu = nodes
    now = datetime.now(timezone.utc)
    # half an hour ago, but never before today's midnight in Shanghai: a district offers
    # today's sessions, and in the half hour after midnight "30 minutes ago" is yesterday
    midnight = datetime.combine(local_date(now, "Asia/Shanghai"), datetime.min.time(),
                                ZoneInfo("Asia/Shanghai"))
    at = min(max(now - timedelta(minutes=30), midnight + timedelta(minutes=1)), now)
    period = local_period(at)
    # 1. the city organises a warning-education 上下联学 for both districts
    s = edu["city"].run("plan_session", {
        "session_id": "updown-warning-1", "kind": "warning_education", "title": "市直机关警示教育大会",
        "organiser_unit_id": "city-jw", "scheduled_at": at.isoformat(),
        "joinable": True, "share_with_nodes": ["district-a", "district-b"]})
    slug = s["exchange_slug"]
    assert s["shared_with_nodes"] == ["district-a", "district-b"] and s["nodes_attendance"] == []
    aid = "city/%s" % slug
    # the exchange shared it with its audience (named: the two districts)
    rec = wait_for(lambda: x["city"].record(aid), what="the city's 活动联办 record")
    assert rec["sharing"] == "named" and rec["recipients"] == ["district-a", "district-b"]
    assert rec["content"]["theme"] == "警示教育" and rec["content"]["invited_nodes"] == ["district-a", "district-b"]

    # 2. each district's units join on their own node, nobody registering it
    for district, unit in (("district-a", "a-xj"), ("district-b", "b-xj")):
        wait_for(lambda: aid in [o.get("key") for o in edu[district].ask(
            "offer_for_unit", {"unit_id": unit})["sessions"]], what="the session offered on %s" % district)
    edu["district-a"].run("join_session", {"session_node": "city", "session_id": slug, "unit_id": "a-xj"})
    out = edu["district-a"].run("record_participation", {"session_node": "city", "session_id": slug,
                                                         "unit_id": "a-xj", "headcount": 30})
    assert out["kind"] == "warning_education" and out["counts_for"] == period
    for unit, n in (("b-xj", 12), ("b-station", 8)):
        edu["district-b"].run("record_participation", {"session_node": "city", "session_id": slug,
                                                       "unit_id": unit, "headcount": n})

    # 3. attending counts for 月月行 where it happened
    assert held(edu["district-a"], "a-gw", period, "a-xj") is True
    assert held(edu["district-a"], "a-gw", period, "a-window") is False
    assert held(edu["district-b"], "b-gw", period, "b-station") is True

    # 4. each district's attendance travels back: the organiser sees units, districts, counts
    def reported():
        got = edu["city"].ask("get_session", {"session_id": "updown-warning-1"})
        return got if got["nodes_attendees"] == 50 else None
    got = wait_for(reported, what="both districts' attendance at the city")
    assert [(n["node"], [(u["unit_id"], u["unit_name"], u["attendees"]) for u in n["units"]], n["attendees"])
            for n in got["nodes_attendance"]] == [
        ("district-a", [("a-xj", "甲区x局（示范点）", 30)], 30),
        ("district-b", [("b-station", "乙区基层站所", 8), ("b-xj", "乙区x局", 12)], 20)]
    assert got["nodes_units_attended"] == 3
    # and the exchange's own record of it shows the same, per node
    city_view = x["city"].record(aid)
    assert city_view["participation"]["attendees"] == 50
    assert city_view["participation"]["nodes_attended"] == ["district-a", "district-b"]

    # 5. a correction on a district travels back too (one more unit)
    edu["district-a"].run("record_participation", {"session_node": "city", "session_id": slug,
                                                   "unit_id": "a-window", "headcount": 3})
    wait_for(lambda: edu["city"].ask("get_session", {"session_id": "updown-warning-1"})["nodes_attendees"] == 53,
             what="district-a's corrected attendance at the city")


def test_joint_activity_attendance_counts_for_monthly_warning_education(nodes):
    x, edu = nodes
    # last month's: a-window attended nothing else then (the city's session is this month);
    # 10:00-11:00 in Shanghai on that day, so the activity lies in one local day and month
    # at whatever hour the test runs ("now - 2 h" was yesterday from 16:00 to 18:00 UTC)
    day = local_date(datetime.now(timezone.utc) - timedelta(days=35), "Asia/Shanghai")
    starts = datetime.combine(day, time(10), ZoneInfo("Asia/Shanghai"))
    period = local_period(starts)
    # district-b organises a warning-education 活动联办 and shares it with everyone
    x["district-b"].execute("plan_activity", {
        "activity_id": "warning-day", "unit_id": "b-gw", "title": "区际警示教育联办",
        "theme": "警示教育专场", "description": "共看警示片、共上廉政党课。",
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "location": "乙区廉政教育基地", "invited_nodes": ["district-a"], "share": ALL})
    aid = "district-b/warning-day"
    wait_for(lambda: x["district-a"].record(aid), what="the activity on district-a")
    assert held(edu["district-a"], "a-gw", period, "a-window") is False
    # one entry, in the exchange: district-a's attendance
    x["district-a"].execute("record_attendance", {"activity_id": aid, "units": [
        {"unit_id": "a-window", "attendees": 6}]})
    wait_for(lambda: held(edu["district-a"], "a-gw", period, "a-window"),
             what="a-window's 月月行 from the joint activity")
    # the organiser's own units too, on its node
    x["district-b"].execute("record_attendance", {"activity_id": aid, "units": [
        {"unit_id": "b-station", "attendees": 4}]})
    wait_for(lambda: any(p["session_key"] == aid for p in edu["district-b"].ask(
        "list_sessions", {"unit_id": "b-gw", "period": period})["joined"]), what="district-b's own attendance")
    # corrected in the exchange: a-window did not come after all, a-xj did
    x["district-a"].execute("record_attendance", {"activity_id": aid, "units": [
        {"unit_id": "a-xj", "attendees": 5}]})

    def corrected():
        joined = {p["unit_id"]: p["status"] for p in edu["district-a"].ask(
            "list_sessions", {"unit_id": "a-gw", "period": period})["joined"] if p["session_key"] == aid}
        return joined == {"a-window": "joined", "a-xj": "attended"}
    wait_for(corrected, what="the correction in district-a's education")
    # a-window's only warning education that month is gone: it no longer counts
    assert held(edu["district-a"], "a-gw", period, "a-window") is False
    assert held(edu["district-a"], "a-gw", period, "a-xj") is True
    # the exchange did not echo the education's participations back as new attendance
    history = x["district-a"].query("record_history", {"record_id": aid})
    events_ = history["events"] if isinstance(history, dict) else history
    mine = [e for e in events_ if e["stream_id"].startswith("Attendance:district-a/")]
    assert [e["event_type"] for e in mine] == ["Attendance.Recorded", "Attendance.Corrected"]


def test_cases_of_the_joint_library_are_offered_without_re_entry(nodes, district_a_supervision):
    x, edu = nodes
    # what a-xj's material must fit: its business, and a risk point of supervision's register
    edu["district-a"].run("set_unit_profile", {"unit_id": "a-xj", "business_types": ["政务服务"]})
    district_a_supervision.run("identify_risk_point", {"unit_id": "a-xj", "description": "违规发放补贴",
                                                       "category": "post_duty"})
    wait_for(lambda: edu["district-a"].ask("risk_point_register", {"unit_id": "a-xj"})["risk_points"],
             what="the register entry in district-a's education")
    x["city"].execute("compile_case", {
        "case_id": "typical-dining", "unit_id": "city-jw", "title": "某局干部违规吃喝典型案例",
        "category": "违规吃喝", "summary": "公款吃喝，受到党纪处分。", "facts": "事实。", "analysis": "分析。",
        "lessons": ["严守八项规定"], "tags": ["四风", "政务服务"], "share": ALL})
    x["district-a"].execute("compile_case", {
        "case_id": "own-subsidy", "unit_id": "a-xj", "title": "违规发放补贴案", "category": "违规发放补贴",
        "summary": "本区案例。", "facts": "事实。", "analysis": "分析。", "lessons": ["举一反三"],
        "share": {"sharing": "city", "recipients": []}})
    x["district-a"].execute("compile_case", {
        "case_id": "draft-only", "unit_id": "a-xj", "title": "草稿案例", "category": "其他",
        "summary": "未共享。", "facts": "事实。", "analysis": "分析。", "lessons": ["待定"]})

    def cases():
        return {c["key"]: c for c in edu["district-a"].ask("offer_for_unit", {"unit_id": "a-xj"})["cases"]}
    got = wait_for(lambda: (lambda c: c if {"city/typical-dining", "district-a/own-subsidy"} <= set(c) else None)(
        cases()), what="both cases offered on district-a")
    assert got["city/typical-dining"]["title"] == "某局干部违规吃喝典型案例"
    assert got["city/typical-dining"]["tags"]["risk_points"] == ["四风", "政务服务", "违规吃喝"]
    assert got["city/typical-dining"]["fit"] == 1 and got["district-a/own-subsidy"]["fit"] == 3
    assert "district-a/draft-only" not in got
    # district-b has the city's typical case too (not district-a's city-only one); it fits
    # b-xj once b-xj's business is 政务服务
    edu["district-b"].run("set_unit_profile", {"unit_id": "b-xj", "business_types": ["政务服务"]})
    wait_for(lambda: "city/typical-dining" in [c["key"] for c in edu["district-b"].ask(
        "offer_for_unit", {"unit_id": "b-xj"})["cases"]], what="the city's case on district-b")
    assert "district-a/own-subsidy" not in [c["key"] for c in edu["district-b"].ask(
        "offer_for_unit", {"unit_id": "b-xj"})["cases"]]
    # withdrawn by the city: no longer offered
    x["city"].execute("withdraw_record", {"record_id": "city/typical-dining", "kind": "case", "reason": "更新后重新发布"})
    wait_for(lambda: "city/typical-dining" not in cases(), what="the withdrawal on district-a")
    assert "district-a/own-subsidy" in cases()


def test_a_districts_month_reaches_the_city_provisional_then_final(nodes):
    x, edu = nodes
    a = edu["district-a"]
    now = datetime.now(timezone.utc)
    this_month = local_period(now)
    a.run("record_session", {"kind": "warning_education", "title": "以案促改警示教育", "organiser_unit_id": "a-xj",
                             "scheduled_at": now.isoformat(), "attendance": {"headcount": 9}})
    year, month = map(int, this_month.split("-"))
    nxt = datetime(year + (month == 12), month % 12 + 1, 2, 2, 0, tzinfo=timezone.utc)
    a.set_clock(nxt)  # the 2nd of next month: this month is over, in its grace period
    out = a.run("publish_due_indicators")
    assert out["period"] == this_month and out["provisional"] is True

    def at_city(flag):
        cmp = x["city"].query("compare_indicators", {"period": this_month, "source": "education"})
        rows = {(u["node"], u["unit_id"]): u for u in cmp["units"]}
        u = rows.get(("district-a", "a-xj"))
        return u if u and u["provisional"] is flag else None
    u = wait_for(lambda: at_city(True), what="district-a's provisional figures at the city")
    assert u["values"]["warning_education_held"] == 1 and "provisional" not in u["values"]

    def district_at_city(flag):  # the ranking read model: a flag on the district's row
        cmp = x["city"].query("city_comparison", {"period": this_month, "source": "education"})
        d = {r["node"]: r for r in cmp["districts"]}.get("district-a")
        return d if d and d["provisional"] is flag and d["values"] else None
    d = wait_for(lambda: district_at_city(True), what="district-a's provisional row at the city")
    assert "provisional" not in d["values"] and "provisional" not in cmp_names(x, this_month)
    a.set_clock(nxt + timedelta(days=10))  # grace over: final
    out = a.run("publish_due_indicators")
    assert [r["provisional"] for r in out["republished"]] == [False]
    wait_for(lambda: at_city(False), what="district-a's final figures at the city")
    wait_for(lambda: district_at_city(False), what="district-a's final row at the city")


def cmp_names(x, period):
    return x["city"].query("city_comparison", {"period": period})["indicators"]
