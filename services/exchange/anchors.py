"""Anchors: each node's log heads, signed, held by another node (issue 11, D14).

A hash chain shows a row changed in place, but not a log that was cut short, nor one
whose chain was recomputed after an edit: whoever can write the database can also
rewrite every hash after the edit. What such a person cannot rewrite is a copy held
elsewhere. So, as Certificate Transparency does with its tree heads, every node's
exchange service periodically takes the *head* of each of the node's logs it can
read (service, position, hash of the row there), signs the statement with the node's
key and sends it (``POST /anchors``) to the node that holds its anchors: a district
to its city, the city to each of its districts. The holder checks the signature
against the key it trusts for that node and keeps the statement in an append-only
table (a second statement under the same number is refused, never replaces the
first). ``qinglian events verify --against-anchors`` fetches this node's statements
back (``GET /anchors``, a signed request as for the feed), checks that this node
signed them, and compares each anchored head with the local log: a position that is
gone, or a row whose hash differs from the anchored one, is tampering, named with
the first anchor that no longer matches and the last one that still does.

Statement (JSON, signed like an envelope: Ed25519 over the canonical bytes of every
field but ``signature``)::

    {"node": "district-a", "seq": 7, "taken_at": "2026-12-01T22:00:00.000000Z",
     "heads": [{"service": "exchange", "position": 1204, "hash": "9f..."}, ...],
     "signature": "..."}
"""
from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import requests
from cryptography.exceptions import InvalidSignature
from sqlalchemy import BigInteger, Column, String, Table, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from services.exchange.federation import metadata
from shared import config, registry
from shared.db import JSONText
from shared.events import now_us
from shared.federation.envelope import canonical_bytes, utc_now_iso, validate_node_id
from shared.federation.feed import PAGE_MAX, request_headers, verify_request

log = logging.getLogger(__name__)

