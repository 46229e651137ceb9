"""Prometheus metrics: one registry per service container.

A private ``CollectorRegistry`` per container (not the global one) so that two
containers of the same service in one process - as tests run them - do not collide.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shared.errors import QinglianError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, service: str):
        self.service = service
        r = self.registry = CollectorRegistry()
        self.commands = Counter("qinglian_commands_total", "Commands and queries by outcome",
                                ["service", "command", "outcome"], registry=r)
        self.latency = Histogram("qinglian_command_seconds", "Command and query latency",
                                 ["service", "command"], buckets=LATENCY_BUCKETS, registry=r)
        self.appended = Counter("qinglian_events_appended_total", "Events appended to the log",
                                ["service"], registry=r)
        self.relay_published = Counter("qinglian_relay_published_total",
                                       "Events the relay published with broker confirmation",
                                       ["service"], registry=r)
        self.relay_lag_events = Gauge("qinglian_relay_lag_events",
                                      "Events committed but not yet confirmed by the broker",
                                      ["service"], registry=r)
        self.relay_lag_seconds = Gauge("qinglian_relay_lag_seconds",
                                       "Age of the oldest event in the last published batch",
                                       ["service"], registry=r)
        self.consumer_redeliveries = Counter("qinglian_consumer_redeliveries_total",
                                             "Events a consumer had already handled (skipped)",
                                             ["service", "consumer"], registry=r)
        self.consumer_errors = Counter("qinglian_consumer_errors_total",
                                       "Events a consumer failed to handle",
                                       ["service", "consumer"], registry=r)
        self.custom: dict[str, object] = {}

    @contextmanager
    def command(self, name: str):
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
            self.latency.labels(self.service, name).observe(time.perf_counter() - start)
            self.commands.labels(self.service, name, outcome).inc()

    def events_appended(self, events) -> None:
        self.appended.labels(self.service).inc(len(events))

    def relay_progress(self, published: int, lag_events: int, lag_seconds: float) -> None:
        if published:
            self.relay_published.labels(self.service).inc(published)
        self.relay_lag_events.labels(self.service).set(lag_events)
        self.relay_lag_seconds.labels(self.service).set(lag_seconds)

    def redelivered(self, consumer: str) -> None:
        self.consumer_redeliveries.labels(self.service, consumer).inc()

    def consumer_failed(self, consumer: str) -> None:
        self.consumer_errors.labels(self.service, consumer).inc()

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

    def expose(self) -> bytes:
        return generate_latest(self.registry)
