-- Atomic check-and-update of one sender's replay window (SPEC.md §7.2),
-- run by Redis so that replicas never race each other. It accepts exactly
-- the counters envelope.Window accepts. The key holds (RedisStore.fresh
-- reads it in Go, for Check):
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
-- Redis runs Lua 5.1, whose numbers are doubles: 64-bit values are handled
-- as two 32-bit halves and never as one number.
--
-- KEYS[1]  the sender's key
-- ARGV[1]  the counter, 8 bytes big endian
-- ARGV[2]  the message's issue time, 8 bytes big endian (int64 ms)
-- ARGV[3]  the window width in counters (a multiple of 64)
-- ARGV[4]  the least time to live to set, ms
-- ARGV[5]  the most time to live to set, ms
-- Returns 1 if the counter was accepted and recorded, 0 if it was not
-- fresh, -1 (changing nothing) if the key holds anything else.

local key = KEYS[1]
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
