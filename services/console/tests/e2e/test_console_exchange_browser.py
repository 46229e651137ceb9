"""五联五互 in Chromium, a city and a district running at once, each in its own console:
the district publishes an experience in its console and the city's console shows it;
the city plans a joint activity and the district signs up in its own console. The
sharing picker's sentence follows the choice. The owner edits an experience (a draft, then
once shared) and withdraws its share; a unit changes its headcount and withdraws its
sign-up; the organiser cancels an activity; the poster extends a problem's deadline and
its colour follows; the 来源单位 filter shows one node's records. Each checks the page and
the exchange service's data, and that a refused request (bad input, not one's own) is
told in Chinese and writes nothing. Screenshots for the user guide."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from services.console.tests.browser import no_codes, open_menu, pick, reload_until
from services.console.tests.conftest import shoot
from shared.labels import zh_date
from tests.harness import wait_for
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


# -- the owner's and the participants' second thoughts: edit, withdraw, change, cancel, extend --
def _share_all():
    return {"sharing": "all", "recipients": []}


def _card(page, heading: str):
    """A detail page's form, found by the heading a person reads on it."""
    return page.locator("form.card", has=page.locator("h2", has_text=heading))


def _record(node, rid: str) -> dict:
    return node.exchange_query("get_record", {"record_id": rid})


def test_the_owner_edits_an_experience_and_withdraws_its_share(two_nodes, desks, client_for):
    district, city = desks["district"], desks["city"]
    d, c = two_nodes.district, two_nodes.city
    title = uniq("窗口帮办代办做法")
    rid = d.exchange_execute("draft_experience", {
        "unit_id": d.units["甲区政务服务窗口"], "title": title, "summary": "帮办代办。",
        "body": "一、专人帮办；二、全程代办。", "business_type": "政务服务"})["experience_id"]
    path = "/exchange/experiences/" + rid
    district.goto(d.url + path)  # a draft: edited before it is shared
    edit = _card(district, "修改经验")
    # saving the form unchanged: told so in Chinese, nothing written
    before = d.head("exchange")
    edit.locator("button:has-text('保存修改')").click()
    district.wait_for_selector("div.error:has-text('修改内容与当前版本相同，没有任何改动')")
    assert d.head("exchange") == before
    assert _record(d, rid)["content"]["summary"] == "帮办代办。"
    edit = _card(district, "修改经验")
    edit.locator("textarea[name=summary]").fill("帮办代办，群众少跑腿。")
    edit.locator("button:has-text('保存修改')").click()
    district.wait_for_selector("p.flash:has-text('已修改')")
    assert "帮办代办，群众少跑腿。" in district.inner_text("[data-testid=content]")
    stored = _record(d, rid)["content"]
    assert stored["summary"] == "帮办代办，群众少跑腿。" and stored["title"] == title
    publish = _card(district, "发布（共享）")
    publish.locator("input[name=sharing][value=all]").check()
    publish.locator("button:has-text('发布')").click()
    district.wait_for_selector("p.flash:has-text('已按所选范围共享')")
    city.goto(c.url + path)
    reload_until(city, "帮办代办，群众少跑腿。")  # published as edited
    assert city.locator("h2", has_text="修改经验").count() == 0  # the owner's only
    assert city.locator("h2", has_text="撤回共享").count() == 0
    # edited once shared: the city sees the new text
    edit = _card(district, "修改经验")
    edit.locator("textarea[name=body]").fill("一、专人帮办；二、全程代办；三、办结回访。")
    edit.locator("button:has-text('保存修改')").click()
    district.wait_for_selector("p.flash:has-text('已修改')")
    reload_until(city, "三、办结回访")
    assert _record(c, rid)["content"]["body"] == "一、专人帮办；二、全程代办；三、办结回访。"

    # another node cannot withdraw it: a forged request is refused, nothing written
    before_city, before_d = c.head("exchange"), d.head("exchange")
    forged = client_for(c, "admin").post(path, {"action": "withdraw", "reason": "市级替区撤回"})
    assert forged.status_code == 403 and "Traceback" not in forged.text
    # the refusal's own words, not the generic 无权访问此页面: it says who may
    assert "这条经验由其他节点创建，只有创建它的节点可以修改（只能撤回本节点自己的记录）" in forged.text
    assert c.head("exchange") == before_city and d.head("exchange") == before_d
    assert _record(c, rid)["published"] is True

    withdraw = _card(district, "撤回共享")
    withdraw.locator("input[name=reason]").fill("做法调整中，暂停共享")
    withdraw.locator("button:has-text('撤回')").click()
    district.wait_for_selector("p.flash:has-text('已撤回共享')")
    assert district.inner_text("[data-testid=audience]") == "尚未共享：只有本单位（甲区）能看到。"
    assert district.locator("h2", has_text="撤回共享").count() == 0
    assert _record(d, rid)["published"] is False
    # the city drops it from its 经验联享 list
    city.goto(c.url + "/exchange/experiences")
    reload_until(city, lambda p: title not in p.inner_text("[data-testid=feed]"),
                 what="the withdrawn experience gone from the city's list")
    assert title not in [i["title"] for i in c.exchange_query(
        "shared_feed", {"kind": "experience", "limit": 100})["items"]]


