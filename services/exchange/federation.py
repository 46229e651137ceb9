"""Federation inside the exchange service: what leaves this node and what comes in.

Outgoing (this node's own records)
----------------------------------
* **Outbox, in the command's transaction.** ``Federation.stage`` runs inside every
  command that saves a shared aggregate. For each new event whose payload says it may
  leave (``sharing`` is not ``"node"``, the event class is not ``private``) it takes the
  next *origin sequence number*, signs the envelope and inserts it into
  ``federation_outbox``. Gap-free numbering needs no sequence object: the command's
  transaction already holds the event log's writer lock (taken by the append just
  before), so ``max(origin_seq) + 1`` cannot be computed twice, and numbers are
  committed in the same order as the log. A rolled-back command takes its numbers
  with it. Drafts (``"node"``) are never staged: only published items leave a node.
* **Publisher thread.** ``OutboxPublisher`` tails the outbox from its checkpoint and
  publishes each envelope to the exchange of its sharing level (``broker.routes_for``)
  in AMQP transactions of up to 500, moving the checkpoint only after ``tx.commit``
  (the kernel relay's reasoning: at-least-once, receivers dedupe). It refuses an
  outbox row of level ``"node"`` outright, whatever put it there.
* **Feed.** ``GET /feed?after=N`` (``Federation.feed_page``) serves the same signed
  envelopes to a trusted node that asks, filtered to what that node may see
  (``shared.federation.feed``).

Incoming (other nodes' records)
-------------------------------
* **One consumer thread**, ``InboxConsumer``, reads this node's durable inbox queue,
  bound to ``qinglian.shared`` (``#``), ``qinglian.named`` (``<this node>.#``) and, at
  the city only, ``qinglian.city`` (``#``). One thread, on purpose: envelopes of one
  origin must be applied in that origin's order, and nameko's concurrent workers would
  reorder them. The same thread pulls feeds (repair, periodic sync), so the ordering
  state (``shared.federation.ordering.OriginSequencer``) is never shared between threads.
* **Verify** (``envelope.verify``: trusted origin, signature, signer = origin, owner =
  origin), then **check the content** here: a known shared type, the payload matches
  its contract and the envelope's sharing level, the record id's owner is the origin,
  a sub-record's origin may see the record it adds to, and this node is in the
  audience. Any failure is counted (``qinglian_federation_rejected_total{origin,reason}``),
  logged and never projected. A refused *message* never consumes its sequence number,
  authentic or not: anyone holding a key could otherwise erase the genuine record
  published later under that number. The number is fetched from the origin's own feed
  instead, and only an entry of that signed feed that is refused is consumed (recorded
  as rejected in ``federation_received``) so it cannot block its origin. A body that is
  not even an envelope (not JSON, nested thousands deep, a lone surrogate ...) is
  counted as ``malformed`` and acknowledged like every other refusal: nothing a peer
  sends can make the consumer fail, and be handed the same message, for ever.
  Under an old number, an exact redelivery is a duplicate; anything else is checked
  and counted as ``signature_invalid`` or ``sequence_reused``; a message claiming this
  node as origin that is not what its outbox holds, as ``own_origin``.
* **Dedupe and order** per origin by ``origin_seq`` (``OriginSequencer``); a jump waits
  ``grace`` seconds for stragglers, then the range is pulled from the origin's feed.
  Every ``sync_interval`` (and at start) every trusted node's feed is asked for what
  came after the watermark, which is how a node that was offline for days catches up.
* **Apply**: accepted envelopes are appended to this node's log as the *same event
  types with the same payloads and event ids*, in streams named after the record
  (``Case:district-a/case-7``), so the ordinary projections build the shared feed from
  them, ``uow.get(Case, ...)`` works on a replica, and rebuilding the read models from
  the log gives the same result. A batch, its projection updates, its
  ``federation_received`` rows and the new watermark commit in one transaction: a crash
  cannot apply something without remembering it, or remember it without applying it.
  What one consumer batch made ready from several origins is one transaction too
  (``_apply_ready``), each origin's part in its order and checked as if the origins
  before it had committed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections import OrderedDict, deque
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import jsonschema
from kombu import Connection as AmqpConnection, Consumer, Exchange, Producer, Queue
from sqlalchemy import (
    BigInteger, Column, MetaData, String, Table, Text, bindparam, func, select, type_coerce,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from shared.batching import BatchWriter, insert_rows, one_of
from shared.db import JSONText, readonly
from services.exchange.domain import ROOTS, _Created, aggregate_of, owner_of, routing_kind
from shared.aggregate import EVENT_TYPES
from shared.auth import system_actor
from shared.events import NewEvent, StoredEvent, iso_to_us, now_us
from shared.federation.contract import Unsupported, compile_schema
from shared.federation.broker import (
    CITY_EXCHANGE, EXCHANGES, NAMED_EXCHANGE, SHARED_EXCHANGE, message_properties, routes_for,
)
from shared.federation.envelope import (
    SHARING_LEVELS, EnvelopeMalformed, EnvelopeRejected, InvalidPayload, KeyRing, NotEntitled,
    NotOwner, OwnOrigin, SequenceReused, UnknownType, UnsupportedSchema, audience, loads, sign,
    verify,
)
from shared.federation.feed import (
    PAGE_MAX, FeedClient, FeedError, FeedPageInvalid, fetch_page, page_body, verify_request,
)
from shared.federation.ordering import Offer, OriginSequencer
from shared.federation.registry import NodeRegistry, key_fingerprint
from shared.logs import well_formed
from shared.relay import BrokerWatch, IdleBackoff, after_checkpoint, correlation_of
from shared.store import events

ROOT_STREAMS = {cls.stream_type for cls in ROOTS.values()}


def _reasons(cls=EnvelopeRejected) -> set[str]:
    return {cls.reason}.union(*(_reasons(sub) for sub in cls.__subclasses__()))


# every ``reason`` label of qinglian_federation_rejected_total (created at zero)
REJECTION_REASONS = tuple(sorted(_reasons()))

log = logging.getLogger(__name__)

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "events"
INBOX_QUEUE = "qinglian.exchange.inbox"
PUBLISHER_CHECKPOINT = "federation:publisher"

metadata = MetaData()

# The JSON columns keep the text they held when it was written by hand (``JSONText``): an
# envelope compact and UTF-8 as is, in the signed envelope's key order - the wire form -, the
# lists as ``json.dumps`` wrote them. An existing node's rows read as before and a row sends
# what it sent; signatures are over canonical bytes (``envelope.canonical_bytes``), not this.


def wire(column):
    """An envelope column read as its stored text, unparsed: the publisher and the feed
    send it as it is."""
    return type_coerce(column, Text)


outbox = Table(
    "federation_outbox", metadata,
    Column("origin_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("position", BigInteger, nullable=False),  # in this node's log
    Column("event_type", String(150), nullable=False),
    Column("sharing", String(10), nullable=False),
    Column("recipients", JSONText(ensure_ascii=True), nullable=False),
    Column("exchange", String(64), nullable=False),
    Column("routing_keys", JSONText(ensure_ascii=True), nullable=False),
    # the signed envelope; its stored text (``wire``) is what is sent and served
    Column("envelope", JSONText(compact=True), nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
)

# per origin: everything up to applied_through is applied or known not to be ours
inbox = Table(
    "federation_inbox", metadata,
    Column("origin", String(63), primary_key=True),
    Column("applied_through", BigInteger, nullable=False),
    Column("events_applied", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("last_occurred_at", String(40)),
    Column("updated_at_us", BigInteger, nullable=False),
)

# what was received and what became of it (the dedupe record and the audit trail)
received = Table(
    "federation_received", metadata,
    Column("origin", String(63), primary_key=True),
    Column("origin_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("position", BigInteger),  # in this node's log; NULL when rejected
    Column("outcome", String(40), nullable=False),  # applied | rejected:<reason>
    Column("via", String(8), nullable=False),  # amqp | feed
    Column("envelope", JSONText(compact=True), nullable=False),  # no payload (_received_row)
    Column("received_at_us", BigInteger, nullable=False),
)


# built once: every command that shares asks (building the SELECT per call cost more
# than SQLite took to answer it - the scale bench's profile of draft_experience)
_OUTBOX_HEAD = select(func.max(outbox.c.origin_seq))
# and the INSERT after it: a fresh ``outbox.insert()`` per command had its cache key
# generated anew each time, 5 % of draft_experience's samples at 5 districts
_OUTBOX_INSERT = outbox.insert()

# and those every applied batch (the live consumer's and a feed page's) runs: when
# records arrive one at a time each is a batch, and building its statements cost more
# than the watermark read itself
_INBOX_ROWS = select(inbox).where(inbox.c.origin.in_(bindparam("origins", expanding=True)))
_INBOX_UPDATE = update(inbox).where(inbox.c.origin == bindparam("b_origin"))
_INBOX_INSERT = inbox.insert()
_STREAM_VERSIONS: dict[str, tuple] = {}  # dialect name -> (statement, ids per execution)


def _stream_versions_sql(dialect) -> tuple:
    hit = _STREAM_VERSIONS.get(dialect.name)
    if hit is None:
        cond, per = one_of(events.c.stream_id, dialect)
        hit = _STREAM_VERSIONS[dialect.name] = (
            select(events.c.stream_id, func.max(events.c.version)).where(cond)
            .group_by(events.c.stream_id), per)
    return hit


# who this node is, written by the service at start: queries (which get only a
# connection to this database) need the city's id to compute audiences
identity = Table(
    "federation_identity", metadata,
    Column("singleton", BigInteger, primary_key=True, autoincrement=False),
    Column("node_id", String(63), nullable=False),
    Column("level", String(16), nullable=False),
    Column("city", String(63)),
)


def write_identity(engine, node_id: str, level: str, city: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(identity.delete())
        conn.execute(identity.insert().values(singleton=1, node_id=node_id, level=level,
                                              city=city))


def current_city(conn) -> str | None:
    return conn.execute(select(identity.c.city)).scalar()


def utc_z(iso: str) -> str:
    """Any ISO time as the envelope writes it: UTC, microseconds, 'Z'."""
    seconds, micro = divmod(iso_to_us(iso), 1_000_000)  # exact: no float on the way
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=micro).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=None)
def _contract(event_type: str, version: int):
    """A function payload -> error message or None, for the event type's contract
    (compiled once; jsonschema where the schema needs more than the compiler knows)."""
    path = CONTRACTS / ("%s.v%d.schema.json" % (event_type, version))
    if not path.exists():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    try:
        return compile_schema(schema)
    except Unsupported:
        validator = jsonschema.Draft202012Validator(schema)
        return lambda payload: next((e.message for e in validator.iter_errors(payload)), None)


def shareable(event_type: str) -> bool:
    cls = EVENT_TYPES.get(event_type)
    return cls is not None and not cls.private and aggregate_of(event_type) is not None


def same_record(a: dict, b: dict) -> bool:
    """The same signed content (a re-signed copy after a key rotation is the same)."""
    return {k: v for k, v in a.items() if k != "signature"} == \
        {k: v for k, v in b.items() if k != "signature"}


def payload_sha256(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False, default=str)
                          .encode("utf-8", "surrogatepass")).hexdigest()


def _fingerprint(env: dict) -> tuple:
    head = {k: v for k, v in env.items() if k not in ("payload", "signature")}
    return json.dumps(head, sort_keys=True, default=str), payload_sha256(env.get("payload"))


def _stored_fingerprint(kept: dict, payload: str | None) -> tuple:
    """``_fingerprint`` of a ``federation_received`` row: an applied envelope's payload
    is its event in the log, a refused one kept only the payload's digest."""
    env = dict(kept)
    digest = env.pop("payload_sha256", None)
    env.pop("signature", None)
    if payload is not None:
        digest = payload_sha256(json.loads(payload))
    return json.dumps(env, sort_keys=True, default=str), digest


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


