"""Noticing that Redis lost events the relay sent, and sending them again, without an operator.

Redis may come back without its data (restarted with none, a volume lost) or with less of it
(failed over to a replica that lagged). The relay keeps, in the catalog's database and beside
the stream, what it needs to tell (`relay_state`): an epoch it writes next to the stream (lost
with the data) and the id of the last entry it appended (the stream must still hold it). Every
append checks both in the same script that appends (`shared.events.publish`), so no new entry
can land on top of a loss and hide it; an idle relay checks each poll. On a loss, every row
sent in a batch that went beyond what the stream still holds is marked unsent, in one
statement, and the relay sends them again: handlers ignore what was already applied, so sending
too much is safe, sending too little is not. With the stream gone entirely, that is every row
still in the outbox (OUTBOX_RETENTION_HOURS). Dead events' records were lost too; their events
are sent again with the rest, retried, and parked again if they still fail.
"""

from __future__ import annotations

import logging

import asyncpg

from app_product.outbox import repo
from shared.events.publish import Guard

log = logging.getLogger("app_product.relay")


def _id(ms: int | None, seq: int | None) -> str:
    return "" if ms is None or seq is None else f"{ms}-{seq}"


def _parts(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


class StreamGuard:
    """The relay's knowledge of the stream: loaded once it leads, moved with every batch."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.guard = Guard("", "")
        self.resent = 0  # events marked to send again after losses, by this process

    async def load(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(repo.STATE, self.stream)
        self.guard = Guard(row["epoch"], _id(row["last_ms"], row["last_seq"]))

    async def mark_sent(self, conn: asyncpg.Connection, ids: list[int], last_id: str) -> None:
        """Rows `ids` went in a batch whose last entry is `last_id`."""
        ms, seq = _parts(last_id)
        await conn.execute(repo.MARK_SENT, ids, ms, seq, self.stream)
        self.guard = Guard(self.guard.epoch, last_id)

    async def heal(self, conn: asyncpg.Connection, holds_up_to: str) -> int:
        """The stream holds entries up to `holds_up_to` only: mark what went beyond unsent."""
        ms, seq = _parts(holds_up_to)
        status = await conn.execute(repo.HEAL, self.stream, ms, seq)
        count = int(status.split()[-1])
        log.warning(
            "Redis lost catalog events: the stream %s holds what the relay sent up to %s only"
            " (0-0: its epoch is gone), but the relay had appended up to %s; %d event(s) marked"
            " to be sent again",
            self.stream,
            holds_up_to,
            self.guard.last_id,
            count,
        )
        self.resent += count
        self.guard = Guard(self.guard.epoch, "")
        return count
