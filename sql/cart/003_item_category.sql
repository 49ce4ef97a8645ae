-- The category each item's product snapshot is in, so an event about a category (the seed's
-- category.updated, POST /internal/events) finds the items of its products. Null for a product
-- without a category, and for items written before this migration until the backfill
-- (`python -m app_cart.tools.backfill_categories`) fills them from the catalog.
-- Indexed for that lookup; events that leave an item's category as it was still update in
-- place (HOT), as the value of an indexed column does not change. The migration runs in one
-- transaction, so the indexes are built without CONCURRENTLY, blocking writes to the item
-- tables while they build: on large live tables, create them first by hand with
-- `CREATE INDEX CONCURRENTLY IF NOT EXISTS ...` (the same names), and this file's
-- `IF NOT EXISTS` then skips them.
ALTER TABLE cart_items ADD COLUMN category_id bigint;
ALTER TABLE wishlist_items ADD COLUMN category_id bigint;
CREATE INDEX IF NOT EXISTS cart_items_category_id_idx ON cart_items (category_id) WHERE category_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS wishlist_items_category_id_idx ON wishlist_items (category_id) WHERE category_id IS NOT NULL;
