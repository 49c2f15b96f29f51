-- release.lua: release a held order exactly once (the player cancels, or its payment deadline passed).
--
-- The order's status moves from 'held' to 'cancelled' or 'expired' here and
-- nowhere else, so stock, the player's quota and the budget come back once
-- however often this runs: a second run finds the order no longer held.
--
-- KEYS[1]  order hash: user, status, day, units, cost_fen, items, deadline_ms, event
-- KEYS[2]  stock taken hash
-- KEYS[3]  the order owner's counters hash
-- KEYS[4]  meta hash (spent_fen)
-- KEYS[5]  holds sorted set
-- KEYS[6]  outbox stream
-- KEYS[7]  the Idempotency-Key record of the cancelling player (unused when expiring)
--
-- ARGV[1]  reason: 'cancelled' (a player's request) or 'expired' (the deadline sweep)
-- ARGV[2]  now, ms since the epoch
-- ARGV[3]  order id
-- ARGV[4]  user id of the cancelling player ('' when expiring)
-- ARGV[5]  request fingerprint (cancel only)
-- ARGV[6]  Idempotency-Key lifetime, seconds (cancel only)
-- ARGV[7]  the answer (JSON) to give and store for the key (cancel only)
--
-- Returns {code, body}:
--   {'OK', answer}          released now
--   {'REPLAY', answer}, {'REUSED', ''}   as in claim.lua (cancel only)
--   {'NOT_FOUND', ''}       no such order, or it belongs to another player
--   {'NOT_HELD', status}    already cancelled, expired or paid
--   {'NOT_DUE', ''}         expiring an order before its deadline

local cancelling = ARGV[1] == 'cancelled'
if cancelling then
  local replay = idem_lookup(KEYS[7], ARGV[5])
  if replay then
    return replay
  end
end

local order = redis.call('HMGET', KEYS[1], 'user', 'status', 'day', 'units', 'cost_fen', 'items', 'deadline_ms')
if not order[1] or (cancelling and order[1] ~= ARGV[4]) then
  return {'NOT_FOUND', ''}
end
if order[2] ~= 'held' then
  return {'NOT_HELD', order[2]}
end
local now = tonumber(ARGV[2])
if not cancelling and now < tonumber(order[7]) then
  return {'NOT_DUE', ''}
end

local units = tonumber(order[4])
local cost = tonumber(order[5])
for _, entry in ipairs(cjson.decode(order[6])) do
  redis.call('HINCRBY', KEYS[2], entry[1], -entry[2])
  redis.call('HINCRBY', KEYS[3], 'i:' .. entry[1], -entry[2])
end
redis.call('HINCRBY', KEYS[3], 'all', -units)
redis.call('HINCRBY', KEYS[3], 'd:' .. order[3], -units)
if cost > 0 then
  redis.call('HINCRBY', KEYS[4], 'spent_fen', -cost)
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'released_ms', now)
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('XADD', KEYS[6], '*', 'e', cjson.encode({
  type = 'order.released', order_id = ARGV[3], reason = ARGV[1], at_ms = now,
  claim = redis.call('HGET', KEYS[1], 'event')}))

local answer = ARGV[7]
if cancelling then
  idem_store(KEYS[7], ARGV[5], answer, ARGV[6])
end
return {'OK', answer}
