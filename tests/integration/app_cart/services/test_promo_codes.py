"""Promo codes: admin management, applying with every refusal, discounts, and atomic use counting."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.conftest import serve_cart
from tests.support.cart_api import add, cart_of
from tests.support.env import as_user
from tests.support.waits import until


@pytest.fixture
def new_code(cart, admin):
    """`await new_code(**fields)` creates a promo code through the admin API; returns its JSON."""

    async def create(**fields):
        body = {"code": f"SAVE_{uuid.uuid4().hex[:12]}", "kind": "percent", "amount": "10", **fields}
        response = await cart.post("/api/promo-codes", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return response.json()

    return create


async def cart_worth(cart, user, new_product, amount: str, quantity: int = 1) -> dict:
    product = await new_product(price=amount, stock=100)
    assert (await add(cart, user, product["id"], quantity)).status_code == 200
    return product


async def apply(cart, user, code):
    return await cart.post("/api/cart/promo", json={"code": code}, headers=user)


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


# Admin ----------------------------------------------------------------------------------------


async def test_create_normalises_the_code(cart, admin, unique):
    code = unique("welcome").replace("-", "_")
    response = await cart.post(
        "/api/promo-codes",
        json={"code": code, "kind": "fixed", "amount": "5", "min_subtotal": "20", "max_uses": 3},
        headers=admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["amount"], body["min_subtotal"]) == (code.upper(), "5.00", "20.00")
    assert (body["uses"], body["max_uses"], body["is_active"], body["version"]) == (0, 3, True, 1)
    duplicate = await cart.post(
        "/api/promo-codes", json={"code": code.lower(), "kind": "fixed", "amount": "5"}, headers=admin
    )
    assert duplicate.status_code == 409


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "percent", "amount": "101"}, "amount"),
        ({"kind": "bogus"}, "kind"),
        ({"amount": "0"}, "amount"),
        ({"amount": 5}, "amount"),
        ({"code": "a"}, "code"),
        ({"code": "has space"}, "code"),
        ({"valid_from": iso(timedelta(days=2)), "valid_until": iso(timedelta(days=1))}, "valid_until"),
        ({"valid_from": "2026-01-01T00:00:00"}, "valid_from"),  # no time zone
        ({"max_uses": 0}, "max_uses"),
        ({"uses": 5}, "uses"),
    ],
)
async def test_bad_promo_codes_are_refused(cart, admin, unique, fields, field):
    body = {"code": unique("BAD").replace("-", "_"), "kind": "percent", "amount": "10", **fields}
    response = await cart.post("/api/promo-codes", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_admin_routes_need_the_admin_role(cart, user, shopper):
    for method, url in [
        ("GET", "/api/promo-codes"),
        ("POST", "/api/promo-codes"),
        ("PATCH", "/api/promo-codes/1"),
    ]:
        assert (await cart.request(method, url, json={}, headers=user)).status_code == 403
        assert (await cart.request(method, url, json={})).status_code == 401


async def test_list_read_update_deactivate(cart, admin, new_code):
    first, second = await new_code(), await new_code()
    page = (await cart.get("/api/promo-codes", params={"limit": 100}, headers=admin)).json()
    ids = [item["id"] for item in page["items"]]
    assert first["id"] in ids and second["id"] in ids and ids == sorted(ids)
    url = f"/api/promo-codes/{first['id']}"
    assert (await cart.get(url, headers=admin)).json() == first
    updated = await cart.patch(url, json={"amount": "15", "version": 1}, headers=admin)
    assert (updated.status_code, updated.json()["amount"], updated.json()["version"]) == (200, "15.00", 2)
    assert (await cart.patch(url, json={"amount": "20", "version": 1}, headers=admin)).status_code == 409
    assert (await cart.delete(url, headers=admin)).status_code == 204
    assert (await cart.delete(url, headers=admin)).status_code == 204
    assert (await cart.get(url, headers=admin)).json()["is_active"] is False
    assert (await cart.delete("/api/promo-codes/987654321", headers=admin)).status_code == 404


async def test_the_list_pages_through_every_code_in_id_order(cart, admin, new_code):
    created = [(await new_code())["id"] for _ in range(3)]
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await cart.get("/api/promo-codes", params=params, headers=admin)).json()
        assert len(page["items"]) == 1, page  # exactly the limit while more follow
        seen.append(page["items"][0]["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(set(seen)) and set(created) <= set(seen)


async def test_the_list_filters_by_activity(cart, admin, new_code):
    active, inactive = await new_code(), await new_code(is_active=False)
    for flag, kept, dropped in (("true", active, inactive), ("false", inactive, active)):
        params = {"limit": 100, "is_active": flag}
        ids, cursor = [], None
        while True:
            page = (
                await cart.get(
                    "/api/promo-codes",
                    params={**params, **({"cursor": cursor} if cursor else {})},
                    headers=admin,
                )
            ).json()
            assert {item["is_active"] for item in page["items"]} <= {flag == "true"}
            ids += [item["id"] for item in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert kept["id"] in ids and dropped["id"] not in ids


async def test_a_code_inside_its_validity_window_applies(cart, user, new_code, new_product):
    code = await new_code(valid_from=iso(timedelta(days=-1)), valid_until=iso(timedelta(days=1)))
    await cart_worth(cart, user, new_product, "10.00")
    response = await apply(cart, user, code["code"])
    assert response.status_code == 200, response.text
    assert response.json()["discount"] == "1.00"


async def test_max_uses_cannot_drop_below_the_uses_taken(cart, admin, new_code, new_product):
    code = await new_code(max_uses=5)
    for uid in ("mu-1", "mu-2"):
        user = as_user(f"{uid}-{code['code']}")
        await cart_worth(cart, user, new_product, "10.00")
        assert (await apply(cart, user, code["code"])).status_code == 200
    url = f"/api/promo-codes/{code['id']}"
    response = await cart.patch(url, json={"max_uses": 1, "version": 1}, headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "max_uses", "message": "is below the uses already taken"}]
    assert (await cart.get(url, headers=admin)).json()["uses"] == 2


# Applying -------------------------------------------------------------------------------------


async def test_percent_discount(cart, user, new_code, new_product):
    code = await new_code(kind="percent", amount="15")
    await cart_worth(cart, user, new_product, "33.33", quantity=3)
    body = (await apply(cart, user, code["code"].lower())).json()
    # 99.99 * 15% = 14.9985, rounded half up to 15.00
    assert (body["subtotal"], body["discount"], body["total"]) == ("99.99", "15.00", "84.99")
    assert body["promo"] | {"code": code["code"]} == body["promo"]
    assert (body["promo"]["applies"], body["promo"]["reason"]) == (True, None)


async def test_fixed_discount_never_exceeds_the_subtotal(cart, user, new_code, new_product):
    code = await new_code(kind="fixed", amount="50")
    await cart_worth(cart, user, new_product, "20.00")
    body = (await apply(cart, user, code["code"])).json()
    assert (body["subtotal"], body["discount"], body["total"]) == ("20.00", "20.00", "0.00")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"is_active": False}, "inactive"),
        ({"valid_from": iso(timedelta(days=1))}, "not_yet_valid"),
        ({"valid_until": iso(timedelta(days=-1))}, "expired"),
        ({"min_subtotal": "100"}, "below_minimum"),
    ],
)
async def test_refusals_say_why(cart, user, new_code, new_product, fields, reason):
    code = await new_code(**fields)
    await cart_worth(cart, user, new_product, "10.00")
    response = await apply(cart, user, code["code"])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["reason"], response.json()["code"]) == (reason, code["code"])
    assert (await cart_of(cart, user))["promo"] is None


@pytest.mark.parametrize("code", ["NO_SUCH_CODE", "x", "bad code!", "nul\u0000"])
async def test_unknown_code(cart, user, code):
    response = await apply(cart, user, code)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if "\u0000" in code:  # not even a line of text: refused by the body's schema, before any lookup
        assert body["type"].endswith(":validation-failed") and "reason" not in body
        assert body["errors"][0]["field"] == "code"
    else:  # the problem names the code as it was looked up (upper case)
        assert body["type"].endswith(":promo-code-refused")
        assert (body["reason"], body["code"]) == ("unknown", code.upper())


async def test_used_up(cart, new_code, new_product):
    code = await new_code(max_uses=1)
    first, second = as_user(f"uu1-{code['code']}"), as_user(f"uu2-{code['code']}")
    for user in (first, second):
        await cart_worth(cart, user, new_product, "10.00")
    assert (await apply(cart, first, code["code"])).status_code == 200
    refused = await apply(cart, second, code["code"])
    assert refused.status_code == 422
    assert (refused.json()["reason"], refused.json()["code"]) == ("used_up", code["code"])
    assert (await cart_of(cart, second))["promo"] is None
    assert (await cart_of(cart, first))["promo"]["code"] == code["code"]


async def test_once_per_user_survives_removing_the_code(cart, user, new_code, new_product):
    code = await new_code(once_per_user=True)
    await cart_worth(cart, user, new_product, "10.00")
    assert (await apply(cart, user, code["code"])).status_code == 200
    assert (await cart.delete("/api/cart/promo", headers=user)).status_code == 200
    again = await apply(cart, user, code["code"])
    assert again.status_code == 422
    assert (again.json()["reason"], again.json()["code"]) == ("already_used", code["code"])
    assert (await cart_of(cart, user))["promo"] is None


async def test_uses_are_taken_and_given_back(cart, admin, user, new_code, new_product):
    first, second = await new_code(max_uses=10), await new_code(max_uses=10)

    async def uses(code):
        return (await cart.get(f"/api/promo-codes/{code['id']}", headers=admin)).json()["uses"]

    await cart_worth(cart, user, new_product, "10.00")
    await apply(cart, user, first["code"])
    await apply(cart, user, first["code"])  # the same code again takes no second use
    assert (await uses(first), await uses(second)) == (1, 0)
    await apply(cart, user, second["code"])  # replacing gives the first one back
    assert (await uses(first), await uses(second)) == (0, 1)
    removed = await cart.delete("/api/cart/promo", headers=user)
    assert removed.status_code == 200
    assert removed.json() == await cart_of(cart, user)  # the shopper's own cart, without the code
    assert removed.json()["promo"] is None and len(removed.json()["items"]) == 1
    assert await uses(second) == 0
    assert (await cart.delete("/api/cart/promo", headers=user)).status_code == 404
    await apply(cart, user, first["code"])
    await cart.delete("/api/cart", headers=user)  # emptying the cart gives it back too
    assert await uses(first) == 0


async def test_a_code_that_stops_qualifying_is_reported_not_dropped(cart, user, new_code, new_product):
    code = await new_code(kind="fixed", amount="5", min_subtotal="30")
    big = await cart_worth(cart, user, new_product, "25.00")
    await cart_worth(cart, user, new_product, "10.00")
    assert (await apply(cart, user, code["code"])).json()["discount"] == "5.00"
    body = (await cart.delete(f"/api/cart/items/{big['id']}", headers=user)).json()
    assert body["promo"]["code"] == code["code"]
    assert (body["promo"]["applies"], body["promo"]["reason"]) == (False, "below_minimum")
    assert (body["subtotal"], body["discount"], body["total"]) == ("10.00", "0.00", "10.00")


async def test_fifty_users_race_for_the_last_use_and_exactly_one_gets_it(cart, admin, new_code, new_product):
    code = await new_code(max_uses=1)
    users = [as_user(f"racer-{i}-{code['code']}") for i in range(50)]
    product = await new_product(price="10.00", stock=1000)
    for user in users:
        assert (await add(cart, user, product["id"], 1)).status_code == 200
    responses = await asyncio.gather(*(apply(cart, user, code["code"]) for user in users))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [422] * 49
    refusals = {(r.json()["reason"], r.json()["code"]) for r in responses if r.status_code == 422}
    assert refusals == {("used_up", code["code"])}
    assert (await cart.get(f"/api/promo-codes/{code['id']}", headers=admin)).json()["uses"] == 1


async def test_twelve_users_race_for_three_uses_and_exactly_three_get_one(
    cart, cart_env, catalog_transport, cart_db_url, admin, new_code, new_product
):
    # Every racer passes the checks made before the cart's transaction (the code is active, in
    # its window, with uses left when read): only take_use's guarded UPDATE, under the code's
    # row lock, can hand out exactly 3. The test holds that row lock (as an admin's edit of the
    # code would) until all 12 racers are waiting on it or have answered, so they all read the
    # code before any use is taken, whatever the timing; a pool of 12 lets all 12 get that far.
    code = await new_code(max_uses=3)
    users = [as_user(f"three-{i}-{code['code']}") for i in range(12)]
    product = await new_product(price="10.00", stock=1000)
    for user in users:
        assert (await add(cart, user, product["id"], 1)).status_code == 200
    env = {**cart_env, "DATABASE_POOL_MAX": "12"}
    async with serve_cart(env, catalog_transport) as (_, racing):
        gate, watcher = await asyncpg.connect(cart_db_url), await asyncpg.connect(cart_db_url)
        try:
            async with gate.transaction():
                await gate.execute("SELECT 1 FROM promo_codes WHERE id = $1 FOR NO KEY UPDATE", code["id"])
                racers = [asyncio.create_task(apply(racing, user, code["code"])) for user in users]

                async def all_waiting_or_done() -> bool:
                    waiting = await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                    return waiting + sum(racer.done() for racer in racers) >= len(racers)

                await until(all_waiting_or_done)
            responses = await asyncio.gather(*racers)
        finally:
            await gate.close()
            await watcher.close()
    answers = [(r.status_code, r.text) for r in responses]
    assert [answer for answer in answers if answer[0] >= 500] == [], answers
    assert sorted(r.status_code for r in responses) == [200] * 3 + [422] * 9, answers
    refused = [r.json() for r in responses if r.status_code == 422]
    assert {(body["reason"], body["code"]) for body in refused} == {("used_up", code["code"])}
    for user, response in zip(users, responses, strict=True):
        promo = (await cart_of(cart, user))["promo"]
        if response.status_code == 200:
            assert response.json()["discount"] == "1.00"
            assert (promo["code"], promo["applies"]) == (code["code"], True)
        else:
            assert promo is None
    assert (await cart.get(f"/api/promo-codes/{code['id']}", headers=admin)).json()["uses"] == 3


async def test_a_code_switched_off_while_it_is_being_applied_is_refused_and_its_use_given_back(
    cart, cart_db_url, admin, user, new_code, new_product
):
    # The shopper's request judges the code before its transaction (still active then), and
    # again as take_use locked it: the admin's change, committed in between, must win.
    code = await new_code(max_uses=5)
    await cart_worth(cart, user, new_product, "10.00")
    gate, watcher = await asyncpg.connect(cart_db_url), await asyncpg.connect(cart_db_url)
    try:
        async with gate.transaction():
            await gate.execute("UPDATE promo_codes SET is_active = false WHERE id = $1", code["id"])
            applying = asyncio.create_task(apply(cart, user, code["code"]))

            async def waiting_or_done() -> bool:
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                return waiting >= 1 or applying.done()

            await until(waiting_or_done)
        response = await applying
    finally:
        await gate.close()
        await watcher.close()
    assert response.status_code == 422, response.text
    assert (response.json()["reason"], response.json()["code"]) == ("inactive", code["code"])
    assert (await cart_of(cart, user))["promo"] is None
    stored = (await cart.get(f"/api/promo-codes/{code['id']}", headers=admin)).json()
    assert (stored["uses"], stored["is_active"]) == (0, False)
