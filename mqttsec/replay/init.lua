-- Creates a state marker of a new RedisStore (InitRedisStore, once per
-- shard; admit.lua gives its layout): no loss, the run_id of the Redis
-- process it is made on, and that process's count of evicted keys.
--
-- KEYS[1]  the state marker (the store's, or one shard's)
-- Returns 1 if it created the marker, 0 (changing nothing) if one exists.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local info = redis.call('INFO', 'server')
local run_id = string.match(info, 'run_id:(%x+)')
local version = tonumber(string.match(info, 'redis_version:(%d+)'))
if not run_id or not version or version < 7 then
  return redis.error_reply('mqttsec replay store: Redis 7 or later needed (INFO server with run_id and redis_version)')
end
local n = tonumber(string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)'))
if not n then
  return redis.error_reply('mqttsec replay store: INFO stats gives no evicted_keys')
end
local count = {}
for k = 8, 1, -1 do
  count[k] = string.char(n % 256)
  n = math.floor(n / 256)
end
redis.call('SET', KEYS[1], '\1' .. string.rep('\0', 8) .. table.concat(count) .. run_id)
return 1
