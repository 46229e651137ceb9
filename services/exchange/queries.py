"""Query helpers over the exchange read models: plain functions ``(conn, ...)``, as in
every service (``services/supervision/queries.py`` is the model). The tables and their
projections are in ``projections.py``; the operations (``application.py``) call these.
``ExchangeReadPort`` (the port section) is the narrow view a command or a reaction gets as
``uow.exchange`` (``app.read_port``, ``app.bind_ports``): the facts the domain's rules take
as arguments.

* one record and the feed, a record's history across nodes, ``federation_status`` (the
  outbox and the inbox of ``federation.py``) (who may see a record is the
  domain's: ``audience_of``, ``may_see``);
* ``district_summary``, ``compare_indicators`` (every figure of a period, ranked in Python);
* ``city_comparison`` (上下互比 from the ranking read model) and ``periods``;
* ``relief_measure`` (基层减负: derived figures per origin node and month);
* 督办 and the city's read-only views: ``oversight_cases``, ``register_units``,
  ``district_registers``, ``discipline_counts_by_node``, ``own_exemplars``.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import desc, func, select

from services.exchange.domain import (
    ESCALATION_STATUSES, FOLLOW_UP_ACTIONS, REPORT_MARKS, ROOTS, SUBS, awaiting_follow_up,
    escalated_days_late, lower_is_better, may_see, numbers, owner_of, register_entries,
    relief_tally)
from services.exchange.domain import audience_of  # noqa: F401 - the domain's, read from here too
from services.exchange.projections import (
    figure_reports, indicator_marks, indicator_periods, indicator_ranking, indicator_reports,
    indicator_values, record_tags, records, subs, unit_registers,
)
from services.exchange.federation import PUBLISHER_CHECKPOINT, inbox, outbox
from shared.events import iso_to_us
from shared.store import checkpoints, events
from shared.unittree import unit_directory, unit_of


def record_row(conn, rid: str) -> dict | None:
    row = conn.execute(select(records).where(records.c.record_id == rid)).mappings().first()
    return dict(row) if row else None


def sub_row(conn, sid: str) -> dict | None:
    row = conn.execute(select(subs).where(subs.c.sub_id == sid)).mappings().first()
    return dict(row) if row else None


def _record_out(row: dict, full: bool = False) -> dict:
    out = {k: row[k] for k in ("record_id", "kind", "owner", "unit_id", "unit_name", "title",
                               "summary", "sharing", "status", "first_published_at",
                               "updated_at")}
    out["recipients"] = row["recipients"]
    out["tags"] = row["tags"]
    out["cursor"] = row["updated_us"]
    if full:
        out["content"] = row["content"]
        out["published"] = bool(row["published"])
    return out


def shared_feed(conn, kind=None, origin=None, tag=None, before=None, limit=50) -> dict:
    """Everything this node can see, newest first. ``before`` is the ``cursor`` of the
    last item of the previous page."""
    q = select(records).where(records.c.published.is_(True))
    if kind:
        q = q.where(records.c.kind == kind)
    if origin:
        q = q.where(records.c.owner == origin)
    if tag:
        q = q.where(records.c.record_id.in_(
            select(record_tags.c.record_id).where(record_tags.c.tag == tag)))
    if before is not None:
        q = q.where(records.c.updated_us < before)
    rows = conn.execute(q.order_by(desc(records.c.updated_us), records.c.record_id)
                        .limit(limit)).mappings().all()
    items = [_record_out(dict(r)) for r in rows]
    return {"items": items, "next_before": items[-1]["cursor"] if len(items) == limit else None}


def own_unpublished(conn, owner: str, kind=None, limit=100) -> dict:
    """The owner's records that are not published (drafts, withdrawn), newest first."""
    q = select(records).where(records.c.published.is_(False), records.c.owner == owner)
    if kind:
        q = q.where(records.c.kind == kind)
    rows = conn.execute(q.order_by(desc(records.c.updated_us), records.c.record_id)
                        .limit(limit)).mappings().all()
    return {"items": [_record_out(dict(r)) for r in rows]}


