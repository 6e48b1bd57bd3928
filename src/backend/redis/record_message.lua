-- Records a stamped message in its channel: moves the channel's activity
-- forward (never back) and, unless history is off (size 0), adds the
-- message to the history, trims it, and lets the history expire TTL after
-- this message. One script, so the send path pays one request here for both.
-- Touches only the channel's slot.
--
-- KEYS[1]  the channel's metadata (HASH activity)
-- KEYS[2]  the channel's history (ZSET message JSON by id)
-- KEYS[3]  the channel's history floor (STRING)
-- ARGV[1]  the message's ts (ms): the new activity
-- ARGV[2]  the message id (decimal)
-- ARGV[3]  the message JSON (the message:new payload)
-- ARGV[4]  HISTORY_SIZE (0 = history off)
-- ARGV[5]  HISTORY_TTL_MS
-- ARGV[6]  now (ms since the epoch)
local ts = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'activity') or '0')
if ts > current then
  redis.call('HSET', KEYS[1], 'activity', ARGV[1])
end
local size = tonumber(ARGV[4])
if size == 0 then
  return 1
end
local ttl = tonumber(ARGV[5])
local cutoff_id = math.max(tonumber(ARGV[6]) - ttl, 0) * 1000
if redis.call('EXISTS', KEYS[3]) == 0 then
  -- A new history: whatever came before it may have existed and expired.
  redis.call('SET', KEYS[3], id_text(cutoff_id))
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
trim(KEYS[2], KEYS[3], size, cutoff_id)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
