"""The city's views (市级): 上下互比 - the districts side by side on the figures their own
nodes published (supervision's and education's indicators, shared up to the city as
``IndicatorReport`` records), a bar chart of one indicator across the districts, a radar
of each district's profile, the table beside them, a period picker, a drill-down from a
district to its units, and the same tables as an Excel file.

Nobody types a number here: every figure is read from the exchange service's ranking
read model (``city_comparison``, services/exchange/projections.py IndicatorRanking), kept as the districts'
figures arrive. Districts are named in Chinese (``QINGLIAN_NODE_NAMES``), indicators by
the catalogue (``exchange.COMPARED_INDICATORS``). The menu entry is shown on city nodes.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup

from services.console.web import page
from services.exchange.domain import COMPARED_INDICATORS, is_rate
from shared import config
from shared.errors import NotFound


def indicator_name(code: str) -> str:
    return COMPARED_INDICATORS.labels.get(code) or "其他指标"


def shown(code: str, value) -> str:
    """A figure as the table prints it: shares as percentages, counts as whole numbers."""
    if value is None:
        return "—"
    if is_rate(code):
        return "%.1f%%" % (100 * value)
    return ("%d" % value) if float(value).is_integer() else ("%.2f" % value)


def period_name(period: str) -> str:
    from services.supervision.exports import period_label
    try:
        return period_label(period)
    except (ValueError, IndexError):
        return period


DEFAULT_INDICATOR = "closure_rate"  # 整改销号率: published for units and districts alike


def _comparison(web, known: str | None = None) -> dict:
    """The exchange's answer for the page's period, indicator and district; given the
    ``known`` version of an answer already shown, possibly only ``{unchanged: True}``."""
    # the best units are listed for the chosen indicator only (one indexed read)
    params = {"limit": 10, "indicator": web.arg("indicator") or DEFAULT_INDICATOR}
    for key in ("period", "node"):
        if web.arg(key):
            params[key] = web.arg(key)
    if known:
        params["known"] = known
    answer = web.query("exchange", "city_comparison", params)
    if answer.get("unchanged"):
        return answer
    names = config.node_names(web.dep.container.config)
    answer["district_name"] = lambda node: names.get(node) or "未命名节点"
    if answer.get("node") and not any(d["node"] == answer["node"] for d in answer["districts"]):
        raise NotFound("该区本期没有发布指标")
    return answer


def _chosen_indicator(web, answer) -> str | None:
    """The indicator the bar shows: the one picked (or the default), else the districts'
    first figure."""
    chosen = web.arg("indicator") or DEFAULT_INDICATOR
    names = answer["district_indicators"] or answer["indicators"]
    return chosen if chosen in answer["indicators"] else (names[0] if names else None)


RANK = ' <small class="muted">第%d</small>'


def _cells(rows, names) -> list[dict]:
    """Each row's cells as one piece of HTML, worked out here rather than cell by cell
    in the template (a district's 300 units x 13 figures were 7,800 escapes): a figure
    as ``shown`` prints it and a rank are digits, signs and "—", nothing to escape."""
    out = []
    for row in rows:
        values, ranks = row["values"], row["ranks"]
        cells = []
        for n in names:
            rank = ranks.get(n)
            cells.append("<td>%s%s</td>" % (shown(n, values.get(n)), RANK % rank if rank else ""))
        out.append(dict(row, cells=Markup("".join(cells))))
    return out


# rendered 上下互比 contents a console keeps (each a district's 300 units is ~200 KB)
KEPT_PAGES = 48


@page("/city/compare")
def city_compare(web):
    """The page's content is the same for every user and changes only when the figures
    do: it is rendered once per version of the exchange's answer and kept
    (``web.dep.compare_pages``); each view asks the exchange whether that version is
    still current (``known``) - a reply of a few bytes, not the district's 300 units -
    and renders only the frame around it (the user's menu). Kept by version, not for a
    time: a district's newly published figures show on the next view."""
    key = (web.arg("period"), web.arg("indicator"), web.arg("node"))
    kept = web.dep.compare_pages
    held = kept.get(key)
    answer = _comparison(web, known=held[0] if held else None)
    if answer.get("unchanged"):
        body = held[1]
        if key in kept:
            kept.move_to_end(key)
    else:
        body = _content(web, answer)
        kept[key] = (answer["version"], body)
        kept.move_to_end(key)
        while len(kept) > KEPT_PAGES:
            kept.popitem(last=False)
    return web.render("city_compare.html", body=body)


def _content(web, answer) -> str:
    indicator = _chosen_indicator(web, answer)
    name_of = answer["district_name"]
    districts = answer["districts"]
    chart = None
    if indicator:
        # the bar: one indicator across the districts; the radar: each district's figures
        # as a share of the best district's on every indicator (counts and rates alike)
        names = answer["district_indicators"]
        peaks = {n: max((d["values"].get(n) or 0) for d in districts) or 1 for n in names}
        chart = {
            "indicator": indicator_name(indicator),
            "districts": [name_of(d["node"]) for d in districts],
            "values": [d["values"].get(indicator) for d in districts],
            "percent": is_rate(indicator),
            "radar_axes": [{"name": indicator_name(n), "max": 1} for n in names],
            "radar": [{"name": name_of(d["node"]),
                       "value": [round((d["values"].get(n) or 0) / peaks[n], 4) for n in names]}
                      for d in districts],
        }
    answer["districts"] = _cells(answer["districts"], answer["district_indicators"])
    answer["units"] = _cells(answer["units"], answer["unit_indicators"])
    return web.fragment("city_compare_body.html", answer=answer, indicator=indicator, chart=chart,
                        indicator_name=indicator_name, shown=shown, period_name=period_name,
                        name_of=name_of, lower_is_better=answer["lower_is_better"])


@page("/city/compare.xlsx")
def city_compare_xlsx(web):
    """The page's tables as an Excel file: the districts side by side (with their rank
    among the districts), and with a district chosen, its units (rank within it)."""
    from shared.exports import Report, download
    answer = _comparison(web)
    if not answer["period"]:
        raise NotFound("还没有区县发布指标")
    name_of = answer["district_name"]

    def columns(first, names):
        cols = list(first)
        for n in names:
            cols.append({"key": n, "title": indicator_name(n),
                         "kind": "percent" if is_rate(n) else "number"})
            cols.append({"key": "rank:" + n, "title": "%s排名" % indicator_name(n), "kind": "integer"})
        return cols
    names = answer["district_indicators"]
    tables = [{"title": "各区对比", "columns": columns([
        {"key": "district", "title": "区县"}, {"key": "units", "title": "发布指标的单位", "kind": "integer"}],
        names),
        "rows": [dict({"district": name_of(d["node"]), "units": d["units"]},
                      **{n: d["values"].get(n) for n in names},
                      **{"rank:" + n: d["ranks"].get(n) for n in names})
                 for d in answer["districts"]]}]
    if answer.get("node"):
        names = answer["unit_indicators"]
        tables.append({"title": "%s各单位" % name_of(answer["node"]),
                       "columns": columns([{"key": "unit", "title": "单位"}], names),
                       "rows": [dict({"unit": u["unit_name"] or "未命名单位"},
                                     **{n: u["values"].get(n) for n in names},
                                     **{"rank:" + n: u["ranks"].get(n) for n in names})
                                for u in answer["units"]]})
    exported = datetime.now(ZoneInfo(web.settings.timezone))
    report = Report(title="上下互比", unit=name_of(answer["node"]) if answer.get("node") else "全市各区",
                    period=period_name(answer["period"]), node=name_of(web.dep.node_id),
                    exported_at=exported, tables=tables)
    return download(report, "xlsx", "上下互比_%s" % period_name(answer["period"]))
