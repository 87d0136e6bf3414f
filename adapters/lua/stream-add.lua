-- Included by the redis-stream scripts (no KEYS or ARGV of its own): XADD with optional approximate
-- trimming, and the receive-count field `n` only when non-zero.
local function add(key, maxLen, body, n)
  local args = {'XADD', key}
  if maxLen > 0 then
    args[3] = 'MAXLEN'; args[4] = '~'; args[5] = maxLen
  end
  args[#args + 1] = '*'; args[#args + 1] = 'b'; args[#args + 1] = body
  if n ~= '0' and n ~= 0 then
    args[#args + 1] = 'n'; args[#args + 1] = n
  end
  return redis.call(unpack(args))
end
