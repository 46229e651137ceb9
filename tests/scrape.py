"""Reading a service's /metrics as Prometheus would (for the metrics tests): one
``Scrape``, or ``scrape_when`` - the first scrape a condition holds on (the harness's
``wait_for``, the suite's one polling loop)."""
from __future__ import annotations

from typing import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import WAIT, wait_for


class Scrape:
    """One scrape of ``base``/metrics: ``value(name, **labels)`` is the sample's value,
    or None when the series does not exist."""

    def __init__(self, base: str):
        if not base.startswith("http"):
            host, port = base.rsplit(":", 1)
            base = "http://%s:%s" % ("127.0.0.1" if host in ("0.0.0.0", "") else host, port)
        r = requests.get(base + "/metrics", timeout=30)
        r.raise_for_status()
        self.text = r.text
        self.samples = [s for family in text_string_to_metric_families(r.text)
                        for s in family.samples]

    def value(self, name: str, **labels) -> float | None:
        for s in self.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        return None

    def series(self, name: str) -> list[dict]:
        return [s.labels for s in self.samples if s.name == name]


def scrape_when(base: str, cond: Callable[[Scrape], object], what: str = "a scrape that matches",
                timeout: float = WAIT) -> Scrape:
    """Scrape ``base``/metrics until ``cond(scrape)`` holds; return that scrape."""
    return wait_for(lambda: (lambda s: s if cond(s) else None)(Scrape(base)),
                    timeout=timeout, what="%s at %s/metrics" % (what, base))
