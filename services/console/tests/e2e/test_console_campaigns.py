"""专项整治 (四风) in the console against the real units, supervision and console services: a
campaign launched in the browser over a unit's subtree, findings recorded for it and tagged
to it with 四风 categories (the new forms of 形式主义、官僚主义 among them), its progress per
category and per unit; refusals write nothing."""
from __future__ import annotations

from datetime import timedelta

from services.console.tests.browser import pick, sign_in
from services.console.tests.conftest import console_node, shoot
from tests.harness import today


def end() -> str:
    return (today() + timedelta(days=60)).isoformat()


def soon() -> str:
    return (today() + timedelta(days=3)).isoformat()


def later() -> str:
    return (today() + timedelta(days=30)).isoformat()


def _seed(n):
    n.register_units(a="区住建局", s=("区住建局办公室", "section", "section", "a"), b="区水利局")
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("insp", "钱检查", ["inspector"])
    n.insp_token = n.users.issue_token("insp")


node = console_node(_seed, CONSOLE_BACKOFF_SECONDS="0")


def test_a_campaign_is_launched_its_findings_tagged_and_its_progress_shown(node, page):
    # a finding recorded before, in the scope and period: it is tagged to the campaign later
    earlier = node.api("supervision", "record_finding", {
        "unit_id": node.ids["a"], "source": "public_report", "description": "办事群众反映多次跑腿",
        "responsible_role": "unit_head", "deadline": later()}, token=node.insp_token)
    sign_in(page, node, "insp", until="nav.menu")
    page.goto(node.url + "/campaigns/new")
    page.fill("input[name=title]", "整治形式主义官僚主义专项行动")
    page.select_option("select[name=kind]", label="专项整治")
    pick(page, "整治范围", "区住建局")
    page.fill("input[name=ends_on]", end())
    page.locator("label.category", has_text="形式主义新表现").locator("input").check()
    page.locator("label.category", has_text="官僚主义新表现").locator("input").check()
    page.fill("textarea[name=description]", "重点整治文山会海、过度留痕、推诿扯皮")
    page.click("button:has-text('部署')")
    page.wait_for_selector("p.flash")
    assert "已部署专项：整治形式主义官僚主义专项行动" in page.inner_text("p.flash")
    assert "形式主义新表现" in page.inner_text("td.categories")

    # a finding recorded for the campaign (it becomes a 限期整改)
    form = page.locator("form:has(input[value=finding])")
    form.locator("select[name=unit_id]").select_option(label="　　区住建局办公室")
    form.locator("select[name=four_winds]").select_option(
        label="形式主义新表现（文山会海、过度留痕、“指尖上的形式主义”）")
    form.locator("select[name=source]").select_option(label="审计监督")
    form.locator("textarea[name=description]").fill("同一材料要求基层重复报送三次")
    form.locator("input[name=deadline]").fill(soon())
    form.locator("button").click()
    page.wait_for_selector("p.flash")
    assert "已记录问题并纳入本专项" in page.inner_text("p.flash")
    # the earlier one, tagged as a new form of 官僚主义
    tag = page.locator("form:has(input[value=tag])")
    tag.locator("select[name=finding_id]").select_option(index=0)
    tag.locator("select[name=four_winds]").select_option(
        label="官僚主义新表现（推诿扯皮、懒政怠政、“新官不理旧账”）")
    tag.locator("button").click()
    page.wait_for_selector("p.flash")
    by_cat = page.inner_text("table.by-category")
    assert "形式主义新表现" in by_cat and "官僚主义新表现" in by_cat
    by_unit = page.inner_text("table.by-unit")
    assert "区住建局办公室" in by_unit and "区住建局" in by_unit
    assert page.locator("table.items tr.yellow", has_text="同一材料要求基层重复报送三次").count() == 1
    assert page.locator("table.items tr", has_text="办事群众反映多次跑腿").count() == 1
    shoot(page, "35-campaign")
    page.goto(node.url + "/campaigns")
    row = page.locator("table.campaigns tr", has_text="整治形式主义官僚主义专项行动")
    assert "进行中" in row.inner_text() and "区住建局及下级单位" in row.inner_text()
    shoot(page, "34-campaigns")
    # the finding's rectification is the ordinary one
    page.goto(node.url + "/rectifications/%s" % earlier["rect_id"])
    assert "办事群众反映多次跑腿" in page.inner_text("main")


def test_refused_requests_write_nothing(node, client_for):
    cid = node.api("supervision", "launch_campaign", {
        "title": "专项治理", "kind": "governance", "scope_unit_id": node.ids["a"],
        "starts_on": today().isoformat(), "ends_on": end(), "categories": ["formalism_new"]},
        token=node.insp_token)["campaign_id"]
    before = node.head("supervision")
    viewer = client_for(node, "viewer")
    page = viewer.get("/campaigns/%s" % cid)
    assert page.status_code == 200 and "记录并转为整改" not in page.text
    assert viewer.post("/campaigns/%s" % cid, {"action": "close", "summary": "x"}).status_code == 403
    assert viewer.post("/campaigns/new", {"title": "x"}).status_code == 403
    insp = client_for(node, "insp")
    r = insp.post("/campaigns/%s" % cid, {
        "action": "finding", "unit_id": node.ids["b"], "four_winds": "formalism_new",
        "source": "audit", "description": "范围外的问题", "severity": "general",
        "responsible_role": "unit_head", "deadline": later()})
    assert r.status_code == 400 and "不在专项范围内" in r.text
    r = insp.post("/campaigns/new", {"title": "x", "kind": "rectification",
                                     "scope_unit_id": node.ids["a"], "starts_on": end(),
                                     "ends_on": today().isoformat()})
    assert r.status_code == 400 and "结束日期: 不得早于开始日期" in r.text
    assert node.head("supervision") == before
