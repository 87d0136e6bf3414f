-- redis-list reliable ack: forget deliveries by receipt. A receipt names one delivery ("id:count"), so
-- a late ack of a delivery that timed out and was delivered again removes nothing of the new copy.
-- KEYS[1] inflight zset   member = receipt "id:receiveCount"
-- KEYS[2] bodies hash     field = receipt, value = body
-- ARGV[1..n] receipts (n at most a few thousand: unpack() has a stack limit)
-- Returns how many receipts were still in flight.
local removed = redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return removed
