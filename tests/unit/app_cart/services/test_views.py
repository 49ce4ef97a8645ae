"""What a shopper sees: cart and wishlist rows joined with what the catalog (or its cache) says now.

Rows are shaped like those of `adapters.carts.cart_rows` and `adapters.wishlists.wishlist_rows`.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app_cart.services.views import cart_view, promo_terms, wishlist_view
from shared.resilience.cache_entries import Lookup, ProductData

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ADDED_AT = datetime(2024, 4, 1, 9, 30, tzinfo=UTC)

NO_PROMO: dict[str, Any] = {
    "code": None,
    "kind": None,
    "amount": None,
    "min_subtotal": None,
    "valid_from": None,
    "valid_until": None,
    "promo_is_active": None,
}


def product(
    product_id: int = 1,
    price: str = "10.00",
    stock: int = 10,
    is_active: bool = True,
    name: str = "Mug",
    category_name: str | None = "Kitchen",
) -> ProductData:
    return ProductData(
        id=product_id,
        name=name,
        price=Decimal(price),
        stock=stock,
        is_active=is_active,
        category_name=category_name,
        version=1,
    )


def lookup(*products: ProductData, stale: set[int] | None = None, unknown: set[int] | None = None) -> Lookup:
    return Lookup(found={p.id: p for p in products}, stale=stale or set(), unknown=unknown or set())


def promo(
    kind: str = "percent",
    amount: str = "10",
    min_subtotal: str = "0",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    is_active: bool = True,
) -> dict[str, Any]:
    return {
        "code": "SAVE10",
        "kind": kind,
        "amount": Decimal(amount),
        "min_subtotal": Decimal(min_subtotal),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "promo_is_active": is_active,
    }


def cart_row(
    product_id: int = 1,
    quantity: int = 1,
    price_when_added: str = "10.00",
    current_price: str | None = None,
    is_available: bool = True,
    product_name: str = "Old mug",
    category_name: str | None = "Old kitchen",
    with_promo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "now": NOW,
        "product_id": product_id,
        "quantity": quantity,
        "product_name": product_name,
        "category_name": category_name,
        "price_when_added": Decimal(price_when_added),
        "current_price": Decimal(current_price or price_when_added),
        "is_available": is_available,
        **(with_promo or NO_PROMO),
    }


def empty_cart_row(with_promo: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the LEFT JOIN gives for a cart with no items."""
    row = dict.fromkeys(("product_id", "quantity", "product_name", "category_name", "price_when_added"), None)
    row.update(current_price=None, is_available=None)
    return {"now": NOW, **row, **(with_promo or NO_PROMO)}


def wishlist_row(
    product_id: int = 1,
    price_when_added: str = "10.00",
    current_price: str | None = None,
    is_available: bool = True,
    product_name: str = "Old mug",
    category_name: str | None = "Old kitchen",
) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "product_name": product_name,
        "category_name": category_name,
        "price_when_added": Decimal(price_when_added),
        "current_price": Decimal(current_price or price_when_added),
        "is_available": is_available,
        "added_at": ADDED_AT,
    }


# Cart items


def test_an_item_shows_the_catalogs_current_name_category_and_price():
    view = cart_view([cart_row()], lookup(product(price="12.50", name="Mug", category_name="Kitchen")))
    item = view.items[0]
    assert (item.name, item.category_name, item.unit_price) == ("Mug", "Kitchen", Decimal("12.50"))


def test_an_item_keeps_the_price_it_was_added_at():
    view = cart_view([cart_row(price_when_added="10.00")], lookup(product(price="12.50")))
    assert view.items[0].price_when_added == Decimal("10.00")


def test_an_item_whose_price_moved_is_price_changed():
    view = cart_view([cart_row(price_when_added="10.00")], lookup(product(price="12.50")))
    assert view.items[0].price_changed is True


def test_an_item_at_the_price_it_was_added_at_is_not_price_changed():
    view = cart_view([cart_row(price_when_added="10.00")], lookup(product(price="10.0")))
    assert view.items[0].price_changed is False


def test_a_line_total_is_the_current_price_times_the_quantity():
    view = cart_view([cart_row(quantity=3, price_when_added="10.00")], lookup(product(price="12.50")))
    assert view.items[0].line_total == Decimal("37.50")


