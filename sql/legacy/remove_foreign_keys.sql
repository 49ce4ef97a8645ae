-- Decouple an existing deployment of the original services (the seed's "remove foreign keys").
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/legacy/remove_foreign_keys.sql
--
-- Run it against each old database (or the one shared database of a coupled deployment): it
-- only touches the tables that exist there. It drops the foreign keys the seed lists, and any
-- other foreign key on the same tables (a hand-made deployment may have named them differently),
-- makes products.category_id nullable, adds products.category_name and fills it from categories.
-- Every row is kept (the old users table included), and a second run changes nothing. It is
-- one transaction: it applies whole or not at all. A fresh deployment does not need it;
-- scripts/migrate builds the decoupled schema directly.

BEGIN;

-- Waiting behind a long transaction for ACCESS EXCLUSIVE would stall all traffic on the
-- table; give up instead, and run it again at a quieter moment.
SET LOCAL lock_timeout = '10s';

DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS table_name, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f'
          AND c.conrelid = ANY (ARRAY[
              to_regclass('products'),
              to_regclass('carts'),
              to_regclass('cart_items'),
              to_regclass('wishlists'),
              to_regclass('wishlist_items'),
              to_regclass('cart_promo_codes')
          ])
        ORDER BY c.conname
    LOOP
        RAISE NOTICE 'dropping foreign key % on %', fk.conname, fk.table_name;
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.table_name, fk.conname);
    END LOOP;
END
$$;

ALTER TABLE IF EXISTS products ALTER COLUMN category_id DROP NOT NULL;
ALTER TABLE IF EXISTS products ADD COLUMN IF NOT EXISTS category_name varchar(100);

DO $$
BEGIN
    IF to_regclass('products') IS NOT NULL AND to_regclass('categories') IS NOT NULL THEN
        UPDATE products p
        SET category_name = c.name
        FROM categories c
        WHERE c.id = p.category_id
          AND p.category_name IS DISTINCT FROM c.name;
    END IF;
END
$$;

COMMIT;