def _activity(two_nodes, title: str, days: int) -> str:
    """A joint activity the city plans, inviting the district, shared with everyone."""
    return two_nodes.city.exchange_execute("plan_activity", {
        "unit_id": two_nodes.city.units["市直机关工委"], "title": title, "theme": "专题党日",
        "description": "共学党纪法规", "location": "市廉政教育基地",
        "starts_at": "%sT09:00:00+08:00" % (datetime.now(TZ).date() + timedelta(days=days)),
        "ends_at": "%sT11:00:00+08:00" % (datetime.now(TZ).date() + timedelta(days=days)),
        "invited_nodes": ["district-a"], "share": _share_all()})["activity_id"]


def _signups(node, rid: str) -> dict:
    """Unit name -> (headcount, status) of the activity's sign-ups as the node holds them."""
    return {s["unit_name"]: (s["headcount"], s["status"])
            for s in _record(node, rid)["sub_records"].get("signup", [])}


def test_a_district_unit_changes_its_headcount_and_withdraws_its_sign_up(
        two_nodes, desks, desk, client_for):
    district, city = desks["district"], desks["city"]
    d, c = two_nodes.district, two_nodes.city
    rid = _activity(two_nodes, uniq("联办廉政党课"), 20)
    path = "/exchange/activities/" + rid
    wait_for(lambda: d.has_record(rid), 40, what="the activity at the district")
    d.exchange_execute("sign_up", {"activity_id": rid, "unit_id": d.units["甲区财政局"],
                                   "headcount": 8})
    district.goto(d.url + path)
    mine = _card(district, "甲区财政局的报名（8 人）")
    # 0, over the limit, or not a number: refused in Chinese, nothing written
    for bad, message in (("0", "人数: 请填写正整数"), ("10001", "人数: 须大于或等于 1 且小于或等于 10000"),
                         ("八", "人数: 请填写正整数")):
        before = d.head("exchange")
        mine.locator("input[name=headcount]").fill(bad)
        mine.locator("button:has-text('修改人数')").click()
        district.wait_for_selector("span.field-error:has-text('%s')" % message)
        assert "输入有误" in district.inner_text("div.error")
        assert d.head("exchange") == before and _signups(d, rid)["甲区财政局"] == (8, "active")
        mine = _card(district, "甲区财政局的报名（8 人）")
    mine.locator("input[name=headcount]").fill("12")
    mine.locator("button:has-text('修改人数')").click()
    district.wait_for_selector("p.flash:has-text('已修改报名人数')")
    assert "甲区财政局 12 人" in district.inner_text("[data-testid=by-node]")
    assert _signups(d, rid)["甲区财政局"] == (12, "active")
    city.goto(c.url + path)
    reload_until(city, "甲区财政局 12 人")  # the organiser sees the new headcount

    # the window's unit-admin is offered no form for 甲区财政局's sign-up, and a forged
    # withdrawal is refused, nothing written
    if d.users.get("ua-window") is None:
        d.add_user("ua-window", "周窗口", ["unit-admin"], d.units["甲区政务服务窗口"])
    window = desk(d, "ua-window")
    window.goto(d.url + path)
    window.wait_for_selector("form[data-testid=sign-up]")
    assert window.locator("h2", has_text="甲区财政局的报名").count() == 0
    before = d.head("exchange")
    forged = client_for(d, "ua-window").post(path, {
        "action": "withdraw_sign_up", "unit_id": d.units["甲区财政局"], "reason": "替别人撤回"})
    assert forged.status_code == 403 and "Traceback" not in forged.text
    assert d.head("exchange") == before and _signups(d, rid)["甲区财政局"] == (12, "active")

    mine = _card(district, "甲区财政局的报名（12 人）")
    mine.locator("input[name=reason]").fill("与局务会冲突")
    mine.locator("button:has-text('撤回报名')").click()
    district.wait_for_selector("p.flash:has-text('已撤回报名')")
    assert "甲区财政局" not in district.inner_text("[data-testid=by-node]")
    assert district.locator("h2", has_text="甲区财政局的报名").count() == 0
    assert _signups(d, rid)["甲区财政局"] == (12, "withdrawn")
    city.goto(c.url + path)
    reload_until(city, lambda p: "甲区财政局" not in p.inner_text("[data-testid=by-node]"),
                 what="the withdrawal at the city")
    assert _signups(c, rid)["甲区财政局"][1] == "withdrawn"