anchors = Table(
    "federation_anchors", metadata,
    Column("node", String(63), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    # as signed and received; the text it always held (sorted keys, compact, UTF-8 as is)
    Column("statement", JSONText(sort_keys=True, compact=True), nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)


class AnchorRefused(Exception):
    """A statement that is not kept (bad shape, unknown node, wrong signature, a
    different statement already under that number). ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------- statements

def sign_statement(key, node_id: str, seq: int, heads: list[dict]) -> dict:
    body = {"node": node_id, "seq": seq, "taken_at": utc_now_iso(), "heads": heads}
    body["signature"] = base64.b64encode(key.sign(canonical_bytes(body))).decode("ascii")
    return body


def check_statement(stmt, public_key) -> dict:
    """The statement if it is well formed and ``public_key`` signed it (AnchorRefused)."""
    if not isinstance(stmt, dict) or set(stmt) != {"node", "seq", "taken_at", "heads",
                                                   "signature"}:
        raise AnchorRefused("an anchor has exactly node, seq, taken_at, heads, signature")
    try:
        validate_node_id(stmt["node"], "node")
    except ValueError as exc:
        raise AnchorRefused(str(exc)) from None
    if type(stmt["seq"]) is not int or stmt["seq"] < 1 or not isinstance(stmt["heads"], list):
        raise AnchorRefused("seq must be an integer >= 1 and heads a list")
    for h in stmt["heads"]:
        if not (isinstance(h, dict) and set(h) == {"service", "position", "hash"}
                and h["service"] in registry.services() and type(h["position"]) is int
                and h["position"] >= 0 and isinstance(h["hash"], str)):
            raise AnchorRefused("each head is {service, position, hash}")
    try:
        public_key.verify(base64.b64decode(stmt["signature"], validate=True),
                          canonical_bytes(stmt))
    except (InvalidSignature, ValueError, TypeError):
        raise AnchorRefused("the anchor's signature does not verify under %s's key"
                            % stmt["node"], 403) from None
    return stmt


# ---------------------------------------------------------------------- log heads

def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "sqlite" and u.database else None


def open_log(service: str, cfg: dict | None = None):
    """A read-only engine on ``service``'s database, or None when it does not exist
    here. Never creates one (a SQLite file is opened read-only, by URI)."""
    from sqlalchemy import create_engine
    url = config.database_url(service, cfg)
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            return None
        return create_engine("sqlite:///file:%s?mode=ro&uri=true" % path)
    return create_engine(url, pool_pre_ping=False)


def head_of(engine) -> dict | None:
    """{position, hash} of the last row of the log in ``engine`` (None: no log there)."""
    from shared.store import events
    try:
        with engine.connect() as conn:
            row = conn.execute(select(events.c.position, events.c.hash)
                               .order_by(events.c.position.desc()).limit(1)).first()
    except SQLAlchemyError:
        return None
    return {"position": row.position, "hash": row.hash} if row else {"position": 0,
                                                                      "hash": ""}


def log_heads(cfg: dict | None, engines: dict) -> list[dict]:
    """The head of each of this node's logs this process can read (``engines`` caches
    the read-only engines between calls)."""
    heads = []
    for service in registry.services():
        if service not in engines:
            engines[service] = open_log(service, cfg)
        engine = engines[service]
        head = head_of(engine) if engine is not None else None
        if head is None:
            engines.pop(service, None)  # appears later (a service started after us)
            continue
        heads.append(dict(service=service, **head))
    return heads


# -------------------------------------------------------------------------- storage

def keep(conn, stmt: dict) -> bool:
    """Append a checked statement; False if that very statement is already kept.
    A different one under the same number is refused (append-only)."""
    existing = conn.execute(select(anchors.c.statement).where(
        anchors.c.node == stmt["node"], anchors.c.seq == stmt["seq"])).scalar()
    if existing is not None:
        if existing == stmt:
            return False
        raise AnchorRefused("%s already anchored a different statement as #%d"
                            % (stmt["node"], stmt["seq"]), 409)
    try:
        conn.execute(anchors.insert().values(node=stmt["node"], seq=stmt["seq"],
                                             statement=stmt, received_at_us=now_us()))
    except IntegrityError:
        raise AnchorRefused("%s #%d was kept meanwhile" % (stmt["node"], stmt["seq"]),
                            409) from None
    return True


def next_seq(conn, node_id: str) -> int:
    return (conn.execute(select(func.max(anchors.c.seq))
                         .where(anchors.c.node == node_id)).scalar() or 0) + 1


def held_for(conn, node_id: str) -> list[dict]:
    return list(conn.execute(select(anchors.c.statement).where(anchors.c.node == node_id)
                             .order_by(anchors.c.seq)).scalars())


def anchors_url(feed_url: str) -> str:
    return feed_url[: -len("/feed")] + "/anchors" if feed_url.endswith("/feed") \
        else feed_url.rstrip("/") + "/anchors"


def holders(registry, me) -> list:
    """Who holds this node's anchors: a district's city; the city's districts."""
    if me.level == "district":
        city = registry.get(me.parent) if me.parent else None
        return [city] if city is not None and city.feed_url else []
    return [r for r in registry.all()
            if r.level == "district" and r.parent == me.node_id and r.feed_url]


# ---------------------------------------------------------------------- the service

class Anchoring:
    """The exchange service's side: take, send, receive and serve anchors."""

    def __init__(self, fed, cfg: dict):
        self.fed = fed
        self.cfg = cfg
        self._engines: dict = {}
        self._http = requests.Session()

    def take(self) -> dict:
        """Sign the current heads, keep a copy here, and send it to the holders.
        Holders that cannot be reached now get the next one (heads only grow, and any
        statement is checked against the log it names)."""
        heads = log_heads(self.cfg, self._engines)
        with self.fed.rt.store.engine.begin() as conn:
            # numbered by the clock (microseconds), not only by what is kept here: a node
            # restored from a backup must not reuse numbers its holders already keep
            seq = max(next_seq(conn, self.fed.node_id), now_us())
            stmt = sign_statement(self.fed.key, self.fed.node_id, seq, heads)
            keep(conn, stmt)
        me = self.fed.registry.get(self.fed.node_id)
        for holder in holders(self.fed.registry, me):
            try:
                r = self._http.post(anchors_url(holder.feed_url), json=stmt, timeout=10)
                if r.status_code not in (200, 201):
                    log.warning("anchors: %s refused anchor #%d: %d %s", holder.node_id,
                                stmt["seq"], r.status_code, r.text[:200])
            except requests.RequestException as exc:
                log.warning("anchors: could not send anchor #%d to %s: %s", stmt["seq"],
                            holder.node_id, exc)
        return stmt

    def receive(self, stmt) -> bool:
        """Keep a peer's statement (``POST /anchors``); AnchorRefused otherwise."""
        node = stmt.get("node") if isinstance(stmt, dict) else None
        record = self.fed.registry.get(node) if isinstance(node, str) else None
        if record is None or node == self.fed.node_id:
            raise AnchorRefused("node %r is not a trusted peer here" % (node,), 403)
        mine = (record.parent == self.fed.node_id) if self.fed.level == "city" \
            else (record.node_id == self.fed.parent)
        if not mine:
            raise AnchorRefused("this node does not hold %s's anchors" % node, 403)
        check_statement(stmt, self.fed.registry.public_key(node))
        with self.fed.rt.store.engine.begin() as conn:
            return keep(conn, stmt)

    def serve(self, headers, args) -> list[dict]:
        """``GET /anchors?node=<id>``: a trusted node's signed request (as for the feed)."""
        node = args.get("node", "")
        verify_request(headers, self.fed.node_id, 0, PAGE_MAX, self.fed.registry)
        try:
            validate_node_id(node, "node")
        except ValueError as exc:
            raise AnchorRefused(str(exc)) from None
        with self.fed.rt.read() as conn:
            return held_for(conn, node)


def fetch(holder, key, me: str) -> list[dict]:
    """This node's statements as ``holder`` keeps them (raises on transport errors)."""
    headers = request_headers(key, me, holder.node_id, 0, PAGE_MAX)
    r = requests.get(anchors_url(holder.feed_url), params={"node": me}, headers=headers,
                     timeout=30)
    if r.status_code != 200:
        raise requests.RequestException("GET %s -> %d %s" % (r.url, r.status_code,
                                                             r.text[:200]))
    body = r.json()
    if not isinstance(body, dict) or not isinstance(body.get("anchors"), list):
        raise requests.RequestException("GET %s: no anchors list" % r.url)
    return body["anchors"]


# ------------------------------------------------------------------ verification

def check_outbox(conn, head: int) -> list:
    """The exchange log against its outbox, which keeps every shared record exactly as
    signed: a shared event rewritten in the log (chain recomputed or not), or cut off
    its end, no longer matches (``shared.verify``, evidence of the second kind)."""
    from services.exchange.federation import outbox
    from shared.store import events
    from shared.verify import Finding
    out, after = [], 0
    while True:
        rows = conn.execute(
            select(outbox.c.origin_seq, outbox.c.position, outbox.c.event_id,
                   outbox.c.envelope, events.c.event_id.label("logged_id"),
                   events.c.payload)
            .select_from(outbox.outerjoin(events, events.c.position == outbox.c.position))
            .where(outbox.c.origin_seq > after).order_by(outbox.c.origin_seq).limit(1000)).all()
        if not rows:
            return out
        for r in rows:
            if r.logged_id is None:
                out.append(Finding(r.position, "shared record #%d (event %s) was at position %d, "
                                               "which is gone from the log"
                                   % (r.origin_seq, r.event_id, r.position)))
            elif r.logged_id != r.event_id or \
                    json.loads(r.payload) != r.envelope["payload"]:
                out.append(Finding(r.position, "the event at position %d is not the record this "
                                               "node signed and shared as #%d (event %s)"
                                   % (r.position, r.origin_seq, r.event_id)))
        after = rows[-1].origin_seq


def fetch_own_anchors(cfg: dict | None = None) -> tuple[list[dict], list[str], list[str]]:
    """This node's statements from every node holding them, each checked against this
    node's own key: (statements, holders that could not be asked, statements this node
    did not sign). Raises AnchorRefused if no holder answered."""
    from shared.federation.keys import load_node_key, node_registry
    registry = node_registry(cfg)
    try:
        me = registry.this_node()
        if me is None:
            raise AnchorRefused("this node has no identity: `qinglian node init` first", 2)
        key = load_node_key(cfg)
        public = registry.public_key(me.node_id)
        asked = holders(registry, me)
        if not asked:
            raise AnchorRefused("no trusted node with a feed URL holds %s's anchors" % me.node_id, 2)
        got, unreachable, forged, reached = {}, [], [], 0
        for holder in asked:
            try:
                statements = fetch(holder, key, me.node_id)
            except (requests.RequestException, ValueError) as exc:
                unreachable.append("%s: could not fetch anchors: %s" % (holder.node_id, exc))
                continue
            reached += 1
            for stmt in statements:
                try:
                    check_statement(stmt, public)
                except AnchorRefused as exc:
                    forged.append("%s serves an anchor %s did not sign: %s"
                                  % (holder.node_id, me.node_id, exc))
                    continue
                if stmt["node"] == me.node_id:
                    got[stmt["seq"]] = dict(stmt, held_by=holder.node_id)
        if not reached:
            raise AnchorRefused("; ".join(unreachable), 2)
        return [got[s] for s in sorted(got)], unreachable, forged
    finally:
        registry.engine.dispose()


def check_anchors(statements: list[dict], engines: dict) -> dict[str, list]:
    """service -> findings: the first anchored head that no longer matches the local log
    (the last that still does bounds where the change begins)."""
    from shared.store import events
    from shared.verify import Finding
    out: dict[str, list] = {}
    last_ok: dict[str, tuple] = {}
    for stmt in statements:
        for h in stmt["heads"]:
            service, position = h["service"], h["position"]
            if service in out or position == 0:
                continue
            where = "anchor #%d held by %s (taken %s)" % (stmt["seq"], stmt["held_by"],
                                                          stmt["taken_at"])
            engine = engines.get(service)
            if engine is None:
                out[service] = [Finding(position, "the log is gone, yet %s names its position %d"
                                        % (where, position))]
                continue
            with engine.connect() as conn:
                row = conn.execute(select(events.c.event_id, events.c.hash)
                                   .where(events.c.position == position)).first()
            since = last_ok.get(service)
            bound = (" (it still matched at position %d, %s)" % since) if since else ""
            if row is None:
                out[service] = [Finding(position, "position %d is gone from the log, yet %s "
                                                  "names it%s" % (position, where, bound))]
            elif row.hash != h["hash"]:
                out[service] = [Finding(position, "event %s at position %d no longer matches %s: "
                                                  "the chain was rewritten at or before it%s"
                                        % (row.event_id, position, where, bound))]
            else:
                last_ok[service] = (position, where)
    return out
