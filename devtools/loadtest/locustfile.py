"""The shoppers and admins of `scripts/loadtest` (Locust), and the step load they come in.

The mix, per shopper, follows what a shop's traffic is: mostly browsing (listings, searches,
product pages, some revalidated with If-None-Match as a browser does), then the cart (read far
more than written: add, change a quantity, remove), now and then a wishlist move or a promo
code. A few admins change prices and stock the whole time, so catalog events flow through
the relay and the workers into carts while the shoppers shop.

Every request is also written to LOADTEST_REQUEST_LOG (one CSV line each: start time, name,
milliseconds, status), from which the report computes each step's throughput and percentiles
exactly rather than from Locust's sliding windows.

Environment: CART_URL, JWT_SECRET, LOADTEST_PRODUCT_IDS, LOADTEST_PROMO_CODES, LOADTEST_WORDS,
LOADTEST_REQUEST_LOG, LOADTEST_STEPS (users per step, comma-separated), LOADTEST_STEP_SECONDS.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import jwt
from locust import HttpUser, LoadTestShape, between, events, task

CART = os.environ["CART_URL"]
SECRET = os.environ["JWT_SECRET"]
PRODUCTS = [int(i) for i in os.environ["LOADTEST_PRODUCT_IDS"].split(",")]
PROMO_CODES = os.environ["LOADTEST_PROMO_CODES"].split(",")
WORDS = os.environ["LOADTEST_WORDS"].split(",")
STEPS = [int(n) for n in os.environ.get("LOADTEST_STEPS", "10,25,50,100,150,200,300").split(",")]
STEP_SECONDS = int(os.environ.get("LOADTEST_STEP_SECONDS", "30"))
# A refusal the shop means (out of stock, a full cart, a promo code used up, a version
# conflict between admins) is the system working, not failing: counted, not an error.
REFUSALS = {404, 409, 412, 422}

_log = open(os.environ["LOADTEST_REQUEST_LOG"], "a", buffering=1)  # noqa: SIM115 (open for the run)


@events.request.add_listener
def _record(
    name: str, response_time: float, response: Any, exception: Any, start_time: float, **_: Any
) -> None:
    status = getattr(response, "status_code", 0) or 0
    _log.write(f"{start_time:.3f},{name},{response_time:.2f},{status}\n")


def _token(uid: str, roles: tuple[str, ...] = ()) -> str:
    claims = {"uid": uid, "roles": list(roles), "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


class Shopper(HttpUser):
    weight = 30
    wait_time = between(0.3, 1.5)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {_token(f'load-{uuid.uuid4().hex[:12]}')}"}
        self.cart: set[int] = set()
        self.tags: dict[int, str] = {}

    def _write(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex, **kwargs.pop("headers", {})}
        with self.client.request(
            method, CART + path, name=name, headers=headers, catch_response=True, **kwargs
        ) as response:
            if response.status_code in REFUSALS:
                response.success()
            return response

    @task(25)
    def listing(self) -> None:
        params: dict[str, Any] = {"limit": 20}
        if random.random() < 0.5:
            params["category_id"] = random.randint(1, 5)
        self.client.get("/api/products", params=params, name="catalog: listing")

    @task(10)
    def search(self) -> None:
        words = " ".join(random.sample(WORDS, random.choice((1, 1, 2))))
        self.client.get("/api/products", params={"q": words, "limit": 20}, name="catalog: search")

    @task(20)
    def product(self) -> None:
        product_id = random.choice(PRODUCTS)
        headers = {"If-None-Match": self.tags[product_id]} if product_id in self.tags else {}
        response = self.client.get(f"/api/products/{product_id}", headers=headers, name="catalog: product")
        if "etag" in response.headers:
            self.tags[product_id] = response.headers["etag"]

    @task(15)
    def read_cart(self) -> None:
        self.client.get(CART + "/api/cart", headers=self.auth, name="cart: read")

    @task(8)
    def add(self) -> None:
        product_id = random.choice(PRODUCTS)
        response = self._write("POST", "/api/cart/items", "cart: add", json={"product_id": product_id})
        if response.status_code == 200:
            self.cart.add(product_id)

    @task(4)
    def change_quantity(self) -> None:
        if self.cart:
            product_id = random.choice(sorted(self.cart))
            body = {"quantity": random.randint(1, 3)}
            self._write("PATCH", f"/api/cart/items/{product_id}", "cart: quantity", json=body)

    @task(3)
    def remove(self) -> None:
        if self.cart:
            product_id = random.choice(sorted(self.cart))
            response = self._write("DELETE", f"/api/cart/items/{product_id}", "cart: remove")
            if response.status_code in (200, 204, 404):
                self.cart.discard(product_id)

    @task(2)
    def promo(self) -> None:
        if random.random() < 0.7:
            self._write("POST", "/api/cart/promo", "cart: promo", json={"code": random.choice(PROMO_CODES)})
        else:
            self._write("DELETE", "/api/cart/promo", "cart: promo")

    @task(3)
    def wishlist_move(self) -> None:
        product_id = random.choice(PRODUCTS)
        self._write("POST", "/api/wishlist/items", "wishlist: add", json={"product_id": product_id})
        moved = self._write("POST", f"/api/wishlist/items/{product_id}/move-to-cart", "wishlist: move")
        if moved.status_code == 200:
            self.cart.add(product_id)


class Admin(HttpUser):
    fixed_count = 2  # whatever the step, two admins at work
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {_token('load-admin', ('admin',))}"}

    @task
    def change_product(self) -> None:
        product_id = random.choice(PRODUCTS)
        current = self.client.get(f"/api/products/{product_id}", headers=self.auth, name="admin: read")
        if current.status_code != 200:
            return
        change = {
            "price": f"{random.randint(5, 200)}.{random.randint(0, 99):02d}",
            "stock": random.randint(0, 50),
        }
        with self.client.patch(
            f"/api/products/{product_id}",
            json=change,
            headers={**self.auth, "If-Match": current.headers["etag"]},
            name="admin: change product",
            catch_response=True,
        ) as response:
            if response.status_code in REFUSALS:  # another admin changed it first
                response.success()


class Steps(LoadTestShape):
    """LOADTEST_STEPS users, each step held LOADTEST_STEP_SECONDS, then stop."""

    def tick(self) -> tuple[int, float] | None:
        step = int(self.get_run_time() // STEP_SECONDS)
        if step >= len(STEPS):
            return None
        return STEPS[step], max(10.0, float(STEPS[step]))
