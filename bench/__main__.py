"""`make bench [SUITE=...]` = `python -m bench [suite | suite.figure ...]`: for each chosen
suite, a calibration line, its table, and var/bench/<suite>.json (bench/common.py).

    python -m bench                      every suite
    python -m bench kernel               one suite
    python -m bench kernel.reload_10k    one figure (several may be named)
"""
import eventlet

eventlet.monkey_patch()  # the services under test run as they do under `nameko run`

import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from bench.common import (  # noqa: E402
    SUITES, SelectionError, calibrate, calibration_line, catalogue, details, parse_selection, report,
    scratch_database, table, write,
)


def run_suite(suite: str, only, var: str) -> dict:
    from shared.db import drop_database
    url = scratch_database("calibration")
    try:
        cal = calibrate(url)
    finally:
        drop_database(url)
    print("%s: %s; running…" % (suite, calibration_line(cal)), flush=True)  # kept if the suite dies
    t0 = time.monotonic()
    figures = importlib.import_module(SUITES[suite]).run(var, only)
    cal["suite_seconds"] = round(time.monotonic() - t0, 1)
    return report(suite, figures, cal, only)


def main(argv) -> int:
    var = os.environ.get("QINGLIAN_VAR", "var")
    try:
        args = [a for a in argv if a]
        chosen = parse_selection(args, catalogue(args))
    except SelectionError as exc:
        print("bench: %s" % exc, file=sys.stderr)
        return 2
    for suite, only in chosen:
        result = run_suite(suite, only, var)
        path = write(result, var)
        print(table(result))
        extra = details(result)
        if extra:
            print(extra)
        print("  %s took %.0f s; written to %s" % (suite, result["calibration"]["suite_seconds"], path))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
