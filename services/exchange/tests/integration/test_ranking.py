"""上下互比's read model (services/exchange/projections.py IndicatorRanking), on SQLite and PostgreSQL: kept
as the figures arrive (the live path of a command's transaction), the same tables from a
rebuild of the log, ranked best first (fewest first where less is better), an update
replacing a report's figures, and the city's comparison read from it."""
from sqlalchemy import select

from services.exchange.domain import derived_id
from services.exchange.projections import (
    PROJECTIONS, RANKING, indicator_marks, indicator_periods, indicator_ranking, indicator_reports,
)
from services.exchange.queries import city_comparison
from shared.events import NewEvent
from shared.projections import rebuild
from shared.uow import Runtime

PERIOD = "2026-10"


def _report(node, scope, unit_id, unit_name, figures, version=1, source="supervision"):
    rid = derived_id(node, "indicators", source, scope, unit_id or "", PERIOD)
    kind = "IndicatorReport.Recorded" if version == 1 else "IndicatorReport.Updated"
    data = {"report_id": rid, "source": source, "scope": scope, "unit_id": unit_id,
            "unit_name": unit_name, "period": PERIOD, "indicators": figures}
    if version == 1:
        data.update(sharing="city", recipients=[])
    return NewEvent("IndicatorReport:%s" % rid, "IndicatorReport", version, kind, 1, data,
                    {"node": node})


def _city(engine_for, db_url):
    rt = Runtime(engine_for(db_url), PROJECTIONS, "city", "exchange")
    rt.create_schema()
    return rt


def _arrive(rt, *events):
    with rt.unit_of_work() as uow:
        uow.append_events(list(events))


def _tables(rt):
    with rt.engine.connect() as c:
        return {t.name: sorted(tuple(r) for r in c.execute(select(t)))
                for t in (indicator_ranking, indicator_reports, indicator_periods, indicator_marks)}


def _seed(rt):
    _arrive(rt,
            _report("district-a", "district", None, None, {"closure_rate": 0.5, "overdue_count": 9}),
            _report("district-b", "district", None, None, {"closure_rate": 0.8, "overdue_count": 3}),
            _report("district-c", "district", None, None, {"closure_rate": 0.8, "overdue_count": 12}))
    _arrive(rt,
            _report("district-a", "unit", "a-1", "甲一", {"closure_rate": 0.9, "overdue_count": 0}),
            _report("district-a", "unit", "a-2", "甲二", {"closure_rate": 0.2, "overdue_count": 5}),
            _report("district-a", "unit", "a-3", "甲三", {"closure_rate": 0.6, "overdue_count": 1}),
            _report("district-b", "unit", "b-1", "乙一", {"closure_rate": 0.95, "overdue_count": 2}))


def test_districts_ranked_best_first_and_fewest_first_where_less_is_better(engine_for, db_url):
    rt = _city(engine_for, db_url)
    _seed(rt)
    with rt.read() as c:
        answer = city_comparison(c, None)
    assert answer["period"] == PERIOD and answer["periods"] == [PERIOD]
    assert answer["indicators"] == ["closure_rate", "overdue_count"]
    assert answer["lower_is_better"] == {"closure_rate": False, "overdue_count": True}
    assert answer["district_indicators"] == answer["unit_indicators"] == answer["indicators"]
    by = {d["node"]: d for d in answer["districts"]}
    assert [d["node"] for d in answer["districts"]] == ["district-a", "district-b", "district-c"]
    # closure: b and c tie at 0.8 (the node breaks the tie), a last; overdue: fewest first
    assert {n: d["ranks"]["closure_rate"] for n, d in by.items()} == {
        "district-b": 1, "district-c": 2, "district-a": 3}
    assert {n: d["ranks"]["overdue_count"] for n, d in by.items()} == {
        "district-b": 1, "district-a": 2, "district-c": 3}
    assert by["district-a"]["units"] == 3 and by["district-b"]["units"] == 1
    assert by["district-c"]["units"] == 0
    top = answer["top_units"]["closure_rate"]
    assert [(t["rank"], t["unit_id"], t["unit_name"]) for t in top] == [
        (1, "b-1", "乙一"), (2, "a-1", "甲一"), (3, "a-3", "甲三"), (4, "a-2", "甲二")]
    assert [t["unit_id"] for t in answer["top_units"]["overdue_count"]] == ["a-1", "a-3", "b-1", "a-2"]
    assert answer["units"] == []  # no district chosen: no drill-down


