-- gate.lua (a prelude of claim.lua): the fraud gate's checks that need shared state, made inside the
-- claim's own script so that no check races the claim it guards (see engine/fraud/gate.py).
--
-- The gate's arguments are positional in ARGV from an index the script is given (engine/scripts.py
-- _gate_args: no JSON to decode, and no argument sent twice), read by gate_read. First the index in KEYS of
-- the gate's first key: its keys follow in this order, so no other index is sent: the stats hash (s), the log
-- stream (l), each check's key, each window's key of the epoch before (in the windows' order), then the risk
-- score's keys (lib/risk.lua). Then:
--   n   the log's length
--   user, device, ip  who is asking (as the log records a refusal)
--   m   how long the mark of a counted attempt is kept (ms: twice the longest window; '' without windows)
--   p   [labels of the shadow rules the request already broke]  (a count, then the labels)
--   c   the checks: how many windows (w), nonces (0 or 1) and distinct checks there are, in this order (Python
--       sends them so), their labels in one argument (space-separated, a shadow rule's after a '~'; read
--       only when a check fails), then each check's numbers: a window's limit and ttl ms, the nonce's ttl
--       ms, a distinct check's limit, ttl ms and member. Check j's key is the j-th after the log's.
--   g   the ring checks' part (lib/ring.lua), JSON with its own key indices, or '' (only plays on a referral
--       tree have one)
--   ha  the answer to give instead when the play is held for review ('' without a ring part)
--   r   the risk score's part (lib/risk.lua risk_read), after a '1'; '0' = no risk score
-- The checks' kinds:
--   nonce     the key must not exist (a nonce used before: a replay): the check sets it for ttl ms (one
--             command, SET NX), and a play refused after all takes it back (gate_check, gate_undo)
--   window    an attempt, counted when the check is made, whatever becomes of the play (a flood of refusals
--             is still a flood); it fails when more than limit attempts came within the last ttl ms, as a
--             sliding-window counter tells (gate_window). Its key counts the attempts of this epoch of ttl
--             ms (Python names it by the epoch), a second key the epoch before's. A play refused after the
--             count leaves a mark under its Idempotency-Key (lib/idempotency.lua): the same request retried
--             with its key is read against the window, not counted again.
--   distinct  the set holds member already, or fewer than limit members; an admitted play adds member,
--             and the set lives ttl ms from the last member it gained (a play of a member already there
--             writes nothing)
--
-- gate_check answers the verdict {refused = the label of the first enforced check that failed (nil: none),
-- detail = {score, reasons} of a refusal by the risk score or a ring, {retry_after_ms} of a window's
-- (when the window has room again, if no more attempts come), shadow = labels of the shadow rules
-- broken, held = labels of the ring signals that hold the play for review, risk = {score, reasons} when the
-- score is above 0}; the risk score (lib/risk.lua, gate.r) and the ring checks (lib/ring.lua, gate.g) come
-- after the rules. A refusal is counted in the stats hash (field = label) and logged (the capped stream).
-- gate_apply records an admitted play: its checks' effects (a window's and the nonce's were made by the check),
-- the tree it joins, and its shadow hits ('shadow:' .. label) and holds ('held:' .. label) in the stats hash.

-- The gate's arguments from ARGV[i] on (see above). The checks stay in ARGV
-- (a table per check costs a play more than its commands): gate.w, gate.o and gate.d count the windows, nonces
-- and distinct checks, and gate.a is where their numbers start.
local function gate_read(i)
  local first = tonumber(ARGV[i])
  local gate = {s = first, l = first + 1, n = ARGV[i + 1], user = ARGV[i + 2], device = ARGV[i + 3],
                ip = ARGV[i + 4], m = ARGV[i + 5], p = {}}
  i = i + 6
  local count = tonumber(ARGV[i])
  for j = 1, count do
    gate.p[j] = ARGV[i + j]
  end
  i = i + count + 1
  gate.w, gate.o, gate.d, gate.lb = tonumber(ARGV[i]), ARGV[i + 1] == '1' and 1 or 0, tonumber(ARGV[i + 2]),
    ARGV[i + 3]
  gate.a = i + 4
  i = gate.a + 2 * gate.w + gate.o + 3 * gate.d
  if ARGV[i] ~= '' then
    gate.g = cjson.decode(ARGV[i])
  end
  gate.ha = ARGV[i + 1]
  if ARGV[i + 2] == '1' then
    gate.r = risk_read(first + 2 + gate.w * 2 + gate.o + gate.d, i + 3, gate)
  end
  return gate
end

