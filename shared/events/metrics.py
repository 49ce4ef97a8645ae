"""The event pipeline's metrics as Prometheus reads them: the stream and its consumer group,
computed at scrape time from Redis (a probe), and a consumer's own counts.

Names follow redis_exporter's `redis_stream_*` family (length, group lag, messages pending, per
consumer), under `storefront_stream_*`, so a reader of either recognises the other. Per-consumer
series are bounded: consumers holding events (a worker's name is its host and pid), at most
`MAX_CONSUMERS` of them, and `dead`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from shared.events.consumer import Consumer
from shared.events.status import StreamStatus
from shared.keys import DEAD_CONSUMER
from shared.telemetry.metrics import Metrics, Sample

MAX_CONSUMERS = 20
BATCH_SIZES = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
BATCH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def expose_stream(metrics: Metrics, *statuses: StreamStatus) -> None:
    """The stream's series, one set per partition (`stream` label; sum them for the total)."""

    async def refresh() -> Sequence[Sample]:
        samples: list[Sample] = []
        for status in statuses:
            samples += await _stream_samples(status)
        return samples

    metrics.probe("stream", refresh)


async def _stream_samples(status: StreamStatus) -> list[Sample]:
    summary = await status.summary()
    pending = await status.pending_by_consumer()
    holders = sorted((c for c, n in pending.items() if n and c != DEAD_CONSUMER), key=lambda c: -pending[c])
    labels = {"stream": status.stream, "group": status.group}
    samples = [
        Sample(
            "storefront_stream_length",
            "Entries in the event stream.",
            "gauge",
            summary.stream_length,
            {"stream": status.stream},
        ),
        Sample(
            "storefront_stream_group_lag",
            "Entries not yet delivered to the group (-1: unknown).",
            "gauge",
            -1 if summary.lag is None else summary.lag,
            labels,
        ),
        Sample(
            "storefront_stream_group_messages_pending",
            "Entries delivered to the group and not acknowledged (dead ones included).",
            "gauge",
            summary.pending,
            labels,
        ),
        Sample(
            "storefront_stream_dead_events",
            "Events parked as dead (pending at the consumer dead).",
            "gauge",
            summary.dead,
            labels,
        ),
        Sample(
            "storefront_stream_oldest_pending_age_seconds",
            "Age, by its id, of the oldest event pending at a consumer other than dead.",
            "gauge",
            await status.oldest_pending_age_seconds(),
            labels,
        ),
        Sample(
            "storefront_stream_live_workers",
            "Workers whose heartbeat key has not expired.",
            "gauge",
            summary.workers,
            labels,
        ),
    ]
    for consumer in [*holders[:MAX_CONSUMERS], DEAD_CONSUMER]:
        samples.append(
            Sample(
                "storefront_stream_group_consumer_messages_pending",
                "Entries pending at one consumer (those holding any, and dead).",
                "gauge",
                pending.get(consumer, 0),
                {**labels, "consumer": consumer},
            )
        )
    return samples


def expose_consumer(metrics: Metrics, *consumers: Consumer) -> None:
    """A worker's counts (summed over its consumers, one per partition), and histograms of its
    batches. The heartbeat is the first consumer's: it keeps the worker's."""
    first = consumers[0]
    for type_, outcome in [(t, o) for t in [*first.handles, "unknown"] for o in ("applied", "failed")]:
        metrics.counter(
            "storefront_worker_events",
            "Events this worker applied or failed, by event type and outcome.",
            functools.partial(_total_of_type, consumers, (type_, outcome)),
            type=type_,
            outcome=outcome,
        )
    metrics.counter(
        "storefront_worker_retries",
        "Pending events this worker claimed and tried again.",
        functools.partial(_total, consumers, lambda c: c.retried),
    )
    metrics.counter(
        "storefront_worker_parked",
        "Events this worker parked as dead.",
        functools.partial(_total, consumers, lambda c: c.parked),
    )
    for dependency in ("redis", "database"):
        metrics.counter(
            "storefront_worker_backoffs",
            "Times this worker backed off because a dependency could not be reached.",
            functools.partial(_total_backoffs, consumers, dependency),
            dependency=dependency,
        )
    metrics.gauge(
        "storefront_worker_heartbeat_age_seconds",
        "Seconds since this worker last refreshed its heartbeat (it expires after its TTL).",
        first.heartbeat_age,
    )
    sizes = metrics.histogram("storefront_worker_batch_size", "Events per batch read.", BATCH_SIZES)
    seconds = metrics.histogram(
        "storefront_worker_batch_duration_seconds", "Time to apply a batch read.", BATCH_SECONDS
    )

    def observe(size: int, elapsed: float) -> None:
        sizes.observe(size)
        seconds.observe(elapsed)

    for consumer in consumers:
        consumer.on_batch = observe


def _total(consumers: Sequence[Consumer], count: Callable[[Consumer], int]) -> float:
    return float(sum(count(consumer) for consumer in consumers))


def _total_of_type(consumers: Sequence[Consumer], key: tuple[str, str]) -> float:
    return float(sum(consumer.by_type[key] for consumer in consumers))


def _total_backoffs(consumers: Sequence[Consumer], dependency: str) -> float:
    return float(sum(consumer.backoffs_by[dependency] for consumer in consumers))
