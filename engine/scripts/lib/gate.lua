-- gate.lua (a prelude of claim.lua): the fraud gate's checks that need shared state, made inside the
-- claim's own script so that no check races the claim it guards (see engine/fraud/gate.py).
--
-- The gate's argument (JSON) is {s = index of the stats hash in KEYS, l = index of the log stream, n = the
-- log's length, w = {user, device, ip} of the request, p = [labels of the shadow rules the request already
-- broke], c = [check, ...]}; a check is
--   [kind, index of its key in KEYS, rule label, shadow (true: record only), limit, ttl ms, member]:
--   nonce     the key must not exist (a nonce used before: a replay); an admitted play sets it for ttl ms
--   window    fewer than limit members of the sorted set scored within the last ttl ms (a member already
--             there is this very request planned again, and passes); an admitted play adds member, now
--   distinct  the set holds member already, or fewer than limit members; an admitted play adds member
--             and keeps the set ttl ms from then
--
-- gate_check answers the label of the first enforced check that fails (nil when none) and the labels of
-- every shadow rule broken; a refusal is counted in the stats hash (field = label) and logged (the capped
-- stream), and every shadow hit of an admitted play is counted (field = 'shadow:' .. label). gate_apply
-- records an admitted play.

local function gate_check(gate, now)
  local shadow = {}
  for _, label in ipairs(gate.p) do
    shadow[#shadow + 1] = label
  end
  for _, c in ipairs(gate.c) do
    local kind, key, label, is_shadow, limit = c[1], KEYS[c[2]], c[3], c[4], c[5]
    local failed
    if kind == 'nonce' then
      failed = redis.call('EXISTS', key) == 1
    elseif kind == 'window' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - c[6])  -- what left the window (not the play's effect)
      failed = not redis.call('ZSCORE', key, c[7]) and redis.call('ZCARD', key) >= limit
    elseif kind == 'distinct' then
      failed = redis.call('SISMEMBER', key, c[7]) == 0 and redis.call('SCARD', key) >= limit
    else
      return redis.error_reply('unknown gate check ' .. tostring(kind))
    end
    if failed then
      if not is_shadow then
        redis.call('HINCRBY', KEYS[gate.s], label, 1)
        redis.call('XADD', KEYS[gate.l], 'MAXLEN', '~', gate.n, '*', 'rule', label, 'user', gate.w.user,
          'device', gate.w.device, 'ip', gate.w.ip)
        return label, shadow
      end
      shadow[#shadow + 1] = label
    end
  end
  return nil, shadow
end

local function gate_apply(gate, shadow, now)
  for _, c in ipairs(gate.c) do
    local kind, key, ttl = c[1], KEYS[c[2]], c[6]
    if kind == 'nonce' then
      redis.call('SET', key, '1', 'PX', ttl)
    elseif kind == 'window' then
      redis.call('ZADD', key, now, c[7])
      redis.call('PEXPIRE', key, ttl)
    else
      redis.call('SADD', key, c[7])
      redis.call('PEXPIRE', key, ttl)
    end
  end
  for _, label in ipairs(shadow) do
    redis.call('HINCRBY', KEYS[gate.s], 'shadow:' .. label, 1)
  end
end
