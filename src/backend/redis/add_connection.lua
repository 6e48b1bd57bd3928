-- Registers one connection of one user, unless the user already holds the
-- maximum number of connections. Touches only the user's slot.
--
-- KEYS[1]  the user's connections (HASH connection id -> node id)
-- KEYS[2]  the user's presence (HASH status, last_seen); exists while online
-- ARGV[1]  connection id
-- ARGV[2]  node id
-- ARGV[3]  maximum connections of the user
-- ARGV[4]  now (ms since the epoch)
-- ARGV[5]  status to start with when the user comes online ('online', or the
--          status a node restores when it re-registers its connections)
--
-- Returns {code, status}: code 1 = registered and the user came online,
-- 0 = registered (the user was online already, or this connection was
-- registered before), -1 = refused, too many connections.
local conns, presence = KEYS[1], KEYS[2]
local status = redis.call('HGET', presence, 'status')
if redis.call('HEXISTS', conns, ARGV[1]) == 1 then
  if not status then
    status = ARGV[5]
    redis.call('HSET', presence, 'status', status, 'last_seen', ARGV[4])
  end
  return {0, status}
end
local count = redis.call('HLEN', conns)
if count >= tonumber(ARGV[3]) then
  return {-1, ''}
end
redis.call('HSET', conns, ARGV[1], ARGV[2])
if count == 0 or not status then
  status = ARGV[5]
  redis.call('HSET', presence, 'status', status, 'last_seen', ARGV[4])
  if count == 0 then
    return {1, status}
  end
  return {0, status}
end
redis.call('HSET', presence, 'last_seen', ARGV[4])
return {0, status}
