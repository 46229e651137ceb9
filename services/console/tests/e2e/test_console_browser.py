"""Flows a person clicks through, in Chromium, against the real services (one browser for
the session; each main page's screenshot goes to var/screenshots/ for the user guide)."""
from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import requests
import segno

from services.console.tests.browser import pick, sign_in
from services.console.tests.conftest import console_node, shoot
from tests.harness import today


def year() -> str:
    return str(today().year)


def _seed(n):
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("insp", "钱检查", ["inspector"])


node = console_node(_seed, CONSOLE_BACKOFF_SECONDS="0")


def register(page, node, name, kind_label, level_label, parent=None):
    page.goto(node.url + "/units/new")
    page.fill("input[name=name]", name)
    page.select_option("select[name=kind]", label=kind_label)
    page.select_option("select[name=level]", label=level_label)
    if parent:
        pick(page, "上级单位", parent)
    else:
        page.locator("label.picker-item", has_text="无（本级顶层单位）").click()
    page.click("button:has-text('登记')")
    page.wait_for_selector("p.flash")
    assert "已登记单位：%s" % name in page.inner_text("p.flash")


def test_sign_in_wrong_password_then_right_then_logout(node, page):
    sign_in(page, node, "admin", "wrong-pass-1")
    assert "用户名或密码不正确" in page.inner_text("p.error")
    shoot(page, "01-login")
    sign_in(page, node, "admin")
    page.wait_for_selector("h1:has-text('工作台')")
    assert "王管理（节点管理员）" in page.inner_text("header")
    page.click("button:has-text('退出登录')")
    page.wait_for_selector("p.flash:has-text('您已退出登录')")
    page.goto(node.url + "/units")
    assert page.url.startswith(node.url + "/login")


def test_build_a_four_level_tree_issue_and_sign_letters_and_publish_micro_power(node, page):
    sign_in(page, node, "admin")
    page.wait_for_selector("h1:has-text('工作台')")
    register(page, node, "某区直机关工委", "区直机关工委", "区级")
    register(page, node, "区市场监管局", "执法部门", "机关单位", "某区直机关工委")
    register(page, node, "综合执法科", "科室", "科室、站所", "区市场监管局")
    register(page, node, "城东市场监管所", "基层站所", "科室、站所", "综合执法科")
    register(page, node, "区财政局", "政府部门", "机关单位", "某区直机关工委")
    page.goto(node.url + "/units")
    tree = page.inner_text(".tree")
    for name in ("某区直机关工委", "区市场监管局", "综合执法科", "城东市场监管所"):
        assert name in tree
    # four levels: the station sits three <ul> below the root
    depth = page.locator(".tree ul ul ul a", has_text="城东市场监管所").count()
    assert depth == 1
    assert "执法部门" in tree and "law_enforcement" not in tree
    shoot(page, "02-units")
    page.goto(node.url + "/units/new")
    shoot(page, "03-unit-new")

    # 责任书: none signed yet, then issue to the bureau and sign it: coverage moves
    page.goto(node.url + "/letters?period=%s" % year())
    assert page.inner_text("strong.coverage") == "0.0%"
    page.locator("form:has(input[value=issue])").scroll_into_view_if_needed()
    pick(page, "下达单位", "某区直机关工委")
    pick(page, "签订单位（下级）", "区市场监管局")
    page.fill("textarea[name=content]", "落实全面从严治党主体责任，一岗双责。")
    page.click("button:has-text('下达')")
    page.wait_for_selector("p.flash:has-text('已下达责任书')")
    row = page.locator("tr", has_text="区市场监管局")
    assert "已下达待签订" in row.inner_text()
    row.locator("button:has-text('签订')").click()
    page.wait_for_selector("p.flash:has-text('已签订责任书')")
    assert page.inner_text("strong.coverage") == "25.0%"  # 1 of the 4 units below the root
    assert "区市场监管局" not in page.inner_text("table")
    assert "城东市场监管所" in page.inner_text("table")  # unsigned, down to 基层站所
    shoot(page, "04-letters")

    # 微权力清单: draft, publish, open the public page signed out, check the QR code's link
    page.goto(node.url + "/micro-power")
    pick(page, "选择单位", "区市场监管局")
    page.click("button:has-text('查看')")
    page.click("a:has-text('新建岗位清单')")
    page.fill("input[name=post]", "行政许可岗")
    page.fill("textarea[name=duties]", "受理食品经营许可申请\n现场核查")
    page.fill("textarea[name=power_boundary]", "仅限法定许可事项，不得增设条件。")
    page.fill("input[name=step_name]", "受理")
    page.fill("input[name=step_post]", "窗口受理岗")
    page.fill("input[name=step_limit]", "1个工作日")
    page.click("button:has-text('增加环节')")
    page.locator("input[name=step_name]").nth(1).fill("审批")
    page.locator("input[name=step_post]").nth(1).fill("分管局长")
    page.locator("input[name=step_limit]").nth(1).fill("5个工作日")
    page.fill("textarea[name=accountability]", "违规审批的，依纪依法追究责任。")
    shoot(page, "05-micro-power-edit")
    page.click("button:has-text('保存并发布')")
    page.wait_for_selector("p.flash:has-text('已发布')")
    assert "行政许可岗" in page.inner_text("table")
    public = page.locator("a:has-text('公开页面')").get_attribute("href")

    anonymous = page.context.browser.new_context(viewport={"width": 375, "height": 667})
    phone = anonymous.new_page()
    phone.goto(node.url + public)
    text = phone.inner_text("body")
    assert "区市场监管局 微权力清单公开" in text and "分管局长" in text and "5个工作日" in text
    assert "登录" not in text
    shoot(phone, "06-public-micro-power")
    qr = requests.get(node.url + phone.locator("img").get_attribute("src"), timeout=10)
    expected = segno.make(node.url + public, error="m")
    import io
    out = io.BytesIO()
    expected.save(out, kind="svg", scale=6, border=2)
    assert qr.content == out.getvalue()  # the code encodes exactly this page's address
    anonymous.close()


