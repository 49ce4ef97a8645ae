-- Exact sliding-window rate limit, several limits at once, decided on Redis's clock.
--
-- KEYS[i]      the log of limit i: a sorted set of admitted requests scored by time (us)
-- ARGV[1]      a member unique to this request
-- ARGV[2i]     limit i: most requests in its window
-- ARGV[2i+1]   limit i: window length in microseconds
--
-- A request is admitted only if every log holds fewer than its limit within the window ending
-- now; then it is added to every log. Refused requests are not logged, so hammering does not
-- extend a lockout. Returns {admitted (1 or 0), now_us, then for each limit: used (requests in
-- the window, this one included if admitted), reset_us (until the oldest entry leaves, so
-- one more request fits), retry_us (0, or until this request would fit)}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local admitted = 1
local counts, retries = {}, {}

for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  counts[i], retries[i] = count, 0
  if count >= limit then
    admitted = 0
    -- It fits once the entry at rank count - limit (0-based) has left the window.
    local entry = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    retries[i] = tonumber(entry[2]) + window - now
  end
end

local out = {admitted, now}
for i = 1, #KEYS do
  local window = tonumber(ARGV[2 * i + 1])
  if admitted == 1 then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(window / 1000))
    counts[i] = counts[i] + 1
  end
  local reset = 0
  if counts[i] > 0 then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + window - now
  end
  out[#out + 1] = counts[i]
  out[#out + 1] = reset
  out[#out + 1] = retries[i]
end
return out
