"""Commands on one node, without a broker: input validation, ownership and visibility
rules, the outbox, the feed. Bad input to every command gets a clear error and writes
nothing (no event, no outbox row)."""
from __future__ import annotations

import json

import jsonschema
import pytest
from sqlalchemy import func, select

from services.exchange.application import app
from services.exchange.federation import (
    Federation, OutboxPublisher, metadata as fed_metadata, outbox, write_identity,
)
from tests.harness.exchange import UNITS
from shared.auth import Actor
from shared.db import make_engine
from shared.errors import BadInput, Forbidden, NotFound, QinglianError, RuleViolation
from shared.events import StoredEvent
from shared.federation.envelope import generate_keypair, public_key_b64
from shared.federation.feed import FeedRefused, request_headers, verify_page
from shared.federation.registry import NodeRegistry
from shared.unittree import record_unit_event
from shared.uow import Runtime

ADMIN = Actor("admin", ("node-admin",), None, "district-a")


class Solo:
    """district-a's exchange service state, in-process, no nameko, no broker."""

    def __init__(self, tmp_path, node_id="district-a", level="district", parent="city",
                 url=None):
        from services.exchange.application import app as application
        self.keys = {n: generate_keypair()[0] for n in ("city", "district-a", "district-b")}
        self.registry = NodeRegistry(make_engine("sqlite:///%s" % (tmp_path / "node.db")))
        for n, key in self.keys.items():
            self.registry.trust(n, "city" if n == "city" else "district",
                                None if n == "city" else "city", public_key_b64(key),
                                "http://127.0.0.1:1/feed")
        self.registry.set_this_node(node_id)
        engine = make_engine(url or "sqlite:///%s" % (tmp_path / "exchange.db"))
        self.rt = Runtime(engine, application.projections, node_id, "exchange")
        self.rt.create_schema()
        fed_metadata.create_all(engine)
        self.fed = Federation(self.rt, node_id, level, parent, self.keys[node_id], self.registry)
        self.rt.ext.federation = self.fed  # as the service's extension is
        write_identity(engine, node_id, level, "city")
        for uid, name, kind, lvl, par in UNITS[node_id]:
            with self.rt.unit_of_work(ADMIN) as uow:
                record_unit_event(uow, StoredEvent(0, "u-%s" % uid, "Unit:%s" % uid, "Unit", 1,
                                                   "Unit.Registered", 1,
                                                   {"unit_id": uid, "name": name, "kind": kind,
                                                    "level": lvl, "parent_id": par}, {}, 0))

    def run(self, name, data, actor=ADMIN):
        return app.execute(self.rt, name, data, actor)

    def query(self, name, params=None, actor=ADMIN):
        return app.run_query(self.rt, name, params or {}, actor)

    def heads(self):
        with self.rt.read() as conn:
            return (self.rt.store.head(conn),
                    conn.execute(select(func.count()).select_from(outbox)).scalar())


@pytest.fixture
def solo(tmp_path):
    return Solo(tmp_path)


SHARE_ALL = {"sharing": "all", "recipients": []}


def seed(solo):
    """One published record of each kind owned by district-a."""
    out = {}
    out["case"] = solo.run("compile_case", {"case_id": "c1", "unit_id": "a-xj", "title": "案例",
                                            "category": "四风", "summary": "s", "facts": "f",
                                            "analysis": "a", "lessons": ["l"], "share": SHARE_ALL})["case_id"]
    out["problem"] = solo.run("post_problem", {"problem_id": "p1", "unit_id": "a-gw", "title": "t",
                                               "context": "c", "deadline": "2031-12-31",
                                               "share": SHARE_ALL})["problem_id"]
    out["activity"] = solo.run("plan_activity", {
        "activity_id": "act1", "unit_id": "a-gw", "title": "t", "theme": "警示教育",
        "description": "d", "starts_at": "2025-06-20T09:00:00+08:00",
        "ends_at": "2025-06-20T11:00:00+08:00", "location": "l", "share": SHARE_ALL})["activity_id"]
    out["experience"] = solo.run("draft_experience", {
        "experience_id": "e1", "unit_id": "a-xj", "title": "t", "summary": "s", "body": "b",
        "business_type": "x", "share": SHARE_ALL})["experience_id"]
    out["exemplar"] = solo.run("nominate_exemplar", {
        "exemplar_id": "x1", "unit_id": "a-xj", "category": "practice", "title": "t",
        "description": "d", "indicators": {"k": 1}, "period": "2025", "share": SHARE_ALL})["exemplar_id"]
    return out