# failures of this node's own infrastructure: retried, unlike anything about a message
_INFRASTRUCTURE = (SQLAlchemyError, OSError)


def unreadable(exc: Exception, env=None) -> EnvelopeMalformed:
    """A message that broke a check in a way no check foresaw: malformed, with the cause."""
    return EnvelopeMalformed("unreadable message (%s: %s)" % (type(exc).__name__, str(exc)[:200]),
                             env)


def _rows_by_seq(conn, key_col, value_col, seqs) -> dict:
    seqs, out = sorted(seqs), {}
    for i in range(0, len(seqs), 500):
        out.update(conn.execute(select(key_col, value_col)
                                .where(key_col.in_(seqs[i:i + 500]))).all())
    return out


class Federation:
    """This node's side of federation for one exchange-service container.

    The runtime's extension ``rt.ext.federation`` (``services.exchange.service``), so that
    command functions (which receive only the unit of work) can stage what they share.
    """

    def __init__(self, runtime, node_id: str, level: str, parent: str | None, key,
                 registry: NodeRegistry, metrics=None, grace: float = 0.25,
                 sync_interval: float = 60.0, gap_ceiling: float = 300.0):
        self.rt = runtime
        self.node_id = node_id
        self.level = level
        self.parent = parent
        self.key = key
        self.registry = registry
        self.metrics = metrics
        self.sync_interval = sync_interval
        self.sequencer = OriginSequencer(grace=grace, ceiling=gap_ceiling)
        self.feed_client = FeedClient(node_id, key, registry)
        self.publisher_wake = threading.Event()
        self.sync_requested = threading.Event()
        self.recent_rejections: deque = deque(maxlen=50)
        self.rejected_counts: dict[str, int] = {}  # reason -> refusals since start
        self.last_sync_us: int | None = None  # when every peer's feed was last asked
        self._pull_backoff: dict[str, tuple[float, float]] = {}
        # origin_seq -> digest of an outbox envelope text known to verify (feed_page)
        self._verified: OrderedDict[int, bytes] = OrderedDict()
        self._loaded = False
        self._ever_loaded = False
        # peers whose feed must be read once since a reload (load_state, repair_due)
        self._resync: set[str] = set()
        self._started_us = now_us()
        # id(entry) -> content_verdict's result or rejection, for the feed page being
        # applied (made in the prefetch's native thread); set and cleared by ``pull``
        # only: one thread applies (module doc)
        self._prechecked: dict[int, object] = {}
        if metrics is not None:
            m = metrics
            self.m_rejected = m.counter("qinglian_federation_rejected_total",
                                        "Cross-node messages refused (never projected)",
                                        ("origin", "reason"))
            self.m_applied = m.counter("qinglian_federation_applied_total",
                                       "Other nodes' events applied here", ("origin", "via"))
            self.m_duplicates = m.counter("qinglian_federation_duplicates_total",
                                          "Cross-node messages already applied (skipped)",
                                          ("origin",))
            self.m_pulls = m.counter("qinglian_federation_feed_pulls_total",
                                     "Pages pulled from other nodes' feeds", ("origin", "outcome"))
            self.m_lag = m.gauge("qinglian_federation_lag_seconds",
                                 "Age of the oldest event received from the origin and not "
                                 "applied yet (0 when caught up)", ("origin",))
            self.m_heard = m.gauge("qinglian_federation_last_heard_seconds",
                                   "Seconds since the origin was last heard from (an authentic "
                                   "message or a feed page)", ("origin",))
            self.m_held = m.gauge("qinglian_federation_held",
                                  "Envelopes held back waiting for a missing predecessor",
                                  ("origin",))
            self.m_unfillable = m.counter(
                "qinglian_federation_unfillable_total",
                "Envelopes numbered beyond the head of their origin's own feed (dropped)",
                ("origin",))
            self.m_staged = m.counter("qinglian_federation_staged_total",
                                      "Own events signed into the outbox", ("sharing",))
            self.m_published = m.counter("qinglian_federation_published_total",
                                         "Outbox envelopes published with broker confirmation",
                                         ("exchange",))
            self.m_outbox_lag = m.gauge("qinglian_federation_outbox_lag",
                                        "Staged envelopes not yet confirmed by the broker")
            self.m_outbox_lag_s = m.gauge("qinglian_federation_outbox_lag_seconds",
                                          "Age of the oldest staged envelope the broker has not "
                                          "confirmed (0 when caught up)")
            for sharing in SHARING_LEVELS:
                if sharing != "node":  # never staged
                    self.m_staged.labels(m.service, sharing)
            for exchange in EXCHANGES:
                self.m_published.labels(m.service, exchange)
            for reason in REJECTION_REASONS:  # what a forged origin is counted under
                self.m_rejected.labels(m.service, "untrusted", reason)
            m.probe("federation", self.refresh_metrics,
                    (self.m_lag, self.m_heard, self.m_held, self.m_outbox_lag, self.m_outbox_lag_s))
        self._heard: dict[str, int] = {}  # origin -> when last heard from (µs)
        # event id -> the origin's correlation id, from the AMQP property (logs only:
        # it is not signed, so it never decides anything)
        self.correlations: dict[str, str] = {}

    @property
    def city_id(self) -> str | None:
        return self.node_id if self.level == "city" else self.parent

    # -- metrics computed at scrape time (shared.metrics: probes) -------------------------
    def heard_from(self, origin: str) -> None:
        self._heard[origin] = now_us()

    def refresh_metrics(self) -> None:
        """Lags from the outbox, its checkpoint and what is held, for this scrape."""
        service, now = self.metrics.service, now_us()
        with self.rt.read() as conn:
            head = self.outbox_head(conn)
            done = self.rt.store.get_checkpoint(conn, PUBLISHER_CHECKPOINT) or 0
            oldest = conn.execute(select(outbox.c.recorded_at_us).where(outbox.c.origin_seq > done)
                                  .order_by(outbox.c.origin_seq).limit(1)).scalar() \
                if head > done else None
            stored = dict(conn.execute(select(inbox.c.origin, inbox.c.updated_at_us)).all())
        self.m_outbox_lag.labels(service).set(max(0, head - done))
        self.m_outbox_lag_s.labels(service).set(max(0.0, (now - oldest) / 1e6) if oldest else 0.0)
        origins = {r.node_id for r in self.registry.all() if r.node_id != self.node_id}
        for origin in origins | set(stored):
            self._declare_origin(origin)
            held = dict(self.sequencer.held.get(origin) or {})
            # the oldest held envelope is younger than the hole before it: a lower bound
            age = 0.0
            if held:
                occurred = held[min(held)][0].get("occurred_at")
                age = max(0.0, (now - iso_to_us(occurred)) / 1e6) if occurred else 0.0
            self.m_lag.labels(service, origin).set(age)
            self.m_held.labels(service, origin).set(len(held))
            heard = max(self._heard.get(origin, 0), stored.get(origin) or 0) or self._started_us
            self.m_heard.labels(service, origin).set(max(0.0, (now - heard) / 1e6))

    def _declare_origin(self, origin: str) -> None:
        """This origin's counters at zero, so their first increase is seen."""
        service = self.metrics.service
        for reason in REJECTION_REASONS:
            self.m_rejected.labels(service, origin, reason)
        for via in ("amqp", "feed"):
            self.m_applied.labels(service, origin, via)
        for outcome in ("ok", "error", "invalid"):
            self.m_pulls.labels(service, origin, outcome)
        self.m_duplicates.labels(service, origin)

    def _metric(self, name, *labels, value=1, set_=False):
        if self.metrics is None:
            return
        m = getattr(self, name).labels(self.metrics.service, *labels)
        m.set(value) if set_ else m.inc(value)

    # =========================================================================== out
    @staticmethod
    def _leaves(ev: StoredEvent) -> bool:
        """A shareable event of a published record: what ``stage`` signs (a draft or a
        node-only record never leaves)."""
        return shareable(ev.event_type) and ev.payload.get("sharing", "node") != "node"

    def _own(self, ev: StoredEvent) -> bool:
        return owner_of(ev.payload[aggregate_of(ev.event_type).id_field]) == self.node_id

    def staged_any(self, committed: list[StoredEvent]) -> bool:
        """Did this commit stage anything (``stage``'s own rule: an event that leaves, of
        a record this node owns)? A replica applied from a peer leaves too, but is the
        peer's: it is never staged here."""
        return any(self._leaves(ev) and self._own(ev) for ev in committed)

    def stage(self, uow, stored: list[StoredEvent]) -> int:
        """Sign this command's shareable events into the outbox (same transaction)."""
        pick = []
        for ev in stored:
            if not self._leaves(ev):
                continue
            if not self._own(ev):
                raise AssertionError("refusing to publish %s of a record this node does not own"
                                     % ev.event_type)
            pick.append(ev)
        if not pick:
            return 0
        conn = uow.conn
        # the log's writer lock is held by this transaction (uow.save appended first):
        # nobody else can compute the same next number, and numbers commit in log order
        seq = self.outbox_head(conn)
        rows = []
        for ev in pick:
            seq += 1
            env = sign({
                "event_id": ev.event_id, "origin": self.node_id, "origin_seq": seq,
                "type": ev.event_type, "schema_version": ev.schema_version,
                "sharing": ev.payload["sharing"], "recipients": list(ev.payload.get("recipients") or []),
                "payload": ev.payload, "occurred_at": utc_z(ev.occurred_at),
                "owner": self.node_id,
            }, self.key)
            exchange, keys = routes_for(env, routing_kind(ev.event_type, ev.payload))
            rows.append({"origin_seq": seq, "event_id": ev.event_id, "position": ev.position,
                         "event_type": ev.event_type, "sharing": env["sharing"],
                         "recipients": env["recipients"], "exchange": exchange,
                         "routing_keys": keys, "envelope": env,
                         "recorded_at_us": ev.recorded_at_us})
            # signed here just now: the feed may vouch for this exact text (the column's
            # own serialisation, what ``wire`` reads back) without verifying it; a
            # rolled-back number's text is simply never served
            self._remember_verified(seq, outbox.c.envelope.type.process_bind_param(
                env, conn.dialect))
            self._metric("m_staged", env["sharing"])
        conn.execute(_OUTBOX_INSERT, rows)
        # the publisher is woken by the provider's after-commit hook, once this commits
        return len(rows)

    def outbox_head(self, conn) -> int:
        return conn.execute(_OUTBOX_HEAD).scalar() or 0

    # ========================================================================== feed
    def feed_page(self, headers, args) -> bytes:
        """The body of ``GET /feed`` (raises ``FeedRefused``/``ValueError``)."""
        try:
            after = int(args.get("after", 0))
            limit = int(args.get("limit", PAGE_MAX))
        except (TypeError, ValueError):
            raise ValueError("after and limit must be integers") from None
        if after < 0 or not 1 <= limit <= PAGE_MAX:
            raise ValueError("after >= 0 and 1 <= limit <= %d" % PAGE_MAX)
        requester = verify_request(headers, self.node_id, after, limit, self.registry)
        level = self.registry.get(requester).level
        with self.rt.read() as conn:
            head = self.outbox_head(conn)
            rows = conn.execute(
                select(outbox.c.origin_seq, outbox.c.event_id, outbox.c.sharing,
                       outbox.c.recipients, wire(outbox.c.envelope).label("envelope"))
                .where(outbox.c.origin_seq > after, outbox.c.origin_seq <= head)
                .order_by(outbox.c.origin_seq).limit(limit)).all()
        through = rows[-1].origin_seq if len(rows) == limit else head
        entries = [(r.origin_seq, r.event_id, r.envelope) for r in rows if audience(
            {"origin": self.node_id, "sharing": r.sharing,
             "recipients": r.recipients}, requester, level)]
        return page_body(self.key, self.node_id, requester, after, through, head, entries,
                         vouch=self._all_verified(entries))

    # -- vouching for a page's entries (shared.federation.feed: vouched pages) -------------
    VERIFIED_MAX = 200_000  # envelope digests remembered (~100 bytes each)

    def _remember_verified(self, seq: int, text: str) -> None:
        """``text`` is an envelope this process signed (or verified) under its key."""
        verified = self._verified
        verified[seq] = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        verified.move_to_end(seq)
        while len(verified) > self.VERIFIED_MAX:
            verified.popitem(last=False)

    def _all_verified(self, entries: list[tuple[int, str, str]]) -> bool:
        """Does every entry text verify under this node's own key? What this process
        signed or checked before is known by the digest of its exact text (memory, not
        the database: a row altered there since is checked again, fails, and the page
        goes out unvouched, its entries then refused one by one by the receiver)."""
        verified, todo = self._verified, []
        for seq, _eid, text in entries:
            if verified.get(seq) != hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest():
                todo.append((seq, text))
        if todo:
            ring = KeyRing({self.node_id: self.key.public_key()})

            def check() -> bool:
                for seq, text in todo:
                    try:
                        env = loads(text)
                        verify(env, ring)
                    except (EnvelopeRejected, ValueError):
                        return False
                    if env.get("origin") != self.node_id or env.get("origin_seq") != seq:
                        return False
                return True
            if not _native(check):
                return False
            for seq, text in todo:
                self._remember_verified(seq, text)
        return True

    # ============================================================================ in
    def load_state(self) -> None:
        """(Re)start from the database's watermarks, nothing held.

        A *re*load (after the consumer's error, or the database disagreeing) forgets
        what was held in memory, and those messages were acknowledged (``step``): the
        broker will not bring them again, and when they were an origin's last numbers
        no later one reveals the hole - they stayed missing until the periodic sync (an
        hour in the scale bench). So every peer's feed is read once after a reload
        (``_resync``, by ``repair_due``, each until a pull of it succeeds)."""
        with self.rt.read() as conn:
            rows = conn.execute(select(inbox.c.origin, inbox.c.applied_through)).all()
        self.sequencer.load((r[0], r[1]) for r in rows)
        if self._ever_loaded:
            self._resync.update(r.node_id for r in self.registry.all()
                                if r.node_id != self.node_id and r.feed_url)
        self._loaded = self._ever_loaded = True

    def _origin_label(self, origin) -> str:
        # a forged origin must not create a metric series per made-up name
        if isinstance(origin, str) and self.registry.public_key(origin) is not None:
            return origin
        return "untrusted"

    def _rejected(self, exc: EnvelopeRejected, via: str) -> None:
        """Count, log and remember a refusal (never projected)."""
        origin = self._origin_label(exc.origin)
        self._metric("m_rejected", origin, exc.reason)
        self.rejected_counts[exc.reason] = self.rejected_counts.get(exc.reason, 0) + 1
        entry = {"at": datetime.now(timezone.utc).isoformat(), "origin": exc.origin,
                 "signer": exc.signer, "event_id": exc.event_id, "reason": exc.reason,
                 "via": via, "message": exc.message}
        self.recent_rejections.append(entry)
        log.warning("federation: rejected %s from %s via %s (%s): %s", exc.event_id,
                    exc.origin, via, exc.reason, exc.message)

    def _verify(self, env) -> dict:
        """``envelope.verify`` plus "is this node in the audience" (raises)."""
        if not isinstance(env, dict):
            raise InvalidPayload("entry is not a JSON object")
        verify(env, self.registry)
        self.heard_from(env["origin"])  # authentic: the origin is alive
        if not audience(env, self.node_id, self.level, self.parent):
            raise NotEntitled("this node (%s) is not in the audience of a %r record"
                              % (self.node_id, env.get("sharing")), env)
        return env

    def verify_entries(self, origin: str, entries: list,
                       vouched: bool = False) -> list[tuple[dict, object]]:
        """(entry, None or the rejection) for a feed page's entries, in order
        (``vouched``: ``check_entries``).

        Ed25519 verification releases the GIL, so under nameko the signatures are
        checked in a native thread (``eventlet.tpool``) while other green threads run.
        The origin's key is looked up here first (the registry is a database); an entry
        signed by a node other than its origin takes the ordinary path, to get its
        precise rejection.
        """
        key = self.registry.public_key(origin)
        ring = KeyRing({origin: key}) if key is not None else None
        me, level, parent = self.node_id, self.level, self.parent
        return self.resolve_slow(_native(lambda: check_entries(entries, origin, ring, me,
                                                                level, parent, vouched)))

    def resolve_slow(self, checked: list) -> list:
        out = list(checked)
        for i, (entry, outcome) in enumerate(out):
            if outcome is _SLOW:
                try:
                    out[i] = (self._verify(entry), None)
                except EnvelopeRejected as exc:
                    out[i] = (entry, exc)
        return out

    def receive(self, bodies: Iterable[bytes], via: str = "amqp") -> None:
        """Handle a batch of AMQP message bodies (called by the consumer thread).

        Whatever a body holds, it ends here as applied, held, a duplicate or a counted
        rejection - never as an exception that would have the broker deliver it again
        for ever. Nothing received this way consumes a sequence number by being refused:
        only the origin's own feed may say what a number holds (the hole is filled from
        there), so one authentic but refused message cannot erase the genuine record.
        """
        if not self._loaded:
            self.load_state()
        fresh, own, seen = [], [], []
        for body in bodies:
            try:
                env = loads(body)
            except EnvelopeRejected as exc:
                self._rejected(exc, via)
                continue
            origin, seq = env.get("origin"), env.get("origin_seq")
            if not (isinstance(origin, str) and type(seq) is int):
                fresh.append(env)  # verify names what is wrong with it
            elif origin == self.node_id:
                own.append(env)
            elif seq <= self.sequencer.watermark.get(origin, 0):
                seen.append(env)
            else:
                fresh.append(env)
        if own:
            self._check_own(own, via)
        if seen:
            self._check_seen(seen, via)
        for env in fresh:
            if not self._passes(env, via):
                continue
            origin, seq = env["origin"], env["origin_seq"]
            offer = self.sequencer.offer(origin, seq, (env, None))
            if offer is Offer.DUPLICATE:
                held = (self.sequencer.held.get(origin) or {}).get(seq)
                if held is not None and not same_record(held[0], env):
                    self._rejected(SequenceReused(
                        "%s #%d differs from the record held under that number"
                        % (origin, seq), env), via)
                else:
                    self._metric("m_duplicates", origin)
        self._apply_ready(self.sequencer.ready_origins(), via)
        self._update_held()

    def _passes(self, env, via: str) -> bool:
        """``_verify``, any refusal counted and logged: False when refused."""
        try:
            self._verify(env)
            return True
        except EnvelopeRejected as exc:
            self._rejected(exc, via)
        except _INFRASTRUCTURE:
            raise
        except Exception as exc:  # noqa: BLE001 - a body no check foresaw
            self._rejected(unreadable(exc, env), via)
        return False

    def _check_own(self, envelopes: list[dict], via: str) -> None:
        """This node's own records come back through its own binding: skip those that
        are exactly what the outbox holds under their number, count the rest."""
        with self.rt.read() as conn:
            mine = _rows_by_seq(conn, outbox.c.origin_seq, outbox.c.envelope,
                                {e["origin_seq"] for e in envelopes})
        for env in envelopes:
            held = mine.get(env["origin_seq"])
            if held is None or not same_record(held, env):
                self._rejected(OwnOrigin("claims to be %s's #%d, which is not what %s published"
                                         % (self.node_id, env["origin_seq"], self.node_id),
                                         env), via)

    def _check_seen(self, envelopes: list[dict], via: str) -> None:
        """Numbers at or below the watermark: a redelivery of what was received is a
        duplicate (no signature check needed, it changes nothing); anything else under
        an old number is checked and counted under its own reason."""
        by_origin: dict[str, list[dict]] = {}
        for env in envelopes:
            by_origin.setdefault(env["origin"], []).append(env)
        with self.rt.read() as conn:
            known = {}
            for origin, envs in by_origin.items():
                rows = conn.execute(select(received.c.origin_seq, received.c.outcome,
                                           received.c.envelope, events.c.payload)
                                    .select_from(received.outerjoin(
                                        events, events.c.position == received.c.position))
                                    .where(received.c.origin == origin,
                                           received.c.origin_seq.in_(sorted(
                                               {e["origin_seq"] for e in envs})))).all()
                for seq, outcome, kept, payload in rows:
                    known[(origin, seq)] = _stored_fingerprint(kept, payload)
        for env in envelopes:
            origin, seq = env["origin"], env["origin_seq"]
            try:
                same = known.get((origin, seq)) == _fingerprint(env)
            except (ValueError, RecursionError):
                same = False  # cannot even be written down: certainly not what we hold
            if same:
                self._metric("m_duplicates", self._origin_label(origin))
                continue
            if not self._passes(env, via):
                continue
            self._rejected(SequenceReused(
                "%s #%d differs from what this node received under that number"
                % (origin, seq) if (origin, seq) in known else
                "%s #%d: the origin's feed said that number was not for this node"
                % (origin, seq), env), via)

    def _update_held(self) -> None:
        if self.metrics is None:
            return
        for origin in list(self.sequencer.held):
            self._metric("m_held", origin, value=self.sequencer.held_count(origin), set_=True)

    def _apply_ready(self, origins, via: str) -> None:
        """Apply what the sequencer holds ready for ``origins``, up to 1,000 records a
        transaction - the origins of one consumer batch together. Why together: a
        district's own records come back to it beside the other origins' (a network's
        clients send at the same moments), and the city gets every district's at once;
        one transaction per origin made a gathered batch of two messages two
        transactions of one record, each paying the lock, the commit and the relay's
        batch after it. Each origin's records are still applied in its order, and
        checked after the origins before it in the transaction, as if committed one
        after another (a sub-record's parent applied just before is seen)."""
        batch: list[tuple] = []
        size = 0
        for origin in origins:
            items = self.sequencer.take_ready(origin)
            for i in range(0, len(items), 1000):
                chunk = items[i:i + 1000]
                if batch and size + len(chunk) > 1000:
                    self._apply_all(batch, via)
                    batch, size = [], 0
                    if not self._loaded:
                        return  # the database disagreed: reload, the feed supplies the rest
                batch.append((origin, chunk[0][0] - 1,
                              [(seq, env, refused) for seq, (env, refused) in chunk],
                              chunk[-1][0]))
                size += len(chunk)
        if batch:
            self._apply_all(batch, via)

    # -- content checks ------------------------------------------------------------------
    def _check_content(self, conn, env: dict, verdict=None) -> tuple[type, str]:
        """The entry's content against its contract (``content_verdict``, or ``verdict``:
        the same, made already - a feed page's in the prefetch's native thread), then
        its parent record here (the database)."""
        agg, stream_id, parent_id = verdict if verdict is not None else content_verdict(env)
        if parent_id is not None:
            self._check_parent(conn, env, parent_id)
        return agg, stream_id

    def _check_parent(self, conn, env: dict, parent_id: str) -> None:
        from services.exchange.queries import may_see, record_row
        cache = self._parents
        if parent_id not in cache:
            cache[parent_id] = record_row(conn, parent_id)
        row = cache[parent_id]
        if row is None:
            # not here (yet): it may come later from its owner; the queries still hide
            # a sub-record whose owner turns out not to be entitled (projections.py)
            return
        if not may_see(row, env["origin"], self.city_id):
            raise NotEntitled("%s may not add to %s (shared %s)"
                              % (env["origin"], parent_id, row["sharing"]), env)

    # -- the transaction ----------------------------------------------------------------
    def _apply(self, origin: str, after: int, items: list[tuple[int, dict, object]],
               through: int, via: str) -> None:
        """Apply envelopes of ``origin`` that continue from ``after`` and close the range
        up to ``through`` (a feed page skips numbers that were not for this node).
        ``items``: (seq, envelope, rejection or None) - an authentic envelope that
        ``verify`` already refused for its content still consumes its number."""
        self._apply_all([(origin, after, items, through)], via)

    def _apply_all(self, ranges: list[tuple[str, int, list, int]], via: str) -> None:
        """``_apply`` for several (origin, after, items, through) in one transaction, in
        that order; what each applied is noted (sequencer, metrics) after the commit.

        What every range needs and no range changes for another is read and written
        once for the transaction, not once per origin: the origins' watermark rows and
        the streams' versions up front, the ``federation_received`` rows and the
        watermarks at the end. Why: on the live path a gathered batch holds a record or
        two from each of many origins (a district of 11 receives the ten others' and
        its own echo), and the four statements per origin were most of what such a
        record cost to apply (docs/scaling.md). The records themselves are still
        appended origin by origin, so a later origin's records are checked against what
        an earlier one's added (``_check_parent``)."""
        rt = self.rt
        now = now_us()
        done = []
        with rt.unit_of_work(system_actor(self.node_id, "system:federation")) as uow:
            conn = uow.conn
            # the log's writer lock: serialises us with commands and with any other
            # process consuming for this node; each watermark is read under it
            rt.store.lock(conn)
            marks = {r.origin: {**r._mapping, "_write": None} for r in conn.execute(
                _INBOX_ROWS, {"origins": sorted({o for o, *_rest in ranges})})}
            versions = self._stream_versions(conn, [i for _o, _a, items, _t in ranges
                                                    for i in items])
            received_rows: list[dict] = []
            for origin, after, items, through in ranges:
                outcome = self._apply_range(uow, origin, after, items, through, via, now,
                                            marks, versions, received_rows)
                if outcome is None:
                    break  # reloading: the ranges before it were checked and still commit
                done.append(outcome)
            insert_rows(conn, received, received_rows)
            moved = {"insert": [], "update": []}
            for origin, mark in marks.items():
                write = mark.pop("_write")
                if write is not None:  # moved in this transaction
                    moved[write].append(mark)
            if moved["insert"]:
                conn.execute(_INBOX_INSERT, moved["insert"])
            if moved["update"]:
                conn.execute(_INBOX_UPDATE, [dict(m, b_origin=m.pop("origin"))
                                             for m in moved["update"]])
        # only now is it committed: the sequencer (and so the consumer's ack) may move on
        for origin, through, refetch, applied in done:
            if through is not None:
                self.sequencer.applied(origin, through)
            if refetch:
                self.sequencer.note_gap(origin)
            if applied:
                self._metric("m_applied", origin, via, value=applied)

    def _apply_range(self, uow, origin: str, after: int, items: list, through: int, via: str,
                     now: int, marks: dict, versions: dict, received_rows: list) -> tuple | None:
        """One origin's part of ``_apply_all``: (origin, its new watermark or None,
        refetch, records applied), or None if the database's watermark is not ``after``.
        ``marks``: origin -> its ``federation_inbox`` row as a dict (read up front, moved
        here, written by ``_apply_all``: ``_write`` says how); ``versions``: the streams'
        current versions, moved as records are appended; ``received_rows``: the
        ``federation_received`` rows, inserted by ``_apply_all``."""
        conn = uow.conn
        row = marks.get(origin)
        db_w = row["applied_through"] if row else 0
        if db_w != after:
            log.warning("federation: %s watermark is %d here but %d in the database; "
                        "reloading", origin, after, db_w)
            self._loaded = False
            return None
        new, rows, accepted_at, rejected = [], [], [], 0
        self._parents = {}  # parent records looked up for this batch
        last_occurred = row["last_occurred_at"] if row else None
        refetch = False
        prechecked = self._prechecked
        for seq, env, refused in items:
            try:
                if refused is not None:
                    raise refused
                try:
                    verdict = prechecked.get(id(env)) if prechecked else None
                    if isinstance(verdict, BaseException):
                        raise verdict
                    agg, stream_id = self._check_content(conn, env, verdict)
                except (EnvelopeRejected, *_INFRASTRUCTURE):
                    raise
                except Exception as exc:  # noqa: BLE001 - a payload no check foresaw
                    raise InvalidPayload("payload breaks a check (%s: %s)"
                                         % (type(exc).__name__, exc), env) from None
            except UnsupportedSchema as exc:
                self._rejected(exc, via)
                through = seq - 1  # the origin waits here until this node is upgraded
                break
            except EnvelopeRejected as exc:
                if refused is None:
                    self._rejected(exc, via)
                if via != "feed":
                    # a message proves nothing about its number: only the origin's
                    # own feed may say it holds a refused record. Stop before it and
                    # fetch the number from there (the genuine record, if any).
                    through, refetch = seq - 1, True
                    break
                rejected += 1
                rows.append(self._received_row(env, via, "rejected:" + exc.reason, now))
                continue
            versions[stream_id] = versions.get(stream_id, 0) + 1
            new.append(NewEvent(stream_id, agg.stream_type, versions[stream_id], env["type"],
                                env["schema_version"], env["payload"],
                                {"node": origin,
                                 # the origin's, when its message said (else its event id)
                                 "correlation_id": self.correlations.pop(
                                     env["event_id"], None) or env["event_id"],
                                 "occurred_at": env["occurred_at"]},
                                event_id=env["event_id"]))
            rows.append(self._received_row(env, via, "applied", now))
            accepted_at.append(len(rows) - 1)
            last_occurred = env["occurred_at"]
        if through <= after:
            # nothing taken: versions counted for records not appended are given back
            for ev in new:
                versions[ev.stream_id] -= 1
            return origin, None, refetch, 0
        stored = uow.append_events(new, recorded_at_us=now,
                                   writer=self._batch_writer(conn, new)) if new else []
        for i, ev in zip(accepted_at, stored):
            rows[i]["position"] = ev.position
        received_rows.extend(rows)
        applied = len(stored)
        marks[origin] = dict(origin=origin, applied_through=through,
                             events_applied=(row["events_applied"] if row else 0) + applied,
                             rejected=(row["rejected"] if row else 0) + rejected,
                             last_occurred_at=last_occurred, updated_at_us=now,
                             _write="insert" if row is None or row["_write"] == "insert"
                             else "update")
        return origin, through, refetch, applied

    def _stream_versions(self, conn, items) -> dict[str, int]:
        """Current versions of every stream this batch may append to, in one query."""
        ids = set()
        for _seq, env, _refused in items:
            agg = aggregate_of(env.get("type", ""))
            rid = (env.get("payload") or {}).get(agg.id_field) if agg else None
            if isinstance(rid, str):
                ids.add(agg.stream_id_for(rid))
        out: dict[str, int] = {}
        ids = sorted(ids)
        stmt, per = _stream_versions_sql(conn.dialect)
        for i in range(0, len(ids), per):
            out.update(conn.execute(stmt, {"ids": ids[i:i + per]}).all())
        return out

    @staticmethod
    def _batch_writer(conn, new: list[NewEvent]) -> BatchWriter:
        """The read models for a batch of replicas are written through a ``BatchWriter``
        (a thousand new records cost a handful of statements, not five thousand), with
        every record and sub-record the batch touches fetched in two queries up front."""
        from services.exchange.projections import records, subs
        record_ids, sub_ids = set(), set()
        for ev in new:
            agg = aggregate_of(ev.event_type)
            p = ev.payload
            (record_ids if agg.stream_type in ROOT_STREAMS else sub_ids).add(p.get(agg.id_field))
            for field in ("case_id", "problem_id", "activity_id", "experience_id", "exemplar_id",
                          "record_id", "parent_id"):
                if field in p and field != agg.id_field:
                    record_ids.add(p[field])
            sub_ids.update(p.get("merged_now") or ())
            if "proposal_id" in p and agg.stream_type != "Proposal":
                sub_ids.add(p["proposal_id"])
        w = BatchWriter(conn)
        w.prefetch(records, record_ids)
        w.prefetch(subs, sub_ids)
        return w

    @staticmethod
    def _received_row(env: dict, via: str, outcome: str, now: int) -> dict:
        """What was received, signature included, without the payload. An applied
        envelope's payload is the event in the log (same event id): the signed envelope
        can be put back together and verified again at any time. A refused one keeps
        only the payload's SHA-256 - what a misbehaving peer sent (a field the contract
        does not have, a person's name) is evidence of the refusal, not data to keep."""
        kept = {k: v for k, v in env.items() if k != "payload"}
        if outcome != "applied":
            kept["payload_sha256"] = payload_sha256(env.get("payload"))
        return {"origin": env["origin"], "origin_seq": env["origin_seq"],
                "event_id": env["event_id"], "position": None, "outcome": outcome,
                "via": via, "envelope": kept,
                "received_at_us": now}

    # -- pulling ----------------------------------------------------------------------------
    def pull(self, origin: str, first: "_Prefetch | None" = None) -> int:
        """Read ``origin``'s feed from our watermark up to its head; returns the
        entries taken. Transport errors are raised (the caller backs off). ``first``:
        its first page, already asked for (``sync_all``; used only if it starts at the
        watermark)."""
        # the next page, asked for while this one is applied
        ahead = first
        try:
            if not self._loaded:
                self.load_state()
            record = self.registry.get(origin)
            if record is None or not record.feed_url or origin == self.node_id:
                return 0
            total = 0
            while True:
                after = self.sequencer.watermark.get(origin, 0)
                if ahead is not None and ahead.after != after:
                    ahead.wait()  # stale (this page stopped short): one request at a time
                    ahead = None
                try:
                    page = ahead.result() if ahead is not None else \
                        self.feed_client.fetch(record.feed_url, origin, after, PAGE_MAX)
                except FeedPageInvalid as exc:
                    exc.origin = origin
                    self._rejected(exc, "feed")
                    self._metric("m_pulls", origin, "invalid")
                    raise
                finally:
                    ahead = None
                self._metric("m_pulls", origin, "ok")
                self.heard_from(origin)
                checked = page.checked or self.verify_entries(origin, page.entries,
                                                              page.vouched)
                if not page.complete and page.through > after:
                    # catching up: the origin prepares the next page, and its signatures
                    # are checked on another core, while we apply this one (it is used
                    # only if this page takes us to `through`)
                    ahead = _Prefetch(self, record.feed_url, origin, page.through)
                    # let it send the request before we apply: the origin then prepares
                    # the page while this one is written (a green thread runs only when
                    # this one yields, and applying does not)
                    time.sleep(0)
                items, through, blocked = [], page.through, False
                for entry, outcome in checked:
                    try:
                        if outcome is not None:
                            raise outcome
                        items.append((entry["origin_seq"], entry, None))
                    except (NotOwner, NotEntitled) as exc:
                        # authentic (the signature verified) but not acceptable: it is
                        # recorded as rejected and its number consumed
                        self._rejected(exc, "feed")
                        items.append((entry["origin_seq"], entry, exc))
                    except EnvelopeRejected as exc:
                        # the origin signed the page, yet this entry does not verify (its
                        # key was replaced and we were not told?): stop before it, never
                        # skip it
                        self._rejected(exc, "feed")
                        through, blocked = entry.get("origin_seq", after + 1) - 1, True
                        break
                if through > after:
                    self._prechecked = page.verdicts
                    try:
                        self._apply(origin, after, items, through, "feed")
                    finally:
                        self._prechecked = {}
                    if not self._loaded:
                        self.load_state()
                        continue
                    total += len(items)
                if origin in self.sequencer.ready_origins():
                    self._apply_ready([origin], "amqp")
                self._update_held()
                if page.complete:
                    self._unfillable(origin, page.head)
                if blocked or page.complete or self.sequencer.watermark.get(origin, 0) <= after:
                    return total
        finally:
            if ahead is not None:
                ahead.wait()

    def _backing_off(self, origin: str) -> bool:
        return time.monotonic() < self._pull_backoff.get(origin, (0.0, 0.0))[0]

    def _pull_guarded(self, origin: str, first: "_Prefetch | None" = None) -> None:
        """Pull with per-origin back-off: an origin that is down is not hammered."""
        until, delay = self._pull_backoff.get(origin, (0.0, 0.0))
        if time.monotonic() < until:
            if first is not None:
                first.wait()
            return
        try:
            self.pull(origin, first)
            self._pull_backoff.pop(origin, None)
            self._resync.discard(origin)
        except (FeedError, FeedPageInvalid, OSError) as exc:
            delay = min(max(delay * 2, 1.0), 60.0)
            self._pull_backoff[origin] = (time.monotonic() + delay, delay)
            self._metric("m_pulls", origin, "error")
            log.warning("federation: pulling %s's feed failed (%s); next try in %.0fs",
                        origin, exc, delay)

    def _unfillable(self, origin: str, head: int) -> None:
        """Held numbers above the head of the origin's own signed feed: reported and
        dropped (ordering module doc). If the origin ever reaches them, its feed has them."""
        dropped = self.sequencer.beyond(origin, head)
        if dropped:
            self._metric("m_unfillable", origin, value=len(dropped))
            log.warning("federation: %d envelope(s) of %s numbered beyond its feed's head %d "
                        "(first %d, last %d) cannot be filled; dropped, not polled for",
                        len(dropped), origin, head, dropped[0], dropped[-1])

    def repair_due(self) -> None:
        for origin in sorted(self._resync):
            self._pull_guarded(origin)  # skipped while it backs off; kept until it succeeds
        for origin in self.sequencer.gaps():
            self._pull_guarded(origin)
            if self.sequencer.has_gap(origin):
                wait = self.sequencer.repair_failed(origin)
                log.info("federation: %s's gap after %d is still open; next pull in %.1fs",
                         origin, self.sequencer.watermark.get(origin, 0), wait)

    def sync_all(self) -> None:
        """Pull every peer's feed, one after another (one thread applies: module doc);
        while one is pulled, the next one's first page is already asked for and checked
        (``_Prefetch``), so a catching-up node does not wait for it between origins."""
        peers = [r for r in self.registry.all() if r.node_id != self.node_id and r.feed_url]
        following = None
        try:
            for i, record in enumerate(peers):
                first, following = following, None
                if i + 1 < len(peers) and not self._backing_off(peers[i + 1].node_id):
                    nxt = peers[i + 1]
                    if not self._loaded:
                        self.load_state()
                    following = _Prefetch(self, nxt.feed_url, nxt.node_id,
                                          self.sequencer.watermark.get(nxt.node_id, 0))
                self._pull_guarded(record.node_id, first)
        finally:
            if following is not None:
                following.wait()
        self.last_sync_us = now_us()

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict:
        from shared.store import checkpoints
        with self.rt.read() as conn:
            origins = [dict(r) for r in conn.execute(select(inbox).order_by(inbox.c.origin)).mappings()]
            head = self.outbox_head(conn)
            published = conn.execute(select(checkpoints.c.position).where(
                checkpoints.c.name == PUBLISHER_CHECKPOINT)).scalar() or 0
            rejected = conn.execute(select(received.c.origin, received.c.outcome, func.count())
                                    .where(received.c.outcome.like("rejected%"))
                                    .group_by(received.c.origin, received.c.outcome)).all()
        # an origin whose first records are all held behind a hole has no inbox row yet (the
        # row is written when something is applied): listed all the same, or its lag would
        # show nowhere. The held map is the consumer's: read once, as a copy of its keys.
        listed = {o["origin"] for o in origins}
        for origin in [o for o in list(self.sequencer.held) if o not in listed]:
            if self.sequencer.held_count(origin):
                origins.append({"origin": origin, "applied_through": 0, "events_applied": 0,
                                "rejected": 0, "last_occurred_at": None, "updated_at_us": None})
        origins.sort(key=lambda o: o["origin"])
        now = now_us()
        for o in origins:
            o["held"] = self.sequencer.held_count(o["origin"])
            heard = max(self._heard.get(o["origin"], 0), o.pop("updated_at_us", None) or 0)
            o["last_heard_at"] = _iso_us(heard) if heard else None
            # the oldest envelope held back for a missing predecessor: how far behind we are
            held = dict(self.sequencer.held.get(o["origin"]) or {})
            occurred = held[min(held)][0].get("occurred_at") if held else None
            o["lag_seconds"] = round(max(0.0, (now - iso_to_us(occurred)) / 1e6), 1) if occurred else 0.0
        by_reason: dict[str, int] = {}
        for _origin, outcome, n in rejected:
            reason = outcome.split(":", 1)[1] if ":" in outcome else "rejected"
            by_reason[reason] = by_reason.get(reason, 0) + n
        peers = [{"node_id": r.node_id, "level": r.level, "parent": r.parent,
                  "fingerprint": key_fingerprint(r.public_key), "feed_url": r.feed_url,
                  "trusted_at": r.trusted_at.isoformat(), "this_node": r.node_id == self.node_id}
                 for r in self.registry.all()]
        last_sync = self.last_sync_us
        return {"node": self.node_id, "level": self.level, "city": self.city_id,
                "outbox": {"head": head, "published": published, "pending": head - published},
                "inbox": origins, "recent_rejections": list(self.recent_rejections),
                "peers": peers, "rejected_by_reason": dict(sorted(by_reason.items())),
                # every refusal since this process started, forged and unreadable ones too
                # (those have no origin to record them under)
                "rejected_since_start": dict(sorted(self.rejected_counts.items())),
                "last_sync_at": _iso_us(last_sync) if last_sync else None,
                "sync_interval_seconds": self.sync_interval}


