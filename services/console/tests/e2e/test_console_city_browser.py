"""上下互比 in Chromium, a city and a district running at once: the district's supervision
publishes its figures, and the city's console shows them - districts side by side (bar
and radar charts, the table beside), the period picker, the drill-down to the district's
units, the Excel file - every number the one the district published, none typed. The
menu entry is the city's only. A page the console keeps shows the district's new figures
on the next view. Screenshots for the user guide."""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

from services.console.city_pages import indicator_name, period_name, shown
from services.console.tests.conftest import shoot
from tests.harness import wait_for
from tests.harness.pair import clocks_at, uniq

DESK = {"viewport": {"width": 1366, "height": 900}, "locale": "zh-CN", "timezone_id": "Asia/Shanghai",
        "accept_downloads": True}


def _published(city, district) -> dict:
    answer = city.exchange_query("city_comparison", {"node": district.node_id})
    mine = [d for d in answer["districts"] if d["node"] == district.node_id]
    return answer if mine and mine[0]["values"] and answer["units"] else None


def test_city_compares_what_the_district_published(two_nodes, desk):
    city, district = two_nodes.city, two_nodes.district
    district.api("supervision", "publish_indicators", {})
    answer = wait_for(lambda: _published(city, district), 60, what="the district's figures at the city")
    figures = next(d for d in answer["districts"] if d["node"] == district.node_id)

    page = desk(city, **DESK)
    page.click("nav.menu a:has-text('上下互比')")
    page.wait_for_selector("h1:has-text('上下互比')")
    page.wait_for_selector("#bar svg")
    page.wait_for_selector("#radar svg")
    main = page.inner_text("main")
    assert "甲区" in main and "district-a" not in main and "None" not in main
    row = page.inner_text("table.compare tr:has-text('甲区')")
    assert "暂定" in row  # supervision's running month: provisional (issue 10 #13), named so
    for name in ("units", "findings_total", "closure_rate"):
        if name in figures["values"]:
            assert indicator_name(name) in page.inner_text("table.compare tr:first-child")
            assert shown(name, figures["values"][name]) in row
    # the period picker offers what was published, in words
    options = page.locator("select[name=period] option").all_inner_texts()
    assert options and all("年" in o for o in options)
    shoot(page, "50-city-compare")

    # the bar follows the indicator picker
    page.select_option("select[name=indicator]", "findings_total")
    page.wait_for_selector("#bar svg")
    assert indicator_name("findings_total") in page.inner_text("main h2")

    # drill down: the district's units, each with the figures it published
    page.click("table.compare a:has-text('甲区')")
    page.wait_for_selector("h1:has-text('上下互比 · 甲区')")
    units = page.inner_text("main")
    for u in answer["units"]:
        assert u["unit_name"] in units
    assert "甲区财政局" in units
    shoot(page, "51-city-compare-district")

    # the same tables as an Excel file
    with page.expect_download() as dl:
        page.click("a:has-text('导出 Excel')")
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(open(dl.value.path(), "rb").read()))
    assert [ws.title for ws in book.worksheets][:2] == ["各区对比", "甲区各单位"]
    cells = [str(c.value) for ws in book.worksheets for r in ws.iter_rows() for c in r if c.value]
    assert "甲区" in cells and "甲区财政局" in cells
    assert indicator_name("findings_total") in cells


def test_the_menu_entry_is_the_citys_only(two_nodes, desk):
    page = desk(two_nodes.district, **DESK)
    assert "上下互比" not in page.inner_text("nav.menu")
    assert "上下互比" in desk(two_nodes.city, **DESK).inner_text("nav.menu")


def _figure(answer, unit_id, name):
    return next(u for u in answer["units"] if u["unit_id"] == unit_id)["values"].get(name)


def _cell(page, unit_name, name) -> str:
    """The drill-down's cell of a unit and an indicator, as shown."""
    units = page.locator("table.compare").nth(1)
    heads = units.locator("tr").first.locator("th").all_inner_texts()
    column = next(i for i, h in enumerate(heads) if h.startswith(indicator_name(name)))
    return units.locator("tr", has_text=unit_name).locator("td").nth(column).inner_text()