def test_drill_down_ranks_a_districts_units_within_it(engine_for, db_url):
    rt = _city(engine_for, db_url)
    _seed(rt)
    with rt.read() as c:
        answer = city_comparison(c, PERIOD, indicator="overdue_count", node="district-a", limit=2)
    assert list(answer["top_units"]) == ["overdue_count"]
    assert [t["unit_id"] for t in answer["top_units"]["overdue_count"]] == ["a-1", "a-3"]
    units = {u["unit_id"]: u for u in answer["units"]}
    assert set(units) == {"a-1", "a-2", "a-3"}  # district-b's unit is not listed
    assert units["a-2"]["values"] == {"closure_rate": 0.2, "overdue_count": 5.0}
    assert {u: units[u]["ranks"]["closure_rate"] for u in units} == {"a-1": 1, "a-3": 2, "a-2": 3}
    assert {u: units[u]["ranks"]["overdue_count"] for u in units} == {"a-1": 1, "a-3": 2, "a-2": 3}


def test_an_update_replaces_the_figures_and_a_rebuild_gives_the_same_tables(engine_for, db_url):
    rt = _city(engine_for, db_url)
    _seed(rt)
    # a-2 closes its rectifications; a figure it no longer publishes goes with the old ones
    _arrive(rt, _report("district-a", "unit", "a-2", "甲二", {"closure_rate": 1.0}, version=2))
    with rt.read() as c:
        answer = city_comparison(c, PERIOD, node="district-a")
    units = {u["unit_id"]: u for u in answer["units"]}
    assert units["a-2"]["values"] == {"closure_rate": 1.0}
    assert units["a-2"]["ranks"] == {"closure_rate": 1}
    assert [t["unit_id"] for t in answer["top_units"]["overdue_count"]] == ["a-1", "a-3", "b-1"]
    assert {d["node"]: d["units"] for d in answer["districts"]}["district-a"] == 3  # not 4
    live = _tables(rt)
    rebuild(rt.store, RANKING)
    assert _tables(rt) == live


def test_an_answer_known_to_the_caller_is_unchanged_until_a_report_or_an_exemplar_moves_it(
        engine_for, db_url):
    """The console keeps its rendered page by the answer's ``version``: given back as
    ``known``, the answer is only "unchanged" - until a report arrives (any period's: the
    picker lists them) or an exemplar is published (the drill-down marks its unit)."""
    rt = _city(engine_for, db_url)
    _seed(rt)
    with rt.read() as c:
        first = city_comparison(c, PERIOD, node="district-a")
        assert city_comparison(c, PERIOD, node="district-a", known=first["version"]) == {
            "version": first["version"], "unchanged": True}
        assert city_comparison(c, None, known=first["version"])["unchanged"] is True
    _arrive(rt, _report("district-a", "unit", "a-2", "甲二", {"closure_rate": 1.0}, version=2))
    with rt.read() as c:
        second = city_comparison(c, PERIOD, node="district-a", known=first["version"])
    assert second["version"] != first["version"] and "unchanged" not in second
    assert {u["unit_id"]: u for u in second["units"]}["a-2"]["values"] == {"closure_rate": 1.0}
    rid = "district-a/x1"
    _arrive(rt, NewEvent("Exemplar:" + rid, "Exemplar", 1, "Exemplar.Nominated", 1, {
                "exemplar_id": rid, "unit_id": "a-2", "unit_name": "甲二", "category": "practice",
                "title": "t", "description": "d"}, {"node": "district-a"}))
    with rt.read() as c:  # a draft is not an exemplar yet
        assert city_comparison(c, PERIOD, node="district-a", known=second["version"])["unchanged"]
    _arrive(rt, NewEvent("Exemplar:" + rid, "Exemplar", 2, "Exemplar.Published", 1, {
                "exemplar_id": rid, "sharing": "city", "recipients": []}, {"node": "district-a"}))
    with rt.read() as c:
        third = city_comparison(c, PERIOD, node="district-a", known=second["version"])
    assert third["version"] != second["version"]
    assert {u["unit_id"]: u["exemplar"] for u in third["units"]} == {
        "a-1": False, "a-2": True, "a-3": False}


