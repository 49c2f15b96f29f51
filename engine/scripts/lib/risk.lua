-- risk.lua (a prelude of claim.lua, after gate.lua): the risk score of one play, from the signals it shows,
-- and what the score decides (see engine/fraud/gate.py risk_part and engine/fraud/risk.py).
--
-- The gate argument's r = {k = {keys by role, as indices in KEYS}, ...}:
--   k.t   list: the player's latest tap times (ms), newest first
--   k.dc  hash: plays per device this minute; k.dp the same for the minute before (kept 3 minutes)
--   k.nc  hash: plays per IP range this minute; k.np the minute before
--   k.nu  set: players seen from the request's IP range; k.nn those of them with new accounts
--   k.du  set: players the request's device carries (written by the device rules of gate.lua)
--   k.pa  string: until when (ms) the player is past a solved challenge (engine/fraud/challenge.py sets it)
--   u user, d device ('' = none), net IP range ('' = none), new (the account is new), f share of this minute
--   gone, lim = {device limit, range limit} (plays a minute), tr = {points, taps compared, max cv},
--   dr / nr / sd / nw points of device rate / range rate / shared device / new account, ins the points of
--   instant_play when the play came moments after the account registered (Python tells: 0 otherwise),
--   na = {points, min players, max new share}, ttl how long an account counts as new (ms), al: the crowd
--   signals count alone,
--   ca challenge at, da deny at, sh shadow mode
--
-- Every screened play that reaches the score is counted (taps, rates, players per range): the statistics
-- describe what was attempted, admitted or not. Nothing here is the player's chance or quota.
--
-- Evidence of a machine or a farm (tap_regularity, device_rate, shared_device, instant_play) always counts.
-- The crowd signals (ip_range_rate, new_accounts_in_range, new_account), which a carrier's NAT full of new
-- users shows as much as a farm, count only in a play that shows evidence too (or when r.al).

-- Counts the play under field in this minute's hash and answers whether the sliding minute (this minute's
-- count plus the share of the last one still inside it) is above limit.
local function above_rate(now_key, before_key, field, share_gone, limit)
  local now_count = redis.call('HINCRBY', now_key, field, 1)
  redis.call('PEXPIRE', now_key, 180000)
  local before = tonumber(redis.call('HGET', before_key, field) or '0')
  return now_count + before * (1 - share_gone) > limit
end

-- Whether the set holds member, and when it does not how many it holds: {member = bool, card = n or nil}
-- (also gate.lua's distinct checks, whose answers risk_score then reads instead of asking again).
local function set_membership(key, member)
  local known = {member = redis.call('SISMEMBER', key, member) == 1}
  if not known.member then
    known.card = redis.call('SCARD', key)
  end
  return known
end

-- Adds a signal's points and its name to a kind of signal ({points = n, reason, reason...}).
local function risk_add(kind, points, reason)
  if points > 0 then
    kind.points = kind.points + points
    kind[#kind + 1] = reason
  end
end

-- sets: what the gate's distinct checks already know of a set (set_membership's answers by key).
local function risk_score(r, now, sets)
  local evidence, crowd = {points = 0}, {points = 0}
  local k = r.k
  local points, taps_compared, max_cv = r.tr[1], r.tr[2], r.tr[3]
  if points > 0 then
    local taps = redis.call('LRANGE', KEYS[k.t], 0, taps_compared - 2)
    redis.call('LPUSH', KEYS[k.t], now)
    redis.call('LTRIM', KEYS[k.t], 0, taps_compared - 1)
    redis.call('PEXPIRE', KEYS[k.t], 3600000)
    if #taps >= taps_compared - 1 then
      local later, sum, squares = now, 0, 0
      for _, t in ipairs(taps) do
        local gap = later - tonumber(t)
        sum, squares, later = sum + gap, squares + gap * gap, tonumber(t)
      end
      local mean = sum / #taps
      if mean > 0 then
        local cv = math.sqrt(math.max(squares / #taps - mean * mean, 0)) / mean
        if cv < max_cv then
          risk_add(evidence, points, 'tap_regularity')
        end
      end
    end
  end
  if r.d ~= '' then
    if above_rate(KEYS[k.dc], KEYS[k.dp], r.d, r.f, r.lim[1]) then
      risk_add(evidence, r.dr, 'device_rate')
    end
    if r.sd > 0 then
      local players = sets[KEYS[k.du]] or set_membership(KEYS[k.du], r.u)
      if not players.member and players.card > 0 then
        risk_add(evidence, r.sd, 'shared_device')
      end
    end
  end
  if r.net ~= '' then
    if above_rate(KEYS[k.nc], KEYS[k.np], r.net, r.f, r.lim[2]) then
      risk_add(crowd, r.nr, 'ip_range_rate')
    end
    redis.call('SADD', KEYS[k.nu], r.u)
    redis.call('PEXPIRE', KEYS[k.nu], 86400000)
    if r.new then
      redis.call('SADD', KEYS[k.nn], r.u)
      redis.call('PEXPIRE', KEYS[k.nn], r.ttl)
    end
    local players = redis.call('SCARD', KEYS[k.nu])
    if players >= r.na[2] and redis.call('SCARD', KEYS[k.nn]) / players > r.na[3] then
      risk_add(crowd, r.na[1], 'new_accounts_in_range')
    end
  end
  risk_add(evidence, r.ins, 'instant_play')
  if r.new then
    risk_add(crowd, r.nw, 'new_account')
  end
  if evidence.points == 0 and not r.al then
    return 0, {}
  end
  local reasons = {}
  for _, kind in ipairs({evidence, crowd}) do
    for _, reason in ipairs(kind) do
      reasons[#reasons + 1] = reason
    end
  end
  return evidence.points + crowd.points, reasons
end

-- 'risk:deny', 'risk:challenge' or nil. A player past a solved challenge is let through the challenge band.
local function risk_decision(r, score, now)
  if score >= r.da then
    return 'risk:deny'
  end
  if score < r.ca or tonumber(redis.call('GET', KEYS[r.k.pa]) or '0') > now then
    return nil
  end
  return 'risk:challenge'
end
