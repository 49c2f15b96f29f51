-- request.lua (a prelude of claim.lua): the claim as one document. ARGV[1] is a MessagePack array of the
-- fields below, in this order: engine/claim_call.py reads this list to encode a ClaimRequest, so the order is
-- declared here and nowhere else. Numbers that go to redis.call travel as text, as ARGV's do (a Lua number
-- is formatted again on every call); '' stands for none.
local REQUEST_FIELDS = {
  'fingerprint',       -- sha256 hex of the request (action and validated body)
  'now',               -- ms since the epoch
  'idempotency_ttl',   -- seconds the Idempotency-Key's answer is kept
  'day',               -- business day, YYYYMMDD in the campaign's zone
  'per_user',          -- the campaign's limit of units per player ('')
  'per_user_per_day',  -- the same per business day ('')
  'units',             -- units this claim counts against the player's limits
  'cost',              -- fen this claim spends from the budget
  'answer',            -- the answer (JSON) to give and to store under the key
  'event',             -- the outbox event (JSON)
  'hold_deadline',     -- ms; '0' = no hold (confirmed at once)
  'state_ttl',         -- seconds the player's counters, the order and the game's keys live
  'order_id',          -- the claim's order id
  'user_id',
  'seq',               -- the player's action number the plan was drawn for ('' = not tracked): else STALE
  'variant',           -- the A/B variant to record on the player's first play ('')
  'ops',               -- the game's ops: {{kind, key index, field, value, low, high, refuse label}, ...}
  'mode',              -- 'play', 'carry' (no status or schedule check) or 'finale' (status must be 'ended')
  'items',             -- {{item, quantity, limit of the item per player ('')}, ...}
  'screened',          -- '1': the fraud gate's positional arguments follow from ARGV[2] (lib/gate.lua)
}

local function request_read(packed)
  local values = cmsgpack.unpack(packed)
  local request = {}
  for i = 1, #REQUEST_FIELDS do
    request[REQUEST_FIELDS[i]] = values[i]
  end
  return request
end
