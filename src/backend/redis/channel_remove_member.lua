-- The channel's half of channel:leave: removes the member; an empty channel
-- is forgotten, activity included (as the in-memory backend does). Touches
-- only the channel's slot.
--
-- KEYS[1]  the channel's members (SET)
-- KEYS[2]  the channel's metadata (HASH activity)
-- ARGV[1]  user id
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
end
return 1
