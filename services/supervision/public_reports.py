"""群众监督 read side: the public's complaints and reports, for the inspectors' queue.

The table shares the supervision service's ``metadata``; handlers touch rows by key."""
from __future__ import annotations

from sqlalchemy import Column, String, Table, Text, select

from services.supervision.projections import metadata
from shared.projections import Projection, on
from shared.unittree import subtree_of, unit_directory

public_reports = Table(
    "sv_public_reports", metadata,
    Column("report_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("content", Text, nullable=False),
    Column("post", String(200)),
    Column("contact", String(200)),
    Column("received_on", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("finding_id", String(100)),
    Column("reason", Text),
    Column("handled_on", String(10)),
    Column("handled_by", String(100)),
)


class PublicReports(Projection):
    name = "supervision_public_reports"
    tables = (public_reports,)

    @on("PublicReport.Received")
    def received(self, w, e):
        p = e.payload
        w.insert(public_reports, report_id=p["report_id"], unit_id=p["unit_id"], kind=p["kind"],
                 content=p["content"], post=p.get("post"), contact=p.get("contact"),
                 received_on=p["received_on"], status="received")

    @on("PublicReport.Converted")
    def converted(self, w, e):
        p = e.payload
        w.update(public_reports, {"report_id": p["report_id"]}, status="converted",
                 finding_id=p["finding_id"], handled_on=p["on"], handled_by=p["by"])

    @on("PublicReport.Dismissed")
    def dismissed(self, w, e):
        p = e.payload
        w.update(public_reports, {"report_id": p["report_id"]}, status="dismissed",
                 reason=p["reason"], handled_on=p["on"], handled_by=p["by"])


PUBLIC_REPORTS = PublicReports()


def list_public_reports(conn, unit_id: str, status: str | None) -> list[dict]:
    units = {u["unit_id"]: u for u in subtree_of(conn, unit_directory, unit_id, include_inactive=True)}
    q = select(public_reports).where(public_reports.c.unit_id.in_(list(units)))
    if status:
        q = q.where(public_reports.c.status == status)
    rows = conn.execute(q.order_by(public_reports.c.received_on.desc(),
                                   public_reports.c.report_id)).mappings().all()
    return [dict(r, unit_name=units[r["unit_id"]]["name"]) for r in rows]


def report_unit(conn, report_id: str) -> str | None:
    return conn.execute(select(public_reports.c.unit_id)
                        .where(public_reports.c.report_id == report_id)).scalar()
