"""任务跟踪 (跟踪问效) and 推进会 in the console, against the real units, supervision and
console services: a task list issued in the browser, completion reported with a file by
the unit and accepted by an inspector, overdue tasks in red with their 督办 steps, a
meeting whose decisions become tracked tasks; refusals write nothing."""
from __future__ import annotations

import re
from datetime import timedelta

from services.console.tests.browser import pick, sign_in
from services.console.tests.conftest import console_node, shoot
from tests.harness import today


def soon() -> str:  # yellow on the console's 7 days
    return (today() + timedelta(days=3)).isoformat()


def later() -> str:  # green
    return (today() + timedelta(days=40)).isoformat()


def _seed(n):
    n.register_units(a="区财政局", b="区教育局")
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("insp", "钱检查", ["inspector"])
    n.insp_token = n.users.issue_token("insp")


node = console_node(_seed, CONSOLE_BACKOFF_SECONDS="0")



def issue(node, title, items):
    return node.api("supervision", "issue_task_list", {
        "title": title, "issuer_unit_id": node.ids["root"], "items": items}, token=node.insp_token)


# -- the browser -------------------------------------------------------------------------------
def test_a_task_list_issued_reported_with_evidence_and_accepted(node, page, browser):
    sign_in(page, node, "insp", until="nav.menu")
    assert page.locator("nav.menu a", has_text="任务跟踪").count() == 1
    page.goto(node.url + "/tasks/new")
    page.fill("input[name=title]", "2026年清廉机关建设重点任务")
    pick(page, "下达单位", "某区直机关工委")
    rows = page.locator("tr.item")
    rows.nth(0).locator("input[name=item_title]").fill("建立廉政风险台账")
    rows.nth(0).locator("input[name=item_standard]").fill("每个岗位一张台账，班子审定")
    rows.nth(0).locator("input[name=item_deadline]").fill(soon())
    rows.nth(0).locator("select[name=item_unit]").select_option(label="　区财政局")
    rows.nth(1).locator("input[name=item_title]").fill("开展警示教育")
    rows.nth(1).locator("input[name=item_standard]").fill("全员参加，有签到和心得")
    rows.nth(1).locator("input[name=item_deadline]").fill(later())
    rows.nth(1).locator("select[name=item_unit]").select_option(label="　区教育局")
    page.click("button:has-text('下达')")
    page.wait_for_selector("p.flash")
    assert "已下达任务清单：2026年清廉机关建设重点任务（2 项）" in page.inner_text("p.flash")
    page.goto(node.url + "/tasks")
    table = page.inner_text("table.tasks")
    assert "建立廉政风险台账" in table and "每个岗位一张台账，班子审定" in table and "区财政局" in table
    assert page.locator("table.tasks tr.yellow", has_text="建立廉政风险台账").count() == 1
    assert page.locator("table.tasks tr.green", has_text="开展警示教育").count() == 1
    shoot(page, "30-tasks")

    # the unit's contact reports it done with a file; the inspector accepts it
    unit = browser.new_page(locale="zh-CN", timezone_id="Asia/Shanghai")
    sign_in(unit, node, "ua-a", until="nav.menu")
    unit.goto(node.url + "/tasks")
    unit.click("a:has-text('建立廉政风险台账')")
    assert unit.locator("text=验收办结").count() == 0  # not a unit-admin's button
    unit.fill("input[name=summary]", "台账已建立并经班子会审定")
    unit.set_input_files("input[name=file]", files=[{
        "name": "廉政风险台账.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 ledger"}])
    unit.click("button:has-text('报告完成')")
    unit.wait_for_selector("p.flash")
    assert "已报告完成，等待验收" in unit.inner_text("p.flash")
    unit.close()

    page.goto(node.url + "/tasks")
    page.click("a:has-text('建立廉政风险台账')")
    assert "已报完成待验收" in page.inner_text("td.status")
    with page.expect_download() as got:
        page.click("a.evidence-file:has-text('廉政风险台账.pdf')")
    assert open(got.value.path(), "rb").read() == b"%PDF-1.4 ledger"
    page.fill("form:has(input[value=accept]) input[name=note]", "符合标准")
    page.click("button:has-text('验收办结')")
    page.wait_for_selector("p.flash")
    assert "已验收办结" in page.inner_text("td.status")
    shoot(page, "31-task")


