-- Shared prelude of the ordered sends, send_ordered.lua (one Redis) and
-- send_sharded.lua (a Redis Cluster), prepended at build time (scripts.rs):
-- the id, and the published payload around its gaps.

-- Hands out the next id from the counter `key`: max(previous + 1,
-- now_ms * 1000), now_ms the later of Redis's clock and the sending node's
-- (`node_ms`), as next_message_id.lua does. Returns the id, its decimal
-- text, the previous id and now_ms.
local function next_id(key, node_ms)
  local time = redis.call('TIME')
  local redis_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local now_ms = math.max(redis_ms, tonumber(node_ms))
  local previous = tonumber(redis.call('GET', key) or '0')
  local id = math.max(previous + 1, now_ms * 1000)
  local text = string.format('%.0f', id)
  redis.call('SET', key, text)
  return id, text, previous, now_ms
end

-- MessagePack `uint 64`: 0xcf and 8 bytes, big endian (ids are below 2^53,
-- exact in a Lua number).
local function uint64(n)
  local bytes = {}
  for i = 8, 1, -1 do
    bytes[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(0xcf, unpack(bytes))
end

-- The payload the node prepared, ARGV[first .. first + 4], with its gaps
-- filled: ID, OFFSET (MessagePack str of the id as 16 zero-padded digits),
-- PREV, ID.
local function ordered_payload(first, id, previous)
  local offset = string.char(0xb0) .. string.format('%016.0f', id)
  return ARGV[first] .. uint64(id) .. ARGV[first + 1] .. offset .. ARGV[first + 2]
    .. uint64(previous) .. ARGV[first + 3] .. uint64(id) .. ARGV[first + 4]
end

