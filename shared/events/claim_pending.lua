-- Claim one pending entry of a consumer group, but only from the consumer expected to hold it.
--
-- KEYS[1]  the stream
-- ARGV[1]  the group
-- ARGV[2]  the entry id
-- ARGV[3]  the consumer expected to hold it (as the caller listed it)
-- ARGV[4]  the consumer to give it to
-- ARGV[5]  the minimum idle time (ms) it was listed with
--
-- A reclaim loop acts on a listing of pending entries that ages while it works: by the time it
-- claims an entry, another worker may have retried or parked it. XCLAIM's minimum idle time
-- alone does not notice, because a parked entry's idle time keeps growing: a stale listing
-- would take a dead event back. Checking the holder and claiming in one script closes that gap:
-- scripts run one at a time, so nothing can move the entry between the check and the claim.
--
-- An entry the stream no longer has (trimmed before it was applied) is not claimed: XCLAIM would
-- silently drop it from the group on Redis 7, leaving no trace. The caller parks it instead
-- (park_event.lua), which records it.
--
-- Returns XCLAIM's reply ({{id, {field, value, ...}}}); {{id, nil}} if the entry's payload is
-- gone (it is left where it was); or {} if the entry is no longer held by ARGV[3] or not idle
-- that long.

local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[5], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then
  return {}
end
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  return {{ARGV[2], false}}
end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], ARGV[5], ARGV[2])