def federation_status(conn) -> dict:
    """The outbox (its head, how far the publisher got, what is pending) and, per origin,
    what this node applied and rejected (the federation tables: ``federation.py``)."""
    head = conn.execute(select(func.max(outbox.c.origin_seq))).scalar() or 0
    published = conn.execute(select(checkpoints.c.position).where(
        checkpoints.c.name == PUBLISHER_CHECKPOINT)).scalar() or 0
    origins = [{k: v for k, v in dict(r).items() if k != "updated_at_us"}
               for r in conn.execute(select(inbox).order_by(inbox.c.origin)).mappings()]
    return {"outbox": {"head": head, "published": published, "pending": head - published},
            "inbox": origins}


def record_detail(conn, rid: str, city_id: str | None) -> dict | None:
    row = record_row(conn, rid)
    if row is None:
        return None
    out = _record_out(row, full=True)
    rows = conn.execute(select(subs).where(subs.c.record_id == rid)
                        .order_by(subs.c.created_at, subs.c.sub_id)).mappings().all()
    grouped: dict[str, list] = {}
    for r in rows:
        # defence in depth: a sub-record from a node that cannot see the record (it
        # arrived before the record did, so it could not be checked on receipt)
        if not may_see(row, r["owner"], city_id):
            continue
        item = {"id": r["sub_id"], "owner": r["owner"], "unit_id": r["unit_id"],
                "unit_name": r["unit_name"], "status": r["status"],
                "created_at": r["created_at"], **r["content"]}
        grouped.setdefault(r["sub_kind"], []).append(item)
    out["sub_records"] = grouped
    if row["kind"] == "activity":
        signups = [s for s in grouped.get("signup", []) if s["status"] == "active"]
        out["participation"] = {
            "units_signed_up": len(signups),
            "headcount": sum(s["headcount"] for s in signups),
            "nodes_attended": sorted({a["owner"] for a in grouped.get("attendance", [])}),
            "attendees": sum(a["attendees"] for a in grouped.get("attendance", [])),
        }
    return out


def record_history(conn, rid: str) -> list[dict]:
    """Every event of the record and of everything added to it, whichever node recorded
    it, in the order they happened (then in this node's log order). Read straight from
    the log: the record's stream, and the streams of its sub-records."""
    row = record_row(conn, rid)
    if row is None:
        return []
    streams = [ROOTS[row["kind"]].stream_id_for(rid)]
    for sub_id, sub_kind in conn.execute(select(subs.c.sub_id, subs.c.sub_kind)
                                         .where(subs.c.record_id == rid)):
        streams.append(SUBS[sub_kind].stream_id_for(sub_id))
    out = []
    for i in range(0, len(streams), 500):
        for r in conn.execute(select(events.c.position, events.c.stream_id, events.c.event_id,
                                     events.c.event_type, events.c.payload, events.c.meta)
                              .where(events.c.stream_id.in_(streams[i:i + 500]))):
            meta = json.loads(r.meta)
            occurred = meta.get("occurred_at") or ""
            out.append({"event_type": r.event_type, "node": meta.get("node") or owner_of(rid),
                        "occurred_at": occurred, "stream_id": r.stream_id,
                        "event_id": r.event_id, "payload": json.loads(r.payload),
                        "_order": (iso_to_us(occurred) if occurred else 0, r.position)})
    out.sort(key=lambda e: e["_order"])
    for e in out:
        del e["_order"]
    return out


