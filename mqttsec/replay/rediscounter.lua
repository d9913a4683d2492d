-- The next value of a RedisCounter (rediscounter.go), atomically. The key
-- holds the last value handed out, in decimal; KEYS[2] holds the run_id of
-- the Redis process that last moved it up.
--
-- A new (or lost) key starts at the current time in nanoseconds. When the
-- counter's EVALSHA answered NOSCRIPT (an empty script cache: maybe a new
-- Redis process, which may have come back with an older value, from an
-- RDB snapshot, an AOF that lost its last second, or a lagging replica),
-- the script compares the process's run_id with the one recorded: only
-- for a process not seen before is the counter moved up to the current
-- time (if it is below it), so that it never hands out a value again.
-- Every replica sees NOSCRIPT once per process; only the first moves the
-- counter, so the replicas do not make it leap, one after the other, past
-- messages still in flight.
--
-- Values are near 2^61, beyond the exact integers of Lua's doubles (which
-- INCR's reply becomes): they are compared as decimal strings (no sign,
-- no leading zeros), and the new value is read back as one.
--
-- KEYS[1]  the counter's key
-- KEYS[2]  the key of the run_id that last moved it
-- ARGV[1]  the current time in nanoseconds, decimal
-- ARGV[2]  1 after NOSCRIPT, 0 otherwise
-- Returns the next value, in decimal.

local key, now = KEYS[1], ARGV[1]
local v = redis.call('GET', key)
if not v or ARGV[2] == '1' then
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  if not v then
    redis.call('SET', key, now)
    redis.call('SET', KEYS[2], run)
  elseif redis.call('GET', KEYS[2]) ~= run then
    redis.call('SET', KEYS[2], run)
    if #v < #now or (#v == #now and v < now) then
      redis.call('SET', key, now)
    end
  end
end
redis.call('INCR', key)
return redis.call('GET', key)
