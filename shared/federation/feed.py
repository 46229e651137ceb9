"""The pull side of federation: a node's signed feed, ``GET /feed?after=N&limit=M``.

Realtime delivery is AMQP (exchange federation); this feed is the repair path. A node
that sees a jump in an origin's sequence, or that was offline for days, asks the
origin for everything after the last sequence number it applied.

Both directions are authenticated with the nodes' Ed25519 keys, so plain HTTP inside a
government network is not a weakness of the protocol (use TLS anyway):

* **Request.** The requester signs ``qinglian-feed-request/1``, the origin's node id,
  its own node id, ``after``, ``limit`` and the current time, and sends
  ``X-Qinglian-Node``, ``X-Qinglian-Date`` and ``X-Qinglian-Signature``. The origin
  answers only a trusted node, only within ``MAX_SKEW`` seconds of its own clock, and
  only with the entries that node is entitled to (``envelope.audience``): a district
  asking does not get city-only records, and a node that is not a recipient does not
  get named ones. Anonymous requests are refused (401).
* **Page.** ``{"origin", "requester", "after", "through", "head", "entries", "signature"}``.
  Each entry is a signed envelope, exactly as published on AMQP. ``through`` says "every
  entry you are entitled to with sequence <= through is in this page": the requester may
  move its watermark to ``through`` even where the page skips numbers (those were
  records for someone else). Because a forged ``through`` would make a node skip
  records for ever, the page itself is signed by the origin over the page's fields and
  the (sequence, event id) of every entry, so nothing can be dropped from or added to
  a page in transit.

**Vouched pages** (``entries_signature``). Checking every entry's own signature was
most of what a catching-up node spent per record (one Ed25519 verify and one canonical
encoding each, ~1,000 per page). So the origin may also sign the page over the SHA-256
of the exact bytes of its ``entries`` array (``_vouch_bytes``), having verified each of
those entries under its own key first (``Federation.feed_page``: at staging, or when it
serves a text it did not stage). A receiver that checks this one signature with the
origin's trusted key knows each entry is, byte for byte, one that verifies under that
key - what the per-entry checks would have told it - and skips those checks only
(``envelope.verify(..., vouched=True)``: structure, signer = origin and owner = origin
are still checked). Why the origin verifies before vouching instead of signing what it
serves: the page is signed when served, the entry when it was made; a row altered in
the origin's database since would otherwise be vouched for. The receiver parses the
entries from the very bytes it hashed (``parse_page``). No ``entries_signature``, a body
not in the form ``page_body`` writes, or a signature that does not verify (an entry
altered in transit): the entries are checked one by one, as before, and an altered one
is refused there. Older receivers ignore the field: ``signature`` is unchanged.

Pages scan at most ``limit`` sequence numbers (not ``limit`` entitled entries), so a
request is bounded work for the origin however little of its log the requester may see.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .envelope import EnvelopeRejected, KeyResolver, validate_node_id

__all__ = ["FEED_PATH", "PAGE_MAX", "MAX_SKEW", "FeedError", "FeedRefused", "FeedPageInvalid",
           "FeedPage", "request_headers", "verify_request", "sign_page", "verify_page",
           "FeedClient", "page_body", "parse_page"]

FEED_PATH = "/feed"
PAGE_MAX = 1000
MAX_SKEW = 300.0  # seconds between the requester's clock and the origin's

H_NODE = "X-Qinglian-Node"
H_DATE = "X-Qinglian-Date"
H_SIGNATURE = "X-Qinglian-Signature"


class FeedError(Exception):
    """The feed could not be read (network, HTTP status, not JSON)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class FeedRefused(FeedError):
    """The origin refused the request (401 unauthenticated, 403 untrusted, 400 bad)."""


class FeedPageInvalid(EnvelopeRejected):
    """A page that does not verify under the origin's key or contradicts the request."""

    reason = "feed_page_invalid"