def _iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat()


def resign_outbox(engine, key, node_id: str, batch: int = 1000) -> int:
    """Sign every envelope of the outbox again with ``key`` (after a key rotation).

    Peers trust only the new key once re-trusted, and envelopes are never skipped: an
    old-key envelope they pull from the feed would hold that origin up for good. The
    content is unchanged, so receivers that applied the old copy see the new one as a
    duplicate. Returns the number of envelopes signed.
    """
    done, after = 0, 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(outbox.c.origin_seq, outbox.c.envelope)
                                .where(outbox.c.origin_seq > after)
                                .order_by(outbox.c.origin_seq).limit(batch)).all()
            for seq, env in rows:
                if env["origin"] != node_id:
                    raise ValueError("outbox row %d is not %s's" % (seq, node_id))
                env = sign({k: v for k, v in env.items() if k != "signature"}, key)
                conn.execute(update(outbox).where(outbox.c.origin_seq == seq).values(envelope=env))
        if not rows:
            return done
        done += len(rows)
        after = rows[-1].origin_seq


# ================================================================== publisher thread
_SLOW = object()  # marker: verify this entry on the ordinary path


def _patched() -> bool:
    import eventlet.patcher
    return eventlet.patcher.is_monkey_patched("thread")


def _unpatched_http_client():
    """eventlet's unpatched ``http.client`` (blocking sockets: for a native thread only).
    ``patcher.original`` re-imports the module the first time, and that import sets the
    ``http`` package's ``client`` attribute to the unpatched copy; eventlet puts back
    ``sys.modules["http.client"]`` but not the attribute, so every later
    ``http.client.X`` in the process - a green thread's HTTP client, the stdlib's own
    HTTPMessage and LineTooLong - would have reached the blocking copy. Put back here."""
    import http
    import sys
    from eventlet import patcher
    unpatched = patcher.original("http.client")
    http.client = sys.modules["http.client"]
    return unpatched


