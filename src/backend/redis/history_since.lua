-- The messages of a channel after an id, newest first, at most limit + 1
-- (one more than asked, to tell whether the limit cut some), and the
-- channel's floor. Trims expired messages first. Touches only the channel's
-- slot.
--
-- KEYS[1]  the channel's history (ZSET message JSON by id)
-- KEYS[2]  the channel's history floor (STRING)
-- ARGV[1]  since: the id after which to read (decimal)
-- ARGV[2]  limit
-- ARGV[3]  HISTORY_SIZE
-- ARGV[4]  HISTORY_TTL_MS
-- ARGV[5]  now (ms since the epoch)
--
-- Returns { floor (decimal; the TTL cutoff when there is no history), JSON... }.
local cutoff_id = math.max(tonumber(ARGV[5]) - tonumber(ARGV[4]), 0) * 1000
trim(KEYS[1], KEYS[2], tonumber(ARGV[3]), cutoff_id)
local floor = redis.call('GET', KEYS[2]) or id_text(cutoff_id)
local messages = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. ARGV[1],
  'LIMIT', 0, tonumber(ARGV[2]) + 1)
table.insert(messages, 1, floor)
return messages
