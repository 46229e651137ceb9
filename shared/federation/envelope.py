"""The signed envelope every record carries when it crosses from one node to another.

A district (or the city) publishes a shared record — a case, an experience, a joint
problem — to the other nodes. The receiving node must be able to tell, from the message
alone, who published it, whether it was altered on the way, and whether that node had
the right to publish it. So every cross-node message is one JSON envelope::

    event_id        unique id of the event (dedupe key together with origin/origin_seq)
    origin          node id of the publishing node, e.g. "district-a"
    origin_seq      1, 2, 3 ... gap-free per origin, so a receiver sees a missing message
    type            event type, e.g. "Case.Published"
    schema_version  int, so old payloads can be upcast on read
    sharing         "node" | "city" | "all" | "named"   (as MISP's distribution levels)
    recipients      node ids, only for "named" (sorted, no duplicates; [] otherwise)
    payload         the event's data (a JSON object)
    occurred_at     ISO-8601 UTC, e.g. "2025-03-01T08:00:00.000000Z"
    owner           node id owning the record; a node may only publish records it owns
    signer          node id whose key made the signature
    signature       base64 Ed25519 signature over the canonical bytes

Canonical bytes = the envelope without ``signature`` as JSON with sorted keys,
separators ``(",", ":")``, ``ensure_ascii=False`` (Chinese text stays as-is), UTF-8.
Floats in payloads are allowed but discouraged: another language may print them
differently; prefer integers or strings for anything that must verify elsewhere.

``verify`` checks, in this order, and raises a typed ``EnvelopeRejected`` subclass
whose ``reason`` is a fixed, low-cardinality string fit for a Prometheus label:

1. ``malformed``          fields missing or of the wrong type   (EnvelopeMalformed)
2. ``untrusted_node``     origin or signer not in the registry  (UntrustedNode)
3. ``signature_invalid``  bytes altered or wrong key            (SignatureInvalid)
4. ``signer_mismatch``    a trusted node signed for another     (SignerMismatch)
5. ``not_owner``          origin publishes a record it does not own (NotOwner)

The signature is checked before the signer/origin comparison on purpose: then
``signer_mismatch`` and ``not_owner`` mean "an authenticated, trusted node tried to
speak for someone else" — a finding about a peer, not noise on the wire.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "SHARING_LEVELS",
    "NODE_LEVELS",
    "FIELDS",
    "EnvelopeRejected",
    "EnvelopeMalformed",
    "UntrustedNode",
    "SignatureInvalid",
    "SignerMismatch",
    "NotOwner",
    "NotEntitled",
    "UnknownType",
    "InvalidPayload",
    "UnsupportedSchema",
    "OwnOrigin",
    "SequenceReused",
    "KeyResolver",
    "KeyRing",
    "canonical_bytes",
    "sign",
    "verify",
    "audience",
    "dumps",
    "loads",
    "utc_now_iso",
    "validate_node_id",
    "generate_keypair",
    "save_private_key",
    "load_private_key",
    "public_key_b64",
    "load_public_key_b64",
]

# the exchange domain's SHARING_LEVELS codes and two of the units' UNIT_LEVELS (the kernel imports
# no service; tests/unit/kernel/test_event_fields.py checks they are the same)
SHARING_LEVELS = ("node", "city", "all", "named")
NODE_LEVELS = ("city", "district")

# Every field of a signed envelope; all but "signature" are covered by the signature.
FIELDS = (
    "event_id", "origin", "origin_seq", "type", "schema_version", "sharing",
    "recipients", "payload", "occurred_at", "owner", "signer", "signature",
)
_SIGNED_FIELDS = tuple(f for f in FIELDS if f != "signature")

# Node ids travel inside AMQP routing keys (<kind>.<origin>.<type>) and URLs, so they
# must not contain ".", "*", "#" or "/": lower-case letters, digits and hyphens.
_NODE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


# --------------------------------------------------------------------------- errors

class EnvelopeRejected(Exception):
    """A received envelope must not be applied. ``reason`` is a Prometheus label value."""

    reason = "rejected"

    def __init__(self, message: str, envelope: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        env = envelope if isinstance(envelope, Mapping) else {}
        # Kept for logs and metrics (e.g. rejections per origin); may be forged values.
        self.event_id = env.get("event_id")
        self.origin = env.get("origin")
        self.signer = env.get("signer")


class EnvelopeMalformed(EnvelopeRejected):
    """Missing fields, wrong types, unknown sharing level, non-UTC time..."""

    reason = "malformed"


class UntrustedNode(EnvelopeRejected):
    """The origin or the signer is not in this node's registry of trusted nodes."""

    reason = "untrusted_node"

    def __init__(self, message: str, envelope: Mapping[str, Any] | None = None,
                 node_id: str | None = None):
        super().__init__(message, envelope)
        self.node_id = node_id


