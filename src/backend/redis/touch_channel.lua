-- Records activity in a channel: its last activity becomes the later of the
-- stored one and now. Touches only the channel's slot.
--
-- KEYS[1]  the channel's metadata (HASH activity)
-- ARGV[1]  now (ms since the epoch)
local now = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'activity') or '0')
if now > current then
  redis.call('HSET', KEYS[1], 'activity', ARGV[1])
end
return 1
