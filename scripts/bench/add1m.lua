-- add1m.lua — memory-bound element-wise throughput: 1M-element float32 add,
-- one thread. Twin: add1m.py. Counts 12 MB moved per add (read a and b,
-- write c); prints the best of 5 batches of ITERS adds as
--   RESULT add-1M dlua <GB/s> GB/s             c = a + b (a new tensor each time)
--   RESULT add-1M dlua_inplace <GB/s> GB/s     a:add_(b)
-- Usage: dlua add1m.lua [ITERS]
local dl = require "dlua"
local iters = tonumber(arg and arg[1]) or 200
local n = 1000000
local bytes = 3 * 4 * n
dl.set_num_threads(1)
dl.manual_seed(0)
local a, b = dl.rand(n), dl.rand(n)
local c
-- os.clock is CPU time: with one thread it is the loop's time
local function best_of(f)
  for _ = 1, iters // 10 + 1 do f() end
  local best = math.huge
  for _ = 1, 5 do
    local t0 = os.clock()
    for _ = 1, iters do f() end
    best = math.min(best, (os.clock() - t0) / iters)
  end
  return bytes / best * 1e-9
end
local fresh = best_of(function() c = a + b end)
local inplace = best_of(function() a:add_(b) end)
assert(c:numel() == n)
print(string.format("RESULT add-1M dlua %.2f GB/s", fresh))
print(string.format("RESULT add-1M dlua_inplace %.2f GB/s", inplace))
