"""The console over plain HTTP against the real services: sign-in, sessions, CSRF, roles,
scopes, escaping. (The flows a person clicks through are in test_console_browser.py.)"""
from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select, update

from services.console.signin import sign_in_records
from services.console.tests.conftest import PASSWORD, console_node
from shared.auth import console_sessions
from shared.events import now_us

XSS = "<script>alert(1)</script>"


def _seed(n):
    n.register_units(a="区财政局", b=("区市场监管局", "law_enforcement", "unit", "root"),
                     xss=(XSS, "section", "section", "a"))
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("insp", "钱检查", ["inspector"])


node = console_node(_seed, CONSOLE_LOCK_AFTER="3", CONSOLE_ADDRESS_LOCK_AFTER="6",
                    CONSOLE_BACKOFF_SECONDS="0")


def _records(node, user_id):
    with node.users.engine.connect() as c:
        return [r.outcome for r in c.execute(select(sign_in_records.c.outcome).where(
            sign_in_records.c.user_id == user_id).order_by(sign_in_records.c.record_id))]


def _forget_address(node):
    """Older failures from this test machine's address no longer count (each test that
    fails sign-ins on purpose starts and ends with a clean address)."""
    with node.users.engine.begin() as conn:
        conn.execute(update(sign_in_records).where(sign_in_records.c.client == "127.0.0.1")
                     .values(client="127.0.0.1-earlier"))


def _unit_names(node):
    tree = node.api("units", "list_units", {"unit_id": node.ids["root"], "include_inactive": True},
                    kind="query")
    return sorted(u["name"] for u in tree["units"])


# -- sign-in and sessions ----------------------------------------------------------------------
def test_pages_need_sign_in_and_go_back_after_it(node, client_for):
    c = client_for(node)
    r = c.get("/units")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?next=%2Funits")
    login = c.get("/login")
    assert "登录" in login.text and "Set-Cookie" in login.headers
    r = c.sign_in("admin")
    assert r.status_code == 303
    cookie = r.headers["Set-Cookie"]
    assert "ql_session=qs_" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # not configured behind TLS here
    home = c.get("/")
    assert home.status_code == 200 and "工作台" in home.text and "王管理" in home.text


def test_wrong_password_is_refused_recorded_and_locks_after_three(node, client_for):
    node.add_user("lockme", "孙锁定", ["viewer"])
    _forget_address(node)
    c = client_for(node)
    for _ in range(3):
        r = c.sign_in("lockme", "wrong-password1")
        assert r.status_code == 401 and "用户名或密码不正确" in r.text
    # locked now: even the right password is refused, and no session cookie is set
    r = c.sign_in("lockme", PASSWORD)
    assert r.status_code == 429 and "已锁定" in r.text
    assert "ql_session=qs_" not in r.headers.get("Set-Cookie", "")
    assert _records(node, "lockme") == ["failure", "failure", "failure", "lockout", "locked"]
    _forget_address(node)
    # node-admins see it
    admin = client_for(node, "admin")
    page = admin.get("/admin/users").text
    assert "连续失败被锁定" in page and "lockme" in page


def test_failures_from_one_address_lock_that_address_for_other_names(node, client_for):
    c = client_for(node)
    node.add_user("addr1", "地址一", ["viewer"])
    _forget_address(node)
    for i in range(6):  # six names, two tries each at most: no name reaches its own lock
        assert c.sign_in("nobody%d" % i, "whatever1").status_code == 401
    r = c.sign_in("addr1", PASSWORD)
    assert r.status_code == 429 and "已锁定" in r.text
    _forget_address(node)
    assert c.sign_in("addr1", PASSWORD).status_code == 303


def test_logout_ends_the_session_on_the_server(node, client_for):
    c = client_for(node, "viewer")
    token = c.s.cookies.get("ql_session")
    r = c.post("/logout")
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert _records(node, "viewer")[-1] == "logout"
    # the old cookie, replayed, no longer works anywhere (console or the services' RPC)
    c2 = client_for(node)
    c2.s.cookies.set("ql_session", token)
    assert c2.get("/").status_code == 303
    with pytest.raises(Exception):
        node.users.authenticate(token)


def test_idle_session_expires(node, client_for):
    c = client_for(node, "viewer")
    assert c.get("/").status_code == 200
    from shared.auth import hash_token
    with node.users.engine.begin() as conn:  # as if 30 minutes had passed unused
        done = conn.execute(update(console_sessions).where(
            console_sessions.c.token_hash == hash_token(c.s.cookies.get("ql_session")))
            .values(idle_expires_at_us=now_us() - 1)).rowcount
        node.users._bump(conn)  # what any revoke does: no process trusts its cached answer
    assert done == 1
    r = c.get("/units")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")
    assert _records(node, "viewer")[-1] == "expired"


