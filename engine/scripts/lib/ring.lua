-- ring.lua (a prelude of claim.lua, after gate.lua): referral-ring checks of a play on a referral tree (a red
-- packet): see engine/fraud/gate.py Screening.ring and engine/fraud/policy.py ReferralSchema.
--
-- The gate argument's g = {k = {keys by role, as indices in KEYS}, ...}:
--   k.t   hash of the tree: owner, onew ('1': a new account opened it), n (assists), new (assists by new
--         accounts), sip (assists from an IP
--         already in the tree), flag (set once a ring signal was seen: its cash-out is held)
--   k.td  set: devices of the tree (the owner's and every assister's); k.ti the same for IPs
--   k.hu / k.ho  sets: players who assisted the player / the owner
--   k.ru / k.ro  sets: players who reach the player / the owner in one or two assists
--   role open | assist | cashout, tree its id, o owner, d device, ip, new (the player's account is new),
--   sip assists allowed from an IP already in the tree, na = {min assists, max new share}, ttl (ms),
--   sh shadow mode, deny (refuse ring assists; otherwise they are held)

local function ring_signals(g)
  local k, signals = g.k, {}
  if g.role == 'cashout' then
    if redis.call('HGET', KEYS[k.t], 'flag') then
      signals[1] = 'ring:tree_flagged'
    end
    return signals
  end
  if g.role ~= 'assist' then
    return signals
  end
  if g.d ~= '' and redis.call('SISMEMBER', KEYS[k.td], g.d) == 1 then
    signals[#signals + 1] = 'ring:shared_device'
  end
  g.shared_ip = g.ip ~= '' and redis.call('SISMEMBER', KEYS[k.ti], g.ip) == 1
  if g.shared_ip and tonumber(redis.call('HGET', KEYS[k.t], 'sip') or '0') + 1 > g.sip then
    signals[#signals + 1] = 'ring:shared_ip'
  end
  local tree = redis.call('HMGET', KEYS[k.t], 'n', 'new', 'onew')
  local assists = tonumber(tree[1] or '0') + 1
  local new = tonumber(tree[2] or '0') + (g.new and 1 or 0)
  if g.new and tree[3] == '1' and assists >= g.na[1] and new / assists >= g.na[2] then  -- new helping new
    signals[#signals + 1] = 'ring:new_chain'
  end
  if redis.call('SISMEMBER', KEYS[k.ru], g.o) == 1 then  -- the owner assisted the player, or an assister of theirs
    signals[#signals + 1] = 'ring:circular'
  end
  return signals
end

local function ring_flag(g)
  redis.call('HSET', KEYS[g.k.t], 'flag', '1')
  redis.call('PEXPIRE', KEYS[g.k.t], g.ttl)
end

-- An admitted play joins the tree.
local function ring_apply(g)
  local k = g.k
  if g.role == 'open' then
    redis.call('HSET', KEYS[k.t], 'owner', g.o, 'onew', g.new and '1' or '0')
  elseif g.role == 'assist' then
    redis.call('HINCRBY', KEYS[k.t], 'n', '1')
    if g.new then
      redis.call('HINCRBY', KEYS[k.t], 'new', '1')
    end
    if g.shared_ip then
      redis.call('HINCRBY', KEYS[k.t], 'sip', '1')
    end
    redis.call('SADD', KEYS[k.ho], g.u)
    redis.call('SADD', KEYS[k.ro], g.u)
    if redis.call('EXISTS', KEYS[k.hu]) == 1 then
      redis.call('SUNIONSTORE', KEYS[k.ro], KEYS[k.ro], KEYS[k.hu])
    end
    redis.call('PEXPIRE', KEYS[k.ho], g.ttl)
    redis.call('PEXPIRE', KEYS[k.ro], g.ttl)
  else
    return
  end
  if g.d ~= '' then
    redis.call('SADD', KEYS[k.td], g.d)
    redis.call('PEXPIRE', KEYS[k.td], g.ttl)
  end
  if g.ip ~= '' then
    redis.call('SADD', KEYS[k.ti], g.ip)
    redis.call('PEXPIRE', KEYS[k.ti], g.ttl)
  end
  redis.call('PEXPIRE', KEYS[k.t], g.ttl)
end
