-- outbox.lua (a prelude of claim.lua): what an admitted claim writes beside the game's ops: the stock taken,
-- the player's counters, the budget spent, the held order, the outbox entry and the Idempotency-Key's answer.
--
-- KEYS[1] meta hash, KEYS[3] stock taken hash, KEYS[4] the player's counters hash, KEYS[5] the
-- Idempotency-Key record, KEYS[6] outbox stream, KEYS[7] holds sorted set, KEYS[8] the claim's order hash.

-- The counters; answers the state the player is shown ({remaining = {item = left}, used = {all, today}}).
local function outbox_count(req, takes, used)
  if req.seq ~= '' then
    redis.call('HINCRBY', KEYS[4], 'seq', '1')
  end
  if req.variant ~= '' then
    redis.call('HSETNX', KEYS[4], 'variant', req.variant)
  end
  local remaining = {}
  for _, take in ipairs(takes) do
    redis.call('HINCRBY', KEYS[3], take[1], take[4])  -- the quantity as given: a Lua number would be formatted again
    redis.call('HINCRBY', KEYS[4], 'i:' .. take[1], take[4])
    remaining[take[1]] = take[3]
  end
  local all = redis.call('HINCRBY', KEYS[4], 'all', req.units)
  local today = redis.call('HINCRBY', KEYS[4], used.field, req.units)
  redis.call('EXPIRE', KEYS[4], req.state_ttl)
  if req.cost ~= '0' then
    redis.call('HINCRBY', KEYS[1], 'spent_fen', req.cost)
  end
  return {remaining = remaining, used = {all = all, today = today}}
end

-- The order waiting for its payment, when the claim holds one.
local function outbox_hold(req, takes)
  if req.hold_deadline == '0' then
    return
  end
  local held = {}
  for _, take in ipairs(takes) do
    held[#held + 1] = {take[1], take[2]}
  end
  redis.call('HSET', KEYS[8],
    'user', req.user_id, 'status', 'held', 'day', req.day, 'units', req.units, 'cost_fen', req.cost,
    'items', cjson.encode(held), 'deadline_ms', req.hold_deadline, 'event', req.event)
  redis.call('EXPIRE', KEYS[8], req.state_ttl)
  redis.call('ZADD', KEYS[7], req.hold_deadline, req.order_id)
end

-- The outbox entry (with what the gate noted, when it noted anything) and the answer kept for the key; answers
-- the reply {'OK', answer, state JSON, noted JSON or ''}.
local function outbox_append(req, given, state, noted)
  if noted then
    redis.call('XADD', KEYS[6], '*', 'e', req.event, 'f', noted)
  else
    redis.call('XADD', KEYS[6], '*', 'e', req.event)
  end
  local shown = cjson.encode(state)
  idem_store(KEYS[5], req.fingerprint, given .. '\n' .. shown, req.idempotency_ttl)
  return {'OK', given, shown, noted or ''}
end
