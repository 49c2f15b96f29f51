-- Shared prelude: the stored answer of an Idempotency-Key.
-- A record is "<fingerprint>\n<answer>"; the fingerprint is the sha256 of the
-- request (action and body), so the same key with another body is told apart.

-- A play refused after the fraud gate counted it against its rate limits leaves a mark instead of an answer,
-- "<fingerprint>\n", kept as long as its count can matter: the same request retried with its key is then not
-- counted again (lib/gate.lua). A mark is no answer: the key is still new.

-- Returns nil when the key is new, else {'REPLAY', answer} or {'REUSED', ''}; and, second, whether this very
-- request was counted before (it left a mark).
local function idem_lookup(key, fingerprint)
  local stored = redis.call('GET', key)
  if not stored then
    return nil, false
  end
  local cut = string.find(stored, '\n', 1, true)
  local same = string.sub(stored, 1, cut - 1) == fingerprint
  if cut == #stored then  -- a mark
    return nil, same
  end
  if not same then
    return {'REUSED', ''}, false
  end
  return {'REPLAY', string.sub(stored, cut + 1)}, false
end

local function idem_store(key, fingerprint, answer, ttl_seconds)
  redis.call('SET', key, fingerprint .. '\n' .. answer, 'EX', ttl_seconds)
end

-- The mark of a counted attempt (above), kept ttl_ms.
local function idem_mark(key, fingerprint, ttl_ms)
  redis.call('SET', key, fingerprint .. '\n', 'PX', ttl_ms)
end
