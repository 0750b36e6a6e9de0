-- reserve_v1: hold cost and tokens on every scope at once, or on none.
-- ARGV: prefix, now_us, ttl_s, id, cost, tokens, limits: one line per limit, "scope kind seconds
-- limit_micros limit_tokens requests_per_min tokens_per_min" (-1: no limit).
-- Returns one space-separated string: "budget|rate scope retry_after_us dimension limit window", or
-- "ok now_us" then per limit "bucket expires_at", then per limit "rpm left reset_us tpm left reset_us".
-- Arguments and reply are packed strings because the Python client packs and parses each element.
local PERIOD = 60000000

-- Mirrors ratelimit.gcra_take.
local function gcra(tat, now, limit, units)
  local base = math.max(tat, now)
  local new = base + floor(units * PERIOD / limit)
  if new - now <= PERIOD then return true, new, floor((PERIOD - (new - now)) * limit / PERIOD), new - now, 0 end
  local retry = PERIOD
  if units <= limit then retry = new - now - PERIOD end
  return false, tat, floor((PERIOD - (base - now)) * limit / PERIOD), base - now, retry
end

local now = now_us()
local now_s = now / 1000000
local ttl, id = tonumber(ARGV[3]), ARGV[4]
local cost, tokens = tonumber(ARGV[5]), tonumber(ARGV[6])
reap(now)

local targets, rates, tats, scopes, seen, registry = {}, {}, {}, {}, {}, {}
for line in string.gmatch(ARGV[7], '[^\n]+') do
  local scope, kind, seconds, lim_m, lim_t, rpm, tpm = string.match(line, '^(%S+) (%S+) (%d+) (%S+) (%S+) (%S+) (%S+)$')
  local limits_text = table.concat({lim_m, lim_t, rpm, tpm}, ' ')
  seconds, lim_m, lim_t, rpm, tpm = tonumber(seconds), tonumber(lim_m), tonumber(lim_t), tonumber(rpm), tonumber(tpm)
  local bucket, resets = period(kind, seconds, now_s)
  local m, t, live = spent(scope, kind, seconds, now_s, bucket)
  local hm, ht = held(scope)
  for _, c in ipairs({{lim_m, m + hm + cost, 2, 'usd'}, {lim_t, t + ht + tokens, 3, 'tokens'}}) do
    if c[1] >= 0 and c[2] > c[1] then
      local retry = resets - now_s
      if kind == 'rolling' then retry = rolling_retry(live, c[3], c[2] - c[1], seconds, now_s) end
      return table.concat({'budget', scope, int(retry * 1000000), c[4], int(c[1]), window_name(kind, seconds)}, ' ')
    end
  end
  local expires = resets + 172800
  if kind == 'rolling' then expires = tonumber(bucket) + bucket_size(seconds) + seconds + 172800 end
  targets[#targets + 1] = bucket
  targets[#targets + 1] = int(expires)

  local row = {'-1', '-1', '-1', '-1', '-1', '-1'}
  if rpm > 0 or tpm > 0 then
    local state = redis.call('HMGET', P .. ':rl:' .. scope, 'r', 't')
    for j, dim in ipairs({{rpm, 1, 'requests', 'r'}, {tpm, tokens, 'tokens_per_min', 't'}}) do
      if dim[1] > 0 then
        local ok, tat, left, reset, retry = gcra(tonumber(state[j] or 0), now, dim[1], dim[2])
        if not ok then return table.concat({'rate', scope, int(retry), dim[3], int(dim[1]), 'minute'}, ' ') end
        tats[#tats + 1] = {P .. ':rl:' .. scope, dim[4], tat}
        row[j * 3 - 2], row[j * 3 - 1], row[j * 3] = int(dim[1]), int(left), int(reset)
      end
    end
  end
  for _, v in ipairs(row) do rates[#rates + 1] = v end
  if not seen[scope] then
    seen[scope] = true
    scopes[#scopes + 1] = scope
  end
  -- Remember the limits last used, for `budget show`; written below with the rest.
  registry[#registry + 1] = {scope .. ' ' .. window_name(kind, seconds), limits_text}
end

-- Everything fits: only now write.
for _, r in ipairs(registry) do redis.call('HSET', P .. ':scopes', r[1], r[2]) end
for _, u in ipairs(tats) do
  redis.call('HSET', u[1], u[2], int(u[3]))
  redis.call('PEXPIRE', u[1], 2 * PERIOD / 1000)
end
for _, scope in ipairs(scopes) do
  redis.call('HINCRBY', P .. ':held', 'm:' .. scope, int(cost))
  redis.call('HINCRBY', P .. ':held', 't:' .. scope, int(tokens))
end
redis.call('HSET', P .. ':rsv', id, int(cost) .. ' ' .. int(tokens) .. '\n' .. table.concat(scopes, '\n'))
redis.call('ZADD', P .. ':rsvx', int(now + ttl * 1000000), id)

return 'ok ' .. int(now) .. ' ' .. table.concat(targets, ' ') .. ' ' .. table.concat(rates, ' ')
