-- ops.lua (a prelude of claim.lua): the game's guarded ops (engine/claims.py Op), checked against the state
-- as the ops before them leave it, and applied only once every check of the claim has passed.
--
-- An op is {kind, key index in KEYS, field, value, low, high, refuse label}; kinds: incr (bounded by low and
-- high), put, expect, absent, delete, setbit.

-- Answers the ops' plan (what to write) or, second, the refusal {'REFUSED', label}.
local function ops_check(ops)
  local plan = {pending = {}, original = {}, touched = {}, bits = {}}
  local pending, original, touched, bits = plan.pending, plan.original, plan.touched, plan.bits
  local function current(k, f)
    local id = k .. '\0' .. f
    if original[id] == nil then
      original[id] = redis.call('HGET', KEYS[k], f) or false
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
        return nil, {'REFUSED', op[7]}
      end
      bits[bit_id] = {k, tonumber(value)}
    else
      local v, id = current(k, f)
      if kind == 'incr' then
        local result = tonumber(v or '0') + tonumber(value)
        if (low ~= '' and result < tonumber(low)) or (high ~= '' and result > tonumber(high)) then
          return nil, {'REFUSED', op[7]}
        end
        pending[id] = string.format('%d', result)
      elseif kind == 'put' then
        pending[id] = value
      elseif kind == 'delete' then
        pending[id] = false
      elseif kind == 'expect' then
        if v ~= value then
          return nil, {'REFUSED', op[7]}
        end
      elseif kind == 'absent' then
        if v then
          return nil, {'REFUSED', op[7]}
        end
      else
        return nil, redis.error_reply('unknown op ' .. tostring(kind))
      end
    end
  end
  return plan, nil
end

-- Write what changed, and give every key written the state's lifetime.
local function ops_apply(plan, ttl)
  local expire_keys = {}
  for _, t in ipairs(plan.touched) do
    local k, f, id = t[1], t[2], t[3]
    if plan.pending[id] ~= plan.original[id] then
      if plan.pending[id] then
        redis.call('HSET', KEYS[k], f, plan.pending[id])
      else
        redis.call('HDEL', KEYS[k], f)
      end
      expire_keys[k] = true
    end
  end
  for _, b in pairs(plan.bits) do
    redis.call('SETBIT', KEYS[b[1]], b[2], '1')
    expire_keys[b[1]] = true
  end
  for k in pairs(expire_keys) do
    redis.call('EXPIRE', KEYS[k], ttl)
  end
end
