"""Federation links on the real broker: city, district-a and district-b are vhosts.

Every message a test publishes has its own message id, and "exactly once" is counted
on that id once a marker published after it, with the same routing key, has arrived
where the message did (a loop or a second path would show up as a second copy, on the
origin itself or at a peer, and a federation link delivers in order)."""
from __future__ import annotations

import uuid

import pytest

from shared.federation.broker import (
    CITY_EXCHANGE,
    DOWN_MAX_HOPS,
    NAMED_EXCHANGE,
    UP_EXCHANGES,
    SHARED_EXCHANGE,
    UP_MAX_HOPS,
    BrokerAdmin,
    amqp_uri_for_vhost,
    down_exchanges,
    message_for,
    named_for,
    routes_for,
    routing_key,
    routing_key_for,
    vhost_of,
)
from shared.federation.envelope import KeyRing, generate_keypair, loads, sign, verify
from tests.harness import assert_nothing_after, wait_for

from .conftest import WAIT



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
    marker_after(star.taps, source, rk, props, [source, *targets])
    return {n: tap.with_id(mid) for n, tap in star.taps.items()}


def marker_after(taps, source, routing_key, props, where):
    """Publish a marker at ``source`` with the message's routing key and properties and
    wait until it has reached every node of ``where`` (those the message reached): it
    travels the message's links behind it, so a copy of the message still on its way
    there would have arrived first. Every tap is drained meanwhile."""
    marker = "marker-%s" % uuid.uuid4().hex
    taps[source].publish(routing_key, b"marker", **dict(props, message_id=marker))

    def arrived():
        for tap in taps.values():
            tap.drain()
        return all(taps[n].with_id(marker) for n in where)
    assert_nothing_after(arrived, what="a marker from %s, sent after it, at %s" % (source, where))


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
    # ... a district pulls qinglian.shared and its own named exchange from the city
    assert sorted((l["upstream"], l["exchange"]) for l in status["district-a"]) == sorted(
        ("city", ex) for ex in down_exchanges("district-a"))
    assert down_exchanges("district-a") == (SHARED_EXCHANGE, named_for("district-a"))
    assert CITY_EXCHANGE not in down_exchanges("district-a")
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
    star.topology.apply()  # the link users' links are kept, passwords included
    uri = admin.upstreams(star.vhosts["city"])["district-a"]["uri"]
    assert not admin.link(star.vhosts["city"], "district-a", uri, UP_EXCHANGES,
                          max_hops=UP_MAX_HOPS)
    # a marker along every qinglian.shared link, sent after the apply: a link that the
    # apply restarted has restarted by the time its marker arrives
    star.warm_up([("district-a", "city"), ("district-b", "city"),
                  ("city", "district-a"), ("city", "district-b")])
    after = {n: sorted((l["upstream"], l["local_connection"]) for l in links)
             for n, links in star.topology.status().items()}
    assert after == before  # same connections: no link was restarted


def _buffers(admin, upstream_vhost, downstream_vhost):
    """The federation plugin's buffer queues on ``upstream_vhost`` for the links of
    ``downstream_vhost``."""
    return sorted(q["name"] for q in admin.queues(upstream_vhost)
                  if q["name"].startswith("federation: ") and (":%s:" % downstream_vhost) in q["name"])


def test_unlink_stops_delivery(star, admin):
    star.warm_up([("district-a", "city"), ("district-a", "district-b")])
    wait_for(lambda: len(_buffers(admin, star.vhosts["city"], star.vhosts["district-b"])) == 2,
             what="district-b's two buffers at the city")
    # district-b stops pulling from the city
    assert admin.unlink(star.vhosts["district-b"], "city") is True
    wait_for(lambda: admin.link_status(star.vhosts["district-b"]) == [],
             what="district-b's link to go")
    # and its buffers at the city go with it (links keep them when they restart): a
    # buffer left there would collect the city's records for ever
    wait_for(lambda: _buffers(admin, star.vhosts["city"], star.vhosts["district-b"]) == [],
             what="district-b's buffers at the city deleted")
    assert admin._call("GET", "policies", star.vhosts["district-b"],
                       BrokerAdmin.policy_name(SHARED_EXCHANGE), missing_ok=True) is None

    env = published_case(generate_keypair()[0])
    seen = publish_and_count(star, "district-a", ["city"], env)
    assert len(seen["city"]) == 1
    assert seen["district-b"] == []
    assert admin.unlink(star.vhosts["district-b"], "city") is False


