"""基层减负 measured (issue 10, item 28): for every figure a node has received, whether it
was derived from what the platform recorded or typed by hand, per origin node and month.

* 上下互比 figures (``IndicatorReport``) are derived by construction: the only way one is
  made is ``record_indicators`` reacting to a service's published event, and the report
  names that event (``derived_from``: service, event type, event id). ``figure_reports``
  keeps, per report, its origin node, how many figures it carries (a report's marks -
  ``domain.REPORT_MARKS``, education's and supervision's ``provisional`` - are not
  figures), that provenance and when its origin sent it.
* 典型联树 figures (``Exemplar``) are taken from the published figures where they exist;
  the rest were typed, and each figure says which (``indicator_sources``: published |
  manual) - read from the shared records.

``relief_measure`` (queries.py; the operation: ``relief_query.py``) counts them per origin node for a month
- at the city: how many figures each district sent with no manual entry at all.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

from services.exchange.domain import owner_of, split_marks
from shared.db import JSONText
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
    # {service, event_type, event_id} or null; grouped by in SQL: its text keeps one form
    Column("derived_from", JSONText(sort_keys=True, ensure_ascii=True)),
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
                 derived_from=derived or None,
                 sent_at=e.occurred_at, sent_us=iso_to_us(e.occurred_at))


FIGURE_ORIGINS = FigureOrigins()
