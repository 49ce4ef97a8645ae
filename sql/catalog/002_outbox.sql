-- The transactional outbox: each catalog change inserts its event here in the same transaction,
-- so an event exists exactly when its change committed. The relay (python -m app_product.relay)
-- sends rows not yet sent to the Redis stream, in id order, then marks them sent; sent rows are
-- kept for a while (so they can be sent again after a Redis data loss) and then pruned.

CREATE TABLE outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid        NOT NULL,
    event_type        text        NOT NULL,
    aggregate_id      bigint      NOT NULL,
    aggregate_version integer     NOT NULL,
    -- The whole event, as the stream carries it (msgspec JSON).
    payload           jsonb       NOT NULL,
    occurred_at       timestamptz NOT NULL,
    sent_at           timestamptz,
    CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

-- The relay's query: unsent rows in id order.
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
-- Pruning and re-sending by time.
CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
