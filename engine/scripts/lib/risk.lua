-- risk.lua (a prelude of claim.lua, after gate.lua): the risk score of one play, from the signals it shows,
-- and what the score decides (see engine/fraud/gate.py risk_part and engine/fraud/risk.py).
--
-- The risk part of the gate's arguments (risk_read): its keys, from KEYS[first] on, in this order:
--   t    string: the player's latest taps, as bytes (regular_taps)
--   dc   hash: plays per device this minute; dp the same for the minute before (engine/fraud/risk.py
--        PopulationStats makes each minute's hash, kept 3 minutes, before the minute's first play: no expiry here)
--   nc   hash: plays per IP range this minute; np the minute before
--   nu   set: players seen from the request's IP range; nn those of them with new accounts
--   du   set: players the request's device carries (written by the device rules of gate.lua)
--   pa   string: until when (ms) the player is past a solved challenge (engine/fraud/challenge.py sets it)
-- and its arguments, positional from ARGV[i]: what the play says: net IP range ('' = none), new ('1': the
-- account is new), the device and range limits (plays a minute), ins the points of instant_play when the play
-- came moments after the account registered (Python tells: 0 otherwise), sd the points of a shared device (0
-- when this process knows the device carries the player: engine/fraud/members.py), seen ('1': this process
-- added the player to the range's sets a moment ago); then the policy's constants (engine/fraud/policy.py
-- risk_constants, but its first, sd): tap regularity points, taps compared and the spread of the newest two
-- gaps that can be regular (regular_taps); al ('1': the crowd signals count alone); ttl, how long an account
-- counts as new (ms); and one argument of the numbers only a play with evidence or a score reads (risk_rare):
-- the points of device rate (dr) and range rate (nr), new accounts in a range (points, min players, max new
-- share), the points of a new account (nw), challenge at, deny at, sh ('1': shadow mode), tap regularity's
-- max cv. The user and the device are the gate's (gate.user, gate.device).
--
-- Numbers given to redis.call are text: a Lua number is formatted (sprintf) on every call, which costs as much
-- as the command.
--
-- Every screened play that reaches the score is counted (taps, rates, players per range): the statistics
-- describe what was attempted, admitted or not. Nothing here is the player's chance or quota.
--
-- Evidence of a machine or a farm (tap_regularity, device_rate, shared_device, instant_play) always counts.
-- The crowd signals (ip_range_rate, new_accounts_in_range, new_account), which a carrier's NAT full of new
-- users shows as much as a farm, count only in a play that shows evidence too (or when al): a play without
-- evidence counts its range's statistics and reads none of them.

-- Its numbers stay text until a play needs them: tonumber (glibc's strtod) costs a script more than a Redis
-- command, and most plays need few of them.
local T, DC, DP, NC, NP, NU, NN, DU, PA = 0, 1, 2, 3, 4, 5, 6, 7, 8  -- the keys' places after the first (above)
local function risk_read(first, i, gate)
  return {k = first, u = gate.user, d = gate.device, net = ARGV[i], new = ARGV[i + 1] == '1', lim_d = ARGV[i + 2],
          lim_n = ARGV[i + 3], ins = ARGV[i + 4], sd = ARGV[i + 5], seen = ARGV[i + 6] == '1',
          tr_points = ARGV[i + 7], tr_taps = ARGV[i + 8], tr_spread = ARGV[i + 9], al = ARGV[i + 10] == '1',
          ttl = ARGV[i + 11], rare = ARGV[i + 12]}
end

-- The numbers of r.rare as fields of r (dr, nr, na_points, na_players, na_share, nw, ca, da, cv as text; sh),
-- read once, when a play first needs one.
local function risk_rare(r)
  if not r.da then
    local sh
    r.dr, r.nr, r.na_points, r.na_players, r.na_share, r.nw, r.ca, r.da, sh, r.cv =
      string.match(r.rare, '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    r.sh = sh == '1'
  end
  return r
end

-- A count that carries the epoch before's (a rate window's, or a minute's): the counter holds before * 2^32 +
-- count, where before is the epoch before's count, brought in by the epoch's first count. So one command a
-- play answers both, and the epoch before is read once an epoch, not on every play. before is kept below 2^20
-- (any limit is lower), so the value stays an exact Lua number.
local HIGH = 4294967296

-- What to add to a counter at its epoch's first count (the epoch before's value, as text, or false when there is
-- none): its count as the high part, as text for INCRBY; nil when there is none.
local function with_before(before_text)
  local before = tonumber(before_text or '0') % HIGH
  return before > 0 and string.format('%.0f', math.min(before, 1048576) * HIGH) or nil
end

-- The count and before of a counter's value (above).
local function split_count(value)
  local count = value % HIGH
  return count, (value - count) / HIGH
end

-- Counts one more in this epoch's counter (key: a string, or a hash's field when field is given), the epoch
-- before's count brought in from prev (the same field) by the epoch's first count: the count, before
-- (split_count) and whether this was the epoch's first count (when the caller gives a string its lifetime).
local function epoch_count(key, prev, field)
  local value = field and redis.call('HINCRBY', key, field, '1') or redis.call('INCR', key)
  if value ~= 1 then
    local count, before = split_count(value)
    return count, before, false
  end
  local add
  if field then
    add = with_before(redis.call('HGET', prev, field))
    value = add and redis.call('HINCRBY', key, field, add) or value
  else
    add = with_before(redis.call('GET', prev))
    value = add and redis.call('INCRBY', key, add) or value
  end
  local count, before = split_count(value)
  return count, before, true
end

-- Whether a sliding window (this epoch's count plus the epoch before's weighted by the share of it still inside:
-- share_gone is how far into this epoch now is) is above limit (a number or its text). The risk score's minutes
-- and gate.lua's rate windows.
local function above_rate(count, before, share_gone, limit)
  limit = tonumber(limit)
  return count > limit or (before > 0 and count + before * (1 - share_gone) > limit)
end

-- Adds a member to a set that lives ttl ms from the last member it gained.
local function add_member(key, member, ttl)
  if redis.call('SADD', key, member) == 1 then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- -1 when the set holds member, else how many it holds (also gate.lua's distinct checks, whose answers
-- risk_score then reads instead of asking again; a number, not a table: a table costs a play more).
local function set_membership(key, member)
  if redis.call('SISMEMBER', key, member) == 1 then
    return -1
  end
  return redis.call('SCARD', key)
end

-- A signal's points (text, from the arguments) added to the score so far, its name to the reasons.
local function risk_add(reasons, score, points, reason)
  if points == '0' then
    return score
  end
  reasons[#reasons + 1] = reason
  return score + tonumber(points)
end

-- Whether the player's latest taps (the history at key, this one's included) came at machine-regular
-- intervals: a coefficient of variation of the gaps below max_cv over taps_compared taps. now: the time in ms.
-- The history is bytes, not text: the latest tap's time in 6 bytes, then the gaps before it, newest first, 3
-- bytes each (ms, at most 2^24 - 1: 4.6 hours), at most taps_compared - 1 of them. string.byte and string.char
-- read and write it in a few calls; a list of times as text cost a tonumber (glibc's strtod) a tap, every play.
-- Kept at least half an hour from the latest tap: the first tap of each half hour gives it an hour.
--
-- Gaps that regular are each within mean * (1 +- max_cv * sqrt(gaps)) of their mean, so the newest two
-- differ by less than spread times the smaller (spread = 2c/(1 - c), c = max_cv * sqrt(gaps); Python
-- computes it): two that differ more, as a person's mostly do, need no look at the others. r: the risk part,
-- whose rare numbers hold max_cv (risk_rare).
local function regular_taps(key, now, taps_compared, spread, r)
  local history = redis.call('GET', key)
  local gap, b1, b2, b3 = 0, 0, 0, 0
  if history then
    local a, b, c, d, e, f = string.byte(history, 1, 6)
    gap = math.min(math.max(now - (((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f), 0), 16777215)
    b3 = gap % 256
    b2 = ((gap - b3) / 256) % 256
    b1 = (gap - b3 - b2 * 256) / 65536
  end
  local t6 = now % 256
  local t = (now - t6) / 256
  local t5 = t % 256
  t = (t - t5) / 256
  local t4 = t % 256
  t = (t - t4) / 256
  local t3 = t % 256
  t = (t - t3) / 256
  local t2 = t % 256
  local t1 = ((t - t2) / 256) % 256
  local previous = history and string.sub(history, 7, 3 * taps_compared) or nil  -- room for the new gap
  local renew = not history or math.floor(now / 1800000) ~= math.floor((now - gap) / 1800000)
  history = previous and string.char(t1, t2, t3, t4, t5, t6, b1, b2, b3) .. previous
            or string.char(t1, t2, t3, t4, t5, t6)
  if renew then  -- the first tap of a half hour gives the history an hour; the others keep it (cheaper)
    redis.call('SET', key, history, 'PX', '3600000')
  else
    redis.call('SET', key, history, 'KEEPTTL')
  end
  local gaps = (#history - 6) / 3
  if gaps < taps_compared - 1 then
    return false
  end
  local c1, c2, c3 = string.byte(history, 10, 12)
  local before = (c1 * 256 + c2) * 256 + c3
  if math.abs(gap - before) >= tonumber(spread) * math.min(gap, before) and gap ~= before then
    return false
  end
  local sum, squares = 0, 0
  for i = 7, #history, 3 do
    local x, y, z = string.byte(history, i, i + 2)
    local one = (x * 256 + y) * 256 + z
    sum, squares = sum + one, squares + one * one
  end
  local mean = sum / gaps
  return mean > 0 and math.sqrt(math.max(squares / gaps - mean * mean, 0)) / mean < tonumber(risk_rare(r).cv)
end

-- now: the time in ms; sets: what the gate's distinct checks already know of a set
-- (set_membership's answers by key).
local function risk_score(r, now, sets)
  local reasons, score = {}, 0  -- the evidence's reasons first, then the crowd's
  local k = r.k
  local share_gone = (now % 60000) / 60000
  if r.tr_points ~= '0' and regular_taps(KEYS[k + T], now, tonumber(r.tr_taps), r.tr_spread, r) then
    score = risk_add(reasons, score, r.tr_points, 'tap_regularity')
  end
  if r.d ~= '' then
    local count, before = epoch_count(KEYS[k + DC], KEYS[k + DP], r.d)
    if above_rate(count, before, share_gone, r.lim_d) then
      score = risk_add(reasons, score, risk_rare(r).dr, 'device_rate')
    end
    if r.sd ~= '0' then
      if (sets[KEYS[k + DU]] or set_membership(KEYS[k + DU], r.u)) > 0 then  -- it carries others, not this player
        score = risk_add(reasons, score, r.sd, 'shared_device')
      end
    end
  end
  score = risk_add(reasons, score, r.ins, 'instant_play')
  local range_count, range_before
  if r.net ~= '' then
    range_count, range_before = epoch_count(KEYS[k + NC], KEYS[k + NP], r.net)
    if not r.seen then  -- this process added the player to the range's sets a moment ago (Python says)
      add_member(KEYS[k + NU], r.u, '86400000')
      if r.new then
        add_member(KEYS[k + NN], r.u, r.ttl)
      end
    end
  end
  if score == 0 and not r.al then  -- no evidence
    return 0, nil
  end
  risk_rare(r)
  if range_count then  -- the crowd signals are read only where they count
    if above_rate(range_count, range_before, share_gone, r.lim_n) then
      score = risk_add(reasons, score, r.nr, 'ip_range_rate')
    end
    local players = redis.call('SCARD', KEYS[k + NU])
    if players >= tonumber(r.na_players) and redis.call('SCARD', KEYS[k + NN]) / players > tonumber(r.na_share) then
      score = risk_add(reasons, score, r.na_points, 'new_accounts_in_range')
    end
  end
  if r.new then
    score = risk_add(reasons, score, r.nw, 'new_account')
  end
  return score, reasons
end

-- 'risk:deny', 'risk:challenge' or nil. A player past a solved challenge is let through the challenge band.
local function risk_decision(r, score, now)
  if score == 0 then  -- the policy's bands start at 1 point
    return nil
  end
  if score >= tonumber(risk_rare(r).da) then
    return 'risk:deny'
  end
  if score < tonumber(r.ca) or tonumber(redis.call('GET', KEYS[r.k + PA]) or '0') > now then
    return nil
  end
  return 'risk:challenge'
end
