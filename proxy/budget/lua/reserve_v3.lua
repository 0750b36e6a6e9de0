-- reserve_v3: hold cost and tokens on every scope at once, or on none; once per id.
-- ARGV: prefix, now_us, ttl_s, id, cost, tokens, limits: one line per limit, "scope kind seconds
-- limit_micros limit_tokens requests_per_min tokens_per_min" (-1: no limit).
-- Returns one space-separated string: "budget|rate scope retry_after_us dimension limit window",
-- "done" when the id was cancelled or settled before this reserve arrived, or "ok now_us" then per limit
-- "bucket expires_at", then per limit "rpm left reset_us tpm left reset_us". A second reserve of an id
-- still held (a retry whose first reply was lost) answers "ok" again and holds nothing more.
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
if redis.call('EXISTS', P .. ':done:' .. id) == 1 then return 'done' end
reap(now)
local again = redis.call('HEXISTS', P .. ':rsv', id) == 1

local limits, scopes = parse_limits(ARGV[7])
local held = held_get(scopes)

local targets, rates, registry, tats = {}, {}, {}, {}
for _, lim in ipairs(limits) do
  local scope, kind, seconds, rest = lim[1], lim[2], lim[3], lim[4]
  local lim_m, lim_t, rpm, tpm = string.match(rest, '^(%S+) (%S+) (%S+) (%S+)$')
  lim_m, lim_t, rpm, tpm = tonumber(lim_m), tonumber(lim_t), tonumber(rpm), tonumber(tpm)
  local bucket, resets = period(kind, seconds, now_s)
  local m, t, _, flat = spent(scope, kind, seconds, now_s, bucket)
  local h = held[scope]
  local over, col, dim = nil, 'm', 'usd'
  if lim_m >= 0 and m + h[1] + cost > lim_m then
    over = m + h[1] + cost - lim_m
  elseif lim_t >= 0 and t + h[2] + tokens > lim_t then
    over, col, dim = t + h[2] + tokens - lim_t, 't', 'tokens'
  end
  if over and not again then
    local retry = resets - now_s
    if kind == 'rolling' then retry = rolling_retry(flat, col, over, seconds, now_s) end
    local cap = dim == 'usd' and lim_m or lim_t
    return table.concat({'budget', scope, int(retry * 1000000), dim, int(cap), window_name(kind, seconds)}, ' ')
  end
  targets[#targets + 1] = bucket
  targets[#targets + 1] = int(expiry(kind, seconds, bucket, resets))

  local row = {'-1', '-1', '-1', '-1', '-1', '-1'}
  if (rpm > 0 or tpm > 0) and not again then
    local key = P .. ':rl:' .. scope
    local state = redis.call('HMGET', key, 'r', 't')
    local update = {}
    for j, d in ipairs({{rpm, 1, 'requests', 'r'}, {tpm, tokens, 'tokens_per_min', 't'}}) do
      if d[1] > 0 then
        local ok, tat, left, reset, retry = gcra(tonumber(state[j] or 0), now, d[1], d[2])
        if not ok then return table.concat({'rate', scope, int(retry), d[3], int(d[1]), 'minute'}, ' ') end
        update[#update + 1] = d[4]
        update[#update + 1] = int(tat)
        row[j * 3 - 2], row[j * 3 - 1], row[j * 3] = int(d[1]), int(left), int(reset)
      end
    end
    tats[#tats + 1] = {key, update}
  end
  for _, v in ipairs(row) do rates[#rates + 1] = v end
  -- Remember the limits last used, for `budget show`; written below with the rest.
  registry[#registry + 1] = scope .. ' ' .. window_name(kind, seconds)
  registry[#registry + 1] = rest
end

if again then
  return 'ok ' .. int(now) .. ' ' .. table.concat(targets, ' ') .. ' ' .. table.concat(rates, ' ')
end
-- Everything fits: only now write.
if #registry > 0 then redis.call('HSET', P .. ':scopes', unpack(registry)) end
for _, u in ipairs(tats) do
  redis.call('HSET', u[1], unpack(u[2]))
  redis.call('PEXPIRE', u[1], 2 * PERIOD / 1000)
end
held_add(scopes, held, cost, tokens)
redis.call('HSET', P .. ':rsv', id, int(cost) .. ' ' .. int(tokens) .. '\n' .. table.concat(scopes, '\n'))
redis.call('ZADD', P .. ':rsvx', int(now + ttl * 1000000), id)

return 'ok ' .. int(now) .. ' ' .. table.concat(targets, ' ') .. ' ' .. table.concat(rates, ' ')
