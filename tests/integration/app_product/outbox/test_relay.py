"""The outbox relay on real PostgreSQL and Redis: order, late commits, outages, resends, leadership."""

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import asyncpg
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from app_product.app import open_catalog
from app_product.catalog import categories, products
from app_product.catalog.models import CategoryCreate, ProductCreate, ProductPatch
from app_product.outbox import relay as relay_module
from app_product.outbox.cli import resend
from app_product.outbox.relay import LOCK_KEY, Relay
from app_product.settings import CatalogSettings
from devtools.servers import throwaway_redis
from shared.config import load_settings
from shared.events import publish as appender_module
from shared.events.envelope import decode
from shared.http.versioning import ExpectedVersion
from shared.keys import keys_for
from shared.storage.lua import load
from tests.support.env import service_env
from tests.support.processes import wait_until
from tests.support.redis_mode import CLUSTER, client, test_keys
from tests.support.waits import until


def settings_for(database_url: str, redis_url: str, **extra: str) -> CatalogSettings:
    return load_settings(CatalogSettings, service_env(database_url, redis_url, **extra))


def connect(redis_url: str, settings: CatalogSettings) -> Redis:
    """A client of the Redis `settings` name: the suite's through the mode's client, a test's own
    single server (REDIS_CLUSTER=false) directly."""
    return client(redis_url) if settings.redis_cluster else Redis.from_url(redis_url)


async def stream_events(redis_url: str, settings: CatalogSettings):
    async with connect(redis_url, settings) as redis:
        entries = await redis.xrange(keys_for(settings).catalog_events())
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def unsent(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def make_changes(settings: CatalogSettings) -> None:
    async with open_catalog(settings) as catalog:
        category = await categories.create_category(
            catalog.db, CategoryCreate(name=f"C{uuid.uuid4().hex[:6]}")
        )
        product = await products.create_product(
            catalog,
            ProductCreate(
                sku=f"R-{uuid.uuid4().hex[:6]}", name="Relayed", price="2.00", category_id=category.id
            ),
        )
        await products.update_product(
            catalog, product.id, ProductPatch(price="3.00"), ExpectedVersion(1, from_header=False)
        )


async def test_events_reach_the_stream_in_order_readable_and_marked_sent(catalog_db, redis_server):
    settings = settings_for(catalog_db, redis_server.url)
    await make_changes(settings)
    relay = Relay(settings, client(redis_server.url))
    await relay.run(asyncio.Event(), burst=True)
    await relay.redis.aclose()
    entries = await stream_events(redis_server.url, settings)
    assert [(e["type"], e["version"]) for e in entries] == [
        ("category.created", "1"),
        ("product.created", "1"),
        ("product.updated", "2"),
    ]
    event = decode(entries[2]["event"])
    assert (event.type, event.version, str(event.id)) == ("product.updated", 2, entries[2]["event_id"])
    assert event.data is not None and event.data["price"] == "3.00"
    assert await unsent(catalog_db) == 0


async def test_a_row_committing_late_is_still_sent(catalog_db, redis_server):
    # A transaction takes an outbox id, then commits after a later id was already sent.
    settings = settings_for(catalog_db, redis_server.url)
    slow = await asyncpg.connect(catalog_db)
    try:
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute(
            "INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, occurred_at)"
            " VALUES ($1, 'category.created', 999, 1, '{}', now())",
            uuid.uuid4(),
        )
        await make_changes(settings)
        relay = Relay(settings, client(redis_server.url))
        await relay.run(asyncio.Event(), burst=True)
        assert relay.sent == 3
        await transaction.commit()
        await relay.run(asyncio.Event(), burst=True)
        await relay.redis.aclose()
    finally:
        await slow.close()
    entries = await stream_events(redis_server.url, settings)
    assert [e["aggregate_id"] for e in entries][-1] == "999"
    assert await unsent(catalog_db) == 0


async def test_redis_down_loses_nothing_and_is_reported_once(catalog_db, caplog):
    caplog.set_level(logging.WARNING, logger="app_product.relay")
    with throwaway_redis() as server:
        # A single server of its own, whatever the suite's mode: that is what goes down.
        settings = settings_for(catalog_db, server.url, RELAY_POLL_SECONDS="0.1", REDIS_CLUSTER="false")
        relay = Relay(settings, Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2))
        stop = asyncio.Event()
        server.stop()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay.run, stop)
            await make_changes(settings)
            assert await unsent(catalog_db) == 3
            server.start()
            with anyio.fail_after(20):  # the relay retries with backoff; wait until it got through
                while await unsent(catalog_db):  # noqa: ASYNC110 (another system's state: polled)
                    await anyio.sleep(0.05)
            stop.set()
        await relay.redis.aclose()
        assert len(await stream_events(server.url, settings)) == 3
    messages = [r.getMessage() for r in caplog.records]
    [down] = [m for m in messages if m.startswith("Redis (relay) cannot be reached")]
    assert re.match(r"Redis \(relay\) cannot be reached \(\w+Error: ", down), down  # and why
    assert sum(m.startswith("Redis (relay) is reachable again") for m in messages) == 1


