-- attempts.lua: count one attempt of a player (and its device and IP) against the campaign's rate limits
-- before a stateful game reads its state and plans (engine/runtime.py): a flood of plays the game would
-- refuse in Python (no chances left, say) is refused here first, and each of its attempts counts. The claim
-- script then makes the play's other checks only, however many times it is planned (Screening.counted).
--
-- KEYS[1]  the Idempotency-Key record of this player and key
-- KEYS[2..] the gate's keys by index, as lib/gate.lua reads them: the fraud stats hash, the fraud log
--          stream, the windows' keys of this epoch, then of the epoch before
-- ARGV[1]  now, ms since the epoch
-- ARGV[2]  request fingerprint (sha256 hex)
-- ARGV[3..] the gate's arguments (lib/gate.lua gate_read) with the play's window checks
--
-- The attempt leaves its mark under its key (lib/idempotency.lua) whatever the game then makes of it: a retry
-- with the key is read against the windows, not counted again; a request admitted before is not counted (the
-- state read's record answers it).
--
-- Returns {'OK', ''}, or {'FRAUD', label .. '\n' .. '{"retry_after_ms": n}'} for the first enforced rate limit
-- the attempt is over (counted in the stats hash and logged, as any refusal of the gate).

local replay, counted = idem_lookup(KEYS[1], ARGV[2])
if replay then
  return {'OK', ''}
end
local gate = gate_read(3)
local verdict = gate_windows(gate, tonumber(ARGV[1]), nil, counted)
if not counted then
  idem_mark(KEYS[1], ARGV[2], gate.m)
end
if verdict then
  return {'FRAUD', verdict.refused .. '\n' .. cjson.encode(verdict.detail)}
end
return {'OK', ''}
