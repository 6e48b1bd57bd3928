-- Sets the status of an online user. Touches only the user's slot.
--
-- KEYS[1]  the user's presence (HASH status, last_seen); exists while online
-- ARGV[1]  the new status
-- ARGV[2]  now (ms since the epoch)
--
-- Returns 1 when set, 0 when the user is offline (nothing changed).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'last_seen', ARGV[2])
return 1
