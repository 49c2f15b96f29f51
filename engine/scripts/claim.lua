-- claim.lua: admit one claim atomically, or refuse it with nothing changed (but what the fraud gate counts
-- of every attempt: its rate-limit windows, risk statistics and refusal stats, lib/gate.lua).
--
-- Checks, in order: the Idempotency-Key, the campaign's status and schedule,
-- per-user limits, stock of every item, budget. If all pass it takes the
-- stock, counts the player's units, spends the budget, records a held order
-- when there is one, appends the claim to the outbox and stores the answer
-- under the Idempotency-Key -- all in this one script, so a claim, its
-- counters and its outbox entry survive or vanish together. Running it twice
-- for one claim (redis-py retrying a lost reply) replays the stored answer.
--
-- KEYS[1]  meta hash: status, starts_ms, ends_ms, budget_fen, spent_fen
-- KEYS[2]  stock total hash: item -> total units
-- KEYS[3]  stock taken hash: item -> units taken
-- KEYS[4]  the player's counters hash: all, d:<day>, i:<item>
-- KEYS[5]  the Idempotency-Key record of this player and key
-- KEYS[6]  outbox stream
-- KEYS[7]  holds sorted set (order id by payment deadline)
-- KEYS[8]  order hash of this claim (written only when the order is held)
-- KEYS[9..] the keys the game's ops touch (hashes and bitmaps of this campaign), by index; then, when
--          the play is screened, the gate's stats hash, log stream and the keys of its checks, risk score
--          and ring checks (lib/gate.lua, lib/risk.lua, lib/ring.lua)
--
-- ARGV[1]  request fingerprint (sha256 hex)
-- ARGV[2]  now, ms since the epoch
-- ARGV[3]  Idempotency-Key lifetime, seconds
-- ARGV[4]  business day, YYYYMMDD in the campaign's zone
-- ARGV[5]  campaign limit of units per player ('' = none)
-- ARGV[6]  campaign limit of units per player per day ('' = none)
-- ARGV[7]  units this claim counts against the player's limits
-- ARGV[8]  cost in fen this claim spends from the budget
-- ARGV[9]  the answer (JSON) to give and to store for the key
-- ARGV[10] the outbox event (JSON)
-- ARGV[11] hold deadline, ms ('0' = no hold: confirmed at once)
-- ARGV[12] lifetime of the player's counters and order hash, seconds
-- ARGV[13] order id (the claim id)
-- ARGV[14] user id
-- ARGV[15] the player's action sequence number the plan was drawn for ('' = not tracked);
--          the claim is STALE unless the player's 'seq' field still holds it, and advances it
-- ARGV[16] the player's A/B variant to record on their first play ('' = none)
-- ARGV[17] the game's ops, JSON: [[kind, key index, field, value, low, high, refuse label], ...]
--          kinds: incr (bounded by low/high), put, expect, absent, delete, setbit
-- ARGV[18] mode: 'play'; 'carry' (the other player's half of an action already admitted: neither the
--          status nor the schedule is checked); or 'finale' (the game's one payout when the campaign has ended: the
--          status must be 'ended' and the schedule is not checked)
-- ARGV[19] where the fraud gate's arguments start in ARGV, after the items (lib/gate.lua gate_read); '' = the
--          play is not screened
-- ARGV[20] n, the number of items; then n triples from ARGV[21]:
--          item, quantity, limit of this item per player ('' = none)
--
-- Returns {code, body}:
--   {'OK', answer}              admitted; answer = ARGV[9] (or the gate's held answer) .. '\n' .. state JSON,
--                               then '\n' .. what the gate noted on the play (JSON) when it noted anything
--   {'REPLAY', answer}          this key and request were admitted before
--   {'REUSED', ''}              this key was used with another request
--   {'NOT_LIVE', status}        the campaign is paused, ended or a draft
--   {'NOT_STARTED', ''}, {'ENDED', ''}
--   {'LIMIT', scope}            scope: per_user | per_user_per_day | item:<item>
--   {'SOLD_OUT', item}
--   {'BUDGET', ''}
--   {'STALE', ''}               the player played since the plan read their state: read and plan again
--   {'REFUSED', label}          an op's guard failed; label names the game's refusal (or STALE)
--   {'FRAUD', label}            a fraud gate check failed; label names the rule, followed by a newline and
--                               {score, reasons} (JSON) when the risk score or a ring refused

local replay, counted = idem_lookup(KEYS[5], ARGV[1])
if replay then
  return replay
end

local now = tonumber(ARGV[2])
local meta = redis.call('HMGET', KEYS[1], 'status', 'starts_ms', 'ends_ms', 'budget_fen', 'spent_fen')
if ARGV[18] == 'finale' then
  if meta[1] ~= 'ended' then
    return {'NOT_LIVE', meta[1] or 'missing'}
  end
elseif ARGV[18] ~= 'carry' then
  if meta[1] ~= 'live' then
    return {'NOT_LIVE', meta[1] or 'missing'}
  end
  if meta[2] and meta[2] ~= '' and now < tonumber(meta[2]) then
    return {'NOT_STARTED', ''}
  end
  if meta[3] and meta[3] ~= '' and now >= tonumber(meta[3]) then
    return {'ENDED', ''}
  end
end

if ARGV[15] ~= '' and (redis.call('HGET', KEYS[4], 'seq') or '0') ~= ARGV[15] then
  return {'STALE', ''}
end

local gate = ARGV[19] ~= '' and gate_read(tonumber(ARGV[19])) or nil
local verdict
if gate then
  verdict = gate_check(gate, now, KEYS[5], ARGV[1], counted)
  if verdict.refused then
    return {'FRAUD', verdict.detail and (verdict.refused .. '\n' .. cjson.encode(verdict.detail)) or verdict.refused}
  end
end

-- A refusal after the gate passed the play is undone as the gate's own are (lib/gate.lua gate_undo).
local function refuse(code, detail)
  if gate then
    gate_undo(gate, verdict, KEYS[5], ARGV[1], counted)
  end
  return {code, detail}
end

local units = tonumber(ARGV[7])
local cost = tonumber(ARGV[8])
local day_field = 'd:' .. ARGV[4]
local counters = redis.call('HMGET', KEYS[4], 'all', day_field)
local used_all = tonumber(counters[1] or '0')
local used_day = tonumber(counters[2] or '0')
if ARGV[5] ~= '' and used_all + units > tonumber(ARGV[5]) then
  return refuse('LIMIT', 'per_user')
end
if ARGV[6] ~= '' and used_day + units > tonumber(ARGV[6]) then
  return refuse('LIMIT', 'per_user_per_day')
end

local n = tonumber(ARGV[20])
local items = {}
for i = 0, n - 1 do
  local item = ARGV[21 + 3 * i]
  local quantity = tonumber(ARGV[22 + 3 * i])
  local item_limit = ARGV[23 + 3 * i]
  if item_limit ~= '' then
    local used_item = tonumber(redis.call('HGET', KEYS[4], 'i:' .. item) or '0')
    if used_item + quantity > tonumber(item_limit) then
      return refuse('LIMIT', 'item:' .. item)
    end
  end
  local total = tonumber(redis.call('HGET', KEYS[2], item) or '0')
  local taken = tonumber(redis.call('HGET', KEYS[3], item) or '0')
  if taken + quantity > total then
    return refuse('SOLD_OUT', item)
  end
  items[#items + 1] = {item, quantity, total - taken - quantity, ARGV[22 + 3 * i]}
end

if meta[4] and meta[4] ~= '' and tonumber(meta[5] or '0') + cost > tonumber(meta[4]) then
  return refuse('BUDGET', '')
end

-- The game's ops: every guard is checked against the state as the ops before it leave it;
-- nothing is written until all of them (and every check above) have passed.
local ops = ARGV[17] == '[]' and {} or cjson.decode(ARGV[17])  -- a flash-sale buy has none: no decode
local pending, original, touched, bits = {}, {}, {}, {}
local function current(k, f)
  local id = k .. '\0' .. f
  if original[id] == nil then
    local stored = redis.call('HGET', KEYS[k], f)
    original[id] = stored or false
    pending[id] = original[id]
    touched[#touched + 1] = {k, f, id}
  end
  return pending[id], id
end
for _, op in ipairs(ops) do
  local kind, k, f, value, low, high = op[1], tonumber(op[2]), op[3], op[4], op[5], op[6]
  if kind == 'setbit' then
    local bit_id = k .. ':' .. value
    if bits[bit_id] or redis.call('GETBIT', KEYS[k], tonumber(value)) == 1 then
      return refuse('REFUSED', op[7])
    end
    bits[bit_id] = {k, tonumber(value)}
  else
    local v, id = current(k, f)
    if kind == 'incr' then
      local result = tonumber(v or '0') + tonumber(value)
      if (low ~= '' and result < tonumber(low)) or (high ~= '' and result > tonumber(high)) then
        return refuse('REFUSED', op[7])
      end
      pending[id] = string.format('%d', result)
    elseif kind == 'put' then
      pending[id] = value
    elseif kind == 'delete' then
      pending[id] = false
    elseif kind == 'expect' then
      if v ~= value then
        return refuse('REFUSED', op[7])
      end
    elseif kind == 'absent' then
      if v then
        return refuse('REFUSED', op[7])
      end
    else
      return redis.error_reply('unknown op ' .. tostring(kind))
    end
  end
end

-- Every check passed: apply the effects.
local expire_keys = {}
for _, t in ipairs(touched) do
  local k, f, id = t[1], t[2], t[3]
  if pending[id] ~= original[id] then
    if pending[id] then
      redis.call('HSET', KEYS[k], f, pending[id])
    else
      redis.call('HDEL', KEYS[k], f)
    end
    expire_keys[k] = true
  end
end
for _, b in pairs(bits) do
  redis.call('SETBIT', KEYS[b[1]], b[2], '1')
  expire_keys[b[1]] = true
end
for k in pairs(expire_keys) do
  redis.call('EXPIRE', KEYS[k], ARGV[12])
end
if ARGV[15] ~= '' then
  redis.call('HINCRBY', KEYS[4], 'seq', '1')
end
if ARGV[16] ~= '' then
  redis.call('HSETNX', KEYS[4], 'variant', ARGV[16])
end
local remaining = {}
local held_items = {}
for _, entry in ipairs(items) do
  redis.call('HINCRBY', KEYS[3], entry[1], entry[4])  -- the quantity as given: a Lua number would be formatted again
  redis.call('HINCRBY', KEYS[4], 'i:' .. entry[1], entry[4])
  remaining[entry[1]] = entry[3]
  held_items[#held_items + 1] = {entry[1], entry[2]}
end
used_all = redis.call('HINCRBY', KEYS[4], 'all', ARGV[7])
used_day = redis.call('HINCRBY', KEYS[4], day_field, ARGV[7])
redis.call('EXPIRE', KEYS[4], ARGV[12])
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], 'spent_fen', ARGV[8])
end

local deadline = tonumber(ARGV[11])
if deadline > 0 then
  redis.call('HSET', KEYS[8],
    'user', ARGV[14], 'status', 'held', 'day', ARGV[4], 'units', units, 'cost_fen', cost,
    'items', cjson.encode(held_items), 'deadline_ms', deadline, 'event', ARGV[10])
  redis.call('EXPIRE', KEYS[8], ARGV[12])
  redis.call('ZADD', KEYS[7], ARGV[11], ARGV[13])
end

local given = ARGV[9]
local record = nil
if gate then
  gate_apply(gate, verdict, now)
  record = gate_record(gate, verdict)  -- what the gate noted on the play (claims.fraud)
  if #verdict.held > 0 then
    given = gate.ha  -- its grants wait in the review queue
  end
end
if record then
  redis.call('XADD', KEYS[6], '*', 'e', ARGV[10], 'f', record)
else
  redis.call('XADD', KEYS[6], '*', 'e', ARGV[10])
end

local answer = given .. '\n' .. cjson.encode({remaining = remaining, used = {all = used_all, today = used_day}})
idem_store(KEYS[5], ARGV[1], answer, ARGV[3])
return {'OK', record and (answer .. '\n' .. record) or answer}
