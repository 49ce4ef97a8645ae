"""The one rule for whether a product can be bought now, or kept on a wishlist."""

from dataclasses import dataclass

import pytest

from app_cart.domain.availability import is_available, unavailable_reason, wishlist_refusal


@dataclass(frozen=True)
class Product:
    is_active: bool = True
    stock: int = 10


def test_a_product_that_no_longer_exists_is_deleted():
    assert unavailable_reason(None) == "deleted"


def test_an_inactive_product_is_inactive_whatever_its_stock():
    assert unavailable_reason(Product(is_active=False, stock=100)) == "inactive"


@pytest.mark.parametrize("stock", [0, -1])
def test_a_product_with_no_stock_is_out_of_stock(stock):
    assert unavailable_reason(Product(stock=stock)) == "out_of_stock"


def test_an_empty_stock_is_out_of_stock_even_for_a_larger_quantity():
    assert unavailable_reason(Product(stock=0), quantity=5) == "out_of_stock"


def test_less_stock_than_the_quantity_is_insufficient_stock():
    assert unavailable_reason(Product(stock=2), quantity=3) == "insufficient_stock"


def test_stock_equal_to_the_quantity_can_be_bought():
    assert unavailable_reason(Product(stock=3), quantity=3) is None


def test_one_unit_is_asked_for_by_default():
    assert unavailable_reason(Product(stock=1)) is None


@pytest.mark.parametrize(
    ("product", "expected"),
    [
        (Product(is_active=True, stock=1), True),
        (Product(is_active=True, stock=0), False),
        (Product(is_active=False, stock=5), False),
        (None, False),
    ],
)
def test_is_available_only_for_an_active_product_in_stock(product, expected):
    assert is_available(product) is expected


@pytest.mark.parametrize("product", [Product(stock=0), Product(stock=-3)])
def test_a_wishlist_takes_an_out_of_stock_product(product):
    assert wishlist_refusal(product) is None


def test_a_wishlist_takes_an_active_product_in_stock():
    assert wishlist_refusal(Product()) is None


def test_a_wishlist_refuses_a_deleted_product():
    assert wishlist_refusal(None) == "deleted"


def test_a_wishlist_refuses_an_inactive_product_even_out_of_stock():
    assert wishlist_refusal(Product(is_active=False, stock=0)) == "inactive"
