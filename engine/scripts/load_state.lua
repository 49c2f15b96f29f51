-- load_state.lua: make a published version's live state current in one key group, idempotently.
--
-- Sets the group's status, schedule, budget and every item's stock from the
-- version. It never touches what was taken or spent, so publishing a new
-- version of a live campaign keeps what was already sold sold, and publishing
-- the same version twice changes nothing. A version older than the one loaded
-- is ignored (two publishers racing cannot roll a campaign back).
--
-- A campaign of one group sets its totals ('set'). A group of a sharded campaign
-- ('slice') holds a slice that transfers change (engine/slices.py), so its
-- totals move by the difference between this version's share and the share it
-- was last loaded with (stock base hash, meta budget_base): a transfer in or
-- out stays, and loading a version twice adds nothing.
--
-- KEYS[1]  meta hash
-- KEYS[2]  stock total hash
-- KEYS[3]  definition string (the live snapshot JSON; written in the home group only)
-- KEYS[4]  outbox stream (its consumer group is created here)
-- KEYS[5]  stock base hash (item -> the share last loaded; 'slice' mode only)
--
-- ARGV[1]  version number
-- ARGV[2]  status (live, paused, ended)
-- ARGV[3]  starts_ms ('' = no start)
-- ARGV[4]  ends_ms ('' = no end)
-- ARGV[5]  budget_fen, or this group's share of it in 'slice' mode ('' = unlimited)
-- ARGV[6]  snapshot JSON ('' = not this group's to keep)
-- ARGV[7]  outbox consumer group name
-- ARGV[8]  mode: 'set' or 'slice'
-- ARGV[9]  n, number of items; then n pairs from ARGV[10]: item, total stock (or this group's share)
--
-- Returns {'OK', version} when loaded, {'STALE', loaded version} when a newer one is live.

local loaded = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = tonumber(ARGV[1])
if version < loaded then
  return {'STALE', tostring(loaded)}
end
local slice = ARGV[8] == 'slice'

local budget = ARGV[5]
if slice and budget ~= '' then
  local had = redis.call('HMGET', KEYS[1], 'budget_fen', 'budget_base')
  if had[1] and had[1] ~= '' then
    budget = tostring(tonumber(had[1]) + tonumber(budget) - tonumber(had[2] or '0'))
  end
  redis.call('HSET', KEYS[1], 'budget_base', ARGV[5])
end
redis.call('HSET', KEYS[1], 'version', version, 'status', ARGV[2],
  'starts_ms', ARGV[3], 'ends_ms', ARGV[4], 'budget_fen', budget)
redis.call('HSETNX', KEYS[1], 'spent_fen', 0)
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[3], ARGV[6])
end

-- Items left out of this version keep what they sold and sell no more.
local listed = {}
local n = tonumber(ARGV[9])
for i = 0, n - 1 do
  local item, total = ARGV[10 + 2 * i], ARGV[11 + 2 * i]
  listed[item] = true
  if slice then
    redis.call('HINCRBY', KEYS[2], item, tonumber(total) - tonumber(redis.call('HGET', KEYS[5], item) or '0'))
    redis.call('HSET', KEYS[5], item, total)
  else
    redis.call('HSET', KEYS[2], item, total)
  end
end
for _, item in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not listed[item] then
    if slice then
      redis.call('HINCRBY', KEYS[2], item, -tonumber(redis.call('HGET', KEYS[5], item) or '0'))
      redis.call('HSET', KEYS[5], item, 0)
    else
      redis.call('HSET', KEYS[2], item, 0)
    end
  end
end

-- The group exists after the first publish; BUSYGROUP on later ones is expected.
redis.pcall('XGROUP', 'CREATE', KEYS[4], ARGV[7], '0', 'MKSTREAM')
return {'OK', tostring(version)}
