"""The cart's pure rules, with no I/O: money, whether a product can be bought, promo codes."""
