-- Write product cache entries, unless a key holds something newer, or Redis lost its data
-- since the fetch began.
--
-- KEYS[1]      the cache's epoch
-- KEYS[i+1]    product:{id}
-- ARGV[1]      the epoch the writer read before it fetched
-- ARGV[3i-1]   the entry (JSON)
-- ARGV[3i]     its product's version, or -1 for "no such product" (a 404)
-- ARGV[3i+1]   its TTL in ms
--
-- If the epoch is not the one the writer read, Redis lost its data while the fetch was on its
-- way, and with it any tombstone the catalog left meanwhile: the fetched product may be older
-- than a change already answered. Nothing is written (the next reader fetches again).
--
-- A fetch can finish after the catalog changed the product; writing its result then would put
-- the old product back. The catalog's invalidation leaves a tombstone {"min_version": v} (with
-- "deleted": true after a delete): only a product at least that new (or, for a delete, a 404)
-- may replace it. A product never replaces a newer version of itself, and a 404 never
-- replaces a product (a product seen later exists; a delete would have left a tombstone).
-- Returns how many entries were written.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local written = 0
for i = 1, #KEYS - 1 do
  local key = KEYS[i + 1]
  local entry, version, ttl = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local allowed = true
  local current = redis.call('GET', key)
  if current then
    local ok, held = pcall(cjson.decode, current)
    if ok and type(held) == 'table' then
      if held.min_version then
        if version < 0 then allowed = held.deleted == true else allowed = version >= held.min_version end
      elseif type(held.product) == 'table' then
        allowed = version >= 0 and version >= held.product.version
      end
    end
  end
  if allowed then
    redis.call('SET', key, entry, 'PX', ttl)
    written = written + 1
  end
end
return written
