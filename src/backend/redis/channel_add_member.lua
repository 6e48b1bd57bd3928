-- The channel's half of channel:join: records the member and starts the
-- channel's activity at its first join. Idempotent, so re-running it repairs
-- a join whose second half was lost. Touches only the channel's slot.
--
-- KEYS[1]  the channel's members (SET)
-- KEYS[2]  the channel's metadata (HASH activity)
-- ARGV[1]  user id
-- ARGV[2]  now (ms since the epoch)
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSETNX', KEYS[2], 'activity', ARGV[2])
return 1
