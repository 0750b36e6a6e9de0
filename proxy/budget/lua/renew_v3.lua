-- renew_v3: the leases of holds whose requests are still running, pushed to a full TTL from now.
-- ARGV: prefix, now_us, ttl_s, ids: one per line. Only ids still held are touched (ZADD XX).
local expires = int(now_us() + tonumber(ARGV[3]) * 1000000)
local args = {}
for id in string.gmatch(ARGV[4], '[^\n]+') do
  args[#args + 1] = expires
  args[#args + 1] = id
end
if #args == 0 then return 0 end
return redis.call('ZADD', P .. ':rsvx', 'XX', 'CH', unpack(args))