def test_rectification_board_home_todos_and_users_page(node, page):
    sign_in(page, node, "admin")
    page.wait_for_selector("h1:has-text('工作台')")
    units = node.api("units", "root_units", kind="query")["units"]
    root = units[0]["unit_id"] if units else node.api("units", "register_unit", {
        "name": "某区直机关工委", "kind": "district_authority", "level": "district",
        "parent_id": None})["unit_id"]
    unit = node.api("units", "register_unit", {"name": "区审计局", "kind": "government_dept",
                                               "level": "unit", "parent_id": root})["unit_id"]
    node.wait_known([unit])

    def finding(description, deadline):
        node.api("supervision", "record_finding", {
            "unit_id": unit, "source": "audit", "description": description, "deadline": deadline,
            "requirement": "限期整改到位", "responsible_role": "unit_head"})
    soon = today().isoformat()
    later = "%d-12-31" % (today().year + 1)
    finding("专项资金拨付审批手续不全", soon)
    finding("采购台账未按月更新", later)
    page.goto(node.url + "/rectifications")
    board = page.inner_text(".board")
    assert "专项资金拨付审批手续不全" in board and "采购台账未按月更新" in board
    assert page.locator(".item.yellow", has_text="专项资金拨付审批手续不全").count() == 1
    assert page.locator(".item.green", has_text="采购台账未按月更新").count() == 1
    assert "整改中" in board and "open" not in board
    shoot(page, "07-rectifications")
    page.goto(node.url + "/")
    assert page.locator("tr.yellow", has_text="专项资金拨付审批手续不全").count() == 1
    assert "%d年%d月%d日" % (today().year, today().month, today().day) in page.inner_text("h1")
    shoot(page, "00-home")
    page.locator("a", has_text="专项资金拨付审批手续不全").first.click()
    assert "审计监督" in page.inner_text("main") and "audit" not in page.inner_text("main")
    new_deadline = "%d-03-31" % (today().year + 1)
    # the date field is the vendored Chinese picker, not the browser's mm/dd/yyyy widget
    assert page.eval_on_selector(
        "input[name=deadline]",
        "e => e.type === 'text' && !!e._flatpickr && e._flatpickr.l10n.weekdays.shorthand[1]") == "周一"
    page.fill("input[name=deadline]", new_deadline)
    # and the evidence field's button is Chinese, not the browser's "Choose Files"
    assert page.locator("button.file-choose", has_text="选择文件").count() == 1
    page.fill("form:has(input[value=extend]) input[name=reason]", "涉及跨部门协调，申请延期")
    page.click("button:has-text('延期')")
    page.wait_for_selector("p.flash:has-text('已延长整改期限')")
    assert page.inner_text("td.deadline").startswith("%d年3月31日" % (today().year + 1))
    shoot(page, "08-rectification")
    page.goto(node.url + "/admin/users")
    assert "登录成功" in page.inner_text("main")
    shoot(page, "09-admin-users")


