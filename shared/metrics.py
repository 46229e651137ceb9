"""Prometheus metrics: one registry per service container.

A private ``CollectorRegistry`` per container (not the global one) so that two
containers of the same service in one process - as tests run them - do not collide.
Each registry therefore carries its own process, platform and GC collectors (the
global registry's would never be exposed).

What an alert depends on must be true when it matters, so lags are *probes*: computed
from the database (the log's head, the checkpoints) on every scrape, not remembered
from the last success - a relay that cannot reach its broker shows a growing lag, not
the zero it last published. A probe that fails (database down) leaves its gauges empty
and says so in ``qinglian_probe_success``, rather than showing stale figures.

Labelled counters are created at zero up front (every command and routine with every
outcome, every consumer): ``increase()`` cannot see the first error of a series that
did not exist before it.
"""
from __future__ import annotations

import logging
import platform
import time
from contextlib import contextmanager
from importlib import metadata
from typing import Callable, Iterable

from prometheus_client import (
    CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from shared.errors import ALL_ERRORS, QinglianError

log = logging.getLogger(__name__)

# the *_created series would double every counter for a start time nobody alerts on
disable_created_metrics()

# up to 2 minutes: an export or a rebuild-sized command must land in a real bucket,
# not in +Inf, or its p99 reads "5 s" however slow it is
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                   10, 30, 60, 120)
OUTCOMES = ("ok", "error", *sorted({cls.code for cls in ALL_ERRORS}))


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, service: str):
        self.service = service
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        Gauge("qinglian_build_info", "Version of the running code (always 1)",
              ["service", "version", "python", "nameko"], registry=r).labels(
            service, _version("qinglian"), platform.python_version(), _version("nameko")).set(1)
        self.commands = Counter("qinglian_commands_total",
                                "Commands and queries run for callers, by outcome",
                                ["service", "command", "outcome"], registry=r)
        self.latency = Histogram("qinglian_command_seconds", "Command and query latency",
                                 ["service", "command"], buckets=LATENCY_BUCKETS, registry=r)
        self.routines = Counter("qinglian_routines_total",
                                "Commands run by the service's own timers, by outcome",
                                ["service", "routine", "outcome"], registry=r)
        self.routine_latency = Histogram("qinglian_routine_seconds", "Timer routine latency",
                                         ["service", "routine"], buckets=LATENCY_BUCKETS,
                                         registry=r)
        self.appended = Counter("qinglian_events_appended_total", "Events appended to the log",
                                ["service"], registry=r)
        self.relay_published = Counter("qinglian_relay_published_total",
                                       "Events the relay published with broker confirmation",
                                       ["service"], registry=r)
        self.relay_lag_events = Gauge("qinglian_relay_lag_events",
                                      "Events in the log the broker has not confirmed yet",
                                      ["service"], registry=r)
        self.relay_lag_seconds = Gauge("qinglian_relay_lag_seconds",
                                       "Age of the oldest event the broker has not confirmed "
                                       "(0 when caught up)", ["service"], registry=r)
        self.consumer_redeliveries = Counter("qinglian_consumer_redeliveries_total",
                                             "Events a consumer had already handled (skipped)",
                                             ["service", "consumer"], registry=r)
        self.consumer_errors = Counter("qinglian_consumer_errors_total",
                                       "Events a consumer failed to handle",
                                       ["service", "consumer"], registry=r)
        self.probe_success = Gauge("qinglian_probe_success",
                                   "1 when the probe's gauges were computed at this scrape",
                                   ["service", "probe"], registry=r)
        self.broker_connected = Gauge("qinglian_broker_connected",
                                      "1 while this connection to the node's broker is open",
                                      ["service", "connection"], registry=r)
        self.appended.labels(service)
        self.relay_published.labels(service)
        self.custom: dict[str, object] = {}
        self._probes: list[tuple[str, Callable[[], None], tuple]] = []

    # -- declared up front -------------------------------------------------------------------
    def declare(self, operations: Iterable[str] = (), routines: Iterable[str] = (),
                consumers: Iterable[str] = ()) -> None:
        """Every series a first failure would create, at zero."""
        for name in operations:
            self.latency.labels(self.service, name)
            for outcome in OUTCOMES:
                self.commands.labels(self.service, name, outcome)
        for name in routines:
            self.routine_latency.labels(self.service, name)
            for outcome in OUTCOMES:
                self.routines.labels(self.service, name, outcome)
        for consumer in consumers:
            self.consumer_redeliveries.labels(self.service, consumer)
            self.consumer_errors.labels(self.service, consumer)

    # -- counting ------------------------------------------------------------------------------
    @contextmanager
    def command(self, name: str, routine: bool = False):
        """Time and count one command or query; ``routine``: run by a timer, not a caller."""
        start = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except QinglianError as exc:
            outcome = exc.code
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            latency, counter = ((self.routine_latency, self.routines) if routine
                                else (self.latency, self.commands))
            latency.labels(self.service, name).observe(time.perf_counter() - start)
            counter.labels(self.service, name, outcome).inc()

    def events_appended(self, events) -> None:
        self.appended.labels(self.service).inc(len(events))

    def relay_progress(self, published: int) -> None:
        self.relay_published.labels(self.service).inc(published)

    def redelivered(self, consumer: str) -> None:
        self.consumer_redeliveries.labels(self.service, consumer).inc()

    def consumer_failed(self, consumer: str) -> None:
        self.consumer_errors.labels(self.service, consumer).inc()

    def connection(self, name: str) -> Callable[[bool], None]:
        """A setter for one broker connection's state (starts as not connected)."""
        gauge = self.broker_connected.labels(self.service, name)
        gauge.set(0)
        return lambda up: gauge.set(1 if up else 0)

    # -- service-specific series -----------------------------------------------------------
    def counter(self, name: str, doc: str, labels=()) -> Counter:
        """Service-specific counters (e.g. federation rejections), same registry."""
        if name not in self.custom:
            self.custom[name] = Counter(name, doc, ["service", *labels], registry=self.registry)
        return self.custom[name]

    def gauge(self, name: str, doc: str, labels=()) -> Gauge:
        if name not in self.custom:
            self.custom[name] = Gauge(name, doc, ["service", *labels], registry=self.registry)
        return self.custom[name]

    def histogram(self, name: str, doc: str, labels=(), buckets=LATENCY_BUCKETS) -> Histogram:
        if name not in self.custom:
            self.custom[name] = Histogram(name, doc, ["service", *labels], buckets=buckets,
                                          registry=self.registry)
        return self.custom[name]

    # -- probes --------------------------------------------------------------------------------
    def probe(self, name: str, refresh: Callable[[], None], gauges: Iterable[Gauge]) -> None:
        """Run ``refresh`` (which sets ``gauges``) before every exposition."""
        self._probes.append((name, refresh, tuple(gauges)))
        self.probe_success.labels(self.service, name).set(0)

    def refresh(self) -> None:
        for name, refresh, gauges in self._probes:
            try:
                refresh()
                ok = 1
            except Exception as exc:  # noqa: BLE001 - a scrape must answer even so
                log.warning("metrics probe %s failed: %s", name, exc)
                for gauge in gauges:
                    gauge.clear()  # no figure rather than a stale one
                ok = 0
            self.probe_success.labels(self.service, name).set(ok)

    def expose(self) -> bytes:
        self.refresh()
        return generate_latest(self.registry)
