"""The files supervision hands out: a unit's three lists (问题清单 / 责任清单 / 整改清单) and a
round's 研判报告 (ranking + 研判意见), described as ``shared.exports`` reports and rendered
there to XLSX, PDF or CSV. The data comes from the same queries RPC callers get.
"""
from __future__ import annotations

from datetime import datetime

from shared.exports import Report, Table, zh_date, zh_datetime

LISTS = ("problems", "responsibilities", "rectifications")


def period_label(period: str) -> str:
    """A period (2024 / 2024-H1 / 2024-Q1 / 2024-03) as a report's title says it:
    2024年度 / 2024年上半年 / 2024年第一季度 / 2024年3月."""
    year = period[:4]
    if len(period) == 4:
        return "%s年度" % year
    if period[5] == "Q":
        return "%s年第%s季度" % (year, "一二三四"[int(period[6]) - 1])
    if period[5] == "H":
        return "%s年%s半年" % (year, "上下"[int(period[6]) - 1])
    return "%s年%d月" % (year, int(period[5:7]))


def _as_of_label(as_of: str | None, exported_at: datetime) -> str:
    """The moment a list stands at: the ``as_of`` asked for, else the export time."""
    if not as_of:
        return "截至%s" % zh_date(exported_at)
    if len(as_of) == 10:
        return "截至%s" % zh_date(datetime.fromisoformat(as_of))
    moment = datetime.fromisoformat(as_of.replace("Z", "+00:00")).astimezone(exported_at.tzinfo)
    return "截至%s" % zh_datetime(moment)


def unit_lists_report(data: dict, which: list[str], node: str,
                      exported_at: datetime) -> tuple[Report, str]:
    """``data``: the ``unit_lists`` query's answer; ``which``: the lists wanted, in order.
    Returns the report and the file's name without extension."""
    tables = [data[k] for k in which]
    title = "、".join(t["title"] for t in tables)
    unit = data["unit_name"] + ("（含下级单位）" if data.get("include_subtree") else "")
    report = Report(title=title, unit=unit, period=_as_of_label(data.get("as_of"), exported_at),
                    node=node, exported_at=exported_at, tables=tables)
    return report, "%s_%s" % (data["unit_name"], title)


def ranking_table(data: dict) -> Table:
    """A round's ranking as a table (排名 / 单位 / 总分 / one column per dimension)."""
    dims = data["round"]["dimensions"]
    columns = [{"key": "rank", "title": "排名", "kind": "integer"},
               {"key": "unit_name", "title": "单位"},
               {"key": "total", "title": "总分", "kind": "number"}]
    columns += [{"key": "dim:" + d["code"], "title": "%s(%g)" % (d["name"], d["weight"]),
                 "kind": "number"} for d in dims]
    columns.append({"key": "missing", "title": "缺少数据的指标", "kind": "longtext"})
    rows = []
    for e in data["ranking"]:
        row = {"rank": e["rank"], "unit_name": e.get("unit_name") or e["unit_id"],
               "total": e["total"], "missing": "、".join(e["missing"])}
        for d in dims:
            row["dim:" + d["code"]] = e["dimensions"].get(d["code"])
        rows.append(row)
    return Table.of({"title": "排名", "columns": columns, "rows": rows})


def assessment_report(data: dict, node: str, exported_at: datetime) -> tuple[Report, str]:
    """``data``: the ``assessment_report`` query's answer: the ranking, then 研判意见."""
    rnd = data["round"]
    opinion = Table.of({"title": "研判意见",
                        "columns": [{"key": "line", "title": "内容", "kind": "longtext",
                                     "width": 90}],
                        "rows": [{"line": line} for line in data["text"]]})
    ranking = ranking_table(data)
    for table in (ranking, opinion):
        table.caption = "%s %s" % (rnd["title"], table.title)
    period = period_label(rnd["period"])
    if data.get("as_of"):
        period += "，" + _as_of_label(data["as_of"], exported_at)
    report = Report(title="%s 研判报告" % rnd["title"],
                    unit=(data.get("unit") or {}).get("name") or node, period=period,
                    node=node, exported_at=exported_at, tables=[ranking, opinion])
    return report, "%s_研判报告" % rnd["title"]