class SignatureInvalid(EnvelopeRejected):
    """The signature does not match the bytes under the signer's registered key."""

    reason = "signature_invalid"


class SignerMismatch(EnvelopeRejected):
    """A trusted node signed an envelope claiming another node as its origin."""

    reason = "signer_mismatch"


class NotOwner(EnvelopeRejected):
    """The origin published about a record another node owns (contributions go as
    the contributor's own records, never as edits of someone else's)."""

    reason = "not_owner"


# Raised by receivers *after* ``verify`` accepted the envelope: it is authentic, but
# what it says may not be applied here. (``verify`` itself never raises these.)

class NotEntitled(EnvelopeRejected):
    """The origin may not write this (a contribution to a case it cannot see), or this
    node is not in the envelope's audience (it should never have been delivered)."""

    reason = "not_entitled"


class UnknownType(EnvelopeRejected):
    """An event type this node does not share (or does not know)."""

    reason = "unknown_type"


class InvalidPayload(EnvelopeRejected):
    """The payload does not match the event type's contract, or contradicts the
    envelope (sharing level, owner)."""

    reason = "invalid_payload"


class OwnOrigin(EnvelopeRejected):
    """Claims this very node as its origin, but is not what this node published under
    that number (its own records come back through its own binding, byte for byte)."""

    reason = "own_origin"


class SequenceReused(EnvelopeRejected):
    """Authentic, but this node already holds a different record of the origin under
    the same number (or the origin's feed said that number was not for this node):
    the origin signed two records as one. The first one stays."""

    reason = "sequence_reused"


class UnsupportedSchema(EnvelopeRejected):
    """A newer schema version than this node's code understands: the origin's stream
    waits here (nothing after it is applied) until this node is upgraded."""

    reason = "unsupported_schema"


# --------------------------------------------------------------------- key resolution

@runtime_checkable
class KeyResolver(Protocol):
    """What ``verify`` needs from a registry: the trusted public key of a node, or None.

    ``shared.federation.registry.NodeRegistry`` implements it on the database;
    ``KeyRing`` below implements it on a dict (tests, benchmarks, a CLI check).
    """

    def public_key(self, node_id: str) -> Ed25519PublicKey | None: ...


