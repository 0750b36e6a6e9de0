-- state_v3: spend, holds and reset time per scope window, for the policy input and `budget show`.
-- ARGV: prefix, now_us, limits: one line each "scope kind seconds". Returns one space-separated string:
-- now_us, then per limit "bucket resets_at_us spent_micros spent_tokens held_micros held_tokens";
-- resets_at_us is -1 when nothing will free up.
local now = now_us()
local now_s = now / 1000000
reap(now)
local limits, scopes = parse_limits(ARGV[3])
local held = held_get(scopes)
local out = {int(now)}
for _, lim in ipairs(limits) do
  local scope, kind, seconds = lim[1], lim[2], lim[3]
  local bucket, resets = period(kind, seconds, now_s)
  local m, t, oldest = spent(scope, kind, seconds, now_s, bucket)
  if kind == 'rolling' then
    -- Nothing frees up until the oldest bucket holding spend leaves the window.
    resets = oldest and oldest + bucket_size(seconds) + seconds or -1
  end
  local h = held[scope]
  for _, v in ipairs({bucket, int(resets >= 0 and resets * 1000000 or -1), int(m), int(t), int(h[1]), int(h[2])}) do
    out[#out + 1] = v
  end
end
return table.concat(out, ' ')
