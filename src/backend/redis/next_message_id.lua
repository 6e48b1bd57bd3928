-- Hands out the next message id: max(previous + 1, now_ms * 1000), where
-- now_ms is the later of Redis's clock and the sending node's clock. Ids are
-- therefore unique across all channels and nodes, increase within every
-- channel, keep increasing across restarts, and are never below the message's
-- timestamp times 1000. Stays below 2^53 (exact in a Lua double and in
-- JavaScript) until the year 2255. Touches one key (its own slot).
--
-- KEYS[1]  the last id handed out (STRING)
-- ARGV[1]  the sending node's now (ms since the epoch), the message's ts
--
-- Returns the id as a decimal string.
local time = redis.call('TIME')
local redis_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local now_ms = math.max(redis_ms, tonumber(ARGV[1]))
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = math.max(previous + 1, now_ms * 1000)
local text = string.format('%.0f', id)
redis.call('SET', KEYS[1], text)
return text
