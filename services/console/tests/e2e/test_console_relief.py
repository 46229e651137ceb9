"""基层减负 in the console across two nodes (a city and a district on this machine, every
service running): the district's supervision publishes its figures, they reach the city
derived - each naming the event it came from - and the city's 基层减负 page counts them
per district as sent without manual entry; a bad month writes nothing."""
from __future__ import annotations

import requests

from services.console.tests.conftest import shoot
from tests.harness import wait_for
from services.console.tests.browser import HOME, open_menu, sign_in


def _row(node, node_id):
    answer = node.exchange_query("relief_measure", {})
    return answer, next((n for n in answer["nodes"] if n["node_id"] == node_id), None)


def _all_arrived(city, district):
    """Every report the district recorded this month is counted at the city."""
    _, sent = _row(district, district.node_id)
    answer, row = _row(city, district.node_id)
    if sent and row and sent["reports"] and row["reports"] == sent["reports"] \
            and row["figures"] == sent["figures"]:
        return answer, row, sent
    return None


def test_the_city_sees_each_districts_figures_were_derived(two_nodes, page):
    city, district = two_nodes.city, two_nodes.district
    district.api("supervision", "publish_indicators", {})
    answer, row, sent = wait_for(lambda: _all_arrived(city, district), 60,
                                 what="the district's figures counted at the city")
    assert sent["reports_traced"] == sent["reports"]  # every report names its source event
    assert row["reports_traced"] == row["reports"] and row["derived"] > 0
    assert all(o["event_type"].endswith(".Published") for o in answer["origins"][district.node_id])

    sign_in(page, city, "viewer", until=HOME)
    open_menu(page, "基层减负")
    assert "district-a" not in page.inner_text("main")
    # The two nodes are the whole session's: other tests may publish between the query and
    # the page, so the page is compared with the query answered just before and just after
    # it, and read again until both answers agree (the counts only grow).
    for _ in range(10):
        answer, row = _row(city, district.node_id)
        tr = page.locator("table.relief tr", has_text="甲区").inner_text()
        after = _row(city, district.node_id)[1]
        if (after["figures"], after["derived"], after["manual"]) == (
                row["figures"], row["derived"], row["manual"]):
            break
        page.goto(city.url + "/relief")
        page.wait_for_selector("h1:has-text('基层减负')")
    assert "\t%d\t%d\t%d\t" % (row["figures"], row["derived"], row["manual"]) in tr
    assert ("是" if row["manual"] == 0 else "否") in tr
    assert "监督服务发布的" in tr
    summary = page.inner_text("p.summary")
    assert "%d 个区中有 %d 个区" % (answer["districts"], answer["districts_without_manual_entry"]) in summary
    shoot(page, "37-relief")


def test_a_wrong_month_is_refused_in_chinese_and_writes_nothing(two_nodes, client_for):
    city = two_nodes.city
    before = city.head("exchange")
    c = client_for(city, "viewer")
    r = c.get("/relief?month=2026-13")  # not offered: the page shows this month instead
    assert r.status_code == 200 and "基层减负" in r.text
    bad = requests.get("http://%s/api/relief_measure" % city.addresses["exchange"],
                       params={"month": "2026-13"},
                       headers={"Authorization": "Bearer %s" % city.admin_token}, timeout=10)
    assert bad.status_code == 400 and "month" in bad.json()["fields"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(bad.json()["fields"]["month"]))
    assert city.head("exchange") == before
