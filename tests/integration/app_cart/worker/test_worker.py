"""Catalog events through the relay and the cart's worker, on fresh databases and a real Redis."""

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import anyio
import asyncpg
import msgspec
import pytest

from app_cart.adapters.catalog_client import catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.run import TOMBSTONE_SECONDS
from app_cart.worker.run import cart_worker as Worker
from app_product.app import open_catalog
from app_product.catalog import products
from app_product.catalog.models import ProductCreate, ProductPatch
from app_product.outbox.relay import Relay
from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.events.envelope import encode, new_event, stream_fields
from shared.http.versioning import ExpectedVersion
from shared.keys import CART_GROUP as GROUP
from shared.keys import keys_for
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import create_database
from shared.storage.redis_conn import create_redis
from tests.support.env import service_env
from tests.support.redis_mode import CLUSTER, mode_env
from tests.support.waits import until


@pytest.fixture
async def system(postgres, redis_server):
    """Fresh catalog and cart databases, sharing one Redis prefix; yields helpers."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    catalog_url, cart_url = (postgres.url(f"w_{uuid.uuid4().hex[:10]}") for _ in range(2))
    await migrate(catalog_url, SQL_ROOT / "catalog")
    await migrate(cart_url, SQL_ROOT / "cart")
    catalog_settings = load_settings(
        CatalogSettings, service_env(catalog_url, redis_server.url, REDIS_KEY_PREFIX=prefix)
    )
    cart_settings = load_settings(
        CartSettings, service_env(cart_url, redis_server.url, REDIS_KEY_PREFIX=prefix)
    )
    redis = create_redis(cart_settings, blocking_seconds=cart_settings.worker_block_seconds)
    cart_db = create_database(cart_settings)
    await cart_db.connect()
    # The cart's catalog client: only events that carry no state of their own read it.
    client = catalog_client(cart_settings, redis)

    class System:
        keys = keys_for(cart_settings)
        db = cart_db
        settings = cart_settings
        product_client = client
        worker = Worker(cart_settings, cart_db, redis, "test-worker", client)

        @staticmethod
        async def relay() -> None:
            await Relay(catalog_settings, redis).run(asyncio.Event(), burst=True)

        @staticmethod
        async def work() -> None:
            await System.worker.run(asyncio.Event(), burst=True)

        @staticmethod
        def catalog():
            return open_catalog(catalog_settings)

        @staticmethod
        async def cart_item(product_id: int) -> dict:
            row = await cart_db.fetch_one(
                "SELECT current_price, is_available, product_version, product_name, price_when_added"
                " FROM cart_items WHERE product_id = :id",
                {"id": product_id},
            )
            return dict(row._mapping)

    yield System
    await client.aclose()
    await cart_db.disconnect()
    await redis.aclose()


async def put_in_a_cart(system, product) -> None:
    db = system.db
    cart_id = await db.fetch_val(
        "INSERT INTO carts (user_id) VALUES (:u) RETURNING id", {"u": f"u-{product.id}"}
    )
    await db.execute(
        "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, category_name,"
        " price_when_added, current_price, is_available, product_version)"
        " VALUES (:cart, :product, 1, :name, NULL, :price, :price, true, :version)",
        {"cart": cart_id, "product": product.id, "name": product.name, "price": product.price, "version": 1},
    )


async def a_repriced_product_in_a_cart(system, sku: str, price: str, new_price: str):
    """A product put in a cart at `price`, then repriced to `new_price`; its events relayed."""
    async with system.catalog() as catalog:
        product = await products.create_product(
            catalog, ProductCreate(sku=sku, name=sku, price=price, stock=3)
        )
        await put_in_a_cart(system, product)
        await products.update_product(
            catalog, product.id, ProductPatch(price=new_price), ExpectedVersion(1, False)
        )
    await system.relay()
    return product


async def test_a_price_change_reaches_the_carts_snapshot(system):
    product = await a_repriced_product_in_a_cart(system, "W-1", "5.00", "7.25")
    await system.work()
    item = await system.cart_item(product.id)
    assert (str(item["current_price"]), str(item["price_when_added"]), item["product_version"]) == (
        "7.25",
        "5.00",
        2,
    )
    assert system.worker.failed == 0
    assert (await system.worker.redis.xpending(system.keys.catalog_events(), GROUP))["pending"] == 0


async def test_duplicates_and_older_events_change_nothing(system):
    async with system.catalog() as catalog:
        product = await products.create_product(
            catalog, ProductCreate(sku="W-2", name="Widget", price="5.00", stock=3)
        )
        await put_in_a_cart(system, product)
        await products.update_product(
            catalog, product.id, ProductPatch(price="8.00"), ExpectedVersion(1, False)
        )
        await products.update_product(
            catalog, product.id, ProductPatch(name="Widget 2"), ExpectedVersion(2, False)
        )
    await system.relay()
    await system.work()
    after = await system.cart_item(product.id)
    assert (after["product_name"], after["product_version"]) == ("Widget 2", 3)
    # Replay the whole stream: every event again, older ones after newer ones.
    redis, stream = system.worker.redis, system.keys.catalog_events()
    for _, fields in await redis.xrange(stream):
        await redis.xadd(stream, fields)
    await system.work()
    assert await system.cart_item(product.id) == after
    assert system.worker.failed == 0


async def test_a_deleted_or_retired_product_becomes_unavailable(system):
    async with system.catalog() as catalog:
        retired = await products.create_product(
            catalog, ProductCreate(sku="W-3", name="Old", price="1.00", stock=3)
        )
        deleted = await products.create_product(
            catalog, ProductCreate(sku="W-4", name="Gone", price="1.00", stock=3)
        )
        for product in (retired, deleted):
            await put_in_a_cart(system, product)
        await products.update_product(
            catalog, retired.id, ProductPatch(is_active=False), ExpectedVersion(1, False)
        )
        await products.delete_product(catalog, deleted.id, None)
    await system.relay()
    await system.work()
    assert (await system.cart_item(retired.id))["is_available"] is False
    gone = await system.cart_item(deleted.id)
    assert (gone["is_available"], gone["product_version"]) == (False, 2)


async def test_an_event_that_fails_stays_pending(system):
    redis, stream = system.worker.redis, system.keys.catalog_events()
    await system.worker.ensure_group()
    await redis.xadd(stream, {"type": "product.updated", "event": "not json"})
    await system.work()
    assert system.worker.failed == 1
    assert (await redis.xpending(stream, GROUP))["pending"] == 1


async def test_a_running_worker_blocks_for_events_and_stops_on_request(system):
    # The real loop: blocking reads (longer than the socket timeout of other clients), then stop.
    stop = asyncio.Event()
    task = asyncio.create_task(system.worker.run(stop))
    product = await a_repriced_product_in_a_cart(system, "W-5", "2.00", "2.50")
    with anyio.fail_after(10):  # until the running worker has applied the change
        while (await system.cart_item(product.id))["product_version"] != 2:  # noqa: ASYNC110 (polled state)
            await anyio.sleep(0.02)
    stop.set()
    with anyio.fail_after(10):
        await task
    assert system.worker.failed == 0


async def test_the_heartbeat_is_refreshed_while_a_long_batch_is_applied(system, monkeypatch):
    """A batch can take longer than the heartbeat's TTL (one event at a time, a slow database):
    the key must stay fresh meanwhile, or other workers would take over its events."""
    from app_cart.worker import handlers as handlers_module
    from app_cart.worker import handlers as worker_module

    started, release = asyncio.Event(), asyncio.Event()

    async def slow(deps, events):
        started.set()
        await release.wait()
        await handlers_module.product_events(deps, events)

    monkeypatch.setitem(worker_module.HANDLERS, "product.updated", slow)
    settings = msgspec.structs.replace(system.settings, worker_heartbeat_seconds=1)
    worker, redis = (
        Worker(settings, system.db, system.worker.redis, "slow", system.product_client),
        system.worker.redis,
    )
    await worker.ensure_group()
    await items_in_carts(system, 31)
    await send(system, product_event(31, 2))
    task = asyncio.create_task(worker.run(asyncio.Event(), burst=True))
    with anyio.fail_after(10):
        await started.wait()
        first = await redis.get(worker.heartbeat)
        while await redis.get(worker.heartbeat) in (first, None):  # noqa: ASYNC110 (polled Redis state)
            await anyio.sleep(0.01)
    release.set()
    with anyio.fail_after(10):
        await task
    assert (await system.cart_item(31))["product_version"] == 2


RETRY_BASE = 0.05


def quick_retries(system, consumer: str = "retrier") -> Worker:
    """A worker retrying after 0.05 s, then 0.1 s, and parking after 3 deliveries."""
    settings = msgspec.structs.replace(
        system.settings, worker_retry_base_seconds=RETRY_BASE, worker_max_deliveries=3
    )
    return Worker(settings, system.db, system.worker.redis, consumer, system.product_client)


async def reclaimed(worker: Worker, since: float) -> tuple[int, float, float]:
    """Poll `worker.reclaim()` until it handles something. Returns how many events it handled,
    the seconds from `since` to then, and when that attempt began (the next `since`).

    `since` is taken before the delivery whose backoff is measured, so the seconds returned
    can only overstate the wait: on a slow machine the lower bounds the tests assert still
    hold, and nothing depends on a sleep being long enough.
    """
    with anyio.fail_after(10):
        while True:
            attempt = time.monotonic()
            if handled := await worker.reclaim():
                return handled, time.monotonic() - since, attempt
            await anyio.sleep(0.005)


async def test_a_poison_event_is_retried_with_growing_waits_then_parked_as_dead(system):
    worker, redis, stream = quick_retries(system), system.worker.redis, system.keys.catalog_events()
    await worker.ensure_group()
    message_id = (await redis.xadd(stream, {"type": "product.updated", "event": "not json"})).decode()
    first = time.monotonic()
    await worker.run(asyncio.Event(), burst=True)  # delivery 1: fails, stays pending

    async def deliveries() -> int:
        return int((await redis.xpending_range(stream, GROUP, "-", "+", 10))[0]["times_delivered"])

    # Redis measures idle time in whole milliseconds: allow one.
    handled, waited, second = await reclaimed(worker, first)
    assert (handled, await deliveries()) == (1, 2) and waited >= RETRY_BASE - 0.001
    handled, waited, third = await reclaimed(worker, second)
    assert (handled, await deliveries()) == (1, 3) and waited >= 2 * RETRY_BASE - 0.001  # doubled
    handled, _, _ = await reclaimed(worker, third)
    assert (handled, worker.parked) == (1, 1)  # the third failure makes 3 deliveries: parked
    assert worker.retried == 2
    # What an operator sees with redis-cli (XPENDING ... dead, HGETALL the dead hash).
    dead = await redis.xpending_range(stream, GROUP, "-", "+", 10, consumername="dead")
    assert [entry["message_id"].decode() for entry in dead] == [message_id]
    reason = {
        k.decode(): v.decode() for k, v in (await redis.hgetall(system.keys.dead_event(message_id))).items()
    }
    assert (reason["type"], reason["event"], reason["deliveries"]) == ("product.updated", "not json", "3")
    assert "DecodeError" in reason["error"] and reason["parked_at"]
    assert await worker.reclaim() == 0  # parked events are left alone
    assert not await redis.hexists(system.keys.event_errors(), message_id)


async def test_two_workers_parking_the_same_event_park_it_once(system):
    first, second = quick_retries(system, "first"), quick_retries(system, "second")
    redis, stream = system.worker.redis, system.keys.catalog_events()
    await first.ensure_group()
    message_id = await redis.xadd(stream, {"type": "product.updated", "event": "not json"})
    await first.run(asyncio.Event(), burst=True)
    for _ in range(2):  # deliveries 2 and 3, both failing
        await reclaimed(first, time.monotonic())
    with anyio.fail_after(10):  # until both see it due for parking
        while not await redis.xpending_range(stream, GROUP, "-", "+", 1, idle=int(RETRY_BASE * 1000)):  # noqa: ASYNC110 (polled Redis state)
            await anyio.sleep(0.005)
    await asyncio.gather(*(redis.ping() for _ in range(4)))  # connections ready for both
    # Both list it as due in the same instant; only one may move it to `dead` and record it.
    assert sorted(await asyncio.gather(first.reclaim(), second.reclaim())) == [0, 1]
    assert first.parked + second.parked == 1
    dead = await redis.xpending_range(stream, GROUP, "-", "+", 10, consumername="dead")
    assert [entry["message_id"] for entry in dead] == [message_id]


async def test_a_transient_failure_succeeds_on_retry(system, monkeypatch):
    from app_cart.worker import handlers as handlers_module
    from app_cart.worker import handlers as worker_module

    database = {"up": False}

    async def flaky(deps, events):
        if not database["up"]:  # fails its first delivery (its batch, then the event alone)
            raise asyncpg.QueryCanceledError("canceling statement due to lock timeout")
        await handlers_module.product_events(deps, events)

    monkeypatch.setitem(worker_module.HANDLERS, "product.updated", flaky)
    product = await a_repriced_product_in_a_cart(system, "W-6", "1.00", "1.50")
    started = time.monotonic()
    # The first delivery, by a worker retrying after 1 s: none of its retries within this run.
    await system.worker.run(asyncio.Event(), burst=True)
    assert system.worker.failed == 1 and (await system.cart_item(product.id))["product_version"] == 1
    database["up"] = True
    handled, waited, _ = await reclaimed(quick_retries(system), started)
    assert handled == 1 and waited >= RETRY_BASE - 0.001  # retried once past the first backoff
    assert (await system.cart_item(product.id))["product_version"] == 2
    stream = system.keys.catalog_events()
    assert (await system.worker.redis.xpending(stream, GROUP))["pending"] == 0
    assert await system.worker.redis.hlen(system.keys.event_errors()) == 0


async def test_a_database_outage_records_no_failure_and_its_events_are_applied_once_it_is_back(
    system, monkeypatch
):
    """Events read while the database is down are not the events' fault: no one-by-one
    fallback, no error, no delivery counted toward parking; the worker backs off without
    reading more, and retries them itself once the database answers."""
    from app_cart.worker import handlers as handlers_module
    from app_cart.worker import handlers as worker_module

    database, calls, pings = {"up": False}, [], []

    async def handler(deps, events):
        calls.append(len(events))
        if not database["up"]:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        await handlers_module.product_events(deps, events)

    async def ping(db):
        pings.append(database["up"])
        if not database["up"]:
            raise ConnectionRefusedError("connection refused")

    monkeypatch.setitem(worker_module.HANDLERS, "product.updated", handler)
    from app_cart.worker import run as run_module

    monkeypatch.setattr(run_module, "ping", ping)
    worker, redis, stream = quick_retries(system, "outage"), system.worker.redis, system.keys.catalog_events()
    await worker.ensure_group()
    await items_in_carts(system, 61, 62)
    await send(system, product_event(61, 2), product_event(62, 2))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    with anyio.fail_after(10):  # until it has backed off twice, the database still down
        while len(pings) < 2:  # noqa: ASYNC110 (polled state)
            await anyio.sleep(0.005)
    assert calls == [2] and (worker.failed, worker.parked) == (0, 0)  # the batch once, alone never
    assert await redis.hlen(system.keys.event_errors()) == 0
    pending = await redis.xpending_range(stream, GROUP, "-", "+", 10)
    assert [(entry["consumer"], entry["times_delivered"]) for entry in pending] == [(b"outage", 1)] * 2
    database["up"] = True
    with anyio.fail_after(10):
        while [(await system.cart_item(pid))["product_version"] for pid in (61, 62)] != [2, 2]:  # noqa: ASYNC110 (polled state)
            await anyio.sleep(0.005)
    stop.set()
    with anyio.fail_after(10):
        await task
    assert (worker.failed, worker.parked) == (0, 0)
    assert (await redis.xpending(stream, GROUP))["pending"] == 0
    # For the metrics: each pause counted, as the database's (the batch, then each ping).
    assert worker.backoffs >= 3 and worker.backoffs_by == {"database": worker.backoffs}


async def test_an_own_pending_event_with_no_error_is_retried(system):
    """An XACK or an error record lost after a batch leaves an event pending at its own, live
    worker with no error: its reclaim, which runs between batches, must still retry it."""
    worker, redis, stream = quick_retries(system, "own"), system.worker.redis, system.keys.catalog_events()
    await worker.ensure_group()
    await items_in_carts(system, 41)
    await send(system, product_event(41, 2, "2.00"))
    await redis.set(worker.heartbeat, "alive")  # a live worker
    await redis.xreadgroup(GROUP, worker.consumer, {stream: ">"})  # read, never acknowledged
    handled, _, _ = await reclaimed(worker, time.monotonic())
    assert (handled, (await system.cart_item(41))["product_version"]) == (1, 2)
    assert (await redis.xpending(stream, GROUP))["pending"] == 0


async def test_events_failing_after_a_thousand_parked_ones_are_still_retried(system, monkeypatch):
    """Parked events stay pending under `dead`; however many there are, reclaim must still find
    later failed ones (it once looked at the first 1,000 pending entries only). Two per page, so
    the failed ones take more than one page too."""
    from shared.events import reclaim

    monkeypatch.setattr(reclaim, "PAGE", 2)
    worker, redis, stream = quick_retries(system), system.worker.redis, system.keys.catalog_events()
    await worker.ensure_group()
    async with redis.pipeline(transaction=False) as pipe:
        for _ in range(1001):
            pipe.xadd(stream, {"type": "product.updated", "event": "{}"})
        parked = await pipe.execute()
    await redis.xreadgroup(GROUP, "parker", {stream: ">"})
    await redis.xclaim(stream, GROUP, "dead", 0, parked, justid=True)
    await items_in_carts(system, 51, 52, 53)
    await send(system, *(product_event(pid, 2) for pid in (51, 52, 53)))
    await redis.xreadgroup(GROUP, "gone", {stream: ">"})  # a worker that died with them

    async def due() -> bool:  # idle for their first retry
        idle = int(RETRY_BASE * 1000)
        return len(await redis.xpending_range(stream, GROUP, "-", "+", 10, "gone", idle=idle)) == 3

    await until(due)
    pages_before = await xpending_calls(redis, stream)
    assert await worker.reclaim() == 3  # all of them, over two pages, in one reclaim
    # Two pages, and a holder check per claim (claim_pending.lua): not 500 pages of dead ones.
    assert await xpending_calls(redis, stream) - pages_before < 20
    versions = [(await system.cart_item(pid))["product_version"] for pid in (51, 52, 53)]
    assert versions == [2, 2, 2]
    assert (await redis.xpending(stream, GROUP))["pending"] == 1001  # only the parked ones


async def xpending_calls(redis, stream: str) -> int:
    """XPENDING calls the server has answered so far (it is this test's alone while it runs); on
    a cluster, the master that holds `stream` (where every XPENDING of the stream goes)."""
    if CLUSTER:
        stats = await redis.info("commandstats", target_nodes=redis.get_node_from_key(stream))
    else:
        stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xpending", {}).get("calls", 0))


async def park_a_poison_event(system) -> tuple[Worker, str]:
    """A dead event, as a worker leaves it after its retries."""
    worker, redis = quick_retries(system, "parker"), system.worker.redis
    await worker.ensure_group()
    message_id = (
        await redis.xadd(system.keys.catalog_events(), {"type": "product.updated", "event": "{}"})
    ).decode()
    await worker.run(asyncio.Event(), burst=True)
    with anyio.fail_after(10):
        while not worker.parked:
            await anyio.sleep(0.05)
            await worker.reclaim()
    return worker, message_id


async def test_a_stale_listing_cannot_take_a_dead_event_back(system):
    """A reclaim acts on a listing that ages while it applies events: by the time it claims an
    entry, another worker may have parked it. Long dead, the entry is idle enough for XCLAIM's
    minimum (here 0: any idle time passes); only the holder check keeps it parked and its
    record intact."""
    parker, message_id = await park_a_poison_event(system)
    redis, stream = system.worker.redis, system.keys.catalog_events()
    record = await redis.hgetall(system.keys.dead_event(message_id))
    late = quick_retries(system, "late")
    # As if both had listed it while `parker` still held it, before it was parked.
    assert await late._reclaimer._retry(message_id.encode(), parker.consumer, 3, 0) == 0
    assert await late._reclaimer._park(message_id.encode(), parker.consumer, 3, 0) == 0
    dead = await redis.xpending_range(stream, GROUP, "-", "+", 10, consumername="dead")
    assert [entry["message_id"].decode() for entry in dead] == [message_id]
    assert await redis.hgetall(system.keys.dead_event(message_id)) == record
    assert late.applied == late.failed == late.parked == 0


@pytest.mark.parametrize("deliveries", [1, 3], ids=["retried", "parked"])
async def test_an_event_trimmed_before_it_was_applied_is_recorded_not_dropped(system, deliveries):
    """On Redis 7, XCLAIM of an entry whose payload was trimmed silently drops it from the group:
    whether it was due for a retry or for parking, its record must be written first."""
    worker, redis, stream = quick_retries(system), system.worker.redis, system.keys.catalog_events()
    await worker.ensure_group()
    [message_id] = await send(system, product_event(71, 2))
    await redis.xreadgroup(GROUP, "gone", {stream: ">"})  # delivered to a worker that died
    for _ in range(deliveries - 1):
        await redis.xclaim(stream, GROUP, "gone", 0, [message_id])  # each claim is a delivery
    await redis.hset(system.keys.event_errors(), message_id, "a lock timeout")
    await redis.xdel(stream, message_id)  # trimmed (XTRIM would do the same to its payload)
    handled, _, _ = await reclaimed(worker, time.monotonic())
    assert (handled, worker.parked) == (1, 1)
    record = await redis.hgetall(system.keys.dead_event(message_id.decode()))
    assert b"trimmed" in record[b"error"] and b"a lock timeout" in record[b"error"]
    assert record[b"deliveries"] == str(deliveries).encode() and record[b"parked_at"]
    assert (await redis.xpending(stream, GROUP))["pending"] == 0  # acknowledged, not lost silently
    assert not await redis.hexists(system.keys.event_errors(), message_id)


async def test_operators_list_show_replay_and_discard_dead_events(system):
    from shared.events.dead_letters import DeadLetters
    from shared.events.status import StreamStatus

    _, dead_id = await park_a_poison_event(system)
    redis = system.worker.redis
    dead, status = DeadLetters(redis, system.keys, GROUP), StreamStatus(redis, system.keys, GROUP)
    assert [record["id"] for record in await dead.list()] == [dead_id]
    assert await status.pending_by_consumer() == {"dead": 1}
    assert {group["name"] for group in await status.groups()} == {"cart"}
    shown = await dead.show(dead_id)
    assert shown["entry"]["type"] == "product.updated" and shown["dead"]["deliveries"] == "3"
    replayed = await dead.replay(dead_id)
    assert await dead.list() == [] and await status.pending_by_consumer() == {}
    [(_, fields)] = await redis.xrange(system.keys.catalog_events(), replayed, replayed)
    assert fields[b"replay_of"] == dead_id.encode()
    with pytest.raises(LookupError):
        await dead.discard(dead_id)


async def test_discard_needs_a_confirmation_and_then_drops_the_dead_event(system, redis_server, monkeypatch):
    from shared.events.cli import main

    _, dead_id = await park_a_poison_event(system)
    monkeypatch.setenv("ENV", "test")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("REDIS_KEY_PREFIX", system.keys.prefix)
    for name, value in mode_env().items():  # REDIS_CLUSTER, as the services have it
        monkeypatch.setenv(name, value)
    redis, dead_key = system.worker.redis, system.keys.dead_event(dead_id)
    assert await asyncio.to_thread(main, ["discard", dead_id]) == 1  # refused without --yes
    assert (
        await redis.exists(dead_key)
        and (await redis.xpending(system.keys.catalog_events(), GROUP))["pending"]
    )
    assert await asyncio.to_thread(main, ["discard", dead_id, "--yes"]) == 0
    assert not await redis.exists(dead_key)
    assert (await redis.xpending(system.keys.catalog_events(), GROUP))["pending"] == 0
    assert await asyncio.to_thread(main, ["discard", dead_id, "--yes"]) == 1  # no longer dead


async def test_after_the_handler_is_fixed_a_replayed_event_is_applied_once(system, monkeypatch):
    from app_cart.worker import handlers as worker_module
    from shared.events.dead_letters import DeadLetters

    async def broken(deps, events):
        raise RuntimeError("a bug in the handler")

    product = await a_repriced_product_in_a_cart(system, "W-7", "1.00", "4.00")
    with monkeypatch.context() as patched:
        patched.setitem(worker_module.HANDLERS, "product.updated", broken)
        worker = quick_retries(system, "buggy")
        await worker.run(asyncio.Event(), burst=True)
        with anyio.fail_after(10):
            while not worker.parked:
                await anyio.sleep(0.05)
                await worker.reclaim()
    assert (await system.cart_item(product.id))["product_version"] == 1
    dead_letters = DeadLetters(system.worker.redis, system.keys, GROUP)
    [dead] = await dead_letters.list()
    assert "a bug in the handler" in dead["error"]
    await dead_letters.replay(dead["id"])
    fixed = quick_retries(system, "fixed")
    await fixed.run(asyncio.Event(), burst=True)
    assert (fixed.applied, fixed.failed) == (1, 0)
    item = await system.cart_item(product.id)
    assert (str(item["current_price"]), item["product_version"]) == ("4.00", 2)


def product_event(product_id: int, version: int, price: str = "1.00", type_: str = "product.updated"):
    state = {"id": product_id, "name": f"p{product_id} v{version}", "price": price, "stock": 5}
    state |= {"is_active": True, "category_name": None}
    return new_event(type_, product_id, version, None if type_ == "product.deleted" else state, ["price"])


async def send(system, *entries) -> list[bytes]:
    """Events (or raw entries, as dicts) appended to the stream, in order; their ids."""
    redis, stream = system.worker.redis, system.keys.catalog_events()
    fields = [
        entry
        if isinstance(entry, dict)
        else stream_fields(
            str(entry.id), entry.type, entry.aggregate_id, entry.version, encode(entry).decode()
        )
        for entry in entries
    ]
    return [await redis.xadd(stream, entry) for entry in fields]


async def items_in_carts(system, *product_ids: int) -> None:
    for product_id in product_ids:
        await put_in_a_cart(system, SimpleNamespace(id=product_id, name="p", price="1.00"))


async def test_a_batch_is_applied_at_once_and_the_newest_version_of_each_product_wins(system, monkeypatch):
    from app_cart.worker import handlers as handlers_module
    from app_cart.worker import handlers as worker_module

    batches = []

    async def recording(deps, events):
        batches.append([(event.aggregate_id, event.version) for event in events])
        await handlers_module.product_events(deps, events)

    for type_ in ("product.updated", "product.deleted"):
        monkeypatch.setitem(worker_module.HANDLERS, type_, recording)
    await items_in_carts(system, 1, 2)
    await system.worker.ensure_group()
    # Out of order within the batch: version 3 of product 1 before version 2; product 2 is
    # repriced and then deleted.
    await send(
        system,
        product_event(1, 3, "3.00"),
        product_event(1, 2, "2.00"),
        product_event(2, 2, "9.00"),
        product_event(2, 3, type_="product.deleted"),
    )
    await system.work()
    assert batches == [[(1, 3), (1, 2), (2, 2), (2, 3)]]  # one call, so one transaction
    first, second = await system.cart_item(1), await system.cart_item(2)
    assert (str(first["current_price"]), first["product_name"], first["product_version"]) == (
        "3.00",
        "p1 v3",
        3,
    )
    # As if applied in version order: repriced (its snapshot kept), then gone.
    assert (str(second["current_price"]), second["is_available"], second["product_version"]) == (
        "9.00",
        False,
        3,
    )
    assert (system.worker.applied, system.worker.failed) == (4, 0)


async def test_a_batch_that_deadlocks_is_retried_whole_before_one_by_one(system, monkeypatch):
    from app_cart.worker import handlers as handlers_module
    from app_cart.worker import handlers as worker_module

    calls = []

    async def racing(deps, events):
        calls.append(len(events))
        if len(calls) <= 2:  # lost a lock race twice, as against a shopper moving an item
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        await handlers_module.product_events(deps, events)

    monkeypatch.setitem(worker_module.HANDLERS, "product.updated", racing)
    await items_in_carts(system, 81, 82)
    await system.worker.ensure_group()
    await send(system, product_event(81, 2), product_event(82, 2))
    await system.work()
    assert calls == [2, 2, 2]  # the whole batch each time, never one event at a time
    assert [(await system.cart_item(pid))["product_version"] for pid in (81, 82)] == [2, 2]
    assert (system.worker.applied, system.worker.failed) == (2, 0)


@pytest.mark.parametrize("deleted", [False, True], ids=["repriced", "deleted"])
async def test_a_shoppers_write_with_an_older_product_keeps_the_newer_snapshot(system, deleted):
    """The worker stored version 3; a write bringing version 2 (the catalog's answer, older by
    the time it commits) changes the quantity but cannot roll the snapshot back."""
    from app_cart.adapters import carts

    await items_in_carts(system, 95)
    await system.worker.ensure_group()
    version_3 = product_event(95, 3, type_="product.deleted") if deleted else product_event(95, 3, "3.00")
    await send(system, version_3)
    await system.work()
    before = await system.cart_item(95)
    assert before["product_version"] == 3
    db = system.db
    cart_id = await db.fetch_val("SELECT cart_id FROM cart_items WHERE product_id = 95")
    older = {"product_id": 95, "name": "p95 v2", "category_name": None, "price": Decimal("2.00")}
    older["is_available"] = True
    older["version"] = 2
    assert await carts.add_item(db, cart_id, older, 2, 99) == 3  # 1 + 2
    assert await system.cart_item(95) == before
    assert await carts.set_quantity(db, cart_id, 95, 5, older)
    assert await system.cart_item(95) == before
    assert await db.fetch_val("SELECT quantity FROM cart_items WHERE product_id = 95") == 5


async def test_a_newer_event_without_a_state_does_not_hide_an_older_state(system):
    await items_in_carts(system, 97)
    await system.worker.ensure_group()
    await send(system, product_event(97, 2, "2.50"), new_event("product.updated", 97, 3, None))
    await system.work()
    item = await system.cart_item(97)
    assert (str(item["current_price"]), item["product_version"]) == ("2.50", 2)  # as in version order
    assert (system.worker.applied, system.worker.failed) == (2, 0)


async def test_a_poison_event_in_a_batch_fails_alone_and_the_others_are_applied(system):
    await items_in_carts(system, 1, 2, 3)
    await system.worker.ensure_group()
    ids = await send(
        system,
        product_event(1, 2, "2.00"),
        product_event(2, 2, "-1.00"),  # decodes, but the cart refuses a negative price (CHECK)
        {"type": "product.updated", "event": "not json"},
        new_event("product.archived", 3, 2, None),  # a type no handler knows
        product_event(3, 2, "4.00"),
        new_event("category.updated", 7, 2, {"id": 7, "name": "c"}),
    )
    await system.work()
    assert [(await system.cart_item(pid))["product_version"] for pid in (1, 2, 3)] == [2, 1, 2]
    assert str((await system.cart_item(3))["current_price"]) == "4.00"
    redis, stream = system.worker.redis, system.keys.catalog_events()
    pending = await redis.xpending_range(stream, GROUP, "-", "+", 10)
    assert [entry["message_id"] for entry in pending] == ids[1:4]  # only the three that failed
    assert sorted(await redis.hkeys(system.keys.event_errors())) == ids[1:4]  # each with its reason
    for record in (await redis.hgetall(system.keys.event_errors())).values():
        when, _, reason = record.decode().partition(" ")  # when it failed (UTC), then why
        assert datetime.fromisoformat(when).utcoffset() == timedelta(0) and "Error" in reason
    assert (system.worker.applied, system.worker.failed) == (3, 3)
    assert system.worker.by_type == {  # for the metrics: what failed, by its type if it has a handler
        ("product.updated", "applied"): 2,
        ("category.updated", "applied"): 1,
        ("product.updated", "failed"): 1,
        ("unknown", "failed"): 2,  # one not even JSON, one of a type no handler knows
    }


async def test_an_older_event_in_a_later_batch_changes_nothing(system):
    """The version guard in the snapshot UPDATE, across batches (within one batch the merge
    alone keeps the newest): version 3 applied, then version 2 arrives late, alone."""
    await items_in_carts(system, 301)
    await system.worker.ensure_group()
    await send(system, product_event(301, 3, "3.00"))
    await system.work()
    await send(system, product_event(301, 2, "2.00"))
    await system.work()
    item = await system.cart_item(301)
    assert (str(item["current_price"]), item["product_version"], item["product_name"]) == (
        "3.00",
        3,
        "p301 v3",
    )
    await send(system, product_event(301, 4, type_="product.deleted"))
    await system.work()
    await send(system, product_event(301, 3, "3.50"))  # a state older than the deletion, late
    await system.work()
    item = await system.cart_item(301)
    assert (item["is_available"], item["product_version"]) == (False, 4)
    assert system.worker.failed == 0


async def test_applied_events_leave_versioned_tombstones_in_the_product_cache(system):
    """The backstop invalidation: a changed product's cache key refuses entries older than its
    new version; a deleted one's is marked deleted, refusing the version before the deletion."""
    redis = system.worker.redis
    await items_in_carts(system, 401, 402)
    await system.worker.ensure_group()
    await send(system, product_event(401, 3, "3.00"), product_event(402, 5, type_="product.deleted"))
    await system.work()
    changed = msgspec.json.decode(await redis.get(system.keys.product(401)))
    deleted = msgspec.json.decode(await redis.get(system.keys.product(402)))
    assert changed == {"min_version": 3, "deleted": False}
    assert deleted == {"min_version": 5, "deleted": True}
    assert 0 < await redis.pttl(system.keys.product(401)) <= TOMBSTONE_SECONDS * 1000
