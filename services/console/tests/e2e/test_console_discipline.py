"""四种形态 in the console against the real services: inspectors see the records, every
other role the counts only."""
from __future__ import annotations

from services.console.tests.e2e.test_console_http import node  # noqa: F401 - the fixture
from tests.harness import wait_for


def test_inspectors_see_records_others_counts_only(node, client_for):
    token = node.users.issue_token("insp")
    seed = {"unit_id": node.ids["a"], "form": 1, "person_name": "周某某", "measure": "谈话提醒",
            "summary": "公务接待超标准", "handled_on": "2026-11-20"}

    def recorded():  # supervision learns of the unit from the units' events
        import requests
        r = requests.post("http://%s/api/record_discipline" % node.addresses["supervision"],
                          json=seed, headers={"Authorization": "Bearer %s" % token}, timeout=10)
        return r.json() if r.status_code == 201 else None
    assert wait_for(recorded, timeout=30)["form"] == 1

    insp = client_for(node, "insp").get("/discipline")
    assert insp.status_code == 200 and "周某某" in insp.text and "公务接待超标准" in insp.text
    assert "2026-Q4" in insp.text
    for user in ("viewer", "ua-a", "admin"):
        page = client_for(node, user).get("/discipline")
        assert page.status_code == 200 and "2026-Q4" in page.text, user
        assert "周某某" not in page.text and "公务接待超标准" not in page.text, user
        assert "仅检查员可查看" in page.text
