"""The cart's HTTP contract: every operation, for its OpenAPI document (GET /openapi.json).
Types are the ones the routes parse and encode; `tests/integration/app_cart/api` fails when a
route is not described here."""

from __future__ import annotations

from typing import Any

from app_cart.api.schemas import (
    AddItem,
    AddToWishlist,
    ApplyPromo,
    MoveToCart,
    PromoPage,
    PromoQuery,
    SetQuantity,
)
from app_cart.services.models import CartView, PromoCode, PromoCreate, PromoPatch, WishlistView
from shared.events.envelope import Event
from shared.events.seed import SeedEvent
from shared.events.status import PipelineStatus
from shared.http import contract
from shared.http.openapi import Answer, Operation, ProblemDetails, document

ADMIN, SERVICE, USER = "admin", "service", "user"
WRITE = ("Idempotency-Key",)
REPLAYABLE = ("Idempotent-Replayed",)
REFUSED = Answer(
    422,
    "Refused by a rule of the cart (stock, limits, a product not for sale, a promo code).",
    ProblemDetails,
)
CATALOG_DOWN = Answer(
    503,
    "The catalog cannot be reached (or its circuit is open): try again after Retry-After.",
    ProblemDetails,
    ("Retry-After",),
)
CONFLICT = Answer(
    409,
    "Another request with this Idempotency-Key is in flight, or used it for another body.",
    ProblemDetails,
)
_ACCEPTED = {
    "type": "object",
    "properties": {"accepted": {"type": "string"}, "stream_id": {"type": "string"}},
    "required": ["accepted", "stream_id"],
}


def _cart_write(
    method: str,
    path: str,
    summary: str,
    body: type | None = None,
    more_answers: tuple[Answer, ...] = (),
    **more: Any,
) -> Operation:
    answers = (
        Answer(200, "The cart as it now is.", CartView, REPLAYABLE),
        REFUSED,
        CATALOG_DOWN,
        CONFLICT,
        *more_answers,
    )
    return Operation(
        method, path, summary, answers, tag="cart", body=body, access=USER, request_headers=WRITE, **more
    )


OPERATIONS = (
    Operation(
        "GET",
        "/api/cart",
        "Read my cart",
        (Answer(200, "The cart, priced now.", CartView),),
        tag="cart",
        access=USER,
    ),
    Operation(
        "DELETE",
        "/api/cart",
        "Empty my cart",
        (Answer(204, "Emptied.", None, REPLAYABLE), CONFLICT),
        tag="cart",
        access=USER,
        request_headers=WRITE,
    ),
    _cart_write("POST", "/api/cart/items", "Add a product to my cart", AddItem),
    _cart_write("PATCH", "/api/cart/items/{product_id}", "Set an item's quantity", SetQuantity),
    _cart_write("DELETE", "/api/cart/items/{product_id}", "Remove an item"),
    _cart_write("POST", "/api/cart/promo", "Apply a promo code", ApplyPromo),
    _cart_write(
        "DELETE",
        "/api/cart/promo",
        "Remove the promo code",
        more_answers=(Answer(404, "No promo code is applied to the cart.", ProblemDetails),),
    ),
    Operation(
        "GET",
        "/api/wishlist",
        "Read my wishlist",
        (Answer(200, "The wishlist.", WishlistView),),
        tag="wishlist",
        access=USER,
    ),
    Operation(
        "POST",
        "/api/wishlist/items",
        "Add a product to my wishlist",
        (
            Answer(201, "Added.", WishlistView, REPLAYABLE),
            Answer(200, "It was already there.", WishlistView, REPLAYABLE),
            REFUSED,
            CATALOG_DOWN,
            CONFLICT,
        ),
        tag="wishlist",
        body=AddToWishlist,
        access=USER,
        request_headers=WRITE,
    ),
    Operation(
        "DELETE",
        "/api/wishlist/items/{product_id}",
        "Remove a product from my wishlist",
        (Answer(200, "The wishlist as it now is.", WishlistView, REPLAYABLE), CONFLICT),
        tag="wishlist",
        access=USER,
        request_headers=WRITE,
    ),
    _cart_write(
        "POST",
        "/api/wishlist/items/{product_id}/move-to-cart",
        "Move a wishlist item to my cart",
        MoveToCart,
        body_required=False,
    ),
    Operation(
        "GET",
        "/api/promo-codes",
        "List promo codes",
        (Answer(200, "A page of codes.", PromoPage),),
        tag="promo codes",
        query=PromoQuery,
        access=ADMIN,
    ),
    Operation(
        "POST",
        "/api/promo-codes",
        "Create a promo code",
        (
            Answer(201, "Created.", PromoCode, REPLAYABLE),
            Answer(409, "A code has that name, or the key is in use.", ProblemDetails),
        ),
        tag="promo codes",
        body=PromoCreate,
        access=ADMIN,
        request_headers=WRITE,
    ),
    Operation(
        "GET",
        "/api/promo-codes/{id}",
        "Read a promo code",
        (Answer(200, "The code.", PromoCode, ("ETag",)),),
        tag="promo codes",
        access=ADMIN,
    ),
    Operation(
        "PATCH",
        "/api/promo-codes/{id}",
        "Change a promo code",
        (
            Answer(200, "Changed.", PromoCode, ("ETag",)),
            Answer(409, "Stale version, or a duplicate code.", ProblemDetails),
            Answer(412, "If-Match names a version that is no longer current.", ProblemDetails),
            Answer(428, "Neither If-Match nor `version` says which version was read.", ProblemDetails),
        ),
        tag="promo codes",
        body=PromoPatch,
        access=ADMIN,
        request_headers=("If-Match",),
    ),
    Operation(
        "DELETE",
        "/api/promo-codes/{id}",
        "Deactivate a promo code",
        (Answer(204, "Deactivated; the code stays readable, as carts refer to it."),),
        tag="promo codes",
        access=ADMIN,
    ),
    Operation(
        "POST",
        "/internal/events",
        "Append a catalog event to the stream",
        (Answer(202, "Appended; the workers apply it.", _ACCEPTED),),
        tag="internal",
        description=(
            "The body is a catalog event in our envelope, or in the seed's (`{event_type, payload,"
            " timestamp}`, told apart by `event_type`): appended as type `seed.<event_type>`, with an"
            " id derived from its content. A seed type the cart has no handler for is accepted, and"
            " parked by the workers after its retries."
        ),
        body=(Event, SeedEvent),
        access=SERVICE,
        database=False,
    ),
    Operation(
        "GET",
        "/internal/health",
        "The event pipeline: workers, lag, pending, dead",
        (Answer(200, "As Redis has it.", PipelineStatus),),
        tag="internal",
        access=SERVICE,
        database=False,
    ),
    *contract.OPERATIONS,
)


def openapi() -> dict[str, Any]:
    found = document(
        "storefront cart",
        "1.0.0",
        "A shopper's cart, wishlist and promo codes. Every /api/cart and /api/wishlist route acts "
        "for the token's user; writes take an Idempotency-Key and may be retried safely.",
        OPERATIONS,
    )
    # The route tells the two envelopes apart by `event_type` (`schemas.incoming_event`): ours
    # allows fields it does not know, so say that it never has that one, or a body of ours
    # with an `event_type` would match both shapes here while the route reads it as the seed's.
    body = found["paths"]["/internal/events"]["post"]["requestBody"]["content"]["application/json"]
    ours, seeds = body["schema"]["oneOf"]
    body["schema"]["oneOf"] = [{"allOf": [ours], "not": {"required": ["event_type"]}}, seeds]
    return found
