-- attempts.lua: count one attempt of a player (and its device and IP) against the campaign's rate limits
-- before a stateful game reads its state and plans (engine/runtime.py): a flood of plays the game would
-- refuse in Python (no chances left, say) is refused here first, and each of its attempts counts. The claim
-- script then makes the play's other checks only, however many times it is planned (Screening.counted).
--
-- KEYS     the gate's keys by index, as lib/gate.lua reads them: the fraud stats hash, the fraud log
--          stream, then the windows' sorted sets
-- ARGV[1]  now, ms since the epoch
-- ARGV[2..] the gate's arguments (lib/gate.lua gate_read) with the play's window checks
--
-- Returns {'OK', ''}, or {'FRAUD', label .. '\n' .. '{"retry_after_ms": n}'} for the first enforced rate limit
-- the attempt is over (counted in the stats hash and logged, as any refusal of the gate).

local verdict = gate_windows(gate_read(2, ARGV[1]), tonumber(ARGV[1]))
if verdict then
  return {'FRAUD', verdict.refused .. '\n' .. cjson.encode(verdict.detail)}
end
return {'OK', ''}