async def test_resend_sends_again_what_was_sent_since_a_time(catalog_db, redis_server):
    settings = settings_for(catalog_db, redis_server.url)
    await make_changes(settings)
    relay = Relay(settings, client(redis_server.url))
    await relay.run(asyncio.Event(), burst=True)
    assert await resend(settings, datetime.now(UTC) - timedelta(minutes=5)) == 3
    await relay.run(asyncio.Event(), burst=True)
    await relay.redis.aclose()
    entries = await stream_events(redis_server.url, settings)
    assert len(entries) == 6 and [e["event_id"] for e in entries[:3]] == [e["event_id"] for e in entries[3:]]


async def test_prune_removes_only_rows_sent_before_the_retention(catalog_db, redis_server):
    settings = settings_for(catalog_db, redis_server.url)
    await make_changes(settings)
    conn = await asyncpg.connect(catalog_db)
    try:
        await conn.execute(
            "UPDATE outbox SET sent_at = now() - interval '100 hours' WHERE event_type LIKE 'category.%'"
        )
        await conn.execute("UPDATE outbox SET sent_at = now() WHERE event_type LIKE 'product.%'")
        assert await Relay(settings, client(redis_server.url)).prune(conn) == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 2
    finally:
        await conn.close()


def test_one_relay_is_active_and_a_standby_takes_over(catalog_db, redis_server, tmp_path):
    settings = settings_for(catalog_db, redis_server.url, RELAY_POLL_SECONDS="0.1")
    env = {
        **os.environ,
        **service_env(catalog_db, redis_server.url, REDIS_KEY_PREFIX=settings.redis_key_prefix),
    }
    logs = [tmp_path / "relay-1.log", tmp_path / "relay-2.log"]

    def start(log):
        command = [sys.executable, "-m", "app_product.relay"]
        with log.open("w") as stderr:  # the child keeps its own copy of the file
            return subprocess.Popen(command, env=env, stderr=stderr, stdout=subprocess.DEVNULL)

    def wait_for(predicate):
        wait_until(predicate, timeout=20.0)

    first = start(logs[0])
    wait_for(lambda: "relay active" in logs[0].read_text())
    second = start(logs[1])
    try:
        wait_for(lambda: "standing by" in logs[1].read_text())
        asyncio.run(make_changes(settings))
        wait_for(lambda: len(asyncio.run(stream_events(redis_server.url, settings))) == 3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: "took over" in logs[1].read_text())
        asyncio.run(make_changes(settings))
        wait_for(lambda: len(asyncio.run(stream_events(redis_server.url, settings))) == 6)
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=20)


async def test_a_malformed_append_appends_nothing(redis_server):
    """The batch script checks its arguments before its first XADD: no half batch."""
    keys = test_keys(f"t{uuid.uuid4().hex[:8]}")
    stream = keys.catalog_events()
    async with client(redis_server.url) as redis:
        append = load(redis, appender_module.__file__, "stream_append")
        keys = [stream, keys.stream_epoch()]
        [ok, _] = await append(keys=keys, args=["", "", 2, "type", "event", "a", "1", "b", "2"])
        assert ok == 1
        with pytest.raises(ResponseError, match="n values per entry"):
            await append(keys=keys, args=["", "", 2, "type", "event", "c", "3", "d"])  # one short
        assert [fields[b"type"] for _, fields in await redis.xrange(stream)] == [b"a", b"b"]
        await redis.delete(stream)


# Tests of the relay running as a service (not in burst mode) poll far less often than they wait:
# what they see within DEADLINE can only come from what they test (no pause between batches, a
# notification, the first idle round), never from a poll.
LONG_POLL = "30"
DEADLINE = 5.0


async def insert_unsent(database_url: str, count: int) -> None:
    """`count` unsent rows, as a change would record them but without its NOTIFY: nothing wakes
    the relay for these."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, occurred_at)"
            " VALUES ($1, 'category.created', $2, 1, '{}', now())",
            [(uuid.uuid4(), aggregate_id) for aggregate_id in range(1, count + 1)],
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def relay_running(relay: Relay):
    """`relay.run(stop)` as a task (not burst) until the block ends. On the way out it is told
    to stop, and must return within DEADLINE."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    else:
        stop.set()
        with anyio.fail_after(DEADLINE):
            await task
    finally:
        await relay.redis.aclose()