def test_no_figures_yet_is_an_empty_comparison(engine_for, db_url):
    rt = _city(engine_for, db_url)
    with rt.read() as c:
        answer = city_comparison(c, None)
    assert answer["period"] is None and answer["districts"] == [] and answer["periods"] == []


def test_a_provisional_month_is_a_flag_on_the_row_not_a_ranked_figure(engine_for, db_url):
    """Issue 10 #13: education publishes a month still open for late entries with
    ``provisional`` 1; the city ranks its figures as they stand, marks the district (and
    unit) provisional, never ranks "provisional" itself; the final figures replace them."""
    from services.exchange.queries import compare_indicators
    rt = _city(engine_for, db_url)
    _seed(rt)
    edu = {"warning_education_compliance": 0.5, "provisional": 1}
    _arrive(rt, _report("district-a", "district", None, None, edu, source="education"),
            _report("district-a", "unit", "a-1", "甲一", {"warning_education_held": 1, "provisional": 1},
                    source="education"),
            _report("district-b", "district", None, None,
                    {"warning_education_compliance": 0.9, "provisional": 0}, source="education"))
    with rt.read() as c:
        answer = city_comparison(c, PERIOD, node="district-a")
        legacy = compare_indicators(c, PERIOD)
        one = compare_indicators(c, PERIOD, indicator="warning_education_compliance")
    assert "provisional" not in answer["indicators"] and "provisional" not in answer["top_units"]
    assert "provisional" not in answer["district_indicators"]
    by = {d["node"]: d for d in answer["districts"]}
    assert {n: d["provisional"] for n, d in by.items()} == {
        "district-a": True, "district-b": False, "district-c": False}
    assert "provisional" not in by["district-a"]["values"]
    assert by["district-a"]["ranks"]["warning_education_compliance"] == 2  # ranked as it stands
    units = {u["unit_id"]: u for u in answer["units"]}
    assert units["a-1"]["provisional"] is True and units["a-2"]["provisional"] is False
    assert "provisional" not in units["a-1"]["values"]
    for cmp in (legacy, one):
        assert "provisional" not in cmp["indicators"] and "provisional" not in cmp["ranking"]
        d = {r["node"]: r for r in cmp["districts"]}
        assert d["district-a"]["provisional"] is True and d["district-b"]["provisional"] is False
    assert {(u["node"], u["unit_id"]): u["provisional"] for u in legacy["units"]}[
        ("district-a", "a-1")] is True
    # the grace period is over: the final figures replace the provisional ones
    _arrive(rt, _report("district-a", "district", None, None,
                        {"warning_education_compliance": 1.0, "provisional": 0}, version=2,
                        source="education"))
    with rt.read() as c:
        answer = city_comparison(c, PERIOD)
        legacy = compare_indicators(c, PERIOD)
    by = {d["node"]: d for d in answer["districts"]}
    assert by["district-a"]["provisional"] is False
    assert by["district-a"]["values"]["warning_education_compliance"] == 1.0
    assert by["district-a"]["ranks"]["warning_education_compliance"] == 1
    assert {r["node"]: r["provisional"] for r in legacy["districts"]}["district-a"] is False
    live = _tables(rt)
    rebuild(rt.store, RANKING)
    assert _tables(rt) == live
