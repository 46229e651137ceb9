"""The signed envelope: what a receiving node accepts, and why it rejects the rest."""
from __future__ import annotations

import base64
import json
import os
import re
import stat
import uuid

import pytest

from shared.federation.envelope import (
    EnvelopeMalformed,
    EnvelopeRejected,
    KeyRing,
    NotOwner,
    SignatureInvalid,
    SignerMismatch,
    UntrustedNode,
    audience,
    canonical_bytes,
    dumps,
    generate_keypair,
    load_private_key,
    load_public_key_b64,
    loads,
    public_key_b64,
    save_private_key,
    sign,
    verify,
)

NODES = ("city", "district-a", "district-b")


@pytest.fixture(scope="module")
def keys():
    return {n: generate_keypair()[0] for n in NODES}


@pytest.fixture(scope="module")
def ring(keys):
    return KeyRing({n: k.public_key() for n, k in keys.items()})


def case_published(origin="district-a", **over):
    env = {
        "event_id": str(uuid.uuid4()),
        "origin": origin,
        "origin_seq": 7,
        "type": "Case.Published",
        "schema_version": 1,
        "sharing": "all",
        "recipients": [],
        "payload": {
            "case_id": "case-2025-001",
            "title": "某局违规收受礼品礼金典型案例",
            "lessons": ["加强节日期间监督检查", "落实“一岗双责”"],
            "revision": 2,
        },
        "occurred_at": "2025-03-01T08:00:00.000000Z",
        "owner": origin,
    }
    env.update(over)
    return env


# ------------------------------------------------------------------ acceptance

def test_signed_envelope_verifies(keys, ring):
    env = sign(case_published(), keys["district-a"])
    assert env["signer"] == "district-a"  # defaults to the origin
    assert len(base64.b64decode(env["signature"])) == 64
    assert verify(env, ring) is env


def test_survives_the_wire(keys, ring):
    env = sign(case_published(), keys["district-a"])
    body = dumps(env)
    assert "违规收受礼品" in body.decode("utf-8")  # Chinese stays readable, not \\u escapes
    verify(loads(body), ring)


def test_city_signed_record_verifies(keys, ring):
    verify(sign(case_published("city"), keys["city"]), ring)


def test_named_recipients_are_normalised(keys, ring):
    env = sign(case_published(sharing="named", recipients=["district-b", "city", "district-b"]),
               keys["district-a"])
    assert env["recipients"] == ["city", "district-b"]
    verify(env, ring)


# ------------------------------------------------------------------- rejections

def test_tampered_payload_is_rejected(keys, ring):
    env = sign(case_published(), keys["district-a"])
    env["payload"] = dict(env["payload"], title="篡改后的标题")
    with pytest.raises(SignatureInvalid):
        verify(env, ring)


@pytest.mark.parametrize("field,value", [
    ("origin_seq", 8), ("sharing", "city"), ("occurred_at", "2025-03-02T08:00:00Z"),
    ("type", "Case.Revised"), ("schema_version", 2),
])
def test_any_tampered_field_is_rejected(keys, ring, field, value):
    env = sign(case_published(), keys["district-a"])
    env[field] = value
    with pytest.raises(SignatureInvalid):
        verify(env, ring)


def test_tampered_or_garbled_signature_is_rejected(keys, ring):
    env = sign(case_published(), keys["district-a"])
    raw = bytearray(base64.b64decode(env["signature"]))
    raw[0] ^= 1
    with pytest.raises(SignatureInvalid):
        verify(dict(env, signature=base64.b64encode(bytes(raw)).decode()), ring)
    with pytest.raises(SignatureInvalid):
        verify(dict(env, signature="not base64!"), ring)
    with pytest.raises(SignatureInvalid):
        verify(dict(env, signature=base64.b64encode(b"short").decode()), ring)


def test_wrong_key_is_rejected(keys, ring):
    # district-b's key, but the envelope names district-a as signer
    env = sign(case_published(), keys["district-b"])
    assert env["signer"] == "district-a"
    with pytest.raises(SignatureInvalid) as info:
        verify(env, ring)
    assert info.value.reason == "signature_invalid"


def test_signed_by_b_claiming_origin_a_is_rejected(keys, ring):
    env = sign(case_published(signer="district-b"), keys["district-b"])
    with pytest.raises(SignerMismatch) as info:
        verify(env, ring)
    assert (info.value.origin, info.value.signer) == ("district-a", "district-b")


def test_untrusted_origin_is_rejected(keys, ring):
    stranger, _ = generate_keypair()
    env = sign(case_published("district-x"), stranger)
    with pytest.raises(UntrustedNode) as info:
        verify(env, ring)
    assert info.value.node_id == "district-x"
    assert info.value.reason == "untrusted_node"


def test_untrusted_signer_is_rejected(ring):
    stranger, _ = generate_keypair()
    env = sign(case_published(signer="district-x"), stranger)
    with pytest.raises(UntrustedNode) as info:
        verify(env, ring)
    assert info.value.node_id == "district-x"


def test_record_owned_by_another_node_is_rejected(keys, ring):
    # district-a tries to publish a revision of district-b's case
    env = sign(case_published(owner="district-b"), keys["district-a"])
    with pytest.raises(NotOwner) as info:
        verify(env, ring)
    assert info.value.reason == "not_owner"


