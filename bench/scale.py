"""Scale benchmark (issue 13), the part that is built: the city's 上下互比 over
N districts x 300 units on PostgreSQL, and how it grows with 2, 5 and 11 districts.

* ``scale_city_compare_p99_ms`` - ``city_comparison`` (projections.IndicatorRanking: the
  read model kept as the districts' figures arrive) as the console's 上下互比 page calls
  it: the districts side by side (every indicator, ranked among the districts, with the
  city's best ten units of each) alternated with a drill-down into each district in turn
  (its 300 units, ranked within it), with 11 districts x 300 units x the 13 unit figures
  + the 13 district figures; p99 of 30 calls, vs the floor of that work measured
  interleaved in the same run: the driver's raw fetch of the rows each answer is made of,
  by the same statements (nothing ranked, no dict built). ``whole_answer_p50_ms`` is the
  earlier whole answer beside (``compare_indicators``: every unit's figures and every
  indicator's full ranking built in Python on each call; 3 calls).
* ``scale_city_compare_growth`` - the same p99 at 2, 5 and 11 districts: the value is
  (p99 at 11 / p99 at 2) / (11 / 2), i.e. growth relative to linear, judged against 1.0
  (≤ 1.0: it grows no faster than the number of districts); the raw fetch's own growth
  in the same run is kept beside (``floor_growth``).

The districts' ``IndicatorReport.Recorded`` events (seeded, deterministic: the same seed
gives the same figures) are applied by the exchange's own projection handlers, as the
city's exchange applies them when they arrive, and flushed in bulk; the query reads only
these tables and the exemplar records, so how the events arrived does not change what is
measured. Only PostgreSQL runs; no nameko service and no broker are needed here.

``scale_propagation_p99_s`` / ``scale_propagation_growth``, ``scale_catchup_events_per_s``
and ``scale_rebuild_events_per_s`` are measured in bench/scale_propagation.py,
bench/scale_catchup.py and bench/scale_rebuild.py.
"""
from __future__ import annotations

import random

from bench.common import AT_MOST, Timer, interleaved, judged, percentile, scratch_database
from shared.db import drop_database, make_engine

FIGURES = ("scale_city_compare_p99_ms", "scale_city_compare_growth",
           # measured in their own modules (bench/scale_catchup.py, bench/scale_rebuild.py)
           "scale_catchup_events_per_s", "scale_rebuild_events_per_s",
           # bench/scale_propagation.py
           "scale_propagation_p99_s", "scale_propagation_growth")

UNITS_PER_DISTRICT = 300
PERIOD = "2026-Q3"
CALLS = 30
GROWTH = (2, 5, 11)


def reports(districts: int, seed_value: int = 13) -> list:
    """The period's ``IndicatorReport.Recorded`` events of ``districts`` districts, as
    the city's exchange receives them (one per unit, one per district), deterministic."""
    from services.exchange.domain import derived_id
    from services.supervision.domain import DISTRICT_FIGURES, UNIT_FIGURES
    from shared.events import StoredEvent
    rng = random.Random(seed_value)
    out = []

    def report(node, scope, unit_id, unit_name, figures):
        rid = derived_id(node, "indicators", "supervision", scope, unit_id or "", PERIOD)
        payload = {"report_id": rid, "sharing": "city", "recipients": [], "source": "supervision",
                   "scope": scope, "unit_id": unit_id, "unit_name": unit_name, "period": PERIOD,
                   "indicators": figures}
        out.append(StoredEvent(len(out) + 1, "e%07d" % len(out), "IndicatorReport:%s" % rid,
                               "IndicatorReport", 1, "IndicatorReport.Recorded", 1, payload,
                               {"node": node}, 0))
    for d in range(1, districts + 1):
        node = "district-%02d" % d
        report(node, "district", None, None,
               {name: round(rng.uniform(0, 100), 2) for name in DISTRICT_FIGURES})
        for u in range(UNITS_PER_DISTRICT):
            report(node, "unit", "%s-u%03d" % (node, u), "单位%03d" % u,
                   {name: float(rng.randint(0, 40)) for name in UNIT_FIGURES})
    return out


