"""重点岗位与一把手监督 in the console against the real units, supervision and console
services: posts flagged in the browser, risk points and inspections filtered to them, an
inspection focused on the 一把手's post, the assessment round's key-post figures; refusals
write nothing."""
from __future__ import annotations

from services.console.tests.browser import sign_in
from services.console.tests.conftest import console_node, shoot
from tests.harness import today


def quarter() -> str:
    return "%d-Q%d" % (today().year, (today().month - 1) // 3 + 1)


def _seed(n):
    ids = n.register_units(a="区财政局", b="区卫健局")
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("insp", "钱检查", ["inspector"])
    n.insp_token = n.users.issue_token("insp")
    for unit, post, desc, li in (("a", "局长", "重大资金分配“一支笔”审批", 5), ("a", "司机", "公车私用", 1),
                                 ("b", "采购科科长", "药品耗材采购", 3)):
        n.api("supervision", "identify_risk_point", {
            "unit_id": ids[unit], "post": post, "description": desc, "category": "post_duty",
            "likelihood": li, "impact": 4}, token=n.insp_token)
    n.inspection = n.api("supervision", "plan_inspection", {
        "unit_id": ids["a"], "title": "一把手履职专项督查", "planned_on": today().isoformat()},
        token=n.insp_token)["inspection_id"]
    n.round_id = n.api("supervision", "open_round", {
        "title": "本季度政治生态研判", "period": quarter(), "unit_id": ids["root"]},
        token=n.insp_token)["round_id"]


node = console_node(_seed, CONSOLE_BACKOFF_SECONDS="0")


def flag(page, unit_label, post, kind_label, reason=""):
    form = page.locator("form:has(input[value=flag])")
    form.locator("select[name=unit_id]").select_option(label=unit_label)
    form.locator("input[name=post]").fill(post)
    form.locator("select[name=kind]").select_option(label=kind_label)
    form.locator("input[name=reason]").fill(reason)
    form.locator("button").click()
    page.wait_for_selector("p.flash")


def test_key_posts_flagged_filtered_focused_and_in_the_assessment(node, page):
    sign_in(page, node, "insp", until="nav.menu")
    page.goto(node.url + "/key-posts")
    flag(page, "　区财政局", "局长", "一把手", "单位主要负责人")
    flag(page, "　区卫健局", "采购科科长", "重点岗位", "资金密集、资源富集")
    posts = page.inner_text("table.posts")
    assert "局长" in posts and "一把手" in posts and "采购科科长" in posts
    risks = page.inner_text("table.risks")
    assert "重大资金分配“一支笔”审批" in risks and "药品耗材采购" in risks
    assert "公车私用" not in risks  # the driver's post is not flagged
    focus = page.locator("form:has(input[value=focus])")
    focus.locator("select[name=inspection_id]").select_option(label="区财政局：一把手履职专项督查（%d年%d月%d日）"
                                                              % (today().year, today().month, today().day))
    focus.locator("select[name=post]").select_option(label="区财政局：局长（一把手）")
    focus.locator("button").click()
    page.wait_for_selector("p.flash")
    assert "一把手履职专项督查" in page.inner_text("table.inspections")
    # only the 一把手
    page.select_option("form[method=get] select[name=kind]", label="一把手")
    page.click("button:has-text('筛选')")
    assert "药品耗材采购" not in page.inner_text("table.risks")
    assert "重大资金分配“一支笔”审批" in page.inner_text("table.risks")
    # the assessment round's figures
    page.goto(node.url + "/key-posts")
    page.select_option("select[name=round]", label="本季度政治生态研判")
    page.click("button:has-text('查看')")
    row = page.locator("table.assessment tr", has_text="区财政局").inner_text()
    assert "局长" in row and "\t1\t" in row
    shoot(page, "36-key-posts")


def test_refused_requests_write_nothing(node, client_for):
    before = node.head("supervision")
    viewer = client_for(node, "viewer")
    page = viewer.get("/key-posts")
    assert page.status_code == 200 and "标记岗位" not in page.text
    assert viewer.post("/key-posts", {"action": "flag", "unit_id": node.ids["a"], "post": "x",
                                      "kind": "key_post"}).status_code == 403
    insp = client_for(node, "insp")
    r = insp.post("/key-posts", {"action": "flag", "unit_id": node.ids["b"], "post": "",
                                 "kind": "key_post"})
    assert r.status_code == 400 and "岗位" in r.text
    assert node.head("supervision") == before
    node.api("supervision", "flag_key_post", {"unit_id": node.ids["b"], "post": "局长",
                                              "kind": "top_leader"}, token=node.insp_token)
    before = node.head("supervision")
    r = insp.post("/key-posts", {"action": "flag", "unit_id": node.ids["b"], "post": "书记",
                                 "kind": "top_leader"})
    assert r.status_code == 400 and "一个单位只有一个一把手岗位" in r.text
    assert node.head("supervision") == before


def test_the_ecology_page_shows_the_rounds_key_post_supervision(node, client_for):
    """政治生态研判 (/ecology): the round's 重点岗位 / 一把手 supervision counts from
    supervision's assessment_report (``key_posts``), under Chinese headers, no codes."""
    node.api("supervision", "flag_key_post", {"unit_id": node.ids["a"], "post": "财务科科长",
                                              "kind": "key_post"}, token=node.insp_token)
    viewer = client_for(node, "viewer")
    page = viewer.get("/ecology?round_id=%s" % node.round_id)
    assert page.status_code == 200
    table = page.text.split('data-testid="key-posts"')[1].split("</table>")[0]
    for header in ("单位", "一把手岗位", "重点岗位", "高风险点", "本期聚焦检查", "其中已完成"):
        assert "<th>%s</th>" % header in table
    row = next(r for r in table.split("<tr>") if "区财政局" in r)
    assert "财务科科长" in row and "区卫健局" in table
    assert "key_post" not in table and "top_leader" not in table
    # a past view (as_of) has no live key-post figures: the table is not shown
    past = viewer.get("/ecology?round_id=%s&as_of=%s" % (node.round_id, "2020-01-01 00:00:00"))
    assert 'data-testid="key-posts"' not in past.text