def test_a_meeting_records_units_and_decisions_that_become_tasks(node, page):
    sign_in(page, node, "insp", until="nav.menu")
    page.goto(node.url + "/meetings/new")
    page.fill("input[name=title]", "清廉机关建设联席推进会（第一次）")
    page.select_option("select[name=kind]", label="联席推进会")
    pick(page, "召集单位", "某区直机关工委")
    page.locator("label.unit-choice", has_text="区财政局").locator("input").check()
    page.locator("label.unit-choice", has_text="区教育局").locator("input").check()
    page.fill("textarea[name=summary]", "通报上季度进展，研究联合督查")
    row = page.locator("tr.decision").nth(0)
    row.locator("input[name=dec_text]").fill("建立联合督查机制")
    row.locator("input[name=dec_standard]").fill("出台联合督查办法")
    row.locator("input[name=dec_deadline]").fill(later())
    row.locator("select[name=dec_unit]").select_option(label="　区教育局")
    page.click("button:has-text('保存会议')")
    page.wait_for_selector("p.flash")
    assert "1 项议定事项已转为跟踪任务" in page.inner_text("p.flash")
    assert set(page.inner_text("td.units").split("、")) == {"区财政局", "区教育局"}
    assert "建立联合督查机制" in page.inner_text("table.decisions")
    # a decision added later, for a unit present
    page.fill("form input[name=text]", "开展交叉互查")
    page.fill("form input[name=standard]", "形成互查报告")
    page.fill("form input[name=deadline]", soon())
    page.select_option("form select[name=unit_id]", label="区财政局")
    page.click("button:has-text('增加')")
    page.wait_for_selector("p.flash")
    decisions = page.inner_text("table.decisions")
    assert "开展交叉互查" in decisions and "推进中" in decisions
    shoot(page, "33-meeting")
    page.goto(node.url + "/meetings")
    assert "清廉机关建设联席推进会（第一次）" in page.inner_text("main")
    shoot(page, "32-meetings")
    # the decision is a tracked task in 任务跟踪, its source the meeting
    page.goto(node.url + "/tasks")
    assert page.locator("table.tasks tr", has_text="建立联合督查机制").locator(
        "a:has-text('推进会议定事项')").count() == 1


# -- over HTTP ---------------------------------------------------------------------------------
def test_overdue_tasks_turn_red_and_show_their_escalations(node, client_for):
    made = issue(node, "逾期测试清单", [{"unit_id": node.ids["b"], "title": "报送自查报告",
                                      "standard": "盖章的自查报告", "deadline": soon()}])
    task_id = made["task_ids"][0]
    rt = node.runtime("supervision")
    real = rt.clock
    rt.clock = lambda: real() + timedelta(days=20)  # 17 days past the deadline
    try:
        node.api("supervision", "detect_task_overdue", {}, token=node.insp_token)
        c = client_for(node, "viewer")
        listed = c.get("/tasks?overdue=1")
        assert listed.status_code == 200
        row = re.search(r'<tr class="red">(?:(?!</tr>).)*报送自查报告(?:(?!</tr>).)*</tr>',
                        listed.text, re.S)
        assert row and "逾期 17 天" in row.group(0)
        detail = c.get("/tasks/%s" % task_id).text
        for level in ("整改责任单位", "单位负责人、纪检委员", "区直机关工委"):
            assert level in detail
        assert "下达任务清单" not in listed.text and "验收办结" not in detail  # a viewer's page
        # 工作台: the overdue task is a red item of the viewer's to-do list, beside rectifications
        home = c.get("/").text
        todo = re.search(r'<tr class="red">(?:(?!</tr>).)*报送自查报告(?:(?!</tr>).)*</tr>', home, re.S)
        assert todo and "任务" in todo.group(0) and "/tasks/%s" % task_id in todo.group(0)
    finally:
        rt.clock = real


def test_refused_requests_write_nothing(node, client_for):
    before = node.head("supervision")
    viewer = client_for(node, "viewer")
    assert viewer.post("/tasks/new", {"title": "x", "issuer_unit_id": node.ids["root"]}
                       ).status_code == 403
    ua = client_for(node, "ua-a")
    assert ua.post("/meetings/new", {"title": "x"}).status_code == 403
    insp = client_for(node, "insp")
    past = (today() - timedelta(days=1)).isoformat()
    r = insp.post("/tasks/new", {"title": "有误的清单", "issuer_unit_id": node.ids["root"],
                                 "item_title": "x", "item_standard": "y", "item_deadline": past,
                                 "item_unit": node.ids["a"]})
    assert r.status_code == 400 and "时限: 不得早于今天" in r.text, r.text
    r = insp.post("/meetings/new", {"title": "会", "kind": "regular",
                                    "convener_unit_id": node.ids["root"],
                                    "held_on": today().isoformat(), "unit_ids": node.ids["a"],
                                    "dec_text": "x", "dec_standard": "y", "dec_deadline": later(),
                                    "dec_unit": node.ids["b"]})
    assert r.status_code == 400 and "不是本次会议的参会单位" in r.text
    assert node.head("supervision") == before
