-- Append entries to a stream in one call, after checking that the stream still holds what the
-- caller appended before: the relay's batch is one round trip and one reply (instead of an XADD
-- and a reply per entry), and a Redis that lost data (restarted empty, failed over to a lagging
-- replica) is noticed before anything new is appended on top of the loss and hides it.
--
-- KEYS[1]      the stream
-- KEYS[2]      the stream's epoch key: a value the caller writes once, lost with the data
-- ARGV[1]      the caller's epoch ('' appends without any check)
-- ARGV[2]      the id of the last entry the caller appended ('' the first time, or after a
--              loss was dealt with: the epoch is then written and nothing is checked)
-- ARGV[3]      n, the number of fields of every entry (0 with no entries: a check only)
-- ARGV[4..n+3] the field names
-- then n values per entry, in the names' order
--
-- Returns {1, last id} when appended (the id of the last entry appended, or the stream's last
-- id when none was). When data was lost, appends nothing and returns {0, how far the stream
-- still holds what the caller sent}: the stream's last id if it is older than ARGV[2] (a replica
-- that lagged), '0-0' if the epoch is not the caller's (Redis lost everything since).
-- Entries get ids `*`, in order.

local n = tonumber(ARGV[3])
-- Checked before the first XADD: a malformed call must append nothing, not half a batch.
if not n or n < 0 or #ARGV < n + 3 or (n == 0 and #ARGV ~= 3) or (n > 0 and (#ARGV - 3 - n) % n ~= 0) then
  return redis.error_reply('stream_append: ARGV must be epoch, last id, n, n names, then n values per entry')
end

local function last_id()
  if redis.call('EXISTS', KEYS[1]) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end

local function older(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  a_ms, a_seq, b_ms, b_seq = tonumber(a_ms), tonumber(a_seq), tonumber(b_ms), tonumber(b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end

if ARGV[1] ~= '' then
  local held = redis.call('GET', KEYS[2])
  if ARGV[2] ~= '' then
    if held ~= ARGV[1] then
      -- The epoch went with the data: nothing in the stream can be trusted to be ours, even
      -- entries someone else appended since (their ids are newer than all we sent).
      return {0, '0-0'}
    end
    local last = last_id()
    if older(last, ARGV[2]) then
      return {0, last}
    end
  elseif held ~= ARGV[1] then
    redis.call('SET', KEYS[2], ARGV[1])
  end
end

local appended = nil
if n > 0 then
  local args = {}
  for j = 1, n do
    args[2 * j - 1] = ARGV[3 + j]
  end
  for i = n + 4, #ARGV, n do
    for j = 1, n do
      args[2 * j] = ARGV[i + j - 1]
    end
    appended = redis.call('XADD', KEYS[1], '*', unpack(args))
  end
end
return {1, appended or last_id()}
