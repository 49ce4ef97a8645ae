-- The trace a catalog change was made in (W3C traceparent), recorded with its events so the
-- relay can carry it into the stream and the workers can continue it. NULL when tracing is off.
ALTER TABLE outbox ADD COLUMN trace_context text;