def test_a_request_pushes_the_idle_expiry_back_soon_after(node, client_for):
    """Not in the request (a committed write each): noted, and written by the flusher."""
    from shared.auth import hash_token
    from tests.harness import wait_for
    c = client_for(node, "insp")
    assert c.get("/").status_code == 200
    key = hash_token(c.s.cookies.get("ql_session"))

    def pushed():
        with node.users.engine.connect() as conn:
            row = conn.execute(select(console_sessions).where(
                console_sessions.c.token_hash == key)).mappings().one()
        return row["idle_expires_at_us"] > row["created_at_us"] + row["idle_seconds"] * 1_000_000
    wait_for(pushed, 10, what="the session's idle expiry pushed back from the request's time")


def test_change_own_password(node, client_for):
    node.add_user("changer", "周改密", ["viewer"])
    c = client_for(node, "changer")
    r = c.post("/account", {"old_password": "not-it-123", "new_password": "newpass2026",
                            "new_password2": "newpass2026"})
    assert r.status_code == 400 and "原密码不正确" in r.text
    r = c.post("/account", {"old_password": PASSWORD, "new_password": "short",
                            "new_password2": "short"})
    assert r.status_code == 400 and "至少 8 个字符" in r.text
    r = c.post("/account", {"old_password": PASSWORD, "new_password": "newpass2026",
                            "new_password2": "newpass2026"})
    assert r.status_code == 303
    assert node.users.check_password("changer", "newpass2026")
    assert not node.users.check_password("changer", PASSWORD)


def test_admin_resets_and_disables_a_user(node, client_for):
    node.add_user("staff", "吴员工", ["viewer"])
    staff = client_for(node, "staff")
    admin = client_for(node, "admin")
    r = admin.post("/admin/users", {"user_id": "staff", "action": "reset", "password": "reset2026ab"})
    assert r.status_code == 303 and node.users.check_password("staff", "reset2026ab")
    r = admin.post("/admin/users", {"user_id": "staff", "action": "disable"})
    assert r.status_code == 303
    assert staff.get("/").status_code == 303  # the open session is refused at once
    assert client_for(node).sign_in("staff", "reset2026ab").status_code == 401
    # a non-admin cannot open the page, nor post to it
    viewer = client_for(node, "viewer")
    assert viewer.get("/admin/users").status_code == 403
    r = viewer.post("/admin/users", {"user_id": "viewer", "action": "reset", "password": "x12345678"})
    assert r.status_code == 403 and not node.users.check_password("viewer", "x12345678")


def test_api_tokens_are_listed_and_revoked_in_the_console(node, client_for):
    node.add_user("prog", "程序账号", ["viewer"])
    token = node.users.issue_token("prog", "报表程序")
    admin = client_for(node, "admin")
    page = admin.get("/admin/users").text
    assert "报表程序" in page and token not in page
    token_id = node.users.list_tokens("prog")[0]["token_id"]
    r = admin.post("/admin/users", {"user_id": "prog", "action": "revoke", "token_id": token_id})
    assert r.status_code == 303
    with pytest.raises(Exception):
        node.users.authenticate(token)


# -- CSRF ---------------------------------------------------------------------------------------
def test_post_without_csrf_token_is_refused_and_writes_nothing(node, client_for):
    admin = client_for(node, "admin")
    before, head = _unit_names(node), node.head("units")
    data = {"name": "不该出现的单位", "kind": "section", "level": "section", "parent_id": node.ids["a"]}
    r = admin.post("/units/new", data, csrf=False)
    assert r.status_code == 403 and "请求缺少有效的安全校验码，已被拒绝，未做任何修改" in r.text
    r = admin.post("/units/new", dict(data, _csrf="forged"), csrf=False)
    assert r.status_code == 403
    # a token from another session does not fit this one
    other = client_for(node, "admin")
    r = admin.post("/units/new", dict(data, _csrf=other.csrf("/account")), csrf=False)
    assert r.status_code == 403
    assert _unit_names(node) == before and node.head("units") == head
    # the sign-in form too: without its token nothing happens
    anon = client_for(node)
    r = anon.s.post(node.url + "/login", data={"user_id": "admin", "password": PASSWORD},
                    allow_redirects=False)
    assert r.status_code == 403 and "ql_session" not in r.headers.get("Set-Cookie", "")


# -- roles and scopes ---------------------------------------------------------------------------
def test_viewer_sees_no_write_buttons_and_a_hand_made_post_is_refused(node, client_for):
    viewer = client_for(node, "viewer")
    for path in ("/units", "/units/%s" % node.ids["a"], "/letters", "/micro-power"):
        page = viewer.get(path)
        assert page.status_code == 200, path
        forms = re.findall(r'<form method="post" action="([^"]+)"', page.text)
        assert forms == ["/logout"], (path, forms)
        assert "登记单位" not in page.text
    head = node.head("units")
    r = viewer.post("/units/%s/rename" % node.ids["a"], {"name": "查看员改的名"})
    assert r.status_code == 403
    r = viewer.post("/letters", {"action": "issue", "period": "2026", "issuer_unit_id": node.ids["root"],
                                 "target_unit_id": node.ids["a"], "signatory_role": "party_secretary",
                                 "content": "x"})
    assert r.status_code == 403
    assert node.head("units") == head and "查看员改的名" not in _unit_names(node)