# -- bad input: every command ------------------------------------------------------------
# Well-formed but wrong: a record that does not exist, another node's record, a state
# that does not allow it. One entry per command (the test checks none is missing).
def wrong_but_well_formed(ids):
    other = "district-b/not-here"
    return {
        "share_record": {"kind": "case", "record_id": other, "sharing": "all"},
        "withdraw_record": {"kind": "case", "record_id": "district-a/nope", "reason": "r"},
        "draft_experience": {"experience_id": "e1", "unit_id": "a-xj", "title": "t", "summary": "s",
                             "body": "b", "business_type": "x"},  # id taken
        "edit_experience": {"experience_id": ids["experience"]},  # changes nothing
        "mark_learned": {"experience_id": other, "unit_id": "a-xj", "note": "n"},
        "post_comment": {"parent_kind": "case", "parent_id": other, "text": "t"},
        "compile_case": {"unit_id": "no-such-unit", "title": "t", "category": "c", "summary": "s",
                         "facts": "f", "analysis": "a", "lessons": ["l"]},
        "revise_case": {"case_id": ids["case"], "note": "n", "merge_contributions": ["city/k9"]},
        "contribute_to_case": {"case_id": ids["case"], "contribution_type": "analysis",
                               "text": "own case"},  # the owner revises, it does not contribute
        "plan_activity": {"unit_id": "a-gw", "title": "t", "theme": "x", "description": "d",
                          "starts_at": "2025-06-20T11:00:00+08:00",
                          "ends_at": "2025-06-20T09:00:00+08:00", "location": "l"},  # ends first
        "reschedule_activity": {"activity_id": other, "starts_at": "2025-06-20T09:00:00Z",
                                "ends_at": "2025-06-20T10:00:00Z", "location": "l", "note": "n"},
        "sign_up": {"activity_id": ids["activity"], "unit_id": "no-such-unit", "headcount": 3},
        "change_headcount": {"activity_id": ids["activity"], "unit_id": "a-xj", "headcount": 3},
        "withdraw_sign_up": {"activity_id": ids["activity"], "unit_id": "a-xj", "reason": "r"},
        "record_attendance": {"activity_id": other, "units": [{"unit_id": "a-xj", "attendees": 1}]},
        "report_outcome": {"activity_id": other, "summary": "s", "results": ["r"]},
        "cancel_activity": {"activity_id": other, "reason": "r"},
        "nominate_exemplar": {"unit_id": "a-xj", "category": "practice", "title": "t",
                              "description": "d", "indicators": {"k": 1}, "period": "2025",
                              "share": {"sharing": "named", "recipients": ["district-zz"]}},
        "update_exemplar_indicators": {"exemplar_id": ids["exemplar"], "indicators": {"k": 1},
                                       "period": "2025"},  # unchanged
        "endorse_exemplar": {"exemplar_id": ids["exemplar"], "comment": "own"},
        "post_problem": {"problem_id": "p1", "unit_id": "a-gw", "title": "t", "context": "c",
                         "deadline": "2031-12-31"},  # id taken
        "extend_problem_deadline": {"problem_id": ids["problem"], "deadline": "2031-01-01",
                                    "reason": "earlier"},
        "propose_solution": {"problem_id": other, "summary": "s", "detail": "d"},
        "accept_proposal": {"problem_id": ids["problem"], "proposal_id": "city/no-such", "note": "n"},
        "record_resolution": {"problem_id": ids["problem"], "summary": "s", "results": ["r"],
                              "resolved_on": "2025-08-01"},  # nothing accepted yet
        "follow_up_escalation": {"case_id": other, "unit_id": "a-gw", "action": "phone",
                                 "note": "n"},  # no such case here
    }


def test_bad_input_to_every_command_is_refused_and_writes_nothing(solo):
    ids = seed(solo)
    cases = wrong_but_well_formed(ids)
    assert set(cases) == set(app.commands()), "a command without a bad-input case"
    for name in app.commands():
        before = solo.heads()
        for data in (None, "not an object", [], {}, {"person_name": "张三"}):
            if data is None:
                continue
            with pytest.raises(BadInput) as refused:
                solo.run(name, data)
            assert refused.value.message and refused.value.fields, (name, data)
        with pytest.raises(QinglianError) as refused:
            solo.run(name, cases[name])
        assert refused.value.status in (400, 403, 404, 409), (name, refused.value)
        assert refused.value.message, name
        assert solo.heads() == before, "%s wrote something on bad input" % name


