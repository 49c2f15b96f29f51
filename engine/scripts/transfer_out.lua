-- transfer_out.lua: the first half of moving a slice of stock or budget between two groups of a sharded
-- campaign (engine/slices.py): take it from this group's allotment and log it as in flight.
--
-- The second half (transfer_in.lua) adds it to the other group, once; the
-- log entry stays until the caller (or, after a crash between the halves,
-- the recovery sweep) has done that, so the campaign's total is always the
-- groups' allotments plus what the logs hold in flight.
--
-- KEYS[1]  hash holding the allotment (stock total hash, or meta for the budget)
-- KEYS[2]  hash holding what is used of it (stock taken hash, or meta)
-- KEYS[3]  this group's transfers-out log hash (transfer id -> entry JSON)
--
-- ARGV[1]  allotment field (the item, or 'budget_fen')
-- ARGV[2]  used field (the item, or 'spent_fen')
-- ARGV[3]  amount wanted: at most this much is given
-- ARGV[4]  the least worth giving: below it, nothing is
-- ARGV[5]  transfer id
-- ARGV[6]  the log entry (JSON) without its amount: the caller's description of the transfer
--
-- Returns {'OK', given} or {'SHORT', free} when less than ARGV[4] is free here.

local allotted = redis.call('HGET', KEYS[1], ARGV[1])
if not allotted or allotted == '' then
  return {'SHORT', '0'}
end
local free = tonumber(allotted) - tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local given = math.min(free, tonumber(ARGV[3]))
if given < tonumber(ARGV[4]) or given <= 0 then
  return {'SHORT', string.format('%d', math.max(free, 0))}
end
redis.call('HINCRBY', KEYS[1], ARGV[1], -given)
local entry = cjson.decode(ARGV[6])
entry.amount = given
redis.call('HSET', KEYS[3], ARGV[5], cjson.encode(entry))
return {'OK', string.format('%d', given)}
