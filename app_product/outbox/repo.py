"""Every SQL statement of the outbox: recording events (in the change's transaction), and what
the relay runs on its own connection (asyncpg, `$n` binds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from databases import Database

# NOTIFY'd by every change at commit: wakes the relay.
OUTBOX_CHANNEL = "storefront_outbox"


async def insert_outbox(db: Database, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add event rows (in the caller's transaction) and wake the relay when it commits."""
    await db.execute_many(
        "INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, occurred_at)"
        " VALUES (:event_id, :event_type, :aggregate_id, :aggregate_version, CAST(:payload AS jsonb),"
        " :occurred_at)",
        list(rows),
    )
    # NOTIFY is transactional: delivered at commit, never for a rolled-back change.
    await db.execute(f"NOTIFY {OUTBOX_CHANNEL}")


# The relay's statements.
UNSENT = (
    "SELECT id, event_id::text, event_type, aggregate_id, aggregate_version, payload::text"
    " FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1"
)
MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
PRUNE = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
    " WHERE sent_at < now() - make_interval(hours => $1) LIMIT 10000)"
)
RESEND = "UPDATE outbox SET sent_at = NULL WHERE sent_at >= $1"
