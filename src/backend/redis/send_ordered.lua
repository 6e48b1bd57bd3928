-- Assigns a message its id, records it in its channel (activity and
-- history, as record_message.lua) and publishes it to every node, in one
-- atomic step. Redis runs one script at a time and hands each subscriber
-- its messages in the order they were published, so every subscriber
-- receives all messages, of all channels, in id order, and none can be
-- received before it is stored. One Redis only (the
-- keys span slots); on a Redis Cluster the two steps stay apart.
--
-- The id is next_message_id.lua's: max(previous + 1, now_ms * 1000).
--
-- KEYS[1]  the last id handed out (STRING)
-- KEYS[2]  the channel's metadata (HASH activity)
-- KEYS[3]  the channel's history (ZSET message JSON by id)
-- KEYS[4]  the channel's history floor (STRING)
-- ARGV[1]  the sending node's now (ms since the epoch)
-- ARGV[2]  the message's ts (ms): the new activity
-- ARGV[3]  the message JSON after its leading `{"id":` and the id
-- ARGV[4]  HISTORY_SIZE (0 = history off)
-- ARGV[5]  HISTORY_TTL_MS
-- ARGV[6]  the pub/sub channel
-- ARGV[7..11]  the payload around its gaps: ARGV[7] ID ARGV[8] OFFSET
--          ARGV[9] PREV ARGV[10] ID ARGV[11] (ID, PREV: MessagePack uint 64;
--          OFFSET: MessagePack str of the id as 16 zero-padded digits)
-- KEYS[5]  with ARGV[12] = "1": the sender's channels (SET); the message
--          goes out only if ARGV[13] (the channel) is one of them, so the
--          membership check costs no round trip of its own
--
-- Returns the id as a decimal string, or false (nil) when the sender is not
-- a member (nothing happened then).
if ARGV[12] == '1' and redis.call('SISMEMBER', KEYS[5], ARGV[13]) == 0 then
  return false
end
local id, id_str, previous = next_id(KEYS[1], ARGV[1])

-- Record (record_message.lua).
local ts = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[2], 'activity') or '0')
if ts > current then
  redis.call('HSET', KEYS[2], 'activity', ARGV[2])
end
local size = tonumber(ARGV[4])
if size > 0 then
  local ttl = tonumber(ARGV[5])
  local cutoff_id = math.max(tonumber(ARGV[1]) - ttl, 0) * 1000
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('SET', KEYS[4], id_text(cutoff_id))
  end
  redis.call('ZADD', KEYS[3], id_str, '{"id":' .. id_str .. ARGV[3])
  trim(KEYS[3], KEYS[4], size, cutoff_id)
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end

-- Publish.
redis.call('PUBLISH', ARGV[6], ordered_payload(7, id, previous))
return id_str
