"""What a receiving node does with each kind of bad or odd delivery: the same message
twice, messages out of order, a broken signature, a signer that is not the origin, an
untrusted node, a record owned by another node. Each is counted in the metrics, logged,
and never projected.

The messages are put straight onto the city's broker (as a federation link would
deliver them), signed by test origins the city trusts, with sequence numbers the test
controls; district-b's real key is used where the issue says "signed by district-b".
"""
from __future__ import annotations

import json
import logging
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from sqlalchemy import select

from services.exchange.federation import inbox, received
from tests.harness import wait_for
from shared.federation.broker import SHARED_EXCHANGE, message_properties, routing_key_for
from shared.federation.envelope import generate_keypair, public_key_b64, sign
from shared.federation.keys import load_node_key, node_registry
from shared.store import events


class FakeOrigin:
    """A district the city trusts, whose messages the test writes by hand."""

    def __init__(self, city, node_id: str, trusted: bool = True):
        self.city = city
        self.node_id = node_id
        self.key, _ = generate_keypair()
        if trusted:
            reg = node_registry(city.local.config)
            reg.trust(node_id, "district", "city", public_key_b64(self.key))
            reg.engine.dispose()

    def case(self, seq: int, slug: str | None = None, owner_id: str | None = None, **over) -> dict:
        rid = "%s/%s" % (owner_id or self.node_id, slug or "case-%d" % seq)
        env = {"event_id": str(uuid.uuid4()), "origin": self.node_id, "origin_seq": seq,
               "type": "Case.Published", "schema_version": 1, "sharing": "all", "recipients": [],
               "payload": case_payload(rid), "occurred_at": "2025-03-01T08:00:00.000000Z",
               "owner": self.node_id}
        env.update(over)
        return sign(env, self.key)


def case_payload(rid: str) -> dict:
    return {"case_id": rid, "sharing": "all", "recipients": [], "unit_id": "x-unit",
            "unit_name": "某局", "title": "测试案例 %s" % rid, "category": "四风",
            "summary": "摘要", "facts": "事实", "analysis": "分析", "lessons": ["教训"],
            "tags": [], "revision": 1, "merged_contributions": []}


def deliver(node, *envelopes, raw: bytes | None = None) -> None:
    """Put messages on a node's qinglian.shared exchange, as a federation link does."""
    with Connection(node.local.amqp_uri) as conn:
        producer = Producer(conn.channel(), Exchange(SHARED_EXCHANGE, type="topic", durable=True))
        for env in envelopes:
            props = message_properties(env)
            producer.publish(json.dumps(env, ensure_ascii=False).encode("utf-8"),
                             routing_key=routing_key_for(env, "case"),
                             content_type="application/json", content_encoding="utf-8",
                             message_id=props["message_id"], delivery_mode=2)
        if raw is not None:
            producer.publish(raw, routing_key="case.district-x.Case.Published",
                             content_type="application/json", content_encoding="utf-8")


def counter(node, name: str, **labels) -> float:
    value = node.provider.metrics.registry.get_sample_value(
        name, dict(service="exchange", **labels))
    return value or 0.0


def rejected(node, origin: str, reason: str) -> float:
    return counter(node, "qinglian_federation_rejected_total", origin=origin, reason=reason)


def local_events(node, event_id: str) -> int:
    with node.runtime.engine.connect() as conn:
        return len(conn.execute(select(events.c.position).where(events.c.event_id == event_id)).all())


def watermark(node, origin: str) -> int:
    with node.runtime.engine.connect() as conn:
        return conn.execute(select(inbox.c.applied_through).where(inbox.c.origin == origin)).scalar() or 0


def test_same_message_twice_is_applied_once(network):
    city = network["city"]
    x = FakeOrigin(city, "district-dup")
    env = x.case(1)
    deliver(city, env, env)
    wait_for(lambda: counter(city, "qinglian_federation_duplicates_total", origin="district-dup") == 1,
             what="the duplicate to be counted")
    assert local_events(city, env["event_id"]) == 1
    assert watermark(city, "district-dup") == 1
    deliver(city, env)  # a link restart redelivering it later
    wait_for(lambda: counter(city, "qinglian_federation_duplicates_total", origin="district-dup") == 2,
             what="the late duplicate")
    assert local_events(city, env["event_id"]) == 1
    assert city.record("district-dup/case-1")["title"] == "测试案例 district-dup/case-1"


def test_reordered_messages_are_applied_in_origin_order(network):
    city = network["city"]
    x = FakeOrigin(city, "district-ord")
    one, two, three = x.case(1), x.case(2), x.case(3)
    deliver(city, three, two)
    wait_for(lambda: city.fed.sequencer.held_count("district-ord") == 2, what="3 and 2 held back")
    assert local_events(city, three["event_id"]) == 0  # nothing applied over a hole
    deliver(city, one)
    wait_for(lambda: watermark(city, "district-ord") == 3, what="1, 2, 3 applied")
    with city.runtime.engine.connect() as conn:
        positions = [conn.execute(select(events.c.position).where(events.c.event_id == e["event_id"]))
                     .scalar() for e in (one, two, three)]
    assert positions == sorted(positions)


