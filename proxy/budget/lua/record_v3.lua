-- record_v3: add spend to scopes that need no hold (no limit), in the windows current now, once per id.
-- ARGV: prefix, now_us, id ('' for no once-only mark), cost, tokens, marker_ttl_s, limits: one line each
-- "scope kind seconds limit_micros limit_tokens requests_per_min tokens_per_min" (-1: no limit).
-- Returns 1, or 0 when this id was recorded before.
local id, cost, tokens, marker_ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if id ~= '' and not mark_done(id, marker_ttl) then return 0 end
local now_s = now_us() / 1000000
local limits = parse_limits(ARGV[7])
local registry = {}
for _, lim in ipairs(limits) do
  local scope, kind, seconds = lim[1], lim[2], lim[3]
  local bucket, resets = period(kind, seconds, now_s)
  commit(scope, window_name(kind, seconds), bucket, expiry(kind, seconds, bucket, resets), cost, tokens)
  -- Listed for `budget show`, but never over the limits a reserve last named for the scope.
  redis.call('HSETNX', P .. ':scopes', scope .. ' ' .. window_name(kind, seconds), lim[4])
end
return 1
