-- admission.lua (a prelude of claim.lua): may this claim be admitted? Each check reads, none writes; a check
-- that fails answers the refusal {code, detail} (engine/claim_call.py types it), nil when it passes.
--
-- KEYS[1] meta hash (status, starts_ms, ends_ms, budget_fen, spent_fen), KEYS[2] stock total hash, KEYS[3]
-- stock taken hash, KEYS[4] the player's counters hash (all, d:<day>, i:<item>, seq).

local function admission_meta()
  return redis.call('HMGET', KEYS[1], 'status', 'starts_ms', 'ends_ms', 'budget_fen', 'spent_fen')
end

-- The campaign's status and schedule for the mode; then the player's sequence number (a stale plan).
local function admission_live(req, meta, now)
  if req.mode == 'finale' then
    if meta[1] ~= 'ended' then
      return {'NOT_LIVE', meta[1] or 'missing'}
    end
  elseif req.mode ~= 'carry' then
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
  if req.seq ~= '' and (redis.call('HGET', KEYS[4], 'seq') or '0') ~= req.seq then
    return {'STALE', ''}
  end
  return nil
end

-- The player's limits; answers what they have used ({all, today, day field}) when they pass.
local function admission_limits(req)
  local units = tonumber(req.units)
  local day_field = 'd:' .. req.day
  local counters = redis.call('HMGET', KEYS[4], 'all', day_field)
  local used = {all = tonumber(counters[1] or '0'), today = tonumber(counters[2] or '0'), field = day_field}
  if req.per_user ~= '' and used.all + units > tonumber(req.per_user) then
    return nil, {'LIMIT', 'per_user'}
  end
  if req.per_user_per_day ~= '' and used.today + units > tonumber(req.per_user_per_day) then
    return nil, {'LIMIT', 'per_user_per_day'}
  end
  return used, nil
end

-- Each item's per-player limit and stock; answers the takes ({item, quantity, left after, quantity as given}).
local function admission_stock(req)
  local takes = {}
  for _, entry in ipairs(req.items) do
    local item, given, item_limit = entry[1], entry[2], entry[3]
    local quantity = tonumber(given)
    if item_limit ~= '' then
      local used_item = tonumber(redis.call('HGET', KEYS[4], 'i:' .. item) or '0')
      if used_item + quantity > tonumber(item_limit) then
        return nil, {'LIMIT', 'item:' .. item}
      end
    end
    local total = tonumber(redis.call('HGET', KEYS[2], item) or '0')
    local taken = tonumber(redis.call('HGET', KEYS[3], item) or '0')
    if taken + quantity > total then
      return nil, {'SOLD_OUT', item}
    end
    takes[#takes + 1] = {item, quantity, total - taken - quantity, given}
  end
  return takes, nil
end

local function admission_budget(req, meta)
  if meta[4] and meta[4] ~= '' and tonumber(meta[5] or '0') + tonumber(req.cost) > tonumber(meta[4]) then
    return {'BUDGET', ''}
  end
  return nil
end
