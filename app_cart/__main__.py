"""`python -m app_cart`: run the cart service."""

from app_cart.app import SERVICE, create_app
from app_cart.settings import CartSettings
from shared.http.app import serve

if __name__ == "__main__":
    serve(SERVICE, CartSettings, create_app, "app_cart.app:from_environment")
