"""Flows a person clicks through, in Chromium, against the real services (one browser for
the session; each main page's screenshot goes to var/screenshots/ for the user guide)."""
from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests
import segno

from services.console.tests.conftest import PASSWORD, shoot, start_node, stop_node

TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
YEAR = str(TODAY.year)


@pytest.fixture(scope="module")
def node(tmp_path_factory, rabbit_admin):
    n = start_node(tmp_path_factory, rabbit_admin, CONSOLE_BACKOFF_SECONDS="0")
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("insp", "钱检查", ["inspector"])
    yield n
    stop_node(n)


def sign_in(page, node, user_id, password=PASSWORD):
    page.goto(node.url + "/login")
    page.fill("input[name=user_id]", user_id)
    page.fill("input[name=password]", password)
    page.click("button:has-text('登录')")


def pick(page, legend: str, name: str):
    """The tree picker: search by name, then click the unit."""
    picker = page.locator("fieldset.picker", has=page.locator("legend", has_text=legend))
    picker.locator("input.picker-search").fill(name)
    picker.locator("label.picker-item:visible", has_text=name).first.click()


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
    page.goto(node.url + "/letters?period=%s" % YEAR)
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


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("not reached in %.0fs" % timeout)


def test_rectification_board_home_todos_and_users_page(node, page):
    sign_in(page, node, "admin")
    page.wait_for_selector("h1:has-text('工作台')")
    units = node.api("units", "root_units", kind="query")["units"]
    root = units[0]["unit_id"] if units else node.api("units", "register_unit", {
        "name": "某区直机关工委", "kind": "district_authority", "level": "district",
        "parent_id": None})["unit_id"]
    unit = node.api("units", "register_unit", {"name": "区审计局", "kind": "government_dept",
                                               "level": "unit", "parent_id": root})["unit_id"]

    def finding(description, deadline):
        def attempt():
            r = requests.post("http://%s/api/record_finding" % node.addresses["supervision"],
                              json={"unit_id": unit, "source": "audit", "description": description,
                                    "deadline": deadline, "requirement": "限期整改到位",
                                    "responsible_role": "unit_head"},
                              headers={"Authorization": "Bearer %s" % node.admin_token}, timeout=10)
            return r.status_code == 201 or (r.status_code == 404 and None)
        _wait(attempt)  # the supervision service learns of the unit from the units' events
    soon = TODAY.isoformat()
    later = "%d-12-31" % (TODAY.year + 1)
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
    assert "%d年%d月%d日" % (TODAY.year, TODAY.month, TODAY.day) in page.inner_text("h1")
    shoot(page, "00-home")
    page.locator("a", has_text="专项资金拨付审批手续不全").first.click()
    assert "审计监督" in page.inner_text("main") and "audit" not in page.inner_text("main")
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
