"""app_cart: the cart service (carts, wishlists, promo codes for JWT users), on PostgreSQL."""
