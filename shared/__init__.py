"""shared: what both storefront services use.

At the top: settings (`config`), Redis key names (`keys`), logging (`logs`), wire types
(`types`) and domain errors (`errors`). In packages, by layer: `http` (the app skeleton and
everything a request passes through), `ratelimit`, `resilience` (breaker, product cache),
`events` (the stream, its consumer and dead letters), `storage` (PostgreSQL, Redis, Lua,
migrations) and `telemetry` (metrics).
"""
