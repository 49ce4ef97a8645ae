-- Decouple an existing deployment of the original services (the seed's "remove foreign keys").
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/legacy/remove_foreign_keys.sql
--
-- Run it against each old database (or the one shared database of a coupled deployment): it
-- only touches the tables that exist there. It drops the foreign keys the seed lists, whatever
-- a deployment named them: products -> categories, carts and wishlists -> users, and the cart
-- tables' links (cart_items -> carts, wishlist_items -> wishlists, cart_promo_codes -> carts and
-- promo_codes), as the seed's cart models drop every relationship. Any other foreign key is
-- kept. It makes products.category_id nullable, adds products.category_name and fills it from
-- categories. Every row is kept (the old users table included), and a second run changes
-- nothing. It is one transaction: it applies whole or not at all. A fresh deployment does not
-- need it: scripts/migrate builds the decoupled schema (which keeps the cart's own links).

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
        JOIN (VALUES
            ('products', 'categories'),
            ('carts', 'users'),
            ('wishlists', 'users'),
            ('cart_items', 'carts'),
            ('wishlist_items', 'wishlists'),
            ('cart_promo_codes', 'carts'),
            ('cart_promo_codes', 'promo_codes')
        ) AS listed (from_table, to_table)
          ON c.conrelid = to_regclass(listed.from_table) AND c.confrelid = to_regclass(listed.to_table)
        WHERE c.contype = 'f'
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
