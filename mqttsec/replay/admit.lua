-- Atomic check-and-update of one sender's replay window (SPEC.md §7.2),
-- run by Redis so that replicas never race each other. It accepts exactly
-- the counters Window (memory.go) accepts, and refuses everything that may
-- have been accepted before Redis lost records (RedisStore's "Losing
-- state"). The sender's key holds (RedisStore.fresh reads it in Go, for
-- Check):
--
--   [1 byte: 2, the layout][8 bytes newest issue time, ms, big endian]
--   [8 bytes highest counter accepted, big endian][ring: width/8 bytes]
--
-- The ring has one bit per counter of the window, at position
-- counter % width: counter c, highest - width < c <= highest, was accepted
-- if its bit is set. Bit p is bit 7 - p%8 of byte p/8, as Redis's GETBIT
-- and SETBIT count them, so the script updates the ring in place: moving
-- the window clears only the positions it passes, and an Admit costs the
-- same at every width.
--
-- The earlier layout, [8 bytes newest][8 bytes highest][bitmap, bit i =
-- "highest - i was accepted", bit i%64 of big-endian word i/64] (or the 8
-- bytes of newest alone), is still read: the first Admit rewrites it in
-- this one, keeping the key's time to live.
--
-- The state marker (KEYS[2], no time to live; readMarker reads it in Go)
-- holds:
--
--   [1 byte: 1, the layout][8 bytes loss time, ms, big endian; 0: none]
--   [8 bytes evicted_keys of the Redis process below, when last checked]
--   [the run_id of that process, 40 hex digits]
--
-- InitRedisStore writes it for a new store. It missing means Redis lost
-- it, and so maybe everything else: the script writes it anew with the
-- loss time = the receiver's clock, refuses the message and returns -2.
-- With a loss time, every message issued at or before it plus the skew is
-- refused (-4): any of them may have been accepted before the loss. A
-- sender's key missing (a new sender, an expired window, or an evicted
-- one) while the server's evicted_keys moved from the marker's count is a
-- loss too (-3).
--
-- Every run compares the run_id of the Redis process (INFO server, a few
-- µs) with the marker's, before it reads or writes a window: another
-- process (a restart, a failover, a failback) may have come back with old
-- data (an RDB snapshot, an AOF fsynced every second, a lagging replica),
-- and counts its evictions from 0. Another run_id is a loss (-6) unless
-- ARGV[8] says that a new process keeps every write the earlier one
-- acknowledged; even then it is one (-7) if the server may evict keys
-- (maxmemory with a policy other than noeviction): the earlier process
-- may have evicted windows that no Admit has found missing yet, and the
-- new one's evicted_keys no longer tells. Otherwise the marker takes the
-- new run_id and evicted_keys. The check is in every run, not only after
-- NOSCRIPT: Redis caches a script given to EVAL before it runs it, so a
-- checking EVAL that failed (out of memory, READONLY during a failover)
-- would leave the script cached and the process unchecked, and a process
-- keeps its script cache when it is demoted, resynchronised and promoted
-- again. Each change to the marker is the run's first write, and a loss
-- refuses the message: a write that fails (OOM, READONLY) fails the run
-- with nothing written, and the next run checks again.
--
-- Redis runs Lua 5.1, whose numbers are doubles: 64-bit values are handled
-- as two 32-bit halves and never as one number.
--
-- KEYS[1]  the sender's key
-- KEYS[2]  the state marker of the sender's shard (the store's one marker
--          without shards), in the sender key's hash slot
-- ARGV[1]  the counter, 8 bytes big endian
-- ARGV[2]  the message's issue time, 8 bytes big endian (int64 ms)
-- ARGV[3]  the window width in counters (a multiple of 64)
-- ARGV[4]  the least time to live to set, ms
-- ARGV[5]  the most time to live to set, ms
-- ARGV[6]  the receiver's clock, ms since the epoch
-- ARGV[7]  the receiver's tolerance for the sender's clock, ms
-- ARGV[8]  1 if a new Redis process keeps every acknowledged write
--          (DurableRedis)
-- Returns 1 if the counter was accepted and recorded, 0 if it was not
-- fresh, -1 (changing nothing) if the sender's key holds anything else,
-- -2, -3, -6 or -7 for a loss noticed now (recorded in the marker; the
-- message is refused), -4 for a message issued before a recorded loss,
-- -5 (changing nothing) if the marker holds anything else.

