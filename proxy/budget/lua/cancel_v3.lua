-- cancel_v3: the compensation for reserves whose outcome is unknown (a timeout, a lost connection).
-- ARGV: prefix, now_us, marker_ttl_s, ids: one per line. Releases each id's hold if it has one, and
-- marks it done, so a reserve of it that reaches Redis later (it sat in a socket buffer) holds nothing.
-- Returns how many holds were released.
local marker_ttl, released = tonumber(ARGV[3]), 0
for id in string.gmatch(ARGV[4], '[^\n]+') do
  mark_done(id, marker_ttl)
  if release(id) then released = released + 1 end
end
return released