-- An empty list that is only read (a play's list that stays empty needs no table of its own).
local NONE = {}

-- Check j's label and whether its rule is in shadow mode (read from gate.lb when a check fails).
local function gate_label(gate, j)
  local n = 0
  for label in string.gmatch(gate.lb, '%S+') do
    n = n + 1
    if n == j then
      if string.sub(label, 1, 1) == '~' then
        return string.sub(label, 2), true
      end
      return label, false
    end
  end
  error('no label for gate check ' .. j)
end

-- Distinct check j's (1 to gate.d) key, limit, ttl ms and member.
local function gate_distinct(gate, j)
  local at = gate.a + 2 * gate.w + gate.o + 3 * (j - 1)
  return KEYS[gate.l + gate.w + gate.o + j], ARGV[at], ARGV[at + 1], ARGV[at + 2]
end

local function gate_refuse(gate, label, reasons)
  redis.call('HINCRBY', KEYS[gate.s], label, '1')
  redis.call('XADD', KEYS[gate.l], 'MAXLEN', '~', gate.n, '*', 'rule', label, 'user', gate.user,
    'device', gate.device, 'ip', gate.ip, 'reasons', table.concat(reasons or {}, ','))
end

-- A window check (see above), a sliding-window counter: the attempts of this epoch (key) plus those of the
-- epoch before (prev) weighted by the share of it still inside the window, which holds when attempts came
-- evenly; one counter a window and epoch (lib/risk.lua split_count: it carries the epoch before's count)
-- instead of one entry an attempt. counted: this attempt was counted before (a retry with its key), so the
-- window is read, not counted. Answers whether it failed and, if so, in how many ms the next attempt fits if no
-- more come.
local function gate_window(key, prev, limit, ttl, now, counted)
  local count, before
  if counted then
    local value = tonumber(redis.call('GET', key) or '0')
    if value == 0 then  -- nothing counted in this epoch yet: the epoch before's is read where it is
      value = tonumber(with_before(redis.call('GET', prev)) or '0')
    end
    count, before = split_count(value)
  else
    local first
    count, before, first = epoch_count(key, prev)
    if first then  -- read as the epoch before through the next epoch
      redis.call('PEXPIRE', key, 2 * tonumber(ttl))
    end
  end
  limit = tonumber(limit)
  if count + before <= limit then
    return false
  end
  ttl = tonumber(ttl)
  local into = now % ttl
  if not above_rate(count, before, into / ttl, limit) then
    return false
  end
  local wait  -- in this epoch, as the epoch before's weight falls; else in the next, as this one's does
  if count < limit then
    wait = ttl * (1 - (limit - count - 1) / before) - into
  end
  if not wait or wait >= ttl - into then
    wait = ttl - into + math.max(0, ttl * (1 - (limit - 1) / count))
  end
  return true, math.max(1, math.ceil(wait))
end

-- The window checks (Python puts them first): the refusal of the first enforced one that failed
-- ({refused, detail = {retry_after_ms}}), or nil. A shadow one that failed joins ``shadow`` (gate_check's
-- list, counted if the play is admitted) or, without one (attempts.lua, before a stateful game plans), is
-- counted in the stats hash at once. counted: this request was counted before (gate_window).
local function gate_windows(gate, now, shadow, counted)
  local prev = gate.l + gate.w + gate.o + gate.d  -- the keys of the epochs before follow the checks'
  for j = 1, gate.w do
    local at = gate.a + 2 * (j - 1)
    local failed, retry = gate_window(KEYS[gate.l + j], KEYS[prev + j], ARGV[at], ARGV[at + 1], now, counted)
    local label, is_shadow
    if failed then
      label, is_shadow = gate_label(gate, j)
    end
    if failed and not is_shadow then
      gate_refuse(gate, label)
      return {refused = label, detail = {retry_after_ms = retry}}
    elseif failed and shadow then
      shadow[#shadow + 1] = label
    elseif failed then
      redis.call('HINCRBY', KEYS[gate.s], 'shadow:' .. label, '1')
    end
  end
  return nil
end

-- The checks after the windows, the risk score and the ring checks: the verdict (above). sets: what the
-- distinct checks learned of their sets (set_membership's answers by key), which the risk score and
-- gate_apply read instead of asking again; nonce: the nonce's key once the check set it. counted: see
-- gate_window.
local function gate_decide(gate, now, counted)
  -- The shadow hits start with the request's own (gate.p: a table of its own, not read again); held is a ring's
  -- list of signals when it has one (the empty table is never added to); sets are kept when there are sets.
  local verdict = {shadow = gate.p, held = NONE, sets = (gate.d > 0 or gate.r) and {} or NONE}
  local shadow = verdict.shadow
  local limited = gate_windows(gate, now, shadow, counted)
  if limited then
    verdict.refused, verdict.detail = limited.refused, limited.detail
    return verdict
  end
  if gate.o == 1 then
    local key = KEYS[gate.l + gate.w + 1]
    if redis.call('SET', key, '1', 'NX', 'PX', ARGV[gate.a + 2 * gate.w]) then
      verdict.nonce = key
    else
      local label, is_shadow = gate_label(gate, gate.w + 1)
      if not is_shadow then
        gate_refuse(gate, label)
        verdict.refused = label
        return verdict
      end
      shadow[#shadow + 1] = label
    end
  end
  for j = 1, gate.d do
    local key, limit, _, member = gate_distinct(gate, j)
    local card = set_membership(key, member)  -- -1: a member already
    verdict.sets[key] = card
    if card >= tonumber(limit) then
      local label, is_shadow = gate_label(gate, gate.w + gate.o + j)
      if not is_shadow then
        gate_refuse(gate, label)
        verdict.refused = label
        return verdict
      end
      shadow[#shadow + 1] = label
    end
  end
  if gate.r then
    local score, reasons = risk_score(gate.r, now, verdict.sets)
    if score > 0 then
      verdict.risk = {score = score, reasons = reasons}
    end
    local decision = risk_decision(gate.r, score, now)
    if decision and gate.r.sh then
      shadow[#shadow + 1] = decision
    elseif decision then
      gate_refuse(gate, decision, reasons)
      verdict.refused, verdict.detail = decision, verdict.risk
      return verdict
    end
  end
  if gate.g then
    local signals = ring_signals(gate.g)
    if #signals > 0 and gate.g.sh then
      for _, label in ipairs(signals) do
        shadow[#shadow + 1] = label
      end
    elseif #signals > 0 and gate.g.deny and gate.g.role == 'assist' then
      ring_flag(gate.g)  -- a refused ring assist still marks the tree: its cash-out waits for review
      gate_refuse(gate, signals[1], signals)
      verdict.refused, verdict.detail = signals[1], {reasons = signals}
      return verdict
    else
      verdict.held = signals
    end
  end
  return verdict
end

-- A play refused after its checks, by the gate or by the claim: the nonce it set is taken back (a nonce is spent
-- only by an admitted play), and an attempt the windows counted here leaves its mark under its Idempotency-Key
-- (key; fingerprint: the request's; counted: it left one before), so that its retry is not counted again.
local function gate_undo(gate, verdict, key, fingerprint, counted)
  if verdict.nonce then
    redis.call('DEL', verdict.nonce)
  end
  if gate.w > 0 and not counted then
    idem_mark(key, fingerprint, gate.m)
  end
end

-- The verdict (gate_decide); a refusal is undone (gate_undo).
local function gate_check(gate, now, key, fingerprint, counted)
  local verdict = gate_decide(gate, now, counted)
  if verdict.refused then
    gate_undo(gate, verdict, key, fingerprint, counted)
  end
  return verdict
end

local function gate_apply(gate, verdict, now)
  for j = 1, gate.d do  -- the other kinds' effects were made by their checks
    local key, _, ttl, member = gate_distinct(gate, j)
    if verdict.sets[key] ~= -1 then  -- a member already: the set's lifetime runs from the last one it gained
      add_member(key, member, ttl)
    end
  end
  if gate.g then
    if #verdict.held > 0 then
      ring_flag(gate.g)
    end
    ring_apply(gate.g)
  end
  for _, label in ipairs(verdict.shadow) do
    redis.call('HINCRBY', KEYS[gate.s], 'shadow:' .. label, '1')
  end
  for _, label in ipairs(verdict.held) do
    redis.call('HINCRBY', KEYS[gate.s], 'held:' .. label, '1')
  end
end

-- What the gate noted on an admitted play, for claims.fraud (nil when nothing: most plays, so no table).
local function gate_record(gate, verdict)
  if #verdict.shadow == 0 and not verdict.risk and #verdict.held == 0 and not gate.g then
    return nil
  end
  local record = {}
  if #verdict.shadow > 0 then
    record.shadow = verdict.shadow
  end
  if verdict.risk then
    record.risk = verdict.risk
  end
  if #verdict.held > 0 then
    record.held = verdict.held
  end
  if gate.g then
    record.ring = {role = gate.g.role, tree = gate.g.tree, owner = gate.g.o, device = gate.g.d, ip = gate.g.ip}
  end
  return next(record) and cjson.encode(record) or nil
end