def _native(fn):
    """Run ``fn`` in a native thread when eventlet patched this process (a green thread
    waits for it while the others run), else right here."""
    if _patched():
        from eventlet import tpool
        return tpool.execute(fn)
    return fn()


def content_verdict(env: dict) -> tuple[type, str, str | None]:
    """(aggregate, stream id, parent record id or None) of an entry whose content
    passes every check that needs no database: a known shared type, a schema version
    understood here, the contract, no NUL, the envelope's sharing, the owner, ids that
    fit their columns; else the rejection is raised. Pure, so that a feed page's
    entries are checked in the prefetch's native thread (``precheck``); the parent
    record's check, which reads the database, is ``Federation._check_parent``."""
    event_type = env["type"]
    cls = EVENT_TYPES.get(event_type)
    agg = aggregate_of(event_type)
    if cls is None or agg is None or cls.private or issubclass(cls, _Created):
        # (a draft's first event never crosses: its content travels in Published)
        raise UnknownType("%s is not a shared event type here" % event_type, env)
    if env["schema_version"] > cls.schema_version:
        raise UnsupportedSchema("%s v%d is newer than this node understands (v%d)"
                                % (event_type, env["schema_version"], cls.schema_version), env)
    p = env["payload"]
    check = _contract(event_type, env["schema_version"])
    if check is None:
        raise UnknownType("no contract for %s v%d" % (event_type, env["schema_version"]), env)
    error = check(p)
    if error is not None:
        raise InvalidPayload("payload does not match %s: %s" % (event_type, error), env)
    if _has_nul(p):
        # PostgreSQL cannot store it: the whole batch would fail, and come again
        raise InvalidPayload("text with a NUL character cannot be stored", env)
    if p.get("sharing") != env["sharing"] or sorted(p.get("recipients") or []) != env["recipients"]:
        raise InvalidPayload("the payload's sharing level contradicts the envelope's", env)
    rid = p.get(agg.id_field)
    if owner_of(rid) != env["origin"]:
        raise NotOwner("%s is about %s, which %s does not own" % (event_type, rid, env["origin"]), env)
    parent_id = None
    if agg.stream_type == "Comment":
        parent_id = p["record_id"]
    elif getattr(agg, "parent_field", ""):
        parent_id = p[agg.parent_field]
    stream_id = agg.stream_id_for(rid)
    if len(env["event_id"]) > events.c.event_id.type.length or \
            len(stream_id) > events.c.stream_id.type.length:
        # PostgreSQL would refuse the row, and with it the batch, again and again
        raise InvalidPayload("event id or record id too long to store", env)
    return agg, stream_id, parent_id


