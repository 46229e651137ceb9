"""基层减负's query on the exchange ``app`` (imported at the end of ``application.py``);
the read model and the counting are in ``relief.py``."""
from __future__ import annotations

from services.exchange import schemas as s
from services.exchange.application import _day, app, fed
from services.exchange.queries import relief_measure
from shared import config
from shared.auth import ANY_ROLE


@app.query("relief_measure", s.ReliefMeasure, roles=ANY_ROLE, runtime=True)
def relief_measure_query(conn, d, actor, rt):
    """基层减负: per node, the figures this node received from it in a month (this month by
    default, users' time zone, by when the origin sent them) - derived from published
    records (上下互比 reports, each naming the event it came from; exemplar figures taken
    from published data) or typed by hand (exemplar figures marked manual) - and whether
    it sent them without any manual entry."""
    f = fed(rt)
    nodes = [{"node_id": r.node_id, "level": r.level} for r in f.registry.all()]
    return relief_measure(conn, d["month"] or _day(rt.clock())[:7], config.timezone_name(),
                          nodes, f.node_id)
