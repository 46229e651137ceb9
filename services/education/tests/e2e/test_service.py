"""The education service under nameko, beside the real units service: real RabbitMQ
(a vhost per test), real databases, HTTP with bearer tokens and RPC with actors."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port, get_extension

from shared.contracts import validate_message
from shared.errors import Forbidden
from shared.service import EventSourcing
from tests.harness import wait_for

from services.education.service import EducationService
from services.units.service import UnitsService

NODE = "district-test"



@pytest.fixture
def start_node(node_config, container_factory):
    """Start units and education on one node (one broker vhost, one user directory);
    each process gets its own HTTP port. Returns (education container, base URL).
    The containers stop when this fixture ends, before the databases go."""
    started = []

    def start(education_extra=None):
        units_cfg = dict(node_config, WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
        edu_cfg = dict(node_config, **(education_extra or {}))
        units = container_factory(UnitsService, units_cfg)
        education = container_factory(EducationService, edu_cfg)
        units.start()
        education.start()
        started.extend((education, units))
        return education, "http://%s" % edu_cfg["WEB_SERVER_ADDRESS"]
    yield start
    for container in started:
        container.stop()


def set_clock(container, *args):
    get_extension(container, EventSourcing).runtime.clock = lambda: datetime(*args, tzinfo=timezone.utc)


def register_district(n, admin):
    n.units.register_unit({"unit_id": "dist", "name": "X区", "kind": "district_authority",
                           "level": "district"}, actor=admin)
    for uid, name in (("fin", "财政局"), ("mkt", "市场监管局")):
        n.units.register_unit({"unit_id": uid, "name": name, "kind": "government_dept", "level": "unit",
                               "parent_id": "dist"}, actor=admin)
    n.units.register_unit({"unit_id": "fin-s1", "name": "预算科", "kind": "section", "level": "section",
                           "parent_id": "fin"}, actor=admin)


def head(base):
    return requests.get(base + "/health", timeout=5).json()["head"]


def api(base, token, name, body=None, method="POST"):
    headers = {"Authorization": "Bearer %s" % token} if token else {}
    if method == "POST":
        return requests.post("%s/api/%s" % (base, name), json=body or {}, headers=headers, timeout=10)
    return requests.get("%s/api/%s" % (base, name), params=body or {}, headers=headers, timeout=10)


def test_promotion_talk_overdue_chain_across_units_and_education(start_node, node_config, admin_token,
                                                                  make_user):
    education, base = start_node({"EDUCATION_TALK_DUE_DAYS": "10"})
    admin = {"token": admin_token}  # an RPC actor is proof, not a dict of roles
    set_clock(education, 2026, 3, 1, 1, 0)  # the young cadre is enrolled today, due in 90 days
    fin_token = make_user("zhang", ["unit-admin"], "fin")
    mkt_token = make_user("li", ["unit-admin"], "mkt")
    with ClusterRpcProxy(node_config) as n:
        register_district(n, admin)
        n.units.register_person({"person_id": "p1", "name": "王某", "unit_id": "fin-s1", "post": "科员",
                                 "young_cadre": True}, actor=admin)
        wait_for(lambda: n.education.young_cadre_programme({"unit_id": "fin"}, actor=admin)["young_cadres"],
                 what="the young cadre enrolled from Person.Registered")
        n.units.promote_person({"person_id": "p1", "new_post": "预算科副科长", "unit_id": "fin-s1",
                                "effective_on": "2026-03-02"}, actor=admin)
        talks = wait_for(lambda: n.education.list_talks({"unit_id": "fin"}, actor=admin)["talks"],
                         what="the talk scheduled from Person.Promoted")
    assert [(t["talk_id"], t["due_on"], t["status"]) for t in talks] == [
        ("p1/2026-03-02", "2026-03-12", "scheduled")]

    # the unit's inbox over HTTP: due
    r = api(base, fin_token, "unit_inbox", {"unit_id": "fin-s1"}, "GET")
    assert r.status_code == 200 and [i["kind"] for i in r.json()["items"]] == ["talk_due"]
    assert api(base, mkt_token, "unit_inbox", {"unit_id": "fin-s1"}, "GET").status_code == 403

    # 12 days late in Shanghai: the timer's command, run with a controlled clock
    set_clock(education, 2026, 3, 23, 17, 0)   # 24 March, 01:00 in Shanghai
    with ClusterRpcProxy(node_config) as n:
        out = n.education.detect_overdue({}, actor=admin)
        assert out["today"] == "2026-03-24" and out["talks_overdue"] == ["p1/2026-03-02"]
        assert [(e["step"], e["notify_unit_id"]) for e in out["escalations"]] == [
            (1, "fin-s1"), (2, "fin")]
    mine = api(base, fin_token, "my_inbox", {}, "GET").json()
    assert sorted(i["kind"] for i in mine["items"]) == ["talk_escalated", "talk_overdue"]
    assert mine["unread"] == 2

    # the talk is held (over HTTP, by the unit-admin above): everything closes
    r = api(base, fin_token, "record_talk_held", {"talk_id": "p1/2026-03-02", "held_on": "2026-03-24",
                                                  "conducted_by": "局党组书记"})
    assert r.status_code == 200 and (r.json()["on_time"], r.json()["days_late"]) == (False, 12)
    assert api(base, fin_token, "my_inbox", {}, "GET").json()["items"] == []
    rate = api(base, admin_token, "unit_indicators", {"unit_id": "fin", "period": "2026-03"}, "GET").json()
    assert rate["talks_on_time_rate"] == 0.0


def test_http_checkins_errors_and_scope_on_postgresql(pg_url, start_node, node_config, admin_token,
                                                       make_user):
    # pg_url first: set up first, dropped last - after the containers have stopped
    education, base = start_node({"EDUCATION_DATABASE_URL": pg_url})
    admin = {"token": admin_token}  # an RPC actor is proof, not a dict of roles
    set_clock(education, 2026, 1, 31, 23, 0)  # 1 February, 07:00 in Shanghai
    people = ["m%02d" % i for i in range(12)]
    with ClusterRpcProxy(node_config) as n:
        register_district(n, admin)
        for i, pid in enumerate(people):
            n.units.register_person({"person_id": pid, "name": "党员", "unit_id": "fin-s1" if i % 2 else "mkt",
                                     "post": "科员"}, actor=admin)
        wait_for(lambda: n.education.checkin_daily({"unit_id": "dist", "on": "2026-02-01"},
                                                   actor=admin)["members"] == len(people),
                 what="members mirrored from Person.Registered")
    tokens = {pid: make_user(pid, ["viewer"]) for pid in people}
    r = api(base, admin_token, "set_daily_reminder", {"on": "2026-02-01", "text": "新春将至, 廉洁过节"})
    assert r.status_code == 200

    # everyone at once, each twice (a double tap), plus one gateway account for m00
    gateway = make_user("gw", ["unit-admin"], "dist")
    pool = eventlet.GreenPool(32)
    jobs = [(pid, tokens[pid]) for pid in people for _ in (0, 1)] + [("m00", gateway)]
    answers = list(pool.imap(lambda job: api(base, job[1], "check_in", {"person_id": job[0]}), jobs))
    assert [a.status_code for a in answers] == [200] * len(jobs)
    firsts = [a.json() for a in answers if not a.json()["duplicate"]]
    assert sorted(f["person_id"] for f in firsts) == people   # each counted once
    assert all(f["on"] == "2026-02-01" and f["streak"] == 1 for f in firsts)
    daily = api(base, admin_token, "checkin_daily", {"unit_id": "dist"}, "GET").json()
    assert (daily["day"], daily["members"], daily["checked_in"], daily["coverage"]) == (
        "2026-02-01", 12, 12, 1.0)
    assert api(base, tokens["m01"], "member_streak", {"person_id": "m01"}, "GET").json()["current"] == 1
    # tomorrow's reminder set in advance does not count tomorrow in today's coverage
    assert api(base, admin_token, "set_daily_reminder",
               {"on": "2026-02-02", "text": "廉洁从政, 从点滴做起"}).status_code == 200
    month = api(base, admin_token, "checkin_monthly", {"unit_id": "dist", "period": "2026-02"}, "GET").json()
    assert (month["reminder_days"], month["member_days"], month["coverage"]) == (1, 12, 1.0)
    assert [d["day"] for d in month["days"]] == ["2026-02-01"]
    fin = api(base, admin_token, "unit_indicators", {"unit_id": "fin", "period": "2026-02"}, "GET").json()
    assert fin["checkin_coverage"] == 1.0
    # on the day itself it counts: nobody has acknowledged it yet
    set_clock(education, 2026, 2, 1, 23, 0)
    month = api(base, admin_token, "checkin_monthly", {"unit_id": "dist", "period": "2026-02"}, "GET").json()
    assert (month["reminder_days"], month["coverage"]) == (2, 0.5)
    set_clock(education, 2026, 1, 31, 23, 0)
    assert api(base, tokens["m01"], "member_streak", {"person_id": "m02"}, "GET").status_code == 403

    # bad input: 400 with field messages, nothing written
    before = head(base)
    r = api(base, tokens["m01"], "check_in", {})
    assert r.status_code == 400 and r.json()["fields"] == {"person_id": ["必填项"]}
    r = api(base, admin_token, "plan_session", {"kind": "warning_education", "title": "",
                                                "organiser_unit_id": "fin", "scheduled_at": "tomorrow"})
    assert r.status_code == 400 and {"title", "scheduled_at"} <= set(r.json()["fields"])
    r = requests.post(base + "/api/check_in", data="{not json", timeout=5,
                      headers={"Authorization": "Bearer %s" % admin_token,
                               "Content-Type": "application/json"})
    assert r.status_code == 400
    # who may: 401 without a token, 403 outside the unit scope or without the role
    assert api(base, None, "check_in", {"person_id": "m01"}).status_code == 401
    mkt_admin = make_user("li", ["unit-admin"], "mkt")
    r = api(base, mkt_admin, "plan_session", {"kind": "warning_education", "title": "x",
                                              "organiser_unit_id": "fin",
                                              "scheduled_at": "2026-02-01T01:00:00Z"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert api(base, tokens["m01"], "add_content", {"kind": "slogan", "title": "x", "text": "y"}).status_code == 403
    assert api(base, mkt_admin, "check_in", {"person_id": "m01"}).status_code == 403  # m01 is fin's
    assert head(base) == before
    # RPC: the same typed errors come back
    with ClusterRpcProxy(node_config) as n:
        with pytest.raises(Forbidden):
            n.education.publish_indicators({"period": "2026-01"}, actor={"token": mkt_admin})
    assert head(base) == before


def test_city_feed_references_and_indicators_reach_the_broker(start_node, node_config, admin_token,
                                                              make_user, vhost):
    education, base = start_node()
    set_clock(education, 2026, 3, 1, 2, 0)
    admin = {"token": admin_token}  # an RPC actor is proof, not a dict of roles
    exchange = Exchange("education.events", type="topic", durable=True)
    with Connection(vhost["uri"]) as conn:
        queue = Queue("test-indicators", exchange=exchange, routing_key="EducationIndicators.Published",
                      durable=False, auto_delete=False)
        queue(conn.channel()).declare()
        with ClusterRpcProxy(node_config) as n:
            register_district(n, admin)
            wait_for(lambda: n.education.warning_education_compliance(
                {"unit_id": "dist", "period": "2026-02"}, actor=admin)["units_total"] == 2,
                what="the unit tree mirrored")
            # what the exchange service does with the city's feed
            assert n.education.register_external_session({
                "origin_node": "city", "record_id": "joint-12", "title": "市区上下联学: 警示教育专场",
                "kind": "warning_education", "held_at": "2026-02-27T06:00:00Z", "organiser": "市直机关工委",
                "tags": {"risk_points": ["违规吃喝"]}}, actor=admin)["changed"] is True
            n.education.register_external_case({"origin_node": "city", "record_id": "case-3",
                                                "title": "某局干部违规吃喝案"}, actor=admin)
            n.education.join_session({"session_node": "city", "session_id": "joint-12", "unit_id": "fin"},
                                     actor=admin)
        fin_admin = make_user("zhang", ["unit-admin"], "fin")
        r = api(base, fin_admin, "record_participation", {"session_node": "city", "session_id": "joint-12",
                                                          "unit_id": "fin", "headcount": 35})
        assert r.status_code == 200 and r.json()["counts_for"] == "2026-02"
        r = api(base, admin_token, "publish_due_indicators", {})  # 1 March: February is over
        assert r.status_code == 200 and r.json()["published"] == ["fin", "mkt"]

        bodies = {}

        def drain():
            while True:
                msg = queue(conn.channel()).get(no_ack=True)
                if msg is None:
                    return len(bodies) >= 2
                body = json.loads(msg.body) if isinstance(msg.body, (str, bytes)) else msg.body
                bodies[body["payload"]["unit_id"]] = body
        wait_for(drain, what="EducationIndicators.Published on education.events")
        queue(conn.channel()).delete()
    for unit_id, held in (("fin", True), ("mkt", False)):
        body = bodies[unit_id]
        validate_message(body)  # the envelope and the payload's contract
        # 1 March: February is over but still in its grace period for late entries
        assert body["payload"] == {"unit_id": unit_id, "period": "2026-02", "warning_education_held": held,
                                   "checkin_coverage": 0.0, "talks_on_time_rate": None,
                                   "provisional": True}
    district = api(base, admin_token, "published_indicators", {"period": "2026-02"}, "GET").json()["district"]
    assert district["node_id"] == NODE and district["figures"]["warning_education_compliance"] == 0.5
