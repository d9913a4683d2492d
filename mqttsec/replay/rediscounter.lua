-- The next value of a RedisCounter (rediscounter.go), atomically. The key
-- holds the last value handed out, in decimal; KEYS[2] holds the run_id of
-- the Redis process that last moved it up.
--
-- A new (or lost) key starts at the current time in nanoseconds. Every
-- call compares the run_id of the Redis process (INFO server, a few µs)
-- with the one recorded: a process not seen before (a restart, a
-- failover, a failback) may have come back with an older value (an RDB
-- snapshot, an AOF that lost its last second, a lagging replica), so the
-- counter is moved up to the current time (if it is below it) and the
-- run_id recorded, so that it never hands out a value again. Only the
-- first call on a process moves it: the replicas do not make it leap, one
-- after the other, past messages still in flight. The check is in every
-- call, not only after NOSCRIPT: Redis caches a script given to EVAL
-- before it runs it, so a checking EVAL that failed (out of memory,
-- READONLY during a failover) would leave the script cached and the
-- process unchecked, and a process keeps its script cache when it is
-- demoted, resynchronised and promoted again. The move is the call's
-- first write: if it fails, nothing is written, and the next call checks
-- again.
--
-- Values are near 2^61, beyond the exact integers of Lua's doubles (which
-- INCR's reply becomes): they are compared as decimal strings (no sign,
-- no leading zeros), and the new value is read back as one.
--
-- KEYS[1]  the counter's key
-- KEYS[2]  the key of the run_id that last moved it
-- ARGV[1]  the current time in nanoseconds, decimal
-- Returns the next value, in decimal.

local key, now = KEYS[1], ARGV[1]
local info = redis.call('INFO', 'server')
local v = redis.call('GET', key)
local seen = redis.call('GET', KEYS[2])
local run = seen
if not seen or not string.find(info, '\nrun_id:' .. seen .. '\r', 1, true) then
  run = string.match(info, '\nrun_id:(%x+)')
  if not run then
    error('mqttsec replay counter: INFO server gives no run_id')
  end
end
if not v or run ~= seen then
  if not v or #v < #now or (#v == #now and v < now) then
    redis.call('SET', key, now)
  end
  redis.call('SET', KEYS[2], run)
end
redis.call('INCR', key)
return redis.call('GET', key)