def check_entries(entries: list, origin: str, ring, me: str, level: str, parent,
                  vouched: bool = False) -> list:
    """(entry, None | rejection | _SLOW) per entry: pure (no database), so it may run
    in a native thread; ``ring`` holds the origin's key only. ``vouched``: the page's
    ``entries_signature`` verified (``shared.federation.feed``), so the origin's
    signatures are not checked again one by one; an entry signed by anyone else still
    takes the ordinary path."""
    out = []
    for entry in entries:
        if ring is None or not isinstance(entry, dict) or entry.get("signer") != origin:
            out.append((entry, _SLOW))
            continue
        try:
            verify(entry, ring, vouched=vouched)
            if not audience(entry, me, level, parent):
                raise NotEntitled("this node (%s) is not in the audience of a %r record"
                                  % (me, entry.get("sharing")), entry)
            out.append((entry, None))
        except EnvelopeRejected as exc:
            out.append((entry, exc))
    return out


def precheck(checked: list) -> dict[int, object]:
    """id(entry) -> ``content_verdict``'s result, or the rejection it raised, for the
    entries that verified. Made in the prefetch's native thread, which runs while the
    applying thread waits for PostgreSQL (a page's COPY holds no interpreter lock):
    the contract checks were a sixth of the applying thread's CPU. An infrastructure
    error (a contract file unreadable) leaves the entry to be checked when applied."""
    out: dict[int, object] = {}
    for entry, outcome in checked:
        if outcome is not None:
            continue
        try:
            out[id(entry)] = content_verdict(entry)
        except EnvelopeRejected as exc:
            out[id(entry)] = exc
        except _INFRASTRUCTURE:
            pass  # no verdict: the applying thread checks it, and retries as it does
        except Exception as exc:  # noqa: BLE001 - as _apply_range words it
            out[id(entry)] = InvalidPayload("payload breaks a check (%s: %s)"
                                            % (type(exc).__name__, exc), entry)
    return out


