"""Actors, roles and the node's users and API tokens.

Every command carries an actor: who (user id), with which roles, over which unit
subtree, on which node. HTTP callers prove who they are with a bearer token; the node
stores only the token's SHA-256, so a copied database does not leak usable tokens.
Calls between services inside one node (nameko RPC on the node's own broker) pass the
actor explicitly: the node's broker is the trust boundary.
"""
from __future__ import annotations

import hashlib
import time
import secrets
from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger, Boolean, Column, MetaData, String, Table, select, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.db import readonly
from shared.errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated
from shared.events import now_us

NODE_ADMIN = "node-admin"
UNIT_ADMIN = "unit-admin"
INSPECTOR = "inspector"
VIEWER = "viewer"
ROLES = (NODE_ADMIN, UNIT_ADMIN, INSPECTOR, VIEWER)

ANY_ROLE = ROLES
WRITERS = (NODE_ADMIN, UNIT_ADMIN)


@dataclass(frozen=True)
class Actor:
    user_id: str
    roles: tuple = ()
    unit_scope: str | None = None  # a unit-admin's subtree root
    node: str = "local"

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def to_dict(self) -> dict:
        return {"user_id": self.user_id, "roles": list(self.roles),
                "unit_scope": self.unit_scope, "node": self.node}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Actor":
        if not isinstance(d, dict) or not d.get("user_id"):
            raise Unauthenticated("an actor {user_id, roles, unit_scope, node} is required")
        roles = tuple(d.get("roles") or ())
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise BadInput("unknown role", {"actor.roles": ["unknown role(s): %s" % ", ".join(bad)]})
        return cls(str(d["user_id"]), roles, d.get("unit_scope"), d.get("node") or "local")


def system_actor(node: str, name: str = "system") -> Actor:
    """The platform itself (timers, reactions to other services' events)."""
    return Actor(name, (NODE_ADMIN,), None, node)


def authorize(actor: Actor, allowed: tuple, unit_id: str | None = None,
              unit_path: str | None = None, scope_path: str | None = None,
              scoped: bool = False) -> None:
    """Raise Forbidden unless ``actor`` may act.

    A node-admin may act anywhere on the node. Any other allowed role acts anywhere
    too, except a unit-admin, who acts only inside their subtree: ``unit_path`` (the
    target unit's materialised path) must start with ``scope_path``. For a ``scoped``
    operation whose unit could not be resolved (the record does not exist) a unit-admin
    is refused rather than waved through.
    """
    if actor.has(NODE_ADMIN) and NODE_ADMIN in allowed:
        return
    usable = [r for r in actor.roles if r in allowed]
    if not usable:
        raise Forbidden("role %s required (you have: %s)"
                        % (" or ".join(allowed), ", ".join(actor.roles) or "none"))
    if usable == [UNIT_ADMIN] and unit_id is None and scoped:
        raise NotFound("no such record in your unit scope")
    if usable == [UNIT_ADMIN] and unit_id is not None:
        if not actor.unit_scope:
            raise Forbidden("this unit-admin has no unit scope")
        if unit_path is None or scope_path is None or not unit_path.startswith(scope_path):
            raise Forbidden("unit %s is outside your unit scope (%s)" % (unit_id, actor.unit_scope))


# -- users and tokens on the node -----------------------------------------------------
auth_metadata = MetaData()

users = Table(
    "users", auth_metadata,
    Column("user_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("roles", String(200), nullable=False),  # comma-separated
    Column("unit_scope", String(100)),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at_us", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens", auth_metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(100), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


TOKEN_CACHE_SECONDS = 5.0


@dataclass
class UserDirectory:
    """Users and tokens in the node database.

    ``authenticate`` runs on every HTTP request; it keeps what it learnt about a token
    for a few seconds (hashed, like the table) so a burst of requests does not become a
    burst of lookups. The price: a revoked token keeps working for at most
    ``TOKEN_CACHE_SECONDS`` on nodes other than the one that revoked it.
    """

    engine: Engine
    node: str = "local"
    _cache: dict = field(default_factory=dict, repr=False)

    def create_schema(self) -> None:
        auth_metadata.create_all(self.engine)

    def add_user(self, user_id: str, name: str, roles: list[str], unit_scope: str | None = None) -> None:
        errors = {}
        if not user_id or len(user_id) > 100:
            errors["user_id"] = ["1 to 100 characters"]
        if not name or len(name) > 200:
            errors["name"] = ["1 to 200 characters"]
        bad = [r for r in roles if r not in ROLES]
        if not roles or bad:
            errors["roles"] = ["one or more of %s" % ", ".join(ROLES)]
        if UNIT_ADMIN in roles and not unit_scope:
            errors["unit_scope"] = ["a unit-admin needs the unit whose subtree they manage"]
        if errors:
            raise BadInput("invalid user", errors)
        try:
            with self.engine.begin() as c:
                c.execute(users.insert().values(user_id=user_id, name=name, roles=",".join(roles),
                                                unit_scope=unit_scope, disabled=False,
                                                created_at_us=now_us()))
        except IntegrityError as exc:
            raise Conflict("user %s already exists" % user_id) from exc

    def issue_token(self, user_id: str, label: str = "api") -> str:
        with self.engine.begin() as c:
            if c.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first() is None:
                raise NotFound("no user %s" % user_id)
            token = "ql_" + secrets.token_urlsafe(32)
            c.execute(api_tokens.insert().values(token_hash=hash_token(token), user_id=user_id,
                                                 label=label, created_at_us=now_us(), revoked=False))
        return token

    def revoke_token(self, token: str) -> None:
        self._cache.pop(hash_token(token), None)
        with self.engine.begin() as c:
            c.execute(update(api_tokens).where(api_tokens.c.token_hash == hash_token(token))
                      .values(revoked=True))

    def authenticate(self, token: str | None) -> Actor:
        if not token:
            raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
        key = hash_token(token)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with readonly(self.engine.connect()) as c:
            row = c.execute(
                select(users.c.user_id, users.c.roles, users.c.unit_scope, users.c.disabled,
                       api_tokens.c.revoked)
                .select_from(api_tokens.join(users, users.c.user_id == api_tokens.c.user_id))
                .where(api_tokens.c.token_hash == key)
            ).first()
        if row is None or row.revoked or row.disabled:
            raise Unauthenticated("invalid or revoked token")
        actor = Actor(row.user_id, tuple(row.roles.split(",")), row.unit_scope, self.node)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + TOKEN_CACHE_SECONDS, actor)
        return actor

    def get(self, user_id: str) -> dict | None:
        with readonly(self.engine.connect()) as c:
            row = c.execute(select(users).where(users.c.user_id == user_id)).mappings().first()
        return dict(row) if row else None
