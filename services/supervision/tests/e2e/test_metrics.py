"""Supervision's figures on /metrics: overdue rectifications (read from the read model at
each scrape) and the overdue timer counted as a routine, not as a user's command."""
from __future__ import annotations

from nameko.testing.services import entrypoint_hook

from services.supervision.tests.e2e.test_service import EVIDENCE, running  # noqa: F401 - fixture
from tests.scrape import Scrape


def test_overdue_rectifications_are_counted_and_the_timer_is_a_routine(running):  # noqa: F811
    address = running.config["WEB_SERVER_ADDRESS"]
    with running.client("rpc") as c:
        status, f = c.cmd("record_finding", {
            "unit_id": "u1", "source": "department_to_department", "source_ref": "互查",
            "description": "公务用车登记不全", "responsible_role": "unit_head",
            "deadline": "2024-03-10"}, "insp-1")
        assert status == 200, f
        before = Scrape(address)
        assert before.value("qinglian_rectifications_overdue", service="supervision") == 0
        assert before.value("qinglian_routines_total", routine="detect_overdue", outcome="ok") == 0

        running.clock.set("2024-03-16")
        with entrypoint_hook(running.container, "overdue_timer") as tick:
            assert tick()["overdue_detected"] == 1
        late = Scrape(address)
        assert late.value("qinglian_rectifications_overdue", service="supervision") == 1
        assert late.value("qinglian_routines_total", routine="detect_overdue", outcome="ok") == 1
        assert late.value("qinglian_commands_total", command="detect_overdue", outcome="ok") == 0

        assert c.cmd("submit_evidence", {"rect_id": f["rect_id"], "evidence": EVIDENCE},
                     "ua-u1")[0] == 200
        assert c.cmd("verify_rectification", {"rect_id": f["rect_id"]}, "insp-2")[0] == 200
        closed = Scrape(address)
        assert closed.value("qinglian_rectifications_overdue", service="supervision") == 0
