"""The transactional outbox: events recorded with the change they describe, and the relay that
moves them to the Redis stream."""