class KeyRing:
    """An in-memory KeyResolver: ``KeyRing({"city": pub, "district-a": pub2})``.

    Values may be Ed25519PublicKey objects or their base64 raw form.
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey | str] | None = None):
        self._keys: dict[str, Ed25519PublicKey] = {}
        for node_id, key in (keys or {}).items():
            self.add(node_id, key)

    def add(self, node_id: str, key: Ed25519PublicKey | str) -> None:
        self._keys[node_id] = load_public_key_b64(key) if isinstance(key, str) else key

    def public_key(self, node_id: str) -> Ed25519PublicKey | None:
        return self._keys.get(node_id)


# ------------------------------------------------------------------------ structure

def validate_node_id(node_id: Any, field: str = "node_id") -> str:
    if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
        raise ValueError(
            "%s must be lower-case letters, digits and hyphens (got %r)" % (field, node_id))
    return node_id


def utc_now_iso() -> str:
    """Now, as the envelope writes times: ISO-8601, microseconds, 'Z'."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(envelope: Any, *, need_signature: bool) -> list[str]:
    """Every problem with the envelope's shape, as readable strings (empty = fine)."""
    if not isinstance(envelope, Mapping):
        return ["envelope must be a JSON object"]
    problems = []
    wanted = FIELDS if need_signature else _SIGNED_FIELDS
    missing = [f for f in wanted if f not in envelope]
    if missing:
        problems.append("missing fields: %s" % ", ".join(missing))
    # Unknown fields would be signed yet ignored by older receivers: refuse them so
    # that what is verified is exactly what is understood.
    extra = sorted(set(envelope) - set(FIELDS))
    if extra:
        problems.append("unknown fields: %s" % ", ".join(extra))
    g = envelope.get
    if "event_id" in envelope and not (isinstance(g("event_id"), str) and g("event_id")):
        problems.append("event_id must be a non-empty string")
    for f in ("origin", "owner", "signer"):
        if f in envelope:
            try:
                validate_node_id(g(f), f)
            except ValueError as exc:
                problems.append(str(exc))
    if "origin_seq" in envelope and not (_is_int(g("origin_seq")) and g("origin_seq") >= 1):
        problems.append("origin_seq must be an integer >= 1")
    if "type" in envelope and not (isinstance(g("type"), str) and g("type")):
        problems.append("type must be a non-empty string")
    if "schema_version" in envelope and not (
            _is_int(g("schema_version")) and g("schema_version") >= 1):
        problems.append("schema_version must be an integer >= 1")
    if "sharing" in envelope and g("sharing") not in SHARING_LEVELS:
        problems.append("sharing must be one of %s" % ", ".join(SHARING_LEVELS))
    if "recipients" in envelope:
        r = g("recipients")
        if not isinstance(r, list) or not all(isinstance(x, str) and _NODE_ID.match(x) for x in r):
            problems.append("recipients must be a list of node ids")
        elif g("sharing") == "named" and not r:
            problems.append("sharing 'named' needs at least one recipient")
        elif g("sharing") != "named" and r:
            problems.append("recipients are only allowed with sharing 'named'")
    if "payload" in envelope and not isinstance(g("payload"), dict):
        problems.append("payload must be a JSON object")
    if "occurred_at" in envelope:
        t = g("occurred_at")
        try:
            parsed = datetime.fromisoformat(t) if isinstance(t, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.utcoffset() is None or parsed.utcoffset().total_seconds():
            problems.append("occurred_at must be an ISO-8601 UTC time (…Z or +00:00)")
    if need_signature and "signature" in envelope and not isinstance(g("signature"), str):
        problems.append("signature must be a base64 string")
    return problems


def canonical_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: every field but ``signature``, canonical JSON, UTF-8.

    ``allow_nan=False``: NaN/Infinity are not JSON and would not verify elsewhere.
    """
    body = {k: v for k, v in envelope.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


# --------------------------------------------------------------------- sign / verify

def sign(envelope: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict:
    """A signed copy of ``envelope``.

    ``signer`` defaults to ``origin`` and ``recipients`` to ``[]``; named recipients
    are sorted and de-duplicated (the set is what matters, the bytes must be stable).
    Raises ``ValueError`` if the envelope is not well formed: a node must never emit
    something its peers will reject as malformed.
    """
    env = {k: v for k, v in envelope.items() if k != "signature"}
    env.setdefault("signer", env.get("origin"))
    env.setdefault("recipients", [])
    if isinstance(env["recipients"], (list, tuple, set, frozenset)):
        env["recipients"] = sorted(set(env["recipients"]))
    problems = _check(env, need_signature=False)
    if problems:
        raise ValueError("cannot sign a malformed envelope: " + "; ".join(problems))
    sig = private_key.sign(canonical_bytes(env))
    env["signature"] = base64.b64encode(sig).decode("ascii")
    return env


def verify(envelope: Mapping[str, Any], registry: KeyResolver,
           vouched: bool = False) -> Mapping[str, Any]:
    """Accept the envelope or raise an ``EnvelopeRejected`` subclass (see module doc).

    Returns the envelope unchanged so callers can write ``env = verify(loads(body), reg)``.
    ``vouched``: the caller holds the origin's own signature over this envelope's exact
    bytes, made after the origin verified it (a vouched feed page, ``shared.federation.feed``),
    and the signer is the origin: the Ed25519 check is skipped, every other one is made.
    """
    problems = _check(envelope, need_signature=True)
    if problems:
        raise EnvelopeMalformed("; ".join(problems), envelope)
    origin, signer = envelope["origin"], envelope["signer"]
    if registry.public_key(origin) is None:
        raise UntrustedNode("origin %r is not a trusted node" % origin, envelope, origin)
    signer_key = registry.public_key(signer)
    if signer_key is None:
        raise UntrustedNode("signer %r is not a trusted node" % signer, envelope, signer)
    if vouched and signer != origin:
        raise ValueError("only an entry signed by its origin can be vouched for by it")
    try:
        if not vouched:
            sig = base64.b64decode(envelope["signature"], validate=True)
            signer_key.verify(sig, canonical_bytes(envelope))
    except (InvalidSignature, binascii.Error, ValueError, RecursionError) as exc:
        raise SignatureInvalid(
            "signature does not verify under %r's key (%s)" % (signer, type(exc).__name__),
            envelope) from None
    if signer != origin:
        raise SignerMismatch(
            "signed by %r but claims origin %r" % (signer, origin), envelope)
    if envelope["owner"] != origin:
        raise NotOwner(
            "%r published a record owned by %r" % (origin, envelope["owner"]), envelope)
    return envelope


# --------------------------------------------------------------------------- audience

def audience(envelope: Mapping[str, Any], node_id: str, node_level: str,
             parent: str | None = None) -> bool:
    """Is node ``node_id`` (of level "city"/"district") entitled to receive this record?

    - the origin always is (it is its own record);
    - "node": nobody else — it must never leave the origin;
    - "city": only a node of level "city";
    - "all":  every node (the city and all districts);
    - "named": the listed recipients.

    ``parent`` (the node's city, None for the city) is accepted so callers can pass a
    registry row as is; with one city per deployment no rule needs it yet. A multi-city
    (province) layout would narrow "all" to the origin's tree here.
    """
    if node_level not in NODE_LEVELS:
        raise ValueError("node_level must be 'city' or 'district' (got %r)" % (node_level,))
    if node_id == envelope.get("origin"):
        return True
    sharing = envelope.get("sharing")
    if sharing == "all":
        return True
    if sharing == "city":
        return node_level == "city"
    if sharing == "named":
        return node_id in (envelope.get("recipients") or ())
    return False  # "node", or anything unknown: fail closed


# ----------------------------------------------------------------------------- wire

def dumps(envelope: Mapping[str, Any]) -> bytes:
    """The AMQP message body (and feed entry) for a signed envelope: UTF-8 JSON."""
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def loads(body: bytes | str) -> dict:
    """Parse a message body; anything that is not a JSON object is ``EnvelopeMalformed``."""
    try:
        env = json.loads(body)
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise EnvelopeMalformed("body is not JSON: %s" % exc) from None
    except RecursionError:
        # deep nesting ("[[[[..." a few thousand times) exhausts the parser's stack
        raise EnvelopeMalformed("body is nested too deeply to be an envelope") from None
    if not isinstance(env, dict):
        raise EnvelopeMalformed("body is not a JSON object")
    return env


# ----------------------------------------------------------------------------- keys

def generate_keypair() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key()


def save_private_key(private_key: Ed25519PrivateKey, path: str | os.PathLike) -> Path:
    """Write the node's signing key as unencrypted PKCS#8 PEM, readable by owner only.

    The file is created 0600 before any byte is written (no window where it is
    world-readable) and re-chmodded if it already existed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)
    return path


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("%s is not an Ed25519 private key" % path)
    return key


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The form a public key is exchanged and stored in: base64 of the raw 32 bytes."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise ValueError("public key is not base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes (got %d)" % len(raw))
    return Ed25519PublicKey.from_public_bytes(raw)
