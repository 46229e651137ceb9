"""The morning burst through the console (services/console/checkins.py): concurrent
check-ins of many members are sent to education together, in fewer calls than
requests, and every member is still told their own answer - their own streak, a
repeat, not a member - and counted once. The real units, education and console
services; the members' browsers are threads of plain HTTP sessions."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

from nameko.testing.utils import get_extension
from sqlalchemy import func, select

from services.console.service import ConsoleDependency
from services.console.tests.conftest import WITH_EDUCATION, console_node
from services.console.tests.e2e.test_console_education import daily, today
from tests.harness import wait_for

STREAK = {3: 6, 2: 6, 1: 12}   # members whose streak today will be 3, 2, 1
REPEATS = 6                    # members who already checked in today
STRANGERS = 4                  # console users who are not members


def _members():
    out, i = {}, 0
    for streak, n in (*STREAK.items(), (0, REPEATS)):
        for _ in range(n):
            out["p%02d" % i] = streak
            i += 1
    return out


MEMBERS = _members()  # person id -> streak today (0: already checked in today)


def _seed(n):
    n.register_units()
    for person_id in MEMBERS:
        n.register_person(person_id, "党员" + person_id, "root", "科员")
        n.add_user(person_id, "党员" + person_id, ["viewer"])
    for i in range(STRANGERS):
        n.add_user("s%d" % i, "访客%d" % i, ["viewer"])
    wait_for(lambda: daily(n)["members"] == len(MEMBERS), timeout=30)
    # the days before: education's clock moved back, as a day of the service
    rt = n.runtime("education")
    real = rt.clock
    try:
        for back in (2, 1):
            rt.clock = lambda back=back: datetime.now(timezone.utc) - timedelta(days=back)
            on = (today() - timedelta(days=back)).isoformat()
            n.api("education", "set_daily_reminder", {"on": on, "text": "廉洁提醒第%d天" % back})
            for person_id, streak in MEMBERS.items():
                if streak > back:
                    n.api("education", "check_in", {"person_id": person_id})
    finally:
        rt.clock = real
    n.api("education", "set_daily_reminder", {"on": today().isoformat(), "text": "今天的廉洁提醒"})
    for person_id, streak in MEMBERS.items():
        if streak == 0:
            n.api("education", "check_in", {"person_id": person_id})


node = console_node(_seed, WITH_EDUCATION)


def _flash(response) -> str:
    cookie = response.cookies.get("ql_flash")
    return unquote(cookie) if cookie else ""


def _today_rows(n) -> tuple[int, int]:
    from services.education.projections import checkins
    rt = n.runtime("education")
    with rt.read() as c:
        on = today().isoformat()
        return (c.execute(select(func.count()).select_from(checkins).where(checkins.c.day == on)).scalar(),
                c.execute(select(func.count(func.distinct(checkins.c.person_id)))
                          .where(checkins.c.day == on)).scalar())


def test_concurrent_check_ins_go_together_and_each_member_is_told_their_own_answer(node, client_for):
    people = [*MEMBERS, *("s%d" % i for i in range(STRANGERS))]
    clients = {p: client_for(node, p) for p in people}
    forms = {p: {"_csrf": c.csrf("/account")} for p, c in clients.items()}
    group = get_extension(node.container("console"), ConsoleDependency).checkins
    calls_before = group.calls
    answers, start = {}, threading.Event()

    def tap(p):
        start.wait()
        answers[p] = clients[p].post("/checkin", forms[p], csrf=False)
    threads = [threading.Thread(target=tap, args=(p,)) for p in people]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(60)
    assert len(answers) == len(people)
    for p, streak in MEMBERS.items():
        r = answers[p]
        assert r.status_code == 303, (p, r.status_code, r.text[:300])
        if streak:
            assert _flash(r) == "打卡成功，已连续打卡 %d 天" % streak, p
        else:
            assert _flash(r) == "今天已经打过卡了，不重复计数", p
    for i in range(STRANGERS):
        r = answers["s%d" % i]
        assert r.status_code == 409 and "未登记为本节点的党员" in r.text
    # sent together: fewer calls to education than check-ins
    calls = group.calls - calls_before
    assert 1 <= calls < len(people) and group.largest > 1, (calls, group.largest)
    # each member counted once; a second round is told it was counted already
    assert _today_rows(node) == (len(MEMBERS), len(MEMBERS))
    again = {}
    threads = [threading.Thread(target=lambda p=p: again.__setitem__(
        p, clients[p].post("/checkin", forms[p], csrf=False))) for p in MEMBERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(_flash(again[p]) == "今天已经打过卡了，不重复计数" for p in MEMBERS)
    assert _today_rows(node) == (len(MEMBERS), len(MEMBERS))
    assert daily(node)["checked_in"] == len(MEMBERS)


def test_one_members_refused_session_does_not_spoil_the_others_in_the_same_call(node):
    """education.check_in_many itself: every entry is judged on its own - an ended
    session, a proof that is not a token, bad data - beside members checked in."""
    from nameko.exceptions import deserialize
    from nameko.standalone.rpc import ServiceRpcProxy

    from shared.errors import BadInput, Unauthenticated
    ok = node.users.open_session("p00", 600, 3600, "test")
    ended = node.users.open_session("p01", 600, 3600, "test")
    node.users.end_session(ended)
    entries = [{"data": {"person_id": "p00"}, "actor": {"token": ok}},
               {"data": {"person_id": "p01"}, "actor": {"token": ended}},
               {"data": {"person_id": "p02"}, "actor": {"roles": ["node-admin"]}},
               {"data": {"person_id": ""}, "actor": {"token": ok}}]
    with ServiceRpcProxy("education", {"AMQP_URI": node.base["AMQP_URI"]}) as education:
        answers = education.check_in_many(entries=entries)
    assert answers[0]["result"]["duplicate"] is True  # checked in by the test above
    assert isinstance(deserialize(answers[1]["error"]), Unauthenticated)
    assert isinstance(deserialize(answers[2]["error"]), Unauthenticated)
    assert isinstance(deserialize(answers[3]["error"]), BadInput)


def test_an_own_check_in_is_the_sessions_member_whatever_the_data_says(node):
    """``own``: education takes the person id from the session it has just checked (the
    console sends the token unlooked-up), not from the data; a refused session's entry
    is refused and nothing is recorded for it."""
    from nameko.exceptions import deserialize
    from nameko.standalone.rpc import ServiceRpcProxy

    from shared.errors import NotFound, Unauthenticated
    stranger = node.users.open_session("s0", 600, 3600, "test")  # a user who is no member
    member = node.users.open_session("p00", 600, 3600, "test")
    ended = node.users.open_session("p01", 600, 3600, "test")
    node.users.end_session(ended)
    rows = _today_rows(node)
    entries = [{"data": {"person_id": "p00"}, "own": True, "actor": {"token": stranger}},
               {"data": {}, "own": True, "actor": {"token": member}},
               {"data": {}, "own": True, "actor": {"token": ended}}]
    with ServiceRpcProxy("education", {"AMQP_URI": node.base["AMQP_URI"]}) as education:
        answers = education.check_in_many(entries=entries)
    assert isinstance(deserialize(answers[0]["error"]), NotFound)  # s0's, not p00's
    assert answers[1]["result"]["person_id"] == "p00" and answers[1]["result"]["duplicate"] is True
    assert isinstance(deserialize(answers[2]["error"]), Unauthenticated)
    assert _today_rows(node) == rows


def test_a_signed_out_member_is_sent_to_sign_in_and_not_counted(node, client_for):
    """The check-in page leaves the session check to education: a session ended on the
    server is still refused at once - to the sign-in page, recorded, nothing counted."""
    from services.console.signin import sign_in_records
    from services.console.web import csrf_for
    c = client_for(node, "p02")
    token = c.s.cookies.get("ql_session")
    node.users.end_session(token)
    rows = _today_rows(node)
    r = c.post("/checkin", {"_csrf": csrf_for(token)}, csrf=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?next=%2Fcheckin"), r.text
    assert _today_rows(node) == rows
    with node.users.engine.connect() as conn:
        outcomes = [o for (o,) in conn.execute(select(sign_in_records.c.outcome).where(
            sign_in_records.c.user_id == "p02").order_by(sign_in_records.c.record_id))]
    assert outcomes[-1] == "expired"


def test_a_check_in_alone_pushes_the_sessions_idle_expiry_back(node, client_for):
    """Education accepted the session, so the console notes its touch as its own check
    would have: the one request after signing in is the check-in."""
    from services.console.web import csrf_for
    from shared.auth import console_sessions, hash_token
    c = client_for(node, "p03")
    token = c.s.cookies.get("ql_session")
    r = c.post("/checkin", {"_csrf": csrf_for(token)}, csrf=False)
    assert r.status_code == 303 and _flash(r).startswith(("打卡成功", "今天已经打过卡了")), r.text

    def pushed():
        with node.users.engine.connect() as conn:
            row = conn.execute(select(console_sessions).where(
                console_sessions.c.token_hash == hash_token(token))).mappings().one()
        return row["idle_expires_at_us"] > row["created_at_us"] + row["idle_seconds"] * 1_000_000
    wait_for(pushed, 10, what="the session's idle expiry pushed back after the check-in")
