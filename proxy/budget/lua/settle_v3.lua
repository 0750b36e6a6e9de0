-- settle_v3: commit the actual cost into the reservation's window buckets and release its hold, once.
-- ARGV: prefix, now_us, id, cost, tokens, unused_tokens, marker_ttl_s, targets: one line each
-- "scope window bucket expires_at", token rates: one line each "scope tokens_per_min".
-- Returns 1, or 0 when this id was already settled (or cancelled: a cancelled reserve holds nothing).
local id, cost, tokens = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local unused, marker_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
-- The marker goes first: under maxmemory a refused first write fails the whole settle (the caller
-- ledgers it) instead of half of it.
if not mark_done(id, marker_ttl) then return 0 end
release(id)

for line in string.gmatch(ARGV[8], '[^\n]+') do
  local scope, window, bucket, expires = string.match(line, '^(%S+) (%S+) (%S+) (%d+)$')
  commit(scope, window, bucket, tonumber(expires), cost, tokens)
end

if unused > 0 then
  for scope, tpm in string.gmatch(ARGV[9], '(%S+) (%d+)') do
    local key = P .. ':rl:' .. scope
    local tat = tonumber(redis.call('HGET', key, 't') or 0)
    local now = now_us()
    if tat > now then
      redis.call('HSET', key, 't', int(math.max(now, tat - floor(unused * 60000000 / tonumber(tpm)))))
    end
  end
end
return 1
