"""The problem types of the cart's own domain errors, beside the shared ones."""

from __future__ import annotations

from collections.abc import Mapping

from app_cart.adapters.catalog_client import CatalogUnavailable
from app_cart.domain.promo import PromoRefused
from shared.errors import DomainError
from shared.http.problems import ProblemType

PROBLEMS: Mapping[type[DomainError], ProblemType] = {
    PromoRefused: ProblemType(422, "promo-code-refused", "The promo code cannot be applied"),
    CatalogUnavailable: ProblemType(503, "catalog-unavailable", "The catalog cannot be reached"),
}
