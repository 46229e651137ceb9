"""Read models of the exchange service (their queries: ``queries.py``).

They are built from this node's log, which holds this node's own records *and* the
replicas of other nodes' records it received (same event types, same payloads; see
``services.exchange.federation``). So one set of handlers serves both, a rebuild from
the log gives the same tables, and "what this node can see" is simply "what is here".

* ``shared_records`` + ``record_tags`` - one row per root record (the shared feed).
* ``sub_records`` - contributions, comments, learned-from marks, sign-ups, attendance,
  endorsements, proposals: one row each, pointing at their record.
* a record's full history across nodes needs no table of its own: it is the log's
  events of the record's stream and of its sub-records' streams (``record_history``).
* ``indicator_values`` - the 上下互比 figures, one row per report and indicator.
* ``unit_registers`` - every node's unit register this node can see.
* ``indicator_ranking`` + ``indicator_reports`` + ``indicator_periods`` - 上下互比's
  figures kept ready to compare and rank (``IndicatorRanking``, see its section).
* ``relief_figure_reports`` - 基层减负: where each report came from (``FigureOrigins``).
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text,
)

from services.exchange.domain import aggregate_of, owner_of, sort_value, split_marks
from shared.db import JSONText
from shared.events import StoredEvent, iso_to_us
from shared.projections import Projection, on
from shared.unittree import unit_directory_projection

metadata = MetaData()

records = Table(
    "shared_records", metadata,
    Column("record_id", String(150), primary_key=True),
    Column("kind", String(20), nullable=False, index=True),
    Column("owner", String(63), nullable=False, index=True),
    Column("unit_id", String(100)),
    Column("unit_name", String(200)),
    Column("title", String(300), nullable=False),
    Column("summary", Text),
    Column("sharing", String(10), nullable=False),
    Column("recipients", JSONText, nullable=False),  # node ids (sharing "named")
    Column("published", Boolean, nullable=False, default=False),
    Column("status", String(30), nullable=False),
    Column("tags", JSONText, nullable=False),
    Column("content", JSONText, nullable=False),  # the record's current content
    Column("first_published_at", String(40)),
    Column("updated_at", String(40), nullable=False),
    # ordering of the feed: when it happened at its owner (not when it arrived here)
    Column("updated_us", BigInteger, nullable=False, index=True),
    Column("events", Integer, nullable=False, default=0),
)

record_tags = Table(
    "record_tags", metadata,
    Column("record_id", String(150), primary_key=True),
    Column("tag", String(60), primary_key=True, index=True),
)

subs = Table(
    "sub_records", metadata,
    Column("sub_id", String(150), primary_key=True),
    Column("sub_kind", String(20), nullable=False),
    Column("record_id", String(150), nullable=False, index=True),  # the root record
    Column("parent_id", String(150), nullable=False, index=True),
    Column("owner", String(63), nullable=False, index=True),
    Column("unit_id", String(100)),
    Column("unit_name", String(200)),
    Column("status", String(20), nullable=False),
    Column("content", JSONText, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

indicator_values = Table(
    "indicator_values", metadata,
    Column("report_id", String(150), primary_key=True),
    Column("indicator", String(60), primary_key=True),
    Column("node", String(63), nullable=False, index=True),
    Column("source", String(20), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("unit_id", String(100)),
    Column("unit_name", String(200)),
    Column("period", String(10), nullable=False, index=True),
    Column("value", Float, nullable=False),
)

SUMMARY_FIELDS = {"experience": "summary", "case": "summary", "activity": "description",
                  "exemplar": "description", "problem": "context", "escalation": "description"}
SUB_KIND = {"Contribution": "contribution", "Comment": "comment", "LearnedFrom": "learned",
            "SignUp": "signup", "Attendance": "attendance", "Endorsement": "endorsement",
            "Proposal": "proposal", "FollowUp": "followup"}


def _tags(kind: str, content: dict) -> list[str]:
    """Tags a feed can be filtered by: topics, business type, category, tags, theme."""
    tags = list(content.get("tags") or []) + list(content.get("topics") or [])
    for field in ("business_type", "category", "theme"):
        if content.get(field):
            tags.append(content[field])
    return sorted(set(t[:60] for t in tags))


class SharedRecords(Projection):
    """The shared feed (root records) and what nodes added to them (sub-records)."""

    name = "exchange_records"
    tables = (records, record_tags, subs)

    # -- root records -----------------------------------------------------------------
    def _write(self, w, e: StoredEvent, content: dict, **values) -> None:
        cls = aggregate_of(e.event_type)
        rid = e.payload[cls.id_field]
        row = w.get(records, record_id=rid)
        merged = dict(row["content"]) if row else {}
        merged.update(content)
        summary = merged.get(SUMMARY_FIELDS[cls.kind]) or ""
        tags = _tags(cls.kind, merged)
        base = dict(kind=cls.kind, owner=owner_of(rid), unit_id=merged.get("unit_id"),
                    unit_name=merged.get("unit_name"), title=merged.get("title") or rid,
                    summary=summary[:300], content=merged, tags=tags,
                    updated_at=e.occurred_at, updated_us=iso_to_us(e.occurred_at),
                    events=(row["events"] if row else 0) + 1)
        # a value may depend on the row as it was (first_published_at keeps the first)
        base.update({k: (v(row) if callable(v) else v) for k, v in values.items()})
        if row is None:
            base.setdefault("sharing", e.payload.get("sharing", "node"))
            if "recipients" not in base:
                base["recipients"] = list(e.payload.get("recipients", []))
            base.setdefault("published", False)
            base.setdefault("status", merged.get("status") or "draft")
            w.insert(records, record_id=rid, **base)
        else:
            w.update(records, {"record_id": rid}, **base)
        # (a delete by record id alone is a scan of the buffer in a rebuild: only when
        # the tags of an existing record change, which is rare)
        if row is not None and row["tags"] != base["tags"]:
            w.delete(record_tags, record_id=rid)
        if row is None or row["tags"] != base["tags"]:
            for tag in tags:
                w.insert(record_tags, record_id=rid, tag=tag)

    @staticmethod
    def _content(e: StoredEvent) -> dict:
        cls = aggregate_of(e.event_type)
        return {k: v for k, v in e.payload.items() if k in cls.CONTENT}

    @on("Experience.Drafted", "Case.Compiled", "JointActivity.Planned", "Exemplar.Nominated",
        "JointProblem.Posted", "EscalatedCase.Referred")
    def created(self, w, e):
        self._write(w, e, self._content(e), sharing="node", recipients=[], published=False,
                    status=e.payload.get("status") or "draft")

    @on("Experience.Published", "Case.Published", "JointActivity.Published",
        "Exemplar.Published", "JointProblem.Published", "EscalatedCase.Published")
    def published(self, w, e):
        self._write(w, e, self._content(e), sharing=e.payload["sharing"],
                    recipients=list(e.payload["recipients"]), published=True,
                    status=e.payload.get("status") or "published",
                    first_published_at=lambda row: (row or {}).get("first_published_at") or e.occurred_at)

    @on("Experience.Withdrawn", "Case.Withdrawn", "JointActivity.Withdrawn",
        "Exemplar.Withdrawn", "JointProblem.Withdrawn", "EscalatedCase.Withdrawn")
    def withdrawn(self, w, e):
        self._write(w, e, {}, published=False, status="withdrawn")

    @on("Experience.Edited", "Exemplar.IndicatorsUpdated", "JointProblem.DeadlineExtended",
        "JointActivity.Rescheduled")
    def edited(self, w, e):
        self._write(w, e, self._content(e))

    @on("Case.Revised")
    def case_revised(self, w, e):
        rid = e.payload["case_id"]
        row = w.get(records, record_id=rid)
        merged = sorted(set(row["content"].get("merged_contributions") or [])
                        | set(e.payload["merged_now"])) if row else e.payload["merged_now"]
        self._write(w, e, dict(self._content(e), merged_contributions=merged))
        for cid in e.payload["merged_now"]:
            w.update(subs, {"sub_id": cid}, status="merged", updated_at=e.occurred_at)

    @on("JointActivity.OutcomeReported")
    def outcome(self, w, e):
        self._write(w, e, {"status": "completed", "outcome": {
            "summary": e.payload["summary"], "results": e.payload["results"]}},
            status="completed")

    @on("JointActivity.Cancelled")
    def cancelled(self, w, e):
        self._write(w, e, {"status": "cancelled"}, status="cancelled")

    @on("JointProblem.SolutionAccepted")
    def accepted(self, w, e):
        self._write(w, e, {"status": "solution_accepted",
                           "accepted_proposal_id": e.payload["proposal_id"]},
                    status="solution_accepted")
        w.update(subs, {"sub_id": e.payload["proposal_id"]}, status="accepted",
                 updated_at=e.occurred_at)

    @on("JointProblem.Resolved")
    def resolved(self, w, e):
        p = e.payload
        self._write(w, e, {"status": "resolved", "resolution": {
            "summary": p["summary"], "results": p["results"], "measures": p["measures"],
            "resolved_on": p["resolved_on"], "proposal_id": p["proposal_id"]}},
            status="resolved")

    # -- sub-records ----------------------------------------------------------------------
    def _sub(self, w, e, status: str, parent_id: str, root_id: str | None = None) -> None:
        cls = aggregate_of(e.event_type)
        sid = e.payload[cls.id_field]
        skip = {cls.id_field, "sharing", "recipients"}
        content = {k: v for k, v in e.payload.items() if k not in skip}
        w.insert(subs, sub_id=sid, sub_kind=SUB_KIND[cls.stream_type], record_id=root_id or parent_id,
                 parent_id=parent_id, owner=owner_of(sid), unit_id=e.payload.get("unit_id"),
                 unit_name=e.payload.get("unit_name"), status=status, content=content,
                 created_at=e.occurred_at, updated_at=e.occurred_at)

    def _sub_update(self, w, e, status: str | None = None, **changes) -> None:
        cls = aggregate_of(e.event_type)
        sid = e.payload[cls.id_field]
        row = w.get(subs, sub_id=sid)
        if row is None:
            return
        content = dict(row["content"], **changes)
        w.update(subs, {"sub_id": sid}, content=content, updated_at=e.occurred_at,
                 status=status or row["status"])

    @on("Contribution.Added")
    def contribution(self, w, e):
        self._sub(w, e, "open", e.payload["case_id"])

    @on("Comment.Posted")
    def comment(self, w, e):
        self._sub(w, e, "posted", e.payload["parent_id"], e.payload["record_id"])

    @on("LearnedFrom.Marked")
    def learned(self, w, e):
        self._sub(w, e, "marked", e.payload["experience_id"])

    @on("SignUp.Registered")
    def signed_up(self, w, e):
        row = w.get(subs, sub_id=e.payload["signup_id"])
        if row is None:
            self._sub(w, e, "active", e.payload["activity_id"])
        else:  # signed up again after withdrawing
            self._sub_update(w, e, "active", headcount=e.payload["headcount"])

    @on("SignUp.HeadcountChanged")
    def headcount(self, w, e):
        self._sub_update(w, e, headcount=e.payload["headcount"])

    @on("SignUp.Withdrawn")
    def signup_withdrawn(self, w, e):
        self._sub_update(w, e, "withdrawn", reason=e.payload["reason"])

    @on("Attendance.Recorded")
    def attendance(self, w, e):
        self._sub(w, e, "recorded", e.payload["activity_id"])

    @on("Attendance.Corrected")
    def attendance_corrected(self, w, e):
        self._sub_update(w, e, "corrected", attendees=e.payload["attendees"],
                         units=e.payload["units"], note=e.payload["note"])

    @on("Endorsement.Given")
    def endorsed(self, w, e):
        self._sub(w, e, "given", e.payload["exemplar_id"])

    @on("Proposal.Submitted")
    def proposed(self, w, e):
        self._sub(w, e, "submitted", e.payload["problem_id"])

    # -- 督办 ---------------------------------------------------------------------------------
    @on("EscalatedCase.Progressed")
    def escalation_progressed(self, w, e):
        p = e.payload
        self._write(w, e, {"status": p["status"], "deadline": p["deadline"],
                           "closed_on": p["closed_on"], "trail": p["trail"]}, status=p["status"])

    @on("FollowUp.Recorded")
    def followed_up(self, w, e):
        self._sub(w, e, "recorded", e.payload["case_id"])


class Indicators(Projection):
    """上下互比: the figures of every unit and district this node can see."""

    name = "exchange_indicators"
    tables = (indicator_values,)

    @on("IndicatorReport.Recorded", "IndicatorReport.Updated")
    def report(self, w, e):
        p = e.payload
        rid = p["report_id"]
        if e.event_type == "IndicatorReport.Updated":  # a Recorded report has no rows yet
            w.delete(indicator_values, report_id=rid)  # (a rebuild's buffer scans for these)
        for name, value in sorted(p["indicators"].items()):
            w.insert(indicator_values, report_id=rid, indicator=name, node=owner_of(rid),
                     source=p["source"], scope=p["scope"], unit_id=p.get("unit_id"),
                     unit_name=p.get("unit_name"), period=p["period"], value=float(value))


unit_registers = Table(
    "unit_registers", metadata,
    Column("register_id", String(150), primary_key=True),
    Column("node", String(63), nullable=False, index=True),
    Column("units", JSONText, nullable=False),   # [{unit_id, name, kind, level, parent_id, flags}]
    Column("counts", JSONText, nullable=False),
    Column("updated_at", String(40), nullable=False),
)


class Registers(Projection):
    """Every node's unit register this node can see (the city: every district's)."""

    name = "exchange_registers"
    tables = (unit_registers,)

    @on("UnitRegister.Recorded", "UnitRegister.Updated")
    def register(self, w, e):
        p = e.payload
        w.upsert(unit_registers, {"register_id": p["register_id"]}, node=owner_of(p["register_id"]),
                 units=p["units"], counts=p["counts"], updated_at=e.occurred_at)


# -- 上下互比, ready to rank -------------------------------------------------------------------
# ``indicator_values`` holds one row per report and indicator; answering the city's
# comparison from it meant reading every figure of the period (43,000 rows at 11 districts x
# 300 units), building a dict per row and sorting every indicator in Python on each
# request - seconds on this machine. This read model is maintained as the indicators arrive
# (``IndicatorReport.Recorded`` / ``Updated``, from this node's own services or replicated
# from the districts), so a request reads only what it shows (``queries.city_comparison``):
#
# * ``indicator_ranking`` - one row per (period, indicator, scope, node, unit) with the
#   value and its ``sort_value`` (``domain.sort_value``: ascending is best first), under an
#   index in ranking order: the best N units of an indicator across the city are the first
#   N entries of that index, a district's own figures 13 x 11 rows.
# * ``indicator_reports`` - one row per report with all its figures (JSON): a district's
#   units for the drill-down are that district's rows, not the period's.
# * ``indicator_periods`` - which nodes published which periods (the period picker).
#
# A rank is the position in the index order; ties are broken by node, then unit id, so every
# node computes the same ranking from the same figures. A report's marks
# (``domain.REPORT_MARKS``: ``provisional``, the month still open for late entries) are not
# figures: never ranked, kept as ``indicator_reports.provisional`` and shown as a flag on the
# district's / unit's row; the final figures replace them (an update).

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

# ``indicator_marks`` - one row, "reports": the log position of the last report applied.
# Every ranking figure, unit name, mark and period here moves only with a report, so the
# comparison answers the same until this moves; the console keeps its rendered 上下互比 page
# until then (``queries.comparison_version``). Not a timed cache: districts publish in
# bursts (monthly, quarterly) and are read far more often between them, and a figure
# published must show on the next view, not a minute later.
indicator_marks = Table(
    "indicator_marks", metadata,
    Column("name", String(20), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


class IndicatorRanking(Projection):
    """上下互比, ready to rank: see the section above. Rebuilt from the log like every
    projection (``version``)."""

    name = "exchange_indicator_ranking"
    version = 2  # v2: the provisional mark is a flag, not a ranked figure (issue 10 #13)
    tables = (indicator_ranking, indicator_reports, indicator_periods, indicator_marks)

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
        w.upsert(indicator_marks, {"name": "reports"}, position=e.position)


# -- 基层减负 measured (issue 10, item 28) --------------------------------------------------------
# For every figure a node has received: was it derived from what the platform recorded or
# typed by hand, per origin node and month (``queries.relief_measure``)?
#
# * 上下互比 figures (``IndicatorReport``) are derived by construction: the only way one is
#   made is ``record_indicators`` reacting to a service's published event, and the report
#   names that event (``derived_from``: service, event type, event id). ``figure_reports``
#   keeps, per report, its origin node, how many figures it carries (a report's marks -
#   ``domain.REPORT_MARKS``, education's and supervision's ``provisional`` - are not
#   figures), that provenance and when its origin sent it.
# * 典型联树 figures (``Exemplar``) are taken from the published figures where they exist;
#   the rest were typed, and each figure says which (``indicator_sources``: published |
#   manual) - read from the shared records.

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


UNIT_DIRECTORY = unit_directory_projection()
RANKING = IndicatorRanking()
FIGURE_ORIGINS = FigureOrigins()
PROJECTIONS = [UNIT_DIRECTORY, SharedRecords(), Indicators(), Registers(), RANKING, FIGURE_ORIGINS]
