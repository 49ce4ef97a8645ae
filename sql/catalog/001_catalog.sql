-- The catalog: categories and products.
--
-- products.category_id has no foreign key, by design (the services are decoupled, and a
-- category's products are denormalised with its name): the catalog service checks the category
-- in the same transaction as the write, and `python -m app_product.reconcile` reports drift.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE categories (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    is_active   boolean     NOT NULL DEFAULT true,
    version     integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- "Shoes" and "shoes" are the same category to a shopper.
CREATE UNIQUE INDEX categories_name_key ON categories (lower(name));

CREATE TABLE products (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku           text          NOT NULL CHECK (char_length(sku) BETWEEN 1 AND 64),
    name          text          NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description   text          NOT NULL DEFAULT '' CHECK (char_length(description) <= 5000),
    -- Exact money: never a float.
    price         numeric(12,2) NOT NULL CHECK (price >= 0),
    stock         integer       NOT NULL DEFAULT 0 CHECK (stock >= 0),
    is_active     boolean       NOT NULL DEFAULT true,
    category_id   bigint,
    category_name text,
    version       integer       NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT products_sku_key UNIQUE (sku),
    CONSTRAINT products_category_name_present CHECK ((category_id IS NULL) = (category_name IS NULL))
);

-- The list query pages by id (keyset) under optional filters.
CREATE INDEX products_category_id_idx ON products (category_id, id);
CREATE INDEX products_active_id_idx ON products (is_active, id);
-- Substring name search (ILIKE '%q%').
CREATE INDEX products_name_trgm_idx ON products USING gin (name gin_trgm_ops);
