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
        "INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, occurred_at,"
        " trace_context) VALUES (:event_id, :event_type, :aggregate_id, :aggregate_version,"
        " CAST(:payload AS jsonb), :occurred_at, :trace_context)",
        list(rows),
    )
    # NOTIFY is transactional: delivered at commit, never for a rolled-back change.
    await db.execute(f"NOTIFY {OUTBOX_CHANNEL}")


# The relay's statements.
UNSENT = (
    "SELECT id, event_id::text, event_type, aggregate_id, aggregate_version, payload::text, trace_context"
    " FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1"
)
# Rows sent in a batch whose last entry got the id $2-$3; the relay's state moves with them.
MARK_SENT = (
    "WITH state AS (UPDATE relay_state SET last_ms = $2, last_seq = $3 WHERE stream = $4)"
    " UPDATE outbox SET sent_at = now(), stream = $4, stream_ms = $2, stream_seq = $3"
    " WHERE id = ANY($1::bigint[])"
)
# The relay's state of a stream, made on first use with a new epoch.
STATE = (
    "WITH made AS (INSERT INTO relay_state (stream, epoch) VALUES ($1, gen_random_uuid())"
    " ON CONFLICT (stream) DO NOTHING RETURNING epoch, last_ms, last_seq)"
    " SELECT epoch::text, last_ms, last_seq FROM made"
    " UNION ALL SELECT epoch::text, last_ms, last_seq FROM relay_state WHERE stream = $1"
)
# After a loss: the stream $1 holds entries up to $2-$3. Rows sent to it in batches that went
# beyond that become unsent, and the state forgets its last id (the next append writes the
# epoch afresh). Rows sent before rows named their stream (NULL) count as sent to every stream:
# sending one again is harmless, missing one is not.
HEAL = (
    "WITH state AS (UPDATE relay_state SET last_ms = NULL, last_seq = NULL WHERE stream = $1)"
    " UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL AND (stream = $1 OR stream IS NULL)"
    " AND (stream_ms, stream_seq) > ($2, $3)"
)
PRUNE = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
    " WHERE sent_at < now() - make_interval(hours => $1) LIMIT 10000)"
)
RESEND = "UPDATE outbox SET sent_at = NULL WHERE sent_at >= $1"
# The backlog, for metrics: rows waiting and how long the oldest has (by the partial index).
BACKLOG = (
    "SELECT count(*) AS waiting, COALESCE(extract(epoch FROM now() - min(occurred_at)), 0) AS oldest"
    " FROM outbox WHERE sent_at IS NULL"
)
