-- Shared prelude of the history scripts (prepended at build time, see
-- scripts.rs): trimming a channel's history and keeping its floor.
--
-- A channel's history is a ZSET of message JSON scored by message id (ids
-- are below 2^53, exact as scores and as Lua numbers). Its floor is the
-- highest id the history may have lost; every message above the floor that
-- was ever recorded is still kept.

-- The decimal text of an id (no exponent).
local function id_text(n)
  return string.format('%.0f', n)
end

-- Drops messages with an id below cutoff_id (expired: an id is never below
-- its ts * 1000) and all but the newest `size`, raising the floor (only when
-- it exists: it exists exactly while the history does). Returns nothing.
local function trim(history, floor_key, size, cutoff_id)
  local dropped = 0
  local expired = redis.call('ZREVRANGEBYSCORE', history, '(' .. id_text(cutoff_id), '-inf',
    'WITHSCORES', 'LIMIT', 0, 1)
  if expired[2] then
    dropped = tonumber(expired[2])
    redis.call('ZREMRANGEBYSCORE', history, '-inf', '(' .. id_text(cutoff_id))
  end
  local count = redis.call('ZCARD', history)
  if count > size then
    local last = redis.call('ZRANGE', history, count - size - 1, count - size - 1, 'WITHSCORES')
    if last[2] then
      dropped = math.max(dropped, tonumber(last[2]))
    end
    redis.call('ZREMRANGEBYRANK', history, 0, count - size - 1)
  end
  if dropped > 0 then
    local floor = tonumber(redis.call('GET', floor_key) or '0')
    if dropped > floor and redis.call('EXISTS', floor_key) == 1 then
      redis.call('SET', floor_key, id_text(dropped), 'KEEPTTL')
    end
  end
end

