-- Product search (app_product.catalog.search): an inverted index the catalog keeps itself.
--
-- product_words holds one row per (word, product) in the order the search reads it: a word's
-- products newest first, so a search walks the posting lists of its words side by side
-- (a merge join) and stops as soon as it has enough, whatever the words; no plan can fall
-- back to filtering a million names. search_words is the vocabulary, for what a shopper types
-- that no product contains: the word it begins (search as you type) or a likely typo of it.
--
-- Words are PostgreSQL's own ('simple' text search configuration: lower-cased, split on
-- anything but letters and digits), for names here and for the search's text alike.

CREATE FUNCTION product_search_words(name text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN tsvector_to_array(to_tsvector('simple', name));

-- "C": byte order, so the words beginning with a prefix are one range of the primary key.
CREATE TABLE search_words (
    word text COLLATE "C" PRIMARY KEY
);
-- Typos are looked for among words holding a letter: a mistyped number is another number.
CREATE INDEX search_words_trgm_idx ON search_words USING gin (word gin_trgm_ops)
    WHERE word ~ '[[:alpha:]]';

CREATE TABLE product_words (
    word       text   COLLATE "C" NOT NULL,
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    PRIMARY KEY (word, product_id)
);
CREATE INDEX product_words_product_idx ON product_words (product_id);

-- Kept in the writing transaction: a product is findable by the words of its committed name,
-- never by another's. The vocabulary only grows (a word no product holds any more finds
-- nothing, at the cost of one row).
CREATE FUNCTION index_product_words() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM product_words WHERE product_id = OLD.id;
    END IF;
    INSERT INTO search_words (word)
        SELECT unnest(product_search_words(NEW.name)) ON CONFLICT DO NOTHING;
    INSERT INTO product_words (word, product_id)
        SELECT unnest(product_search_words(NEW.name)), NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER products_index_words_on_insert AFTER INSERT ON products
    FOR EACH ROW EXECUTE FUNCTION index_product_words();
CREATE TRIGGER products_index_words_on_rename AFTER UPDATE OF name ON products
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION index_product_words();

INSERT INTO product_words (word, product_id)
    SELECT DISTINCT unnest(product_search_words(name)), id FROM products;
INSERT INTO search_words (word) SELECT DISTINCT word FROM product_words;

-- Relevance ranks names: read from this index alone, not from the table.
CREATE INDEX products_id_name_idx ON products (id) INCLUDE (name);
-- The substring search it replaces.
DROP INDEX products_name_trgm_idx;

-- Listings filtered by category and activity together walk one range from the cursor on.
CREATE INDEX products_category_active_id_idx ON products (category_id, is_active, id);