async def equals(value, expected) -> bool:
    """For `until`: whether the awaitable `value` gives `expected`."""
    return await value == expected


async def stream_length(redis_url: str, settings: CatalogSettings) -> int:
    async with connect(redis_url, settings) as redis:
        return int(await redis.xlen(keys_for(settings).catalog_events()))


async def test_a_backlog_larger_than_a_batch_is_sent_without_pausing_between_batches(
    catalog_db, redis_server
):
    settings = settings_for(catalog_db, redis_server.url, RELAY_BATCH_SIZE="2", RELAY_POLL_SECONDS=LONG_POLL)
    await insert_unsent(catalog_db, 7)  # four batches: 2, 2, 2, 1
    async with relay_running(Relay(settings, client(redis_server.url))):
        # A relay that paused after a full batch would wait a whole poll (30 s) before the next.
        await until(lambda: equals(stream_length(redis_server.url, settings), 7), seconds=DEADLINE)
        await until(lambda: equals(unsent(catalog_db), 0), seconds=DEADLINE)
    entries = await stream_events(redis_server.url, settings)
    assert [e["aggregate_id"] for e in entries] == [str(i) for i in range(1, 8)]  # in id order


async def relay_lock_waiters(conn: asyncpg.Connection) -> int:
    """Sessions of this database waiting for the relay lock (a standby relay)."""
    unsigned = LOCK_KEY & 0xFFFF_FFFF_FFFF_FFFF  # a bigint key is shown as two 32-bit halves
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1",
            unsigned >> 32,
            unsigned & 0xFFFF_FFFF,
        )
    )


async def test_a_standby_relay_stops_when_told_without_sending(catalog_db, redis_server):
    settings = settings_for(catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL)
    await insert_unsent(catalog_db, 1)
    holder = await asyncpg.connect(catalog_db)  # another relay, as far as this one can tell
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        relay = Relay(settings, client(redis_server.url))
        stop = asyncio.Event()
        standby = asyncio.create_task(relay.run(stop))
        try:
            await until(lambda: equals(relay_lock_waiters(holder), 1), seconds=DEADLINE)
            assert relay.active is False  # for its metric: standing by
            stop.set()
            done, _ = await asyncio.wait({standby}, timeout=DEADLINE)
            assert standby in done, "a stopped standby relay kept waiting for the lock"
            await standby  # returned, not raised
        finally:
            standby.cancel()
            with contextlib.suppress(BaseException):
                await standby
            await relay.redis.aclose()
        # Its wait for the lock went with it: the lock is not taken over behind our back.
        await until(lambda: equals(relay_lock_waiters(holder), 0), seconds=DEADLINE)
    finally:
        await holder.close()
    assert relay.sent == 0 and relay.active is False
    assert await stream_length(redis_server.url, settings) == 0
    assert await unsent(catalog_db) == 1
    assert await relay_states(catalog_db) == []  # it never acted as the relay: no state made


