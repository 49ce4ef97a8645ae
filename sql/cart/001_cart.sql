-- Carts, wishlists, promo codes, and idempotency keys.
--
-- Users live in the auth service and products in the catalog: user_id and product_id are plain
-- columns with no foreign key to another service's data. Each item keeps a snapshot of its
-- product (name, category name, prices, availability, version) so a cart can be shown when the
-- catalog cannot be reached; catalog events keep the snapshot current. Foreign keys between
-- this service's own tables stay: they cost nothing across services and keep the data whole.

CREATE TABLE carts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT carts_user_id_key UNIQUE (user_id)
);

CREATE TABLE cart_items (
    cart_id          bigint        NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id       bigint        NOT NULL,
    -- The service enforces MAX_ITEM_QUANTITY; this is the backstop.
    quantity         integer       NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    product_name     text          NOT NULL,
    category_name    text,
    price_when_added numeric(12,2) NOT NULL CHECK (price_when_added >= 0),
    -- The last price and availability seen (at a write, or from a catalog event).
    current_price    numeric(12,2) NOT NULL CHECK (current_price >= 0),
    is_available     boolean       NOT NULL,
    product_version  integer       NOT NULL,
    added_at         timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (cart_id, product_id)
);
-- Catalog events update every item holding a product.
CREATE INDEX cart_items_product_id_idx ON cart_items (product_id);

CREATE TABLE wishlists (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wishlists_user_id_key UNIQUE (user_id)
);

CREATE TABLE wishlist_items (
    wishlist_id      bigint        NOT NULL REFERENCES wishlists (id) ON DELETE CASCADE,
    product_id       bigint        NOT NULL,
    product_name     text          NOT NULL,
    category_name    text,
    price_when_added numeric(12,2) NOT NULL CHECK (price_when_added >= 0),
    current_price    numeric(12,2) NOT NULL CHECK (current_price >= 0),
    is_available     boolean       NOT NULL,
    product_version  integer       NOT NULL,
    added_at         timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (wishlist_id, product_id)
);
CREATE INDEX wishlist_items_product_id_idx ON wishlist_items (product_id);

CREATE TABLE promo_codes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored upper case; shoppers may type it in any case.
    code          text          NOT NULL CHECK (code ~ '^[A-Z0-9_-]{3,32}$'),
    kind          text          NOT NULL CHECK (kind IN ('percent', 'fixed')),
    amount        numeric(12,2) NOT NULL CHECK (amount > 0),
    min_subtotal  numeric(12,2) NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
    valid_from    timestamptz,
    valid_until   timestamptz,
    max_uses      integer       CHECK (max_uses IS NULL OR max_uses >= 1),
    -- Carts holding the code now: applying takes a use, removing gives it back.
    uses          integer       NOT NULL DEFAULT 0 CHECK (uses >= 0),
    once_per_user boolean       NOT NULL DEFAULT false,
    is_active     boolean       NOT NULL DEFAULT true,
    version       integer       NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT promo_codes_code_key UNIQUE (code),
    CONSTRAINT promo_codes_percent_range CHECK (kind <> 'percent' OR amount <= 100),
    CONSTRAINT promo_codes_window CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_from < valid_until),
    -- The last use can be taken once: the counter can never pass the limit.
    CONSTRAINT promo_codes_uses_within_limit CHECK (max_uses IS NULL OR uses <= max_uses)
);

-- At most one code per cart.
CREATE TABLE cart_promo_codes (
    cart_id       bigint      PRIMARY KEY REFERENCES carts (id) ON DELETE CASCADE,
    promo_code_id bigint      NOT NULL REFERENCES promo_codes (id),
    applied_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cart_promo_codes_promo_code_id_idx ON cart_promo_codes (promo_code_id);

-- Who has ever applied a code: a once-per-user code cannot be applied again by the same user,
-- even after it was removed from their cart.
CREATE TABLE promo_redemptions (
    promo_code_id bigint      NOT NULL REFERENCES promo_codes (id),
    user_id       text        NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (promo_code_id, user_id)
);

-- A write's answer, kept for a day under the client's Idempotency-Key, written in the same
-- transaction as the write: a retry finds either this answer or no trace of the write.
CREATE TABLE idempotency_keys (
    user_id     text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    status      integer     NOT NULL,
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
