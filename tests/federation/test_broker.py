"""Federation links on the real broker: city, district-a and district-b are vhosts.

Every message a test publishes has its own message id, and "exactly once" is counted
on that id after waiting ~2 s for stragglers (a loop or a second path would show up
as a second copy, on the origin itself or at a peer)."""
from __future__ import annotations

import time
import uuid

import pytest

from shared.federation.broker import (
    DOWN_MAX_HOPS,
    SHARED_EXCHANGE,
    UP_MAX_HOPS,
    BrokerAdmin,
    amqp_uri_for_vhost,
    message_for,
    routing_key,
    routing_key_for,
    vhost_of,
)
from shared.federation.envelope import KeyRing, generate_keypair, loads, sign, verify

from .conftest import WAIT, wait_for

SETTLE = 2.0  # how long we wait for a duplicate that should never come


def published_case(key, origin="district-a", seq=1):
    return sign({
        "event_id": str(uuid.uuid4()), "origin": origin, "origin_seq": seq,
        "type": "Case.Published", "schema_version": 1, "sharing": "all", "recipients": [],
        "payload": {"case_id": "case-1", "title": "联编案例：虚报冒领补贴"},
        "occurred_at": "2025-03-01T08:00:00Z", "owner": origin,
    }, key)


def publish_and_count(star, source, targets, envelope):
    rk, body, props = message_for(envelope)
    star.taps[source].publish(rk, body, **props)
    mid = envelope["event_id"]

    def everywhere():
        for tap in star.taps.values():
            tap.drain()
        return all(star.taps[t].with_id(mid) for t in targets)

    wait_for(everywhere, what="%s's message at %s" % (source, targets))
    time.sleep(SETTLE)
    for tap in star.taps.values():
        tap.drain()
    return {n: tap.with_id(mid) for n, tap in star.taps.items()}


# ------------------------------------------------------------------ routing keys

def test_routing_key_names_kind_origin_and_type():
    assert routing_key("case", "district-a", "Case.Published") == "case.district-a.Case.Published"
    key, _ = generate_keypair()
    assert routing_key_for(published_case(key)) == "case.district-a.Case.Published"
    assert routing_key_for(published_case(key), kind="experience").startswith("experience.")
    for bad in (("ca.se", "district-a", "X"), ("case", "district.a", "X"),
                ("case", "district-a", "Case.*"), ("case", "district-a", "Case..X"),
                ("Case", "district-a", "X"), ("case", "district-a", "#")):
        with pytest.raises(ValueError):
            routing_key(*bad)


def test_uri_helpers():
    base = "amqp://guest:guest@127.0.0.1:5672/"
    assert amqp_uri_for_vhost(base, "qlt-1-city") == "amqp://guest:guest@127.0.0.1:5672/qlt-1-city"
    assert amqp_uri_for_vhost(base, "/") == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert vhost_of("amqp://h:5672/district-a") == "district-a"
    assert vhost_of("amqp://h:5672/%2F") == "/"
    assert vhost_of("amqp://h:5672") == "/"
    api = BrokerAdmin.from_amqp_uri("amqps://ql%40city:s3cr%2Ft@mq.city.example:5671/city")
    assert api.api_url == "https://mq.city.example:15672"
    assert api.user == "ql@city" and api._http.auth == ("ql@city", "s3cr/t")


# -------------------------------------------------------------- the three nodes

def test_district_record_reaches_city_and_peer_exactly_once(star):
    star.warm_up([("district-a", "city"), ("district-a", "district-b")])
    a_key, _ = generate_keypair()
    env = published_case(a_key)
    seen = publish_and_count(star, "district-a", ["city", "district-b"], env)

    assert {n: len(m) for n, m in seen.items()} == {"city": 1, "district-a": 1, "district-b": 1}
    # district-a's single copy is its own local delivery: nothing looped back to it
    assert "x-received-from" not in (seen["district-a"][0].headers or {})
    # district-b's copy came district-a -> city -> district-b: two hops, newest first
    hops = [(h["vhost"], h["exchange"]) for h in seen["district-b"][0].headers["x-received-from"]]
    assert hops == [(star.vhosts["city"], SHARED_EXCHANGE), (star.vhosts["district-a"], SHARED_EXCHANGE)]
    # what arrives still verifies: federation copies the bytes untouched
    received = loads(seen["district-b"][0].body)
    assert verify(received, KeyRing({"district-a": a_key.public_key()})) == env
    assert seen["district-b"][0].delivery_info["routing_key"] == "case.district-a.Case.Published"


