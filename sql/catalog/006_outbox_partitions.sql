-- The stream (partition, STREAM_PARTITIONS) each outbox row was sent to: after a Redis data loss
-- the relay marks unsent only what went to the stream that lost it (app_product/outbox/healing.py).
-- Rows sent before this column existed keep NULL, which healing treats as any stream.

ALTER TABLE outbox ADD COLUMN stream text;