def test_an_available_item_has_no_unavailable_reason():
    item = cart_view([cart_row()], lookup(product())).items[0]
    assert (item.available, item.unavailable_reason) == (True, None)


def test_an_inactive_product_is_listed_as_unavailable():
    item = cart_view([cart_row()], lookup(product(is_active=False))).items[0]
    assert (item.available, item.unavailable_reason) == (False, "inactive")


def test_an_out_of_stock_product_is_listed_as_unavailable():
    item = cart_view([cart_row()], lookup(product(stock=0))).items[0]
    assert (item.available, item.unavailable_reason) == (False, "out_of_stock")


def test_stock_is_judged_against_the_items_quantity():
    item = cart_view([cart_row(quantity=3)], lookup(product(stock=2))).items[0]
    assert (item.available, item.unavailable_reason) == (False, "insufficient_stock")


def test_unavailable_items_stay_listed_but_count_in_no_money_total():
    rows = [cart_row(1, quantity=2), cart_row(2, quantity=1), cart_row(3, quantity=1)]
    view = cart_view(rows, lookup(product(1), product(2, price="5.00", is_active=False), product(3, stock=0)))
    assert ([i.product_id for i in view.items], view.subtotal, view.total) == (
        [1, 2, 3],
        Decimal("20.00"),
        Decimal("20.00"),
    )


def test_the_subtotal_sums_the_line_totals_of_available_items():
    rows = [cart_row(1, quantity=2), cart_row(2, quantity=3)]
    view = cart_view(rows, lookup(product(1, price="19.99"), product(2, price="0.50")))
    assert view.subtotal == Decimal("41.48")


def test_the_item_count_is_the_units_of_every_listed_item():
    rows = [cart_row(1, quantity=2), cart_row(2, quantity=4)]
    view = cart_view(rows, lookup(product(1), product(2, is_active=False)))
    assert view.item_count == 6


def test_items_keep_the_rows_order():
    rows = [cart_row(3), cart_row(1), cart_row(2)]
    view = cart_view(rows, lookup(product(1), product(2), product(3)))
    assert [i.product_id for i in view.items] == [3, 1, 2]


# When the catalog cannot say


def test_an_item_served_from_an_expired_cache_entry_is_stale():
    view = cart_view([cart_row(1), cart_row(2)], lookup(product(1), product(2), stale={2}))
    assert [(i.product_id, i.stale) for i in view.items] == [(1, False), (2, True)]


def test_a_cart_with_a_stale_item_is_stale():
    view = cart_view([cart_row(1), cart_row(2)], lookup(product(1), product(2), stale={2}))
    assert view.stale is True


def test_a_cart_with_current_data_is_not_stale():
    assert cart_view([cart_row(1)], lookup(product(1))).stale is False


def test_a_stale_item_still_shows_the_cached_product():
    view = cart_view([cart_row(price_when_added="10.00")], lookup(product(price="11.00"), stale={1}))
    assert (view.items[0].unit_price, view.items[0].name) == (Decimal("11.00"), "Mug")


def test_an_unknown_product_falls_back_to_the_rows_snapshot():
    row = cart_row(quantity=2, price_when_added="10.00", current_price="9.00", product_name="Snap mug")
    item = cart_view([row], lookup(unknown={1})).items[0]
    assert (item.name, item.category_name, item.unit_price, item.line_total) == (
        "Snap mug",
        "Old kitchen",
        Decimal("9.00"),
        Decimal("18.00"),
    )


def test_an_unknown_product_is_marked_stale():
    view = cart_view([cart_row()], lookup(unknown={1}))
    assert (view.items[0].stale, view.stale) == (True, True)


def test_an_unknown_product_whose_snapshot_was_available_counts_in_the_subtotal():
    view = cart_view([cart_row(quantity=2, current_price="9.00")], lookup(unknown={1}))
    assert (view.items[0].available, view.subtotal) == (True, Decimal("18.00"))


def test_an_unknown_product_whose_snapshot_was_unavailable_is_unavailable():
    view = cart_view([cart_row(is_available=False)], lookup(unknown={1}))
    item = view.items[0]
    assert (item.available, item.unavailable_reason is not None, view.subtotal) == (
        False,
        True,
        Decimal("0.00"),
    )


