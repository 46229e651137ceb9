"""督办 in Chromium, a city and a district running at once, each in its own console
(issue 9 the city's views, issue 10 item 5): a rectification the district's ladder took
to the city rung shows at the city with what, which unit, how late and its trail; the
city's node-admin records a follow-up in the city's console and the district's console
shows it; the district's escalation inbox lists every rung below the city. A viewer gets
no form; a refused follow-up writes nothing. Screenshots for the user guide. An overdue
跟踪问效 task referred to the city shows the same way (over HTTP)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.console.tests.browser import open_menu, pick, reload_until
from services.console.tests.conftest import shoot
from tests.harness import wait_for
from tests.harness.pair import clocks_at, uniq

TZ = ZoneInfo("Asia/Shanghai")


def _moved(city, district):
    """The runtimes whose clocks a case's ladder and its way to the city read."""
    return [district.runtime("supervision"), city.runtime("exchange"), district.runtime("exchange")]


@pytest.fixture
def escalated(two_nodes):
    """A rectification of the district 40 days past its deadline, the ladder run: its
    case is at the city. The clocks of the district's supervision and of both exchanges
    are moved for the test and put back after it."""
    city, district = two_nodes.city, two_nodes.district
    description = uniq("公务用车管理不规范")
    deadline = (datetime.now(TZ).date() + timedelta(days=1)).isoformat()
    rect = district.api("supervision", "record_finding", {
        "unit_id": district.units["甲区财政局"], "source": "audit", "description": description,
        "responsible_role": "unit_head", "deadline": deadline, "requirement": "建立用车台账并公示"})
    with clocks_at(datetime.now(timezone.utc) + timedelta(days=40), _moved(city, district)):
        district.api("supervision", "detect_overdue", {})
        wait_for(lambda: any(c["rect_id"] == rect["rect_id"] for c in
                             city.exchange_query("oversight_cases")["items"]), 40,
                 what="the case at the city")
        yield {"description": description, "rect_id": rect["rect_id"]}


def test_the_city_follows_up_an_escalated_case_and_the_district_sees_it(two_nodes, desk, escalated,
                                                                       client_for):
    city, district = two_nodes.city, two_nodes.district
    desc = escalated["description"]
    pages = {"city": desk(city), "district": desk(district)}
    c = pages["city"]
    open_menu(c, "督办")
    case = c.locator("section[data-testid=case]", has_text=desc)
    assert case.count() == 1
    text = case.inner_text()
    assert "甲区" in text and "甲区财政局" in text and "建立用车台账并公示" in text
    assert "39 天" in case.locator("[data-testid=days-late]").inner_text()
    assert "待督办" in text and "市级尚未督办" in text
    trail = case.locator("[data-testid=trail]").inner_text()
    for step in ("逾期", "整改责任单位", "区直机关工委", "市级主管部门"):
        assert step in trail, trail
    # a refused follow-up (an empty note, posted as a program would) is answered in
    # Chinese on the page and writes nothing
    cid = next(x["case_id"] for x in city.exchange_query("oversight_cases")["items"]
               if x["rect_id"] == escalated["rect_id"])
    head = city.head("exchange")
    admin = client_for(city, "admin")
    refused = admin.post("/oversight", {"case_id": cid, "unit_id": city.top_unit,
                                        "action": "letter", "note": " "})
    assert refused.status_code == 400
    assert "督办内容" in refused.text and "登记督办" in refused.text
    assert city.head("exchange") == head
    form = case.locator("form[data-testid=follow-up-form]")
    form.locator("select[name=action]").select_option(label="发函督办")
    form.locator("textarea[name=note]").fill("请于十日内书面报告整改进展")
    pick(c, "督办单位", "市直机关工委")
    form.locator("button:has-text('登记督办')").click()
    c.wait_for_selector("text=已登记督办")
    case = c.locator("section[data-testid=case]", has_text=desc)
    assert "请于十日内书面报告整改进展" in case.locator("[data-testid=follow-ups]").inner_text()
    assert "待督办" not in case.inner_text()
    shoot(c, "70-oversight-city")
    # the district sees the city's follow-up in its own console, and its inbox
    d = pages["district"]
    open_menu(d, "督办")
    reload_until(d, "请于十日内书面报告整改进展")
    case = d.locator("section[data-testid=case]", has_text=desc)
    assert "发函督办" in case.inner_text() and "市直机关工委" in case.inner_text()
    assert case.locator("form[data-testid=follow-up-form]").count() == 0  # the city's to do
    inbox = d.locator("[data-testid=inbox]").inner_text()
    assert desc in inbox and "单位负责人" in inbox and "区直机关工委" in inbox
    shoot(d, "71-oversight-district")
    # a viewer at the city reads the cases but gets no form
    city.add_user("viewer-oversight", "赵查看", ["viewer"])
    v = client_for(city, "viewer-oversight")
    page = v.get("/oversight").text
    assert desc in page and 'data-testid="follow-up-form"' not in page and "登记督办" not in page


