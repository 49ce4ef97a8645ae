"""Prometheus metrics of one process (served at `GET /metrics` by `shared.http.app`).

Requests are counted and timed by route template (bounded cardinality) in the request
middleware. The shared components (rate limiter, circuit breaker, product cache) keep plain
integer counters on their hot paths; `ServiceMetrics.expose` reads them when Prometheus scrapes,
so a request pays for no lock or label lookup of a metric it does not change. prometheus_client
writes the exposition format (escaping, histogram buckets, content type): a well-kept library
for a format with edge cases.

Each process has its own registry and counts (one uvicorn worker per process here); Prometheus
adds up the instances. Reading them needs the `metrics` role: a scraper's token should not also
be able to post events (the `service` role's power).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

# Methods become a label: any other (HTTP allows extension methods) is counted as OTHER, so a
# client cannot mint series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Without this each series gets a `_created` twin holding its creation time: twice the series
# for a value no dashboard here uses.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Latency buckets (seconds) around what these services answer in: sub-millisecond cache hits to
# the catalog's read timeout.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class _Exposed:
    name: str
    documentation: str
    labels: Mapping[str, str]
    read: Callable[[], float]


class _Readings(Collector):
    def __init__(self) -> None:
        self.exposed: list[_Exposed] = []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        for item in self.exposed:
            family = families.get(item.name)
            if family is None:
                family = CounterMetricFamily(item.name, item.documentation, labels=sorted(item.labels))
                families[item.name] = family
            family.add_metric([item.labels[key] for key in sorted(item.labels)], item.read())
        yield from families.values()


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            "storefront_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "storefront_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._readings = _Readings()
        self.registry.register(self._readings)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method if method in _METHODS else "OTHER", route, str(status)).inc()
        self._duration.labels(route).observe(seconds)

    def expose(self, name: str, documentation: str, read: Callable[[], float], **labels: str) -> None:
        """Publish a counter kept elsewhere as `name` (a `_total` suffix is added); `read` is
        called at each scrape. Every exposure of one name takes the same label names."""
        same = [e for e in self._readings.exposed if e.name == name]
        if same and set(same[0].labels) != set(labels):
            raise ValueError(f"{name} is exposed with labels {sorted(same[0].labels)}")
        self._readings.exposed.append(_Exposed(name, documentation, labels, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    content_type = CONTENT_TYPE_LATEST
