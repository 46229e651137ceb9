"""Scale benchmark (issue 13), the part that is built: the city's 上下互比 query over
N districts x 300 units on PostgreSQL, and how it grows with 2, 5 and 11 districts.

* ``scale_city_compare_p99_ms`` - ``compare_indicators`` (the city's exchange read model,
  every unit's and district's published supervision figures for one period, ranked per
  indicator) with 11 districts x 300 units x the 13 unit figures + the 13 district
  figures, p99 of 30 calls, vs the floor of that work measured interleaved in the same
  run: the driver's fetch of the same rows in the same order (nothing ranked).
* ``scale_city_compare_growth`` - the same p99 at 2, 5 and 11 districts: the value is
  (p99 at 11 / p99 at 2) / (11 / 2), i.e. growth relative to linear, judged against 1.0
  (≤ 1.0: it grows no faster than the number of districts); the raw fetch's own growth
  in the same run is kept beside (``floor_growth``).

The rows are written straight into the read model (seeded, deterministic: the same seed
gives the same figures), as the city's exchange would hold them after the districts
published a period: the query reads only this table and the exemplar records, so how
they arrived does not change what is measured. Only PostgreSQL runs; no nameko service
and no broker are needed for these figures.

Not built yet (see docs/scaling.md): the 1 + 11 demo network, the year's scenario
generator, and the propagation, catch-up and rebuild figures of issue 13.
"""
from __future__ import annotations

import random

from bench.common import AT_MOST, Timer, interleaved, judged, percentile, scratch_database
from shared.db import drop_database, make_engine

FIGURES = ("scale_city_compare_p99_ms", "scale_city_compare_growth")

UNITS_PER_DISTRICT = 300
PERIOD = "2026-Q3"
CALLS = 30
GROWTH = (2, 5, 11)


def seed(engine, districts: int, seed_value: int = 13) -> int:
    """Indicator rows of ``districts`` districts for PERIOD; returns how many."""
    from services.exchange.projections import indicator_values
    from services.supervision.domain import DISTRICT_FIGURES, UNIT_FIGURES
    rng = random.Random(seed_value)
    rows = []
    for d in range(1, districts + 1):
        node = "district-%02d" % d
        for name in DISTRICT_FIGURES:
            rows.append({"report_id": "%s:district:%s" % (node, PERIOD), "indicator": name,
                         "node": node, "source": "supervision", "scope": "district",
                         "unit_id": None, "unit_name": None, "period": PERIOD,
                         "value": round(rng.uniform(0, 100), 2)})
        for u in range(UNITS_PER_DISTRICT):
            unit_id = "%s-u%03d" % (node, u)
            for name in UNIT_FIGURES:
                rows.append({"report_id": "%s:%s:%s" % (node, unit_id, PERIOD), "indicator": name,
                             "node": node, "source": "supervision", "scope": "unit",
                             "unit_id": unit_id, "unit_name": "单位%03d" % u, "period": PERIOD,
                             "value": float(rng.randint(0, 40))})
    with engine.begin() as c:
        c.execute(indicator_values.delete())
        for i in range(0, len(rows), 5000):
            c.execute(indicator_values.insert(), rows[i:i + 5000])
        c.exec_driver_sql("ANALYZE indicator_values")
    return len(rows)


def measure(engine, calls: int = CALLS) -> tuple[list[float], list[float]]:
    """(compare_indicators ms, raw fetch ms), interleaved call by call."""
    from services.exchange.projections import compare_indicators
    from shared.db import readonly
    ours, floor = [], []
    raw_sql = ("SELECT * FROM indicator_values WHERE period = %(p)s ORDER BY node, unit_id")

    def query(_):
        with readonly(engine.connect()) as c:
            with Timer() as t:
                answer = compare_indicators(c, PERIOD)
        assert answer["units"], "no units in the answer"
        ours.append(t.seconds * 1000)
        return t.seconds

    def raw(_):
        with engine.connect() as c:
            with Timer() as t:
                cur = c.connection.driver_connection.cursor()
                cur.execute(raw_sql, {"p": PERIOD})
                cur.fetchall()
        floor.append(t.seconds * 1000)
        return t.seconds
    query(0), raw(0)  # warm the pool and the caches
    ours.clear(), floor.clear()
    interleaved(calls, raw, query)
    return ours, floor


def run(var_dir: str = "var", only=None) -> dict:
    from services.exchange.projections import metadata
    url = scratch_database("scale")
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        p99, p50, p99_floor, rows_at = {}, {}, {}, {}
        for n in GROWTH:
            rows_at[n] = seed(engine, n)
            ours, floor = measure(engine)
            p99[n], p99_floor[n] = percentile(ours, 99), percentile(floor, 99)
            p50[n] = percentile(ours, 50)
        top = GROWTH[-1]
        figures = {"scale_city_compare_p99_ms": judged(
            p99[top], "ms", p99_floor[top], "raw fetch of the same rows p99", 10.0, AT_MOST,
            quiet_machine_target="≤ 100 ms", districts=top, units=top * UNITS_PER_DISTRICT,
            rows=rows_at[top], calls=CALLS, p50_ms=round(p50[top], 2),
            floor_p50_ms=round(percentile(floor, 50), 2))}
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
