"""What the cart does: reading and changing carts and wishlists, applying promo codes, managing
codes; each write one transaction. Services raise domain errors and return views."""