local key = KEYS[1]
local state = KEYS[2]
local width = tonumber(ARGV[3])
local nbytes = width / 8
local header = 17 -- bytes before the ring
local two32 = 4294967296

local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Signed 64-bit big endian as a double (exact for |v| < 2^53, which
-- every issue time in ms is).
local function i64(s, i)
  local hi, lo = u32(s, i), u32(s, i + 4)
  if hi >= 2147483648 then
    hi = hi - two32
  end
  return hi * 4294967296 + lo
end

-- (hi * 2^32 + lo) % width, exactly: every product and sum stays below
-- 2^53.
local function position(hi, lo)
  return ((hi % width) * (two32 % width) + lo) % width
end

-- v (0 <= v < 2^53) as 8 bytes big endian.
local function be64(v)
  local out = {}
  for k = 8, 1, -1 do
    out[k] = string.char(v % 256)
    v = math.floor(v / 256)
  end
  return table.concat(out)
end

-- The run_id of the server, from its INFO server; a server that does not
-- say is not one the store can watch.
local function run_id_of(info)
  local run_id = string.match(info, '\nrun_id:(%x+)')
  if not run_id then
    error('mqttsec replay store: INFO server gives no run_id')
  end
  return run_id
end
-- The server's count of evicted keys.
local function evicted()
  local n = tonumber(string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)'))
  if not n then
    error('mqttsec replay store: INFO stats gives no evicted_keys')
  end
  return n
end
-- Whether the server may evict keys: a maxmemory and a policy other than
-- noeviction (or an INFO memory that does not say).
local function may_evict()
  local info = redis.call('INFO', 'memory')
  local limit = tonumber(string.match(info, '\nmaxmemory:(%d+)'))
  local policy = string.match(info, '\nmaxmemory_policy:([%w-]+)')
  return limit ~= 0 and policy ~= 'noeviction'
end

local function mark(loss, count, run_id)
  redis.call('SET', state, '\1' .. be64(loss) .. be64(count) .. run_id)
end

local now = tonumber(ARGV[6])
local marker = redis.call('GET', state)
if not marker then
  mark(now, evicted(), run_id_of(redis.call('INFO', 'server')))
  return -2
end
if string.len(marker) < 17 or string.byte(marker, 1) ~= 1 then
  return -5
end
local loss, count, run_id = i64(marker, 2), i64(marker, 10), string.sub(marker, 18)

-- Is this the process the marker names? A plain search for its run_id
-- line first, the cheapest test there is; another process is rare.
local info = redis.call('INFO', 'server')
local current = run_id
if not string.find(info, '\nrun_id:' .. run_id .. '\r', 1, true) then
  current = run_id_of(info)
end
if current ~= run_id then
  local version = tonumber(string.match(info, '\nredis_version:(%d+)'))
  if not version or version < 7 then
    -- InitRedisStore holds the server to Redis 7 (init.lua); a new
    -- process is held to it too.
    return redis.error_reply('mqttsec replay store: Redis 7 or later needed')
  end
  if ARGV[8] ~= '1' then
    mark(math.max(loss, now), evicted(), current)
    return -6
  end
  if may_evict() then
    mark(math.max(loss, now), evicted(), current)
    return -7
  end
  -- The new process kept every write, and the server cannot evict: the
  -- marker takes its run_id and its count of evictions.
  count, run_id = evicted(), current
  mark(loss, count, run_id)
end

if loss ~= 0 and i64(ARGV[2], 1) <= loss + tonumber(ARGV[7]) then
  return -4
end

local newest, highest
local len = redis.call('STRLEN', key)
if len == header + nbytes then
  local h = redis.call('GETRANGE', key, 0, header - 1)
  if string.byte(h, 1) ~= 2 then
    return -1
  end
  newest, highest = string.sub(h, 2, 9), string.sub(h, 10, 17)