class _Prefetch:
    """The next feed page, downloaded and verified in the background.

    Under nameko (eventlet) all of it - the HTTP request on an unpatched socket, the
    JSON, the page signature and the ~1,000 entry signatures - runs in a native thread
    (``eventlet.tpool``), so it proceeds on the other core while this node's green
    thread applies the current page; applying never yields, so a green prefetch would
    only start once it was done. Only what needs the registry (a database) stays in
    the green thread: the origin's key, looked up first, and the rare entry signed by
    a node other than its origin.
    """

    def __init__(self, fed: "Federation", url: str, origin: str, after: int):
        self.after = after
        self._page = self._error = None
        key = fed.registry.public_key(origin)
        self._ring = KeyRing({origin: key}) if key is not None else None
        self._thread = threading.Thread(target=self._run, args=(fed, url, origin, after),
                                        daemon=True)
        self._thread.start()

    def _run(self, fed, url, origin, after):
        try:
            if _patched() and self._ring is not None:
                from eventlet import patcher, tpool
                http_client = _unpatched_http_client()
                ring, me, level, parent = self._ring, fed.node_id, fed.level, fed.parent

                native_threading = patcher.original("threading")

                def work():
                    page = fetch_page(http_client, fed.key, me, ring, url, origin, after)
                    if page.vouched:  # no signatures to check: nothing to share out
                        page.checked = check_entries(page.entries, origin, ring, me, level,
                                                     parent, vouched=True)
                        page.verdicts = precheck(page.checked)
                        return page
                    # the signature checks release the GIL: half of them on a second
                    # native thread, so that both cores check while the page is applied
                    half = len(page.entries) // 2
                    second: list = []
                    helper = native_threading.Thread(target=lambda: second.extend(
                        check_entries(page.entries[half:], origin, ring, me, level, parent)))
                    helper.start()
                    first = check_entries(page.entries[:half], origin, ring, me, level, parent)
                    helper.join()
                    page.checked = first + second
                    page.verdicts = precheck(page.checked)
                    return page
                page = tpool.execute(work)
                page.checked = fed.resolve_slow(page.checked)
                # (an entry resolved here, signed by another node, is checked when applied)
            else:
                page = fed.feed_client.fetch(url, origin, after, PAGE_MAX)
                page.checked = fed.verify_entries(origin, page.entries, page.vouched)
            self._page = page
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._page

    def wait(self) -> None:
        self._thread.join()


