"""The cart's HTTP API: shopper routes, promo code management, internal routes, and the problem
types of the cart's own errors."""
