-- Exact sliding-window rate limit for a batch of requests, each with several limits, decided
-- in order on Redis's clock.
--
-- ARGV[1]      the number of requests in the batch
-- then, for each request in turn: its number of limits n, then n pairs (limit: most requests
-- in its window; window length in microseconds)
-- KEYS         the logs of every limit of every request, in the same order: a log is a list of
--              the times (us) of admitted requests, newest first
--
-- A request is admitted only if every one of its logs holds fewer than its limit within the
-- window ending now; then its time is pushed on every one of its logs. Refused requests are
-- not logged, so hammering does not extend a lockout. The requests of a batch are decided one
-- after the other, each seeing what the ones before it pushed, as if each had been a script
-- call of its own made at the same instant (one `now` for the batch). If the script fails
-- part way (out of memory, say), the pushes already made stay: the limiter errs towards
-- refusing, while the whole batch is answered as an error. Returns one reply per request:
-- {admitted (1 or 0), now_us, then for
-- each limit: used (requests in the window, this one included if admitted), reset_us (until
-- the oldest entry leaves, so one more request fits), retry_us (0, or until this request
-- would fit)}.
--
-- Why a list and not a sorted set: scripts run one at a time and push `now`, so each list is
-- already in time order; the entries that left the window are popped from its tail (each entry
-- is popped once, so this is O(1) amortised), and what remains is exactly the window's log. A
-- request is pushed only when its log holds fewer than `limit`, so a list never holds more.
-- A list of integers is a compact listpack: about 10 bytes per entry, where a sorted set needs
-- a unique member per request and about 70.
-- If Redis's clock steps back, entries pushed after the step are trimmed a little late: the
-- limiter errs towards refusing. If it steps forward (or a failover lands on a replica whose
-- clock is ahead), entries leave the window early by that much: exact only on a steady clock.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function decide(keys, limits, windows)
  local admitted = 1
  local counts, oldest, retries = {}, {}, {}
  for i = 1, #keys do
    local key, limit, window = keys[i], limits[i], windows[i]
    local count = redis.call('LLEN', key)
    local last = nil
    while count > 0 do
      last = tonumber(redis.call('LINDEX', key, -1))
      if last > now - window then break end
      redis.call('RPOP', key)
      count, last = count - 1, nil
    end
    counts[i], oldest[i], retries[i] = count, last, 0
    if count >= limit then
      admitted = 0
      -- It fits once the limit-th newest entry (index limit - 1) has left the window.
      retries[i] = tonumber(redis.call('LINDEX', key, limit - 1)) + window - now
    end
  end

  local out = {admitted, now}
  for i = 1, #keys do
    local key, window = keys[i], windows[i]
    if admitted == 1 then
      redis.call('LPUSH', key, now)
      redis.call('PEXPIRE', key, math.ceil(window / 1000))
      counts[i] = counts[i] + 1
      oldest[i] = oldest[i] or now
    end
    local reset = 0
    if oldest[i] then reset = oldest[i] + window - now end
    out[#out + 1] = counts[i]
    out[#out + 1] = reset
    out[#out + 1] = retries[i]
  end
  return out
end

local replies = {}
local arg, key = 2, 1
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[arg])
  local keys, limits, windows = {}, {}, {}
  for i = 1, n do
    keys[i] = KEYS[key + i - 1]
    limits[i] = tonumber(ARGV[arg + 2 * i - 1])
    windows[i] = tonumber(ARGV[arg + 2 * i])
  end
  replies[r] = decide(keys, limits, windows)
  arg, key = arg + 1 + 2 * n, key + n
end
return replies
