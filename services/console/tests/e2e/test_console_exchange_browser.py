"""五联五互 in Chromium, a city and a district running at once, each in its own console:
the district publishes an experience in its console and the city's console shows it;
the city plans a joint activity and the district signs up in its own console. The
sharing picker's sentence follows the choice. Screenshots for the user guide."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.console.tests.browser import no_codes, open_menu, pick, reload_until
from services.console.tests.conftest import shoot
from tests.harness.pair import uniq

TZ = ZoneInfo("Asia/Shanghai")
# console.css's .red / .yellow / .green backgrounds
RED, YELLOW, GREEN = "rgb(253, 236, 234)", "rgb(255, 248, 225)", "rgb(232, 245, 233)"


@pytest.fixture
def desks(two_nodes, desk):
    """The node-admin of each node signed in to their own console."""
    return {"city": desk(two_nodes.city), "district": desk(two_nodes.district)}


def sentence(page) -> str:
    return page.inner_text("form[data-testid=new] [data-testid=sharing-sentence]")


def _no_codes(text: str) -> None:
    assert "None" not in text
    no_codes(text, r"district-a|city|experience|activity|named|published|open|window", html=False)


def test_the_district_publishes_an_experience_and_the_citys_console_shows_it(two_nodes, desks):
    district, city = desks["district"], desks["city"]
    title = uniq("政务窗口“好差评”闭环做法")
    open_menu(district, "经验联享")
    form = district.locator("form[data-testid=new]")
    pick(district, "所属单位", "甲区政务服务窗口")
    form.locator("input[name=title]").fill(title)
    form.locator("input[name=business_type]").fill("政务服务")
    form.locator("input[name=topics]").fill("好差评、闭环")
    form.locator("textarea[name=summary]").fill("差评件件有回应，整改有时限。")
    form.locator("textarea[name=body]").fill("一、差评当日转办；二、三日内回访；三、月度通报。")
    # the sentence says exactly who will see it, for each choice
    form.locator("input[name=sharing][value=node]").check()
    assert sentence(district) == "只有本单位（甲区）能看到，不发送给任何其他单位。"
    form.locator("input[name=sharing][value=named]").check()
    assert sentence(district).endswith("（请至少勾选一个单位）。")
    form.locator("input[name=recipients][value=city]").check()
    assert sentence(district) == "只有本单位（甲区）和下面勾选的单位能看到：市本级。"
    form.locator("input[name=sharing][value=all]").check()
    assert sentence(district) == "市级和各区都能看到：甲区、市本级。"
    form.locator("input[name=sharing][value=city]").check()
    assert sentence(district) == "本单位（甲区）和市级（市本级）能看到，其他区看不到。"
    shoot(district, "40-exchange-experience-new")
    form.locator("button:has-text('保存并按所选范围发布')").click()
    district.wait_for_selector("[data-testid=audience]")
    assert district.inner_text("[data-testid=audience]") == "上报市级：甲区、市本级能看到。"
    assert "已发布" in district.inner_text("p.flash")

    open_menu(city, "经验联享")
    reload_until(city, title)
    row = city.locator("[data-testid=feed] tr", has_text=title)
    assert row.locator("[data-testid=origin]").inner_text() == "来自：甲区 · 甲区政务服务窗口"
    assert "上报市级" in row.inner_text()
    _no_codes(city.inner_text("main"))
    shoot(city, "41-exchange-experiences-city")
    row.locator("a", has_text=title).click()
    city.wait_for_selector("h1:has-text('%s')" % title)
    learn = city.locator("form[data-testid=learn]")
    learn.locator("select[name=unit_id]").select_option(two_nodes.city.units["市财政局"])
    learn.locator("textarea[name=note]").fill("在市级窗口推广差评回访")
    learn.locator("button:has-text('学习借鉴')").click()
    city.wait_for_selector("p.flash:has-text('已标记为学习借鉴')")
    assert "来自：市本级 · 市财政局" in city.inner_text("[data-testid=learned]")
    assert city.locator("text=修改经验").count() == 0  # not the city's to edit
    shoot(city, "42-exchange-experience-detail")


def _at(days: int, hour: int) -> str:
    day = datetime.now(TZ).date() + timedelta(days=days)
    return "%s %02d:00" % (day.isoformat(), hour)


def test_the_city_plans_a_joint_activity_and_the_district_signs_up_in_its_console(
        two_nodes, desks):
    district, city = desks["district"], desks["city"]
    d = two_nodes.district
    title = uniq("市区联办警示教育专题党日")
    open_menu(city, "活动联办")
    form = city.locator("form[data-testid=new]")
    pick(city, "所属单位", "市直机关工委")
    form.locator("input[name=title]").fill(title)
    form.locator("input[name=theme]").fill("专题党日")
    form.locator("textarea[name=description]").fill("共学党纪法规、共看警示短片、共上廉政党课、共话清廉感悟")
    form.locator("input[name=starts_at]").fill(_at(14, 9))
    form.locator("input[name=ends_at]").fill(_at(14, 11))
    form.locator("input[name=location]").fill("市廉政教育基地")
    form.locator("[data-testid=invited] input[value=district-a]").check()
    form.locator("input[name=sharing][value=all]").check()
    form.locator("h2").click()  # closes the date picker
    form.locator("button:has-text('保存并按所选范围发布')").click()
    city.wait_for_selector("[data-testid=invited]")
    assert city.inner_text("[data-testid=invited]") == "甲区"
    activity_path = city.url.split(two_nodes.city.url)[1]

    open_menu(district, "活动联办")
    reload_until(district, title)
    assert "来自：市本级 · 市直机关工委" in district.locator(
        "[data-testid=feed] tr", has_text=title).inner_text()
    district.locator("[data-testid=feed] a", has_text=title).click()
    district.wait_for_selector("form[data-testid=sign-up]")
    sign = district.locator("form[data-testid=sign-up]")
    sign.locator("select[name=unit_id]").select_option(d.units["甲区财政局"])
    sign.locator("input[name=headcount]").fill("8")
    sign.locator("button:has-text('报名')").click()
    district.wait_for_selector("p.flash:has-text('已报名')")
    assert "甲区财政局 8 人" in district.inner_text("[data-testid=by-node]")
    # the organiser's buttons are on the city's console only
    assert district.locator("form[data-testid=outcome-form]").count() == 0
    _no_codes(district.inner_text("main"))
    shoot(district, "43-exchange-activity-sign-up")

    city.goto(two_nodes.city.url + activity_path)
    reload_until(city, "甲区财政局 8 人")
    row = city.locator("[data-testid=by-node] tr", has_text="甲区")
    assert "8 人" in row.inner_text() and "未登记" in row.inner_text()
    shoot(city, "44-exchange-activity-city")


def test_the_other_workspaces_render_for_the_user_guide(two_nodes, desks):
    """案例联编, 典型联树 and 难题联解 with records from both nodes (seeded through the
    service), their owner-aware forms, and the problems' three colours."""
    city, d = two_nodes.city, two_nodes.district
    today = datetime.now(TZ).date()
    case = city.exchange_execute("compile_case", {
        "unit_id": city.units["市财政局"], "title": uniq("虚报冒领补助资金案"), "category": "违规发放补贴",
        "summary": "套取补助资金", "facts": "某单位虚列人员套取补助。", "analysis": "审核流于形式。",
        "lessons": ["补助发放实名公示", "财务与业务双审核"], "share": {"sharing": "all", "recipients": []}})
    problem_soon = d.exchange_execute("post_problem", {
        "unit_id": d.units["甲区区直机关工委"], "title": uniq("基层站所监督力量薄弱"),
        "context": "站所多、人手少。", "deadline": (today + timedelta(days=2)).isoformat(),
        "share": {"sharing": "all", "recipients": []}})
    d.exchange_execute("post_problem", {
        "unit_id": d.units["甲区财政局"], "title": uniq("财务报销线上留痕"),
        "context": "纸质单据难追溯。", "deadline": (today + timedelta(days=40)).isoformat(),
        "share": {"sharing": "all", "recipients": []}})
    rt = d.exchange.runtime  # one posted a fortnight ago, its deadline passed: red
    real = rt.clock
    rt.clock = lambda: real() - timedelta(days=14)
    try:
        d.exchange_execute("post_problem", {
            "unit_id": d.units["甲区政务服务窗口"], "title": uniq("窗口“吃拿卡要”线索核查"),
            "context": "线索来源分散。", "deadline": (today - timedelta(days=4)).isoformat(),
            "share": {"sharing": "city", "recipients": []}})
    finally:
        rt.clock = real
    exemplar = d.exchange_execute("nominate_exemplar", {
        "unit_id": d.units["甲区政务服务窗口"], "category": "window", "title": uniq("清廉窗口"),
        "section": "综合受理窗口", "description": "一次告知、限时办结、好差评闭环。",
        "indicators": {"好评率": 99.6, "按时办结率": 100}, "period": today.strftime("%Y-%m"),
        "share": {"sharing": "all", "recipients": []}})

    page = desks["district"]
    page.goto(d.url + "/exchange/cases/" + case["case_id"])
    reload_until(page, "提交补充内容")
    page.locator("form[data-testid=contribute] textarea[name=text]").fill("本区同类问题：补助名单未公示。")
    page.locator("form[data-testid=contribute] button").click()
    page.wait_for_selector("p.flash:has-text('补充内容已提交')")
    assert "第 1 版" in page.inner_text("[data-testid=revisions]")  # the case as published
    _no_codes(page.inner_text("main"))
    shoot(page, "45-exchange-case")
    page.goto(d.url + "/exchange/problems")
    soon = page.locator("[data-testid=feed] tr", has_text="基层站所监督力量薄弱")
    assert soon.locator("[data-testid=due]").get_attribute("data-state") == "due_soon"
    assert "即将到期" in soon.inner_text()
    assert "按期推进" in page.locator("[data-testid=feed] tr", has_text="财务报销线上留痕").inner_text()
    late = page.locator("[data-testid=feed] tr", has_text="线索核查")
    assert late.locator("[data-testid=due]").get_attribute("data-state") == "overdue"
    assert "已逾期" in late.inner_text() and "red" in late.get_attribute("class")
    # the three colours as the browser paints them: red, yellow, green rows
    on_track = page.locator("[data-testid=feed] tr", has_text="财务报销线上留痕")
    for row, colour in ((late, RED), (soon, YELLOW), (on_track, GREEN)):
        assert row.evaluate("e => getComputedStyle(e).backgroundColor") == colour
    shoot(page, "46-exchange-problems")

    page = desks["city"]
    page.goto(city.url + "/exchange/problems/" + problem_soon["problem_id"])
    reload_until(page, "提出解决方案")
    assert page.inner_text("main [data-testid=origin]") == "来自：甲区 · 甲区区直机关工委"
    assert page.locator("[data-testid=due]").first.get_attribute("data-state") == "due_soon"
    _no_codes(page.inner_text("main"))
    shoot(page, "47-exchange-problem-city")
    page.goto(city.url + "/exchange/exemplars/" + exemplar["exemplar_id"])
    reload_until(page, "推荐这个典型")
    page.locator("form[data-testid=endorse] textarea[name=comment]").fill("做法可复制，建议全市推广。")
    page.locator("form[data-testid=endorse] button").click()
    page.wait_for_selector("p.flash:has-text('已推荐')")
    assert "好评率" in page.inner_text("[data-testid=indicators]")
    _no_codes(page.inner_text("main"))
    shoot(page, "48-exchange-exemplar")
