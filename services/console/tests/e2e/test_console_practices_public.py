"""典型案例通报 and 群众监督 pages against the real units, supervision, education and console
services (issue 10 #27, #23), on a node of their own (test_console_practices' fixture):
典型案例通报 over HTTP (an inspector circulates a case to a subtree, refusals write nothing) and
in Chromium (a unit records its study, the case moves from 尚未学习 to 已学习); 群众监督 over
HTTP (no sign-in, the double-submit CSRF token, the limit per client address; refusals write
nothing) and in Chromium (a complaint on the public page reaches the inspector's queue and
becomes a finding with source 群众监督); screenshots for the user guide."""
from __future__ import annotations

import re

from services.console.tests.browser import HOME, open_menu, sign_in
from services.console.tests.conftest import shoot
from services.console.tests.e2e.test_console_practices import (  # noqa: F401 - node: the fixture
    PUBLIC_LIMIT, _no_codes, node,
)


# -- 典型案例通报 over HTTP -----------------------------------------------------------------------
def _circulate(node, client_for, title):
    insp = client_for(node, "inspector")
    r = insp.post("/case-bulletins", {"issuer_unit_id": node.ids["root"], "scope_unit_id": node.ids["root"],
                                      "title": title, "summary": "某局干部违规收受礼金，受到党内警告处分。",
                                      "requirements": "组织全体党员干部学习，对照查摆，举一反三。",
                                      "due_on": "2099-12-31"})
    assert r.status_code == 303, r.text
    return r.headers["Location"].rsplit("/", 1)[1]


def test_case_bulletins_over_http_and_refusals_write_nothing(node, client_for):
    bid = _circulate(node, client_for, "违规收受礼金典型案例")
    ua = client_for(node, "ua-a")
    listed = ua.get("/case-bulletins").text
    assert "违规收受礼金典型案例" in listed and "通报典型案例" in listed  # a writer may circulate too
    page = ua.get("/case-bulletins/%s" % bid).text
    assert "区财政局" in page and "区审计局" not in page and "登记学习" in page
    _no_codes(page)

    before = node.head("education")
    insp = client_for(node, "inspector")
    r = insp.post("/case-bulletins", {"issuer_unit_id": node.ids["root"], "scope_unit_id": node.ids["root"],
                                      "requirements": "学习"})
    assert r.status_code == 400 and "必填（或选择一个案例）" in r.text
    r = insp.post("/case-bulletins", {"issuer_unit_id": node.ids["a"], "scope_unit_id": node.ids["b"],
                                      "title": "案例", "summary": "案情", "requirements": "学习"})
    assert r.status_code == 400 and "不在通报单位之下" in r.text
    viewer = client_for(node, "viewer")
    assert viewer.post("/case-bulletins", {"issuer_unit_id": node.ids["root"], "scope_unit_id": node.ids["root"],
                                           "title": "案例", "summary": "案情", "requirements": "学习"}).status_code == 403
    assert "通报典型案例" not in viewer.get("/case-bulletins").text
    study = {"unit_id": node.ids["a"], "studied_on": "2026-01-01", "headcount": "12", "note": "集中学习"}
    r = ua.post("/case-bulletins/%s" % bid, study)
    assert r.status_code == 400 and "不能早于通报日期" in r.text
    r = ua.post("/case-bulletins/%s" % bid, dict(study, studied_on="", headcount=""))
    assert r.status_code == 400
    assert client_for(node, "ua-b").post("/case-bulletins/%s" % bid, dict(study)).status_code == 403
    assert node.head("education") == before


# -- 典型案例通报 in Chromium ---------------------------------------------------------------------
def test_a_unit_records_that_it_studied_a_circulated_case(node, client_for, page):
    bid = _circulate(node, client_for, "公车私用典型案例")
    sign_in(page, node, "ua-b", until=HOME)
    open_menu(page, "典型案例通报")
    page.click("[data-testid=bulletins] a:has-text('公车私用典型案例')")
    page.wait_for_selector("h1:has-text('公车私用典型案例')")
    waiting = page.locator("[data-testid=not-studied] .item", has_text="区审计局")
    assert "待学习" in waiting.inner_text()
    waiting.locator("input[name=headcount]").fill("18")
    waiting.locator("input[name=note]").fill("对照公车使用制度逐项查摆")
    waiting.locator("button:has-text('登记学习')").click()
    page.wait_for_selector("p.flash:has-text('已登记学习情况')")
    done = page.locator("[data-testid=studied] .item", has_text="区审计局").inner_text()
    assert "18 人" in done and "对照公车使用制度逐项查摆" in done
    assert page.locator("[data-testid=not-studied] .item", has_text="区审计局").count() == 0
    got = node.query("education", "case_bulletin_receipts", {"bulletin_id": bid, "unit_id": node.ids["b"]})
    assert [r["headcount"] for r in got["studied"]] == [18]
    _no_codes(page.inner_text("main"))
    shoot(page, "83-case-bulletin")

    ctx = page.context.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                           timezone_id="Asia/Shanghai")
    insp = ctx.new_page()
    sign_in(insp, node, "inspector", until=HOME)
    insp.goto(node.url + "/case-bulletins")
    row = insp.locator("[data-testid=bulletins] tr", has_text="公车私用典型案例").inner_text()
    assert row.split("\t")[3:5] == ["2", "1（50.0%）"], row
    assert insp.locator("button:has-text('发出通报')").count() == 1
    _no_codes(insp.inner_text("main"))
    shoot(insp, "84-case-bulletins")
    ctx.close()


