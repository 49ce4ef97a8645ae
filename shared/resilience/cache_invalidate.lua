-- The catalog changed products: leave tombstones in their cache keys, and announce the ids.
--
-- KEYS[i]        product:{id}
-- ARGV[1]        tombstone TTL in ms (longer than any fetch in flight can take)
-- ARGV[2]        the invalidation channel
-- ARGV[3]        the message to publish (the ids, comma-separated)
-- ARGV[3+i]      the product's version after the change
-- ARGV[3+#K+i]   "1" if it was deleted
--
-- A key already holding the new version (a cart fetched it after the commit) is kept.
-- Returns the number of subscribers that received the message.

local ttl, n = tonumber(ARGV[1]), #KEYS
for i = 1, n do
  local version, deleted = tonumber(ARGV[3 + i]), ARGV[3 + n + i] == '1'
  local keep = false
  local current = redis.call('GET', KEYS[i])
  if current and not deleted then
    local ok, held = pcall(cjson.decode, current)
    keep = ok and type(held) == 'table' and type(held.product) == 'table' and held.product.version >= version
  end
  if not keep then
    local min_version = version
    if deleted then min_version = version + 1 end
    redis.call('SET', KEYS[i], cjson.encode({min_version = min_version, deleted = deleted}), 'PX', ttl)
  end
end
return redis.call('PUBLISH', ARGV[2], ARGV[3])
