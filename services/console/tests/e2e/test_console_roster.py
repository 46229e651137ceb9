"""纪检委员 roster page (issue 10 #25) against the real units, supervision and console services:
over HTTP (a training recorded for a 纪检委员 picked by name, a person appointed 兼职 or 专职;
refusals write nothing) and in Chromium (a unit-admin appoints a 纪检委员 and records a
training; the roster shows it with the year's hours, a unit without one is listed);
screenshot for the user guide."""
from __future__ import annotations

from services.console.tests.browser import HOME, no_codes, open_menu, sign_in
from services.console.tests.conftest import console_node, shoot


def _q(n, name, data):
    return n.query("units", name, data)


def _seed(n):
    n.register_units(a="区财政局", b="区审计局", c="区教育局")
    for row in (("p-sun", "孙委员", "a", "办公室主任"), ("p-li", "李科员", "a", "科员"),
                ("p-zhao", "赵干部", "a", "科员"), ("p-wu", "吴委员", "b", "副局长")):
        n.register_person(*row)
    n.api("units", "assign_role", {"person_id": "p-sun", "role": "discipline_member", "part_time": True})
    n.api("units", "assign_role", {"person_id": "p-wu", "role": "discipline_member"})
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("viewer", "李查看", ["viewer"])


node = console_node(_seed, CONSOLE_BACKOFF_SECONDS="0")


def _no_codes(text: str) -> None:
    no_codes(text, r"p-sun|p-li|p-zhao|p-wu|part_time|full_time|discipline_member|None")


def _training(person_id, **kw):
    return {"form": "training", "unit_id": "", "person_id": person_id, "course": "纪检监察业务培训班",
            "trained_on": "2026-11-20", "hours": "16", "organiser": "区纪委监委", **kw}


def test_the_roster_over_http_and_refusals_write_nothing(node, client_for):
    admin = client_for(node, "admin")
    r = admin.post("/roster/discipline?year=2026", _training("p-wu", hours="12"))
    assert r.status_code == 303, r.text
    text = admin.get("/roster/discipline?year=2026").text
    assert "吴委员" in text and "专职" in text and "孙委员" in text and "兼职" in text
    assert "纪检监察业务培训班" in text and "区教育局" in text  # a unit without one is listed
    _no_codes(text)
    ua = client_for(node, "ua-a")
    options = ua.get("/roster/discipline/options?members=1&unit_id=%s" % node.ids["a"]).text
    assert "孙委员" in options and "李科员" not in options
    options = ua.get("/roster/discipline/options?members=0&unit_id=%s" % node.ids["a"]).text
    assert "李科员" in options and "孙委员" not in options

    before = node.head("units")
    r = ua.post("/roster/discipline", _training("p-li"))
    assert r.status_code == 400 and "该人员不是纪检委员" in r.text
    r = ua.post("/roster/discipline", _training("p-sun", trained_on="2099-01-01"))
    assert r.status_code == 400 and "不能晚于今天" in r.text
    r = ua.post("/roster/discipline", _training("p-sun", hours="0"))
    assert r.status_code == 400 and "学时应大于 0 且不超过 200" in r.text
    r = ua.post("/roster/discipline", _training("p-sun", course=""))
    assert r.status_code == 400 and "培训课程" in r.text
    r = ua.post("/roster/discipline", _training(""))
    assert r.status_code == 400 and "请选择纪检委员" in r.text
    r = ua.post("/roster/discipline", {"form": "appoint", "unit_id": "", "person_id": ""})
    assert r.status_code == 400 and "请选择人员" in r.text
    assert ua.post("/roster/discipline", _training("p-wu")).status_code == 403  # another unit
    viewer = client_for(node, "viewer")
    assert viewer.post("/roster/discipline", _training("p-sun")).status_code == 403
    assert "登记培训" not in viewer.get("/roster/discipline").text
    assert node.head("units") == before
    _no_codes(r.text)


def test_a_unit_admin_appoints_a_discipline_member_and_records_a_training(node, page):
    sign_in(page, node, "ua-a", until=HOME)
    open_menu(page, "纪检委员")
    # appoint 赵干部 as a full-time 纪检委员
    page.select_option("select[aria-label=任命单位]", label="区财政局")
    page.wait_for_selector("#appointee option:has-text('赵干部（科员）')", state="attached")
    page.select_option("#appointee", label="赵干部（科员）")
    page.uncheck("input[name=part_time]")
    page.click("button:has-text('任命')")
    page.wait_for_selector("p.flash:has-text('已任命纪检委员')")
    # and record the training 孙委员 attended
    page.select_option("select[aria-label=培训单位]", label="区财政局")
    page.wait_for_selector("#trainee option:has-text('孙委员（办公室主任）')", state="attached")
    page.select_option("#trainee", label="孙委员（办公室主任）")
    page.fill("input[name=course]", "监督执纪实务专题培训")
    page.fill("input[name=trained_on]", "2026-11-25")
    page.fill("input[name=hours]", "6.5")
    page.fill("input[name=organiser]", "区直机关工委")
    page.click("button:has-text('登记培训')")
    page.wait_for_selector("p.flash:has-text('已登记培训记录')")

    want = _q(node, "discipline_roster", {"unit_id": node.ids["root"], "year": 2026})
    unit = next(u for u in want["units"] if u["unit_id"] == node.ids["a"])
    sun = next(m for m in unit["members"] if m["name"] == "孙委员")
    assert (sun["duty"], sun["trainings_in_year"], sun["hours_in_year"]) == ("part_time", 1, 6.5)
    assert [m["duty"] for m in unit["members"] if m["name"] == "赵干部"] == ["full_time"]
    row = page.locator("[data-testid=roster] tr", has_text="孙委员")
    assert row.inner_text().split("\t")[:6] == ["区财政局", "孙委员", "办公室主任", "兼职", "1", "6.5"]
    zhao = page.locator("[data-testid=roster] tr", has_text="赵干部")
    assert "专职" in zhao.inner_text() and "尚无培训记录" in zhao.inner_text()
    assert "区审计局" not in page.inner_text("[data-testid=roster]")  # a unit-admin sees their units
    page.click("summary:has-text('培训记录')")
    assert "监督执纪实务专题培训" in page.inner_text("[data-testid=trainings]")
    _no_codes(page.inner_text("main"))
    shoot(page, "90-discipline-members")


def test_the_node_admin_sees_the_units_without_one(node, page):
    sign_in(page, node, "admin", until=HOME)
    page.goto(node.url + "/roster/discipline?year=2026")
    without = page.inner_text("[data-testid=without]")
    want = _q(node, "discipline_roster", {"unit_id": node.ids["root"], "year": 2026})["without"]
    assert [u["name"] for u in want] == ["某区直机关工委", "区教育局"]
    assert all(u["name"] in without for u in want)
    assert "区审计局" in page.inner_text("[data-testid=roster]")
    _no_codes(page.inner_text("main"))
