"""Dead letters on a real Redis: parking (once, with its record, even when the payload is gone),
and what operators do with dead events (list, count, show, replay, discard)."""

import logging
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis

from shared.events.dead_letters import DeadLetters, Parked
from shared.keys import CART_GROUP, DEAD_CONSUMER, Keys
from tests.support.redis_monitor import commands_sent, in_one_transaction

ENTRY = {"type": "product.updated", "aggregate_id": "7", "version": "2", "event_id": "e-1", "event": "{}"}


async def failed_at(redis: Redis, keys: Keys, consumer: str, error: str = "ValueError: bad") -> str:
    """An event delivered to `consumer`, which failed on it (its error recorded); its id."""
    stream = keys.catalog_events()
    message_id = (await redis.xadd(stream, ENTRY)).decode()
    if not await redis.exists(stream) or not await redis.xinfo_groups(stream):
        await redis.xgroup_create(stream, CART_GROUP, id="0")
    await redis.xreadgroup(CART_GROUP, consumer, {stream: ">"})
    await redis.hset(keys.event_errors(), message_id, error)
    return message_id


async def held_by(redis: Redis, keys: Keys, consumer: str) -> list[str]:
    entries = await redis.xpending_range(
        keys.catalog_events(), CART_GROUP, "-", "+", 100, consumername=consumer
    )
    return [entry["message_id"].decode() for entry in entries]


async def test_parking_moves_the_event_to_dead_with_its_record_and_says_so(redis, keys, caplog):
    caplog.set_level(logging.INFO, logger="shared.events.dead_letters")
    dead = DeadLetters(redis, keys, CART_GROUP)
    message_id = await failed_at(redis, keys, "w-1")
    before = datetime.now().astimezone()
    assert await dead.park(message_id.encode(), "w-1", 5, 0) == Parked.PARKED
    record = await dead.record(message_id)
    assert {name: record[name] for name in ENTRY} == ENTRY  # the entry's own fields, for a replay
    assert (record["id"], record["error"], record["deliveries"]) == (message_id, "ValueError: bad", "5")
    parked_at = datetime.fromisoformat(record["parked_at"])  # with its time zone
    assert parked_at.utcoffset() == timedelta(0) and before - timedelta(seconds=1) <= parked_at
    assert await held_by(redis, keys, DEAD_CONSUMER) == [message_id]
    assert await held_by(redis, keys, "w-1") == []
    assert not await redis.hexists(keys.event_errors(), message_id)
    [said] = [r for r in caplog.records if r.name == "shared.events.dead_letters"]
    assert said.levelno == logging.ERROR and message_id in said.getMessage()
    assert "ValueError: bad" in said.getMessage()


async def test_an_event_no_longer_held_as_listed_is_not_parked_and_nothing_is_said(redis, keys, caplog):
    caplog.set_level(logging.INFO, logger="shared.events.dead_letters")
    dead = DeadLetters(redis, keys, CART_GROUP)
    message_id = await failed_at(redis, keys, "w-1")
    assert await dead.park(message_id.encode(), "w-2", 5, 0) == Parked.NOT_PARKED  # w-1 holds it
    assert await dead.park(message_id.encode(), "w-1", 5, 60_000) == Parked.NOT_PARKED  # not idle a minute
    assert await held_by(redis, keys, "w-1") == [message_id]
    assert await dead.record(message_id) == {"id": message_id}
    assert not [r for r in caplog.records if r.name == "shared.events.dead_letters"]


async def test_an_event_whose_payload_was_trimmed_is_recorded_acknowledged_and_reported_critical(
    redis, keys, caplog
):
    caplog.set_level(logging.INFO, logger="shared.events.dead_letters")
    dead = DeadLetters(redis, keys, CART_GROUP)
    message_id = await failed_at(redis, keys, "w-1")
    await redis.xdel(keys.catalog_events(), message_id)
    assert await dead.park(message_id.encode(), "w-1", 2, 0) == Parked.PAYLOAD_GONE
    record = await dead.record(message_id)
    assert (record["type"], record["event"], record["deliveries"]) == ("?", "", "2")
    assert "trimmed" in record["error"] and "ValueError: bad" in record["error"]
    assert (await redis.xpending(keys.catalog_events(), CART_GROUP))["pending"] == 0  # acknowledged
    [said] = [r for r in caplog.records if r.name == "shared.events.dead_letters"]
    assert said.levelno == logging.CRITICAL and message_id in said.getMessage()
    assert keys.dead_event(message_id) in said.getMessage()  # where its record is
    # Nothing left to replay.
    with pytest.raises(LookupError, match=message_id):
        await dead.replay(message_id)