@pytest.mark.parametrize("change", [
    lambda e: e.pop("origin_seq"),
    lambda e: e.update(extra="field"),
    lambda e: e.update(sharing="province"),
    lambda e: e.update(sharing="named", recipients=[]),
    lambda e: e.update(recipients=["city"]),  # recipients without "named"
    lambda e: e.update(origin_seq=0),
    lambda e: e.update(origin_seq=True),
    lambda e: e.update(schema_version="1"),
    lambda e: e.update(payload=["not", "an", "object"]),
    lambda e: e.update(occurred_at="2025-03-01T16:00:00+08:00"),
    lambda e: e.update(occurred_at="2025-03-01T08:00:00"),  # naive
    lambda e: e.update(origin="District A", owner="District A"),
    lambda e: e.update(signature=None),
])
def test_malformed_envelopes_are_rejected_before_crypto(keys, ring, change):
    env = sign(case_published(), keys["district-a"])
    change(env)
    with pytest.raises(EnvelopeMalformed) as info:
        verify(env, ring)
    assert info.value.reason == "malformed"


def test_non_object_bodies_are_malformed():
    for body in (b"\xff\xfe", b"[1, 2]", b"{not json"):
        with pytest.raises(EnvelopeMalformed):
            loads(body)


def test_sign_refuses_malformed_envelopes(keys):
    with pytest.raises(ValueError, match="sharing"):
        sign(case_published(sharing="everyone"), keys["district-a"])
    with pytest.raises(ValueError, match="NaN|JSON"):
        sign(case_published(payload={"score": float("nan")}), keys["district-a"])


def test_every_rejection_has_a_distinct_label_safe_reason():
    classes = (EnvelopeMalformed, UntrustedNode, SignatureInvalid, SignerMismatch, NotOwner)
    reasons = [c.reason for c in classes]
    assert all(issubclass(c, EnvelopeRejected) for c in classes)
    assert len(set(reasons)) == len(reasons)
    assert all(re.fullmatch(r"[a-z_]+", r) for r in reasons)


# --------------------------------------------------------------- canonical form

def test_canonical_form_is_independent_of_key_order(keys, ring):
    env = case_published()
    shuffled = {k: env[k] for k in reversed(list(env))}
    shuffled["payload"] = {k: env["payload"][k] for k in reversed(list(env["payload"]))}
    full = sign(env, keys["district-a"])
    assert canonical_bytes(full) == canonical_bytes(
        {k: full[k] for k in reversed(list(full))})
    # signed in one order, verified in another (as a peer's JSON parser may build it)
    signed_shuffled = sign(shuffled, keys["district-a"])
    reordered = json.loads(json.dumps({k: signed_shuffled[k] for k in sorted(signed_shuffled)}))
    verify(reordered, ring)
    # Ed25519 is deterministic: same canonical bytes, same signature
    assert signed_shuffled["signature"] == full["signature"]


def test_canonical_bytes_are_exactly_specified():
    # A golden value: another implementation (or a later refactor) must produce these
    # bytes, or signatures stop verifying across nodes.
    env = {
        "type": "Experience.Shared", "sharing": "city", "schema_version": 1,
        "signer": "district-a", "recipients": [], "payload": {"标题": "廉政谈话", "n": 3},
        "owner": "district-a", "origin_seq": 1, "origin": "district-a",
        "occurred_at": "2025-01-02T03:04:05Z", "event_id": "e-1", "signature": "ignored",
    }
    expected = ('{"event_id":"e-1","occurred_at":"2025-01-02T03:04:05Z","origin":"district-a",'
                '"origin_seq":1,"owner":"district-a","payload":{"n":3,"标题":"廉政谈话"},'
                '"recipients":[],"schema_version":1,"sharing":"city","signer":"district-a",'
                '"type":"Experience.Shared"}')
    assert canonical_bytes(env) == expected.encode("utf-8")


# --------------------------------------------------------------------- audience

@pytest.mark.parametrize("sharing,recipients,expected", [
    # (city, district-a [origin], district-b, district-c)
    ("node", [], (False, True, False, False)),
    ("city", [], (True, True, False, False)),
    ("all", [], (True, True, True, True)),
    ("named", ["district-b"], (False, True, True, False)),
    ("named", ["city", "district-c"], (True, True, False, True)),
])
def test_audience_follows_the_sharing_level(sharing, recipients, expected):
    env = case_published(sharing=sharing, recipients=recipients)
    who = [("city", "city", None), ("district-a", "district", "city"),
           ("district-b", "district", "city"), ("district-c", "district", "city")]
    assert tuple(audience(env, n, level, parent) for n, level, parent in who) == expected


def test_audience_fails_closed_on_unknown_sharing():
    assert audience(case_published(sharing="bogus"), "city", "city", None) is False
    with pytest.raises(ValueError):
        audience(case_published(), "city", "province", None)


# ------------------------------------------------------------------------- keys

def test_private_key_file_is_owner_only(tmp_path, keys, ring):
    path = tmp_path / "keys" / "node.pem"
    path.parent.mkdir()
    path.write_text("old")
    os.chmod(path, 0o644)  # an existing, too-open file is tightened, not trusted
    save_private_key(keys["district-a"], path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(path)
    verify(sign(case_published(), loaded), ring)


def test_public_key_base64_round_trip(keys):
    b64 = public_key_b64(keys["city"])
    assert len(base64.b64decode(b64)) == 32 and len(b64) == 44
    assert public_key_b64(load_public_key_b64(b64)) == b64
    assert public_key_b64(keys["city"].public_key()) == b64
    for bad in ("not base64!", base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(ValueError):
            load_public_key_b64(bad)
