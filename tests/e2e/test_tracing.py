"""Tracing end to end: catalog, cart, relay and worker as processes, exporting over OTLP/HTTP to a
receiver of the test's own. One admin PATCH is followed from the catalog's request (its route
and its SQL) through the relay's append (linked) to the worker's batch (linked) and to a span in
the PATCH's own trace saying the event was applied to carts; the cart's call to the catalog
carries the trace on."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from devtools.servers import free_port
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import as_user, make_token, service_env
from tests.support.otlp_receiver import Receiver
from tests.support.supervisor import Supervised
from tests.support.waits import until

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {make_token('admin-trace', roles=('admin',))}"}
TRACE_ID = uuid.uuid4().hex  # the trace the test's own request starts
TRACEPARENT = {"traceparent": f"00-{TRACE_ID}-{uuid.uuid4().hex[:16]}-01"}


async def test_one_patch_is_followed_from_the_catalog_to_the_carts_it_reached(
    postgres, redis_server, tmp_path
):
    catalog_db, cart_db = (postgres.url(f"trace_{uuid.uuid4().hex[:8]}") for _ in range(2))
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    with Receiver() as receiver:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        prefix, catalog_port = f"tr{uuid.uuid4().hex[:6]}", free_port()
        catalog_env = service_env(
            catalog_db, redis_server.url, REDIS_KEY_PREFIX=prefix, RELAY_POLL_SECONDS="0.2", **otel
        )
        cart_env = service_env(
            cart_db,
            redis_server.url,
            REDIS_KEY_PREFIX=prefix,
            CATALOG_URL=f"http://127.0.0.1:{catalog_port}",
            **otel,
        )
        processes = [
            Supervised("catalog", "app_product", catalog_env, tmp_path / "catalog.log", catalog_port),
            Supervised("cart", "app_cart", cart_env, tmp_path / "cart.log", free_port()),
            Supervised("relay", "app_product.relay", catalog_env, tmp_path / "relay.log"),
            Supervised("worker", "app_cart.worker", cart_env, tmp_path / "worker.log"),
        ]
        try:
            for process in processes:
                await asyncio.to_thread(process.start)
            catalog, cart = processes[0].url, processes[1].url
            user = as_user(f"traced-{uuid.uuid4().hex[:6]}")
            async with httpx.AsyncClient(timeout=10) as client:
                body = {"sku": f"TR-{uuid.uuid4().hex[:6]}", "name": "Traced", "price": "5.00", "stock": 3}
                product = (await client.post(f"{catalog}/api/products", json=body, headers=ADMIN)).json()
                added = await client.post(
                    f"{cart}/api/cart/items", json={"product_id": product["id"]}, headers=user
                )
                assert added.status_code == 200
                patched = await client.patch(
                    f"{catalog}/api/products/{product['id']}",
                    json={"price": "6.00", "version": product["version"]},
                    headers={**ADMIN, **TRACEPARENT},
                )
                assert patched.status_code == 200

            def in_trace():
                return [s for s in receiver.snapshot() if s.trace_id == TRACE_ID]

            def linked(service: str, name: str) -> bool:
                return any(
                    link[0] == TRACE_ID
                    for s in receiver.snapshot()
                    if s.service == service and s.name == name
                    for link in s.links
                )

            # Each process exports on its own schedule, and a batch span ends after the spans
            # inside it: wait for all three, not for the first to arrive.
            async def followed() -> bool:
                return (
                    any(s.name == "catalog event applied" for s in in_trace())
                    and linked("storefront-relay", "catalog-events publish")
                    and linked("storefront-worker", "catalog-events process")
                )

            await until(followed, seconds=30)
            spans = receiver.snapshot()
        finally:
            for process in processes:
                process.kill()
    mine = [s for s in spans if s.trace_id == TRACE_ID]
    server = next(
        s for s in mine if s.service == "storefront-catalog" and s.name == "PATCH /api/products/{id}"
    )
    assert server.attributes["http.route"] == "/api/products/{id}"
    sql = [
        s
        for s in mine
        if s.service == "storefront-catalog" and {"db.statement", "db.query.text"} & set(s.attributes)
    ]
    assert any("UPDATE products" in str(s.attributes) for s in sql), "the PATCH's SQL, in its trace"
    publish = [s for s in spans if s.service == "storefront-relay" and s.name == "catalog-events publish"]
    assert any(link[0] == TRACE_ID for s in publish for link in s.links), "the relay's append, linked"
    process_spans = [
        s for s in spans if s.service == "storefront-worker" and s.name == "catalog-events process"
    ]
    assert any(link[0] == TRACE_ID for s in process_spans for link in s.links), "the worker's batch, linked"
    applied = next(s for s in mine if s.name == "catalog event applied")
    assert (
        applied.service == "storefront-worker"
        and applied.attributes["storefront.event.type"] == "product.updated"
    )
    # The cart's call to the catalog (its add) carried its trace on: a catalog server span whose
    # parent is a cart client span.
    cart_clients = {s.span_id for s in spans if s.service == "storefront-cart" and s.kind == 3}  # CLIENT
    assert any(s.service == "storefront-catalog" and s.parent_span_id in cart_clients for s in spans)
