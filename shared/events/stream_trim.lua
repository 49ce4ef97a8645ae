-- Trim a stream of what every consumer group has read and acknowledged, in one atomic step.
--
-- KEYS[1]  the stream
-- ARGV[1]  retention in ms: entries younger than that stay whatever their state
-- ARGV[2]  the consumer that holds parked (dead) events, whose entries do not hold trimming back
--
-- XTRIM MINID (approximate: whole macro nodes only, never an entry at or above the id) to the
-- oldest of: each group's first unread entry, each live consumer's oldest pending entry, and
-- now minus the retention. With no group nothing is trimmed. Reading the groups, the pending
-- lists and trimming in one script means no retry can move an entry between consumers while it
-- is being looked for (XCLAIM from one consumer to another, between two reads, would hide it),
-- and per-consumer XPENDING never pages through dead entries, however many there are.
-- Returns the number of entries removed.

local function map(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return {tonumber(ms), tonumber(seq)}
end

local function older(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end

local t = redis.call('TIME')
local min = {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1]), 0}
for _, raw in ipairs(groups) do
  local group = map(raw)
  local unread = parse(group['last-delivered-id'])
  unread[2] = unread[2] + 1
  if older(unread, min) then min = unread end
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], group['name'])) do
    local consumer = map(c)
    if consumer['name'] ~= ARGV[2] and consumer['pending'] > 0 then
      local oldest = redis.call('XPENDING', KEYS[1], group['name'], '-', '+', 1, consumer['name'])
      local id = parse(oldest[1][1])
      if older(id, min) then min = id end
    end
  end
end
if min[1] <= 0 then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f-%.0f', min[1], min[2]))
