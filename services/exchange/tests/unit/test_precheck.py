"""A feed page's content checks made ahead in the prefetch's native thread
(``federation.precheck``) give what the applying thread's own checks give: the entry's
aggregate and stream, or the same rejection."""
import uuid

from services.exchange.domain import Experience
from services.exchange.federation import InvalidPayload, NotOwner, content_verdict, precheck


def _published(origin: str = "city", rid: str = "city/day-00001") -> dict:
    exp = Experience.draft(rid, {
        "unit_id": "city-u01", "unit_name": "单位01", "title": "一天里的经验",
        "summary": "聚焦主责主业。", "body": "台账规范、流程公开。", "business_type": "示范点建设",
        "topics": ["示范点"], "attachments": []})
    exp.share("all", [])
    ev = [e for e in exp.collect_events() if e.event_type == "Experience.Published"][0]
    return {"event_id": str(uuid.uuid4()), "origin": origin, "origin_seq": 1,
            "type": ev.event_type, "schema_version": ev.schema_version, "payload": ev.data(),
            "sharing": "all", "recipients": []}


def test_a_valid_entry_gets_its_stream():
    env = _published()
    verdicts = precheck([(env, None)])
    assert verdicts[id(env)] == content_verdict(env)
    agg, stream_id, parent = verdicts[id(env)]
    assert stream_id == agg.stream_id_for("city/day-00001") and parent is None


def test_a_refused_entry_gets_the_rejection_the_applying_would_raise():
    bad = _published()
    bad["payload"]["title"] = 42  # not what the contract says
    nul = _published()
    nul["payload"]["body"] = "含有\x00的正文"
    stolen = _published(origin="district-01")  # city's record, claimed by another node
    verdicts = precheck([(bad, None), (nul, None), (stolen, None)])
    assert isinstance(verdicts[id(bad)], InvalidPayload)
    assert "does not match" in str(verdicts[id(bad)])
    assert isinstance(verdicts[id(nul)], InvalidPayload) and "NUL" in str(verdicts[id(nul)])
    assert isinstance(verdicts[id(stolen)], NotOwner)


def test_entries_already_refused_or_left_to_the_slow_path_are_not_prechecked():
    env, other = _published(), _published()
    assert precheck([(env, NotOwner("x", env)), (other, object())]) == {}
