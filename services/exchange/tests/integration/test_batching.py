"""The receive path's BatchWriter builds exactly the read models the kernel's
LiveWriter builds from the same events (it only writes them with fewer statements)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from services.exchange.federation import outbox
from services.exchange.projections import indicator_values, record_tags, records, subs
from services.exchange.tests.integration.test_commands import Solo, seed
from shared.auth import Actor
from shared.events import NewEvent
from shared.db import create_database, drop_database
from shared.federation.envelope import public_key_b64
from tests.fixtures import PG_SERVER

TABLES = (records, record_tags, subs, indicator_values)


def busy_district(tmp_path) -> Solo:
    """district-a with every kind of record and most of what can happen to one."""
    a = Solo(tmp_path / "a")
    ids = seed(a)
    run = a.run
    run("post_comment", {"parent_kind": "case", "parent_id": ids["case"], "text": "自评"})
    run("revise_case", {"case_id": ids["case"], "title": "案例（修订）", "tags": ["新标签"], "note": "n"})
    run("edit_experience", {"experience_id": ids["experience"], "topics": ["改"]})
    run("mark_learned", {"experience_id": ids["experience"], "unit_id": "a-window", "note": "n"})
    run("sign_up", {"activity_id": ids["activity"], "unit_id": "a-xj", "headcount": 5})
    run("change_headcount", {"activity_id": ids["activity"], "unit_id": "a-xj", "headcount": 7})
    run("sign_up", {"activity_id": ids["activity"], "unit_id": "a-window", "headcount": 2})
    run("withdraw_sign_up", {"activity_id": ids["activity"], "unit_id": "a-window", "reason": "r"})
    run("record_attendance", {"activity_id": ids["activity"], "units": [{"unit_id": "a-xj", "attendees": 6}]})
    run("record_attendance", {"activity_id": ids["activity"], "units": [{"unit_id": "a-xj", "attendees": 7}]})
    run("reschedule_activity", {"activity_id": ids["activity"], "starts_at": "2025-06-21T09:00:00+08:00",
                                "ends_at": "2025-06-21T11:00:00+08:00", "location": "新地点", "note": "n"})
    run("report_outcome", {"activity_id": ids["activity"], "summary": "s", "results": ["r"]})
    run("update_exemplar_indicators", {"exemplar_id": ids["exemplar"], "indicators": {"k": 2}, "period": "2025"})
    pid = run("propose_solution", {"problem_id": ids["problem"], "summary": "s", "detail": "d"})["proposal_id"]
    run("post_comment", {"parent_kind": "proposal", "parent_id": pid, "text": "讨论"})
    run("extend_problem_deadline", {"problem_id": ids["problem"], "deadline": "2032-03-31", "reason": "r"})
    run("accept_proposal", {"problem_id": ids["problem"], "proposal_id": pid, "note": "n"})
    run("record_resolution", {"problem_id": ids["problem"], "summary": "s", "results": ["r"],
                              "resolved_on": "2025-08-01"})
    run("share_record", {"kind": "experience", "record_id": ids["experience"], "sharing": "city"})
    run("withdraw_record", {"kind": "exemplar", "record_id": ids["exemplar"], "reason": "r"})
    run("share_record", {"kind": "exemplar", "record_id": ids["exemplar"], "sharing": "all"})
    return a


def dump(solo) -> dict:
    with solo.rt.read() as conn:
        return {t.name: sorted(json.dumps(dict(r), sort_keys=True, default=str)
                               for r in conn.execute(select(t)).mappings()) for t in TABLES}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request):
    """(batch, live) exchange database URLs; on PostgreSQL the bulk inserts take another
    path (shared.batching.insert_rows)."""
    if request.param == "sqlite":
        yield None, None
        return
    urls = [create_database(PG_SERVER) for _ in range(2)]
    try:
        yield urls
    finally:
        for url in urls:
            drop_database(url)


def test_batch_writer_builds_what_the_live_writer_builds(tmp_path, two_databases):
    batch_url, live_url = two_databases
    a = busy_district(tmp_path)
    with a.rt.read() as conn:
        envelopes = [r[0] for r in
                     conn.execute(select(outbox.c.envelope).order_by(outbox.c.origin_seq))]
    assert len({e["type"] for e in envelopes}) >= 20

    # the city applies them as a received batch (BatchWriter) ...
    batch = Solo(tmp_path / "batch", node_id="city", level="city", parent=None, url=batch_url)
    batch.registry.trust("district-a", "district", "city", public_key_b64(a.keys["district-a"]),
                         replace=True)
    batch.fed.load_state()
    # and it really is the BatchWriter at work: hardly any row goes through LiveWriter
    from shared.projections import LiveWriter
    live_inserts = []
    original = LiveWriter.insert
    LiveWriter.insert = lambda self, table, **values: (live_inserts.append(table.name),
                                                        original(self, table, **values))
    try:
        batch.fed._apply("district-a", 0, [(e["origin_seq"], e, None) for e in envelopes],
                         envelopes[-1]["origin_seq"], "feed")
    finally:
        LiveWriter.insert = original
    assert len(live_inserts) < len(envelopes) / 4, live_inserts
    # ... and one by one through the kernel's inline path (LiveWriter)
    live = Solo(tmp_path / "live", node_id="city", level="city", parent=None, url=live_url)
    versions: dict[str, int] = {}
    for e in envelopes:
        from services.exchange.domain import aggregate_of
        agg = aggregate_of(e["type"])
        sid = agg.stream_id_for(e["payload"][agg.id_field])
        versions[sid] = versions.get(sid, 0) + 1
        with live.rt.unit_of_work(Actor("x", ("node-admin",), None, "city")) as uow:
            uow.append_events([NewEvent(
                sid, agg.stream_type, versions[sid], e["type"], 1, e["payload"],
                {"node": "district-a", "correlation_id": e["event_id"], "occurred_at": e["occurred_at"]},
                event_id=e["event_id"])])

    got, want = dump(batch), dump(live)
    assert got == want
    from services.exchange.federation import received
    with batch.rt.read() as conn:
        kept = conn.execute(select(received.c.origin_seq, received.c.outcome, received.c.position)
                            .order_by(received.c.origin_seq)).all()
    assert [(s, o) for s, o, _p in kept] == [(e["origin_seq"], "applied") for e in envelopes]
    assert all(p is not None for _s, _o, p in kept)
    assert len(want["shared_records"]) == 5 and len(want["sub_records"]) >= 6


def test_received_payloads_pass_the_compiled_contracts_like_jsonschema(tmp_path):
    """The compiled checker agrees with jsonschema on every real payload, and on each
    with a field added, one removed and one of the wrong type."""
    import jsonschema

    from services.exchange.federation import CONTRACTS, _contract
    a = busy_district(tmp_path)
    with a.rt.read() as conn:
        envelopes = [r[0] for r in conn.execute(select(outbox.c.envelope))]
    for env in envelopes:
        schema = json.loads((CONTRACTS / ("%s.v1.schema.json" % env["type"])).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        check = _contract(env["type"], 1)
        p = env["payload"]
        variants = [p, dict(p, person_name="张三"), {k: v for k, v in list(p.items())[1:]},
                    dict(p, sharing=7), dict(p, recipients="city")]
        for v in variants:
            assert (check(v) is None) == validator.is_valid(v), (env["type"], v, check(v))
        assert check(p) is None


def test_records_arriving_a_few_milliseconds_apart_are_taken_in_one_batch(vhost):
    """The inbox consumer gathers what arrives within ``gather`` of a first message into
    one batch (one transaction), not only what is already waiting: three messages 10 ms
    apart are one batch; one sent after the window is the next."""
    import time
    from types import SimpleNamespace

    import eventlet

    from kombu import Connection, Exchange

    from services.exchange.federation import InboxConsumer
    from shared.federation.broker import SHARED_EXCHANGE
    uri = vhost["uri"]
    fed = SimpleNamespace(node_id="city", level="city", metrics=None)
    consumer = InboxConsumer(fed, uri, gather=1.0)
    consumer._connect()
    try:
        with Connection(uri) as conn:
            producer = conn.Producer(exchange=Exchange(SHARED_EXCHANGE, type="topic", durable=True))

            def send(*bodies):
                for body in bodies:
                    producer.publish(body, routing_key="experience.district-a.x")
                    time.sleep(0.01)
            # sent while the consumer waits (none is there before it starts)
            sending = eventlet.spawn(send, b"m0", b"m1", b"m2")
            first = consumer._drain()
            sending.wait()
            eventlet.spawn(send, b"late").wait()
            second = consumer._drain()
        assert [m.body for m in first] == [b"m0", b"m1", b"m2"]
        assert [m.body for m in second] == [b"late"]
    finally:
        consumer.close()
