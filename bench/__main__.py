"""`make bench` = `python -m bench [suite ...]`: run the suites, print each table, write var/bench/*.json."""
import eventlet

eventlet.monkey_patch()  # the services under test run as they do under `nameko run`

import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from bench.common import table, write  # noqa: E402

SUITES = ("kernel", "supervision", "education", "federation")


def main(argv):
    var = os.environ.get("QINGLIAN_VAR", "var")
    chosen = argv or [s for s in SUITES if os.path.exists(os.path.join(os.path.dirname(__file__), s + ".py"))]
    for suite in chosen:
        figures = importlib.import_module("bench.%s" % suite).run(var)
        path = write(suite, figures, var)
        print(table(suite, figures))
        extras = {n: {k: v for k, v in f.items() if k not in ("value", "unit", "baseline", "ratio", "target")}
                  for n, f in figures.items()}
        for name, extra in extras.items():
            if extra:
                print("  %s: %s" % (name, ", ".join("%s=%s" % kv for kv in extra.items())))
        print("  written to %s" % path)
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
