"""The two-node fixture itself: both consoles answer, sign-in works on each, and a record
the district shares reaches the city (the federation links are up)."""
from __future__ import annotations

from tests.harness import wait_for
from tests.harness.pair import uniq


def test_each_node_has_its_console_and_the_district_reaches_the_city(two_nodes, client_for):
    city, district = two_nodes.city, two_nodes.district
    for n in (city, district):
        assert client_for(n, "admin").get("/").status_code == 200
    made = district.exchange_execute("draft_experience", {
        "unit_id": district.units["甲区财政局"], "title": uniq("夹具自检"), "summary": "摘要",
        "body": "正文", "business_type": "财务", "share": {"sharing": "city"}})
    wait_for(lambda: city.has_record(made["experience_id"]), 30, what="the record at the city")
