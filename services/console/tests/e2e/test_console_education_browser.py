"""The education pages in Chromium: a member checks in on a phone-sized viewport (375×667),
a second tap counts once, and the admin's coverage moves; screenshots for the user guide."""
from __future__ import annotations

import re

import pytest

from services.console.tests.conftest import shoot
from services.education.domain import SESSION_KINDS
from services.console.tests.browser import no_codes, open_menu, pick, sign_in
from services.console.tests.e2e.test_console_education import (  # noqa: F401 - node: the fixture
    REMINDER, node, today,
)

PHONE = {"width": 375, "height": 667}


@pytest.fixture
def admin_page(node, desk):
    """The node-admin at a desk (1366×768), signed in on the 工作台."""
    return desk(node)


def _daily_coverage(page, node) -> str:
    page.goto(node.url + "/checkin/coverage")
    return page.inner_text("[data-testid=daily-coverage]")


def _monthly_row(page, unit: str) -> list[str]:
    """The month's row of a party organisation: 党组织, 党员人数, 累计打卡人次, 覆盖率."""
    return re.split(r"\s+", page.locator("[data-testid=monthly] tr", has_text=unit).inner_text().strip())


def _no_codes(text: str) -> None:
    no_codes(text, r"m-zhang|warning_education|government_dept|None", html=False)


def test_a_member_checks_in_on_a_phone_twice_and_it_counts_once(node, browser, admin_page):
    admin = admin_page
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                device_scale_factor=2, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        assert _daily_coverage(admin, node) == "0.0%"
        assert _monthly_row(admin, "区财政局")[:3] == ["区财政局", "2", "0"]

        member = phone.new_page()
        sign_in(member, node, "m-zhang")
        member.goto(node.url + "/checkin")
        assert member.inner_text("[data-testid=reminder]") == REMINDER
        # the tap target fits the phone's width and is above the fold
        box = member.locator("button.tap").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] + box["height"] <= PHONE["height"]
        assert member.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(member, "20-checkin-phone")
        # a second tab opened before the first tap: the same member taps twice
        second = phone.new_page()
        second.goto(node.url + "/checkin")
        member.locator("button.tap").tap()
        member.wait_for_selector("p.flash:has-text('打卡成功，已连续打卡 1 天')")
        assert member.inner_text("[data-testid=done]") == "今日已打卡"
        assert member.inner_text("[data-testid=total]") == "1"
        shoot(member, "21-checkin-phone-done")
        _no_codes(member.inner_text("body"))
        second.locator("button.tap").tap()
        second.wait_for_selector("p.flash:has-text('今天已经打过卡了，不重复计数')")
        assert second.inner_text("[data-testid=total]") == "1"

        # coverage moved by one member of three, not two
        assert _daily_coverage(admin, node) == "33.3%"
        row = admin.locator("[data-testid=daily] tr", has_text="区财政局").inner_text()
        assert re.split(r"\s+", row.strip()) == ["区财政局", "2", "1", "50.0%"]
        # the month's coverage per unit moves by the same one member-day
        assert _monthly_row(admin, "区财政局")[:3] == ["区财政局", "2", "1"]
        assert _monthly_row(admin, "区审计局")[:3] == ["区审计局", "1", "0"]
        text = admin.inner_text("main")
        assert "张党员" not in text
        _no_codes(text)
        shoot(admin, "22-checkin-coverage")
    finally:
        phone.close()


def test_the_warning_education_grid_in_the_browser(node, admin_page):
    page = admin_page
    node.api("education", "record_session", {
        "kind": "warning_education", "title": "警示教育：以案促改", "organiser_unit_id": node.ids["a"],
        "scheduled_at": "2026-01-15T09:00:00+08:00", "attendance": {"headcount": 30}})
    open_menu(page, "警示教育月月行")
    page.goto(node.url + "/warning-education?year=2026")
    page.select_option("select[name=month]", label="2月")
    page.click("button:has-text('查看')")
    page.wait_for_selector("h2:has-text('2月')")
    assert sorted(page.inner_text("[data-testid=missed]").split()) == [
        "区审计局", "区财政局", "政府部门", "政府部门"]
    page.click("table.grid th a:has-text('1月')")
    page.wait_for_selector("h2:has-text('1月')")
    assert page.inner_text("[data-testid=missed]").split() == ["区审计局", "政府部门"]
    cell = page.locator("td[title='区财政局 1月：已开展']")
    assert "held" in cell.get_attribute("class")
    red = page.locator("td[title='区审计局 1月：未开展']")
    assert red.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(248, 215, 218)"
    _no_codes(page.inner_text("main"))
    shoot(page, "23-warning-education")


