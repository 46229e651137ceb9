"""Nothing private on the wire: every message that crosses between the three nodes is
captured (a tap bound to ``#`` on every federated exchange of every node's broker) while
a scenario touching every shared record kind runs - including figures published by
the supervision and education services with people, discipline records and evidence
files planted in them. None of it may show up in any message that crosses."""
from __future__ import annotations

import json

import jsonschema
import pytest
from kombu import Connection, Exchange, Queue

from services.exchange import contracts

from tests.harness import assert_nothing_after, wait_for
from tests.harness.exchange import send_marker
from services.exchange.tests.e2e.test_sharing import dispatch_supervision, unit_figures
from shared.errors import BadInput
from shared.federation.broker import EXCHANGES
from shared.federation.envelope import KeyRing, public_key_b64, verify
from shared.federation.keys import load_node_key

# field names that would mean a person, a discipline record or an evidence file crossed
PRIVATE_KEYS = {"person", "person_id", "person_name", "people", "name", "actor", "user_id",
                "discipline", "discipline_record", "discipline_records", "first_form", "talks",
                "evidence", "evidence_file", "evidence_files", "roles", "post"}
# values planted where private data lives; none may cross
SENTINELS = ("张三丰", "第一种形态谈话记录", "/evidence/", "rectification-evidence.pdf")


def keys_in(value, found=None) -> set:
    found = set() if found is None else found
    if isinstance(value, dict):
        for k, v in value.items():
            found.add(k)
            keys_in(v, found)
    elif isinstance(value, list):
        for v in value:
            keys_in(v, found)
    return found


class Capture:
    def __init__(self, nodes):
        self.conns, self.queues, self.bodies = [], [], []
        for node in nodes.values():
            conn = Connection(node.local.amqp_uri)
            channel = conn.channel()
            for name in EXCHANGES:
                q = Queue("", Exchange(name, type="topic", durable=True), routing_key="#",
                          exclusive=True, auto_delete=True)(channel)
                q.declare()
                self.queues.append(q)
            self.conns.append(conn)

    def drain(self) -> list[bytes]:
        for q in self.queues:
            while True:
                m = q.get(no_ack=True)
                if m is None:
                    break
                self.bodies.append(m.body)
        return self.bodies

    def close(self):
        for c in self.conns:
            c.release()


def seen(body, marker: bytes) -> bool:
    return marker in (body if isinstance(body, bytes) else body.encode("utf-8"))


def marker_of(rid: str) -> bytes:
    return rid.split("/")[1].encode()


@pytest.fixture
def capture(network):
    """The taps, once their bindings have travelled upstream like any other: a marker
    from every node (qinglian.shared) and a city-only one from each district
    (qinglian.city) has reached every node's exchanges it goes to - then what they
    captured is forgotten, the test's messages come after."""
    cap = Capture(network)
    shared = [marker_of(send_marker(n)) for n in network.values()]
    up = [marker_of(send_marker(n, "city")) for name, n in network.items() if name != "city"]

    def everywhere():
        bodies = cap.drain()
        return (all(sum(seen(x, m) for x in bodies) >= len(network) for m in shared)
                and all(sum(seen(x, m) for x in bodies) >= 2 for m in up))  # the district, the city
    wait_for(everywhere, what="the taps' markers on every node's exchanges")
    cap.bodies.clear()
    yield cap
    cap.close()


