-- The recovery log (Redis Cluster) after an id: up to limit messages of
-- every channel, oldest first, and the log's floor. Touches only the slot
-- of the sharded pub/sub channel.
--
-- KEYS[1]  the recovery log (ZSET message JSON by id)
-- KEYS[2]  the recovery log's floor (STRING)
-- KEYS[3]  the last id handed out (STRING)
-- ARGV[1]  the id after which to read (decimal)
-- ARGV[2]  limit
--
-- Returns { floor, JSON... }. Without a log (none was written yet, or Redis
-- lost it), the floor is the last id handed out: all before is unknown.
local floor = redis.call('GET', KEYS[2]) or redis.call('GET', KEYS[3]) or '0'
local messages = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf',
  'LIMIT', 0, tonumber(ARGV[2]))
table.insert(messages, 1, floor)
return messages
