-- give_back.lua: return what a rejected held play took -- its budget and its stock -- exactly once.
--
-- KEYS[1]  meta hash (spent_fen)
-- KEYS[2]  stock taken hash: item -> units taken
-- KEYS[3]  marker of this play: set when its takings were given back
--
-- ARGV[1]  cost in fen to give back to the budget
-- ARGV[2]  the marker's lifetime, seconds (longer than anyone would retry a rejection)
-- ARGV[3]  n, the number of items; then n pairs from ARGV[4]: item, quantity
--
-- Returns 1 when it gave back now, 0 when it had already.

if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then
  return 0
end
local cost = tonumber(ARGV[1])
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], 'spent_fen', -cost)
end
for i = 0, tonumber(ARGV[3]) - 1 do
  redis.call('HINCRBY', KEYS[2], ARGV[4 + 2 * i], -tonumber(ARGV[5 + 2 * i]))
end
return 1
