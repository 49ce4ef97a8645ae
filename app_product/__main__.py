"""`python -m app_product`: run the catalog service."""

from app_product.app import SERVICE, create_app
from app_product.settings import CatalogSettings
from shared.http.app import serve

if __name__ == "__main__":
    serve(SERVICE, CatalogSettings, create_app, "app_product.app:from_environment")
