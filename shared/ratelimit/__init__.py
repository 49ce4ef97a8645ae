"""The distributed sliding-window rate limiter: limit specs, the batching limiter on Redis,
who a request counts against, and the middleware."""
