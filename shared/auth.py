"""Actors, roles and the node's users and API tokens.

Every command carries an actor: who (user id), with which roles, over which unit
subtree, on which node. HTTP callers prove who they are with a bearer token; the node
stores only the token's SHA-256, so a copied database does not leak usable tokens.
An RPC call proves it the same way: its ``actor`` argument is ``{"token": ...}`` (an API
token or a console session token), never a dict of roles - whoever reaches the broker
must not be able to name themselves an admin. Only the platform's own timers and event
handlers act as the system actor, inside their process.

API tokens expire (``QINGLIAN_TOKEN_DAYS``); console sessions have an idle and an
absolute expiry. A revoke, a disable or an ended session bumps the node's revocation
generation, which every ``authenticate`` reads (one primary-key row), so no cached answer
outlives it in any process of the node.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import (
    ARRAY, BigInteger, Boolean, Column, MetaData, String, Table, bindparam, case, func, inspect,
    select, text, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.db import readonly
from shared.errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated
from shared.events import now_us
from shared.labels import Choices

NODE_ADMIN = "node-admin"
UNIT_ADMIN = "unit-admin"
INSPECTOR = "inspector"
VIEWER = "viewer"
ROLES = Choices("角色", {NODE_ADMIN: "节点管理员", UNIT_ADMIN: "单位管理员",
                        INSPECTOR: "检查员", VIEWER: "查看员"})

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
        raise Forbidden("需要以下角色之一：%s（您的角色：%s）"
                        % ("、".join(ROLES.label(r) for r in allowed),
                           "、".join(ROLES.label(r) for r in actor.roles) or "无"))
    if usable == [UNIT_ADMIN] and unit_id is None and scoped:
        raise NotFound("您的管理范围内没有这条记录")
    if usable == [UNIT_ADMIN] and unit_id is not None:
        if not actor.unit_scope:
            raise Forbidden("该单位管理员没有设置管理范围")
        if unit_path is None or scope_path is None or not unit_path.startswith(scope_path):
            raise Forbidden("单位「%s」不在您的管理范围内（%s）" % (unit_id, actor.unit_scope))


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
    # NULL only on tokens issued before expiry existed: they expire token_days after issue
    Column("expires_at_us", BigInteger),
)

console_sessions = Table(
    "console_sessions", auth_metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(100), nullable=False, index=True),
    Column("client", String(200)),  # e.g. the browser's address and user agent, for audit
    Column("created_at_us", BigInteger, nullable=False),
    Column("idle_seconds", BigInteger, nullable=False),
    Column("idle_expires_at_us", BigInteger, nullable=False),
    Column("absolute_expires_at_us", BigInteger, nullable=False),
    Column("ended_at_us", BigInteger),
)

# Console passwords, argon2id-hashed (argon2-cffi); API tokens need none.
user_passwords = Table(
    "user_passwords", auth_metadata,
    Column("user_id", String(100), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("changed_at_us", BigInteger, nullable=False),
)

# One row: bumped by every revoke, disable and ended session (see the module doc).
auth_generation = Table(
    "auth_generation", auth_metadata,
    Column("name", String(20), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


TOKEN_CACHE_SECONDS = 5.0
DEFAULT_TOKEN_DAYS = 90
API_TOKEN_PREFIX = "ql_"
SESSION_TOKEN_PREFIX = "qs_"
TOKEN_ID_LENGTH = 12  # the start of a token's hash: names it in lists and revokes
_REVOCATIONS = "revocations"
_US = 1_000_000

REFUSED = "令牌无效、已过期或已撤销"

# ``authenticate``'s statements, built once: it runs on every request of every service
_GENERATION = (select(auth_generation.c.generation)
               .where(auth_generation.c.name == _REVOCATIONS))
_SESSION_LOOKUP = (
    select(users.c.user_id, users.c.roles, users.c.unit_scope, users.c.disabled,
           console_sessions.c.ended_at_us, console_sessions.c.idle_expires_at_us,
           console_sessions.c.absolute_expires_at_us, _GENERATION.scalar_subquery().label("generation"))
    .select_from(console_sessions.join(users, users.c.user_id == console_sessions.c.user_id))
    .where(console_sessions.c.token_hash == bindparam("key")))
_TOKEN_LOOKUP = (
    select(users.c.user_id, users.c.roles, users.c.unit_scope, users.c.disabled,
           api_tokens.c.revoked, api_tokens.c.expires_at_us, api_tokens.c.created_at_us,
           _GENERATION.scalar_subquery().label("generation"))
    .select_from(api_tokens.join(users, users.c.user_id == api_tokens.c.user_id))
    .where(api_tokens.c.token_hash == bindparam("key")))
# the same, for many tokens at once (``authenticate_many``: a batch of check-ins)
_SESSIONS_LOOKUP = (
    select(*_SESSION_LOOKUP.selected_columns, console_sessions.c.token_hash.label("key"))
    .select_from(console_sessions.join(users, users.c.user_id == console_sessions.c.user_id))
    .where(console_sessions.c.token_hash.in_(bindparam("keys", expanding=True))))


def rpc_token(proof) -> str:
    """The token of an RPC caller's proof ``{"token": ...}``; a dict of roles, or anything
    else, is refused."""
    if isinstance(proof, dict) and set(proof) == {"token"}:
        return proof["token"]
    raise Unauthenticated('RPC 调用须带凭证 actor={"token": "<API 令牌或控制台会话令牌>"}，'
                          "不接受角色字典")


@dataclass
class UserDirectory:
    """Users, API tokens and console sessions in the node database.

    ``authenticate`` runs on every request; it keeps what it learnt about a token for a
    few seconds (hashed, like the table) together with the revocation generation it saw.
    A cached answer is used only while that generation is still current and the token
    or session has not expired, so a revoke is effective at once on the whole node.
    """

    engine: Engine
    node: str = "local"
    token_days: float = DEFAULT_TOKEN_DAYS
    clock: Callable[[], int] = now_us  # microseconds since the epoch; tests move it
    _cache: dict = field(default_factory=dict, repr=False)

    def create_schema(self) -> None:
        auth_metadata.create_all(self.engine)
        # node databases made before tokens expired lack the column
        if "expires_at_us" not in {c["name"] for c in inspect(self.engine).get_columns("api_tokens")}:
            with self.engine.begin() as c:
                c.execute(text("ALTER TABLE api_tokens ADD COLUMN expires_at_us BIGINT"))
        try:
            with self.engine.begin() as c:
                if self.generation(c) == 0:
                    c.execute(auth_generation.insert().values(name=_REVOCATIONS, generation=1))
        except IntegrityError:
            pass  # another process of the node made the row first

    # -- the revocation generation ---------------------------------------------------------
    def generation(self, conn=None) -> int:
        if conn is None:
            with readonly(self.engine.connect()) as c:
                return self.generation(c)
        value = conn.execute(select(auth_generation.c.generation)
                             .where(auth_generation.c.name == _REVOCATIONS)).scalar()
        return value or 0

    def _bump(self, conn) -> None:
        """In the transaction that revokes: every process's cache is stale from its commit."""
        conn.execute(update(auth_generation).where(auth_generation.c.name == _REVOCATIONS)
                     .values(generation=auth_generation.c.generation + 1))
        self._cache.clear()

    def add_user(self, user_id: str, name: str, roles: list[str], unit_scope: str | None = None) -> None:
        errors = {}
        if not user_id or len(user_id) > 100:
            errors["user_id"] = ["长度须为 1 到 100 个字符"]
        if not name or len(name) > 200:
            errors["name"] = ["长度须为 1 到 200 个字符"]
        bad = [r for r in roles if r not in ROLES]
        if not roles or bad:
            errors["roles"] = ["须为以下一个或多个：%s" % "、".join(ROLES.labels.values())]
        if UNIT_ADMIN in roles and not unit_scope:
            errors["unit_scope"] = ["单位管理员必须指定其管理的单位"]
        if errors:
            raise BadInput("用户信息有误", errors)
        try:
            with self.engine.begin() as c:
                c.execute(users.insert().values(user_id=user_id, name=name, roles=",".join(roles),
                                                unit_scope=unit_scope, disabled=False,
                                                created_at_us=self.clock()))
        except IntegrityError as exc:
            raise Conflict("用户「%s」已存在" % user_id) from exc

    def _require_user(self, conn, user_id: str) -> None:
        if conn.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first() is None:
            raise NotFound("用户「%s」不存在" % user_id)

    # -- API tokens --------------------------------------------------------------------------
    def issue_token(self, user_id: str, label: str = "api", days: float | None = None) -> str:
        """A new API token for ``user_id``, valid ``days`` (default: the node's setting)."""
        days = self.token_days if days is None else days
        if not isinstance(days, (int, float)) or isinstance(days, bool) or not 0 < days <= 3660:
            raise BadInput("有效期须为 1 天至 10 年", {"days": ["天数，须大于 0 且不超过 3660"]})
        token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as c:
            self._require_user(c, user_id)
            c.execute(api_tokens.insert().values(token_hash=hash_token(token), user_id=user_id,
                                                 label=label, created_at_us=now, revoked=False,
                                                 expires_at_us=now + int(days * 86400 * _US)))
        return token

    def list_tokens(self, user_id: str) -> list[dict]:
        """A user's tokens, newest first, each named by its id (never the token itself)."""
        with readonly(self.engine.connect()) as c:
            self._require_user(c, user_id)
            rows = c.execute(select(api_tokens).where(api_tokens.c.user_id == user_id)
                             .order_by(api_tokens.c.created_at_us.desc())).mappings().all()
        return [{"token_id": r["token_hash"][:TOKEN_ID_LENGTH], "label": r["label"],
                 "created_at_us": r["created_at_us"], "expires_at_us": r["expires_at_us"],
                 "revoked": r["revoked"]} for r in rows]

    def revoke_token(self, token: str) -> None:
        """Revoke the token itself (the holder revoking their own)."""
        with self.engine.begin() as c:
            c.execute(update(api_tokens).where(api_tokens.c.token_hash == hash_token(token))
                      .values(revoked=True))
            self._bump(c)

    def revoke_tokens(self, user_id: str, token_id: str | None = None) -> int:
        """Revoke one of ``user_id``'s tokens by its id, or all of them (``token_id=None``).
        Returns how many were revoked; an id that names no token of the user is 404."""
        if token_id is not None and not re.fullmatch(r"[0-9a-f]{%d}" % TOKEN_ID_LENGTH, token_id):
            raise BadInput("令牌编号格式不对", {"token_id": ["%d 位小写十六进制字符，与列表中显示的一致"
                                                      % TOKEN_ID_LENGTH]})
        with self.engine.begin() as c:
            self._require_user(c, user_id)
            where = (api_tokens.c.user_id == user_id) & (api_tokens.c.revoked.is_(False))
            if token_id is not None:
                where = where & api_tokens.c.token_hash.like(token_id + "%")
            done = c.execute(update(api_tokens).where(where).values(revoked=True)).rowcount
            if token_id is not None and not done:
                raise NotFound("用户 %s 没有未撤销的令牌 %s" % (user_id, token_id))
            self._bump(c)
        return done

    # -- users -------------------------------------------------------------------------------
    def set_disabled(self, user_id: str, disabled: bool = True) -> None:
        """Disable (or re-enable) a user: every token and session of theirs is refused at once."""
        with self.engine.begin() as c:
            self._require_user(c, user_id)
            c.execute(update(users).where(users.c.user_id == user_id).values(disabled=disabled))
            if disabled:
                c.execute(update(console_sessions).where((console_sessions.c.user_id == user_id)
                                                         & console_sessions.c.ended_at_us.is_(None))
                          .values(ended_at_us=self.clock()))
            self._bump(c)

    # -- console sessions ----------------------------------------------------------------------
    def open_session(self, user_id: str, idle_seconds: int, absolute_seconds: int,
                     client: str | None = None) -> str:
        """A console session token (``qs_...``): refused after ``idle_seconds`` without a
        ``touch_session`` and after ``absolute_seconds`` whatever happens."""
        errors = {}
        for name, value in (("idle_seconds", idle_seconds), ("absolute_seconds", absolute_seconds)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                errors[name] = ["须为正整数秒数"]
        if not errors and idle_seconds > absolute_seconds:
            errors["idle_seconds"] = ["不得超过会话最长时长"]
        if errors:
            raise BadInput("会话期限不对", errors)
        token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as c:
            row = c.execute(select(users.c.disabled).where(users.c.user_id == user_id)).first()
            if row is None:
                raise NotFound("用户「%s」不存在" % user_id)
            if row.disabled:
                raise Unauthenticated("用户「%s」已停用" % user_id)
            c.execute(console_sessions.insert().values(
                token_hash=hash_token(token), user_id=user_id, client=(client or "")[:200] or None,
                created_at_us=now, idle_seconds=idle_seconds,
                idle_expires_at_us=now + idle_seconds * _US,
                absolute_expires_at_us=now + absolute_seconds * _US))
        return token

    def touch_session(self, token: str | None) -> Actor:
        """The session's actor, its idle expiry pushed back (never past the absolute one)."""
        actor = self.authenticate(token)
        if not token.startswith(SESSION_TOKEN_PREFIX):
            raise Unauthenticated("这不是控制台会话令牌")
        self.touch_sessions({token: self.clock()})
        return actor

    def touch_sessions(self, touches: dict) -> None:
        """Push back the idle expiry of each session ``token -> at`` (the microseconds of
        the request that used it) to ``at`` + its idle period, in one transaction (the
        console writes its requests' touches a second late, in bulk). Never past the
        absolute limit, never earlier than it stands (a later touch may be written
        first), and an ended session or one already lapsed at ``at`` stays as it is."""
        if not touches:
            return
        s = console_sessions.c
        rows = [(hash_token(token), when) for token, when in touches.items()]
        if self.engine.dialect.name == "postgresql":
            # one UPDATE ... FROM unnest(keys, ats) for all of them: an executemany is a
            # round trip, and the driver's work, per session (~500 a second in a morning's
            # check-ins); two array parameters rather than a VALUES list, whose SQL,
            # different for every count, SQLAlchemy compiled anew each second (3 % of the
            # console's CPU in the check-ins, the hub held for it: docs/benchmarks.md)
            given = func.unnest(bindparam("keys", type_=ARRAY(String)),
                                bindparam("ats", type_=ARRAY(BigInteger))
                                ).table_valued("key", "at").render_derived(name="touched")
            key, at = given.c.key, given.c.at
            params = {"keys": [k for k, _ in rows], "ats": [a for _, a in rows]}
        else:  # SQLite (no column names for VALUES in FROM): in-process, one per session
            key, at, params = bindparam("key"), bindparam("at"), [{"key": k, "at": a} for k, a in rows]
        pushed = case((at + s.idle_seconds * _US < s.absolute_expires_at_us, at + s.idle_seconds * _US),
                      else_=s.absolute_expires_at_us)
        with self.engine.begin() as c:
            c.execute(update(console_sessions)
                      .where((s.token_hash == key) & s.ended_at_us.is_(None)
                             & (s.idle_expires_at_us > at) & (s.idle_expires_at_us < pushed))
                      .values(idle_expires_at_us=pushed), params)

    def end_session(self, token: str | None) -> None:
        """Sign out: the token is refused from now on, in every process of the node."""
        if not token:
            return
        with self.engine.begin() as c:
            c.execute(update(console_sessions)
                      .where((console_sessions.c.token_hash == hash_token(token))
                             & console_sessions.c.ended_at_us.is_(None))
                      .values(ended_at_us=self.clock()))
            self._bump(c)

    def session_user(self, token: str | None) -> str | None:
        """Whose console session ``token`` is (ended or lapsed ones too), or None."""
        if not token:
            return None
        with readonly(self.engine.connect()) as c:
            return c.execute(select(console_sessions.c.user_id).where(
                console_sessions.c.token_hash == hash_token(token))).scalar()

    # -- authentication ------------------------------------------------------------------------
    def authenticate(self, token: str | None) -> Actor:
        if not token or not isinstance(token, str):
            raise Unauthenticated("缺少令牌（请在请求头 Authorization 中提供 Bearer 令牌）")
        key = hash_token(token)
        session = token.startswith(SESSION_TOKEN_PREFIX)
        with readonly(self.engine.connect()) as c:
            hit = self._cached(c, [key])
            if key in hit:
                return hit[key]
            # a miss costs one round trip: the generation comes with the row, from the
            # same snapshot (a revoke committed after it bumps it: the entry is stale)
            row = c.execute(_SESSION_LOOKUP if session else _TOKEN_LOOKUP, {"key": key}).first()
        return self._admit(key, session, row)

    def authenticate_many(self, tokens: list) -> list:
        """``authenticate`` of many console session tokens at once (the check-ins a
        console groups into one call): an ``Actor`` or the ``Unauthenticated`` refusal
        per token, in order, in at most two round trips for all of them."""
        keys = [hash_token(t) if isinstance(t, str) and t.startswith(SESSION_TOKEN_PREFIX) else None
                for t in tokens]
        with readonly(self.engine.connect()) as c:
            found = self._cached(c, [k for k in keys if k])
            missing = sorted({k for k in keys if k and k not in found})
            rows = {r.key: r for r in c.execute(_SESSIONS_LOOKUP, {"keys": missing})} if missing else {}
        out = []
        for token, key in zip(tokens, keys):
            if key is None:
                out.append(Unauthenticated("这不是控制台会话令牌"))
                continue
            if key not in found:
                try:
                    found[key] = self._admit(key, True, rows.get(key))
                except Unauthenticated:
                    found[key] = None
            out.append(found[key] or Unauthenticated(REFUSED))
        return out

    def _cached(self, c, keys: list) -> dict:
        """key -> Actor for the keys whose cached answer still holds (one round trip for
        the revocation generation, none if nothing is cached)."""
        hits = [(k, self._cache.get(k)) for k in keys]
        hits = [(k, hit) for k, hit in hits if hit is not None]
        if not hits:
            return {}
        generation = c.execute(_GENERATION).scalar() or 0
        now, mono = self.clock(), time.monotonic()
        return {k: hit[3] for k, hit in hits if hit[0] == generation and hit[1] > now and hit[2] > mono}

    def _admit(self, key: str, session: bool, row) -> Actor:
        """The actor of a looked-up token row, kept in the cache; or refused."""
        now = self.clock()
        if row is None:
            raise Unauthenticated(REFUSED)
        generation = row.generation or 0
        if session:
            refused = row.ended_at_us is not None
            valid_until = min(row.idle_expires_at_us, row.absolute_expires_at_us)
        else:
            refused = row.revoked
            valid_until = (row.expires_at_us if row.expires_at_us is not None
                           else row.created_at_us + int(self.token_days * 86400 * _US))
        if refused or row.disabled or valid_until <= now:
            raise Unauthenticated(REFUSED)
        actor = Actor(row.user_id, tuple(row.roles.split(",")), row.unit_scope, self.node)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (generation, valid_until, time.monotonic() + TOKEN_CACHE_SECONDS, actor)
        return actor

    def authenticate_rpc(self, proof) -> Actor | None:
        """The actor of an RPC call from its proof ``{"token": ...}``; ``None`` stays None
        (public queries). A dict of roles, or anything else, is refused."""
        if proof is None:
            return None
        return self.authenticate(rpc_token(proof))

    # -- console passwords ------------------------------------------------------------------------
    def set_password(self, user_id: str, password: str) -> None:
        """Set (or reset) a user's console password; the old sessions stay until they end."""
        problems = password_problems(password)
        if problems:
            raise BadInput("密码不符合要求", {"password": problems})
        hashed = _hasher().hash(password)
        with self.engine.begin() as c:
            self._require_user(c, user_id)
            done = c.execute(update(user_passwords).where(user_passwords.c.user_id == user_id)
                             .values(password_hash=hashed, changed_at_us=self.clock())).rowcount
            if not done:
                c.execute(user_passwords.insert().values(user_id=user_id, password_hash=hashed,
                                                         changed_at_us=self.clock()))

    def check_password(self, user_id: str, password: str) -> bool:
        """True only for an enabled user with that password. An unknown user costs the
        same hashing time as a known one, so timing does not tell which names exist."""
        with readonly(self.engine.connect()) as c:
            row = c.execute(select(user_passwords.c.password_hash, users.c.disabled)
                            .select_from(user_passwords.join(users, users.c.user_id
                                                             == user_passwords.c.user_id))
                            .where(user_passwords.c.user_id == user_id)).first()
        from argon2.exceptions import InvalidHashError, VerificationError
        try:
            ok = _hasher().verify(row.password_hash if row else _dummy_hash(), password or "")
        except (VerificationError, InvalidHashError):
            return False
        if row is None or row.disabled:
            return False
        if _hasher().check_needs_rehash(row.password_hash):
            self.set_password(user_id, password)
        return ok

    def has_password(self, user_id: str) -> bool:
        with readonly(self.engine.connect()) as c:
            return c.execute(select(user_passwords.c.user_id)
                             .where(user_passwords.c.user_id == user_id)).first() is not None

    def list_users(self) -> list[dict]:
        with readonly(self.engine.connect()) as c:
            rows = c.execute(select(users).order_by(users.c.user_id)).mappings().all()
        return [dict(r) for r in rows]

    def get(self, user_id: str) -> dict | None:
        with readonly(self.engine.connect()) as c:
            row = c.execute(select(users).where(users.c.user_id == user_id)).mappings().first()
        return dict(row) if row else None


# -- password rules and hashing -------------------------------------------------------------
PASSWORD_MIN_LENGTH = 8


def password_problems(password) -> list[str]:
    """What is wrong with a new password (empty when it is acceptable)."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_LENGTH:
        return ["至少 %d 个字符" % PASSWORD_MIN_LENGTH]
    problems = []
    if len(password) > 128:
        problems.append("最多 128 个字符")
    if not (re.search(r"[A-Za-z]", password) and re.search(r"[0-9]", password)):
        problems.append("须同时包含字母和数字")
    return problems


_HASHER = []


def _hasher():
    if not _HASHER:
        from argon2 import PasswordHasher
        _HASHER.append(PasswordHasher())  # argon2id with the library's recommended cost
    return _HASHER[0]


def _dummy_hash() -> str:
    if len(_HASHER) < 2:
        _HASHER.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _HASHER[1]
