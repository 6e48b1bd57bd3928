-- The user's half of channel:join: adds the channel to the user's channel
-- set unless the user is at the membership cap. Touches only the user's slot.
--
-- KEYS[1]  the user's channels (SET)
-- ARGV[1]  channel id
-- ARGV[2]  maximum channels per user
--
-- Returns 1 = joined, 0 = already a member (allowed at the cap),
-- -1 = refused, too many channels.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 0
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return -1
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