def test_unit_admin_is_refused_another_subtree(node, client_for):
    ua = client_for(node, "ua-a")
    assert ua.get("/units/%s" % node.ids["a"]).status_code == 200
    units_page = ua.get("/units").text
    assert "区财政局" in units_page and "区市场监管局" not in units_page  # only their subtree
    head = node.head("units")
    r = ua.post("/units/%s/rename" % node.ids["b"], {"name": "越权改名"})
    assert r.status_code in (403, 404)
    r = ua.post("/units/new", {"name": "越权登记", "kind": "section", "level": "section",
                               "parent_id": node.ids["b"]})
    assert r.status_code in (403, 404)
    assert node.head("units") == head


# -- escaping -----------------------------------------------------------------------------------
def test_a_script_as_unit_name_is_shown_as_text(node, client_for):
    admin = client_for(node, "admin")
    for path in ("/units", "/units/%s" % node.ids["xss"], "/units/new", "/letters", "/micro-power"):
        page = admin.get(path).text
        assert XSS not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


# -- bad input: Chinese messages, nothing written --------------------------------------------------
def test_bad_input_gets_chinese_field_messages_and_writes_nothing(node, client_for):
    admin = client_for(node, "admin")
    head = node.head("units")
    r = admin.post("/units/new", {"name": "新单位", "kind": "not-a-kind", "level": "unit",
                                  "parent_id": node.ids["a"]})
    assert r.status_code == 400
    assert "单位类型: 必须是以下之一：党委部门、政府部门" in r.text
    assert "not-a-kind" not in re.sub(r'value="[^"]*"', "", r.text)
    assert node.head("units") == head


def test_the_public_micro_power_page_needs_no_sign_in(node, client_for):
    node.api("units", "draft_micro_power", {"unit_id": node.ids["b"], "post": "行政许可岗", "content": {
        "duties": ["受理许可申请"], "power_boundary": "仅限法定事项",
        "steps": [{"name": "受理", "responsible_post": "窗口岗", "time_limit": "1个工作日"}]}})
    node.api("units", "publish_micro_power", {"unit_id": node.ids["b"], "post": "行政许可岗",
                                              "published_on": "2026-11-30"})
    anon = client_for(node)
    page = anon.get("/public/units/%s/micro-power" % node.ids["b"])
    assert page.status_code == 200 and "行政许可岗" in page.text and "2026年11月30日" in page.text
    qr = anon.get("/public/units/%s/micro-power/qr.svg" % node.ids["b"])
    assert qr.status_code == 200 and qr.headers["Content-Type"].startswith("image/svg+xml")
    assert anon.get("/public/units/nosuchunit/micro-power").status_code == 404


def record_finding(node, unit_id) -> str:
    """A finding (and so a rectification) for the unit; its rect id."""
    sv = "http://%s/api/record_finding" % node.addresses["supervision"]
    from tests.harness import wait_for

    def recorded():  # the supervision service learns of the units from the units' events
        r = requests.post(sv, json={"unit_id": unit_id, "source": "audit",
                                    "description": "执法记录仪使用不规范", "deadline": "2030-06-30",
                                    "responsible_role": "unit_head"},
                          headers={"Authorization": "Bearer %s" % node.admin_token}, timeout=10)
        return r.json() if r.status_code == 201 else None
    rect = wait_for(recorded, timeout=30)
    return rect.get("rect_id") or rect.get("finding_id")


def test_supervision_pages_refuse_what_the_role_may_not_do(node, client_for):
    rect_id = record_finding(node, node.ids["b"])
    head = node.head("supervision")
    viewer = client_for(node, "viewer")
    page = viewer.get("/rectifications/%s" % rect_id)
    assert page.status_code == 200 and "延期" not in page.text
    r = viewer.post("/rectifications/%s" % rect_id, {"action": "extend", "deadline": "2031-01-01",
                                                      "reason": "查看员延期"})
    assert r.status_code == 403
    r = viewer.post("/inspections", {"unit_id": node.ids["b"], "title": "查看员计划",
                                     "planned_on": "2030-01-01"})
    assert r.status_code == 403
    # a unit-admin of 区财政局 opening 区市场监管局's rectification: refused by the service
    ua = client_for(node, "ua-a")
    assert ua.get("/rectifications/%s" % rect_id).status_code in (403, 404)
    r = ua.post("/rectifications/%s" % rect_id, {"action": "extend", "deadline": "2031-01-01",
                                                  "reason": "越权延期"})
    assert r.status_code == 403
    assert node.head("supervision") == head
