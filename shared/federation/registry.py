"""The registry of trusted nodes: who may publish to this node, and with which key.

A node accepts a cross-node message only if its origin (and signer) is here, and only
if the signature verifies under the key recorded here. Trusting a node is an
administrative act (``qinglian node trust``): the operator receives the peer's node id,
level, parent, public key and feed URL out of band and records them.

Storage is SQLAlchemy 2 Core on the node database (SQLite or PostgreSQL):

- ``nodes``: one row per known node, this node included (so it can check its own
  records coming back, and serve its own public key);
- ``this_node``: a single-row table naming which ``nodes`` row is the local node
  (a separate table rather than a flag column, so "exactly one" is a primary key,
  not a convention).

``NodeRegistry`` satisfies ``envelope.KeyResolver`` and is what ``verify()`` takes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlparse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .envelope import NODE_LEVELS, load_public_key_b64, validate_node_id
from .envelope import public_key_b64 as _key_to_b64

__all__ = ["metadata", "nodes", "this_node", "NodeRecord", "NodeRegistry", "KeyConflict",
           "key_fingerprint"]

metadata = MetaData()

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(63), primary_key=True),
    Column("level", String(16), nullable=False),
    Column("parent", String(63), nullable=True),
    # base64 of the raw 32-byte Ed25519 key (44 characters)
    Column("public_key", String(64), nullable=False),
    # where this node's signed feed is pulled from to repair gaps (GET /feed?after=N)
    Column("feed_url", String(1024), nullable=True),
    # when the current key was trusted (changes only when the key is replaced)
    Column("trusted_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("level IN ('city', 'district')", name="ck_nodes_level"),
)

this_node = Table(
    "this_node",
    metadata,
    Column("singleton", Integer, primary_key=True),
    Column("node_id", String(63), ForeignKey("nodes.node_id"), nullable=False),
    CheckConstraint("singleton = 1", name="ck_this_node_singleton"),
)


class KeyConflict(Exception):
    """A node is already trusted with a different key; replacing it must be explicit
    (``replace=True``), because a silent key change is exactly what an impostor wants."""

    def __init__(self, node_id: str):
        super().__init__(
            "node %r is already trusted with a different public key; "
            "pass replace=True to replace it" % node_id)
        self.node_id = node_id


@dataclass(frozen=True)
class NodeRecord:
    node_id: str
    level: str
    parent: str | None
    public_key: str  # base64 raw
    feed_url: str | None
    trusted_at: datetime


def key_fingerprint(public_key_b64: str) -> str:
    """What two operators read to each other to compare a node's key out of band: the
    SHA-256 of the raw key, its first 16 bytes as eight colon-separated groups of four
    hex digits."""
    import base64
    import hashlib
    digest = hashlib.sha256(base64.b64decode(public_key_b64)).hexdigest().upper()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


def _utc(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _record(row) -> NodeRecord:
    return NodeRecord(row.node_id, row.level, row.parent, row.public_key, row.feed_url,
                      _utc(row.trusted_at))


class NodeRegistry:
    """Trusted nodes on a database.

    ``public_key()`` is on the hot path (once per received message), so parsed keys
    are cached for ``cache_seconds``; another process trusting or replacing a key is
    seen within that time, this process's own changes at once. Unknown nodes are not
    cached, so a newly trusted peer is accepted on its next message.
    """

    def __init__(self, engine: Engine, *, create_tables: bool = True,
                 cache_seconds: float = 5.0):
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str, Ed25519PublicKey]] = {}
        if create_tables:
            metadata.create_all(engine, checkfirst=True)

    # ---------------------------------------------------------------- reads

    def _read(self):
        # shared.db's SQLite engine takes the write lock on BEGIN unless told otherwise
        return self.engine.connect().execution_options(sqlite_readonly=True)

    def get(self, node_id: str) -> NodeRecord | None:
        with self._read() as conn:
            row = conn.execute(select(nodes).where(nodes.c.node_id == node_id)).first()
        return _record(row) if row else None

    def all(self) -> list[NodeRecord]:
        with self._read() as conn:
            rows = conn.execute(select(nodes).order_by(nodes.c.node_id)).all()
        return [_record(r) for r in rows]

    def public_key(self, node_id: str) -> Ed25519PublicKey | None:
        hit = self._cache.get(node_id)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[2]
        with self._read() as conn:
            b64 = conn.execute(
                select(nodes.c.public_key).where(nodes.c.node_id == node_id)).scalar()
        if b64 is None:
            self._cache.pop(node_id, None)
            return None
        key = hit[2] if hit and hit[1] == b64 else load_public_key_b64(b64)
        self._cache[node_id] = (now + self.cache_seconds, b64, key)
        return key

    def this_node(self) -> NodeRecord | None:
        with self._read() as conn:
            row = conn.execute(
                select(nodes).join(this_node, this_node.c.node_id == nodes.c.node_id)).first()
        return _record(row) if row else None

    # --------------------------------------------------------------- writes

    def trust(self, node_id: str, level: str, parent: str | None, public_key_b64: str,
              feed_url: str | None = None, *, replace: bool = False) -> NodeRecord:
        """Record ``node_id`` as trusted with this key. Idempotent for the same key
        (level, parent and feed URL are updated in place: a moved feed is routine);
        a different key raises ``KeyConflict`` unless ``replace=True``."""
        validate_node_id(node_id)
        if level not in NODE_LEVELS:
            raise ValueError("level must be 'city' or 'district' (got %r)" % (level,))
        if parent is not None:
            validate_node_id(parent, "parent")
        if level == "district" and not parent:
            raise ValueError("a district needs its parent (the city's node id)")
        if parent == node_id:
            raise ValueError("a node cannot be its own parent")
        # normalise so the same key in different base64 spellings compares equal
        key_text = _key_to_b64(load_public_key_b64(public_key_b64))
        if feed_url is not None:
            u = urlparse(feed_url)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise ValueError("feed_url must be an http(s) URL (got %r)" % (feed_url,))

        for attempt in (1, 2):
            try:
                record = self._trust_once(node_id, level, parent, key_text, feed_url, replace)
                break
            except IntegrityError:
                # two processes trusted the same new node at once: the other insert won,
                # go round again and take the update path
                if attempt == 2:
                    raise
        self._cache.pop(node_id, None)
        return record

    def _trust_once(self, node_id, level, parent, key_text, feed_url, replace) -> NodeRecord:
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(nodes).where(nodes.c.node_id == node_id).with_for_update()).first()
            if row is None:
                conn.execute(insert(nodes).values(
                    node_id=node_id, level=level, parent=parent, public_key=key_text,
                    feed_url=feed_url, trusted_at=now))
                return NodeRecord(node_id, level, parent, key_text, feed_url, now)
            values = {}
            trusted_at = _utc(row.trusted_at)
            if row.public_key != key_text:
                if not replace:
                    raise KeyConflict(node_id)
                values.update(public_key=key_text, trusted_at=now)
                trusted_at = now
            if (row.level, row.parent, row.feed_url) != (level, parent, feed_url):
                values.update(level=level, parent=parent, feed_url=feed_url)
            if values:
                conn.execute(update(nodes).where(nodes.c.node_id == node_id).values(**values))
            return NodeRecord(node_id, level, parent, key_text, feed_url, trusted_at)

    def untrust(self, node_id: str) -> bool:
        """Stop trusting a node (e.g. its key leaked). Its messages are then rejected
        as ``untrusted_node``. Refuses to remove this node itself. True if removed."""
        with self.engine.begin() as conn:
            me = conn.execute(select(this_node.c.node_id)).scalar()
            if me == node_id:
                raise ValueError("cannot untrust this node itself")
            removed = conn.execute(delete(nodes).where(nodes.c.node_id == node_id)).rowcount
        self._cache.pop(node_id, None)
        return bool(removed)

    def set_this_node(self, node_id: str) -> None:
        """Mark which trusted node is the local one (it must already be trusted)."""
        with self.engine.begin() as conn:
            if conn.execute(select(nodes.c.node_id).where(nodes.c.node_id == node_id)).first() is None:
                raise ValueError("trust %r (with its own public key) before marking it "
                                 "as this node" % node_id)
            if conn.execute(select(this_node.c.node_id)).first() is None:
                conn.execute(insert(this_node).values(singleton=1, node_id=node_id))
            else:
                conn.execute(update(this_node).values(node_id=node_id))
