-- A circuit breaker shared by every instance; each transition is decided here, on Redis's clock.
--
-- KEYS[1]  hash: state, generation, opened_at_ms, open_until_ms, calls, failures, slow_calls,
--          probe_successes, and the window's buckets (b:<n>:calls|failures|slow)
-- KEYS[2]  sorted set: half-open probe leases (member: token, score: lease expiry in ms)
-- ARGV[1]  "acquire" or "report"
-- acquire: ARGV[2] token, ARGV[3] probes (K), ARGV[4] lease_ms
--   returns {allowed (1/0), generation, retry_after_ms, role ("call", "probe", "open", "busy"),
--   moved (1 if this call found the recovery over and moved the breaker to half-open)}
-- report:  ARGV[2] token, ARGV[3] generation, ARGV[4] outcome ("success", "failure", "ignored"),
--          ARGV[5] duration_ms, ARGV[6] window_ms, ARGV[7] bucket_ms, ARGV[8] min_calls,
--          ARGV[9] failure_rate, ARGV[10] slow_ms, ARGV[11] slow_rate, ARGV[12] recovery_ms,
--          ARGV[13] probes (K)
--   returns {result, generation}; result is "recorded", "opened", "closed", "stale" (a
--   generation that is over: the outcome changes nothing) or "expired" (a lease that lapsed)

local state_key, probes_key = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function get(field, default)
  local value = redis.call('HGET', state_key, field)
  if value then return value end
  return default
end

local function clear_window()
  local fields = redis.call('HKEYS', state_key)
  for _, field in ipairs(fields) do
    if string.sub(field, 1, 2) == 'b:' then redis.call('HDEL', state_key, field) end
  end
  redis.call('HSET', state_key, 'calls', 0, 'failures', 0, 'slow_calls', 0)
end

local function transition(state, generation, recovery_ms)
  redis.call('DEL', probes_key)
  redis.call('HSET', state_key, 'state', state, 'generation', generation, 'probe_successes', 0)
  if state == 'open' then
    redis.call('HSET', state_key, 'opened_at_ms', now, 'open_until_ms', now + recovery_ms)
  end
  if state ~= 'half_open' then clear_window() end
end

local op = ARGV[1]
local state = get('state', 'closed')
local generation = tonumber(get('generation', '0'))

if op == 'acquire' then
  local token, probes, lease_ms = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  local moved = 0  -- 1 when this call moved the breaker from open to half-open
  if state == 'open' then
    local open_until = tonumber(get('open_until_ms', '0'))
    if now < open_until then return {0, generation, open_until - now, 'open', 0} end
    generation = generation + 1
    transition('half_open', generation, 0)
    state = 'half_open'
    moved = 1
  end
  if state == 'half_open' then
    -- Slots taken: live leases and probes that succeeded. A probe whose lease lapsed never
    -- reported (its process died): dropping its lease frees its slot. (No separate counter:
    -- the lease set may expire whole, and a counter would not notice.)
    redis.call('ZREMRANGEBYSCORE', probes_key, '-inf', now)
    local taken = redis.call('ZCARD', probes_key) + tonumber(get('probe_successes', '0'))
    if taken < probes then
      redis.call('ZADD', probes_key, now + lease_ms, token)
      redis.call('PEXPIRE', probes_key, lease_ms)
      return {1, generation, 0, 'probe', moved}
    end
    local first = redis.call('ZRANGE', probes_key, 0, 0, 'WITHSCORES')
    local retry = lease_ms
    if #first > 0 then retry = tonumber(first[2]) - now end
    return {0, generation, math.max(retry, 1), 'busy', moved}
  end
  return {1, generation, 0, 'call', 0}
end

-- report
local token, reported = ARGV[2], tonumber(ARGV[3])
local outcome, duration = ARGV[4], tonumber(ARGV[5])
local window_ms, bucket_ms, min_calls = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local failure_rate, slow_ms, slow_rate = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local recovery_ms, probes = tonumber(ARGV[12]), tonumber(ARGV[13])

if reported ~= generation then return {'stale', generation} end

if state == 'half_open' then
  if redis.call('ZREM', probes_key, token) == 0 then return {'expired', generation} end
  if outcome == 'ignored' then return {'recorded', generation} end  -- its slot is free again
  if outcome == 'failure' or duration >= slow_ms then
    transition('open', generation + 1, recovery_ms)
    return {'opened', generation + 1}
  end
  if redis.call('HINCRBY', state_key, 'probe_successes', 1) >= probes then
    transition('closed', generation + 1, 0)
    return {'closed', generation + 1}
  end
  return {'recorded', generation}
end

if state ~= 'closed' or outcome == 'ignored' then return {'recorded', generation} end

local bucket = math.floor(now / bucket_ms)
local prefix = 'b:' .. bucket .. ':'
redis.call('HINCRBY', state_key, prefix .. 'calls', 1)
if outcome == 'failure' then redis.call('HINCRBY', state_key, prefix .. 'failures', 1) end
if duration >= slow_ms then redis.call('HINCRBY', state_key, prefix .. 'slow', 1) end

-- Sum the buckets still inside the window; drop the ones that left it.
local oldest = bucket - math.floor(window_ms / bucket_ms) + 1
local totals = {calls = 0, failures = 0, slow = 0}
local fields = redis.call('HGETALL', state_key)
for i = 1, #fields, 2 do
  local n, kind = string.match(fields[i], '^b:(%d+):(%a+)$')
  if n then
    if tonumber(n) < oldest then
      redis.call('HDEL', state_key, fields[i])
    else
      totals[kind] = totals[kind] + tonumber(fields[i + 1])
    end
  end
end
redis.call('HSET', state_key, 'calls', totals.calls, 'failures', totals.failures,
  'slow_calls', totals.slow, 'state', 'closed', 'generation', generation)

if totals.calls >= min_calls and
   (totals.failures / totals.calls >= failure_rate or totals.slow / totals.calls >= slow_rate) then
  transition('open', generation + 1, recovery_ms)
  return {'opened', generation + 1}
end
return {'recorded', generation}
