-- Park a pending entry of a consumer group as dead, with its record, in one step.
--
-- KEYS[1]  the stream
-- KEYS[2]  the hash of last errors (entry id -> error)
-- KEYS[3]  the entry's dead hash
-- ARGV[1]  the group
-- ARGV[2]  the entry id
-- ARGV[3]  the consumer expected to hold it (as the caller listed it)
-- ARGV[4]  the consumer that holds dead entries
-- ARGV[5]  the minimum idle time (ms) it was listed with
-- ARGV[6]  how often it was delivered
-- ARGV[7]  when it is parked (ISO 8601)
--
-- One script, because a worker dying between claiming the entry and writing its record would
-- leave an entry held by `dead` with no record, whose payload trimming may then remove. The
-- holder check is claim_pending.lua's: the listing the caller chose the entry from may be stale.
--
-- If the stream no longer has the entry (trimmed before it was applied), XCLAIM would silently
-- drop it from the group on Redis 7: it is recorded without its payload and acknowledged
-- instead, so the record is all that is left of it.
--
-- Returns {0} if the entry is no longer held by ARGV[3] or not idle that long; {1, error} if it
-- was parked; {2, error} if its payload was gone (recorded and acknowledged).

local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[5], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then
  return {0}
end
local error = redis.call('HGET', KEYS[2], ARGV[2]) or '(no error recorded)'
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local code, record = 1, {}
if #entries == 0 then
  code = 2
  error = 'its payload was trimmed from the stream before it was applied; last error: ' .. error
  record = {'type', '?', 'event', ''}
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
else
  -- The entry's own fields, as they are: a replay appends them again unchanged.
  record = entries[1][2]
  -- JUSTID: the delivery count stays the one recorded (parking is not a delivery)
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], ARGV[5], ARGV[2], 'JUSTID')
end
redis.call('HSET', KEYS[3], unpack(record))
redis.call('HSET', KEYS[3], 'error', error, 'deliveries', ARGV[6], 'parked_at', ARGV[7])
redis.call('HDEL', KEYS[2], ARGV[2])
return {code, error}
