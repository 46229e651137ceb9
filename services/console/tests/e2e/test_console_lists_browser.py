"""单位与责任's lists and people, 政治生态研判's editors and 检查督导's batches and checklist,
clicked through in Chromium (Debian's) against the real units, supervision, education and
console services; each page's screenshot goes to var/screenshots/ for the user guide.
(The refusals - CSRF, other subtrees, viewers - are over plain HTTP in test_console_lists.py.)"""
from __future__ import annotations

import re

from services.console.tests.browser import HOME, pick, sign_in
from services.console.tests.conftest import WITH_EDUCATION, console_node, shoot
from tests.harness import wait_for


def _seed(n):
    n.register_units(a="区财政局", b="区审计局", c=("区市场监管局", "law_enforcement", "unit", "root"))
    n.person = n.register_person(None, "张科长", "a", "预算科科长")
    n.add_user("insp", "钱检查", ["inspector"])


node = console_node(_seed, WITH_EDUCATION, CONSOLE_BACKOFF_SECONDS="0")


def fill_items(page, form, items):
    rows = form.locator("tbody.items tr")
    while rows.count() < len(items):
        form.locator("button:has-text('增加条目')").click()
    for n in range(rows.count()):
        text, post, score = items[n] if n < len(items) else ("", "", "")
        row = rows.nth(n)
        row.locator("input[name=item_text]").fill(text)
        row.locator("input[name=item_post]").fill(post)
        row.locator("input[name=item_score]").fill(score)


def test_a_list_is_drafted_revised_and_two_versions_compared_side_by_side(node, page):
    sign_in(page, node, "admin", until=HOME)
    page.goto(node.url + "/units/%s" % node.ids["a"])
    page.click("a:has-text('新建清单')")
    page.select_option("select[name=kind]", label="考评细则")
    page.fill("input[name=title]", "2026年度清廉机关建设考评细则")
    form = page.locator("form.card")
    fill_items(page, form, [("党风廉政建设责任制落实到位", "党组书记", "20"),
                            ("每季度开展廉政风险排查", "纪检委员", "10"),
                            ("按时报送廉政教育台账", "办公室", "5"),
                            ("落实“三重一大”集体决策", "党组书记", "15")])
    page.click("button:has-text('保存为第 1 版')")
    page.wait_for_selector("p.flash:has-text('已建立清单')")
    form = page.locator("form.card", has=page.locator("h2", has_text="修订"))
    fill_items(page, form, [("党风廉政建设责任制落实到位", "党组书记", "20"),
                            ("每半年开展一次廉政风险排查", "纪检委员", "15"),
                            ("落实“三重一大”集体决策", "党组书记", "15"),
                            ("年底述责述廉", "党组书记", "10")])
    form.locator("input[name=note]").fill("排查改为每半年一次，增加述责述廉")
    form.locator("button:has-text('保存修订')").click()
    page.wait_for_selector("p.flash:has-text('已修订为第 2 版')")
    assert "排查改为每半年一次，增加述责述廉" in page.inner_text("main")
    shoot(page, "30-document")
    page.click("#compare-form button:has-text('对照查看')")
    page.wait_for_selector("h1:has-text('第 1 版与第 2 版对照')")
    summary = page.inner_text("p.diff-summary")
    assert "新增 1 条" in summary and "删除 1 条" in summary and "修改 1 条" in summary
    assert page.locator("tr.diff-removed").inner_text().count("按时报送廉政教育台账") == 1
    assert "年底述责述廉" in page.locator("tr.diff-added").inner_text()
    changed = page.locator("tr.diff-changed")
    assert "修改：内容、分值" in changed.inner_text()
    assert changed.locator("td.diff-field").count() == 4  # 内容 and 分值, on both sides
    shoot(page, "31-document-compare")


def test_a_promotion_from_the_person_page_schedules_the_integrity_talk(node, page):
    sign_in(page, node, "admin", until=HOME)
    page.goto(node.url + "/units/%s" % node.ids["a"])
    page.click("a:has-text('张科长')")
    page.wait_for_selector("h1:has-text('张科长')")
    page.select_option("select[name=role]", label="纪检委员")
    page.check("input[name=part_time]")
    page.click("form:has(select[name=role]) button:has-text('设置')")
    page.wait_for_selector("p.flash:has-text('已设置职务')")
    page.goto(node.url + "/people/%s" % node.person)
    assert "纪检委员" in page.inner_text("main")
    form = page.locator("#promote-form")
    form.locator("input[name=new_post]").fill("区审计局副局长")
    pick(page, "任职单位", "区审计局")
    form.locator("button:has-text('记录提拔')").click()
    page.wait_for_selector("p.flash:has-text('已记录提拔')")

    def talk_scheduled():  # education schedules it from the units' Person.Promoted event
        try:
            talks = node.api("education", "list_talks", {"unit_id": node.ids["b"]}, kind="query")
        except AssertionError:
            return False
        return any(t["person_id"] == node.person for t in talks["talks"])
    wait_for(talk_scheduled, timeout=30)
    page.goto(node.url + "/people/%s" % node.person)
    page.wait_for_selector("h2:has-text('廉政谈话')")
    assert "待谈话" in page.inner_text("main") or "已逾期" in page.inner_text("main")
    main = page.inner_text("main")
    assert "区审计局副局长" in main and "区审计局" in page.inner_text("h1")
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 周[一二三四五六日]", main)
    shoot(page, "32-person-promotion")