def _b64sig(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode("ascii")


def _check_sig(registry: KeyResolver, node_id: str, signature: str, data: bytes) -> bool:
    public = registry.public_key(node_id)
    if public is None:
        return False
    try:
        public.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def _utc_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------- request

def _request_bytes(origin: str, requester: str, after: int, limit: int, date: str) -> bytes:
    return "\n".join(["qinglian-feed-request/1", origin, requester, str(after), str(limit),
                      date]).encode("utf-8")


def request_headers(key: Ed25519PrivateKey, requester: str, origin: str, after: int,
                    limit: int, now: datetime | None = None) -> dict[str, str]:
    date = _utc_iso(now)
    return {H_NODE: requester, H_DATE: date,
            H_SIGNATURE: _b64sig(key, _request_bytes(origin, requester, after, limit, date))}


def verify_request(headers: Mapping[str, str], origin: str, after: int, limit: int,
                   registry: KeyResolver, now: datetime | None = None) -> str:
    """The requesting node's id, or ``FeedRefused`` (status 401/403)."""
    requester = headers.get(H_NODE)
    date = headers.get(H_DATE)
    signature = headers.get(H_SIGNATURE)
    if not (requester and date and signature):
        raise FeedRefused("请求必须带有签名（%s、%s、%s）"
                          % (H_NODE, H_DATE, H_SIGNATURE), 401)
    try:
        validate_node_id(requester, H_NODE)
        sent = datetime.fromisoformat(date.replace("Z", "+00:00"))
        if sent.tzinfo is None:
            raise ValueError("没有时区")
    except ValueError as exc:
        raise FeedRefused(str(exc), 400) from None
    skew = abs(((now or datetime.now(timezone.utc)) - sent).total_seconds())
    if skew > MAX_SKEW:
        raise FeedRefused("请求时间与本节点时钟相差 %.0f 秒" % skew, 401)
    if registry.public_key(requester) is None:
        raise FeedRefused("节点 %r 不是本节点信任的节点" % requester, 403)
    if not _check_sig(registry, requester, signature,
                      _request_bytes(origin, requester, after, limit, date)):
        raise FeedRefused("请求签名无法用 %r 的公钥验证" % requester, 401)
    return requester


# ---------------------------------------------------------------------------- page

def _page_bytes(origin: str, requester: str, after: int, through: int, head: int,
                entries: list[tuple[int, str]]) -> bytes:
    return json.dumps({"origin": origin, "requester": requester, "after": after,
                       "through": through, "head": head, "entries": entries},
                      sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_page(key: Ed25519PrivateKey, origin: str, requester: str, after: int, through: int,
              head: int, entries: list[tuple[int, str]]) -> str:
    """``entries``: (origin_seq, event_id) of each entry, in page order."""
    return _b64sig(key, _page_bytes(origin, requester, after, through, head, entries))


def _vouch_bytes(origin: str, requester: str, after: int, through: int, head: int,
                 entries_raw: bytes) -> bytes:
    """What ``entries_signature`` signs: the page's fields and the digest of the exact
    bytes of its ``entries`` array (module doc: vouched pages)."""
    return json.dumps({"vouch": "qinglian-feed-entries/1", "origin": origin,
                       "requester": requester, "after": after, "through": through,
                       "head": head, "entries_sha256": hashlib.sha256(entries_raw).hexdigest()},
                      sort_keys=True, separators=(",", ":")).encode("utf-8")


_ENTRIES = b',"entries":['


def page_body(key: Ed25519PrivateKey, origin: str, requester: str, after: int, through: int,
              head: int, entries: list[tuple[int, str, str]], vouch: bool = False) -> bytes:
    """The response body, built from stored envelope texts without re-encoding them:
    ``entries`` are (origin_seq, event_id, envelope JSON text). ``vouch``: the caller
    has verified every entry under ``key``'s public key (module doc); the page then
    carries ``entries_signature`` too."""
    signature = sign_page(key, origin, requester, after, through, head,
                          [(seq, eid) for seq, eid, _ in entries])
    raw = ("[%s]" % ",".join(t for _, _, t in entries)).encode("utf-8")
    fields = {"origin": origin, "requester": requester, "after": after,
              "through": through, "head": head, "signature": signature}
    if vouch:
        fields["entries_signature"] = _b64sig(key, _vouch_bytes(origin, requester, after,
                                                                through, head, raw))
    meta = json.dumps(fields, separators=(",", ":")).encode("utf-8")
    return meta[:-1] + _ENTRIES[:-1] + raw + b"}"


def parse_page(data: bytes) -> tuple[Any, bytes | None]:
    """(the page as JSON, the exact bytes of its entries array or None).

    A body in ``page_body``'s form is parsed in two parts, the fields before
    ``"entries"`` and the array itself, so the entries used are those of the bytes a
    vouched page's digest covers (a whole-body parse would take the last of two
    ``entries`` keys). Any other JSON body is parsed whole, with no raw entries: its
    entries are checked one by one. Raises ``ValueError`` if it is not JSON."""
    i = data.find(_ENTRIES)
    if i > 0 and data.endswith(b"]}"):
        raw = data[i + len(_ENTRIES) - 1:-1]
        try:
            body = json.loads(data[:i] + b"}")
            entries = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and "entries" not in body and isinstance(entries, list):
            body["entries"] = entries
            return body, raw
    return json.loads(data), None


@dataclass
class FeedPage:
    origin: str
    requester: str
    after: int
    through: int
    head: int
    entries: list[dict]
    # (entry, rejection or None) once the receiver has verified the entries
    checked: list | None = None
    # the origin's entries_signature verified over the entries' exact bytes
    vouched: bool = False
    # the receiver's own checks of the entries' content made ahead, by id(entry)
    # (services.exchange.federation.precheck): empty if not
    verdicts: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Nothing newer than this page existed at the origin when it was served."""
        return self.through >= self.head


def verify_page(body: Any, origin: str, requester: str, after: int,
                registry: KeyResolver, entries_raw: bytes | None = None) -> FeedPage:
    """Check a page against the request and the origin's key; entries still have to be
    verified one by one (``envelope.verify``) like any AMQP message - but for their
    signatures when the page is ``vouched``: ``entries_raw`` (``parse_page``) are the
    bytes its entries were parsed from, and its ``entries_signature`` verifies over them
    under the origin's key (module doc)."""
    if not isinstance(body, dict):
        raise FeedPageInvalid("数据页不是 JSON 对象")
    try:
        page = FeedPage(body["origin"], body["requester"], int(body["after"]),
                        int(body["through"]), int(body["head"]), list(body["entries"]))
        signature = body["signature"]
        pairs = [(int(e["origin_seq"]), str(e["event_id"])) for e in page.entries]
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedPageInvalid("数据页格式有误：%s" % exc) from None
    if (page.origin, page.requester, page.after) != (origin, requester, after):
        raise FeedPageInvalid("数据页答复的是另一个请求（%s/%s，%d 之后）"
                              % (page.origin, page.requester, page.after))
    if not _check_sig(registry, origin, signature,
                      _page_bytes(origin, requester, after, page.through, page.head, pairs)):
        raise FeedPageInvalid("数据页签名无法用 %r 的公钥验证" % origin)
    seqs = [s for s, _ in pairs]
    if page.through < after or page.head < page.through or seqs != sorted(set(seqs)) or \
            (seqs and (seqs[0] <= after or seqs[-1] > page.through)):
        raise FeedPageInvalid("数据页的序号前后不一致")
    if any(e.get("origin") != origin for e in page.entries):
        raise FeedPageInvalid("%r 的数据页含有其他来源的条目" % origin)
    vouch = body.get("entries_signature")
    page.vouched = entries_raw is not None and isinstance(vouch, str) and _check_sig(
        registry, origin, vouch, _vouch_bytes(origin, requester, after, page.through,
                                              page.head, entries_raw))
    return page


# -------------------------------------------------------------------------- client

def fetch_page(http_client, key: Ed25519PrivateKey, requester: str, registry: KeyResolver,
               feed_url: str, origin: str, after: int, limit: int = PAGE_MAX,
               timeout: float = 30.0) -> FeedPage:
    """One page with a given ``http.client`` module: under eventlet the caller may pass
    the unpatched one (``eventlet.patcher.original``) and run this in a native thread,
    so that a page downloads and verifies while the green threads keep working."""
    from urllib.parse import urlencode, urlparse
    limit = max(1, min(int(limit), PAGE_MAX))
    u = urlparse(feed_url)
    conn_cls = http_client.HTTPSConnection if u.scheme == "https" else http_client.HTTPConnection
    conn = conn_cls(u.hostname, u.port, timeout=timeout)
    try:
        path = "%s?%s" % (u.path or "/", urlencode({"after": after, "limit": limit}))
        conn.request("GET", path, headers=request_headers(key, requester, origin, after, limit))
        r = conn.getresponse()
        data = r.read()
    except (OSError, http_client.HTTPException) as exc:
        raise FeedError("读取 %s 失败：%s" % (feed_url, exc)) from exc
    finally:
        conn.close()
    if r.status in (400, 401, 403):
        raise FeedRefused("读取 %s 失败：%d %s" % (feed_url, r.status, data[:300]), r.status)
    if r.status != 200:
        raise FeedError("读取 %s 失败：%d %s" % (feed_url, r.status, data[:300]), r.status)
    try:
        body, raw = parse_page(data)
    except ValueError as exc:
        raise FeedError("读取 %s 失败：不是 JSON（%s）" % (feed_url, exc)) from exc
    return verify_page(body, origin, requester, after, registry, raw)


class FeedClient:
    """Reads other nodes' feeds as ``node_id`` (one HTTP session, reused)."""

    def __init__(self, node_id: str, key: Ed25519PrivateKey, registry: KeyResolver,
                 timeout: float = 30.0):
        self.node_id = node_id
        self.key = key
        self.registry = registry
        self.timeout = timeout
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def fetch(self, feed_url: str, origin: str, after: int, limit: int = PAGE_MAX) -> FeedPage:
        limit = max(1, min(int(limit), PAGE_MAX))
        headers = request_headers(self.key, self.node_id, origin, after, limit)
        try:
            r = self._http.get(feed_url, params={"after": after, "limit": limit},
                               headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise FeedError("读取 %s 失败：%s" % (feed_url, exc)) from exc
        if r.status_code in (400, 401, 403):
            raise FeedRefused("读取 %s 失败：%d %s" % (feed_url, r.status_code, r.text[:300]),
                              r.status_code)
        if r.status_code != 200:
            raise FeedError("读取 %s 失败：%d %s" % (feed_url, r.status_code, r.text[:300]),
                            r.status_code)
        try:
            body, raw = parse_page(r.content)
        except ValueError as exc:
            raise FeedError("读取 %s 失败：不是 JSON（%s）" % (feed_url, exc)) from exc
        return verify_page(body, origin, self.node_id, after, self.registry, raw)