def district_summary(conn) -> list[dict]:
    """Per node (the city sees every district): records shared, problems open/solved,
    activity participation, contributions to others' records."""
    out: dict[str, dict] = {}

    def node(n):
        return out.setdefault(n, {"node": n, "records_shared": {}, "problems": {
            "open": 0, "solution_accepted": 0, "resolved": 0}, "activities_organised": 0,
            "units_signed_up": 0, "headcount_signed_up": 0, "attendees": 0,
            "activities_attended": 0, "contributions": 0, "proposals": 0, "comments": 0,
            "learned_from": 0, "endorsements": 0})

    for r in conn.execute(select(records.c.owner, records.c.kind, func.count())
                          .where(records.c.published.is_(True))
                          .group_by(records.c.owner, records.c.kind)):
        node(r[0])["records_shared"][r[1]] = r[2]
    for r in conn.execute(select(records.c.owner, records.c.status, func.count())
                          .where(records.c.kind == "problem", records.c.published.is_(True))
                          .group_by(records.c.owner, records.c.status)):
        if r[1] in ("open", "solution_accepted", "resolved"):
            node(r[0])["problems"][r[1]] = r[2]
    for r in conn.execute(select(records.c.owner, func.count())
                          .where(records.c.kind == "activity", records.c.published.is_(True))
                          .group_by(records.c.owner)):
        node(r[0])["activities_organised"] = r[1]
    counters = {"contribution": "contributions", "proposal": "proposals", "comment": "comments",
                "learned": "learned_from", "endorsement": "endorsements"}
    for r in conn.execute(select(subs.c.owner, subs.c.sub_kind, func.count())
                          .group_by(subs.c.owner, subs.c.sub_kind)):
        if r[1] in counters:
            node(r[0])[counters[r[1]]] = r[2]
    for r in conn.execute(select(subs).where(subs.c.sub_kind.in_(("signup", "attendance")))
                          ).mappings():
        n = node(r["owner"])
        content = r["content"]
        if r["sub_kind"] == "signup" and r["status"] == "active":
            n["units_signed_up"] += 1
            n["headcount_signed_up"] += content["headcount"]
        elif r["sub_kind"] == "attendance":
            n["activities_attended"] += 1
            n["attendees"] += content["attendees"]
    return [out[k] for k in sorted(out)]


def compare_indicators(conn, period: str, indicator: str | None = None,
                       source: str | None = None) -> dict:
    """上下互比: every unit's and district's figures for a period, ranked per indicator
    (best first: highest, or lowest for overdue/missing/escalated/risk counts). A row's
    ``provisional`` is True while its month is open for late entries (never ranked)."""
    q = select(indicator_values).where(indicator_values.c.period == period)
    if indicator:
        q = q.where(indicator_values.c.indicator.in_((indicator, *sorted(REPORT_MARKS))))
    if source:
        q = q.where(indicator_values.c.source == source)
    rows = [dict(r) for r in conn.execute(q.order_by(indicator_values.c.node,
                                                     indicator_values.c.unit_id)).mappings()]
    exemplar_units = {r[0] for r in conn.execute(
        select(records.c.unit_id).where(records.c.kind == "exemplar",
                                        records.c.published.is_(True)))}
    districts: dict[str, dict] = {}
    units: dict[tuple, dict] = {}
    for r in rows:
        if r["scope"] == "discipline":
            continue  # 四种形态 counts are not compared unit by unit (discipline_counts_by_node)
        if r["scope"] == "district":
            row = districts.setdefault(r["node"], {"node": r["node"], "values": {},
                                                   "provisional": False})
        else:
            row = units.setdefault((r["node"], r["unit_id"]), {
                "node": r["node"], "unit_id": r["unit_id"], "unit_name": r["unit_name"],
                "exemplar": r["unit_id"] in exemplar_units, "values": {}, "provisional": False})
        if r["indicator"] in REPORT_MARKS:  # a flag on the row (domain.split_marks), not a figure
            row["provisional"] = row["provisional"] or bool(r["value"])
        else:
            row["values"][r["indicator"]] = r["value"]
    names = sorted({r["indicator"] for r in rows} - REPORT_MARKS)
    ranking = {}
    for name in names:
        sign = 1 if lower_is_better(name) else -1
        for rows_, key in ((units.values(), "units"), (districts.values(), "districts")):
            scored = sorted(((r["values"][name], r["node"], r.get("unit_id")) for r in rows_
                             if name in r["values"]), key=lambda t: (sign * t[0], t[1], t[2] or ""))
            ranking.setdefault(name, {"lower_is_better": sign == 1})[key] = [
                {"rank": i + 1, "node": n, "unit_id": uid, "value": v}
                for i, (v, n, uid) in enumerate(scored)]
    return {"period": period, "indicators": names,
            "districts": [districts[k] for k in sorted(districts)],
            "units": [units[k] for k in sorted(units)], "ranking": ranking}