def test_a_kept_page_shows_the_districts_new_figures_on_the_next_view(two_nodes, desk):
    """The console keeps a page's content by the version of the exchange's answer: the
    next view after the district publishes again shows its new figures (never a kept
    page with the old ones), and until then a view shows the same page."""
    city, district = two_nodes.city, two_nodes.district
    unit = district.units["甲区财政局"]
    district.api("supervision", "publish_indicators", {})
    first = wait_for(lambda: _published(city, district), 60, what="the district's figures at the city")
    page = desk(city, **DESK)
    page.goto("%s/city/compare?period=%s&indicator=findings_total&node=%s"
              % (city.url, first["period"], district.node_id))
    page.wait_for_selector("h1:has-text('上下互比 · 甲区')")
    page.reload()  # kept: the same
    before = _cell(page, "甲区财政局", "findings_total")
    assert before.startswith(shown("findings_total", _figure(first, unit, "findings_total")))

    district.api("supervision", "record_finding", {
        "unit_id": unit, "source": "audit", "description": uniq("会议记录不全"),
        "responsible_role": "unit_head", "requirement": "补齐会议记录",
        "deadline": (date.today() + timedelta(days=30)).isoformat()})
    district.api("supervision", "publish_indicators", {})
    now = wait_for(lambda: (lambda a: a if _figure(a, unit, "findings_total") !=
                            _figure(first, unit, "findings_total") else None)(
        city.exchange_query("city_comparison", {"period": first["period"], "node": district.node_id})),
        60, what="the district's new figures at the city")
    page.reload()
    after = _cell(page, "甲区财政局", "findings_total")
    assert after.startswith(shown("findings_total", _figure(now, unit, "findings_total")))
    assert after != before


def test_the_period_picker_shows_an_earlier_months_figures(two_nodes, desk):
    """The period picker: the district's supervision also publishes the month of 40 days
    ago (its clock set back for that sweep); the city's picker offers both months in words,
    and choosing the earlier one shows its table - the district's figures of that month, as
    published - with the bar titled by it and the Excel link for it."""
    city, district = two_nodes.city, two_nodes.district
    district.api("supervision", "publish_indicators", {})
    current = wait_for(lambda: _published(city, district), 60, what="the district's figures at the city")["period"]
    with clocks_at(datetime.now(timezone.utc) - timedelta(days=40), [district.runtime("supervision")]):
        district.api("supervision", "publish_indicators", {})

    def earlier_published():
        answer = city.exchange_query("city_comparison", {})
        older = [p for p in answer["periods"] if p < current]
        return older[0] if older else None
    earlier = wait_for(earlier_published, 60, what="the district's earlier month at the city")
    figures = next(d for d in city.exchange_query("city_comparison", {"period": earlier})["districts"]
                   if d["node"] == district.node_id)

    page = desk(city, **DESK)
    page.goto(city.url + "/city/compare")
    page.wait_for_selector("#bar svg")
    assert page.input_value("select[name=period]") == current  # the newest month by default
    options = set(page.locator("select[name=period] option").all_inner_texts())
    assert {period_name(current), period_name(earlier)} <= options
    page.select_option("select[name=period]", earlier)  # submits the form on change
    page.wait_for_selector("h2:has-text('各区对比（%s）')" % period_name(earlier))
    page.wait_for_selector("#bar svg")
    assert page.input_value("select[name=period]") == earlier
    assert "（%s）" % period_name(earlier) in page.inner_text("main .charts h2")
    assert "各区对比（%s）" % period_name(earlier) in page.inner_text("main")
    row = page.inner_text("table.compare tr:has-text('甲区')")
    for name, value in figures["values"].items():
        if value is not None and indicator_name(name) != "其他指标":
            assert shown(name, value) in row, name
    assert "period=%s" % earlier in page.get_attribute("a:has-text('导出 Excel')", "href")