async def relay_states(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [row["stream"] for row in await conn.fetch("SELECT stream FROM relay_state")]
    finally:
        await conn.close()


async def outbox_ids(database_url: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        return [row["id"] for row in await conn.fetch("SELECT id FROM outbox ORDER BY id")]
    finally:
        await conn.close()


async def test_a_running_relay_prunes_old_rows_and_trims_what_every_group_acknowledged(
    catalog_db, redis_server
):
    settings = settings_for(
        catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL, STREAM_RETENTION_SECONDS="0"
    )
    stream = keys_for(settings).catalog_events()
    await make_changes(settings)
    sender = Relay(settings, client(redis_server.url))
    await sender.run(asyncio.Event(), burst=True)  # a burst neither prunes nor trims
    await sender.redis.aclose()
    async with client(redis_server.url) as redis:
        # A consumer group that has read and acknowledged every entry.
        await redis.xgroup_create(stream, "readers", id="0")
        [[_, read]] = await redis.xreadgroup("readers", "reader-1", {stream: ">"})
        assert await redis.xack(stream, "readers", *(entry_id for entry_id, _ in read)) == 3
        assert await redis.xlen(stream) == 3
    conn = await asyncpg.connect(catalog_db)
    try:
        # The category's event was sent long ago; the product's two recently.
        await conn.execute(
            "UPDATE outbox SET sent_at = now() - interval '100 hours' WHERE event_type LIKE 'category.%'"
        )
        recent = [
            row["id"] for row in await conn.fetch("SELECT id FROM outbox WHERE event_type LIKE 'product.%'")
        ]
    finally:
        await conn.close()
    async with relay_running(Relay(settings, client(redis_server.url))):
        # Both happen on the relay's first idle round, long before its next poll.
        await until(lambda: equals(outbox_ids(catalog_db), sorted(recent)), seconds=DEADLINE)
        await until(lambda: equals(stream_length(redis_server.url, settings), 0), seconds=DEADLINE)


class Rollback(Exception):
    pass


async def test_the_relay_is_woken_when_a_change_commits(catalog_db, redis_server, monkeypatch):
    settings = settings_for(catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL)
    idle = asyncio.Event()  # set each time the relay starts waiting for a wake-up (or its poll)
    waiting = relay_module._wait_any

    async def idling(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
        idle.set()
        await waiting(stop, wake, seconds)

    monkeypatch.setattr(relay_module, "_wait_any", idling)
    async with (
        relay_running(Relay(settings, client(redis_server.url))),
        open_catalog(settings) as catalog,
    ):
        # Idle, listening, and 30 s from its next poll: a change committed from now on is sent
        # within DEADLINE only if its commit wakes the relay.
        with anyio.fail_after(DEADLINE):
            await idle.wait()
        with pytest.raises(Rollback):
            async with catalog.db.transaction():
                await categories.create_category(
                    catalog.db, CategoryCreate(name=f"Gone{uuid.uuid4().hex[:6]}")
                )
                raise Rollback  # neither its row nor its notification survive
        kept = await categories.create_category(
            catalog.db, CategoryCreate(name=f"Kept{uuid.uuid4().hex[:6]}")
        )
        await until(lambda: equals(stream_length(redis_server.url, settings), 1), seconds=DEADLINE)
    [entry] = await stream_events(redis_server.url, settings)
    assert (entry["type"], entry["aggregate_id"]) == ("category.created", str(kept.id))
    assert await unsent(catalog_db) == 0


async def test_the_relay_counts_the_events_and_batches_it_sends(catalog_db, redis_server):
    settings = settings_for(catalog_db, redis_server.url, RELAY_BATCH_SIZE="2")
    relay = Relay(settings, client(redis_server.url))
    batches: list[tuple[int, float]] = []
    relay.on_batch = lambda size, seconds: batches.append((size, seconds))  # as the metrics do
    started = time.perf_counter()
    await insert_unsent(catalog_db, 5)
    await relay.run(asyncio.Event(), burst=True)
    await insert_unsent(catalog_db, 1)
    await relay.run(asyncio.Event(), burst=True)  # the counts go on: they are the process's
    took = time.perf_counter() - started
    await relay.redis.aclose()
    assert [size for size, _ in batches] == [2, 2, 1, 1]
    assert all(0 < seconds < took for _, seconds in batches), batches
    assert (relay.sent, relay.batches) == (6, 4)


async def test_a_standby_relay_takes_over_in_process_when_the_active_one_stops(
    catalog_db, redis_server, caplog
):
    caplog.set_level(logging.INFO, logger="app_product.relay")
    settings = settings_for(catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL)
    first = Relay(settings, client(redis_server.url))
    second = Relay(settings, client(redis_server.url))
    assert (first.active, second.active) == (False, False)
    watcher = await asyncpg.connect(catalog_db)
    stop_first = asyncio.Event()
    leading = asyncio.create_task(first.run(stop_first))
    try:
        await until(lambda: is_active(first), seconds=DEADLINE)
        async with relay_running(second):
            await until(lambda: equals(relay_lock_waiters(watcher), 1), seconds=DEADLINE)
            assert (first.active, second.active) == (True, False)
            stop_first.set()
            with anyio.fail_after(DEADLINE):
                await leading
            assert first.active is False
            await until(lambda: is_active(second), seconds=DEADLINE)
            await make_changes(settings)  # the relay that took over sends them
            await until(lambda: equals(stream_length(redis_server.url, settings), 3), seconds=DEADLINE)
    finally:
        leading.cancel()
        with contextlib.suppress(BaseException):
            await leading
        await first.redis.aclose()
        await watcher.close()
    assert (first.sent, second.sent) == (0, 3)
    assert [r.getMessage() for r in caplog.records if r.name == "app_product.relay"] == [
        "relay active",
        "another relay is active; standing by",
        "relay active (took over)",
    ]


async def is_active(relay: Relay) -> bool:
    return relay.active


async def test_a_relay_dying_while_its_update_waits_on_a_row_lock_frees_the_relay_lock(
    catalog_db, redis_server, monkeypatch
):
    """Its session checks that the client is still there every 2 s: without that, PostgreSQL
    would keep the dead relay's session, and the relay lock, until the UPDATE got its row."""
    settings = settings_for(catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL)
    connections: list[asyncpg.Connection] = []
    connect = asyncpg.connect

    async def connect_and_keep(*args, **kwargs):
        connections.append(await connect(*args, **kwargs))
        return connections[-1]

    await insert_unsent(catalog_db, 1)
    blocker, watcher = await asyncpg.connect(catalog_db), await asyncpg.connect(catalog_db)
    relay, stop = Relay(settings, client(redis_server.url)), asyncio.Event()
    task = None
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT id FROM outbox FOR UPDATE")  # the row the relay will mark
        monkeypatch.setattr(relay_module.asyncpg, "connect", connect_and_keep)
        task = asyncio.create_task(relay.run(stop))
        await until(lambda: equals(stream_length(redis_server.url, settings), 1), seconds=DEADLINE)
        await until(lambda: equals(updates_waiting_on_a_lock(watcher), 1), seconds=DEADLINE)
        monkeypatch.undo()
        # The relay process dies: its socket closes, its statement still waiting on the server.
        stop.set()
        [relay_connection] = connections
        relay_connection.terminate()
        with anyio.fail_after(DEADLINE):
            await task
        await until(lambda: lock_is_free(watcher), seconds=2 * DEADLINE)
        await transaction.rollback()
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await relay.redis.aclose()
        await blocker.close()
        await watcher.close()


async def updates_waiting_on_a_lock(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE '%UPDATE outbox SET sent_at = now()%'"
        )
    )


async def lock_is_free(conn: asyncpg.Connection) -> bool:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return False
    await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return True


async def read_and_acknowledge_everything(redis_url: str, stream: str, group: str) -> None:
    async with client(redis_url) as redis:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: made by an earlier call
            await redis.xgroup_create(stream, group, id="0")
        reply = await redis.xreadgroup(group, "reader-1", {stream: ">"})
        read = [entry_id for _, entries in reply for entry_id, _ in entries]
        if read:
            await redis.xack(stream, group, *read)


async def test_what_the_relay_trims_adds_up_over_its_rounds(catalog_db, redis_server):
    settings = settings_for(
        catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL, STREAM_RETENTION_SECONDS="0"
    )
    stream = keys_for(settings).catalog_events()
    redis = client(redis_server.url)
    relay = Relay(settings, redis)
    try:
        for round_ in (1, 2):
            await make_changes(settings)
            await relay.run(asyncio.Event(), burst=True)  # a burst neither prunes nor trims
            await read_and_acknowledge_everything(redis_server.url, stream, "readers")
            stop = asyncio.Event()
            task = asyncio.create_task(relay.run(stop))  # its first idle round trims
            try:
                await until(lambda: equals(stream_length(redis_server.url, settings), 0), seconds=DEADLINE)
            finally:
                stop.set()
                with anyio.fail_after(DEADLINE):
                    await task
            assert relay.trimmed == 3 * round_
    finally:
        await redis.aclose()


async def test_a_relay_refused_its_trim_goes_on_sending(catalog_db, redis_server):
    """Trimming waits for a later round when Redis refuses it (here an ACL without XTRIM)."""
    settings = settings_for(
        catalog_db, redis_server.url, RELAY_POLL_SECONDS=LONG_POLL, STREAM_RETENTION_SECONDS="0"
    )
    stream = keys_for(settings).catalog_events()
    user, password = f"relay-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # Each node of a cluster has an ACL of its own: the user is made (and deleted) on every one.
    every_node = {"target_nodes": RedisCluster.ALL_NODES} if CLUSTER else {}
    async with client(redis_server.url) as admin:
        await admin.execute_command(
            "ACL SETUSER", user, "on", f">{password}", "~*", "+@all", "-xtrim", **every_node
        )
        try:
            await make_changes(settings)
            sender = Relay(settings, client(redis_server.url))
            await sender.run(asyncio.Event(), burst=True)
            await sender.redis.aclose()
            await read_and_acknowledge_everything(redis_server.url, stream, "readers")
            url = redis_server.url.replace("redis://", f"redis://{user}:{password}@")
            relay = Relay(settings, client(url))
            async with relay_running(relay):
                await until(lambda: is_active(relay), seconds=DEADLINE)
                await make_changes(settings)  # sent after the first idle round tried to trim
                await until(lambda: equals(stream_length(redis_server.url, settings), 6), seconds=DEADLINE)
            assert relay.trimmed == 0
        finally:
            await admin.execute_command("ACL DELUSER", user, **every_node)