def test_unknown_fields_are_named_in_the_error(solo):
    with pytest.raises(BadInput) as refused:
        solo.run("post_problem", {"unit_id": "a-gw", "title": "t", "context": "c",
                                  "deadline": "2031-12-31", "person_name": "张三"})
    assert "person_name" in refused.value.fields


def test_a_comment_on_an_escalated_case_is_refused_by_the_schema(solo):
    # 督办件 take the city's follow-ups (follow_up_escalation), not comments: the schema
    # offers exactly the parent kinds Comment.Posted declares, so this is a field error.
    seed(solo)
    before = solo.heads()
    with pytest.raises(BadInput) as refused:
        solo.run("post_comment", {"parent_kind": "escalation", "parent_id": "city/case-1",
                                  "text": "t"})
    assert "parent_kind" in refused.value.fields
    assert solo.heads() == before


def test_only_the_owner_changes_a_record(tmp_path):
    a = Solo(tmp_path / "a")
    ids = seed(a)
    b = Solo(tmp_path / "b", node_id="district-b")
    # district-b holds a replica (as the federation would have put it there)
    with a.rt.read() as conn:
        rows = a.rt.store.read_all(conn)
    with b.rt.unit_of_work(ADMIN) as uow:
        from shared.events import NewEvent
        from shared.projections import apply_inline
        shared_rows = [e for e in rows if e.stream_type == "Case" and e.payload["sharing"] != "node"]
        stored = b.rt.store.append(uow.conn, [NewEvent(e.stream_id, e.stream_type, i + 1, e.event_type,
                                                       1, e.payload, {"node": "district-a"}, e.event_id)
                                              for i, e in enumerate(shared_rows)])
        apply_inline(b.rt.store, uow.conn, b.rt.projections, stored, b.rt.inline_checkpoint)
    actor_b = Actor("admin", ("node-admin",), None, "district-b")
    with pytest.raises(Forbidden) as refused:
        b.run("revise_case", {"case_id": ids["case"], "title": "x", "note": "n"}, actor_b)
    assert "补充内容" in refused.value.message
    for cmd, data in (("withdraw_record", {"kind": "case", "record_id": ids["case"], "reason": "r"}),
                      ("share_record", {"kind": "case", "record_id": ids["case"], "sharing": "city"})):
        with pytest.raises(Forbidden):
            b.run(cmd, data, actor_b)
    # what district-b can do: contribute, which is its own record
    k = b.run("contribute_to_case", {"case_id": ids["case"], "contribution_type": "analysis",
                                     "text": "乙区分析"}, actor_b)
    assert k["contribution_id"].startswith("district-b/")


def test_unit_admin_acts_only_in_its_subtree(solo):
    ids = seed(solo)
    unit_admin = Actor("ua", ("unit-admin",), "a-window", "district-a")
    with pytest.raises(Forbidden):
        solo.run("compile_case", {"unit_id": "a-xj", "title": "t", "category": "c", "summary": "s",
                                  "facts": "f", "analysis": "a", "lessons": ["l"]}, unit_admin)
    solo.run("compile_case", {"unit_id": "a-window", "title": "t", "category": "c", "summary": "s",
                              "facts": "f", "analysis": "a", "lessons": ["l"]}, unit_admin)
    viewer = Actor("v", ("viewer",), None, "district-a")
    with pytest.raises(Forbidden):
        solo.run("withdraw_record", {"kind": "case", "record_id": ids["case"], "reason": "r"}, viewer)
    assert solo.query("shared_feed", {}, viewer)["items"]


# -- only published items leave; node-level never --------------------------------------
def outbox_rows(solo):
    with solo.rt.read() as conn:
        return conn.execute(select(outbox).order_by(outbox.c.origin_seq)).all()


def test_drafts_and_node_level_records_are_never_staged(solo):
    solo.run("compile_case", {"case_id": "draft", "unit_id": "a-xj", "title": "t", "category": "c",
                              "summary": "s", "facts": "f", "analysis": "a", "lessons": ["l"]})
    solo.run("post_problem", {"problem_id": "local", "unit_id": "a-gw", "title": "t", "context": "c",
                              "deadline": "2031-12-31", "share": {"sharing": "node", "recipients": []}})
    assert outbox_rows(solo) == []
    solo.run("share_record", {"kind": "case", "record_id": "district-a/draft", "sharing": "city"})
    rows = outbox_rows(solo)
    assert [(r.origin_seq, r.event_type, r.sharing, r.exchange) for r in rows] == [
        (1, "Case.Published", "city", "qinglian.city")]
    assert rows[0].routing_keys == ["case.district-a.Case.Published"]


