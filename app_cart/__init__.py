"""app_cart: the cart service (carts, wishlists, promo codes). Built in the cart issue; its
database schema already lives in sql/cart/."""