def test_the_calendar_in_the_browser_a_micro_lesson_is_held_only_with_discussion_and_comment(
        node, admin_page):
    page = admin_page
    open_menu(page, "学习教育日历")
    # every session kind the service has is offered, each in words
    kinds = page.locator("select[name=kind] option").all_inner_texts()
    assert set(SESSION_KINDS.values()) <= {k.strip() for k in kinds}
    page.select_option("select[name=kind]", label="廉政微党课")
    page.fill("input[name=title]", "守住小节")
    pick(page, "组织单位", "区财政局")
    page.fill("input[name=day]", today().isoformat())
    page.fill("input[name=time]", "00:00")
    page.fill("input[name=speaker_post]", "党组织书记")
    page.fill("input[name=material_title]", "廉政微党课讲稿")
    page.fill("input[name=material_ref]", "区纪发〔2026〕12号")
    page.click("button:has-text('计划')")
    page.wait_for_selector("p.flash:has-text('已计划：守住小节')")
    cell = page.locator("td[data-day='%s']" % today().isoformat())
    assert "廉政微党课：守住小节（已计划）" in cell.inner_text()
    _no_codes(page.inner_text("main"))
    shoot(page, "24-calendar")
    cell.locator("a.session", has_text="守住小节").click()
    page.wait_for_selector("h1:has-text('守住小节')")
    assert "廉政微党课讲稿（区纪发〔2026〕12号）" in page.inner_text("main")  # by reference
    page.fill("input[name=headcount]", "25")
    page.click("button:has-text('记为已开展')")
    page.wait_for_selector("span.field-error:has-text('大家议：廉政微党课须填写讨论情况')")
    assert page.inner_text("[data-testid=status]") == "已计划"
    _no_codes(page.inner_text("main"))
    shoot(page, "25-micro-lesson-needs-discussion")
    page.fill("input[name=headcount]", "25")
    page.fill("textarea[name=discussion]", "结合岗位谈体会")
    page.fill("textarea[name=leader_comment]", "要求从小节做起")
    page.click("button:has-text('记为已开展')")
    page.wait_for_selector("p.flash:has-text('已记录为已开展')")
    assert page.inner_text("[data-testid=status]") == "已开展"


def test_a_session_planned_on_the_calendar_is_cancelled_with_its_reason(node, admin_page):
    page = admin_page
    open_menu(page, "学习教育日历")
    page.select_option("select[name=kind]", label="主题联学")
    page.fill("input[name=title]", "新修订条例联学")
    pick(page, "组织单位", "区审计局")
    page.fill("input[name=day]", today().isoformat())
    page.click("button:has-text('计划')")
    page.wait_for_selector("p.flash:has-text('已计划：新修订条例联学')")
    page.locator("td[data-day='%s'] a.session" % today().isoformat(), has_text="新修订条例联学").click()
    page.wait_for_selector("h1:has-text('新修订条例联学')")
    page.fill("input[name=reason]", "与上级会议冲突")
    page.click("button:has-text('取消活动')")
    page.wait_for_selector("p.flash:has-text('已取消')")
    assert page.inner_text("[data-testid=status]") == "已取消"
    assert page.locator("button:has-text('记为已开展')").count() == 0  # nothing left to record
    page.click("a:has-text('返回日历')")
    cell = page.locator("td[data-day='%s']" % today().isoformat())
    cancelled = cell.locator("a.session.cancelled", has_text="新修订条例联学")
    assert "主题联学：新修订条例联学（已取消）" in cancelled.inner_text()
    assert "line-through" in cancelled.evaluate("e => getComputedStyle(e).textDecorationLine")