elseif len == 8 or len == 16 + nbytes then
  -- The earlier layout: rewrite it as a ring, keeping its time to live.
  local old = redis.call('GET', key)
  newest = string.sub(old, 1, 8)
  if len > 8 then
    highest = string.sub(old, 9, 16)
    local ring = {}
    for k = 1, nbytes do
      ring[k] = 0
    end
    local top = position(u32(highest, 1), u32(highest, 5))
    for k = 0, nbytes - 1 do
      local v = string.byte(old, 17 + k)
      if v ~= 0 then
        -- Byte k holds bits 8 * (7 - k%8) .. +7 of word k/8, counting
        -- from its least significant bit.
        local base = 64 * math.floor(k / 8) + 8 * (7 - k % 8)
        for b = 0, 7 do
          if v % 2 == 1 then
            local p = (top - (base + b)) % width
            local j = math.floor(p / 8) + 1
            ring[j] = ring[j] + 2 ^ (7 - p % 8)
          end
          v = math.floor(v / 2)
        end
      end
    end
    local chars = {}
    for k = 1, nbytes do
      chars[k] = string.char(ring[k])
    end
    local left = redis.call('PTTL', key)
    redis.call('SET', key, '\2' .. newest .. highest .. table.concat(chars))
    if left > 0 then
      redis.call('PEXPIRE', key, left)
    end
  end
elseif len ~= 0 then
  return -1
else
  -- No window: a new sender, an expired window, or one Redis evicted.
  local n = evicted()
  if n ~= count then
    mark(math.max(loss, now), n, run_id)
    return -3
  end
end

local ctr = ARGV[1]
local chi, clo = u32(ctr, 1), u32(ctr, 5)
local at = 8 * header -- bit offset of the ring in the key

-- Clears count positions of the ring from start on, wrapping at its end:
-- whole bytes at once, the rest bit by bit.
local function clear(start, count)
  while count > 0 do
    if start % 8 == 0 and count >= 8 then
      local k = math.min(math.floor(count / 8), (width - start) / 8)
      redis.call('SETRANGE', key, header + start / 8, string.rep('\0', k))
      start, count = start + 8 * k, count - 8 * k
    else
      redis.call('SETBIT', key, at + start, 0)
      start, count = start + 1, count - 1
    end
    if start == width then
      start = 0
    end
  end
end

if not highest then
  -- A new key, or one of the newest issue time alone: its time to live is
  -- set below in either case.
  redis.call('SET', key, '\2' .. (newest or ARGV[2]) .. ctr .. string.rep('\0', nbytes))
else
  local hhi, hlo = u32(highest, 1), u32(highest, 5)
  if chi > hhi or (chi == hhi and clo > hlo) then
    -- Ahead of the window: move it. A difference of 2^20 or more in the
    -- high halves is beyond any width (and beyond exact doubles).
    local dhi = chi - hhi
    local n = width
    if dhi < 1048576 then
      n = math.min(width, dhi * two32 + (clo - hlo))
    end
    if n >= width then
      redis.call('SETRANGE', key, header, string.rep('\0', nbytes))
    else
      -- The positions of the counters between the two leave the window;
      -- the counter's own is set below.
      clear((position(hhi, hlo) + 1) % width, n - 1)
    end
  else
    local dhi = hhi - chi
    if dhi >= 1048576 then
      return 0
    end
    local d = dhi * two32 + (hlo - clo)
    if d >= width or redis.call('GETBIT', key, at + position(chi, clo)) == 1 then
      return 0
    end
    ctr = highest
  end
end
redis.call('SETBIT', key, at + position(chi, clo), 1)

if not newest or i64(ARGV[2], 1) > i64(newest, 1) then
  newest = ARGV[2]
end
redis.call('SETRANGE', key, 1, newest .. ctr)

-- Never shorten the key's life: keep the longer of what it has left and
-- what this message needs, within the most allowed.
local ttl = tonumber(ARGV[4])
local left = redis.call('PTTL', key)
if left > ttl then
  ttl = left
end
if ttl > tonumber(ARGV[5]) then
  ttl = tonumber(ARGV[5])
end
redis.call('PEXPIRE', key, ttl)
return 1