# the outbox after the publisher's checkpoint, in order, each row with its log event's
# metadata (an outer join: a row whose event is missing still goes, without correlation id)
_PUBLISH_BATCH = (
    select(outbox, wire(outbox.c.envelope).label("body"), events.c.meta)
    .select_from(outbox.outerjoin(events, events.c.position == outbox.c.position))
    .where(outbox.c.origin_seq > after_checkpoint())  # its checkpoint in the same statement
    .order_by(outbox.c.origin_seq).limit(bindparam("limit"))
)


class OutboxPublisher:
    """Publishes the outbox in order, checkpoint after broker confirmation."""

    def __init__(self, fed: Federation, amqp_uri: str, batch_size: int = 500):
        self.fed = fed
        self.store = fed.rt.store
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self._conn = None
        self._producer = None
        self.on_connection = fed.metrics.connection("federation-publisher") if fed.metrics \
            else (lambda _up: None)
        self.check_broker = BrokerWatch(lambda: (self._producer_ready(), self._conn)[1])

    def _producer_ready(self) -> Producer:
        if self._producer is None:
            self._conn = AmqpConnection(self.amqp_uri, heartbeat=0, connect_timeout=5)
            channel = self._conn.channel()
            for name in EXCHANGES:
                Exchange(name, type="topic", durable=True, auto_delete=False)(channel).declare()
            channel.tx_select()
            self._producer = Producer(channel)
            self.on_connection(True)
        return self._producer

    def close(self) -> None:
        try:
            if self._conn is not None:
                self._conn.release()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass
        self._conn = self._producer = None
        self.on_connection(False)

    def run_once(self) -> int:
        with readonly(self.store.engine.connect()) as conn:
            # each message carries its event's correlation id (shared.logs) to the peers:
            # its metadata comes with the row in the same statement (a second query per
            # batch was a fifth of a batch's statements), and so does the checkpoint
            rows = conn.execute(_PUBLISH_BATCH, {"cp_name": PUBLISHER_CHECKPOINT,
                                                 "limit": self.batch_size}).all()
        if not rows:
            return 0
        producer = self._producer_ready()
        counts: dict[str, int] = {}
        for r in rows:
            if r.sharing == "node" or r.exchange not in EXCHANGES:
                # whatever wrote this row, a node-level record does not leave the node
                raise RuntimeError("outbox row %d has sharing %r: refusing to publish it"
                                   % (r.origin_seq, r.sharing))
            body = r.body.encode("utf-8")
            props = message_properties(r.envelope)
            for key in r.routing_keys:
                producer.publish(body, exchange=r.exchange, routing_key=key,
                                 content_type=props["content_type"],
                                 content_encoding=props["content_encoding"],
                                 delivery_mode=2, message_id=props["message_id"],
                                 type=props["type"], app_id=props["app_id"],
                                 correlation_id=correlation_of(r.meta),
                                 headers={"qinglian-origin-seq": r.origin_seq})
            counts[r.exchange] = counts.get(r.exchange, 0) + 1
        producer.channel.tx_commit()  # the broker holds every message of the batch now
        with self.store.engine.begin() as conn:
            self.store.set_checkpoint(conn, PUBLISHER_CHECKPOINT, rows[-1].origin_seq)
        if self.fed.metrics is not None:
            for exchange, n in counts.items():
                self.fed._metric("m_published", exchange, value=n)
        return len(rows)

    def run(self, should_stop: Callable[[], bool], wait: Callable[[float], None]) -> None:
        backoff = 0.5
        idle = IdleBackoff()  # this process's commits wake it; the poll is for others'
        while not should_stop():
            try:
                if self.run_once() == 0:
                    self.check_broker()
                    wait(idle.empty())
                else:
                    idle.found()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - broker or db down: retry, never die
                log.warning("federation publisher: %s; retrying in %.1fs", exc, backoff)
                self.close()
                wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.close()


