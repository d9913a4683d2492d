-- Atomic check-and-update of one sender's replay window (SPEC.md §7.2),
-- run by Redis so that replicas never race each other. The key holds what
-- this script writes (RedisStore.window reads it in Go, for Check):
--
--   [8 bytes newest issue time, ms, big endian]
--   [8 bytes highest counter, big endian][bitmap: 8 bytes per 64 counters]
--
-- the last two absent while no counter was accepted. Bit i of the bitmap
-- means "highest - i was accepted"; it is bit i%64 of big-endian word
-- i/64. Redis runs Lua 5.1, whose numbers are doubles: 64-bit values are
-- handled as two 32-bit halves and never as one number.
--
-- KEYS[1]  the sender's key
-- ARGV[1]  the counter, 8 bytes big endian
-- ARGV[2]  the message's issue time, 8 bytes big endian (int64 ms)
-- ARGV[3]  the window width in counters (a multiple of 64)
-- ARGV[4]  the least time to live to set, ms
-- ARGV[5]  the most time to live to set, ms
-- Returns 1 if the counter was accepted and recorded, 0 if it was not
-- fresh, -1 (changing nothing) if the key holds anything else.

local width = tonumber(ARGV[3])
local nbytes = width / 8

local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Signed 64-bit big endian as a double (exact for |v| < 2^53, which
-- every issue time in ms is).
local function i64(s, i)
  local hi, lo = u32(s, i), u32(s, i + 4)
  if hi >= 2147483648 then
    hi = hi - 4294967296
  end
  return hi * 4294967296 + lo
end

local cur = redis.call('GET', KEYS[1])
local newest, highest, bitmap
if cur then
  if #cur ~= 8 and #cur ~= 16 + nbytes then
    return -1
  end
  newest = string.sub(cur, 1, 8)
  if #cur > 8 then
    highest = string.sub(cur, 9, 16)
    bitmap = string.sub(cur, 17)
  end
end

-- The bitmap as 64-bit words, each two 32-bit halves (hi, lo) as the
-- bit library handles them: bit d is bit d%64 of word floor(d/64); of
-- that word, bits 0-31 are in lo and 32-63 in hi.
local words = nbytes / 8
local two32 = 4294967296

local function unsigned(v)
  if v < 0 then
    return v + two32
  end
  return v
end

local function word(j)
  return u32(bitmap, 8 * j + 1), u32(bitmap, 8 * j + 5)
end

local function packed(hi, lo)
  return struct.pack('>I4I4', unsigned(hi), unsigned(lo))
end

-- 64-bit shifts of (hi, lo) by 0 < s < 64: towards higher bits (older
-- counters), and towards lower bits.
local function up(hi, lo, s)
  if s < 32 then
    return bit.bor(bit.lshift(hi, s), bit.rshift(lo, 32 - s)), bit.lshift(lo, s)
  elseif s == 32 then
    return lo, 0
  end
  return bit.lshift(lo, s - 32), 0
end

local function down(hi, lo, s)
  if s < 32 then
    return bit.rshift(hi, s), bit.bor(bit.rshift(lo, s), bit.lshift(hi, 32 - s))
  elseif s == 32 then
    return 0, hi
  end
  return 0, bit.rshift(hi, s - 32)
end

-- The bitmap with every bit n places towards older counters (0 < n <
-- width); bits shifted past the window's end are gone.
local function shifted(n)
  local ws, bs = math.floor(n / 64), n % 64
  local his, los = {}, {}
  for j = 0, words - 1 do
    his[j], los[j] = word(j)
  end
  local out = {}
  for j = 0, words - 1 do
    local hi, lo = 0, 0
    local src = j - ws
    if src >= 0 then
      hi, lo = his[src], los[src]
      if bs > 0 then
        hi, lo = up(hi, lo, bs)
        if src > 0 then
          local h2, l2 = down(his[src - 1], los[src - 1], 64 - bs)
          hi, lo = bit.bor(hi, h2), bit.bor(lo, l2)
        end
      end
    end
    out[j + 1] = packed(hi, lo)
  end
  return table.concat(out)
end

-- bitmap with bit d set.
local function withBit(d)
  local j, b = math.floor(d / 64), d % 64
  local hi, lo = word(j)
  if b < 32 then
    lo = bit.bor(lo, bit.lshift(1, b))
  else
    hi = bit.bor(hi, bit.lshift(1, b - 32))
  end
  return string.sub(bitmap, 1, 8 * j) .. packed(hi, lo) .. string.sub(bitmap, 8 * j + 9)
end

local function isset(d)
  local j, b = math.floor(d / 64), d % 64
  local hi, lo = word(j)
  if b < 32 then
    return bit.band(lo, bit.lshift(1, b)) ~= 0
  end
  return bit.band(hi, bit.lshift(1, b - 32)) ~= 0
end

local ctr = ARGV[1]
local chi, clo = u32(ctr, 1), u32(ctr, 5)

if not highest then
  bitmap = string.rep('\0', nbytes)
  bitmap = withBit(0)
  highest = ctr
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
      bitmap = string.rep('\0', nbytes)
    else
      bitmap = shifted(n)
    end
    bitmap = withBit(0)
    highest = ctr
  else
    local dhi = hhi - chi
    if dhi >= 1048576 then
      return 0
    end
    local d = dhi * two32 + (hlo - clo)
    if d >= width or isset(d) then
      return 0
    end
    bitmap = withBit(d)
  end
end

if not newest or i64(ARGV[2], 1) > i64(newest, 1) then
  newest = ARGV[2]
end

-- Never shorten the key's life: keep the longer of what it has left and
-- what this message needs, within the most allowed.
local ttl = tonumber(ARGV[4])
local left = redis.call('PTTL', KEYS[1])
if left > ttl then
  ttl = left
end
if ttl > tonumber(ARGV[5]) then
  ttl = tonumber(ARGV[5])
end
redis.call('SET', KEYS[1], newest .. highest .. bitmap, 'PX', ttl)
return 1
