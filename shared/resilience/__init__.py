"""Staying up while a dependency fails: the circuit breaker held in Redis, and the product
cache with its invalidation."""