def test_a_link_that_restarts_keeps_what_its_buffer_holds(star, admin):
    """The plugin deletes a link's buffer queue, and what it holds, whenever the link
    shuts down - a restart too - unless ``resource-cleanup-mode`` is ``never``: under
    load at 11 districts the links restarted in waves and records vanished from every
    queue. Here the city's link from district-a is restarted with a password that no
    longer works, a record is published at district-a meanwhile, and the link is put
    back: the record arrives."""
    from shared.federation.broker import with_credentials
    city, a = star.vhosts["city"], star.vhosts["district-a"]
    star.warm_up([("district-a", "city")])
    good = admin.upstreams(city)["district-a"]
    assert good["resource-cleanup-mode"] == "never"
    user, _password = _link_credentials(admin, city, "district-a")
    admin.put_upstream(city, "district-a", dict(good, uri=with_credentials(good["uri"], user, "wrong")))
    wait_for(lambda: not any(l.get("status") == "running" and l.get("exchange") == SHARED_EXCHANGE
                             for l in admin.link_status(city) if l.get("upstream") == "district-a"),
             what="the city's link from district-a down")
    env = published_case(generate_keypair()[0])
    rk, body, props = message_for(env)
    star.taps["district-a"].publish(rk, body, **props)
    admin.put_upstream(city, "district-a", good)

    def arrived():
        star.taps["city"].drain()
        return star.taps["city"].with_id(env["event_id"])
    wait_for(arrived, what="the record published while the link was down, at the city")


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


def settle_and_count(taps, mid, source, routing_key, props, where):
    """How many copies of ``mid`` each tap holds, once a marker sent after it along the same
    path (``marker_after``) has reached ``where``."""
    marker_after(taps, source, routing_key, props, where)
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
    seen = settle_and_count(city_taps, env["event_id"], "district-a", keys[0], rk_body_props[2],
                            ["city", "district-a"])
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
    assert settle_and_count(taps, env["event_id"], "district-a", keys[0], props, ["district-b"]) == {
        "city": 0, "district-a": 0, "district-b": 1}
    for tap in taps.values():
        tap.close()


def _bind_as(vhost, user, password, exchange, binding, queue=None):
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
        q = queue or "federation: probe %s" % uuid.uuid4().hex[:6]
        ch.queue_declare(q, auto_delete=True)
        ch.queue_bind(q, exchange, binding)
    finally:
        try:
            conn.close()
        except Exception:
            pass


def _link_credentials(admin, downstream_vhost, upstream):
    """The user and password the downstream's link to ``upstream`` logs in with."""
    from urllib.parse import unquote, urlparse
    u = urlparse(admin.upstreams(downstream_vhost)[upstream]["uri"])
    return unquote(u.username), unquote(u.password)


