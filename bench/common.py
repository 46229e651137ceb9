"""The one result form every benchmark writes: ``var/bench/<suite>.json``.

``{"<name>": {"value": v, "unit": "...", "baseline": b, "ratio": r, "target": t}}`` -
ratio is value / baseline where a baseline applies (target is then a ratio), else
value / target (so ratio >= 1 means the target is met; for "lower is better" figures
such as latencies the ratio is target / value).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return "%s, %d cores, %.0f GiB, Python %s" % (cpu, os.cpu_count() or 0, mem,
                                                  platform.python_version())


def figure(value, unit, target, baseline=None, lower_is_better=False) -> dict:
    if baseline:
        ratio = (baseline / value if lower_is_better else value / baseline) if value else 0.0
    else:
        ratio = (target / value if lower_is_better else value / target) if value else 0.0
    return {"value": round(value, 4), "unit": unit, "baseline": baseline and round(baseline, 4),
            "ratio": round(ratio, 3), "target": target}


def percentile(samples, p) -> float:
    s = sorted(samples)
    if not s:
        return 0.0
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def best_of(fn, repeats: int = 3):
    """Median of a few runs of ``fn() -> float`` (a rate): the machine is shared."""
    return statistics.median(fn() for _ in range(repeats))


def write(suite: str, figures: dict, var: str | None = None) -> Path:
    folder = Path(var or os.environ.get("QINGLIAN_VAR", "var")) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("%s.json" % suite)
    path.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return path


def table(suite: str, figures: dict) -> str:
    lines = ["", "%s  (%s)" % (suite, machine()),
             "%-28s %14s %-10s %14s %8s %8s  %s" % ("figure", "value", "unit", "baseline",
                                                   "ratio", "target", "met")]
    for name, f in figures.items():
        met = "yes" if f["ratio"] >= (f["target"] if f["baseline"] else 1.0) else "NO"
        lines.append("%-28s %14s %-10s %14s %8.2f %8s  %s" % (
            name, f["value"], f["unit"], f["baseline"] if f["baseline"] is not None else "-",
            f["ratio"], f["target"], met))
    return "\n".join(lines)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
