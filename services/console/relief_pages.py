"""基层减负 in the console: how many figures each node (at the city: each district) sent this
month, how many were derived from what the platform recorded and how many were typed by
hand, and which districts sent theirs with no manual entry at all (exchange's
``relief_measure``). Read-only, for every role; districts named in Chinese
(``QINGLIAN_NODE_NAMES``), figure sources by their labels."""
from __future__ import annotations

from datetime import date

from services.console.pages import _today
from services.console.web import page
from services.exchange.domain import INDICATOR_SCOPES, INDICATOR_SOURCES
from shared import config


def _months(today: date, n: int = 12) -> list[tuple[str, str]]:
    out, y, m = [], today.year, today.month
    for _ in range(n):
        out.append(("%04d-%02d" % (y, m), "%d年%d月" % (y, m)))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out


@page("/relief")
def relief(web):
    months = _months(_today(web))
    month = web.arg("month")
    month = month if month in dict(months) else months[0][0]
    answer = web.query("exchange", "relief_measure", {"month": month})
    names = config.node_names(web.dep.container.config)
    for row in answer["nodes"]:
        row["name"] = names.get(row["node_id"]) or "未命名节点"
        row["origins"] = [dict(o, service_name=INDICATOR_SOURCES.labels.get(o["service"], "其他"),
                               scope_name=INDICATOR_SCOPES.labels.get(o["scope"], "其他"))
                          for o in answer["origins"].get(row["node_id"], [])]
    return web.render("relief_measure.html", answer=answer, months=months, month=month,
                      month_label=dict(months)[month])
