"""Sign-in: passwords checked, failures backed off and locked, every attempt recorded.

A failed sign-in counts against both the user name and the client's address (so one
address cannot try many names, nor many addresses one name, without being slowed).
After the second failure in a row the next try is refused for ``backoff_seconds``,
doubled after each further failure; after ``lock_after`` failures the name - or after
``address_lock_after`` the address (higher: a whole office may share one) - is locked
for ``lock_seconds``. A successful sign-in clears the user's count.
Every attempt - success, failure, refusal while backed off or locked, lockout, sign-out
- is one row in ``sign_in_records`` in the node database, which node-admins read in
the console.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select

from shared.auth import UserDirectory
from shared.db import readonly

metadata = MetaData()

sign_in_records = Table(
    "sign_in_records", metadata,
    Column("record_id", Integer, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False, index=True),
    Column("user_id", String(100), nullable=False, index=True),
    Column("client", String(100), nullable=False, index=True),
    # success | failure | backoff | locked | lockout | logout | expired
    Column("outcome", String(20), nullable=False),
)

OUTCOMES = {"success": "登录成功", "failure": "密码错误", "backoff": "尝试过快被拒",
            "locked": "锁定中被拒", "lockout": "连续失败被锁定", "logout": "退出登录",
            "expired": "会话过期"}

_US = 1_000_000
_COUNTED = ("failure",)


@dataclass
class Refusal(Exception):
    """A sign-in refused before its password was checked (backed off or locked)."""
    seconds: int
    locked: bool

    def message(self) -> str:
        if self.locked:
            return "连续登录失败次数过多，账号或地址已锁定，请 %d 分钟后再试。" % max(1, -(-self.seconds // 60))
        return "登录尝试过于频繁，请 %d 秒后再试。" % max(1, self.seconds)


@dataclass
class SignIn:
    users: UserDirectory
    settings: object  # services.console.settings.Settings

    def create_schema(self) -> None:
        metadata.create_all(self.users.engine)

    def record(self, user_id: str, client: str, outcome: str, conn=None) -> None:
        row = dict(at_us=self.users.clock(), user_id=(user_id or "")[:100],
                   client=(client or "")[:100], outcome=outcome)
        if conn is not None:
            conn.execute(sign_in_records.insert().values(**row))
            return
        with self.users.engine.begin() as c:
            c.execute(sign_in_records.insert().values(**row))

    def _streak(self, conn, column, value, now: int) -> tuple[int, int]:
        """Failures in a row (since the last success, within the lock window) by one user
        name or one address, and the time of the latest."""
        since = now - self.settings.lock_seconds * _US
        last_ok = conn.execute(select(func.max(sign_in_records.c.at_us)).where(
            column == value, sign_in_records.c.outcome == "success")).scalar() or 0
        count, latest = conn.execute(
            select(func.count(), func.max(sign_in_records.c.at_us)).where(
                column == value, sign_in_records.c.outcome.in_(_COUNTED),
                sign_in_records.c.at_us > max(since, last_ok))).one()
        return count or 0, latest or 0

    def _refusal(self, conn, user_id: str, client: str, now: int) -> Refusal | None:
        s = self.settings
        worst = None
        for column, value, limit in ((sign_in_records.c.user_id, user_id, s.lock_after),
                                     (sign_in_records.c.client, client, s.address_lock_after)):
            count, latest = self._streak(conn, column, value, now)
            if count >= limit:
                wait = latest + s.lock_seconds * _US - now
                refusal = Refusal(int(wait / _US) + 1, True)
            elif count >= 2 and s.backoff_seconds > 0:
                wait = latest + int(s.backoff_seconds * 2 ** (count - 2) * _US) - now
                refusal = Refusal(int(wait / _US) + 1, False) if wait > 0 else None
            else:
                refusal = None
            if refusal and (worst is None or refusal.locked > worst.locked):
                worst = refusal
        return worst

    def attempt(self, user_id: str, password: str, client: str) -> None:
        """Raise ``Refusal`` (backed off or locked) or ``ValueError`` (wrong name or
        password, counted); return on success."""
        now = self.users.clock()
        with readonly(self.users.engine.connect()) as c:
            refusal = self._refusal(c, user_id, client, now)
        if refusal is not None:
            self.record(user_id, client, "locked" if refusal.locked else "backoff")
            raise refusal
        if self.users.check_password(user_id, password):
            self.record(user_id, client, "success")
            return
        self.record(user_id, client, "failure")
        s = self.settings
        with readonly(self.users.engine.connect()) as c:
            by_name = self._streak(c, sign_in_records.c.user_id, user_id, now)[0]
            by_address = self._streak(c, sign_in_records.c.client, client, now)[0]
        if by_name == s.lock_after or by_address == s.address_lock_after:
            self.record(user_id, client, "lockout")
        raise ValueError("用户名或密码不正确")

    def recent(self, limit: int = 200, user_id: str | None = None) -> list[dict]:
        q = select(sign_in_records).order_by(sign_in_records.c.record_id.desc()).limit(limit)
        if user_id:
            q = q.where(sign_in_records.c.user_id == user_id)
        with readonly(self.users.engine.connect()) as c:
            return [dict(r) for r in c.execute(q).mappings()]
