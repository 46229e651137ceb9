"""Federation links on the real broker: city, district-a and district-b are vhosts.

Every message a test publishes has its own message id, and "exactly once" is counted
on that id after waiting ~2 s for stragglers (a loop or a second path would show up
as a second copy, on the origin itself or at a peer)."""
from __future__ import annotations

import time
import uuid

import pytest

from shared.federation.broker import (
    CITY_EXCHANGE,
    DOWN_EXCHANGES,
    DOWN_MAX_HOPS,
    NAMED_EXCHANGE,
    UP_EXCHANGES,
    SHARED_EXCHANGE,
    UP_MAX_HOPS,
    BrokerAdmin,
    amqp_uri_for_vhost,
    message_for,
    routes_for,
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
    # the city pulls all three exchanges from each district ...
    assert sorted((l["upstream"], l["exchange"]) for l in status["city"]) == sorted(
        (d, ex) for d in ("district-a", "district-b") for ex in UP_EXCHANGES)
    # ... a district pulls everything but qinglian.city from the city
    assert sorted((l["upstream"], l["exchange"]) for l in status["district-a"]) == sorted(
        ("city", ex) for ex in DOWN_EXCHANGES)
    assert CITY_EXCHANGE not in DOWN_EXCHANGES
    assert all(l["status"] == "running" for links in status.values() for l in links)
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


# ------------------------------------------------- sharing levels and exchanges

def test_routes_follow_the_sharing_level():
    key, _ = generate_keypair()
    env = published_case(key)
    assert routes_for(env, "case") == (SHARED_EXCHANGE, ["case.district-a.Case.Published"])
    city = sign(dict(env, sharing="city", signature=None), key)
    assert routes_for(city, "case") == (CITY_EXCHANGE, ["case.district-a.Case.Published"])
    named = sign(dict(env, sharing="named", recipients=["district-b", "city", "district-a"]), key)
    # one copy per recipient, never one addressed back to the origin
    assert routes_for(named, "case") == (NAMED_EXCHANGE, [
        "city.case.district-a.Case.Published", "district-b.case.district-a.Case.Published"])
    with pytest.raises(ValueError):
        routes_for(dict(env, sharing="node"), "case")


def taps_on(star, exchange, bindings):
    from .conftest import Tap
    taps = {n: Tap(star.vhosts[n], bindings[n], exchange) for n in bindings}
    star.extra_taps = getattr(star, "extra_taps", []) + list(taps.values())
    return taps


def settle_and_count(taps, mid):
    time.sleep(SETTLE)
    for tap in taps.values():
        tap.drain()
    return {n: len(tap.with_id(mid)) for n, tap in taps.items()}


def test_city_only_record_never_reaches_another_district(star):
    # district-b binds everything it can, on every exchange: none of it may bring
    # district-a's city-only record to district-b's broker
    city_taps = taps_on(star, CITY_EXCHANGE, {"city": "#", "district-a": "#", "district-b": "#"})
    named_b = taps_on(star, NAMED_EXCHANGE, {"district-b": "#"})
    star.warm_up([("district-a", "city")], taps=city_taps)
    key, _ = generate_keypair()
    env = sign(dict(published_case(key), sharing="city"), key)
    exchange, keys = routes_for(env, "case")
    rk_body_props = message_for(env, "case")
    city_taps["district-a"].publish(keys[0], rk_body_props[1], **rk_body_props[2])
    wait_for(lambda: city_taps["city"].drain() or city_taps["city"].with_id(env["event_id"]),
             what="the city-only record at the city")
    seen = settle_and_count(city_taps, env["event_id"])
    assert seen == {"city": 1, "district-a": 1, "district-b": 0}
    star.taps["district-b"].drain()
    named_b["district-b"].drain()
    assert not star.taps["district-b"].with_id(env["event_id"])
    assert not named_b["district-b"].with_id(env["event_id"])
    for tap in city_taps.values():
        tap.close()
    named_b["district-b"].close()


def test_named_record_enters_only_its_recipients_brokers(star):
    # each node's exchange service binds "<itself>.#"
    taps = taps_on(star, NAMED_EXCHANGE, {n: "%s.#" % n for n in star.vhosts})
    star.warm_up([("district-a", "district-b"), ("district-a", "city")], taps=taps,
                 key="{target}.probe.{source}.Ping")
    key, _ = generate_keypair()
    env = sign(dict(published_case(key), sharing="named", recipients=["district-b"]), key)
    exchange, keys = routes_for(env, "case")
    assert exchange == NAMED_EXCHANGE and keys == ["district-b.case.district-a.Case.Published"]
    _, body, props = message_for(env, "case")
    taps["district-a"].publish(keys[0], body, **props)
    wait_for(lambda: taps["district-b"].drain() or taps["district-b"].with_id(env["event_id"]),
             what="the named record at district-b")
    assert settle_and_count(taps, env["event_id"]) == {
        "city": 0, "district-a": 0, "district-b": 1}
    for tap in taps.values():
        tap.close()


def _bind_as(vhost, user, password, exchange, binding):
    """Declare a queue named like the federation plugin's own and bind it, as ``user``."""
    import amqp
    from urllib.parse import urlparse

    from .conftest import AMQP_BASE
    u = urlparse(AMQP_BASE)
    conn = amqp.Connection("%s:%d" % (u.hostname, u.port or 5672), userid=user,
                           password=password, virtual_host=vhost, connect_timeout=5)
    conn.connect()
    try:
        ch = conn.channel()
        q = "federation: probe %s" % uuid.uuid4().hex[:6]
        ch.queue_declare(q, auto_delete=True)
        ch.queue_bind(q, exchange, binding)
    finally:
        try:
            conn.close()
        except Exception:
            pass


def test_district_link_user_cannot_pull_what_the_district_may_not_see(star, admin):
    """Defence at the city's broker: district-b's down-link logs in as a user that may
    bind only district-b's own named keys and may not read qinglian.city at all - and
    that is enough for the real link to run."""
    import amqp.exceptions

    from .conftest import Tap

    city_vhost = star.vhosts["city"]
    user, password = "qlt-link-%s" % uuid.uuid4().hex[:8], uuid.uuid4().hex
    admin.ensure_user(user, password)
    try:
        admin.grant_district_link_user(city_vhost, user, "district-b")
        _bind_as(city_vhost, user, password, NAMED_EXCHANGE, "district-b.#")
        _bind_as(city_vhost, user, password, SHARED_EXCHANGE, "#")
        for exchange, binding in ((NAMED_EXCHANGE, "#"), (NAMED_EXCHANGE, "city.#"),
                                  (CITY_EXCHANGE, "#")):
            with pytest.raises(amqp.exceptions.AccessRefused):
                _bind_as(city_vhost, user, password, exchange, binding)

        # district-b's link now logs in as that user: named records still flow
        from urllib.parse import quote
        restricted = star.brokers["city"].amqp_uri.replace(
            "guest:guest@", "%s:%s@" % (quote(user), quote(password)))
        assert restricted != star.brokers["city"].amqp_uri
        admin.link(star.vhosts["district-b"], "city", restricted, DOWN_EXCHANGES,
                   max_hops=DOWN_MAX_HOPS)
        # the redefined upstream restarts its links: wait until they log in as the new
        # identity (the status hides the URI's user; the city's connections show it)
        def as_link_user():
            conns = [c for c in admin._call("GET", "connections")
                     if c.get("user") == user and c.get("vhost") == city_vhost]
            running = [l for l in admin.link_status(star.vhosts["district-b"])
                       if l.get("status") == "running"]
            return len(conns) >= len(DOWN_EXCHANGES) and len(running) == len(DOWN_EXCHANGES)
        wait_for(as_link_user, what="district-b's links as %s" % user)
        taps = {n: Tap(star.vhosts[n], "%s.#" % n, NAMED_EXCHANGE) for n in star.vhosts}
        star.warm_up([("district-a", "district-b")], taps=taps,
                     key="{target}.probe.{source}.Ping")
        key, _ = generate_keypair()
        env = sign(dict(published_case(key), sharing="named", recipients=["district-b"]), key)
        _, keys = routes_for(env, "case")
        _, body, props = message_for(env, "case")
        taps["district-a"].publish(keys[0], body, **props)
        wait_for(lambda: taps["district-b"].drain() or taps["district-b"].with_id(env["event_id"]),
                 what="the named record at district-b over the restricted link")
        for tap in taps.values():
            tap.close()
    finally:
        admin.delete_user(user)
