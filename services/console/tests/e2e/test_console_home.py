"""工作台 gathers the other services' to-dos (issue 8's home, issue 10 #10): a control past
its review date appears for its owner unit's admin, in red, named in Chinese; another
subtree's admin does not see it. Real units, supervision and console services."""
from __future__ import annotations

from datetime import timedelta

from nameko.testing.services import entrypoint_hook

from services.console.tests.conftest import console_node


def _seed(n):
    n.register_units(a="区财政局", b=("区市场监管局", "law_enforcement", "unit", "root"))
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("ua-b", "孙监管", ["unit-admin"], n.ids["b"])


node = console_node(_seed)


def test_a_control_past_its_review_date_is_on_its_owners_home_page(node, client_for):
    container = node.container("supervision")
    rt = node.runtime("supervision")
    real = rt.clock
    rt.clock = lambda: real() - timedelta(days=30)  # the control was added a month ago
    try:
        rp = node.api("supervision", "identify_risk_point", {
            "unit_id": node.ids["a"], "description": "公车私用", "category": "post_duty"})
        review = (real() - timedelta(days=10)).date().isoformat()
        node.api("supervision", "add_control", {
            "risk_point_id": rp["risk_point_id"], "measure": "车辆GPS和出车登记",
            "owner_post": "办公室主任", "review_date": review})
    finally:
        rt.clock = real
    with entrypoint_hook(container, "overdue_timer") as tick:
        assert tick()["control_reviews_flagged"] == 1

    home = client_for(node, "ua-a").get("/").text
    assert "防控措施待复核" in home and "公车私用：车辆GPS和出车登记" in home
    row = home[home.index("防控措施待复核"):][:600]
    assert "区财政局" in row
    assert home[:home.index("防控措施待复核")].rsplit("<tr", 1)[1].startswith(' class="red"')
    # the same page for another subtree's admin: answered, without the control
    other = client_for(node, "ua-b").get("/")
    assert other.status_code == 200 and "工作台" in other.text
    assert "防控措施待复核" not in other.text
