-- redis-list reliable receive: promote due delayed entries, requeue or dead-letter expired in-flight
-- ones, then move up to ARGV[2] ready entries to in-flight with their receive count raised by one.
-- KEYS[1] ready list      envelopes "id:receiveCount:body"
-- KEYS[2] inflight zset   member = receipt "id:receiveCount" of the current delivery, score = visibility deadline (epoch ms)
-- KEYS[3] delayed zset    member = envelope, score = due time (epoch ms)
-- KEYS[4] dead list       envelopes that reached maxReceives
-- KEYS[5] bodies hash     field = receipt (as in KEYS[2]), value = body, for every message in flight
-- ARGV[1] now, epoch ms (the client's clock, so the script stays deterministic)
-- ARGV[2] most messages to return
-- ARGV[3] visibility timeout, ms
-- ARGV[4] maxReceives (0 = never dead-letter)
-- ARGV[5] most delayed entries and most expired in-flight entries to move in this call
-- ARGV[6] an id prefix unique to this call (no ':'), for ready entries that are not envelopes
-- Returns { nextDue, receipt, body, receipt, body ... }: each receipt carries the raised count. nextDue
-- is '' unless nothing was returned; then it is the earliest delayed due time or in-flight deadline
-- (epoch ms), or '' if there is none, to bound the client's wait.
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local deadline = now + tonumber(ARGV[3])
local maxReceives = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])

-- unpack() has a stack limit: send long argument lists in chunks (of an even size, for pairs).
local function callAll(cmd, key, items)
  for i = 1, #items, 500 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
  end
end

-- The receive count of an envelope and the positions of its two ':'; nil for anything else (a body
-- someone pushed without the envelope), which must never stop the script half-way.
local function countOf(envelope)
  local a = string.find(envelope, ':', 1, true)
  if not a then return nil end
  local b = string.find(envelope, ':', a + 1, true)
  if not b then return nil end
  local digits = string.sub(envelope, a + 1, b - 1)
  if not string.match(digits, '^%d+$') then return nil end
  return tonumber(digits), a, b
end

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
if #due > 0 then
  callAll('ZREM', KEYS[3], due)
  callAll('RPUSH', KEYS[1], due)
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if #expired > 0 then
  callAll('ZREM', KEYS[2], expired)
  local back, dead = {}, {}
  for _, r in ipairs(expired) do
    -- A member without a body (someone else's write) goes back as it is rather than be lost.
    local body = redis.call('HGET', KEYS[5], r)
    local e = body and (r .. ':' .. body) or r
    local count = countOf(e)
    if maxReceives > 0 and count ~= nil and count >= maxReceives then dead[#dead + 1] = e else back[#back + 1] = e end
  end
  callAll('HDEL', KEYS[5], expired)
  if #back > 0 then callAll('RPUSH', KEYS[1], back) end
  if #dead > 0 then callAll('RPUSH', KEYS[4], dead) end
end

local out = { '' }
local popped = redis.call('LRANGE', KEYS[1], 0, want - 1)
if #popped > 0 then
  redis.call('LTRIM', KEYS[1], #popped, -1)
  local zargs, hargs, dead = {}, {}, {}
  for i, e in ipairs(popped) do
    local count, a, b = countOf(e)
    if count == nil then
      -- Not an envelope (a raw RPUSH by someone else): wrap it as a first delivery, so a consumer sees it
      -- and can ack it, instead of an error on every receive from here on.
      local receipt = ARGV[6] .. i .. ':1'
      zargs[#zargs + 1] = deadline
      zargs[#zargs + 1] = receipt
      hargs[#hargs + 1] = receipt
      hargs[#hargs + 1] = e
      out[#out + 1] = receipt
      out[#out + 1] = e
    elseif maxReceives > 0 and count >= maxReceives then
      dead[#dead + 1] = e
    else
      local receipt = string.sub(e, 1, a) .. (count + 1)
      zargs[#zargs + 1] = deadline
      zargs[#zargs + 1] = receipt
      hargs[#hargs + 1] = receipt
      local body = string.sub(e, b + 1)
      hargs[#hargs + 1] = body
      out[#out + 1] = receipt
      out[#out + 1] = body
    end
  end
  if #zargs > 0 then
    callAll('ZADD', KEYS[2], zargs)
    callAll('HSET', KEYS[5], hargs)
  end
  if #dead > 0 then callAll('RPUSH', KEYS[4], dead) end
end

if #out == 1 then
  local d = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local f = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if d[2] then out[1] = d[2] end
  if f[2] and (out[1] == '' or tonumber(f[2]) < tonumber(out[1])) then out[1] = f[2] end
end
return out