def test_links_log_in_as_least_privilege_link_users(star, admin):
    """Every link logs in as its own user, never guest or an admin, and that user may
    read on the upstream broker only the exchanges its link carries (issue 11, A4)."""
    import amqp.exceptions

    city_vhost, b_vhost = star.vhosts["city"], star.vhosts["district-b"]
    for downstream, upstream in (("district-b", "city"), ("city", "district-b"),
                                 ("district-a", "city"), ("city", "district-a")):
        user, _ = _link_credentials(admin, star.vhosts[downstream], upstream)
        assert user not in ("guest", admin.user)
        # (the management API lists connections with a few seconds' delay)
        wait_for(lambda: any(c.get("user") == user and c.get("vhost") == star.vhosts[upstream]
                             for c in admin._call("GET", "connections")),
                 what="%s's link to %s logged in as %s" % (downstream, upstream, user))
        tags = admin._call("GET", "users", user)["tags"]
        assert not tags  # no management access

    # district-b's user at the city: qinglian.shared and its own named exchange only
    user, password = _link_credentials(admin, b_vhost, "city")
    own = "federation: %%s -> probe:%s:x" % b_vhost
    _bind_as(city_vhost, user, password, named_for("district-b"), "#",
             queue=own % named_for("district-b"))
    _bind_as(city_vhost, user, password, SHARED_EXCHANGE, "#", queue=own % SHARED_EXCHANGE)
    for exchange, binding in ((NAMED_EXCHANGE, "#"), (NAMED_EXCHANGE, "district-b.#"),
                              (named_for("district-a"), "#"), (CITY_EXCHANGE, "#")):
        with pytest.raises(amqp.exceptions.AccessRefused):
            _bind_as(city_vhost, user, password, exchange, binding,
                     queue=own % named_for("district-b"))
    # ... and may not touch another link's buffer queue (district-a's, on the same broker)
    with pytest.raises(amqp.exceptions.AccessRefused):
        _bind_as(city_vhost, user, password, SHARED_EXCHANGE, "#",
                 queue="federation: %s -> probe:%s:x" % (SHARED_EXCHANGE, star.vhosts["district-a"]))
    # the city's user at district-b: the three exchanges a district sends up
    user, password = _link_credentials(admin, city_vhost, "district-b")
    own = "federation: %%s -> probe:%s:x" % city_vhost
    for exchange in (SHARED_EXCHANGE, CITY_EXCHANGE, NAMED_EXCHANGE):
        _bind_as(b_vhost, user, password, exchange, "#", queue=own % exchange)
    with pytest.raises(amqp.exceptions.AccessRefused):
        _bind_as(b_vhost, user, password, "amq.topic", "#", queue=own % SHARED_EXCHANGE)


def test_hash_bound_on_every_node_brings_only_its_own_named_records(star):
    """``#`` bound on qinglian.named at every node: a district's broker receives only
    the named records addressed to it (and its own). The city is the hub every
    district-to-district record transits, so its ``#`` sees them all. Each district
    first waits for markers addressed to it, sent after everything else along the very
    paths a leaked record would take."""
    from .conftest import Tap

    taps = {n: Tap(v, "#", NAMED_EXCHANGE) for n, v in star.vhosts.items()}
    try:
        _only_own_named_records(star, taps)
    finally:
        for tap in taps.values():
            tap.close()


def _only_own_named_records(star, taps):
    nodes = list(star.vhosts)
    star.warm_up([(s, t) for s in nodes for t in nodes if s != t], taps=taps,
                 key="{target}.probe.{source}.Ping")
    keys = {n: generate_keypair()[0] for n in nodes}

    def named(origin, recipient, tag):
        env = sign(dict(published_case(keys[origin], origin=origin), sharing="named",
                        recipients=[recipient]), keys[origin])
        _, [rk] = routes_for(env, "case")
        _, body, props = message_for(env, "case")
        taps[origin].publish(rk, body, **props)
        return tag, env["event_id"]

    sent = [named(o, r, "%s>%s" % (o, r)) for o in nodes for r in nodes if o != r]
    markers = {d: [named(o, d, "marker %s>%s" % (o, d)) for o in nodes if o != d]
               for d in ("district-a", "district-b")}
    # every marker transits the city (the hub), as every district-to-district record does
    every = [m for ms in markers.values() for m in ms]
    for d, ms in (*markers.items(), ("city", every)):
        wait_for(lambda: taps[d].drain() or all(taps[d].with_id(m) for _, m in ms),
                 what="the markers at %s" % d)
    for tap in taps.values():
        tap.drain()
    seen = {n: sorted(tag for tag, mid in sent if taps[n].with_id(mid)) for n in nodes}
    for d in ("district-a", "district-b"):
        assert seen[d] == sorted(tag for tag, _ in sent if d in tag.split(">")), d
    assert seen["city"] == sorted(tag for tag, _ in sent)  # the hub
    # exactly one copy of each where it arrives
    assert all(len(taps[n].with_id(mid)) <= 1 for n in nodes for _, mid in sent)