def test_origin_sequence_is_gap_free_and_in_log_order(solo):
    seed(solo)
    rows = outbox_rows(solo)
    assert [r.origin_seq for r in rows] == list(range(1, len(rows) + 1))
    assert [r.position for r in rows] == sorted(r.position for r in rows)
    # a command that fails takes its numbers with it
    with pytest.raises(RuleViolation):
        solo.run("record_resolution", {"problem_id": "district-a/p1", "summary": "s",
                                       "results": ["r"], "resolved_on": "2025-08-01"})
    solo.run("extend_problem_deadline", {"problem_id": "district-a/p1", "deadline": "2032-01-31",
                                         "reason": "r"})
    assert [r.origin_seq for r in outbox_rows(solo)] == list(range(1, len(rows) + 2))


def test_publisher_refuses_a_node_level_row(solo):
    seed(solo)
    with solo.rt.engine.begin() as conn:
        good = conn.execute(select(outbox).order_by(outbox.c.origin_seq.desc())).first()
        conn.execute(outbox.insert().values(dict(good._mapping, origin_seq=good.origin_seq + 1,
                                                 sharing="node")))
    sent = []

    class FakeProducer:
        channel = type("C", (), {"tx_commit": lambda self: sent.append("commit")})()

        def publish(self, body, **kw):
            sent.append(kw["routing_key"])

    publisher = OutboxPublisher(solo.fed, "amqp://unused")
    publisher._producer = FakeProducer()
    publisher.batch_size = 1000
    with pytest.raises(RuntimeError, match="refusing"):
        publisher.run_once()
    assert "commit" not in sent  # nothing of the batch was committed to the broker


def test_every_payload_matches_its_contract(solo):
    seed(solo)
    from pathlib import Path
    contracts = Path(__file__).resolve().parents[4] / "contracts" / "events"
    with solo.rt.read() as conn:
        stored = solo.rt.store.read_all(conn, limit=10_000)
    checked = 0
    for e in stored:
        if e.stream_type == "UnitMirror":
            continue
        schema = json.loads((contracts / ("%s.v%d.schema.json" % (e.event_type, e.schema_version)))
                            .read_text(encoding="utf-8"))
        jsonschema.validate(e.payload, schema, format_checker=jsonschema.FormatChecker())
        checked += 1
    assert checked >= 10


# -- the feed ---------------------------------------------------------------------------
def test_feed_serves_each_node_what_it_may_see(solo):
    for slug, sharing, rec in (("p-all", "all", []), ("p-city", "city", []),
                               ("p-named", "named", ["district-b"])):
        solo.run("post_problem", {"problem_id": slug, "unit_id": "a-gw", "title": "t", "context": "c",
                                  "deadline": "2031-12-31", "share": {"sharing": sharing,
                                                                      "recipients": rec}})
    for requester, expected in (("city", [1, 2]), ("district-b", [1, 3])):
        headers = request_headers(solo.keys[requester], requester, "district-a", 0, 1000)
        page = verify_page(json.loads(solo.fed.feed_page(headers, {"after": "0", "limit": "1000"})),
                           "district-a", requester, 0, solo.registry)
        assert [e["origin_seq"] for e in page.entries] == expected
        assert (page.through, page.head) == (3, 3)  # the skipped number is closed too
    # paging: one number per page
    headers = request_headers(solo.keys["city"], "city", "district-a", 1, 1)
    page = verify_page(json.loads(solo.fed.feed_page(headers, {"after": "1", "limit": "1"})),
                       "district-a", "city", 1, solo.registry)
    assert [e["origin_seq"] for e in page.entries] == [2] and page.through == 2 and not page.complete


