"""The scale suite's seeded city (bench/scale.py) on a real PostgreSQL: the same seed
writes the same figures, another seed other ones, and the city's 上下互比 over them
ranks every unit of every district, from indicator_values and from the ranking read model
the page reads. No timing is asserted (speed lives in make bench)."""
from sqlalchemy import select

from bench import scale
from services.exchange.projections import indicator_values, metadata
from services.exchange.queries import city_comparison, compare_indicators
from services.supervision.domain import DISTRICT_FIGURES, UNIT_FIGURES
from shared.db import readonly


def _figures(engine):
    with engine.connect() as c:
        return sorted(tuple(r) for r in c.execute(select(indicator_values)))


def test_seeded_city_is_deterministic_and_compared_whole(pg_url, engine_for):
    engine = engine_for(pg_url)
    metadata.create_all(engine)  # the ranking read model's tables too
    n = scale.seed(engine, 2, seed_value=7)
    assert n == 2 * (len(DISTRICT_FIGURES) + scale.UNITS_PER_DISTRICT * len(UNIT_FIGURES))
    first = _figures(engine)
    assert scale.seed(engine, 2, seed_value=7) == n  # re-seeding replaces, never adds
    assert _figures(engine) == first
    scale.seed(engine, 2, seed_value=8)
    assert _figures(engine) != first
    with readonly(engine.connect()) as c:
        answer = compare_indicators(c, scale.PERIOD)
    assert [d["node"] for d in answer["districts"]] == ["district-01", "district-02"]
    assert len(answer["units"]) == 2 * scale.UNITS_PER_DISTRICT
    ranked = answer["ranking"]["overdue_count"]
    assert ranked["lower_is_better"] is True
    values = [r["value"] for r in ranked["units"]]
    assert values == sorted(values) and len(values) == 2 * scale.UNITS_PER_DISTRICT
    with readonly(engine.connect()) as c:
        page = city_comparison(c, scale.PERIOD, node="district-02")
    assert [d["units"] for d in page["districts"]] == [scale.UNITS_PER_DISTRICT] * 2
    assert [t["value"] for t in page["top_units"]["overdue_count"]] == values[:10]
    assert len(page["units"]) == scale.UNITS_PER_DISTRICT
    assert {u["unit_id"][:11] for u in page["units"]} == {"district-02"}


def test_measure_returns_one_sample_per_call_on_each_side(pg_url, engine_for):
    engine = engine_for(pg_url)
    metadata.create_all(engine)  # the ranking read model's tables too
    scale.seed(engine, 2)
    ours, floor = scale.measure(engine, calls=3)
    assert len(ours) == len(floor) == 3 and all(v > 0 for v in ours + floor)


def test_propagation_cpu_demand_counts_every_node_applying_every_other_nodes_records():
    """bench/scale_propagation.py: a record costs its origin ``own`` ms and every other
    node ``applied`` ms, so N districts at RATE/s ask RATE N (own + N applied) ms a second."""
    from bench import scale_propagation as sp
    # 2 districts, 100 records each; the city applied 200 at 5 ms, each district applied
    # the other's 100 at 5 ms and its own 100 at 20 ms
    r = {"districts": 2, "committed": 200, "cpu_s": {"city": 1.0, "district-01": 2.5, "district-02": 2.5},
         "applied_per_node": {"city": 200, "district-01": 100, "district-02": 100},
         "idle_cpu_per_s": {}}
    got = sp.cpu_per_record(r)
    assert got["cpu_ms_per_applied_record"] == 5.0
    assert got["cpu_ms_per_own_record"] == 20.0
    assert got["cpu_demand_cores"] == round(sp.RATE * 2 * (20 + 2 * 5) / 1000, 2)


def test_propagation_district_counts_come_from_the_environment_or_default_to_the_growth():
    """QINGLIAN_BENCH_SCALE_DISTRICTS picks the district counts a propagation run measures."""
    import pytest

    from bench import scale_propagation as sp
    assert sp.growth_steps(None) == sp.GROWTH
    assert sp.growth_steps(" ") == sp.GROWTH
    assert sp.growth_steps("2") == (2,)
    assert sp.growth_steps("5,2") == (2, 5)
    for bad in ("two", "0", ","):
        with pytest.raises(ValueError, match="QINGLIAN_BENCH_SCALE_DISTRICTS 应为"):
            sp.growth_steps(bad)
