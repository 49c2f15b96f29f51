-- confirm.lua: a held order was paid: mark it paid exactly once and append its rewards to the outbox.
--
-- The order's status moves from 'held' to 'paid' here and nowhere else; a
-- second notification of the same payment finds it paid (REPLAY), and a
-- payment for an order already released finds it cancelled or expired
-- (NOT_HELD: the caller refunds it). Stock, quota and budget were taken when
-- the order was held and stay taken.
--
-- KEYS[1]  order hash: user, status, ..., event
-- KEYS[2]  holds sorted set (order id by payment deadline)
-- KEYS[3]  outbox stream
--
-- ARGV[1]  order id
-- ARGV[2]  now, ms since the epoch
-- ARGV[3]  the provider's trade number
-- ARGV[4]  the 'order.paid' outbox event (JSON)
--
-- Returns {code, body}:
--   {'OK', ''}              paid now
--   {'REPLAY', trade_no}    paid before (by this or another trade number)
--   {'NOT_FOUND', ''}       no such order
--   {'NOT_HELD', status}    cancelled or expired before the payment arrived

local order = redis.call('HMGET', KEYS[1], 'status', 'trade_no')
if not order[1] then
  return {'NOT_FOUND', ''}
end
if order[1] == 'paid' then
  return {'REPLAY', order[2] or ''}
end
if order[1] ~= 'held' then
  return {'NOT_HELD', order[1]}
end
redis.call('HSET', KEYS[1], 'status', 'paid', 'paid_ms', ARGV[2], 'trade_no', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'e', ARGV[4])
return {'OK', ''}