def test_an_unknown_product_compares_its_snapshot_price_with_the_price_when_added():
    item = cart_view([cart_row(price_when_added="10.00", current_price="9.00")], lookup(unknown={1})).items[0]
    assert item.price_changed is True


def test_a_product_the_catalog_does_not_have_is_deleted():
    item = cart_view([cart_row()], lookup()).items[0]
    assert (item.available, item.unavailable_reason) == (False, "deleted")


def test_a_deleted_product_is_current_news_not_stale():
    view = cart_view([cart_row()], lookup())
    assert (view.items[0].stale, view.stale) == (False, False)


def test_a_deleted_product_shows_its_last_snapshot_and_counts_in_no_total():
    view = cart_view([cart_row(current_price="9.00", product_name="Snap mug")], lookup())
    assert (view.items[0].name, view.items[0].unit_price, view.subtotal) == (
        "Snap mug",
        Decimal("9.00"),
        Decimal("0.00"),
    )


# Empty carts


def test_an_empty_cart_row_gives_no_items():
    view = cart_view([empty_cart_row()], lookup())
    assert (view.items, view.item_count, view.subtotal, view.total, view.promo, view.stale) == (
        [],
        0,
        Decimal("0.00"),
        Decimal("0.00"),
        None,
        False,
    )


def test_no_rows_at_all_give_an_empty_cart():
    view = cart_view([], lookup())
    assert (view.items, view.subtotal, view.discount, view.total, view.promo) == (
        [],
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("0.00"),
        None,
    )


def test_a_promo_on_an_empty_cart_is_still_reported_with_no_discount():
    view = cart_view([empty_cart_row(promo(min_subtotal="0"))], lookup())
    assert (view.promo is not None, view.discount, view.total) == (True, Decimal("0.00"), Decimal("0.00"))


# Promo codes in a cart


def test_a_cart_without_a_code_has_no_promo_and_no_discount():
    view = cart_view([cart_row()], lookup(product()))
    assert (view.promo, view.discount) == (None, Decimal("0.00"))


def test_a_qualifying_promo_applies_with_its_discount():
    view = cart_view([cart_row(quantity=2, with_promo=promo(amount="10"))], lookup(product(price="19.99")))
    assert (view.promo.applies, view.promo.reason, view.promo.discount) == (True, None, Decimal("4.00"))


def test_the_total_is_the_subtotal_less_the_discount():
    view = cart_view([cart_row(quantity=2, with_promo=promo(amount="10"))], lookup(product(price="19.99")))
    assert (view.subtotal, view.discount, view.total) == (Decimal("39.98"), Decimal("4.00"), Decimal("35.98"))


def test_the_promo_view_describes_the_code():
    row = cart_row(with_promo=promo(kind="fixed", amount="5.00", min_subtotal="20.00"))
    p = cart_view([row], lookup(product(price="25.00"))).promo
    assert (p.code, p.kind, p.amount, p.min_subtotal) == (
        "SAVE10",
        "fixed",
        Decimal("5.00"),
        Decimal("20.00"),
    )


def test_a_fixed_promo_never_makes_the_total_negative():
    view = cart_view([cart_row(with_promo=promo(kind="fixed", amount="30.00"))], lookup(product()))
    assert (view.discount, view.total) == (Decimal("10.00"), Decimal("0.00"))


def test_a_promo_below_its_minimum_is_reported_not_dropped():
    view = cart_view([cart_row(with_promo=promo(min_subtotal="50.00"))], lookup(product()))
    assert (view.promo.applies, view.promo.reason, view.promo.discount) == (
        False,
        "below_minimum",
        Decimal("0.00"),
    )


def test_a_promo_that_stops_qualifying_gives_no_discount_and_the_full_total():
    view = cart_view([cart_row(with_promo=promo(min_subtotal="50.00"))], lookup(product()))
    assert (view.discount, view.total) == (Decimal("0.00"), view.subtotal)


def test_a_promo_minimum_counts_only_available_items():
    rows = [
        cart_row(1, with_promo=promo(min_subtotal="50.00")),
        cart_row(2, with_promo=promo(min_subtotal="50.00")),
    ]
    view = cart_view(rows, lookup(product(1, price="20.00"), product(2, price="40.00", stock=0)))
    assert (view.subtotal, view.promo.reason) == (Decimal("20.00"), "below_minimum")