def test_nothing_private_crosses_nodes(network, capture):
    a, city, b = network["district-a"], network["city"], network["district-b"]
    # private data on the way in: the exchange service has no field to put it in
    for bad in ({"person_name": "张三丰"}, {"evidence_files": ["/evidence/x.pdf"]}):
        with pytest.raises(BadInput):
            a.execute("compile_case", dict({
                "unit_id": "a-xj", "title": "t", "category": "c", "summary": "s", "facts": "f",
                "analysis": "a", "lessons": ["l"]}, **bad))
    # figures from other services, with private fields planted in them
    planted = dict(unit_figures("a-xj", 0.8, 2), person_name="张三丰",
                   discipline_records=[{"person": "张三丰", "form": "第一种形态谈话记录"}],
                   evidence_files=["/evidence/rectification-evidence.pdf"])
    dispatch_supervision(a, "UnitIndicators.Published", planted)
    dispatch_supervision(b, "DistrictIndicators.Published", {
        "unit_id": "b-gw", "as_of": "2025-03-31", "units": 3, "findings_total": 4,
        "rectifications_closed": 4, "closure_rate": 1.0, "timeliness_rate": 1.0,
        "overdue_count": 0, "escalated_to_city": 0, "risk_high": 0, "risk_medium": 1,
        "risk_low": 2, "screening_on_time_rate": 1.0, "screening_overdue_units": 0,
        "micro_power_missing_units": 0, "people": ["张三丰"]})

    # every record kind, every sharing level
    case = a.execute("compile_case", {
        "case_id": "wire-case", "unit_id": "a-window", "title": "窗口案例", "category": "四风",
        "summary": "s", "facts": "f", "analysis": "a", "lessons": ["l"],
        "share": {"sharing": "all", "recipients": []}})["case_id"]
    wait_for(lambda: city.record(case), what="the case at the city")
    kid = city.execute("contribute_to_case", {"case_id": case, "contribution_type": "local_lesson",
                                             "text": "市级经验"})["contribution_id"]
    wait_for(lambda: a.record(case)["sub_records"].get("contribution"), what="contribution")
    a.execute("revise_case", {"case_id": case, "merge_contributions": [kid], "note": "合并"})
    prob = a.execute("post_problem", {"problem_id": "wire-prob", "unit_id": "a-gw", "title": "t",
                                      "context": "c", "deadline": "2031-12-31",
                                      "share": {"sharing": "named", "recipients": ["district-b"]}})["problem_id"]
    wait_for(lambda: b.record(prob), what="the named problem at district-b")
    b.execute("propose_solution", {"problem_id": prob, "summary": "s", "detail": "d"})
    a.execute("post_problem", {"problem_id": "wire-city", "unit_id": "a-gw", "title": "t",
                               "context": "c", "deadline": "2031-12-31",
                               "share": {"sharing": "city", "recipients": []}})
    a.execute("post_problem", {"problem_id": "wire-node", "unit_id": "a-gw", "title": "仅本节点",
                               "context": "c", "deadline": "2031-12-31",
                               "share": {"sharing": "node", "recipients": []}})
    b.execute("nominate_exemplar", {"exemplar_id": "wire-ex", "unit_id": "b-xj",
                                    "category": "window", "title": "t", "description": "d",
                                    "indicators": {"k": 1}, "period": "2025-03",
                                    "share": {"sharing": "all", "recipients": []}})
    wait_for(lambda: len(city.query("compare_indicators", {"period": "2025-03"})["districts"]) >= 1
             and any(u["unit_id"] == "a-xj" and u["values"].get("closure_rate") == 0.8
                     for u in city.query("compare_indicators", {"period": "2025-03"})["units"]),
             what="the planted figures at the city")
    # each node's marker, once on every node's exchanges, comes after all it sent before
    markers = [marker_of(send_marker(n)) for n in (a, city, b)]
    assert_nothing_after(lambda: all(sum(seen(x, m) for x in capture.drain()) >= len(network)
                                     for m in markers),
                         what="every node's marker on every node's exchanges")
    bodies = [x for x in capture.drain() if not any(seen(x, m) for m in markers)]
    assert len(bodies) > 20

    from shared.contracts import load_all_event_types
    private_types = {t for t, cls in load_all_event_types().items() if cls.private}
    assert "Person.Registered" in private_types  # the check below means something
    ring = KeyRing({n: public_key_b64(load_node_key(node.local.config)) for n, node in network.items()})
    envelope_contract = jsonschema.Draft202012Validator(json.loads(contracts.ENVELOPE.read_text()))
    types = set()
    for body in bodies:
        text = body if isinstance(body, str) else body.decode("utf-8")
        for sentinel in SENTINELS:
            assert sentinel not in text, "%r crossed: %s" % (sentinel, text[:300])
        env = json.loads(text)
        verify(env, ring)  # every crossing message is a signed envelope from a node
        envelope_contract.validate(env)  # ... as contracts/federation describes it
        jsonschema.Draft202012Validator(json.loads(
            (contracts.ROOT / "events" / ("%s.v1.schema.json" % env["type"])).read_text())
        ).validate(env["payload"])
        assert env["sharing"] != "node"
        assert env["type"] not in private_types
        leaked = keys_in(env["payload"]) & PRIVATE_KEYS
        assert not leaked, "%s carries %s" % (env["type"], leaked)
        assert "仅本节点" not in text
        types.add(env["type"])
    assert {"Case.Published", "Contribution.Added", "Case.Revised", "JointProblem.Published",
            "Proposal.Submitted", "IndicatorReport.Recorded", "Exemplar.Published"} <= types
    assert types <= set(contracts.shared_event_types())  # nothing the AsyncAPI does not list
