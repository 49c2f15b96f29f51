-- claim.lua: admit one claim atomically, or refuse it with nothing changed (but what the fraud gate counts
-- of every attempt: its rate-limit windows, risk statistics and refusal stats, lib/gate.lua).
--
-- The parts, each a prelude (engine/scripts.py SCRIPT_PARTS declares their order): the request document
-- (lib/request.lua), the Idempotency-Key (lib/idempotency.lua), the fraud gate (lib/risk.lua, lib/ring.lua,
-- lib/gate.lua), the checks (lib/admission.lua), the game's ops (lib/ops.lua) and the writes (lib/outbox.lua).
-- A claim, its counters and its outbox entry survive or vanish together; running it twice for one claim
-- (redis-py retrying a lost reply) replays the stored answer.
--
-- KEYS[1]  meta hash: status, starts_ms, ends_ms, budget_fen, spent_fen
-- KEYS[2]  stock total hash: item -> units
-- KEYS[3]  stock taken hash: item -> units taken
-- KEYS[4]  the player's counters hash: all, d:<day>, i:<item>, seq, variant
-- KEYS[5]  the Idempotency-Key record of this player and key
-- KEYS[6]  outbox stream
-- KEYS[7]  holds sorted set (order id by payment deadline)
-- KEYS[8]  order hash of this claim (written only when the order is held)
-- KEYS[9..] the keys the game's ops touch, by index; then, when the play is screened, the gate's keys
--
-- ARGV[1..20] the request (lib/request.lua)
-- ARGV[21..]  when the request is screened, the fraud gate's arguments (lib/gate.lua gate_read)
--
-- Returns, typed by engine/claim_call.py:
--   {'OK', answer, state, noted}  admitted: the answer given (or the gate's held answer), the state shown
--                                 (JSON) and what the gate noted on the play (JSON, '' = nothing)
--   {'REPLAY', answer .. '\n' .. state}  this key and request were admitted before
--   {'REUSED', ''}                this key was used with another request
--   {'NOT_LIVE', status}, {'NOT_STARTED', ''}, {'ENDED', ''}
--   {'STALE', ''}                 the player played since the plan read their state: read and plan again
--   {'LIMIT', scope}              scope: per_user | per_user_per_day | item:<item>
--   {'SOLD_OUT', item}, {'BUDGET', ''}
--   {'REFUSED', label}            an op's guard failed; label names the game's refusal (or STALE)
--   {'FRAUD', label, detail}      a fraud gate check failed; detail {score, reasons} (JSON) or ''

local req = request_read()
local replay, counted = idem_lookup(KEYS[5], req.fingerprint)
if replay then
  return replay
end
local now = tonumber(req.now)
local meta = admission_meta()
local refusal = admission_live(req, meta, now)
if refusal then
  return refusal
end

local gate = req.screened == '1' and gate_read(REQUEST_ARGS + 1) or nil
local verdict
if gate then
  verdict = gate_check(gate, now, KEYS[5], req.fingerprint, counted)
  if verdict.refused then
    return {'FRAUD', verdict.refused, verdict.detail and cjson.encode(verdict.detail) or ''}
  end
end

-- A refusal after the gate passed the play is undone as the gate's own are (lib/gate.lua gate_undo).
local function refuse(reply)
  if gate then
    gate_undo(gate, verdict, KEYS[5], req.fingerprint, counted)
  end
  return reply
end

local used, takes, plan
used, refusal = admission_limits(req)
if refusal then
  return refuse(refusal)
end
takes, refusal = admission_stock(req)
if refusal then
  return refuse(refusal)
end
refusal = admission_budget(req, meta)
if refusal then
  return refuse(refusal)
end
plan, refusal = ops_check(req.ops)
if refusal then
  return refuse(refusal)
end

-- Every check passed: apply the effects.
ops_apply(plan, req.state_ttl)
local state = outbox_count(req, takes, used)
outbox_hold(req, takes)
local given, noted = req.answer, nil
if gate then
  gate_apply(gate, verdict, now)
  noted = gate_record(gate, verdict)  -- what the gate noted on the play (claims.fraud)
  if #verdict.held > 0 then
    given = gate.ha  -- its grants wait in the review queue
  end
end
return outbox_append(req, given, state, noted)
