"""API tokens expire and are revoked at once; console sessions expire idle and absolute;
a disabled user is refused everywhere. Two directories over one database stand for two
processes of one node: what one revokes, the other's cache must not keep accepting."""
import pytest

from shared.auth import (
    API_TOKEN_PREFIX, SESSION_TOKEN_PREFIX, UserDirectory, api_tokens, console_sessions,
)
from shared.db import make_engine
from shared.errors import BadInput, NotFound, Unauthenticated

DAY_US = 86400 * 1_000_000


class Clock:
    def __init__(self, us=1_800_000_000_000_000):
        self.us = us

    def __call__(self):
        return self.us

    def forward(self, seconds):
        self.us += int(seconds * 1_000_000)


@pytest.fixture
def node(db_url):
    """(directory A, directory B, clock): two processes of one node, one shared clock."""
    clock = Clock()
    made = []
    for _ in range(2):
        d = UserDirectory(make_engine(db_url), "n", token_days=30, clock=clock)
        d.create_schema()  # each process does it at start-up: the second must not fail
        made.append(d)
    made[0].add_user("zhang", "张三", ["unit-admin"], "xj")
    made[0].add_user("li", "李四", ["inspector"])
    yield made[0], made[1], clock
    for d in made:
        d.engine.dispose()


def refused(directory, token):
    with pytest.raises(Unauthenticated):
        directory.authenticate(token)
    return True


def test_a_token_expires_after_the_node_default_or_its_own_days(node):
    a, b, clock = node
    default = a.issue_token("zhang")
    short = a.issue_token("zhang", "ci", days=1)
    assert default.startswith(API_TOKEN_PREFIX)
    assert b.authenticate(short).user_id == b.authenticate(default).user_id == "zhang"
    clock.forward(86400)  # the cached answer must not outlive the expiry either
    assert refused(b, short)
    assert b.authenticate(default).roles == ("unit-admin",)
    clock.forward(29 * 86400)
    assert refused(b, default)
    for bad in (0, -1, 4000, "7", True):
        with pytest.raises(BadInput):
            a.issue_token("zhang", days=bad)
    with pytest.raises(NotFound):
        a.issue_token("nobody")


def test_revoking_in_one_process_is_effective_at_once_in_another(node):
    a, b, _ = node
    first, second = a.issue_token("zhang", "one"), a.issue_token("zhang", "two")
    other = a.issue_token("li")
    assert b.authenticate(first).user_id == "zhang"  # now in b's cache
    listed = a.list_tokens("zhang")
    assert sorted(t["label"] for t in listed) == ["one", "two"]
    assert all(len(t["token_id"]) == 12 and first not in str(t) for t in listed)
    one_id = next(t["token_id"] for t in listed if t["label"] == "one")
    assert a.revoke_tokens("zhang", one_id) == 1
    assert refused(b, first)
    assert b.authenticate(second).user_id == "zhang"
    assert b.authenticate(other).user_id == "li"
    # an id that is not one of the user's live tokens: 404; a malformed one: 400
    with pytest.raises(NotFound):
        a.revoke_tokens("zhang", one_id)
    with pytest.raises(NotFound):
        a.revoke_tokens("li", next(t["token_id"] for t in listed if t["label"] == "two"))
    with pytest.raises(BadInput):
        a.revoke_tokens("zhang", "../../etc")
    assert b.authenticate(second).user_id == "zhang"  # the refused revokes changed nothing
    assert a.revoke_tokens("zhang") == 1  # --all: the one still live
    assert refused(b, second)
    assert b.authenticate(other).user_id == "li"
    # the holder revoking their own token by its value
    b.authenticate(other)
    a.revoke_token(other)
    assert refused(b, other)


def test_disabling_a_user_refuses_their_tokens_and_sessions_at_once(node):
    a, b, _ = node
    token = a.issue_token("zhang")
    session = a.open_session("zhang", 600, 3600)
    other = a.issue_token("li")
    assert b.authenticate(token).user_id == b.authenticate(session).user_id == "zhang"
    a.set_disabled("zhang")
    assert refused(b, token) and refused(b, session)
    assert b.authenticate(other).user_id == "li"
    with pytest.raises(Unauthenticated):
        a.open_session("zhang", 600, 3600)
    a.set_disabled("zhang", False)
    assert b.authenticate(token).user_id == "zhang"
    assert refused(b, session)  # a disable ended the session for good
    with pytest.raises(NotFound):
        a.set_disabled("nobody")


def test_a_console_session_expires_when_idle_and_at_its_absolute_limit(node):
    a, b, clock = node
    token = a.open_session("li", idle_seconds=600, absolute_seconds=1500, client="127.0.0.1 Firefox")
    assert token.startswith(SESSION_TOKEN_PREFIX)
    with a.engine.connect() as c:
        rows = c.execute(console_sessions.select()).mappings().all()
    assert len(rows) == 1 and token not in str(dict(rows[0])) and len(rows[0]["token_hash"]) == 64
    assert b.authenticate(token).roles == ("inspector",)
    clock.forward(500)
    assert a.touch_session(token).user_id == "li"  # idle expiry now at 1100 s
    clock.forward(500)  # 1000 s: idle for 500 s only
    assert b.authenticate(token).user_id == "li"
    assert b.touch_session(token).user_id == "li"  # would be 1600 s: capped at 1500 s
    clock.forward(499)
    assert b.authenticate(token).user_id == "li"
    clock.forward(1)
    assert refused(a, token) and refused(b, token)
    with pytest.raises(Unauthenticated):
        a.touch_session(token)
    # idle: nothing touched it for idle_seconds
    idle = a.open_session("li", 60, 3600)
    clock.forward(60)
    assert refused(b, idle)


