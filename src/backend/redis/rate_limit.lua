-- GCRA (generic cell rate algorithm) for one user and one event. One key, one
-- round trip, atomic; the key expires by itself once the bucket is full
-- again. Time comes from Redis, so every node sees the same clock.
--
-- KEYS[1]  the theoretical arrival time, in microseconds (STRING)
-- ARGV[1]  emission interval: period / count, in microseconds (>= 1)
-- ARGV[2]  burst: events allowed at once (the quota's count, >= 1)
--
-- Returns 0 when the event is allowed (and counted), else the microseconds
-- to wait until it would be allowed (nothing counted).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return allow_at - now
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
return 0