# -- 上下互比 (the ranking read model, projections.IndicatorRanking) ------------------------
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


def comparison_version(conn) -> tuple[str, set]:
    """A token for everything ``city_comparison`` reads: the last report applied
    (``indicator_marks``: figures, unit names, marks, periods) and the units of the
    published exemplars (the drill-down marks them 典型; they come with other events).
    The same token, the same answer for the same parameters. Returns it with those units."""
    mark = conn.execute(select(indicator_marks.c.position)
                        .where(indicator_marks.c.name == "reports")).scalar()
    exemplars = {u for (u,) in conn.execute(
        select(records.c.unit_id).where(records.c.kind == "exemplar",
                                        records.c.published.is_(True))) if u}
    digest = hashlib.sha1("\n".join(sorted(exemplars)).encode()).hexdigest()[:12]
    return "%d-%s" % (mark or 0, digest), exemplars


def city_comparison(conn, period: str | None, indicator: str | None = None,
                    node: str | None = None, source: str | None = None,
                    limit: int = 10, known: str | None = None) -> dict:
    """上下互比 as the city reads it: every district's own figures for a period side by
    side, ranked among the districts; the ``limit`` best units of the city per indicator
    (or of ``indicator`` only); and with ``node``, that district's units with their
    figures and their rank within the district. ``period`` None: the latest published.
    ``indicators`` is every name of the period; ``district_indicators`` and
    ``unit_indicators`` the names each scope published. A district's (or unit's)
    ``provisional`` is True while some of its figures for the period are still open for
    late entries (ranked as they stand, marked 暂定; the final figures replace them).
    ``version`` is ``comparison_version``'s token; ``known`` the one the caller holds an
    answer for: if it is still current, the answer is only ``{version, unchanged: True}``."""
    version, exemplars = comparison_version(conn)
    if known is not None and known == version:
        return {"version": version, "unchanged": True}
    published = periods(conn)
    if period is None:
        period = published[0] if published else None
    answer = {"version": version, "period": period, "periods": published, "indicators": [],
              "lower_is_better": {},
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
        names.update(row["indicators"])
        by_scope.setdefault(row["scope"], set()).update(row["indicators"])
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
        units: dict[str, dict] = {}
        for unit_id, unit_name, figures, _src, marked in u_rows:
            u = units.setdefault(unit_id, {"unit_id": unit_id, "unit_name": unit_name,
                                           "exemplar": unit_id in exemplars, "values": {},
                                           "ranks": {}, "provisional": False})
            u["values"].update(figures)
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


# -- 基层减负 (projections.FigureOrigins) ---------------------------------------------
def month_bounds_us(month: str, tz: str) -> tuple[int, int]:
    """The month in the users' time zone, as [start, end) in epoch microseconds."""
    zone = ZoneInfo(tz)
    y, m = int(month[:4]), int(month[5:7])
    start = datetime.combine(date(y, m, 1), time(0), tzinfo=zone)
    end = datetime.combine(date(y + (m == 12), 1 if m == 12 else m + 1, 1), time(0), tzinfo=zone)
    return iso_to_us(start.isoformat()), iso_to_us(end.isoformat())


def relief_measure(conn, month: str, tz: str, nodes: list[dict], this_node: str) -> dict:
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
        for origin in (content.get("indicator_sources") or {}).values():
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
        event_type = derived_from["event_type"] if derived_from else None
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


# -- the port the commands decide with -------------------------------------------------------
# (application.py's handlers: ``uow.exchange``; the rules they decide with are domain.py's)
def unit_row(conn, unit_id: str | None) -> dict | None:
    """A unit of this node in the mirrored unit tree (None: no unit named, or none such)."""
    return None if unit_id is None else unit_of(conn, unit_directory, unit_id)


def published_figures(conn, node_id: str, unit_id: str, period: str) -> dict:
    """What this node's services published for a unit and period (its IndicatorReports),
    as shared (``domain.numbers``): an exemplar takes these rather than hand-typed copies."""
    iv = indicator_values
    return numbers({r.indicator: r.value for r in conn.execute(
        select(iv.c.indicator, iv.c.value).where(iv.c.node == node_id, iv.c.scope == "unit",
                                                 iv.c.unit_id == unit_id, iv.c.period == period))
        if r.indicator not in REPORT_MARKS})  # 暂定 marks the figures, it is not one


class ExchangeReadPort:
    """``uow.exchange``: the exchange read models as a command's handler needs them,
    inside its unit of work (so it reads what the command has just written, under the
    same lock): a record's or sub-record's row as this node has it, a unit of this
    node, the figures published here - the facts the domain's rules take as arguments.
    An event handler's own unit of work binds it with ``app.bind_ports``."""

    def __init__(self, conn):
        self.conn = conn

    def record(self, rid: str) -> dict | None:
        """The record's row (``owner``, ``kind``, ``published``, ``status``, ``sharing``...)."""
        return record_row(self.conn, rid)

    def sub(self, sid: str) -> dict | None:
        """The sub-record's row (``sub_kind``, ``record_id``, ``parent_id``, ``owner``)."""
        return sub_row(self.conn, sid)

    def unit(self, unit_id: str | None) -> dict | None:
        return unit_row(self.conn, unit_id)

    def published_figures(self, node_id: str, unit_id: str, period: str) -> dict:
        return published_figures(self.conn, node_id, unit_id, period)

    def event_recorded(self, event_id: str) -> bool:
        """Whether this node's log holds the event (e.g. what another service's event was
        caused by)."""
        return self.conn.execute(select(events.c.position).where(events.c.event_id == event_id)).first() \
            is not None

    def register_units(self) -> list[dict]:
        """This node's unit register as it is shared (no people)."""
        return register_units(self.conn)

    def own_exemplars(self, owner: str, unit_id: str) -> list[tuple[str, dict]]:
        """(exemplar id, content) of ``owner``'s exemplars of a unit."""
        return own_exemplars(self.conn, owner, unit_id)
# -- end of the port the commands decide with --


# -- 督办 (the escalated cases and the city's follow-ups) ----------------------------------------
def _case_out(row: dict, follow_ups: list[dict], today: str) -> dict:
    content = dict(row["content"])
    status = content.get("status") or row["status"]
    return {
        "case_id": row["record_id"], "origin": row["owner"], "rect_id": content.get("rect_id"),
        "unit_id": content.get("unit_id"), "unit_name": content.get("unit_name"),
        "title": row["title"], "description": content.get("description"),
        "severity": content.get("severity"), "source": content.get("source"),
        "category": content.get("category"), "requirement": content.get("requirement"),
        "found_on": content.get("found_on"), "deadline": content.get("deadline"),
        "referred_on": content.get("referred_on"), "closed_on": content.get("closed_on"),
        "status": status, "status_label": ESCALATION_STATUSES.label(status),
        "subject": content.get("subject") or "rectification",
        "days_late": escalated_days_late(content["deadline"], status, content.get("closed_on"),
                                         today),
        "trail": content.get("trail") or [],
        "follow_ups": [dict(f, action_label=FOLLOW_UP_ACTIONS.label(f["action"]))
                       for f in follow_ups],
        "awaiting_follow_up": awaiting_follow_up(status, follow_ups),
        "published": bool(row["published"]),
    }


def oversight_cases(conn, origin: str | None, status: str | None, limit: int,
                    today: str) -> dict:
    """The escalated cases here (``origin``: one node's), newest first, each with its trail
    and the city's follow-ups; ``status`` open | closed | None (all)."""
    q = select(records).where(records.c.kind == "escalation", records.c.published.is_(True))
    if origin:
        q = q.where(records.c.owner == origin)
    rows = [dict(r) for r in conn.execute(q.order_by(records.c.updated_us.desc(),
                                                     records.c.record_id)).mappings()]
    ids = [r["record_id"] for r in rows]
    follow: dict[str, list] = {}
    for i in range(0, len(ids), 500):
        for r in conn.execute(select(subs).where(subs.c.record_id.in_(ids[i:i + 500]),
                                                 subs.c.sub_kind == "followup")
                              .order_by(subs.c.created_at, subs.c.sub_id)).mappings():
            follow.setdefault(r["record_id"], []).append(
                {"followup_id": r["sub_id"], "owner": r["owner"], "unit_name": r["unit_name"],
                 **{k: v for k, v in r["content"].items()
                    if k in ("action", "note", "followed_on", "respond_by")}})
    cases = [_case_out(r, follow.get(r["record_id"], []), today) for r in rows]
    if status == "open":
        cases = [c for c in cases if c["status"] != "closed"]
    elif status == "closed":
        cases = [c for c in cases if c["status"] == "closed"]
    by_origin: dict[str, int] = {}
    for c in cases:
        by_origin[c["origin"]] = by_origin.get(c["origin"], 0) + 1
    return {"total": len(cases), "awaiting_follow_up": sum(c["awaiting_follow_up"] for c in cases),
            "by_origin": by_origin, "items": cases[:limit], "today": today}


# -- the unit registers, 四种形态 counts, exemplars ---------------------------------------------
def register_units(conn) -> list[dict]:
    """This node's unit register as it is shared (``domain.register_entries``: no people),
    from the mirrored unit tree."""
    u = unit_directory.c
    out = []
    for r in conn.execute(select(u.unit_id, u.name, u.kind, u.level, u.parent_id, u.active,
                                 u.demonstration_site, u.pilot_flags).order_by(u.path)).mappings():
        out.append(dict(r, active=bool(r["active"]), demonstration_site=bool(r["demonstration_site"]),
                        pilot_flags=r["pilot_flags"] or []))
    return register_entries(out)


def district_registers(conn, origin: str | None) -> dict:
    """Every unit register here (``origin``: one node's), with that node's 责任书 coverage
    per period as its units service published it."""
    q = select(unit_registers)
    if origin:
        q = q.where(unit_registers.c.node == origin)
    out = []
    for r in conn.execute(q.order_by(unit_registers.c.node)).mappings():
        coverage: dict[str, dict] = {}
        for v in conn.execute(select(indicator_values.c.period, indicator_values.c.indicator,
                                     indicator_values.c.value)
                              .where(indicator_values.c.node == r["node"],
                                     indicator_values.c.source == "units")):
            coverage.setdefault(v.period, {})[v.indicator] = v.value
        out.append({"node": r["node"], "units": r["units"],
                    "counts": r["counts"], "updated_at": r["updated_at"],
                    "letter_coverage": [dict(period=p, **vals) for p, vals in sorted(coverage.items())]})
    return {"registers": out}


def discipline_counts_by_node(conn, period: str | None) -> dict:
    """四种形态 counts (forms 1-4 and total) per node and quarter (``period``: one quarter)."""
    q = select(indicator_values).where(indicator_values.c.scope == "discipline")
    if period:
        q = q.where(indicator_values.c.period == period)
    table: dict[tuple, dict] = {}
    for r in conn.execute(q).mappings():
        row = table.setdefault((r["node"], r["period"]), {"node": r["node"], "period": r["period"]})
        row[r["indicator"]] = int(r["value"])
    return {"items": [table[k] for k in sorted(table)]}


def own_exemplars(conn, owner: str, unit_id: str) -> list[tuple[str, dict]]:
    """(exemplar id, content) of ``owner``'s exemplars of a unit."""
    return [(rid, dict(content)) for rid, content in conn.execute(
        select(records.c.record_id, records.c.content)
        .where(records.c.kind == "exemplar", records.c.owner == owner,
               records.c.unit_id == unit_id)).all()]
