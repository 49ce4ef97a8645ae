"""/metrics of a web service that runs several worker processes (WEB_CONCURRENCY > 1): one view of
them all, whichever process answers the scrape.

prometheus_client's multiprocess mode does it for the metrics it owns: with
PROMETHEUS_MULTIPROC_DIR set before any metric is made (the parent sets it before it starts the
workers), each process keeps its counters and histograms in files of its own in that folder,
and a scrape adds up every process's files. What the components keep as plain integers (read at
scrape time in one process: `Metrics.counter` and `gauge`) is copied there by each process once
a second (`SharedReadings.sync`): counters as increments (a worker that exits keeps its counts
in the total, as counters must), gauges as values summed over the processes alive. So another
process's readings are up to a second old. Probes are computed by the process that answers:
they read what every process shares (Redis, PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 1.0
_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def directory() -> str | None:
    """The folder a web service's processes share their metrics in; None when it runs alone.
    (A pid reused by a new process after a worker exited keeps that worker's gauges counted.)"""
    return os.environ.get(ENV) or None


def prepare(path: Path) -> None:
    """Called by the parent before it starts the workers: an empty folder (files of an earlier
    run would be added to this one's), named in the environment the workers inherit."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[ENV] = str(path)


class SharedReadings:
    """This process's readings (name, kind, documentation, labels, read), copied into the shared
    files by `sync`."""

    def __init__(self) -> None:
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def sync(self, readings: Iterable[tuple[str, str, str, dict[str, str], Callable[[], float]]]) -> None:
        for name, kind, documentation, labels, read in readings:
            names = sorted(labels)
            values = [labels[key] for key in names]
            value = float(read())
            if kind == "counter":
                counter = self._counters.get(name)
                if counter is None:
                    counter = self._counters[name] = Counter(name, documentation, names, registry=None)
                key = (name, tuple(sorted(labels.items())))
                # A reading lower than the last (a component made anew) counts from zero again.
                increase = value - self._last.get(key, 0.0)
                self._last[key] = value
                child = counter.labels(*values) if names else counter
                child.inc(increase if increase >= 0 else value)
            else:
                gauge = self._gauges.get(name)
                if gauge is None:
                    gauge = Gauge(name, documentation, names, registry=None, multiprocess_mode="livesum")
                    self._gauges[name] = gauge
                (gauge.labels(*values) if names else gauge).set(value)


def render(path: str, own: Collector) -> bytes:
    """Every process's metrics from `path`, and `own` (this process's probes)."""
    _forget_exited(path)
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    registry.register(own)
    return generate_latest(registry)


def _forget_exited(path: str) -> None:
    """Gauges of processes that are gone (a worker restarted) no longer count in the sums."""
    for file in os.listdir(path):
        match = _LIVE_FILE.match(file)
        if match and not _alive(int(match.group(1))):
            # Two processes answering scrapes at once may both remove the same files.
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(int(match.group(1)), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
