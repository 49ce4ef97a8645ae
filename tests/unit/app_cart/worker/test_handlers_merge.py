"""How a batch of catalog product events collapses to what applying them in version order leaves:
one snapshot per product (its newest state), deletion versions, and versions for the cache."""

from decimal import Decimal
from itertools import permutations
from typing import Any

import pytest

from app_cart.worker.handlers import merge, newest, snapshot_of
from shared.events.envelope import PRODUCT_CREATED, PRODUCT_DELETED, PRODUCT_UPDATED, Event, new_event


def state(
    product_id: int = 1,
    price: str = "10.00",
    stock: int = 5,
    is_active: bool = True,
    name: str = "Mug",
    category_name: str | None = "Kitchen",
    **more: Any,
) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": name,
        "price": price,
        "stock": stock,
        "is_active": is_active,
        "category_name": category_name,
        **more,
    }


def updated(product_id: int, version: int, **fields: Any) -> Event:
    return new_event(PRODUCT_UPDATED, product_id, version, state(product_id, **fields), sorted(fields))


def created(product_id: int, version: int = 1, **fields: Any) -> Event:
    return new_event(PRODUCT_CREATED, product_id, version, state(product_id, **fields))


def deleted(product_id: int, version: int) -> Event:
    return new_event(PRODUCT_DELETED, product_id, version, None)


def snapshots_by_product(events: list[Event]) -> dict[int, tuple[int, Decimal]]:
    states, _, _ = merge(events)
    return {s.product_id: (s.version, s.price) for s in states}


# newest


def test_newest_keeps_the_highest_version_of_each_aggregate():
    events = [updated(1, 3), updated(2, 7), updated(1, 5), updated(2, 6)]
    assert {pid: e.version for pid, e in newest(events).items()} == {1: 5, 2: 7}


def test_newest_keeps_one_of_duplicates():
    first, duplicate = updated(1, 4), updated(1, 4)
    assert newest([first, duplicate]) == {1: first}


def test_newest_of_nothing_is_empty():
    assert newest([]) == {}


# merge: states


@pytest.mark.parametrize(
    "order",
    list(permutations([(2, "12.00"), (3, "15.00"), (1, "10.00")])),
)
def test_the_newest_state_of_a_product_wins_whatever_the_order(order):
    events = [updated(1, version, price=price) for version, price in order]
    assert snapshots_by_product(events) == {1: (3, Decimal("15.00"))}


def test_each_product_gets_one_snapshot_of_its_own_newest_state():
    events = [
        updated(1, 2, price="1.00"),
        updated(2, 9, price="9.00"),
        updated(1, 4, price="4.00"),
        created(2, 1),
    ]
    assert snapshots_by_product(events) == {1: (4, Decimal("4.00")), 2: (9, Decimal("9.00"))}


def test_a_newer_event_without_a_state_does_not_hide_an_older_state():
    events = [updated(1, 2, price="12.00"), new_event(PRODUCT_UPDATED, 1, 3, None)]
    assert snapshots_by_product(events) == {1: (2, Decimal("12.00"))}


def test_a_stateless_event_still_reports_its_version_for_the_cache():
    events = [updated(1, 2, price="12.00"), new_event(PRODUCT_UPDATED, 1, 3, None)]
    assert merge(events)[2] == {1: 3}


def test_a_product_whose_events_have_no_state_gets_no_snapshot():
    assert merge([new_event(PRODUCT_UPDATED, 1, 3, None)])[0] == []


# merge: deletions and the cache


def test_a_deletion_reports_its_version():
    assert merge([created(1, 1), updated(1, 2), deleted(1, 3)])[1] == {1: 3}


def test_a_deleted_product_is_not_reported_as_changed():
    _, _, changed = merge([created(1, 1), updated(1, 2), deleted(1, 3)])
    assert 1 not in changed


def test_a_deleted_products_last_state_is_still_applied_before_the_deletion():
    assert snapshots_by_product([deleted(1, 3), updated(1, 2, price="7.00")]) == {1: (2, Decimal("7.00"))}


def test_a_replayed_deletion_reports_the_newest_deletion_version():
    assert merge([deleted(1, 6), deleted(1, 8), deleted(1, 6)])[1] == {1: 8}


def test_a_deletion_alone_gives_no_state_and_no_change():
    states, gone, changed = merge([deleted(4, 2)])
    assert (states, gone, changed) == ([], {4: 2}, {})


def test_a_deletion_leaves_other_products_changed():
    _, gone, changed = merge([updated(1, 2), deleted(2, 5), updated(3, 4), updated(1, 3)])
    assert (gone, changed) == ({2: 5}, {1: 3, 3: 4})


def test_changed_reports_the_newest_version_of_each_product_still_there():
    events = [created(1, 1), updated(1, 3), updated(1, 2), created(2, 1)]
    assert merge(events)[2] == {1: 3, 2: 1}


def test_an_empty_batch_changes_nothing():
    assert merge([]) == ([], {}, {})


# snapshot_of


def test_a_snapshot_carries_the_events_product_and_version():
    event = updated(7, 12, name="Teapot", category_name="Kitchen", price="24.90")
    snapshot = snapshot_of(event)
    assert (snapshot.product_id, snapshot.version, snapshot.name, snapshot.category_name) == (
        7,
        12,
        "Teapot",
        "Kitchen",
    )


def test_a_snapshot_reads_the_price_as_a_decimal_from_a_string():
    price = snapshot_of(updated(1, 2, price="19.90")).price
    assert (type(price), price) == (Decimal, Decimal("19.90"))


def test_a_snapshot_keeps_a_missing_category():
    assert snapshot_of(updated(1, 2, category_name=None)).category_name is None


@pytest.mark.parametrize(
    ("is_active", "stock", "expected"),
    [(True, 3, True), (True, 1, True), (True, 0, False), (False, 3, False), (False, 0, False)],
)
def test_a_snapshot_is_available_by_the_availability_rule(is_active, stock, expected):
    assert snapshot_of(updated(1, 2, is_active=is_active, stock=stock)).is_available is expected


def test_a_snapshot_ignores_fields_the_cart_does_not_read():
    event = new_event(PRODUCT_UPDATED, 1, 2, state(1, description="Blue", sku="MUG-1", category_id=4))
    assert snapshot_of(event).name == "Mug"
