"""app_product: the catalog service (categories and products), on PostgreSQL."""
