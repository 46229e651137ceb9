"""``qinglian events verify``: is this node's log still what it was?

Three kinds of evidence, from weakest to strongest:

1. **The chain** (``EventStore.verify``): every row's hash covers the row and the hash
   before it, so a row edited in place, or a row missing in the middle, shows.
2. **The node's own bookkeeping**: the relay's and every projection's checkpoint is
   a position they have seen in the log; one beyond the log's head means rows were
   cut off its end (which the chain alone cannot show). Services add their own
   (the exchange service: its outbox still holds every shared record as signed).
3. **Anchors held by another node** (``services.exchange.anchors``): whoever rewrote a
   row and recomputed every hash after it, or cut the log and its checkpoints,
   cannot rewrite the signed heads another node keeps.

Verification only reads: a database that does not exist is an error, never created.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from shared.store import checkpoints, events


class MissingLog(Exception):
    """There is no event log at the configured place (wrong path, wrong database)."""


@dataclass
class Finding:
    """One piece of evidence of tampering: where, and what no longer holds."""

    position: int | None
    reason: str


@dataclass
class Report:
    service: str
    checked: int = 0
    head: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def first(self) -> Finding:
        known = [f for f in self.findings if f.position is not None]
        return min(known, key=lambda f: f.position) if known else self.findings[0]


def open_readonly(url: str) -> Engine:
    """An engine that can only read ``url``'s existing event log (MissingLog otherwise)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = Path(u.database or "")
        if not u.database or not path.is_file():
            raise MissingLog("数据库文件不存在 (no database file at %s)" % (u.database or ":memory:"))
        engine = create_engine("sqlite:///file:%s?mode=ro&uri=true" % path.resolve())
    else:
        engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("events"):
                raise MissingLog("没有事件日志 (no event log in %s)" % u.render_as_string(
                    hide_password=True))
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise MissingLog("无法打开数据库 (database: %s: %s)" % (
            u.render_as_string(hide_password=True), reason)) from None
    return engine


# checkpoints that count something other than log positions
NOT_POSITIONS = ("federation:publisher",)


def check_checkpoints(conn, head: int) -> list[Finding]:
    """Every checkpoint is at or below the head: one beyond it saw rows that are gone."""
    out = []
    try:
        rows = conn.execute(select(checkpoints.c.name, checkpoints.c.position)).all()
    except SQLAlchemyError:
        return out  # a log without checkpoints (nothing ever tracked it)
    for name, position in rows:
        if name not in NOT_POSITIONS and position > head:
            out.append(Finding(head + 1, "checkpoint %r is at position %d but the log ends at "
                                         "%d: events after %d were removed"
                               % (name, position, head, head)))
    return out


def verify_log(service: str, engine: Engine, store, extra=(), progress=None) -> Report:
    """The chain, then the checkpoints, then each ``extra(conn, head)`` check.
    ``progress(total)`` may give the chain walk a progress callback."""
    report = Report(service)
    with engine.connect() as conn:
        report.head = conn.execute(select(events.c.position).order_by(
            events.c.position.desc()).limit(1)).scalar() or 0
        chain = store.verify(conn, progress=progress(report.head)
                             if progress and report.head else None)
        report.checked = chain.checked
        if not chain.ok:
            report.findings.append(Finding(chain.first_bad_position, chain.reason))
        report.findings.extend(check_checkpoints(conn, report.head))
        for check in extra:
            report.findings.extend(check(conn, report.head))
    return report
