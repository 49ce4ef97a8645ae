"""Appending to the event stream: a single entry, unguarded (the cart's `POST /internal/events`).
The relay's guarded batches are tested with the relay (tests/integration/app_product/outbox)."""

import uuid

from shared.events.publish import StreamAppender
from tests.support.redis_mode import client, test_keys


async def test_append_one_adds_the_entry_as_given_and_answers_its_stream_id(redis_server):
    keys = test_keys(f"t{uuid.uuid4().hex[:8]}")
    stream, epoch = keys.catalog_events(), keys.stream_epoch()
    async with client(redis_server.url) as redis:
        appender = StreamAppender(redis, stream, epoch)
        first = await appender.append_one({"type": "product.updated", "version": 2})
        second = await appender.append_one({"type": "product.deleted", "version": 3})
        assert [(entry_id.decode(), fields) for entry_id, fields in await redis.xrange(stream)] == [
            (first, {b"type": b"product.updated", b"version": b"2"}),
            (second, {b"type": b"product.deleted", b"version": b"3"}),
        ]
        # Unguarded: the relay's epoch is neither checked nor written.
        assert not await redis.exists(epoch)
        await redis.delete(stream)
