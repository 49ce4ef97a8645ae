-- What the relay needs to notice that Redis lost events it had sent, and to send them again
-- (app_product/outbox/healing.py).
--
-- Each sent row records the stream id of the last entry of the batch it went in: after a loss,
-- the rows whose batch went beyond what the stream still holds are sent again. Rows sent
-- before this migration have none and are not resent by it (`relay resend --since` still is).
ALTER TABLE outbox ADD COLUMN stream_ms bigint, ADD COLUMN stream_seq bigint;

-- One row per stream: the epoch the relay writes beside it (a value Redis loses with the data)
-- and the id of the last entry the relay appended, which the stream must still hold.
CREATE TABLE relay_state (
    stream   text PRIMARY KEY,
    epoch    uuid   NOT NULL,
    last_ms  bigint,
    last_seq bigint
);
