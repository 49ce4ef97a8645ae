"""The catalog's Starlette application."""

from __future__ import annotations

from starlette.applications import Starlette

from app_product.routes import routes
from app_product.settings import CatalogSettings
from shared.service_app import build_app

SERVICE = "catalog"


def create_app(settings: CatalogSettings) -> Starlette:
    return build_app(SERVICE, settings, routes)
