"""The outreach pages and 节点状态 in Chromium, each reached from the menu: a unit-admin
chooses the week's publicity by hand, acknowledges a notice (it moves from 尚未回执 to 已回执),
an inspector records an overdue 廉政谈话, the node-admin reads 精准推送 and the node status;
screenshots for the user guide."""
from __future__ import annotations

import re

import pytest

from services.console.tests import browser as steps
from services.console.tests.browser import open_menu
from services.console.tests.conftest import shoot
from services.console.tests.e2e.test_console_outreach import (  # noqa: F401 - node: the fixture
    node, today,
)


@pytest.fixture
def as_user(desk, node):
    return lambda user_id: desk(node, user_id)


def no_codes(text: str) -> None:
    steps.no_codes(text, r"p-chen|p-zhou|slogan|short_text|scheduled|overdue|held|None", html=False)


def test_the_unit_admin_chooses_the_weeks_publicity(node, as_user):
    page = as_user("ua-a")
    open_menu(page, "廉政宣传周更新")
    row = page.locator("[data-testid=week] tr", has_text="区财政局")
    assert "本周尚未更新" in row.inner_text()
    assert page.locator("text=加入内容库").count() == 0  # the library is the node-admin's
    row.locator("a", has_text="历次展示").click()
    page.wait_for_selector("h1:has-text('区财政局：廉政宣传周更新')")
    page.check("label:has-text('资金拨付警句') input")
    page.check("label:has-text('廉洁屏保：莲') input")
    page.click("button:has-text('更换本周内容')")
    page.wait_for_selector("p.flash:has-text('已更新本周展示内容')")
    current = page.locator("[data-testid=history] tr", has_text="（本周）").inner_text()
    assert "资金拨付警句" in current and "手动选择" in current
    no_codes(page.inner_text("main"))
    shoot(page, "61-publicity-unit")


def test_the_library_and_the_week_for_the_node_admin(node, as_user):
    page = as_user("admin")
    open_menu(page, "廉政宣传周更新")
    page.select_option("form.card >> nth=-1 >> select[name=kind]", label="廉政短句")
    page.fill("form.card >> nth=-1 >> input[name=title]", "浏览器加的短句")
    page.fill("form.card >> nth=-1 >> textarea[name=text]", "守住底线，不越红线。")
    page.check("form.card >> nth=-1 >> label:has-text('资金拨付') input")
    page.click("button:has-text('加入内容库')")
    page.wait_for_selector("p.flash:has-text('已加入内容库：浏览器加的短句')")
    row = page.locator("[data-testid=library] tr", has_text="浏览器加的短句").inner_text()
    assert "资金拨付" in row and "在用" in row
    no_codes(page.inner_text("main"))
    shoot(page, "60-publicity")


def test_a_unit_acknowledges_a_notice_and_it_moves(node, as_user):
    admin = as_user("admin")
    open_menu(admin, "廉洁通知")
    cell = admin.locator("td[data-day='%s']" % today().isoformat())
    assert "已发送：关于换届期间严守纪律的通知" in cell.inner_text()
    no_codes(admin.inner_text("main"))
    shoot(admin, "62-notices")

    ua = as_user("ua-a")
    open_menu(ua, "廉洁通知")
    ua.locator("[data-testid=notices] a", has_text="关于换届期间严守纪律的通知").click()
    ua.wait_for_selector("h1:has-text('关于换届期间严守纪律的通知')")
    pending = ua.locator("[data-testid=not-acknowledged]")
    assert "区财政局" in pending.inner_text() and "区审计局" in pending.inner_text()
    assert ua.locator("button:has-text('确认收到')").count() == 1  # only its own unit
    ua.click("button:has-text('确认收到')")
    ua.wait_for_selector("p.flash:has-text('已回执')")
    assert "区财政局" in ua.inner_text("[data-testid=acknowledged]")
    assert "区财政局" not in ua.inner_text("[data-testid=not-acknowledged]")
    assert ua.inner_text("[data-testid=acknowledged-count]") == "1"
    no_codes(ua.inner_text("main"))
    shoot(ua, "63-notice-receipts")


def test_an_inspector_records_an_overdue_talk(node, as_user):
    page = as_user("inspector")
    open_menu(page, "廉政谈话与年轻干部")
    row = page.locator("[data-testid=talks] tr[data-talk='陈提拔']")
    assert "已逾期（逾期 10 天）" in row.inner_text()
    assert "已逾期 10 天" in page.inner_text("[data-testid=young] tr[data-young='周青年']")
    shoot(page, "64-talks")
    row.locator("summary:has-text('登记谈话')").click()
    row.locator("input[name=conducted_by]").fill("党组书记")
    row.locator("button:has-text('登记已谈话')").click()
    page.wait_for_selector("p.flash:has-text('已登记廉政谈话')")
    row = page.locator("[data-testid=talks] tr[data-talk='陈提拔']")
    assert "已谈话（晚 10 天）" in row.inner_text()
    assert page.inner_text("[data-testid=overdue-count]") == "0"
    no_codes(page.inner_text("main"))


