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

import json

from sqlalchemy import (Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text,
                        func, select)

from services.exchange.domain import lower_is_better, owner_of, split_marks
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
    Column("figures", Text, nullable=False),  # JSON {indicator: value}
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
    Column("indicators", Text, nullable=False),   # JSON list of the indicator names
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
            for name in json.loads(before["figures"]):
                w.delete(indicator_ranking, period=before["period"], indicator=name,
                         scope=before["scope"], node=before["node"], unit_id=before["unit_id"])
        for name, value in figures.items():
            w.insert(indicator_ranking, period=p["period"], indicator=name, scope=p["scope"],
                     node=node, unit_id=unit_id, report_id=rid, source=p["source"],
                     value=value, sort_value=sort_value(name, value))
        w.upsert(indicator_reports, {"report_id": rid}, period=p["period"], node=node,
                 scope=p["scope"], source=p["source"], unit_id=unit_id,
                 unit_name=p.get("unit_name"), figures=json.dumps(figures, sort_keys=True),
                 provisional=provisional)
        key = {"period": p["period"], "node": node, "scope": p["scope"], "source": p["source"]}
        seen = w.get(indicator_periods, **key)
        names = set(figures) | set(json.loads(seen["indicators"]) if seen else ())
        w.upsert(indicator_periods, key, reports=(seen["reports"] if seen else 0) + (before is None),
                 indicators=json.dumps(sorted(names)))


RANKING = IndicatorRanking()

r, rep = indicator_ranking, indicator_reports


def periods(conn) -> list[str]:
    """Every period some node published figures for, latest first (the picker's)."""
    return [row[0] for row in conn.execute(
        select(indicator_periods.c.period).distinct().order_by(indicator_periods.c.period.desc()))]


def _ranked(rows) -> dict[str, dict]:
    """(indicator, key, value) rows in ranking order -> {indicator: {key: rank}}."""
    out: dict[str, dict] = {}
    for indicator, key, _value in rows:
        ranks = out.setdefault(indicator, {})
        ranks[key] = len(ranks) + 1
    return out


def city_comparison(conn, period: str | None, indicator: str | None = None,
                    node: str | None = None, source: str | None = None,
                    limit: int = 10) -> dict:
    """上下互比 as the city reads it: every district's own figures for a period side by
    side, ranked among the districts; the ``limit`` best units of the city per indicator
    (or of ``indicator`` only); and with ``node``, that district's units with their
    figures and their rank within the district. ``period`` None: the latest published.
    ``indicators`` is every name of the period; ``district_indicators`` and
    ``unit_indicators`` the names each scope published. A district's (or unit's)
    ``provisional`` is True while some of its figures for the period are still open for
    late entries (ranked as they stand, marked 暂定; the final figures replace them)."""
    known = periods(conn)
    if period is None:
        period = known[0] if known else None
    answer = {"period": period, "periods": known, "indicators": [], "lower_is_better": {},
              "district_indicators": [], "unit_indicators": [],
              "districts": [], "top_units": {}, "node": node, "units": []}
    if period is None:
        return answer
    where = [r.c.period == period]
    if source:
        where.append(r.c.source == source)
    d_rows = conn.execute(
        select(r.c.indicator, r.c.node, r.c.value).where(*where, r.c.scope == "district")
        .order_by(r.c.indicator, r.c.sort_value, r.c.node)).all()
    counts, names, by_scope = {}, set(), {"district": set(), "unit": set()}
    for row in conn.execute(select(indicator_periods).where(indicator_periods.c.period == period)
                            ).mappings():
        if source and row["source"] != source:
            continue
        names.update(json.loads(row["indicators"]))
        by_scope.setdefault(row["scope"], set()).update(json.loads(row["indicators"]))
        if row["scope"] == "unit":  # a unit may report from supervision and education
            counts[row["node"]] = max(counts.get(row["node"], 0), row["reports"])
    names = sorted(names)
    ranks = _ranked(d_rows)
    provisional = {n for (n,) in conn.execute(
        select(rep.c.node).where(rep.c.period == period, rep.c.scope == "district",
                                 rep.c.provisional.is_(True),
                                 *([rep.c.source == source] if source else [])).distinct())}
    districts: dict[str, dict] = {}
    for name, n, value in d_rows:
        d = districts.setdefault(n, {"node": n, "units": counts.get(n, 0), "values": {},
                                     "ranks": {}, "provisional": n in provisional})
        d["values"][name] = value
        d["ranks"][name] = ranks[name][n]
    for n, count in counts.items():
        districts.setdefault(n, {"node": n, "units": count, "values": {}, "ranks": {},
                                 "provisional": n in provisional})
    answer.update(indicators=names, lower_is_better={n: lower_is_better(n) for n in names},
                  district_indicators=sorted(by_scope["district"]),
                  unit_indicators=sorted(by_scope["unit"]),
                  districts=[districts[k] for k in sorted(districts)])
    for name in ([indicator] if indicator else names):
        top = conn.execute(
            select(r.c.node, r.c.unit_id, r.c.value).where(*where, r.c.indicator == name,
                                                           r.c.scope == "unit")
            .order_by(r.c.sort_value, r.c.node, r.c.unit_id).limit(limit)).all()
        answer["top_units"][name] = [{"rank": i + 1, "node": t[0], "unit_id": t[1], "value": t[2]}
                                     for i, t in enumerate(top)]
    unit_names = {}
    wanted_units = {(t["node"], t["unit_id"]) for v in answer["top_units"].values() for t in v}
    if node:
        u_rows = conn.execute(
            select(rep.c.unit_id, rep.c.unit_name, rep.c.figures, rep.c.source, rep.c.provisional)
            .where(rep.c.period == period, rep.c.node == node, rep.c.scope == "unit",
                   *([rep.c.source == source] if source else []))).all()
        local = _ranked(conn.execute(
            select(r.c.indicator, r.c.unit_id, r.c.value)
            .where(*where, r.c.scope == "unit", r.c.node == node)
            .order_by(r.c.indicator, r.c.sort_value, r.c.unit_id)).all())
        from services.exchange.projections import records
        exemplars = {row[0] for row in conn.execute(
            select(records.c.unit_id).where(records.c.kind == "exemplar",
                                            records.c.published.is_(True)))}
        units: dict[str, dict] = {}
        for unit_id, unit_name, figures, _src, marked in u_rows:
            u = units.setdefault(unit_id, {"unit_id": unit_id, "unit_name": unit_name,
                                           "exemplar": unit_id in exemplars, "values": {},
                                           "ranks": {}, "provisional": False})
            u["values"].update(json.loads(figures))
            u["provisional"] = u["provisional"] or bool(marked)
        for u in units.values():
            u["ranks"] = {k: local[k][u["unit_id"]] for k in u["values"] if k in local}
            unit_names[(node, u["unit_id"])] = u["unit_name"]
        answer["units"] = sorted(units.values(), key=lambda u: (u["unit_name"] or "", u["unit_id"]))
    missing = wanted_units - set(unit_names)
    if missing:
        for n, unit_id, name in conn.execute(
                select(rep.c.node, rep.c.unit_id, rep.c.unit_name).where(
                    rep.c.period == period, rep.c.scope == "unit",
                    rep.c.unit_id.in_(sorted({m[1] for m in missing})))).all():
            unit_names[(n, unit_id)] = name
    for top in answer["top_units"].values():
        for t in top:
            t["unit_name"] = unit_names.get((t["node"], t["unit_id"]))
    return answer
