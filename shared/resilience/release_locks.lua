-- Release locks still held with our token (one that lapsed and was retaken is not ours).
-- KEYS: the lock keys; ARGV[1]: our token. Returns how many were released.
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
