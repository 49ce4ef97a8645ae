"""Money in the cart: amounts are Decimal, rounded half-up to cents where a fraction of a cent appears."""

from decimal import Decimal

import pytest

from app_cart.domain.pricing import cents, line_total


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.125", "0.13"),  # half-even would give 0.12
        ("0.005", "0.01"),  # half-even would give 0.00
        ("2.345", "2.35"),
        ("0.124", "0.12"),
        ("0.1249999", "0.12"),
        ("0.126", "0.13"),
    ],
)
def test_cents_rounds_half_up(value, expected):
    assert cents(Decimal(value)) == Decimal(expected)


def test_cents_always_gives_two_decimal_places():
    assert [str(cents(Decimal(v))) for v in ("3", "3.1", "0")] == ["3.00", "3.10", "0.00"]


def test_line_total_is_unit_price_times_quantity():
    assert line_total(Decimal("19.99"), 3) == Decimal("59.97")


def test_line_total_is_given_in_cents():
    assert str(line_total(Decimal("5"), 2)) == "10.00"


def test_line_total_rounds_a_fraction_of_a_cent_half_up():
    assert line_total(Decimal("0.0025"), 2) == Decimal("0.01")


def test_line_total_of_zero_quantity_is_zero():
    assert line_total(Decimal("12.50"), 0) == Decimal("0.00")
