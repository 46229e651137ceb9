"""节点状态 on a city and a district running at once (the two-node fixture): each node's
page names the other as a trusted peer with its key's fingerprint, the broker's federation
links to it running, and what arrived from it (applied through, lag, last heard); a
record held behind a hole is the lag of its origin, shown in seconds and red."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from services.console.tests.conftest import shoot
from services.exchange.tests.e2e.test_rejections import FakeOrigin, case_payload, deliver
from tests.harness import wait_for
from tests.harness.pair import uniq
from services.console.tests.browser import open_menu, reload_until
from shared.federation.keys import node_registry
from shared.federation.registry import key_fingerprint


def _status(client) -> str:
    page = client.get("/admin/status")
    assert page.status_code == 200
    return page.text


def test_each_node_names_its_peer_with_the_keys_fingerprint_and_running_links(two_nodes, client_for):
    city, district = two_nodes.city, two_nodes.district
    at_city, at_district = client_for(city, "admin"), client_for(district, "admin")
    district_key = node_registry(district.base).this_node().public_key
    city_key = node_registry(city.base).this_node().public_key
    text = _status(at_city)
    peers = re.search(r'data-testid="peers">(.*?)</table>', text, re.S).group(1)
    assert key_fingerprint(district_key) in peers and "甲区" in peers
    assert key_fingerprint(city_key) in peers and "（本节点）" in peers
    assert key_fingerprint(city_key) in _status(at_district)
    # the broker's links between the two vhosts, each running
    wait_for(lambda: "运行中" in _status(at_district), 30, what="district's links running")
    links = re.search(r'data-testid="links">(.*?)</table>', _status(at_district), re.S).group(1)
    assert "出错" not in links
    # a record shared by the district arrives at the city: counted under its origin
    before = _applied(_status(at_city))
    district.exchange_execute("draft_experience", {
        "unit_id": district.top_unit, "title": uniq("节点状态经验"), "summary": "摘要",
        "body": "正文", "business_type": "机关党建", "share": {"sharing": "city"}})
    wait_for(lambda: _applied(_status(at_city)) > before, 30, what="the city applied the district's record")
    row = re.search(r'data-testid="origins">.*?<tr[^>]*><td>甲区（district-a）</td>(.*?)</tr>',
                    _status(at_city), re.S).group(1)
    assert 'data-testid="lag">无<' in row
    # the last feed sync: a time (in Shanghai, in words) once the first sync has run
    wait_for(lambda: _last_sync(_status(at_city)) != "本次启动后尚未同步", 30, what="the city's first feed sync")
    assert re.match(r"\d{4}年\d{1,2}月\d{1,2}日 周. \d{2}:\d{2}$", _last_sync(_status(at_city)))


def test_the_citys_node_status_in_the_browser(two_nodes, desk):
    page = desk(two_nodes.city)
    open_menu(page, "节点状态")
    assert "甲区（district-a）" in page.inner_text("[data-testid=peers]")
    reload_until(page, lambda p: "运行中" in p.inner_text("[data-testid=links]"), 30,
                 what="the city's links running")
    assert "甲区（district-a）" in page.inner_text("[data-testid=links]")
    assert "Traceback" not in page.inner_text("main")
    shoot(page, "66-node-status")


def _applied(text: str) -> int:
    origins = re.search(r'data-testid="origins">(.*?)</table>', text, re.S).group(1)
    m = re.search(r"<td>甲区（district-a）</td><td>(\d+)</td>", origins)
    return int(m.group(1)) if m else 0


def _last_sync(text: str) -> str:
    return re.search(r'data-testid="last-sync">(.*?)（每', text, re.S).group(1)


def test_a_record_held_behind_a_hole_shows_as_lag_for_its_origin(two_nodes, desk):
    """A peer's #2 reaches the city before its #1 (put on the city's broker as a link
    delivers, signed by an origin the city trusts for this test): held, not applied, its
    age is the origin's lag, in red; once #1 arrives both apply and the lag is 无."""
    city = two_nodes.city
    fed = city.exchange.runtime.ext.federation
    x = FakeOrigin(city, "district-lag")
    try:
        page = desk(city)
        open_menu(page, "节点状态")
        ninety_ago = (datetime.now(timezone.utc) - timedelta(seconds=90)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        two = x.case(2, payload=dict(case_payload("district-lag/case-2"), title="滞后的案例"),
                     occurred_at=ninety_ago)
        deliver(city, two)
        row = page.locator("[data-testid=origins] tr", has_text="district-lag")
        reload_until(page, lambda p: row.count() and row.locator("[data-testid=lag]")
                     .inner_text() != "无", 30, what="district-lag's #2 held at the city")
        lag = row.locator("[data-testid=lag]").inner_text()
        assert re.fullmatch(r"\d+ 秒", lag) and 90 <= int(lag.split()[0]) < 600, lag
        cells = row.locator("td").all_inner_texts()
        assert cells[1:5] == ["0", "0", "0", "1"]  # nothing applied, through #0, 1 held
        assert "red" in row.get_attribute("class")
        state = {o["origin"]: o for o in fed.status()["inbox"]}["district-lag"]
        assert state["held"] == 1 and state["applied_through"] == 0 and state["lag_seconds"] >= 90
        assert not city.has_record("district-lag/case-2")

        deliver(city, x.case(1, payload=dict(case_payload("district-lag/case-1"), title="补齐的案例"),
                             occurred_at=ninety_ago))
        reload_until(page, lambda p: row.locator("td").all_inner_texts()[1:3] == ["2", "2"],
                     30, what="#1 and #2 applied")
        assert row.locator("[data-testid=lag]").inner_text() == "无"
        assert "red" not in (row.get_attribute("class") or "")
        state = {o["origin"]: o for o in fed.status()["inbox"]}["district-lag"]
        assert (state["held"], state["applied_through"], state["lag_seconds"]) == (0, 2, 0.0)
        assert city.has_record("district-lag/case-2")
    finally:
        reg = node_registry(city.base)
        reg.untrust("district-lag")
        reg.engine.dispose()