# =================================================================== consumer thread
def inbox_queue(node_id: str, level: str) -> Queue:
    """The node's durable inbox: what the federation links bring, and nothing more
    (binding ``#`` on qinglian.named would pull every named record towards us)."""
    bindings = [(SHARED_EXCHANGE, "#"), (NAMED_EXCHANGE, "%s.#" % node_id)]
    if level == "city":
        bindings.append((CITY_EXCHANGE, "#"))
    from kombu import binding
    return Queue(INBOX_QUEUE, bindings=[
        binding(Exchange(name, type="topic", durable=True, auto_delete=False), routing_key=key)
        for name, key in bindings], durable=True, auto_delete=False)


class InboxConsumer:
    """The one thread that applies other nodes' records (module doc)."""

    def __init__(self, fed: Federation, amqp_uri: str, prefetch: int = 1000,
                 batch_size: int = 1000, idle: float = 0.2, gather: float = 0.025):
        self.fed = fed
        self.amqp_uri = amqp_uri
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.idle = idle
        self.gather = gather
        self._conn = None
        self._pending: list = []
        self.on_connection = fed.metrics.connection("federation-consumer") if fed.metrics \
            else (lambda _up: None)
        self._next_sync = 0.0  # sync at start: catch up whatever happened while we were off

    def _connect(self) -> None:
        self._conn = AmqpConnection(self.amqp_uri, heartbeat=0, connect_timeout=5)
        channel = self._conn.channel()
        queue = inbox_queue(self.fed.node_id, self.fed.level)(channel)
        queue.declare()
        # on_message: the raw message, no decoding by kombu (we verify the bytes)
        self._consumer = Consumer(channel, queues=[queue], on_message=self._on_message,
                                  auto_declare=False)
        self._consumer.qos(prefetch_count=self.prefetch)
        self._consumer.consume()
        self.on_connection(True)

    def _on_message(self, message) -> None:
        self._pending.append(message)

    def close(self) -> None:
        try:
            if self._conn is not None:
                self._conn.release()
        except Exception:  # noqa: BLE001
            pass
        self._conn = None
        self._pending = []
        self.on_connection(False)

    def _drain(self) -> list:
        """Wait up to ``idle`` for a first message, then take what else arrives within
        ``gather`` of it (up to ``batch_size``), so a backlog is applied in large
        transactions - and so are records that arrive a few milliseconds apart: a
        transaction's fixed cost (the lock, the watermark, the stream versions, the
        read models' prefetch, the relay's batch after it) was most of a record's cost
        when 1 + 11 nodes trickled records in one by one. ``gather`` is added to a
        record's latency at most once per hop."""
        try:
            self._conn.drain_events(timeout=self.idle)
        except socket.timeout:
            return []
        until = time.monotonic() + self.gather
        while len(self._pending) < self.batch_size:
            left = until - time.monotonic()
            try:
                self._conn.drain_events(timeout=max(0.002, left))
            except socket.timeout:
                break
        batch, self._pending = self._pending, []
        return batch

    def step(self) -> int:
        batch = self._drain()
        if batch:
            if len(self.fed.correlations) > 50_000:  # held for ever / never applied
                self.fed.correlations.clear()
            for m in batch:
                cid = well_formed(m.properties.get("correlation_id"))
                if cid and isinstance(m.properties.get("message_id"), str):
                    self.fed.correlations[m.properties["message_id"]] = cid
            self.fed.receive((m.body for m in batch), "amqp")
            # ack only after the batch is committed; what is held back in memory is
            # acked too - the origin's feed can always give it again
            batch[-1].ack(multiple=True)
        self.fed.repair_due()
        now = time.monotonic()
        if now >= self._next_sync or self.fed.sync_requested.is_set():
            self.fed.sync_requested.clear()
            self.fed.sync_all()
            self._next_sync = now + self.fed.sync_interval
        return len(batch)

    def run(self, should_stop: Callable[[], bool], wait: Callable[[float], None]) -> None:
        backoff = 0.5
        while not should_stop():
            try:
                if self._conn is None:
                    self._connect()
                    self.fed.load_state()  # unacked messages come again: start clean
                self.step()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - broker, db or peer down: retry
                log.warning("federation consumer: %s; retrying in %.1fs", exc, backoff,
                            exc_info=not isinstance(exc, (OSError, FeedError)))
                self.close()
                self.fed._loaded = False
                wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.close()
