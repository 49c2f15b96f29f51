-- request.lua (a prelude of claim.lua): the claim's request, ARGV[1..20], read by name. The table below is
-- the one place its fields' order is declared: engine/claim_call.py reads it to encode a ClaimRequest.
-- Scalars are plain arguments; the two lists (the ops, the items) one MessagePack array each. (A whole request
-- packed as one MessagePack document, and a table filled field by field, cost a buy tens of thousands more
-- Redis instructions: bench/RESULTS.md.) Numbers that go to redis.call travel as text (a Lua number is
-- formatted again on every call); '' stands for none. When the request is screened, the fraud gate's arguments
-- follow from ARGV[REQUEST_ARGS + 1] (lib/gate.lua gate_read).
--
--   fingerprint       sha256 hex of the request (action and validated body)
--   now               ms since the epoch
--   idempotency_ttl   seconds the Idempotency-Key's answer is kept
--   day               business day, YYYYMMDD in the campaign's zone
--   per_user          the campaign's limit of units per player ('')
--   per_user_per_day  the same per business day ('')
--   units             units this claim counts against the player's limits
--   cost              fen this claim spends from the budget
--   answer            the answer (JSON) to give and to store under the key
--   event             the outbox event (JSON)
--   hold_deadline     ms; '0' = no hold (confirmed at once)
--   state_ttl         seconds the player's counters, the order and the game's keys live
--   order_id          the claim's order id
--   user_id
--   seq               the player's action number the plan was drawn for ('' = not tracked): else STALE
--   variant           the A/B variant to record on the player's first play ('')
--   ops               the game's ops, {{kind, key index, field, value, low, high, refuse label}, ...} ('' = none)
--   mode              'play', 'carry' (no status or schedule check) or 'finale' (status must be 'ended')
--   items             {{item, quantity, limit of the item per player ('')}, ...}
--   screened          '1': the fraud gate's arguments follow

local REQUEST_ARGS = 20
local NO_OPS = {}

local function request_read()
  local A = ARGV
  return {fingerprint = A[1], now = A[2], idempotency_ttl = A[3], day = A[4], per_user = A[5],
          per_user_per_day = A[6], units = A[7], cost = A[8], answer = A[9], event = A[10], hold_deadline = A[11],
          state_ttl = A[12], order_id = A[13], user_id = A[14], seq = A[15], variant = A[16],
          ops = A[17] ~= '' and cmsgpack.unpack(A[17]) or NO_OPS, mode = A[18], items = cmsgpack.unpack(A[19]),
          screened = A[20]}
end