def test_the_indicator_system_is_revised_then_a_round_is_opened_and_scored_by_hand(node, page):
    sign_in(page, node, "admin", until=HOME)
    page.goto(node.url + "/ecology")
    page.click("a:has-text('指标体系及其版本')")
    page.wait_for_selector("h1:has-text('现行第 1 版')")
    editor = page.locator("#system-editor")
    civility = editor.locator("fieldset.dimension", has=page.locator("legend", has_text="精神文明创建情况"))
    civility.locator("input[aria-label=指标权重]").nth(0).fill("40")
    civility.locator("input[aria-label=指标名称]").nth(2).fill("志愿服务")
    civility.locator("input[aria-label=指标权重]").nth(2).fill("10")
    editor.locator("input[name=note]").fill("增加志愿服务指标")
    editor.locator("button:has-text('保存为新版本')").click()
    page.wait_for_selector("p.flash:has-text('已发布指标体系第 2 版')")
    assert "志愿服务" in page.inner_text("table.system")
    shoot(page, "33-ecology-system")
    # a round over the district's departments, scored by hand
    page.goto(node.url + "/ecology/rounds")
    page.fill("input[name=title]", "2026年度政治生态分析研判")
    page.select_option("select[name=period]", label="2026年")
    pick(page, "研判范围", "某区直机关工委")
    page.click("button:has-text('开启')")
    page.wait_for_selector("p.flash:has-text('已开启研判轮次，共 3 个被研判单位')")
    assert "评分中" in page.inner_text("h1")
    grid = page.locator("#scores-form")
    for n, unit in enumerate(("区财政局", "区审计局", "区市场监管局")):
        row = grid.locator("tr", has=page.locator("td", has_text=unit))
        cells = row.locator("input")
        for k in range(cells.count()):
            cells.nth(k).fill(str(45 - 5 * n))
    grid.locator("button:has-text('保存评分')").click()
    page.wait_for_selector("p.flash:has-text('项人工评分')")
    ranking = page.inner_text("table.ranking")
    assert ranking.index("区财政局") < ranking.index("区审计局") < ranking.index("区市场监管局")
    shoot(page, "34-ecology-round")


def test_the_checklist_is_revised_and_a_batch_of_inspections_planned_from_the_tree(node, page):
    sign_in(page, node, "admin", until=HOME)
    page.goto(node.url + "/inspections")
    page.click("a:has-text('检查清单（评分表）')")
    page.wait_for_selector("h1:has-text('检查清单')")
    for name in ("规定动作全不全", "自选动作实不实", "业务融合紧不紧", "问题整改快不快"):
        assert name in page.inner_text("main table")
    editor = page.locator("#checklist-editor")
    editor.locator("input[aria-label=考核标准名称]").nth(4).fill("群众满意好不好")
    editor.locator("input[aria-label=说明]").nth(4).fill("服务对象评价")
    editor.locator("input[aria-label=满分]").nth(4).fill("20")
    editor.locator("input[name=note]").fill("增加群众满意度")
    editor.locator("button:has-text('保存为新版本')").click()
    page.wait_for_selector("p.flash:has-text('已发布检查清单第 2 版')")
    shoot(page, "35-checklists")
    page.goto(node.url + "/inspections")
    batch = page.locator("#batch-form")
    for unit in ("区财政局", "区市场监管局"):
        batch.locator("input.picker-search").fill(unit)
        batch.locator("label.picker-item:visible", has_text=unit).first.click()
    batch.locator("input[name=title]").fill("2026年第四季度集中检查")
    batch.locator("button:has-text('批量计划')").click()
    page.wait_for_selector("p.flash:has-text('已批量计划 2 次检查（检查清单第 2 版）')")
    listed = page.inner_text("main table")
    assert listed.count("2026年第四季度集中检查") == 2 and "批量" in listed
    shoot(page, "36-inspections-batch")
    page.click("a:has-text('2026年第四季度集中检查') >> nth=0")
    page.wait_for_selector("h2:has-text('检查清单第 2 版')")
    assert "群众满意好不好" in page.inner_text("main")
