"""The catalog itself: categories and products, their rules and transactions, and their SQL."""
