"""Domain errors: what a service function raises when it refuses, in the service's own words.

They know nothing of HTTP. The API layer (`shared.http.problems`) maps each class to a status
and a problem type, walking the class's ancestors, so a service's own error (a refused promo
code, an unreachable catalog) subclasses one of these and the service's API registers its
problem type beside the shared ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec


class FieldError(msgspec.Struct, frozen=True):
    """One invalid input: `field` is a dotted path into the body or a query parameter name."""

    field: str
    message: str


class DomainError(Exception):
    """A refusal: `detail` for a person, `errors` naming the inputs at fault, `retry_after`
    (seconds) when trying again later may succeed, and any further facts as `extensions`."""

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        retry_after: int | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.retry_after = retry_after
        self.extensions = extensions


class NotFound(DomainError):
    """What was named does not exist."""


class Conflict(DomainError):
    """The change would break an invariant held by data (a duplicate, a category in use)."""


class StaleVersion(Conflict):
    """The writer read a version that is no longer the current one."""


class PreconditionFailed(StaleVersion):
    """As StaleVersion, when the writer stated its version as a precondition (If-Match)."""


class ValidationFailed(DomainError):
    """The input is well-formed but breaks a rule (a limit, a product not for sale)."""


class Unavailable(DomainError):
    """A dependency cannot answer now; the same request may succeed later."""


def invalid(field: str, message: str, **extensions: Any) -> ValidationFailed:
    """A ValidationFailed naming one field."""
    return ValidationFailed(
        f"{field}: {message}", errors=[FieldError(field=field, message=message)], **extensions
    )