# -- 群众监督 over HTTP ---------------------------------------------------------------------------
def _public_form(client, unit_id):
    page = client.get("/public/units/%s/report" % unit_id)
    assert page.status_code == 200 and "无需登录" in page.text
    return re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)


def test_the_public_report_form_needs_no_sign_in_is_csrf_safe_and_limited(node, client_for):
    from services.console import practice_pages
    anyone = client_for(node)  # not signed in
    assert "我要投诉举报" in anyone.get("/public/units/%s/micro-power" % node.ids["a"]).text
    token = _public_form(anyone, node.ids["a"])
    before = node.head("supervision")
    # no CSRF token, a token not matching the cookie, an empty complaint: refused, nothing written
    assert anyone.post("/public/units/%s/report" % node.ids["a"], {"kind": "complaint", "content": "x"},
                       csrf=False).status_code == 403
    assert anyone.post("/public/units/%s/report" % node.ids["a"], {"_csrf": "forged", "kind": "complaint",
                                                                    "content": "x"}, csrf=False).status_code == 403
    r = anyone.post("/public/units/%s/report" % node.ids["a"], {"_csrf": token, "kind": "complaint",
                                                                 "content": ""}, csrf=False)
    assert r.status_code == 400 and "field-error" in r.text
    assert node.head("supervision") == before
    practice_pages._recent.clear()
    for i in range(PUBLIC_LIMIT):
        r = anyone.post("/public/units/%s/report" % node.ids["a"], {
            "_csrf": token, "kind": "complaint", "content": "窗口要求重复提交材料（%d）" % i, "post": "窗口受理岗"},
            csrf=False)
        assert r.status_code == 200 and "已收到您的反映" in r.text, r.text
    written = node.head("supervision")
    r = anyone.post("/public/units/%s/report" % node.ids["a"], {"_csrf": token, "kind": "complaint",
                                                                 "content": "再来一条"}, csrf=False)
    assert r.status_code == 429 and "提交过于频繁" in r.text
    assert node.head("supervision") == written
    practice_pages._recent.clear()
    queue = node.query("supervision", "list_public_reports", {"unit_id": node.ids["root"]})["reports"]
    mine = [q for q in queue if q["content"].startswith("窗口要求重复提交材料")]
    assert len(mine) == PUBLIC_LIMIT and {q["contact"] for q in mine} == {None}
    assert {q["post"] for q in mine} == {"窗口受理岗"}
    # only inspectors and node-admins see the queue
    assert client_for(node, "ua-a").get("/public-reports").status_code == 403
    text = client_for(node, "inspector").get("/public-reports").text
    assert "窗口要求重复提交材料（0）" in text
    _no_codes(text)


# -- 群众监督 in Chromium -------------------------------------------------------------------------
def test_a_complaint_from_the_public_becomes_a_finding(node, page, browser):
    from services.console import practice_pages
    practice_pages._recent.clear()
    page.goto(node.url + "/public/units/%s/micro-power" % node.ids["a"])
    page.click("[data-testid=report-link]")
    page.wait_for_selector("h1:has-text('对区财政局投诉举报')")
    page.select_option("select[name=kind]", label="举报")
    page.select_option("select[name=post]", label="窗口受理岗")
    page.fill("textarea[name=content]", "窗口工作人员暗示办事需要“意思意思”。")
    shoot(page, "85-public-report")
    page.click("button:has-text('提交')")
    page.wait_for_selector("[data-testid=received]")
    assert "受理编号" in page.inner_text("[data-testid=received]")

    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    insp = ctx.new_page()
    sign_in(insp, node, "inspector", until=HOME)
    open_menu(insp, "群众监督")
    row = insp.locator("[data-testid=public-reports] tr", has_text="意思意思")
    assert "举报" in row.inner_text() and "未留" in row.inner_text()
    _no_codes(insp.inner_text("main"))
    shoot(insp, "86-public-reports")
    row.locator("select[name=responsible_role]").select_option(label="单位负责人")
    row.locator("input[name=deadline]").fill("2099-01-31")
    row.locator("button:has-text('转为问题')").click()
    insp.wait_for_selector("p.flash:has-text('已转为问题并限期整改')")
    assert "群众监督" in insp.inner_text("main")
    rects = node.query("supervision", "list_rectifications", {"unit_id": node.ids["a"], "source": "public_report"})
    assert any("意思意思" in r["description"] for r in rects["items"])
    ctx.close()
