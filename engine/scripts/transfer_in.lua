-- transfer_in.lua: the second half of a slice transfer (see transfer_out.lua): add it here, exactly once.
--
-- KEYS[1]  hash holding the allotment (stock total hash, or meta for the budget)
-- KEYS[2]  this group's transfers-in hash (transfer id -> amount): what was received
--
-- ARGV[1]  allotment field (the item, or 'budget_fen')
-- ARGV[2]  amount
-- ARGV[3]  transfer id
-- ARGV[4]  lifetime of the transfers-in hash, seconds
--
-- Returns {'OK', ''} when added now, {'REPLAY', ''} when it had been.

if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[2]) == 0 then
  return {'REPLAY', ''}
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
return {'OK', ''}
