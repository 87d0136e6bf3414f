-- redis-list reliable nack: give in-flight messages back, to ready at once, to delayed when ARGV[1] > 0,
-- or to dead when they were already delivered maxReceives times. Receipts no longer in flight (timed
-- out) are skipped.
-- KEYS[1] ready list      envelopes "id:receiveCount:body"
-- KEYS[2] inflight zset   member = receipt "id:receiveCount"
-- KEYS[3] delayed zset    member = envelope, score = due time (epoch ms)
-- KEYS[4] dead list       envelopes
-- KEYS[5] bodies hash     field = receipt, value = body
-- ARGV[1] due time, epoch ms (0 = requeue at once)
-- ARGV[2] maxReceives (0 = never dead-letter)
-- ARGV[3..n] receipts
-- Returns how many receipts were still in flight.
local due = tonumber(ARGV[1])
local maxReceives = tonumber(ARGV[2])
local moved = 0
for i = 3, #ARGV do
  local r = ARGV[i]
  if redis.call('ZREM', KEYS[2], r) == 1 then
    moved = moved + 1
    local body = redis.call('HGET', KEYS[5], r)
    local e = r
    if body then
      redis.call('HDEL', KEYS[5], r)
      e = r .. ':' .. body
    end
    -- A member that is not ours (no body, no count) is requeued as it is rather than fail here, after
    -- the ZREM, and lose it.
    local a = string.find(e, ':', 1, true)
    local b = a and string.find(e, ':', a + 1, true)
    local count = b and tonumber(string.sub(e, a + 1, b - 1))
    if maxReceives > 0 and count and count >= maxReceives then
      redis.call('RPUSH', KEYS[4], e)
    elseif due > 0 then
      redis.call('ZADD', KEYS[3], due, e)
    else
      redis.call('RPUSH', KEYS[1], e)
    end
  end
end
return moved
