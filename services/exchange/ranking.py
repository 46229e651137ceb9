"""上下互比's read model: the published figures kept ready to compare and rank.

``indicator_values`` (projections.py) holds one row per report and indicator; answering
the city's comparison from it meant reading every figure of the period (43,000 rows at
11 districts x 300 units), building a dict per row and sorting every indicator in Python
on each request - seconds on this machine. This projection is maintained as the
indicators arrive (``IndicatorReport.Recorded`` / ``Updated``, from this node's own
services or replicated from the districts), so a request reads only what it shows:

* ``indicator_ranking`` - one row per (period, indicator, scope, node, unit) with the
  value and its ``sort_value`` (the value, negated where higher is better), under an
  index in ranking order: the best N units of an indicator across the city are the
  first N entries of that index, a district's own figures 13 x 11 rows.
* ``indicator_reports`` - one row per report with all its figures (JSON): a district's
  units for the drill-down are that district's rows, not the period's.
* ``indicator_periods`` - which nodes published which periods (the period picker).

A rank is the position in the index order; ties are broken by node, then unit id, so
every node computes the same ranking from the same figures. Rebuilt from the log like
every projection (``version``).

A report's marks (``domain.REPORT_MARKS``: ``provisional``, the month still open for late
entries) are not figures: never ranked, kept as ``indicator_reports.provisional`` and shown
as a flag on the district's / unit's row; the final figures replace them (an update).
"""
from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table

from services.exchange.domain import lower_is_better, owner_of, split_marks
from shared.db import JSONText
from shared.projections import Projection, on

metadata = MetaData()

indicator_ranking = Table(
    "indicator_ranking", metadata,
    Column("period", String(10), primary_key=True),
    Column("indicator", String(60), primary_key=True),
    Column("scope", String(10), primary_key=True),
    Column("node", String(63), primary_key=True),
    Column("unit_id", String(100), primary_key=True),  # "" for a district's own figure
    Column("report_id", String(150), nullable=False, index=True),
    Column("source", String(20), nullable=False),
    Column("value", Float, nullable=False),
    Column("sort_value", Float, nullable=False),  # ascending = best first
    Index("ix_indicator_ranking_order", "period", "indicator", "scope", "sort_value", "node",
          "unit_id"),
    Index("ix_indicator_ranking_node", "period", "scope", "node", "indicator"),
)

indicator_reports = Table(
    "indicator_reports", metadata,
    Column("report_id", String(150), primary_key=True),
    Column("period", String(10), nullable=False),
    Column("node", String(63), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("source", String(20), nullable=False),
    Column("unit_id", String(100), nullable=False),  # "" for a district's own figures
    Column("unit_name", String(200)),
    Column("figures", JSONText(sort_keys=True, ensure_ascii=True), nullable=False),  # {indicator: value}
    Column("provisional", Boolean, nullable=False, default=False),  # month open for late entries
    Index("ix_indicator_reports_node", "period", "node", "scope"),
)

indicator_periods = Table(
    "indicator_periods", metadata,
    Column("period", String(10), primary_key=True),
    Column("node", String(63), primary_key=True),
    Column("scope", String(10), primary_key=True),
    Column("source", String(20), primary_key=True),
    Column("reports", Integer, nullable=False),   # units (or 1: the district's own figures)
    Column("indicators", JSONText(ensure_ascii=True), nullable=False),   # the indicator names
)


def sort_value(indicator: str, value: float) -> float:
    return value if lower_is_better(indicator) else -value


class IndicatorRanking(Projection):
    """上下互比, ready to rank: see the module doc."""

    name = "exchange_indicator_ranking"
    version = 2  # v2: the provisional mark is a flag, not a ranked figure (issue 10 #13)
    tables = (indicator_ranking, indicator_reports, indicator_periods)

    @on("IndicatorReport.Recorded", "IndicatorReport.Updated")
    def report(self, w, e):
        p = e.payload
        rid, node = p["report_id"], owner_of(p["report_id"])
        unit_id = p.get("unit_id") or ""
        figures, provisional = split_marks(p["indicators"])
        figures = {k: float(v) for k, v in sorted(figures.items())}
        before = w.get(indicator_reports, report_id=rid)
        if before is not None:  # an update: its earlier figures go, by their keys
            for name in before["figures"]:
                w.delete(indicator_ranking, period=before["period"], indicator=name,
                         scope=before["scope"], node=before["node"], unit_id=before["unit_id"])
        for name, value in figures.items():
            w.insert(indicator_ranking, period=p["period"], indicator=name, scope=p["scope"],
                     node=node, unit_id=unit_id, report_id=rid, source=p["source"],
                     value=value, sort_value=sort_value(name, value))
        w.upsert(indicator_reports, {"report_id": rid}, period=p["period"], node=node,
                 scope=p["scope"], source=p["source"], unit_id=unit_id,
                 unit_name=p.get("unit_name"), figures=figures,
                 provisional=provisional)
        key = {"period": p["period"], "node": node, "scope": p["scope"], "source": p["source"]}
        seen = w.get(indicator_periods, **key)
        names = set(figures) | set(seen["indicators"] if seen else ())
        w.upsert(indicator_periods, key, reports=(seen["reports"] if seen else 0) + (before is None),
                 indicators=sorted(names))


RANKING = IndicatorRanking()
