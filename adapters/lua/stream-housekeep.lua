-- redis-stream start of receive: promote due delayed entries, then claim entries idle longer than the
-- visibility timeout (dead-lettering those delivered more than maxReceives times).
-- KEYS[1] stream
-- KEYS[2] delayed zset   member "uid:n:body", score = due time (epoch ms)
-- KEYS[3] dead stream
-- ARGV[1] group
-- ARGV[2] consumer
-- ARGV[3] min idle, ms
-- ARGV[4] claim count
-- ARGV[5] XAUTOCLAIM cursor
-- ARGV[6] now, epoch ms
-- ARGV[7] most entries to promote
-- ARGV[8] maxReceives (0 = never dead-letter)
-- ARGV[9] MAXLEN ~ for the stream (0 = none)
-- Returns {next cursor, next due score or '', {id, body, receiveCount, id, body, receiveCount, ...}}
--- @include "stream-add.lua"
local maxLen = tonumber(ARGV[9])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[6], 'LIMIT', 0, ARGV[7])
for _, m in ipairs(due) do
  local p1 = string.find(m, ':', 1, true)
  local p2 = string.find(m, ':', p1 + 1, true)
  add(KEYS[1], maxLen, string.sub(m, p2 + 1), string.sub(m, p1 + 1, p2 - 1))
end
if #due > 0 then redis.call('ZREM', KEYS[2], unpack(due)) end
local nextDue = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2] or ''

local maxReceives = tonumber(ARGV[8])
local claim = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5], 'COUNT', ARGV[4])
local out = {}
for _, e in ipairs(claim[2]) do
  local id, fields = e[1], e[2]
  if not fields then
    -- Deleted while pending (Redis 6.2 reports these as nil entries): nothing left to deliver.
    redis.call('XACK', KEYS[1], ARGV[1], id)
  else
    local body, prior = '', 0
    for i = 1, #fields, 2 do
      if fields[i] == 'b' then body = fields[i + 1] elseif fields[i] == 'n' then prior = tonumber(fields[i + 1]) end
    end
    local times = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1][4]
    local count = times + prior
    if maxReceives > 0 and count > maxReceives then
      add(KEYS[3], 0, body, count - 1)
      redis.call('XACK', KEYS[1], ARGV[1], id)
      redis.call('XDEL', KEYS[1], id)
    else
      out[#out + 1] = id; out[#out + 1] = body; out[#out + 1] = count
    end
  end
end
return {claim[1], nextDue, out}
