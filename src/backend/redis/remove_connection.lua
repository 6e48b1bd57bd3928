-- Removes one connection of one user. Touches only the user's slot.
--
-- KEYS[1]  the user's connections (HASH connection id -> node id)
-- KEYS[2]  the user's presence (HASH status, last_seen)
-- ARGV[1]  connection id
-- ARGV[2]  now (ms since the epoch)
--
-- Returns 0 = the connection was not registered (nothing changed),
-- 1 = it was the user's last connection (the user is offline now),
-- 2 = removed, the user still has other connections.
local conns, presence = KEYS[1], KEYS[2]
if redis.call('HDEL', conns, ARGV[1]) == 0 then
  return 0
end
if redis.call('HLEN', conns) == 0 then
  redis.call('DEL', presence)
  return 1
end
redis.call('HSET', presence, 'last_seen', ARGV[2])
return 2