def test_ending_a_session_is_effective_at_once_and_only_for_it(node):
    a, b, _ = node
    one, two = a.open_session("li", 600, 3600), a.open_session("li", 600, 3600)
    assert b.authenticate(one).user_id == b.authenticate(two).user_id == "li"
    a.end_session(one)
    assert refused(b, one)
    assert b.authenticate(two).user_id == "li"
    with pytest.raises(Unauthenticated):
        b.touch_session(a.issue_token("li"))  # an API token is no session
    for bad in [(0, 10), (10, 0), (20, 10), ("5", 10), (True, 10)]:
        with pytest.raises(BadInput):
            a.open_session("li", *bad)
    with pytest.raises(NotFound):
        a.open_session("nobody", 10, 10)


def test_many_sessions_at_once_are_each_judged_as_one_would_be(node):
    """authenticate_many (a console's concurrent requests, education's grouped
    check-ins): the same answer per token as authenticate, in order, and a revoke in
    the other process is effective at once for cached sessions too."""
    a, b, clock = node
    one, two, ended = (a.open_session(u, 600, 3600) for u in ("li", "zhang", "li"))
    a.end_session(ended)
    api = a.issue_token("li")
    got = b.authenticate_many([one, ended, two, api, "qs_unknown", None, one])
    assert [x.user_id if not isinstance(x, Exception) else None for x in got] == [
        "li", None, "zhang", None, None, None, "li"]
    assert all(isinstance(x, Unauthenticated) for x in (got[1], got[3], got[4], got[5]))
    assert got[2].roles == ("unit-admin",) and got[2].unit_scope == "xj"
    assert [x.user_id for x in b.authenticate_many([two, one])] == ["zhang", "li"]  # cached
    a.end_session(two)
    again = b.authenticate_many([one, two])
    assert again[0].user_id == "li" and isinstance(again[1], Unauthenticated)
    clock.forward(601)  # idle: refused, cached or not
    assert all(isinstance(x, Unauthenticated) for x in b.authenticate_many([one, one]))
    assert b.authenticate_many([]) == []


def test_touches_written_late_in_bulk_push_from_their_own_time_and_revive_nothing(node):
    """The console writes its requests' touches a second late, many in one transaction:
    each pushes its session from the request's time, never back (a later touch written
    first), never past the absolute limit, and an ended or lapsed session stays so."""
    a, b, clock = node
    early, late, ended, lapsed = (a.open_session("li", 600, 1500) for _ in range(4))
    a.end_session(ended)
    s = 1_000_000
    start = clock.us
    clock.forward(500)
    a.touch_session(late)  # at 500 s: idle expiry 1100 s
    a.touch_sessions({early: start + 100 * s, late: start + 100 * s, ended: start + 100 * s,
                      lapsed: start + 650 * s})  # lapsed was idle since 0: gone at 600 s
    clock.forward(250)  # 750 s: early was pushed to 700 s by its request at 100 s
    assert refused(b, early) and refused(b, ended) and refused(b, lapsed)
    assert b.authenticate(late).user_id == "li"  # the older touch did not pull it back
    a.touch_sessions({late: clock.us})  # 1350 s
    clock.forward(590)  # 1340 s
    assert b.authenticate(late).user_id == "li"
    a.touch_sessions({late: clock.us})  # would be 1940 s: capped at 1500 s
    clock.forward(160)
    assert refused(b, late)


def test_tokens_made_before_expiry_existed_expire_after_the_upgrade(sqlite_url):
    """A node database from before this change: create_schema adds the column, and a token
    issued then expires ``token_days`` after it was issued, like any other."""
    from sqlalchemy import text
    engine = make_engine(sqlite_url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE users (user_id VARCHAR(100) PRIMARY KEY, name VARCHAR(200) NOT NULL,"
                       " roles VARCHAR(200) NOT NULL, unit_scope VARCHAR(100), disabled BOOLEAN NOT NULL,"
                       " created_at_us BIGINT NOT NULL)"))
        c.execute(text("CREATE TABLE api_tokens (token_hash VARCHAR(64) PRIMARY KEY, user_id VARCHAR(100)"
                       " NOT NULL, label VARCHAR(200) NOT NULL, created_at_us BIGINT NOT NULL,"
                       " revoked BOOLEAN NOT NULL)"))
    clock = Clock()
    users = UserDirectory(engine, "n", token_days=30, clock=clock)
    users.create_schema()
    users.add_user("wang", "王五", ["viewer"])
    from shared.auth import hash_token
    with engine.begin() as c:  # as the old code wrote them: no expiry
        for token, days_ago in (("ql_recent", 29), ("ql_ancient", 31)):
            c.execute(api_tokens.insert().values(
                token_hash=hash_token(token), user_id="wang", label="old", revoked=False,
                created_at_us=clock() - days_ago * DAY_US))
    # they expire like new ones: token_days after they were issued
    assert users.authenticate("ql_recent").user_id == "wang"
    assert refused(users, "ql_ancient")
    clock.forward(86400)
    assert refused(users, "ql_recent")
    assert users.authenticate(users.issue_token("wang")).user_id == "wang"
    engine.dispose()