def test_a_percent_promo_is_taken_off_the_available_subtotal_only():
    rows = [cart_row(1, with_promo=promo(amount="50")), cart_row(2, with_promo=promo(amount="50"))]
    view = cart_view(rows, lookup(product(1, price="20.00"), product(2, price="40.00", is_active=False)))
    assert view.discount == Decimal("10.00")


def test_a_promo_is_judged_by_the_rows_clock_and_expires_at_its_end():
    view = cart_view([cart_row(with_promo=promo(valid_until=NOW))], lookup(product()))
    assert (view.promo.applies, view.promo.reason, view.discount) == (False, "expired", Decimal("0.00"))


def test_a_promo_before_its_start_by_the_rows_clock_is_not_yet_valid():
    view = cart_view([cart_row(with_promo=promo(valid_from=NOW + timedelta(seconds=1)))], lookup(product()))
    assert (view.promo.applies, view.promo.reason) == (False, "not_yet_valid")


def test_a_deactivated_promo_is_reported_as_inactive():
    view = cart_view([cart_row(with_promo=promo(is_active=False))], lookup(product()))
    assert (view.promo.applies, view.promo.reason, view.discount) == (False, "inactive", Decimal("0.00"))


def test_promo_terms_read_the_code_from_a_row():
    row = cart_row(with_promo=promo(kind="fixed", amount="5.00", min_subtotal="20.00", valid_until=NOW))
    terms = promo_terms(row, is_active=True)
    assert (
        terms.code,
        terms.kind,
        terms.amount,
        terms.min_subtotal,
        terms.valid_from,
        terms.valid_until,
    ) == (
        "SAVE10",
        "fixed",
        Decimal("5.00"),
        Decimal("20.00"),
        None,
        NOW,
    )


def test_promo_terms_take_is_active_from_the_caller_not_the_row():
    row = cart_row(with_promo=promo(is_active=True))
    assert promo_terms(row, is_active=False).is_active is False


# Wishlists


def test_a_wishlist_item_shows_the_catalogs_current_data():
    item = wishlist_view([wishlist_row(price_when_added="10.00")], lookup(product(price="8.00"))).items[0]
    assert (item.name, item.category_name, item.price, item.price_when_added, item.price_changed) == (
        "Mug",
        "Kitchen",
        Decimal("8.00"),
        Decimal("10.00"),
        True,
    )


def test_a_wishlist_item_keeps_when_it_was_added():
    assert wishlist_view([wishlist_row()], lookup(product())).items[0].added_at == ADDED_AT


def test_a_wishlist_item_at_its_added_price_is_not_price_changed():
    assert wishlist_view([wishlist_row()], lookup(product(price="10.00"))).items[0].price_changed is False


def test_an_out_of_stock_wishlist_item_is_listed_as_unavailable():
    item = wishlist_view([wishlist_row()], lookup(product(stock=0))).items[0]
    assert (item.available, item.unavailable_reason) == (False, "out_of_stock")


def test_a_wishlist_item_needs_only_one_unit_in_stock():
    item = wishlist_view([wishlist_row()], lookup(product(stock=1))).items[0]
    assert (item.available, item.unavailable_reason) == (True, None)


def test_a_wishlist_item_the_catalog_does_not_have_is_deleted():
    item = wishlist_view([wishlist_row()], lookup()).items[0]
    assert (item.available, item.unavailable_reason, item.stale) == (False, "deleted", False)


def test_a_wishlist_item_served_from_an_expired_cache_entry_is_stale():
    view = wishlist_view([wishlist_row(1), wishlist_row(2)], lookup(product(1), product(2), stale={1}))
    assert [i.stale for i in view.items] == [True, False]


def test_an_unknown_wishlist_product_falls_back_to_the_rows_snapshot_marked_stale():
    row = wishlist_row(current_price="7.00", product_name="Snap mug")
    item = wishlist_view([row], lookup(unknown={1})).items[0]
    assert (item.name, item.price, item.available, item.stale) == ("Snap mug", Decimal("7.00"), True, True)


def test_an_empty_wishlist_has_no_items():
    assert wishlist_view([], lookup()).items == []
