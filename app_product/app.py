"""The catalog's Starlette application."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Scope

from app_product.routes import routes
from app_product.settings import CatalogSettings
from shared.rate_limit import default_groups
from shared.service_app import build_app

SERVICE = "catalog"


def rate_limit_groups(scope: Scope) -> str | None:
    """Every catalog write needs the admin role, so it counts against the admin limits."""
    group = default_groups(scope)
    return "admin" if group == "writes" else group


def create_app(settings: CatalogSettings) -> Starlette:
    return build_app(SERVICE, settings, routes, rate_limit_groups=rate_limit_groups)
