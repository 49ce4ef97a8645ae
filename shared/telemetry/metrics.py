"""Prometheus metrics of one process: counters and gauges read when Prometheus scrapes, histograms,
and probes that ask Redis or PostgreSQL at scrape time.

The components (rate limiter, breaker, product cache, relay, worker) keep plain integers on their
hot paths; `counter` and `gauge` publish them, read at each scrape, so no request pays for a lock
or a label lookup. A `probe` computes what needs I/O (a stream's lag, the outbox's backlog) at
scrape time, never on a request's path: with a deadline (a scrape while Redis is down still
answers, with the last values and `storefront_metrics_probe_up` 0) and a small cache (several
scrapers, or a scraper and a person, cost one computation). prometheus_client writes the
exposition format (escaping, histogram buckets, content type): a well-kept library for a format
with edge cases.

Each process has its own registry and counts; Prometheus adds up the instances. A web service
run as several worker processes on one port (WEB_CONCURRENCY) answers for all of them
(shared.telemetry.multiprocess).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.telemetry import multiprocess

log = logging.getLogger(__name__)

# Without this each series gets a `_created` twin holding its creation time: twice the series
# for a value no dashboard here uses.
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Sample:
    """One value of a metric family: `kind` is "counter" (a `_total` is added) or "gauge"."""

    name: str
    documentation: str
    kind: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


Refresh = Callable[[], Awaitable[Sequence[Sample]]]


@dataclass
class _Probe:
    name: str
    refresh: Refresh
    timeout: float
    max_age: float
    samples: Sequence[Sample] = ()
    at: float = float("-inf")  # time.monotonic() of the last refresh that answered
    up: bool = False
    task: asyncio.Task[Sequence[Sample]] | None = None


def _families(samples: Sequence[Sample]) -> Iterator[Metric]:
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
    for sample in samples:
        names = sorted(sample.labels)
        family = families.get(sample.name)
        if family is None:
            kind = CounterMetricFamily if sample.kind == "counter" else GaugeMetricFamily
            family = kind(sample.name, sample.documentation, labels=names)
            families[sample.name] = family
        family.add_metric([sample.labels[key] for key in names], sample.value)
    yield from families.values()


class _Readings(Collector):
    def __init__(self) -> None:
        self.reads: list[tuple[Sample, Callable[[], float]]] = []
        self.probes: list[_Probe] = []
        # Set when served from a thread (Metrics.listen): the loop that runs the probes.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.refresh: Callable[[], Coroutine[Any, Any, None]] | None = None
        # With several processes, the readings go through the shared files (multiprocess.py).
        self.probes_only = False

    def collect(self) -> Iterator[Metric]:
        if self.loop is not None and self.refresh is not None and self.probes:
            deadline = max(probe.timeout for probe in self.probes) + 0.5
            with contextlib.suppress(Exception):  # a stuck loop: the last values stand
                asyncio.run_coroutine_threadsafe(self.refresh(), self.loop).result(deadline)
        now = time.monotonic()
        reads = () if self.probes_only else self.reads
        samples = [Sample(s.name, s.documentation, s.kind, read(), s.labels) for s, read in reads]
        for probe in self.probes:
            samples += probe.samples
            labels = {"probe": probe.name}
            samples.append(Sample("storefront_metrics_probe_up", _PROBE_UP, "gauge", float(probe.up), labels))
            age = now - probe.at if probe.at > float("-inf") else -1.0
            samples.append(Sample("storefront_metrics_probe_age_seconds", _PROBE_AGE, "gauge", age, labels))
        yield from _families(samples)


_PROBE_UP = "1 if the probe's last scrape-time computation answered within its deadline."
_PROBE_AGE = "Seconds since the probe's values were computed (-1: never)."


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, shared: bool = False) -> None:
        """`shared`: one of a web service's worker processes (see shared.telemetry.multiprocess)."""
        self.registry = CollectorRegistry(auto_describe=False)
        self._readings = _Readings()
        self.registry.register(self._readings)
        self._server: WSGIServer | None = None
        self._shared_dir = multiprocess.directory() if shared else None
        self._shared = multiprocess.SharedReadings() if self._shared_dir else None
        self._readings.probes_only = self._shared is not None

    @property
    def shared(self) -> bool:
        """Whether this process is one of a service's several (WEB_CONCURRENCY > 1)."""
        return self._shared is not None

    def counter(self, name: str, documentation: str, read: Callable[[], float], **labels: str) -> None:
        """Publish a count kept elsewhere as `name` (a `_total` suffix is added), read at each
        scrape. Every exposure of one name takes the same label names."""
        self._add(Sample(name, documentation, "counter", 0.0, labels), read)

    # The name the components have used since metrics came in.
    expose = counter

    def gauge(self, name: str, documentation: str, read: Callable[[], float], **labels: str) -> None:
        """Publish a value kept elsewhere, read at each scrape."""
        self._add(Sample(name, documentation, "gauge", 0.0, labels), read)

    def histogram(
        self, name: str, documentation: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        return Histogram(name, documentation, list(labels), buckets=buckets, registry=self.registry)

    def probe(self, name: str, refresh: Refresh, *, timeout: float = 0.5, max_age: float = 2.0) -> None:
        """Values computed at scrape time by `refresh`, within `timeout` seconds, and kept for
        `max_age` seconds."""
        self._readings.probes.append(_Probe(name, refresh, timeout, max_age))

    def _add(self, sample: Sample, read: Callable[[], float]) -> None:
        same = [s for s, _ in self._readings.reads if s.name == sample.name]
        if same and set(same[0].labels) != set(sample.labels):
            raise ValueError(f"{sample.name} is exposed with labels {sorted(same[0].labels)}")
        self._readings.reads.append((sample, read))

    async def render(self) -> bytes:
        """The exposition, after refreshing the probes whose values are older than their age."""
        await self.refresh_probes()
        if self._shared_dir is None:
            return generate_latest(self.registry)
        self.sync()
        return multiprocess.render(self._shared_dir, self._readings)

    def sync(self) -> None:
        """Copy this process's readings to the files the service's processes share."""
        if self._shared is not None:
            self._shared.sync(
                (s.name, s.kind, s.documentation, dict(s.labels), read) for s, read in self._readings.reads
            )

    async def keep_synced(self) -> None:
        """`sync` every second, until cancelled (the app's lifespan runs it when shared)."""
        while True:
            try:
                self.sync()
            except Exception:  # a failing reading must not stop the others being shared
                log.exception("metrics: this process's readings could not be shared")
            await asyncio.sleep(multiprocess.SYNC_SECONDS)

    async def refresh_probes(self) -> None:
        await asyncio.gather(*(self._refresh(probe) for probe in self._readings.probes))

    def listen(self, host: str, port: int) -> None:
        """Serve GET /metrics on `host`:`port` from a thread (prometheus_client's own server),
        for a process that serves no HTTP (the relay, a worker). Probes still run on this
        process's event loop, which the scrape asks for them."""
        self._readings.loop = asyncio.get_running_loop()
        self._readings.refresh = self.refresh_probes
        try:
            server, _ = start_http_server(port, host, registry=self.registry)
        except OSError as exc:  # the port is taken (a second worker on one METRICS_PORT)
            log.error("metrics cannot listen on %s:%d (%s); running without them", host, port, exc)
            return
        self._server = server

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def _refresh(self, probe: _Probe) -> None:
        if time.monotonic() - probe.at < probe.max_age:
            return
        # One computation at a time: a scrape arriving while one runs waits for the same one.
        if probe.task is None or probe.task.done():
            probe.task = asyncio.ensure_future(probe.refresh())
        try:
            probe.samples = await asyncio.wait_for(asyncio.shield(probe.task), probe.timeout)
        except Exception as exc:  # Redis or the database down, or slow: the last values stand
            if probe.up:
                log.warning(
                    "metrics probe %s failed (%s: %s); serving its last values",
                    probe.name,
                    type(exc).__name__,
                    exc,
                )
            probe.up = False
            return
        probe.up, probe.at = True, time.monotonic()


# Methods become a label: any other (HTTP allows extension methods) is counted as OTHER, so a
# client cannot mint series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Latency buckets (seconds) around what these services answer in: sub-millisecond cache hits to
# the catalog's read timeout.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics(Metrics):
    """A web service's metrics: requests by method, route template and status, and their time."""

    def __init__(self) -> None:
        super().__init__(shared=multiprocess.directory() is not None)
        self._requests = Counter(
            "storefront_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._duration = self.histogram(
            "storefront_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            _BUCKETS,
            ["route"],
        )

        # Each label set's two series, found once: `labels()` takes a lock and builds its key
        # on every call. Bounded as the label values are (methods, route templates, statuses).
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "OTHER", route, status)
        series = self._series.get(key)
        if series is None:
            series = self._requests.labels(key[0], route, str(status)), self._duration.labels(route)
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