def test_city_record_reaches_both_districts_exactly_once(star):
    star.warm_up([("city", "district-a"), ("city", "district-b")])
    env = published_case(generate_keypair()[0], origin="city")
    seen = publish_and_count(star, "city", ["district-a", "district-b"], env)
    assert {n: len(m) for n, m in seen.items()} == {"city": 1, "district-a": 1, "district-b": 1}
    for d in ("district-a", "district-b"):
        assert len(seen[d][0].headers["x-received-from"]) == 1


def test_link_status_reports_running_links(star, admin):
    status = star.topology.status()
    assert sorted(l["upstream"] for l in status["city"]) == ["district-a", "district-b"]
    assert [l["upstream"] for l in status["district-a"]] == ["city"]
    assert all(l["status"] == "running" and l["exchange"] == SHARED_EXCHANGE
               for links in status.values() for l in links)
    assert all("guest:guest" not in l["uri"] for links in status.values() for l in links)

    city_up = admin.upstreams(star.vhosts["city"])
    assert {n: (u["ack-mode"], u["max-hops"]) for n, u in city_up.items()} == {
        "district-a": ("on-confirm", UP_MAX_HOPS), "district-b": ("on-confirm", UP_MAX_HOPS)}
    b_up = admin.upstreams(star.vhosts["district-b"])["city"]
    assert (b_up["ack-mode"], b_up["max-hops"], vhost_of(b_up["uri"])) == (
        "on-confirm", DOWN_MAX_HOPS, star.vhosts["city"])
    # one policy per exchange, covering every upstream of the vhost
    policy = admin._call("GET", "policies", star.vhosts["city"],
                         BrokerAdmin.policy_name(SHARED_EXCHANGE))
    assert policy["definition"] == {"federation-upstream-set": "all"}


def test_apply_again_leaves_running_links_alone(star, admin):
    before = {n: sorted((l["upstream"], l["local_connection"]) for l in links)
              for n, links in star.topology.status().items()}
    star.topology.apply()
    assert not admin.link(star.vhosts["city"], "district-a", star.brokers["district-a"].amqp_uri,
                          max_hops=UP_MAX_HOPS)
    time.sleep(0.5)
    after = {n: sorted((l["upstream"], l["local_connection"]) for l in links)
             for n, links in star.topology.status().items()}
    assert after == before  # same connections: no link was restarted


def test_unlink_stops_delivery(star, admin):
    star.warm_up([("district-a", "city"), ("district-a", "district-b")])
    # district-b stops pulling from the city
    assert admin.unlink(star.vhosts["district-b"], "city") is True
    wait_for(lambda: admin.link_status(star.vhosts["district-b"]) == [],
             what="district-b's link to go")
    assert admin._call("GET", "policies", star.vhosts["district-b"],
                       BrokerAdmin.policy_name(SHARED_EXCHANGE), missing_ok=True) is None

    env = published_case(generate_keypair()[0])
    seen = publish_and_count(star, "district-a", ["city"], env)
    assert len(seen["city"]) == 1
    assert seen["district-b"] == []
    assert admin.unlink(star.vhosts["district-b"], "city") is False


def test_new_district_joins_a_running_star(star, admin, make_vhost):
    from shared.federation.broker import NodeBroker

    from .conftest import AMQP_BASE, Tap

    vhost = make_vhost("district-c")
    star.topology.add_district(NodeBroker("district-c", amqp_uri_for_vhost(AMQP_BASE, vhost), admin))
    star.topology.wait_running(WAIT)
    star.taps["district-c"] = Tap(vhost)
    star.warm_up([("district-a", "district-c"), ("district-c", "district-b")])
    env = published_case(generate_keypair()[0], origin="district-c")
    seen = publish_and_count(star, "district-c", ["city", "district-a", "district-b"], env)
    assert {n: len(m) for n, m in seen.items()} == {
        "city": 1, "district-a": 1, "district-b": 1, "district-c": 1}


def test_max_hops_one_on_down_links_would_cut_districts_off(star_factory):
    """Why DOWN_MAX_HOPS is 2: with RabbitMQ's default of 1, a district's record stops
    at the city (it already has one hop when the city would pass it on)."""
    star = star_factory(down_max_hops=1)
    star.warm_up([("city", "district-b"), ("district-a", "city")])
    env = published_case(generate_keypair()[0])
    seen = publish_and_count(star, "district-a", ["city"], env)
    assert len(seen["city"]) == 1
    assert seen["district-b"] == []
