"""基层减负 measured (issue 10, item 28): for every figure a node has received, whether it
was derived from what the platform recorded or typed by hand, per origin node and month.

* 上下互比 figures (``IndicatorReport``) are derived by construction: the only way one is
  made is ``record_indicators`` reacting to a service's published event, and the report
  names that event (``derived_from``: service, event type, event id). ``figure_reports``
  keeps, per report, its origin node, how many figures it carries (a report's marks -
  ``domain.REPORT_MARKS``, education's ``provisional`` - are not figures), that provenance and
  when its origin sent it.
* 典型联树 figures (``Exemplar``) are taken from the published figures where they exist;
  the rest were typed, and each figure says which (``indicator_sources``: published |
  manual) - read from the shared records.

``relief_measure`` (the query, ``relief_query.py``) counts them per origin node for a month
- at the city: how many figures each district sent with no manual entry at all.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, func, select

from services.exchange.domain import owner_of, relief_tally, split_marks
from shared.events import iso_to_us
from shared.projections import Projection, on

metadata = MetaData()

figure_reports = Table(
    "relief_figure_reports", metadata,
    Column("report_id", String(150), primary_key=True),
    Column("node", String(63), nullable=False, index=True),
    Column("source", String(20), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("period", String(10), nullable=False),
    Column("figures", Integer, nullable=False),
    Column("derived_from", Text),          # JSON {service, event_type, event_id} or null
    Column("sent_at", String(40), nullable=False),
    Column("sent_us", BigInteger, nullable=False, index=True),
)


class FigureOrigins(Projection):
    """Where each 上下互比 report this node holds came from, and when its origin sent it."""

    name = "exchange_relief"
    version = 2  # v2: a report's marks (``provisional``) are not counted as figures
    tables = (figure_reports,)

    @on("IndicatorReport.Recorded", "IndicatorReport.Updated")
    def report(self, w, e):
        p = e.payload
        derived = p.get("derived_from")
        w.upsert(figure_reports, {"report_id": p["report_id"]}, node=owner_of(p["report_id"]),
                 source=p["source"], scope=p["scope"], period=p["period"],
                 figures=len(split_marks(p["indicators"])[0]),  # marks are not figures
                 derived_from=json.dumps(derived, sort_keys=True) if derived else None,
                 sent_at=e.occurred_at, sent_us=iso_to_us(e.occurred_at))


FIGURE_ORIGINS = FigureOrigins()


def month_bounds_us(month: str, tz: str) -> tuple[int, int]:
    """The month in the users' time zone, as [start, end) in epoch microseconds."""
    zone = ZoneInfo(tz)
    y, m = int(month[:4]), int(month[5:7])
    start = datetime.combine(date(y, m, 1), time(0), tzinfo=zone)
    end = datetime.combine(date(y + (m == 12), 1 if m == 12 else m + 1, 1), time(0), tzinfo=zone)
    return iso_to_us(start.isoformat()), iso_to_us(end.isoformat())


def relief_measure(conn, month: str, tz: str, nodes: list[dict], this_node: str) -> dict:
    from services.exchange.projections import records
    start, end = month_bounds_us(month, tz)
    sent = (figure_reports.c.sent_us >= start) & (figure_reports.c.sent_us < end)
    derived, reports, traced = {}, {}, {}
    for node, figures, reps, with_origin in conn.execute(
            select(figure_reports.c.node, func.sum(figure_reports.c.figures), func.count(),
                   func.count(figure_reports.c.derived_from))
            .where(sent).group_by(figure_reports.c.node)).all():
        derived[node], reports[node], traced[node] = int(figures or 0), reps, with_origin
    manual, exemplar_derived = {}, {}
    in_month = (records.c.updated_us >= start) & (records.c.updated_us < end)
    for owner, content in conn.execute(select(records.c.owner, records.c.content)
                                       .where(records.c.kind == "exemplar", in_month)).all():
        for origin in (json.loads(content).get("indicator_sources") or {}).values():
            bucket = manual if origin == "manual" else exemplar_derived
            bucket[owner] = bucket.get(owner, 0) + 1
    levels = {n["node_id"]: n.get("level") for n in nodes}
    out = []
    for node_id in sorted(set(levels) | set(derived) | set(manual) | set(exemplar_derived)):
        row = relief_tally(derived.get(node_id, 0) + exemplar_derived.get(node_id, 0),
                           manual.get(node_id, 0))
        row.update(node_id=node_id, level=levels.get(node_id), this_node=node_id == this_node,
                   reports=reports.get(node_id, 0), reports_traced=traced.get(node_id, 0),
                   exemplar_figures=exemplar_derived.get(node_id, 0) + manual.get(node_id, 0))
        out.append(row)
    districts = [r for r in out if r["level"] != "city"]
    origins = {}  # per node: what its figures were derived from (event types), how many
    for node, source, scope, derived_from, figures in conn.execute(
            select(figure_reports.c.node, figure_reports.c.source, figure_reports.c.scope,
                   figure_reports.c.derived_from, func.sum(figure_reports.c.figures))
            .where(sent).group_by(figure_reports.c.node, figure_reports.c.source,
                                  figure_reports.c.scope, figure_reports.c.derived_from)).all():
        event_type = json.loads(derived_from)["event_type"] if derived_from else None
        mine = origins.setdefault(node, [])
        same = next((o for o in mine if (o["service"], o["scope"], o["event_type"])
                     == (source, scope, event_type)), None)
        if same:
            same["figures"] += int(figures)
        else:
            mine.append({"service": source, "scope": scope, "event_type": event_type,
                         "figures": int(figures)})
    return {"month": month, "nodes": out, "districts": len(districts), "origins": origins,
            "districts_without_manual_entry": sum(1 for r in districts
                                                  if r["without_manual_entry"])}