def test_viewer_menu_has_no_admin_entry_and_no_write_buttons(node, page):
    sign_in(page, node, "viewer")
    page.wait_for_selector("h1:has-text('工作台')")
    assert "用户与登录" not in page.inner_text("nav.menu")
    page.goto(node.url + "/units")
    assert page.locator("button:has-text('登记单位')").count() == 0
    assert not re.search(r"[a-z]+_[a-z]+", page.inner_text("main"))  # no code shown


def test_risk_heat_map_ranking_as_of_and_excel_downloads(node, page, tmp_path):
    import openpyxl
    root = node.api("units", "register_unit", {"name": "某区机关工委", "kind": "district_authority",
                                               "level": "district", "parent_id": None})["unit_id"]
    a = node.api("units", "register_unit", {"name": "区教育局", "kind": "government_dept",
                                            "level": "unit", "parent_id": root})["unit_id"]
    b = node.api("units", "register_unit", {"name": "区卫健委", "kind": "government_dept",
                                            "level": "unit", "parent_id": root})["unit_id"]
    sv = "http://%s/api/" % node.addresses["supervision"]
    auth = {"Authorization": "Bearer %s" % node.admin_token}

    def post(name, data):
        return requests.post(sv + name, json=data, headers=auth, timeout=10)

    node.wait_known([root, a, b])
    assert post("identify_risk_point", {
        "unit_id": b, "description": "药品采购中收受回扣", "category": "post_duty", "post": "采购岗",
        "post_flags": ["fund_intensive"], "likelihood": 4, "impact": 5}).status_code == 201
    # both units are known: the round covers both
    rnd = post("open_round", {"title": "%s年度政治生态研判" % year(), "period": year(), "unit_id": root})
    assert rnd.status_code == 201, rnd.text
    rnd = rnd.json()
    assert post("record_finding", {"unit_id": a, "source": "audit", "description": "三重一大记录不全",
                                   "deadline": "%d-06-30" % (today().year + 1), "requirement": "补齐会议记录",
                                   "responsible_role": "party_secretary"}).status_code == 201

    def scores(high, low):
        return [{"unit_id": u, "indicator": i, "score": s} for u, s in ((high, 95), (low, 60))
                for i in ("unity", "enterprise", "life_meeting", "civilisation", "integrity_culture")]
    assert post("record_round_scores", {"round_id": rnd["round_id"], "scores": scores(a, b)}).status_code == 200
    time.sleep(1.1)  # the as-of moment below lies strictly between the two recordings
    then = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1.1)
    assert post("record_round_scores", {"round_id": rnd["round_id"], "scores": scores(b, a)}).status_code == 200

    sign_in(page, node, "admin")
    page.wait_for_selector("h1:has-text('工作台')")
    page.goto(node.url + "/risk")
    page.wait_for_selector("#heat svg")
    row = page.locator("tr", has_text="药品采购中收受回扣")
    assert "资金密集" in row.inner_text() and "岗位职责风险" in row.inner_text()
    shoot(page, "10-risk")

    page.goto(node.url + "/ecology?round_id=%s" % rnd["round_id"])
    first = lambda: page.locator("table.ranking tr").nth(1).inner_text()  # noqa: E731
    assert "区卫健委" in first()  # now: the second recording put it first
    page.evaluate("document.querySelector('#as_of')._flatpickr.setDate(%r, true)" % then)
    page.click("button:has-text('查看排名')")
    page.wait_for_selector("h2:has-text('截至')")
    assert "区教育局" in first()  # as it stood between the two recordings
    shoot(page, "11-ecology")

    with page.expect_download() as dl:
        page.click("a:has-text('下载排名及研判报告')")
    path = tmp_path / "ranking.xlsx"
    dl.value.save_as(path)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert "排名" in cells and "区卫健委" in cells and "区教育局" in cells

    pick(page, "单位（含下级单位）", "某区机关工委")
    page.select_option("select[name=list]", label="整改清单")
    with page.expect_download() as dl:
        page.click("button:has-text('下载')")
    path = tmp_path / "lists.xlsx"
    dl.value.save_as(path)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    text = [c for row in rows for c in row if isinstance(c, str)]
    assert "三重一大记录不全" in text and not any(re.fullmatch(r"[a-z_]+", t) for t in text)
    dates = [c for row in rows for c in row if isinstance(c, datetime)]
    assert dates, "deadlines are dates, not text"