async def test_operators_see_only_dead_events_oldest_first(redis, keys):
    dead = DeadLetters(redis, keys, CART_GROUP)
    assert (await dead.ids(), await dead.count(), await dead.list()) == ([], 0, [])  # no stream yet
    first, second, live = [await failed_at(redis, keys, "w-1") for _ in range(3)]
    await redis.xgroup_create(keys.catalog_events(), "other", id="0")
    await redis.xreadgroup("other", "reader", {keys.catalog_events(): ">"})  # pending elsewhere
    for message_id in (second, first):
        assert await dead.park(message_id.encode(), "w-1", 5, 0) == Parked.PARKED
    assert await dead.ids() == [first, second]
    assert await dead.ids(limit=1) == [first]
    assert await dead.count() == 2
    assert [record["id"] for record in await dead.list()] == [first, second]
    assert await held_by(redis, keys, "w-1") == [live]


async def test_a_stream_without_the_group_has_no_dead_events(redis, keys):
    await redis.xadd(keys.catalog_events(), ENTRY)
    await redis.xgroup_create(keys.catalog_events(), "other", id="0")
    dead = DeadLetters(redis, keys, CART_GROUP)
    assert (await dead.ids(), await dead.count()) == ([], 0)


async def test_show_gives_the_entry_and_the_dead_record_each_when_there_is_one(redis, keys):
    dead = DeadLetters(redis, keys, CART_GROUP)
    parked, trimmed, alive = [await failed_at(redis, keys, "w-1") for _ in range(3)]
    for message_id in (parked, trimmed):
        await dead.park(message_id.encode(), "w-1", 5, 0)
    await redis.xdel(keys.catalog_events(), trimmed)  # trimmed since it was parked
    shown = await dead.show(parked)
    assert (shown["id"], shown["entry"]) == (parked, ENTRY)
    assert shown["dead"] == await dead.record(parked) and shown["dead"]["deliveries"] == "5"
    shown = await dead.show(trimmed)  # an entry follows it in the stream: not that one
    assert (shown["id"], shown["entry"], shown["dead"]["event"]) == (trimmed, None, "{}")
    assert await dead.show(alive) == {"id": alive, "entry": ENTRY, "dead": None}


async def test_a_replay_appends_the_entry_again_and_drops_the_dead_one(redis, keys):
    dead = DeadLetters(redis, keys, CART_GROUP)
    message_id = await failed_at(redis, keys, "w-1")
    await dead.park(message_id.encode(), "w-1", 5, 0)
    new_id = await dead.replay(message_id)
    [(entry_id, fields)] = await redis.xrange(keys.catalog_events(), "(" + message_id, "+")
    assert entry_id.decode() == new_id
    assert {k.decode(): v.decode() for k, v in fields.items()} == {**ENTRY, "replay_of": message_id}
    assert await dead.ids() == [] and not await redis.exists(keys.dead_event(message_id))
    assert (await redis.xpending(keys.catalog_events(), CART_GROUP))["pending"] == 0
    with pytest.raises(LookupError, match=message_id):  # not dead any more
        await dead.replay(message_id)


async def test_discard_drops_a_dead_event_and_refuses_any_other(redis, keys, stream_master):
    dead = DeadLetters(redis, keys, CART_GROUP)
    message_id, alive = [await failed_at(redis, keys, "w-1") for _ in range(2)]
    await dead.park(message_id.encode(), "w-1", 5, 0)
    with pytest.raises(LookupError, match=alive):
        await dead.discard(alive)
    sent = await commands_sent(stream_master, lambda: dead.discard(message_id))
    # In one MULTI: no acknowledged event keeps a record that reads as dead, nor the reverse.
    assert in_one_transaction(
        sent, f"XACK {keys.catalog_events()} {CART_GROUP} {message_id}", f"DEL {keys.dead_event(message_id)}"
    )
    assert await dead.ids() == [] and not await redis.exists(keys.dead_event(message_id))
    assert await held_by(redis, keys, "w-1") == [alive]
    assert len(await redis.xrange(keys.catalog_events())) == 2  # dropped, not deleted
