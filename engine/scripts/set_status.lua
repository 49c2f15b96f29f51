-- set_status.lua: pause, resume or end a campaign's live state.
--
-- KEYS[1]  meta hash
-- ARGV[1]  new status (live, paused, ended)
--
-- Returns {'OK', status}, or {'MISSING', ''} when no version was ever loaded.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'MISSING', ''}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return {'OK', ARGV[1]}
