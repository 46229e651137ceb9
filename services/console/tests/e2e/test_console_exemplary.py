"""模范科室评选 pages (issue 10 #24) against the real units, supervision and console services:
over HTTP (refusals - scoring oneself, a score out of range, an ineligible nominee, closing
before every nominee is scored, a viewer - write nothing) and in Chromium (a unit-admin opens
the round, nominates a section, a secondary unit and a window picked by name, they score each
other, the round is closed and the exemplar shown; a closed round offers no form);
screenshot for the user guide."""
from __future__ import annotations

from services.console.tests.browser import HOME, no_codes, open_menu, sign_in
from services.console.tests.conftest import console_node, shoot

S = {"politics": "24", "discipline": "23", "responsibility": "22", "efficiency": "21"}


def _seed(n):
    n.register_units(fin="区财政局", aud="区审计局",
                     office=("办公室", "section", "section", "fin"), budget=("预算科", "section", "section", "fin"),
                     centre=("财政服务中心", "secondary_unit", "unit", "fin"),
                     window=("政务服务窗口", "window_unit", "unit", "fin"), audx=("审计科", "section", "section", "aud"))
    n.add_user("ua-fin", "赵财政", ["unit-admin"], n.ids["fin"])
    n.add_user("viewer", "李查看", ["viewer"])


node = console_node(_seed, CONSOLE_BACKOFF_SECONDS="0")


def _no_codes(text: str) -> None:
    no_codes(text, r"politics|discipline|responsibility|efficiency|open|closed|section|"
                   r"secondary_unit|window_unit|None")


def test_a_round_over_http_and_refusals_write_nothing(node, client_for):
    admin = client_for(node, "admin")
    r = admin.post("/exemplary", {"unit_id": node.ids["aud"], "year": "2025", "title": "2025年度模范科室评选",
                                  "exemplars": "1"})
    assert r.status_code == 303, r.text
    url = r.headers["Location"].replace(node.url, "")
    assert admin.post(url, {"action": "nominate", "nominee_unit_id": node.ids["audx"]}).status_code == 303
    page = admin.get(url).text
    assert "审计科" in page and "评选中" in page and "尚未评分" in page
    _no_codes(page)

    before = node.head("units")
    r = admin.post("/exemplary", {"unit_id": node.ids["aud"], "year": "2025", "title": "再开", "exemplars": "1"})
    assert r.status_code == 400 and "本年度已有评选" in r.text
    r = admin.post(url, {"action": "nominate", "nominee_unit_id": node.ids["office"]})  # another unit's section
    assert r.status_code == 400 and "须是本单位的下级单位" in r.text
    r = admin.post(url, {"action": "nominate", "nominee_unit_id": ""})
    assert r.status_code == 400 and "请选择参评单位" in r.text
    r = admin.post(url, {"action": "score", "scorer_unit_id": node.ids["audx"], "nominee_unit_id": node.ids["audx"], **S})
    assert r.status_code == 400 and "不能给本单位打分" in r.text
    r = admin.post(url, {"action": "close"})
    assert r.status_code == 400 and "未被评分" in r.text
    r = admin.post("/exemplary", {"unit_id": node.ids["fin"], "year": "2025", "title": "x", "exemplars": "0"})
    assert r.status_code == 400 and "评选名额应在 1 至 50 之间" in r.text
    viewer = client_for(node, "viewer")
    assert viewer.post(url, {"action": "close"}).status_code == 403
    assert "开启评选" not in viewer.get("/exemplary").text and "结束评选" not in viewer.get(url).text
    ua = client_for(node, "ua-fin")
    assert ua.post(url, {"action": "close"}).status_code == 403  # another unit's round
    assert node.head("units") == before


def test_a_unit_admin_runs_a_round_to_its_result(node, page):
    sign_in(page, node, "ua-fin", until=HOME)
    open_menu(page, "模范科室评选")
    page.select_option("select[aria-label=组织单位]", label="区财政局")
    page.fill("input[name=year]", "2026")
    page.fill("input[name=title]", "2026年度“讲政治、守纪律、负责任、有效率”模范科室评选")
    page.fill("input[name=exemplars]", "1")
    page.click("button:has-text('开启评选')")
    page.wait_for_selector("p.flash:has-text('已开启模范科室评选')")
    for name in ("预算科（科室）", "财政服务中心（二级单位）", "政务服务窗口（窗口单位）"):
        page.select_option("select[aria-label=参评单位]", label=name)
        page.click("button:has-text('推荐')")
        page.wait_for_selector("p.flash:has-text('已推荐参评单位')")
    assert "办公室（科室）" in page.inner_text("select[aria-label=参评单位]")  # not nominated yet
    names = ("预算科", "财政服务中心", "政务服务窗口")
    politics = {("预算科", "财政服务中心"): "20", ("预算科", "政务服务窗口"): "22", ("财政服务中心", "预算科"): "25",
                ("财政服务中心", "政务服务窗口"): "21", ("政务服务窗口", "预算科"): "24", ("政务服务窗口", "财政服务中心"): "19"}
    for a in names:
        for b in names:
            if a == b:
                continue
            page.select_option("select[aria-label=评分单位]", label=a)
            page.select_option("select[aria-label=被评单位]", label=b)
            for c, v in {**S, "politics": politics[(a, b)]}.items():
                page.fill("input[name=%s]" % c, v)
            page.click("button:has-text('登记评分')")
            page.wait_for_selector("p.flash:has-text('已登记互比互查评分')")
    assert page.locator("[data-testid=pending]").count() == 0
    page.click("button:has-text('结束评选')")
    page.wait_for_selector("p.flash:has-text('评选已结束，结果已确定')")
    assert page.inner_text("[data-testid=status]") == "已结束"
    assert "预算科 获评模范科室" in page.inner_text("[data-testid=selected]")
    rows = page.locator("[data-testid=ranking] tr").all_inner_texts()[1:]
    assert [r.split("\t")[:2] for r in rows] == [["1", "预算科"], ["2", "政务服务窗口"], ["3", "财政服务中心"]]
    assert rows[0].split("\t")[6] == "90.5"  # (25+24)/2 + 23 + 22 + 21
    assert page.locator("button:has-text('登记评分')").count() == 0  # a closed round is final
    assert page.locator("button:has-text('推荐')").count() == 0
    _no_codes(page.inner_text("main"))
    shoot(page, "91-exemplary-round")
    page.click("a:has-text('返回评选列表')")
    assert "已结束" in page.inner_text("[data-testid=rounds]")
    assert "区审计局" not in page.inner_text("[data-testid=rounds]")  # a unit-admin sees their units