def test_the_node_admin_reads_the_offer_and_the_gaps(node, as_user):
    page = as_user("admin")
    open_menu(page, "精准推送")
    page.select_option("select[name=unit_id]", label="区财政局")
    page.click("button:has-text('查看')")
    page.wait_for_selector("h2:has-text('区财政局：单位画像')")
    assert "资金拨付（出纳）" in page.inner_text("[data-testid=register]")
    assert "资金拨付警句" in page.inner_text("[data-testid=offer-content]")
    gaps = page.locator("[data-testid=coverage] tr", has_text="政府采购").inner_text()
    assert "区财政局" in gaps
    no_codes(page.inner_text("main"))
    shoot(page, "65-tailoring")


def test_the_node_status_page(node, as_user):
    page = as_user("admin")
    open_menu(page, "节点状态")
    assert "（本节点）" in page.inner_text("[data-testid=peers]")
    assert re.search(r"([0-9A-F]{4}:){7}[0-9A-F]{4}", page.inner_text("[data-testid=peers]"))
    page.click("a:has-text('管理用户、接口令牌并查看全部登录记录')")
    page.wait_for_selector("h1:has-text('用户与登录')")
    page.go_back()
    page.wait_for_selector("h1:has-text('节点状态')")
    no_codes(page.inner_text("main"))  # the screenshot of a city with a district: test_console_status_two_nodes
    viewer = as_user("viewer")
    assert viewer.locator("nav.menu a:has-text('节点状态')").count() == 0
    assert viewer.locator("nav.menu a:has-text('廉政谈话与年轻干部')").count() == 0


def test_the_warning_education_grid_over_a_month_and_a_year_boundary_in_shanghai(node, as_user):
    """23:30 on 31 December in Shanghai is December; 00:10 on 1 January (16:10 UTC the day
    before) is January - the grid in the browser, chosen with the page's own pickers. The
    month in progress: a party organisation that has not held one yet is 进行中, never
    未开展, and is not listed as having missed it."""
    held_in = {"2025-12": "a", "2026-01": "b", "2026-10": "a", "2026-11": "b"}
    for unit, at in (("a", "2025-12-31T23:30:00+08:00"), ("b", "2025-12-31T16:10:00+00:00"),
                     ("a", "2026-10-31T23:50:00+08:00"), ("b", "2026-10-31T16:05:00+00:00")):
        node.api("education", "record_session", {
            "kind": "warning_education", "title": "警示教育：以案促改", "organiser_unit_id": node.ids[unit],
            "scheduled_at": at, "attendance": {"headcount": 12}})
    page = as_user("admin")
    open_menu(page, "警示教育月月行")

    def show(year, month):
        page.fill("input[name=year]", str(year))
        page.select_option("select[name=month]", label="%d月" % month)
        page.click("button:has-text('查看')")
        page.wait_for_selector("h2:has-text('%d月')" % month)

    def cell(unit, month):
        return page.inner_text("td[title^='%s %d月']" % (unit, month))

    show(2025, 12)
    assert cell("区财政局", 12) == "已开展" and cell("区审计局", 12) == "未开展"
    assert "区审计局" in page.inner_text("[data-testid=missed]")
    assert "区财政局" not in page.inner_text("[data-testid=missed]")
    show(2026, 1)
    assert cell("区审计局", 1) == "已开展" and cell("区财政局", 1) == "未开展"
    assert cell("区财政局", 10) == "已开展" and cell("区审计局", 10) == "未开展"
    assert cell("区审计局", 11) == "已开展" and cell("区财政局", 11) == "未开展"
    # this month is in progress: an organisation that held none of the sessions above in it
    now = today()
    period = now.strftime("%Y-%m")
    key = "b" if held_in.get(period) == "a" else "a"
    name = {"a": "区财政局", "b": "区审计局"}[key]
    show(now.year, now.month)
    answer = node.query("education", "warning_education_compliance",
                        {"unit_id": node.ids["root"], "period": period})
    assert {u["name"]: u["held"] for u in answer["units"]}[name] is False  # none held yet
    cells = page.locator("[data-testid=grid] td[title^='%s ']" % name)
    states = {c.get_attribute("title"): c.get_attribute("class").split() for c in cells.all()}
    assert len(states) == 12
    current = states.pop("%s %d月：进行中" % (name, now.month))
    assert "in_progress" in current and "missed" not in current
    assert not [t for t in states if t.startswith("%s %d月" % (name, now.month))]
    this = page.locator("td[title='%s %d月：进行中']" % (name, now.month))
    assert this.inner_text() == "进行中"
    assert this.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 248, 225)"  # not red
    # it is listed as not yet held this month, never under 当月未开展
    assert page.locator("p", has_text="本月尚在进行中，以下党组织暂未开展：").count() == 1
    assert "当月未开展警示教育" not in page.inner_text("main")
    assert name in page.inner_text("[data-testid=missed]")
    no_codes(page.inner_text("main"))
