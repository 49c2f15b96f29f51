-- Shared prelude: the stored answer of an Idempotency-Key.
-- A record is "<fingerprint>\n<answer>"; the fingerprint is the sha256 of the
-- request (action and body), so the same key with another body is told apart.

-- Returns nil when the key is new, else {'REPLAY', answer} or {'REUSED', ''}.
local function idem_lookup(key, fingerprint)
  local stored = redis.call('GET', key)
  if not stored then
    return nil
  end
  local cut = string.find(stored, '\n', 1, true)
  if string.sub(stored, 1, cut - 1) ~= fingerprint then
    return {'REUSED', ''}
  end
  return {'REPLAY', string.sub(stored, cut + 1)}
end

local function idem_store(key, fingerprint, answer, ttl_seconds)
  redis.call('SET', key, fingerprint .. '\n' .. answer, 'EX', ttl_seconds)
end
