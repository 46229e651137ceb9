"""`make bench`'s own logic: choosing suites and figures, the verdict, "not measured",
the calibration line and the result file. No timing is asserted (speed lives in the
benchmarks themselves)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from bench import common
from bench.common import (
    AT_LEAST, AT_MOST, FAILED, MET, NOT_MEASURED, SelectionError, interleaved, judged,
    offered_shortfall, parse_selection, verdict, wanted,
)
from shared.db import create_database, drop_database, make_engine

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = {"kernel": ("append_single", "reload_10k"), "education": ("checkin_burst_p99_ms",)}


# -- selection -------------------------------------------------------------------------------
def test_no_argument_runs_every_suite_whole():
    assert parse_selection([], CATALOGUE) == [("kernel", None), ("education", None)]


def test_one_suite_and_one_figure():
    assert parse_selection(["education"], CATALOGUE) == [("education", None)]
    assert parse_selection(["kernel.reload_10k"], CATALOGUE) == [("kernel", frozenset({"reload_10k"}))]


def test_figures_of_one_suite_merge_and_a_whole_suite_wins():
    assert parse_selection(["kernel.reload_10k", "kernel.append_single"], CATALOGUE) == [
        ("kernel", frozenset({"reload_10k", "append_single"}))]
    assert parse_selection(["kernel.reload_10k", "kernel"], CATALOGUE) == [("kernel", None)]
    assert parse_selection(["kernel", "kernel.reload_10k"], CATALOGUE) == [("kernel", None)]


def test_order_is_as_named():
    assert [s for s, _ in parse_selection(["education", "kernel.reload_10k"], CATALOGUE)] == [
        "education", "kernel"]


@pytest.mark.parametrize("arg, words", [("nosuch", ["未知的基准套件", "nosuch", "kernel"]),
                                        ("kernel.nosuch", ["没有指标", "nosuch", "reload_10k"])])
def test_unknown_names_are_refused_with_the_choices(arg, words):
    with pytest.raises(SelectionError) as err:
        parse_selection([arg], CATALOGUE)
    assert all(w in str(err.value) for w in words)


def test_the_registry_names_every_suite_and_its_figures():
    cat = common.catalogue()
    assert {"kernel", "supervision", "education", "federation"} <= set(cat)  # others plug in
    assert "reload_10k" in cat["kernel"] and "checkin_burst_p99_ms" in cat["education"]
    assert all(cat[s] and len(set(cat[s])) == len(cat[s]) for s in cat)


def test_naming_a_suite_imports_only_that_suite():
    cat = common.catalogue(["kernel.reload_10k"])
    assert "reload_10k" in cat["kernel"] and cat["education"] == ()


def test_wanted():
    assert wanted(None, "x")
    assert wanted(frozenset({"a"}), "b", "a")
    assert not wanted(frozenset({"a"}), "b")


def test_cli_refuses_an_unknown_figure_and_writes_nothing(tmp_path):
    env = dict(os.environ, QINGLIAN_VAR=str(tmp_path / "var"))
    for arg in ("kernel.nosuch", "nosuch"):
        r = subprocess.run([sys.executable, "-m", "bench", arg], cwd=str(REPO), env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "bench: " in r.stderr and "nosuch" in r.stderr
        assert "calibration" not in r.stdout
    assert not (tmp_path / "var").exists()


def test_make_bench_passes_the_suite_or_figure():
    r = subprocess.run(["make", "-n", "bench", "SUITE=kernel.reload_10k"],
                       cwd=str(REPO), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "-m bench kernel.reload_10k" in r.stdout


# -- verdicts ----------------------------------------------------------------------------------
def test_verdict_by_goal():
    assert verdict(0.8, 0.8, AT_LEAST) == MET
    assert verdict(0.79, 0.8, AT_LEAST) == FAILED
    assert verdict(15.0, 15.0, AT_MOST) == MET
    assert verdict(15.1, 15.0, AT_MOST) == FAILED
    assert verdict(5.0, 15.0, AT_MOST, not_measured="client short") == NOT_MEASURED
    with pytest.raises(ValueError):
        verdict(1.0, 1.0, "sideways")


def test_judged_keeps_value_baseline_ratio_and_target():
    f = judged(50_000, "events/s", 200_000, "raw decoded read", 0.6,
               quiet_machine_target="≥ 100,000 events/s", events=10)
    assert f["ratio"] == 0.25 and f["target_ratio"] == 0.6 and f["verdict"] == FAILED
    assert f["value"] == 50_000 and f["baseline"] == 200_000 and f["goal"] == AT_LEAST
    assert f["quiet_machine_target"] == "≥ 100,000 events/s" and f["events"] == 10
    # an absolute figure far below its quiet-machine target is met when the ratio holds
    ok = judged(55_000, "events/s", 70_000, "raw decoded read", 0.6, quiet_machine_target="≥ 100,000")
    assert ok["verdict"] == MET


def test_latency_figure_is_judged_at_most():
    f = judged(69.0, "ms", 6.0, "GET /health p99", 15.0, AT_MOST)
    assert f["ratio"] == 11.5 and f["verdict"] == MET
    assert judged(200.0, "ms", 6.0, "GET /health p99", 15.0, AT_MOST)["verdict"] == FAILED


def test_losses_against_zero_target():
    assert judged(0, "requests", 5000, "members", 0.0, AT_MOST)["verdict"] == MET
    assert judged(1, "requests", 5000, "members", 0.0, AT_MOST)["verdict"] == FAILED


def test_zero_baseline_is_not_measured():
    f = judged(10.0, "ms", 0.0, "GET /health p99", 15.0, AT_MOST)
    assert f["verdict"] == NOT_MEASURED and f["ratio"] is None and f["not_measured"]


def test_burst_not_offered_by_the_client_is_not_measured_not_failed():
    # the case: 74 requests/s offered of 500, the client starved of CPU
    reason = offered_shortfall(500, 74, client_lag_ms=180.0)
    assert reason and "500" in reason and "74" in reason
    f = judged(57_000.0, "ms", 40.0, "paced GET /health p99", 8.0, AT_MOST, not_measured=reason)
    assert f["verdict"] == NOT_MEASURED and f["not_measured"] == reason


def test_burst_offered_in_full_is_judged():
    assert offered_shortfall(500, 498, client_lag_ms=0.3) is None
    assert offered_shortfall(500, 450, client_lag_ms=50.0) is None  # 90 % is enough


def test_a_server_that_holds_every_connection_is_judged_not_excused():
    # the rate fell short, but requests waited for a connection, not for the client,
    # while the trivial endpoint of the same process was offered in full
    assert offered_shortfall(500, 120, client_lag_ms=0.4) is None
    assert offered_shortfall(500, 120, client_lag_ms=0.4, baseline_offered_rps=497) is None


def test_a_machine_that_cannot_carry_even_the_trivial_endpoint_is_not_measured():
    # the case: /health itself ran at 296/s instead of about 2,300
    reason = offered_shortfall(500, 74, client_lag_ms=0.2, baseline_offered_rps=296)
    assert reason and "296" in reason and "500" in reason


def test_interleaving_alternates_which_side_goes_first():
    calls = []
    base, value = interleaved(4, lambda r: calls.append(("b", r)) or 1.0,
                              lambda r: calls.append(("v", r)) or 3.0)
    assert calls == [("b", 0), ("v", 0), ("v", 1), ("b", 1), ("b", 2), ("v", 2), ("v", 3), ("b", 3)]
    assert (base, value) == (1.0, 3.0)


# -- calibration and the result file ------------------------------------------------------------
def test_calibration_runs_both_loops_and_leaves_nothing(monkeypatch):
    monkeypatch.setattr(common, "PY_LOOP_STEPS", 100_000)
    monkeypatch.setattr(common, "PG_COMMITS", 5)
    url = create_database(common.PG_SERVER, "qlt_benchcal")
    try:
        cal = common.calibrate(url)
        engine = make_engine(url)
        assert "calibration" not in inspect(engine).get_table_names()
        engine.dispose()
    finally:
        drop_database(url)
    assert cal["python_loop_steps"] == 100_000 and cal["pg_commits"] == 5
    assert cal["python_loop_s"] > 0 and cal["pg_commits_s"] > 0 and cal["pg_fsync"] in ("on", "off")
    line = common.calibration_line(cal)
    assert "100,000-step Python loop" in line and "5 fsync'd PostgreSQL" in line


def test_result_file_and_table(tmp_path):
    cal = {"python_loop_steps": 10_000_000, "python_loop_s": 1.8, "pg_commits": 200,
           "pg_commits_s": 0.9, "pg_fsync": "on", "cpu_steal_percent": 20.0,
           "load_average_1m": 2.5, "cores": 2}
    figures = {
        "reload_10k": judged(55_000, "events/s", 70_000, "raw decoded read", 0.6,
                             quiet_machine_target="≥ 100,000 events/s"),
        "checkin_burst_p99_ms": judged(57_000, "ms", 40, "paced GET /health p99", 8.0, AT_MOST,
                                       not_measured=offered_shortfall(500, 74, 180.0)),
    }
    result = common.report("kernel", figures, cal, frozenset({"reload_10k"}))
    path = common.write(result, str(tmp_path))
    saved = json.loads(path.read_text())
    assert path.name == "kernel.json" and saved["selection"] == ["reload_10k"]
    assert saved["calibration"] == cal
    assert set(saved["figures"]["reload_10k"]) >= {"value", "baseline", "ratio", "target_ratio",
                                                   "quiet_machine_target", "verdict"}
    text = common.table(result)
    lines = text.splitlines()
    assert lines[2].startswith("calibration: 10,000,000-step Python loop 1.80 s (steal 20 %)")
    assert any(l.startswith("reload_10k") and l.rstrip().endswith("≥ 100,000 events/s")
               and " met " in l for l in lines)
    assert any("not measured: 客户端未能按计划施压" in l for l in lines)


def test_the_slowest_requests_are_placed_where_they_were_due():
    """The check-in's tail shape (bench/console.py ``slow_spans``): the slowest 1 % by
    wave and due time, a dense span first - one stall - then the thin ones."""
    from bench.console import slow_spans
    from bench.education import Paced
    fast, slow = (303, True, 10.0, 10.0, 0.0), (303, True, 300.0, 290.0, 0.0)
    results = [fast] * 400
    results[50:53] = [slow] * 3                       # wave 1, due 0.100-0.104 s at 500/s
    results[300] = (303, True, 250.0, 240.0, 0.0)     # wave 2, due 0.2 s
    paced = Paced(results, 500.0, None)
    paced.waves = [200, 200]
    assert slow_spans(paced, 500.0) == ["wave 1 at 0.10-0.10 s: 3, max 300 ms",
                                        "wave 2 at 0.20-0.20 s: 1, max 250 ms"]
    assert slow_spans(paced, 500.0, most=1) == ["wave 1 at 0.10-0.10 s: 3, max 300 ms", "and 1 more"]