def seed(engine, districts: int, seed_value: int = 13) -> int:
    """The city's read models after ``districts`` districts published PERIOD: the
    reports applied by the exchange's own projection handlers (``indicator_values`` and
    the ranking read model, services/exchange/projections.py), replacing what was there.
    Returns how many indicator rows the period holds."""
    from sqlalchemy import func, select

    from services.exchange.projections import RANKING, Indicators, indicator_values
    from shared.projections import BufferedWriter
    projections = [Indicators(), RANKING]
    w = BufferedWriter()
    for ev in reports(districts, seed_value):
        for p in projections:
            p.handle(w, ev)
    tables = [t for p in projections for t in p.tables]
    with engine.begin() as c:
        for t in tables:
            c.execute(t.delete())
        w.flush(c, tables)
        for t in tables:
            c.exec_driver_sql("ANALYZE %s" % t.name)
        return c.execute(select(func.count()).select_from(indicator_values)).scalar()


def page_calls(districts: int) -> list[dict]:
    """The console's 上下互比 page as the city's people use it: the districts side by side
    (every indicator, the best units of each), then a drill-down into one district, in
    turn for each district."""
    calls = []
    for d in range(1, districts + 1):
        calls.append({"period": PERIOD})
        calls.append({"period": PERIOD, "node": "district-%02d" % d})
    return calls


def _floor_statements(call: dict, names: list[str]) -> list[tuple[str, dict]]:
    """The SQL the answer's rows come from, to fetch raw (nothing ranked or built)."""
    p = {"p": PERIOD, "n": call.get("node")}
    out = [("SELECT period FROM indicator_periods", {}),
           ("SELECT indicator, node, value FROM indicator_ranking WHERE period = %(p)s AND "
            "scope = 'district' ORDER BY indicator, sort_value, node", p),
           ("SELECT * FROM indicator_periods WHERE period = %(p)s", p)]
    for name in names:
        out.append(("SELECT node, unit_id, value FROM indicator_ranking WHERE period = %(p)s AND "
                    "indicator = %(i)s AND scope = 'unit' ORDER BY sort_value, node, unit_id "
                    "LIMIT 10", dict(p, i=name)))
    if call.get("node"):
        out.append(("SELECT unit_id, unit_name, figures FROM indicator_reports WHERE period = %(p)s "
                    "AND node = %(n)s AND scope = 'unit'", p))
        out.append(("SELECT indicator, unit_id, value FROM indicator_ranking WHERE period = %(p)s "
                    "AND scope = 'unit' AND node = %(n)s ORDER BY indicator, sort_value, unit_id", p))
    return out


def measure(engine, calls: int = CALLS, districts: int | None = None) -> tuple[list[float], list[float]]:
    """(city_comparison ms, raw fetch ms) over the page's calls, interleaved call by call:
    the floor fetches, through the driver's cursor, the rows each answer is made of."""
    from services.exchange.queries import city_comparison
    from shared.db import readonly
    with engine.connect() as c:
        n = districts or c.exec_driver_sql(
            "SELECT count(DISTINCT node) FROM indicator_periods").scalar()
    plan = page_calls(n)
    ours, floor = [], []
    names: list[str] = []

    def query(i):
        call = plan[i % len(plan)]
        with readonly(engine.connect()) as c:
            with Timer() as t:
                answer = city_comparison(c, call["period"], node=call.get("node"))
        assert answer["districts"] and (answer["units"] or not call.get("node")), "empty answer"
        names[:] = answer["indicators"]
        ours.append(t.seconds * 1000)
        return t.seconds

    def raw(i):
        statements = _floor_statements(plan[i % len(plan)], names)
        with engine.connect() as c:
            with Timer() as t:
                cur = c.connection.driver_connection.cursor()
                for sql, params in statements:
                    cur.execute(sql, params)
                    cur.fetchall()
        floor.append(t.seconds * 1000)
        return t.seconds
    query(0), query(1), raw(0), raw(1)  # warm the pool and the caches
    ours.clear(), floor.clear()
    interleaved(calls, raw, query)
    return ours, floor


