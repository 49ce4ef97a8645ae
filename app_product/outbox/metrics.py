"""The relay's metrics: what it sent and how, and the outbox's backlog, read from PostgreSQL at
scrape time (on a connection of its own, never the relay's)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from app_product.outbox import repo
from app_product.outbox.relay import Relay
from shared.telemetry.metrics import Metrics, Sample

BATCH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def expose_relay(metrics: Metrics, relay: Relay, pool: asyncpg.Pool) -> None:
    metrics.counter(
        "storefront_outbox_sent_rows", "Outbox rows this relay sent to the stream.", lambda: relay.sent
    )
    metrics.counter("storefront_relay_batches", "Batches this relay sent.", lambda: relay.batches)
    metrics.counter(
        "storefront_relay_resent_events",
        "Events this relay marked to send again after Redis lost what it had sent.",
        lambda: relay.resent,
    )
    metrics.counter(
        "storefront_stream_trimmed_entries",
        "Stream entries this relay trimmed (read and acknowledged by every group).",
        lambda: relay.trimmed,
    )
    metrics.gauge(
        "storefront_relay_active",
        "1 while this relay holds the relay lock, 0 while it stands by.",
        lambda: relay.active,
    )
    seconds = metrics.histogram(
        "storefront_relay_batch_duration_seconds", "Time to read, append and mark one batch.", BATCH_SECONDS
    )
    relay.on_batch = lambda size, elapsed: seconds.observe(elapsed)

    async def backlog() -> Sequence[Sample]:
        row = await pool.fetchrow(repo.BACKLOG)
        return [
            Sample(
                "storefront_outbox_unsent_rows", "Outbox rows waiting to be sent.", "gauge", row["waiting"]
            ),
            Sample(
                "storefront_outbox_oldest_unsent_age_seconds",
                "How long the oldest unsent outbox row has waited (0 when none does).",
                "gauge",
                float(row["oldest"]),
            ),
        ]

    metrics.probe("outbox", backlog)
