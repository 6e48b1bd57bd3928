-- The ordered send on a Redis Cluster: assigns a message its id, appends it
-- to the recovery log and publishes it on the sharded pub/sub channel, in
-- one atomic step in that channel's slot (every key here is tagged with it).
-- Redis runs one script at a time and hands each subscriber the messages of
-- a shard channel in the order they were published, so every node receives
-- all messages, of all channels, in id order. The message is in the log
-- before anyone can receive it; its channel's history is written next, by
-- record_message.lua (the channel's slot), before the sender's ack.
--
-- The id is next_message_id.lua's: max(previous + 1, now_ms * 1000).
--
-- The log keeps every message for ARGV[3] ms (the recovery window and a
-- margin: no recoverable connection can have missed an older one, so
-- dropping those leaves the floor alone) and at most ARGV[4] messages
-- (dropping by count raises the floor). A log that did not exist starts
-- with the previous id as its floor: whatever came before is unknown.
--
-- KEYS[1]  the last id handed out (STRING)
-- KEYS[2]  the recovery log (ZSET message JSON by id)
-- KEYS[3]  the recovery log's floor (STRING)
-- ARGV[1]  the sending node's now (ms since the epoch)
-- ARGV[2]  the message JSON after its leading `{"id":` and the id
-- ARGV[3]  how long the log keeps a message (ms)
-- ARGV[4]  the most messages the log keeps
-- ARGV[5]  the sharded pub/sub channel (in this slot)
-- ARGV[6..10]  the payload around its gaps: ARGV[6] ID ARGV[7] OFFSET
--          ARGV[8] PREV ARGV[9] ID ARGV[10] (ID, PREV: MessagePack uint 64;
--          OFFSET: MessagePack str of the id as 16 zero-padded digits)
--
-- Returns the id as a decimal string.
local function id_text(n)
  return string.format('%.0f', n)
end

local id, id_str, previous, now_ms = next_id(KEYS[1], ARGV[1])

-- Log.
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], id_text(previous))
end
redis.call('ZADD', KEYS[2], id_str, '{"id":' .. id_str .. ARGV[2])
local cutoff_id = math.max(now_ms - tonumber(ARGV[3]), 0) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. id_text(cutoff_id))
local cap = tonumber(ARGV[4])
local count = redis.call('ZCARD', KEYS[2])
if count > cap then
  local last = redis.call('ZRANGE', KEYS[2], count - cap - 1, count - cap - 1, 'WITHSCORES')
  local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
  if last[2] and tonumber(last[2]) > floor then
    redis.call('SET', KEYS[3], last[2])
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, count - cap - 1)
end

-- Publish.
redis.call('SPUBLISH', ARGV[5], ordered_payload(6, id, previous))
return id_str
