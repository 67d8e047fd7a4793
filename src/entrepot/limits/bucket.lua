-- Token bucket (see bucket.py, which this mirrors) plus daily and monthly quotas.
-- KEYS[1] bucket hash, KEYS[2] day counter, KEYS[3] month counter
-- ARGV: rate, burst, day_quota (-1 none), month_quota (-1 none),
--       day_ttl, month_ttl (seconds), now (empty: the server's clock),
--       cost (tokens an admitted request spends; 0 only looks)
-- 17 significant digits: a double survives the round trip through a string.
local function exact(x)
  return string.format('%.17g', x)
end

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local day_quota = tonumber(ARGV[3])
local month_quota = tonumber(ARGV[4])
local now
if ARGV[7] ~= '' then
  now = tonumber(ARGV[7])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
if tokens == nil then
  tokens = burst
else
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(burst, tokens + elapsed * rate)
end

local verdict = 'ok'
local day_used = tonumber(redis.call('GET', KEYS[2]) or '0')
local month_used = tonumber(redis.call('GET', KEYS[3]) or '0')
if tokens < 1 then
  verdict = 'rate'
elseif day_quota >= 0 and day_used >= day_quota then
  verdict = 'day'
elseif month_quota >= 0 and month_used >= month_quota then
  verdict = 'month'
end

local cost = tonumber(ARGV[8])
if verdict == 'ok' and cost > 0 then
  tokens = tokens - cost
  if day_quota >= 0 then
    day_used = redis.call('INCR', KEYS[2])
    redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
  end
  if month_quota >= 0 then
    month_used = redis.call('INCR', KEYS[3])
    redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
  end
end
redis.call('HSET', KEYS[1], 'tokens', exact(tokens), 'stamp', exact(now))
-- Kept until it would be full again anyway (a month at most: then it starts full).
redis.call('EXPIRE', KEYS[1], math.min(math.ceil(burst / rate) + 1, 2678400))
-- Floats travel as strings: Redis would truncate a Lua number to an integer.
return {verdict, exact(tokens), day_used, month_used}
