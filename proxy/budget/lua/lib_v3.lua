-- lib_v3: helpers prepended to every budget script. ARGV[1] is the key prefix with its hash tag,
-- ARGV[2] a clock override in microseconds for tests and ledger replays ('': the server clock, TIME).
-- Numbers go back to Redis through int(): Lua would print a µs timestamp as 1.8e+15.
-- Each redis.call costs ~1-2 µs of server time, most of a script's run: the holds of all scopes are
-- read and written in one call each. v3 adds ids that make a reserve idempotent and a cancel that
-- outlives the reserve it cancels (the `done:<id>` marker settle already set); keys and fields are
-- v1's and v2's, so replicas running any of them can share one Redis during a rollout.
local P = ARGV[1]
local floor = math.floor

local function int(x) return string.format('%.0f', x) end

local clock_us
local function now_us()
  if clock_us then return clock_us end
  if ARGV[2] ~= '' then
    clock_us = tonumber(ARGV[2])
  else
    local t = redis.call('TIME')
    clock_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return clock_us
end

-- Howard Hinnant's civil calendar algorithms: days since 1970-01-01 <-> proleptic Gregorian date.
local function civil(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function bucket_size(seconds) return math.max(1, math.ceil(seconds / 60)) end

-- The bucket spend made at now_s goes into, and when a calendar window resets (-1 for rolling).
local function period(kind, seconds, now_s)
  local days = floor(now_s / 86400)
  if kind == 'day' then
    local y, m, d = civil(days)
    return string.format('%04d-%02d-%02d', y, m, d), (days + 1) * 86400
  elseif kind == 'month' then
    local y, m = civil(days)
    local ny, nm = y, m + 1
    if nm == 13 then ny, nm = y + 1, 1 end
    return string.format('%04d-%02d', y, m), days_from_civil(ny, nm, 1) * 86400
  end
  local size = bucket_size(seconds)
  return int(floor(now_s / size) * size), -1
end

-- Until when a counter keeps spend committed at now_s: two days past the end of its window.
local function expiry(kind, seconds, bucket, resets)
  if kind == 'rolling' then return tonumber(bucket) + bucket_size(seconds) + seconds + 172800 end
  return resets + 172800
end

local function window_name(kind, seconds)
  if kind == 'rolling' then return 'rolling:' .. seconds end
  return kind
end

-- Spend in the window: micro-dollars and tokens; for a rolling window also the oldest live bucket that
-- holds micro-dollars (nil if none) and the raw fields, which only a refusal reads again. An hour's
-- window at steady traffic has 120 fields: one pass without a table per bucket, and no sort.
local function spent(scope, kind, seconds, now_s, bucket)
  if kind ~= 'rolling' then
    local v = redis.call('HMGET', P .. ':s:' .. scope .. '|' .. kind .. '|' .. bucket, 'm', 't')
    return tonumber(v[1] or 0), tonumber(v[2] or 0), nil, nil
  end
  local edge = now_s - seconds - bucket_size(seconds)  -- a bucket counts while b + size > now - seconds
  local flat = redis.call('HGETALL', P .. ':s:' .. scope .. '|rolling:' .. seconds)
  local m, t, oldest = 0, 0, nil
  for i = 1, #flat, 2 do
    local field = flat[i]
    local b = tonumber(string.sub(field, 2))
    if b > edge then
      local v = tonumber(flat[i + 1])
      if string.byte(field) == 109 then  -- 'm'
        m = m + v
        if v > 0 and (oldest == nil or b < oldest) then oldest = b end
      else
        t = t + v
      end
    end
  end
  return m, t, oldest, flat
end

-- Seconds until a rolling window frees `excess` of its `prefix` fields ('m': µ$, 't': tokens); the
-- window if never.
local function rolling_retry(flat, prefix, excess, seconds, now_s)
  local size = bucket_size(seconds)
  local live = {}
  for i = 1, #flat, 2 do
    local b = tonumber(string.sub(flat[i], 2))
    if string.sub(flat[i], 1, 1) == prefix and b + size > now_s - seconds then
      live[#live + 1] = {b, tonumber(flat[i + 1])}
    end
  end
  table.sort(live, function(x, y) return x[1] < y[1] end)
  local freed = 0
  for _, row in ipairs(live) do
    freed = freed + row[2]
    if freed >= excess then return math.max(0, row[1] + size + seconds - now_s) end
  end
  return seconds
end

-- Limit lines "scope kind seconds[ rest]" as {scope, kind, seconds, rest}, and their scopes once each.
local function parse_limits(text)
  local limits, scopes, seen = {}, {}, {}
  for line in string.gmatch(text, '[^\n]+') do
    local scope, kind, seconds, rest = string.match(line, '^(%S+) (%S+) (%d+) ?(.*)$')
    limits[#limits + 1] = {scope, kind, tonumber(seconds), rest}
    if not seen[scope] then
      seen[scope] = true
      scopes[#scopes + 1] = scope
    end
  end
  return limits, scopes
end

-- Holds per scope: fields m:<scope> and t:<scope> of one hash, absent when zero.
local function held_get(scopes)
  if #scopes == 0 then return {} end
  local fields = {}
  for i, scope in ipairs(scopes) do
    fields[2 * i - 1], fields[2 * i] = 'm:' .. scope, 't:' .. scope
  end
  local v = redis.call('HMGET', P .. ':held', unpack(fields))
  local out = {}
  for i, scope in ipairs(scopes) do out[scope] = {tonumber(v[2 * i - 1] or 0), tonumber(v[2 * i] or 0)} end
  return out
end

-- Add (or, negative, take away) cost and tokens on every scope: one write, plus one delete for holds
-- that reach zero. Inside a script, read-modify-write is as atomic as HINCRBY.
local function held_add(scopes, held, cost, tokens)
  local set, gone = {}, {}
  local function put(field, value)
    if value > 0 then
      set[#set + 1] = field
      set[#set + 1] = int(value)
    else
      gone[#gone + 1] = field
    end
  end
  for _, scope in ipairs(scopes) do
    put('m:' .. scope, held[scope][1] + cost)
    put('t:' .. scope, held[scope][2] + tokens)
  end
  if #set > 0 then redis.call('HSET', P .. ':held', unpack(set)) end
  if #gone > 0 then redis.call('HDEL', P .. ':held', unpack(gone)) end
end

-- Drop a reservation's hold; false if it holds nothing (settled, reaped, or made without the store).
-- Record: "<cost> <tokens>\n<scope>\n<scope>...".
local function release(id)
  local rec = redis.call('HGET', P .. ':rsv', id)
  if not rec then return false end
  local nl = string.find(rec, '\n', 1, true)
  local cost, tokens = string.match(string.sub(rec, 1, nl - 1), '(%d+) (%d+)')
  local scopes = {}
  for scope in string.gmatch(string.sub(rec, nl + 1), '[^\n]+') do scopes[#scopes + 1] = scope end
  held_add(scopes, held_get(scopes), -tonumber(cost), -tonumber(tokens))
  redis.call('HDEL', P .. ':rsv', id)
  redis.call('ZREM', P .. ':rsvx', id)
  return true
end

-- Reservations never settled (the process died) stop holding budget once their TTL passes.
local function reap(now)
  local ids = redis.call('ZRANGEBYSCORE', P .. ':rsvx', '-inf', int(now), 'LIMIT', 0, 100)
  for _, id in ipairs(ids) do
    if not release(id) then redis.call('ZREM', P .. ':rsvx', id) end
  end
end

-- The once-only mark of a settle, record or cancel: set-if-absent is the check and the mark in one call.
-- A reserve whose id carries it holds nothing (it was cancelled before it landed).
local function mark_done(id, ttl)
  return redis.call('SET', P .. ':done:' .. id, '1', 'EX', ttl, 'NX')
end

-- Only a counter (or rolling bucket) this write creates can lack an expiry as late as `expires`: every
-- earlier write into the same bucket already set one at least that late.
local function keep_until(key, expires)
  local ttl = redis.call('TTL', key)
  -- A replayed old settle must not shorten the life of a counter later spend also lives in.
  if ttl < 0 or floor(now_us() / 1000000) + ttl < expires then redis.call('EXPIREAT', key, int(expires)) end
end

-- Add cost and tokens to one window's bucket ('rolling:<W>' or a calendar window).
local function commit(scope, window, bucket, expires, cost, tokens)
  if string.sub(window, 1, 8) == 'rolling:' then
    local key = P .. ':s:' .. scope .. '|' .. window
    local seconds = tonumber(string.sub(window, 9))
    local fresh = redis.call('HINCRBY', key, 'm' .. bucket, int(cost)) == cost
    redis.call('HINCRBY', key, 't' .. bucket, int(tokens))
    if fresh then
      -- A new bucket: a good moment to drop the ones that left the window.
      local edge = now_us() / 1000000 - seconds - bucket_size(seconds)
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