def test_feed_refuses_strangers_and_forged_requests(solo):
    with pytest.raises(FeedRefused) as refused:
        solo.fed.feed_page({}, {"after": "0"})
    assert refused.value.status == 401
    stranger, _ = generate_keypair()
    with pytest.raises(FeedRefused) as refused:
        solo.fed.feed_page(request_headers(stranger, "district-x", "district-a", 0, 1000),
                           {"after": "0", "limit": "1000"})
    assert refused.value.status == 403
    # district-b's key, signing as the city
    with pytest.raises(FeedRefused) as refused:
        solo.fed.feed_page(request_headers(solo.keys["district-b"], "city", "district-a", 0, 1000),
                           {"after": "0", "limit": "1000"})
    assert refused.value.status == 401
    # signed for after=0, replayed for after=5
    with pytest.raises(FeedRefused):
        solo.fed.feed_page(request_headers(solo.keys["city"], "city", "district-a", 0, 1000),
                           {"after": "5", "limit": "1000"})
    with pytest.raises(ValueError):
        solo.fed.feed_page({}, {"after": "-1"})


def test_a_tampered_page_is_refused(solo):
    from shared.federation.feed import FeedPageInvalid
    seed(solo)
    headers = request_headers(solo.keys["city"], "city", "district-a", 0, 1000)
    body = json.loads(solo.fed.feed_page(headers, {"after": "0", "limit": "1000"}))
    for forged in (dict(body, through=body["through"] + 100, head=body["head"] + 100),
                   dict(body, entries=body["entries"][1:]),
                   dict(body, requester="district-b")):
        with pytest.raises(FeedPageInvalid):
            verify_page(forged, "district-a", "city", 0, solo.registry)


def test_the_feed_vouches_only_for_entries_that_verify_under_its_key(solo):
    """A vouched page (shared.federation.feed) spares the receiver the entries'
    signature checks, so the origin vouches only for texts it signed or verified: an
    outbox row altered in its database since is checked, fails, and the page goes out
    unvouched - the receiver then checks each entry and refuses the altered one."""
    from shared.federation.envelope import SignatureInvalid, verify
    from shared.federation.feed import parse_page
    seed(solo)

    def page(fed):
        headers = request_headers(solo.keys["city"], "city", "district-a", 0, 1000)
        body, raw = parse_page(fed.feed_page(headers, {"after": "0", "limit": "1000"}))
        return verify_page(body, "district-a", "city", 0, solo.registry, raw)
    import hashlib

    from services.exchange.federation import wire
    with solo.rt.read() as conn:  # signed by this process: known by the digest of its text
        texts = dict(conn.execute(select(outbox.c.origin_seq, wire(outbox.c.envelope))).all())
    assert texts and {seq: hashlib.blake2b(t.encode(), digest_size=16).digest()
                      for seq, t in texts.items()} == dict(solo.fed._verified)
    assert page(solo.fed).vouched
    restarted = Federation(solo.rt, "district-a", "district", "city", solo.keys["district-a"],
                           solo.registry)
    assert page(restarted).vouched and restarted._verified  # verified once, remembered
    with solo.rt.engine.begin() as conn:
        row = conn.execute(select(outbox).where(outbox.c.origin_seq == 2)).first()
        env = dict(row.envelope, payload=dict(row.envelope["payload"], title="篡改后的标题"))
        conn.execute(outbox.update().where(outbox.c.origin_seq == 2).values(envelope=env))
    for fed in (solo.fed, restarted):
        got = page(fed)
        assert not got.vouched
        with pytest.raises(SignatureInvalid):
            verify(got.entries[1], solo.registry)


def test_queries_reject_bad_parameters(solo):
    for name, params in (("shared_feed", {"limit": "0"}), ("shared_feed", {"kind": "person"}),
                         ("get_record", {}), ("compare_indicators", {"period": "March"})):
        with pytest.raises(BadInput):
            solo.query(name, params)
    with pytest.raises(NotFound):
        solo.query("get_record", {"record_id": "city/none"})


def test_resigning_the_outbox_after_a_key_rotation(solo):
    from services.exchange.federation import resign_outbox
    from shared.federation.envelope import KeyRing, SignatureInvalid, verify
    seed(solo)
    new_key, _ = generate_keypair()
    with solo.rt.read() as conn:
        before = [r.envelope for r in conn.execute(select(outbox).order_by(outbox.c.origin_seq))]
    ring = KeyRing({"district-a": new_key.public_key()})
    with pytest.raises(SignatureInvalid):
        verify(before[0], ring)
    assert resign_outbox(solo.rt.engine, new_key, "district-a", batch=2) == len(before)
    with solo.rt.read() as conn:
        after = [r.envelope for r in conn.execute(select(outbox).order_by(outbox.c.origin_seq))]
    for old, new in zip(before, after):
        verify(new, ring)
        assert {k: v for k, v in old.items() if k != "signature"} == \
            {k: v for k, v in new.items() if k != "signature"}
