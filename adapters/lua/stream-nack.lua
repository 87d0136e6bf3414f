-- redis-stream nack: removes each entry and writes its body again with its receive count so far. An
-- entry no longer pending for the group (acked, or claimed and acked elsewhere) is skipped, never duplicated.
-- KEYS[1] stream
-- KEYS[2] delayed zset   member "id:n:body", score = due time (epoch ms)
-- KEYS[3] dead stream
-- ARGV[1] group
-- ARGV[2] due time, epoch ms (0 = at once)
-- ARGV[3] maxReceives (0 = never dead-letter)
-- ARGV[4] MAXLEN ~ for the stream (0 = none)
-- ARGV[5..n] per message three values: ARGV[i] id, ARGV[i+1] receiveCount, ARGV[i+2] body
--- @include "stream-add.lua"
local due = tonumber(ARGV[2])
local maxReceives = tonumber(ARGV[3])
local maxLen = tonumber(ARGV[4])
for i = 5, #ARGV, 3 do
  local id, n, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    redis.call('XDEL', KEYS[1], id)
    if maxReceives > 0 and tonumber(n) >= maxReceives then
      add(KEYS[3], 0, body, n)
    elseif due == 0 then
      add(KEYS[1], maxLen, body, n)
    else
      redis.call('ZADD', KEYS[2], due, id .. ':' .. n .. ':' .. body)
    end
  end
end
return 0
