-- The next value of a RedisCounter (rediscounter.go), atomically. The key
-- holds the last value handed out, in decimal.
--
-- A new (or lost) key starts at the current time in nanoseconds. When the
-- store's EVALSHA answered NOSCRIPT (a new script cache: maybe a new Redis
-- process, which may have come back with an older value, from an RDB
-- snapshot, an AOF that lost its last second, or a lagging replica), the
-- counter is also moved up to the current time if it is below it, so it
-- never hands out a value again.
--
-- Values are near 2^61, beyond the exact integers of Lua's doubles (which
-- INCR's reply becomes): they are compared as decimal strings (no sign,
-- no leading zeros), and the new value is read back as one.
--
-- KEYS[1]  the counter's key
-- ARGV[1]  the current time in nanoseconds, decimal
-- ARGV[2]  1 after NOSCRIPT, 0 otherwise
-- Returns the next value, in decimal.

local key, now = KEYS[1], ARGV[1]
local v = redis.call('GET', key)
if not v or (ARGV[2] == '1' and (#v < #now or (#v == #now and v < now))) then
  redis.call('SET', key, now)
end
redis.call('INCR', key)
return redis.call('GET', key)