def test_broken_signature_is_rejected_and_not_projected(network, caplog):
    city = network["city"]
    x = FakeOrigin(city, "district-sig")
    env = x.case(1)
    env["payload"] = dict(env["payload"], title="篡改后的标题")
    with caplog.at_level(logging.WARNING, logger="services.exchange.federation"):
        deliver(city, env)
        wait_for(lambda: rejected(city, "district-sig", "signature_invalid") == 1,
                 what="the rejection to be counted")
    assert local_events(city, env["event_id"]) == 0
    assert city.record("district-sig/case-1") is None
    assert watermark(city, "district-sig") == 0  # a forgery consumes no sequence number
    assert any("signature_invalid" in r.getMessage() and env["event_id"] in r.getMessage()
               for r in caplog.records)
    # the genuine message is still accepted afterwards
    deliver(city, x.case(1))
    wait_for(lambda: watermark(city, "district-sig") == 1, what="the genuine one")


def test_district_b_signing_as_district_a_is_rejected(network):
    city, b = network["city"], network["district-b"]
    b_key = load_node_key(b.local.config)
    before = watermark(city, "district-a")
    env = sign({"event_id": str(uuid.uuid4()), "origin": "district-a", "origin_seq": before + 1,
                "type": "Case.Published", "schema_version": 1, "sharing": "all", "recipients": [],
                "payload": case_payload("district-a/forged-case"),
                "occurred_at": "2025-03-01T08:00:00.000000Z", "owner": "district-a",
                "signer": "district-b"}, b_key)
    deliver(city, env)
    wait_for(lambda: rejected(city, "district-a", "signer_mismatch") == 1, what="signer_mismatch")
    assert city.record("district-a/forged-case") is None
    assert watermark(city, "district-a") == before
    assert city.fed.sequencer.held_count("district-a") == 0
    entry = [r for r in city.fed.recent_rejections if r["event_id"] == env["event_id"]][0]
    assert (entry["origin"], entry["signer"], entry["reason"]) == ("district-a", "district-b",
                                                                    "signer_mismatch")


def test_untrusted_node_is_rejected(network):
    city = network["city"]
    stranger = FakeOrigin(city, "district-unknown", trusted=False)
    env = stranger.case(1)
    deliver(city, env)
    # the metric label is "untrusted", not the name the stranger chose
    wait_for(lambda: rejected(city, "untrusted", "untrusted_node") >= 1, what="untrusted_node")
    assert city.record("district-unknown/case-1") is None
    assert watermark(city, "district-unknown") == 0


def test_record_owned_by_another_node_is_rejected(network):
    a, city = network["district-a"], network["city"]
    case = a.execute("compile_case", {
        "case_id": "owned-by-a", "unit_id": "a-xj", "title": "甲区原始案例", "category": "四风",
        "summary": "摘要", "facts": "事实", "analysis": "分析", "lessons": ["教训"],
        "share": {"sharing": "all", "recipients": []}})["case_id"]
    wait_for(lambda: city.record(case), what="district-a's case at the city")
    x = FakeOrigin(city, "district-own")
    # 1: a trusted node publishes "its" revision of district-a's case (its own envelope)
    hijack = x.case(1, owner_id="district-a", slug="owned-by-a")
    # 2: the envelope names district-a as owner while district-own publishes it
    claims = x.case(2, owner="district-a")
    deliver(city, hijack, claims)
    wait_for(lambda: rejected(city, "district-own", "not_owner") == 2, what="two not_owner")
    assert city.record(case)["title"] == "甲区原始案例"
    assert local_events(city, hijack["event_id"]) == local_events(city, claims["event_id"]) == 0
    # authentic, yet a message proves nothing about its number: neither is consumed (only
    # the origin's own feed may say a number holds a refused record), so the genuine
    # record district-own publishes under number 1 afterwards is applied
    assert watermark(city, "district-own") == 0
    with city.runtime.engine.connect() as conn:
        assert conn.execute(select(received.c.origin_seq)
                            .where(received.c.origin == "district-own")).all() == []
    genuine = x.case(1, slug="its-own-case")
    deliver(city, genuine)
    wait_for(lambda: watermark(city, "district-own") == 1, what="the genuine number 1")
    assert local_events(city, genuine["event_id"]) == 1


def test_garbage_and_contract_breaking_payloads_are_rejected(network):
    city = network["city"]
    x = FakeOrigin(city, "district-bad")
    deliver(city, raw=b"\xff not json")
    wait_for(lambda: rejected(city, "untrusted", "malformed") >= 1, what="malformed")
    # a field the contract does not have (a person's name, say) is refused, not stored
    env = x.case(1)
    env = sign(dict(env, payload=dict(env["payload"], person_name="张三")), x.key)
    deliver(city, env)
    wait_for(lambda: rejected(city, "district-bad", "invalid_payload") == 1, what="invalid_payload")
    assert city.record("district-bad/case-1") is None


@pytest.mark.parametrize("metric", ["qinglian_federation_rejected_total"])
def test_rejections_are_exposed_on_metrics(network, metric):
    body = network["city"].provider.metrics.expose().decode()
    assert metric in body and 'reason="signature_invalid"' in body
