-- Append entries to a stream in one call: the relay's batch is one round trip and one reply,
-- instead of an XADD and a reply per entry (building and parsing those was most of its time).
--
-- KEYS[1]      the stream
-- ARGV[1]      n, the number of fields of every entry
-- ARGV[2..n+1] the field names
-- then n values per entry, in the names' order
--
-- Entries get ids `*`, in order. Returns the number appended.

local n = tonumber(ARGV[1])
-- Checked before the first XADD: a malformed call must append nothing, not half a batch.
if not n or n < 1 or #ARGV < n + 1 or (#ARGV - 1 - n) % n ~= 0 then
  return redis.error_reply('stream_append: ARGV must be n, n names, then n values per entry')
end
local args = {}
for j = 1, n do
  args[2 * j - 1] = ARGV[1 + j]
end
local appended = 0
for i = n + 2, #ARGV, n do
  for j = 1, n do
    args[2 * j] = ARGV[i + j - 1]
  end
  redis.call('XADD', KEYS[1], '*', unpack(args))
  appended = appended + 1
end
return appended