def test_the_organiser_cancels_a_joint_activity(two_nodes, desks, client_for):
    district, city = desks["district"], desks["city"]
    d, c = two_nodes.district, two_nodes.city
    rid = _activity(two_nodes, uniq("联办警示教育现场会"), 21)
    path = "/exchange/activities/" + rid
    wait_for(lambda: d.has_record(rid), 40, what="the activity at the district")
    district.goto(d.url + path)
    assert district.locator("h2", has_text="取消活动").count() == 0  # the organiser's only
    before = d.head("exchange"), c.head("exchange")
    forged = client_for(d, "admin").post(path, {"action": "cancel", "reason": "区里想取消"})
    assert forged.status_code == 404 and "没有这种操作" in forged.text
    assert (d.head("exchange"), c.head("exchange")) == before
    assert _record(c, rid)["status"] == "announced"

    city.goto(c.url + path)
    cancel = _card(city, "取消活动")
    cancel.locator("input[name=reason]").fill("场地检修，另行安排")
    cancel.locator("button:has-text('取消活动')").click()
    city.wait_for_selector("p.flash:has-text('活动已取消')")
    assert "已取消" in city.locator("main p", has_text="来自：").first.inner_text()
    for gone in ("取消活动", "登记活动成效", "报名"):
        assert city.locator("form.card h2", has_text=gone).count() == 0
    assert _record(c, rid)["status"] == "cancelled"
    # cancelling it again: refused in Chinese, nothing written
    before = c.head("exchange")
    again = client_for(c, "admin").post(path, {"action": "cancel", "reason": "再取消一次"})
    assert again.status_code == 400 and "该活动当前为「已取消」" in again.text
    assert c.head("exchange") == before
    district.goto(d.url + path)
    reload_until(district, "已取消")
    assert district.locator("form[data-testid=sign-up]").count() == 0
    assert _record(d, rid)["status"] == "cancelled"


