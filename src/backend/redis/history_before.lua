-- The messages of a channel before an id (or the newest), newest first, at
-- most limit + 1 (one more than asked, to tell whether older ones exist).
-- Trims expired messages first. Touches only the channel's slot.
--
-- KEYS[1]  the channel's history (ZSET message JSON by id)
-- KEYS[2]  the channel's history floor (STRING)
-- ARGV[1]  before: read ids below it (decimal), or '' for the newest
-- ARGV[2]  limit
-- ARGV[3]  HISTORY_SIZE
-- ARGV[4]  HISTORY_TTL_MS
-- ARGV[5]  now (ms since the epoch)
--
-- Returns the messages' JSON.
local cutoff_id = math.max(tonumber(ARGV[5]) - tonumber(ARGV[4]), 0) * 1000
trim(KEYS[1], KEYS[2], tonumber(ARGV[3]), cutoff_id)
local max = '+inf'
if ARGV[1] ~= '' then
  max = '(' .. ARGV[1]
end
return redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, tonumber(ARGV[2]) + 1)