def measure_full(engine, calls: int = 3) -> list[float]:
    """The earlier whole answer (``compare_indicators``: every unit's figures and every
    indicator's complete ranking, built in Python from the period's rows), for beside."""
    from services.exchange.queries import compare_indicators
    from shared.db import readonly
    out = []
    for _ in range(calls):
        with readonly(engine.connect()) as c:
            with Timer() as t:
                compare_indicators(c, PERIOD)
        out.append(t.seconds * 1000)
    return out


def run(var_dir: str = "var", only=None) -> dict:
    from bench.common import wanted
    figures = {}
    if wanted(only, "scale_city_compare_p99_ms", "scale_city_compare_growth"):
        figures.update(run_compare(var_dir, only))
    if wanted(only, "scale_propagation_p99_s", "scale_propagation_growth"):
        from bench import scale_propagation
        figures.update(scale_propagation.run(var_dir, only))
    if wanted(only, "scale_catchup_events_per_s"):
        from bench import scale_catchup
        figures.update(scale_catchup.run(var_dir))
    if wanted(only, "scale_rebuild_events_per_s"):
        from bench import scale_rebuild
        figures.update(scale_rebuild.run(var_dir))
    return figures


def run_compare(var_dir: str = "var", only=None) -> dict:
    from services.exchange.projections import metadata  # the ranking read model's too
    url = scratch_database("scale")
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        p99, p50, p99_floor, p50_floor, rows_at = {}, {}, {}, {}, {}
        for n in GROWTH:
            rows_at[n] = seed(engine, n)
            ours, floor = measure(engine, districts=n)
            p99[n], p99_floor[n] = percentile(ours, 99), percentile(floor, 99)
            p50[n], p50_floor[n] = percentile(ours, 50), percentile(floor, 50)
        top = GROWTH[-1]
        full = measure_full(engine)  # the period of the last (largest) seeding
        figures = {"scale_city_compare_p99_ms": judged(
            p99[top], "ms", p99_floor[top], "raw fetch of the answer's rows p99", 10.0, AT_MOST,
            quiet_machine_target="≤ 100 ms", districts=top, units=top * UNITS_PER_DISTRICT,
            rows=rows_at[top], calls=CALLS, p50_ms=round(p50[top], 2),
            floor_p50_ms=round(p50_floor[top], 2),
            whole_answer_p50_ms=round(percentile(full, 50), 1),
            whole_answer_calls=len(full))}
        # growth relative to linear in the number of districts, for the query and for the
        # raw fetch under it (same run): ≤ 1.0 is no faster than linear
        growth = (p99[top] / p99[GROWTH[0]]) / (top / GROWTH[0]) if p99[GROWTH[0]] else 0.0
        floor_growth = ((p99_floor[top] / p99_floor[GROWTH[0]]) / (top / GROWTH[0])
                        if p99_floor[GROWTH[0]] else None)
        figures["scale_city_compare_growth"] = judged(
            growth, "× linear", 1.0, "linear growth in districts (1.0)", 1.0, AT_MOST,
            quiet_machine_target="≤ 1.0 × linear",
            floor_growth=None if floor_growth is None else round(floor_growth, 3),
            p99_ms={str(n): round(p99[n], 2) for n in GROWTH},
            p50_ms={str(n): round(p50[n], 2) for n in GROWTH},
            floor_p99_ms={str(n): round(p99_floor[n], 2) for n in GROWTH},
            rows={str(n): rows_at[n] for n in GROWTH})
        return {k: v for k, v in figures.items() if only is None or k in only}
    finally:
        engine.dispose()
        drop_database(url)