def test_an_overdue_task_referred_to_the_city_shows_with_its_trail_on_both_nodes(two_nodes, client_for):
    """跟踪问效 (issue 10 #5/#18), over HTTP: a task the district's ladder took to the city
    rung is on the city's 督办 page as a task (任务, 标准, 时限, 任务来源, how late, the trail),
    with the follow-up form, and on the district's page as its own."""
    city, district = two_nodes.city, two_nodes.district
    title = uniq("落实政务公开清单")
    deadline = (datetime.now(TZ).date() + timedelta(days=1)).isoformat()
    (tid,) = district.api("supervision", "issue_task_list", {
        "title": "重点任务", "issuer_unit_id": district.top_unit,
        "items": [{"unit_id": district.units["甲区财政局"], "title": title,
                   "standard": "清单上墙并上网", "deadline": deadline}]})["task_ids"]
    with clocks_at(datetime.now(timezone.utc) + timedelta(days=40), _moved(city, district)):
        district.api("supervision", "detect_task_overdue", {})
        wait_for(lambda: any(c["rect_id"] == "task-" + tid for c in
                             city.exchange_query("oversight_cases")["items"]), 40,
                 what="the task's case at the city")
        page = client_for(city, "admin").get("/oversight").text
        section = next(s for s in page.split('data-testid="case"')[1:] if title in s)
        for words in ("跟踪问效任务", "清单上墙并上网", "任务清单", "39 天", "待督办", "区直机关工委",
                      "市级主管部门", 'data-testid="follow-up-form"'):
            assert words in section, words
        at_district = client_for(district, "admin").get("/oversight").text
        assert title in at_district and "跟踪问效任务" in at_district


def test_an_overdue_integrity_talk_referred_to_the_city_shows_without_the_person(two_nodes, client_for):
    """督办 of a 廉政谈话 (over HTTP): a talk after a promotion 31 days past due is taken by
    the district's education ladder to the city rung; the city's 督办 page lists it as
    新提拔干部廉政谈话 - the unit, the due date, how late, the trail, the follow-up form -
    and never the person; the district's page lists it as its own. Held at last, the
    city's case shows 已销号."""
    import hashlib
    city, district = two_nodes.city, two_nodes.district
    name, post = uniq("钱提拔"), uniq("审批科科长")
    pid = district.api("units", "register_person", {
        "name": name, "unit_id": district.units["甲区财政局"], "post": "科员"})["person_id"]
    district.wait_known([district.units["甲区财政局"]])
    promoted = datetime.now(TZ).date().isoformat()
    district.api("units", "promote_person", {"person_id": pid, "new_post": post,
                                             "unit_id": district.units["甲区财政局"],
                                             "effective_on": promoted})
    talk_id = "%s/%s" % (pid, promoted)
    wait_for(lambda: any(t["talk_id"] == talk_id for t in district.query(
        "education", "list_talks", {"unit_id": district.top_unit})["talks"]), 40,
        what="the talk scheduled by the district's education")
    ref = "talk-" + hashlib.sha256(talk_id.encode("utf-8")).hexdigest()[:16]  # the case's, no person
    later = datetime.now(timezone.utc) + timedelta(days=61)  # due in 30 days: 31 late
    moved = [district.runtime("education"), city.runtime("exchange"), district.runtime("exchange")]
    with clocks_at(later, moved):
        district.api("education", "detect_overdue", {})
        wait_for(lambda: any(c["rect_id"] == ref for c in city.exchange_query("oversight_cases")["items"]),
                 40, what="the talk's case at the city")
        page = client_for(city, "admin").get("/oversight").text
        section = next(s for s in page.split('data-testid="case"')[1:] if "新提拔干部廉政谈话" in s
                       and "甲区财政局" in s and "31 天" in s)
        for words in ("新提拔干部任前廉政谈话逾期未开展", "按期开展任前廉政谈话", "待督办", "市级主管部门",
                      'data-testid="follow-up-form"'):
            assert words in section, words
        for secret in (name, post, pid):
            assert secret not in page, secret
        at_district = client_for(district, "admin").get("/oversight").text
        assert "新提拔干部廉政谈话" in at_district and name not in at_district
        assert "逾期整改、跟踪问效任务和新提拔干部廉政谈话" in at_district  # the page says what it lists
        # held at last (the day it is recorded): the city's case is closed
        district.api("education", "record_talk_held", {
            "talk_id": talk_id, "held_on": later.astimezone(TZ).date().isoformat(),
            "conducted_by": "局党组书记"})
        wait_for(lambda: any(c["rect_id"] == ref for c in city.exchange_query(
            "oversight_cases", {"status": "closed"})["items"]), 40, what="the talk closed at the city")
    closed = client_for(city, "admin").get("/oversight?status=closed").text
    section = next(s for s in closed.split('data-testid="case"')[1:] if "新提拔干部廉政谈话" in s
                   and "甲区财政局" in s)
    assert "已销号" in section and 'data-testid="follow-up-form"' not in section
