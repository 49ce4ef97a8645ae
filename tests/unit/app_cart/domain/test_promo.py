"""Promo code rules: when a code applies to a cart (judged at a given time) and what it takes off."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app_cart.domain.promo import PromoRefused, PromoTerms, Refusal, discount, refusal
from shared.errors import ValidationFailed

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def terms(
    kind: str = "percent",
    amount: str = "10",
    min_subtotal: str = "0",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    is_active: bool = True,
) -> PromoTerms:
    return PromoTerms(
        code="SAVE10",
        kind=kind,
        amount=Decimal(amount),
        min_subtotal=Decimal(min_subtotal),
        valid_from=valid_from,
        valid_until=valid_until,
        is_active=is_active,
    )


def test_an_active_code_without_limits_applies():
    assert refusal(terms(), NOW, Decimal("10.00")) is None


def test_an_inactive_code_is_refused_as_inactive():
    assert refusal(terms(is_active=False), NOW, Decimal("10.00")) is Refusal.INACTIVE


def test_a_code_before_its_start_is_not_yet_valid():
    assert refusal(terms(valid_from=NOW + TICK), NOW, Decimal("10.00")) is Refusal.NOT_YET_VALID


def test_a_code_applies_from_the_instant_it_starts():
    assert refusal(terms(valid_from=NOW), NOW, Decimal("10.00")) is None


def test_a_code_expires_at_the_instant_of_its_end():
    assert refusal(terms(valid_until=NOW), NOW, Decimal("10.00")) is Refusal.EXPIRED


def test_a_code_is_expired_after_its_end():
    assert refusal(terms(valid_until=NOW - timedelta(days=1)), NOW, Decimal("10.00")) is Refusal.EXPIRED


def test_a_code_still_applies_just_before_its_end():
    assert refusal(terms(valid_until=NOW + TICK), NOW, Decimal("10.00")) is None


def test_a_code_applies_inside_its_window():
    window = terms(valid_from=NOW - timedelta(hours=1), valid_until=NOW + timedelta(hours=1))
    assert refusal(window, NOW, Decimal("10.00")) is None


def test_a_subtotal_below_the_minimum_is_refused():
    assert refusal(terms(min_subtotal="50.00"), NOW, Decimal("49.99")) is Refusal.BELOW_MINIMUM


def test_a_subtotal_equal_to_the_minimum_applies():
    assert refusal(terms(min_subtotal="50.00"), NOW, Decimal("50.00")) is None


def test_refusal_values_are_what_clients_see():
    assert [r.value for r in (Refusal.INACTIVE, Refusal.NOT_YET_VALID, Refusal.EXPIRED)] == [
        "inactive",
        "not_yet_valid",
        "expired",
    ]


def test_a_percent_discount_is_that_share_of_the_subtotal():
    assert discount(terms(amount="10"), Decimal("50.00")) == Decimal("5.00")


@pytest.mark.parametrize(
    ("amount", "subtotal", "expected"),
    [
        ("10", "19.99", "2.00"),  # 1.999
        ("12.5", "0.20", "0.03"),  # 0.025: half-even would give 0.02
        ("15", "0.30", "0.05"),  # 0.045: half-even would give 0.04
        ("10", "0.04", "0.00"),  # 0.004
    ],
)
def test_a_percent_discount_is_rounded_half_up_to_cents(amount, subtotal, expected):
    assert str(discount(terms(amount=amount), Decimal(subtotal))) == expected


def test_a_percent_discount_never_exceeds_the_subtotal():
    assert discount(terms(amount="150"), Decimal("20.00")) == Decimal("20.00")


def test_a_fixed_discount_is_its_amount():
    assert discount(terms(kind="fixed", amount="5.00"), Decimal("20.00")) == Decimal("5.00")


def test_a_fixed_discount_is_capped_at_the_subtotal():
    assert discount(terms(kind="fixed", amount="30.00"), Decimal("20.00")) == Decimal("20.00")


def test_any_discount_on_an_empty_subtotal_is_zero():
    assert [discount(terms(kind=kind), Decimal("0.00")) for kind in ("percent", "fixed")] == [0, 0]


def test_promo_refused_is_a_validation_failure():
    assert isinstance(PromoRefused(Refusal.EXPIRED, "SAVE10"), ValidationFailed)


def test_promo_refused_carries_the_reason_and_the_code():
    error = PromoRefused(Refusal.EXPIRED, "SAVE10")
    assert (error.reason, error.extensions) == (Refusal.EXPIRED, {"reason": "expired", "code": "SAVE10"})


def test_promo_refused_passes_further_extensions_on():
    error = PromoRefused(Refusal.BELOW_MINIMUM, "SAVE10", min_subtotal="50.00")
    assert error.extensions == {"reason": "below_minimum", "code": "SAVE10", "min_subtotal": "50.00"}


@pytest.mark.parametrize("reason", list(Refusal))
def test_every_refusal_has_a_message_for_a_person(reason):
    assert PromoRefused(reason, "SAVE10").detail