def test_the_poster_extends_a_problems_deadline_and_its_colour_follows(two_nodes, desks, client_for):
    district, city = desks["district"], desks["city"]
    d, c = two_nodes.district, two_nodes.city
    today = datetime.now(TZ).date()
    soon = (today + timedelta(days=2)).isoformat()
    rid = d.exchange_execute("post_problem", {
        "unit_id": d.units["甲区财政局"], "title": uniq("非税收入收缴监督"), "context": "票据分散。",
        "deadline": soon, "share": _share_all()})["problem_id"]
    path = "/exchange/problems/" + rid
    district.goto(d.url + path)
    due = district.locator("[data-testid=content] [data-testid=due]")
    assert due.get_attribute("data-state") == "due_soon"
    extend = _card(district, "延长期限")
    # a day already past, or one not later than the deadline now: refused, nothing written
    for bad, message in (((today - timedelta(days=1)).isoformat(), "期限: 早于今天（%s）" % today),
                         ((today + timedelta(days=1)).isoformat(), "期限: 不晚于当前期限")):
        before = d.head("exchange")
        extend.locator("input[name=deadline]").fill(bad)
        extend.locator("input[name=reason]").fill("需要更多时间")
        extend.locator("button:has-text('延长期限')").click()
        district.wait_for_selector("span.field-error:has-text('%s')" % message)
        assert d.head("exchange") == before and _record(d, rid)["content"]["deadline"] == soon
        extend = _card(district, "延长期限")
    later = (today + timedelta(days=30)).isoformat()
    extend.locator("input[name=deadline]").fill(later)
    extend.locator("input[name=reason]").fill("待市级方案")
    extend.locator("button:has-text('延长期限')").click()
    district.wait_for_selector("p.flash:has-text('已延长期限')")
    due = district.locator("[data-testid=content] [data-testid=due]")
    assert due.get_attribute("data-state") == "on_track" and "按期推进" in due.inner_text()
    assert zh_date(later) in due.inner_text()
    assert _record(d, rid)["content"]["deadline"] == later
    district.goto(d.url + "/exchange/problems")
    row = district.locator("[data-testid=feed] tr", has_text="非税收入收缴监督").first
    assert row.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
    # the city sees the new deadline, and may not extend it itself
    city.goto(c.url + path)
    reload_until(city, lambda p: p.locator("[data-testid=content] [data-testid=due]")
                 .get_attribute("data-state") == "on_track", what="the new deadline at the city")
    assert city.locator("h2", has_text="延长期限").count() == 0
    before = c.head("exchange")
    forged = client_for(c, "admin").post(path, {"action": "extend", "deadline": later, "reason": "x"})
    assert forged.status_code == 404 and c.head("exchange") == before


def test_the_origin_filter_shows_one_nodes_records(two_nodes, desks):
    district = desks["district"]
    d, c = two_nodes.district, two_nodes.city
    ours, theirs = uniq("区里的经验"), uniq("市里的经验")
    d.exchange_execute("draft_experience", {
        "unit_id": d.units["甲区财政局"], "title": ours, "summary": "摘要", "body": "正文",
        "business_type": "财务", "share": _share_all()})
    c.exchange_execute("draft_experience", {
        "unit_id": c.units["市财政局"], "title": theirs, "summary": "摘要", "body": "正文",
        "business_type": "财务", "share": _share_all()})
    open_menu(district, "经验联享")
    reload_until(district, theirs)
    feed = district.locator("[data-testid=feed]")
    assert ours in feed.inner_text()
    district.select_option("select[name=origin]", label="市本级")  # submits itself
    expect(feed.locator("tr", has_text=ours)).to_have_count(0)
    expect(feed.locator("tr", has_text=theirs)).to_have_count(1)
    origins = {o.inner_text() for o in feed.locator("[data-testid=origin]").all()}
    assert origins and all(o.startswith("来自：市本级") for o in origins)
    assert district.locator("select[name=origin] option:checked").inner_text() == "市本级"
    listed = {i["title"] for i in d.exchange_query(
        "shared_feed", {"kind": "experience", "origin": "city", "limit": 100})["items"]}
    assert theirs in listed and ours not in listed
    district.select_option("select[name=origin]", label="甲区（本单位）")
    expect(feed.locator("tr", has_text=theirs)).to_have_count(0)
    expect(feed.locator("tr", has_text=ours)).to_have_count(1)
    assert all(o.inner_text().startswith("来自：甲区") for o in feed.locator("[data-testid=origin]").all())
    district.select_option("select[name=origin]", label="全部")
    expect(feed.locator("tr", has_text=theirs)).to_have_count(1)
    expect(feed.locator("tr", has_text=ours)).to_have_count(1)
