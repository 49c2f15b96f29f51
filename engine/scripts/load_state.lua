-- load_state.lua: make a published version's live state current, idempotently.
--
-- Sets the campaign's status, schedule, budget and every item's total stock
-- from the version. It never touches what was taken or spent, so publishing a
-- new version of a live campaign keeps what was already sold sold, and
-- publishing the same version twice changes nothing. A version older than the
-- one loaded is ignored (two publishers racing cannot roll a campaign back).
--
-- KEYS[1]  meta hash
-- KEYS[2]  stock total hash
-- KEYS[3]  definition string (the live snapshot JSON)
-- KEYS[4]  outbox stream (its consumer group is created here)
--
-- ARGV[1]  version number
-- ARGV[2]  status (live, paused, ended)
-- ARGV[3]  starts_ms ('' = no start)
-- ARGV[4]  ends_ms ('' = no end)
-- ARGV[5]  budget_fen ('' = unlimited)
-- ARGV[6]  snapshot JSON
-- ARGV[7]  outbox consumer group name
-- ARGV[8]  n, number of items; then n pairs from ARGV[9]: item, total stock
--
-- Returns {'OK', version} when loaded, {'STALE', loaded version} when a newer one is live.

local loaded = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = tonumber(ARGV[1])
if version < loaded then
  return {'STALE', tostring(loaded)}
end

redis.call('HSET', KEYS[1], 'version', version, 'status', ARGV[2],
  'starts_ms', ARGV[3], 'ends_ms', ARGV[4], 'budget_fen', ARGV[5])
redis.call('HSETNX', KEYS[1], 'spent_fen', 0)
redis.call('SET', KEYS[3], ARGV[6])

-- Items left out of this version keep what they sold and sell no more.
local listed = {}
local n = tonumber(ARGV[8])
for i = 0, n - 1 do
  listed[ARGV[9 + 2 * i]] = true
  redis.call('HSET', KEYS[2], ARGV[9 + 2 * i], ARGV[10 + 2 * i])
end
for _, item in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not listed[item] then
    redis.call('HSET', KEYS[2], item, 0)
  end
end

-- The group exists after the first publish; BUSYGROUP on later ones is expected.
redis.pcall('XGROUP', 'CREATE', KEYS[4], ARGV[7], '0', 'MKSTREAM')
return {'OK', tostring(version)}
