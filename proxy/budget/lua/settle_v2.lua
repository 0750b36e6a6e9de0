-- settle_v2: commit the actual cost into the reservation's window buckets and release its hold, once.
-- ARGV: prefix, now_us, id, cost, tokens, unused_tokens, marker_ttl_s, targets: one line each
-- "scope window bucket expires_at", token rates: one line each "scope tokens_per_min".
-- Returns 1, or 0 when this id was already settled.
local id, cost, tokens = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local unused, marker_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
-- The marker goes first: set-if-absent is the once-only check in one call, and under maxmemory a
-- refused first write fails the whole settle (the caller ledgers it) instead of half of it.
if not redis.call('SET', P .. ':done:' .. id, '1', 'EX', marker_ttl, 'NX') then return 0 end
release(id)

local now
local function clock()
  now = now or now_us()
  return now
end

-- Only a counter (or rolling bucket) this settle creates can lack an expiry as late as `expires`: every
-- earlier settle into the same bucket already set one at least that late.
local function keep_until(key, expires)
  local ttl = redis.call('TTL', key)
  -- A replayed old settle must not shorten the life of a counter later spend also lives in.
  if ttl < 0 or floor(clock() / 1000000) + ttl < expires then redis.call('EXPIREAT', key, int(expires)) end
end

for line in string.gmatch(ARGV[8], '[^\n]+') do
  local scope, window, bucket, expires = string.match(line, '^(%S+) (%S+) (%S+) (%d+)$')
  expires = tonumber(expires)
  if string.sub(window, 1, 8) == 'rolling:' then
    local key = P .. ':s:' .. scope .. '|' .. window
    local seconds = tonumber(string.sub(window, 9))
    local fresh = redis.call('HINCRBY', key, 'm' .. bucket, int(cost)) == cost
    redis.call('HINCRBY', key, 't' .. bucket, int(tokens))
    if fresh then
      -- A new bucket: a good moment to drop the ones that left the window.
      local edge = clock() / 1000000 - seconds - bucket_size(seconds)
      for _, f in ipairs(redis.call('HKEYS', key)) do
        if tonumber(string.sub(f, 2)) < edge then redis.call('HDEL', key, f) end
      end
      keep_until(key, expires)
    end
  else
    local key = P .. ':s:' .. scope .. '|' .. window .. '|' .. bucket
    local fresh = redis.call('HINCRBY', key, 'm', int(cost)) == cost
    redis.call('HINCRBY', key, 't', int(tokens))
    if fresh then keep_until(key, expires) end
  end
end

if unused > 0 then
  for scope, tpm in string.gmatch(ARGV[9], '(%S+) (%d+)') do
    local key = P .. ':rl:' .. scope
    local tat = tonumber(redis.call('HGET', key, 't') or 0)
    if tat > clock() then
      redis.call('HSET', key, 't', int(math.max(now, tat - floor(unused * 60000000 / tonumber(tpm)))))
    end
  end
end
return 1
