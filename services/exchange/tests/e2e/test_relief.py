"""基层减负 measured across nodes (issue 10, item 28): a city and two districts on this
machine. Every figure the city receives says where it came from - 上下互比 figures name
the published event they were derived from, exemplar figures are marked published or typed
- and relief_measure counts, per district and month, how many were sent without any manual
entry."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from kombu import Connection, Exchange, Producer

from services.exchange.domain import relief_tally
from tests.harness import wait_for
from services.exchange.tests.e2e.test_sharing import unit_figures

FIGURES = len(unit_figures("x", 0.9, 1)) - 2  # every number and flag; not unit_id, as_of


def dispatch_supervision(node, event_type: str, payload: dict, service: str = "supervision") -> None:
    """What the supervision (or ``service``'s) relay publishes on this node's broker - now
    (the month a figure was sent in is when its source published it)."""
    body = {"event_id": str(uuid.uuid4()), "position": 1, "stream_id": "X:%s" % uuid.uuid4().hex,
            "stream_type": event_type.split(".")[0], "version": 1, "type": event_type,
            "schema_version": 1, "payload": payload,
            "metadata": {"node": node.node_id, "correlation_id": str(uuid.uuid4()),
                         "occurred_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    with Connection(node.local.amqp_uri) as conn:
        Producer(conn.channel(), Exchange("%s.events" % service, type="topic", durable=True)).publish(
            body, routing_key=event_type, serializer="json", delivery_mode=2)


def test_relief_tally():
    assert relief_tally(13, 0) == {"figures": 13, "derived": 13, "manual": 0,
                                   "derived_share": 1.0, "without_manual_entry": True}
    assert relief_tally(13, 1)["without_manual_entry"] is False
    assert relief_tally(0, 0) == {"figures": 0, "derived": 0, "manual": 0,
                                  "derived_share": None, "without_manual_entry": False}


def test_the_city_counts_each_districts_figures_derived_or_typed(network):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    dispatch_supervision(a, "UnitIndicators.Published", unit_figures("a-xj", 0.9, 1))
    dispatch_supervision(b, "UnitIndicators.Published", unit_figures("b-xj", 0.95, 0))
    # education's month still open: two figures and the provisional mark, which is no figure
    dispatch_supervision(a, "EducationIndicators.Published", {
        "unit_id": "a-xj", "period": "2025-03", "warning_education_held": True,
        "checkin_coverage": 0.8, "talks_on_time_rate": None, "provisional": True}, "education")
    wait_for(lambda: "b-xj" in {u["unit_id"] for u in b.query(
        "compare_indicators", {"period": "2025-03"})["units"]}, what="b-xj's figures at district-b")
    # district-b also nominates an exemplar: its published figures are taken, one is typed
    ex = b.execute("nominate_exemplar", {
        "exemplar_id": "relief-exemplar", "unit_id": "b-xj", "category": "model_section",
        "title": "模范科室", "section": "审批科", "description": "互比互查成效明显",
        "indicators": {"mass_satisfaction": 0.98}, "period": "2025-03",
        "share": {"sharing": "all", "recipients": []}})["exemplar_id"]

    def measured():
        m = city.query("relief_measure", {})
        nodes = {n["node_id"]: n for n in m["nodes"]}
        ok = (nodes.get("district-a", {}).get("reports") == 2
              and nodes.get("district-b", {}).get("manual") == 1)
        return (m, nodes) if ok else None
    m, nodes = wait_for(measured, what="both districts' figures counted at the city")
    assert nodes["district-a"]["without_manual_entry"] is True
    assert nodes["district-a"]["derived"] == FIGURES + 2  # not + 3: provisional is a mark
    assert nodes["district-a"]["manual"] == 0 and nodes["district-a"]["reports_traced"] == 2
    assert nodes["district-b"]["without_manual_entry"] is False
    assert nodes["district-b"]["derived"] == 2 * FIGURES  # its report + the exemplar's published
    assert m["districts"] == 2 and m["districts_without_manual_entry"] == 1
    # the record of where the city's figures came from: the district's published event
    assert sorted(m["origins"]["district-a"], key=lambda o: o["service"]) == [
        {"service": "education", "scope": "unit", "event_type": "EducationIndicators.Published",
         "figures": 2},
        {"service": "supervision", "scope": "unit", "event_type": "UnitIndicators.Published",
         "figures": FIGURES}]
    assert city.record(ex)["content"]["indicator_sources"]["mass_satisfaction"] == "manual"
    # another month: nothing was sent in it
    empty = city.query("relief_measure", {"month": "2020-01"})
    assert empty["districts_without_manual_entry"] == 0
    assert all(n["figures"] == 0 for n in empty["nodes"])