def test_plan_score_an_inspection_record_a_finding_and_feedback(node, page):
    root = node.api("units", "register_unit", {"name": "某区纪工委", "kind": "district_authority",
                                               "level": "district", "parent_id": None})["unit_id"]
    unit = node.api("units", "register_unit", {"name": "区住建局", "kind": "government_dept",
                                               "level": "unit", "parent_id": root})["unit_id"]
    node.wait_known([root, unit])
    sign_in(page, node, "insp")
    page.wait_for_selector("h1:has-text('工作台')")
    page.goto(node.url + "/inspections")
    pick(page, "被检查单位", "区住建局")
    page.fill("input[name=title]", "%s年第四季度清廉机关建设检查" % year())
    page.click("button:has-text('计划')")
    page.wait_for_selector("p.flash:has-text('已计划检查')")
    for name, score in (("规定动作全不全", "22"), ("自选动作实不实", "20"),
                        ("业务融合紧不紧", "18"), ("问题整改快不快", "20")):
        page.fill("input[aria-label='%s得分']" % name, score)
    page.click("button:has-text('保存评分')")
    # below the maximum without a note: refused, the reason in Chinese, nothing scored
    page.wait_for_selector("div.error")
    assert "扣分须写明扣分说明" in page.inner_text("div.error")
    for name, score in (("规定动作全不全", "22"), ("自选动作实不实", "20"),
                        ("业务融合紧不紧", "18"), ("问题整改快不快", "20")):
        page.fill("input[aria-label='%s得分']" % name, score)
        page.fill("input[aria-label='%s扣分说明']" % name, "台账资料不完整")
    page.click("button:has-text('保存评分')")
    page.wait_for_selector("p.flash:has-text('已记录评分')")
    assert page.input_value("input[aria-label='业务融合紧不紧得分']") in ("18", "18.0")
    page.fill("textarea[name=description]", "党组会议记录中“三重一大”事项未单列")
    page.select_option("select[name=severity]", label="一般")
    page.fill("input[name=deadline]", "%d-03-31" % (today().year + 1))
    page.click("button:has-text('记录问题')")
    page.wait_for_selector("p.flash:has-text('已记录问题')")
    page.fill("input[name=told_name]", "陈书记")
    page.fill("textarea[name=summary]", "现场通报检查发现的问题，要求限期整改。")
    page.click("button:has-text('记录反馈')")
    page.wait_for_selector("p.flash:has-text('已记录现场反馈')")
    main = page.inner_text("main")
    assert "陈书记（党组织书记）" in main and "三重一大" in main and "整改中" in main
    shoot(page, "12-inspection")
    page.click("button:has-text('完成检查')")
    page.wait_for_selector("p.flash:has-text('检查已完成')")
    assert page.inner_text("strong.percent") == "80.0%"  # 80 of 100, once completed
    page.goto(node.url + "/inspections")
    row = page.locator("tr", has_text="第四季度清廉机关建设检查")
    assert "已完成" in row.inner_text() and "80.0%" in row.inner_text()
    shoot(page, "13-inspections")
