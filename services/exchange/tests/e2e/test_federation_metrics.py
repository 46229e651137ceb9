"""Federation figures on the exchange service's /metrics mean what they say when it matters.

* an origin's lag is the age of the oldest of its records received and not applied
  (held behind a hole), 0 once applied;
* ``qinglian_federation_last_heard_seconds`` keeps growing while an origin is down
  (it is not frozen at the last applied event);
* the outbox lag grows while the node's broker is gone and is 0 again once it is back.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.harness import wait_for
from tests.harness.exchange import FAST, RunningNode, start_network, stop_network
from services.exchange.tests.e2e.test_rejections import FakeOrigin, deliver
from shared.federation.envelope import SHARING_LEVELS
from tests.scrape import Scrape, scrape_when
from tooling.localnet import LocalNetwork


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """The conftest's network, but no peer's feed is pulled after the one at start (the
    sync every hour): what reaches a node here came over AMQP or was pulled to fill a hole,
    never by a sync that beat AMQP on a loaded machine."""
    net, nodes = start_network(tmp_path_factory.mktemp("net"),
                               extra={"FEDERATION_SYNC_SECONDS": 3600})
    yield nodes
    stop_network(net, nodes)


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_record_held_behind_a_hole_is_lag_until_it_is_applied(network):
    city = network["city"]
    url = city.local.base_url
    x = FakeOrigin(city, "district-lagging")
    first = scrape_when(url, lambda s: s.value("qinglian_federation_lag_seconds",
                                               origin="district-lagging") is not None,
                        "the new origin's series")
    assert first.value("qinglian_federation_lag_seconds", origin="district-lagging") == 0
    # its counters exist at zero before anything happened, so the first rise is seen
    assert first.value("qinglian_federation_rejected_total", origin="district-lagging",
                       reason="signature_invalid") == 0
    assert first.value("qinglian_federation_applied_total", origin="district-lagging",
                       via="amqp") == 0

    deliver(city, x.case(2, occurred_at=ago(90)))  # #1 has not arrived: #2 is held
    held = scrape_when(url, lambda s: s.value("qinglian_federation_held",
                                              origin="district-lagging") == 1, "#2 held")
    assert held.value("qinglian_federation_lag_seconds", origin="district-lagging") >= 90
    assert held.value("qinglian_federation_last_heard_seconds", origin="district-lagging") < 30

    deliver(city, x.case(1, occurred_at=ago(95)))
    done = scrape_when(url, lambda s: s.value("qinglian_federation_applied_total",
                                              origin="district-lagging", via="amqp") == 2,
                       "both applied")
    assert done.value("qinglian_federation_held", origin="district-lagging") == 0
    assert done.value("qinglian_federation_lag_seconds", origin="district-lagging") == 0


def test_an_origin_that_is_down_shows_as_not_heard_from(fresh_network):
    _net, nodes = fresh_network
    city, a = nodes["city"], nodes["district-a"]
    url = city.local.base_url
    # up: the city pulls district-a's feed every FEDERATION_SYNC_SECONDS (2 s here)
    scrape_when(url, lambda s: (s.value("qinglian_federation_last_heard_seconds",
                                        origin="district-a") or 99) < 5, "district-a heard")
    a.stop()  # (not started again: this network is the test's own)
    down = scrape_when(url, lambda s: s.value("qinglian_federation_last_heard_seconds",
                                              origin="district-a") > 8,
                       "district-a silent for 8 s")
    time.sleep(1.1)
    later = Scrape(city.local.base_url)
    # growing, not frozen at what it was when the origin went away
    assert later.value("qinglian_federation_last_heard_seconds", origin="district-a") >= \
        down.value("qinglian_federation_last_heard_seconds", origin="district-a") + 1
    assert later.value("qinglian_federation_feed_pulls_total", origin="district-a",
                       outcome="error") >= 1
    # district-b, still up, is heard at every sync
    assert later.value("qinglian_federation_last_heard_seconds", origin="district-b") < 5


@pytest.fixture
def lone_city(tmp_path):
    net = LocalNetwork(tmp_path, districts=(), extra=FAST).create(link=False)
    node = RunningNode(net.city).start()
    node.seed_units()
    yield net, node
    node.stop()
    net.destroy()


def _case(n: int) -> dict:
    return {"case_id": "metrics-%d" % n, "unit_id": "city-jw", "title": "案例%d" % n,
            "category": "四风", "summary": "摘要", "facts": "事实", "analysis": "分析",
            "lessons": ["教训"], "share": {"sharing": "all", "recipients": []}}


def test_outbox_lag_grows_while_the_broker_is_gone_and_returns_to_zero(lone_city):
    net, city = lone_city
    url = city.local.base_url
    s = Scrape(city.local.base_url)
    for sharing in SHARING_LEVELS:
        if sharing != "node":
            assert s.value("qinglian_federation_staged_total", sharing=sharing) == 0
    city.execute("compile_case", _case(0))
    scrape_when(url, lambda s: s.value("qinglian_federation_published_total",
                                       exchange="qinglian.shared") == 1
                and s.value("qinglian_federation_outbox_lag") == 0
                and s.value("qinglian_broker_connected", connection="federation-publisher") == 1,
                "the first case published")

    net.admin.delete_vhost(net.city.vhost)  # the broker closes the node's connections
    scrape_when(url, lambda s: s.value("qinglian_broker_connected",
                                       connection="federation-publisher") == 0,
                "the publisher sees the broker gone")
    city.execute("compile_case", _case(1))
    city.execute("compile_case", _case(2))
    first = Scrape(city.local.base_url)
    assert first.value("qinglian_federation_outbox_lag") == 2
    time.sleep(1.1)
    later = Scrape(city.local.base_url)
    assert later.value("qinglian_federation_outbox_lag_seconds") >= \
        first.value("qinglian_federation_outbox_lag_seconds") + 1
    assert later.value("qinglian_relay_lag_events", service="exchange") >= 2

    net.admin.ensure_vhost(net.city.vhost)
    back = scrape_when(url, lambda s: s.value("qinglian_federation_outbox_lag") == 0
                       and s.value("qinglian_relay_lag_events", service="exchange") == 0,
                       "the backlog published", timeout=60)
    assert back.value("qinglian_federation_outbox_lag_seconds") == 0
    assert back.value("qinglian_federation_published_total", exchange="qinglian.shared") == 3



def test_a_record_is_applied_at_other_nodes_under_its_origins_correlation_id(network):
    city, a = network["city"], network["district-a"]
    before = Scrape(a.local.base_url)
    case = city.provider.app.execute(city.runtime, "compile_case", dict(
        _case(99), case_id="corr-1"), city.admin, correlation_id="req-city-1")["case_id"]
    wait_for(lambda: a.record(case), what="the city's case at district-a")
    # over AMQP (the link carries the id; a record pulled from a feed is applied under its
    # event id, docs/operations.md)
    after = Scrape(a.local.base_url)
    for via, more in (("amqp", 1), ("feed", 0)):
        assert after.value("qinglian_federation_applied_total", origin="city", via=via) == \
            before.value("qinglian_federation_applied_total", origin="city", via=via) + more
    with a.runtime.read() as conn:
        applied = [ev for ev in a.runtime.store.iter_all(conn) if ev.payload.get("case_id") == case]
    assert applied and {ev.metadata["correlation_id"] for ev in applied} == {"req-city-1"}
    assert {ev.metadata["node"] for ev in applied} == {"city"}
