-- add1m.lua — memory-bound element-wise throughput: 1M-element float32 add.
-- Twin: add1m.py. Threads and clock from run.sh's setting (bench_util.lua:
-- one thread and CPU time by default). Counts 12 MB moved per add (read a
-- and b, write c); prints the best of 5 batches of ITERS adds as
--   RESULT add-1M dlua <GB/s> GB/s             c = a + b (a new tensor each time)
--   RESULT add-1M dlua_inplace <GB/s> GB/s     a:add_(b)
--   RESULT add-1M copy <GB/s> GB/s             c:copy_(a), 8 MB moved: the
--                                              machine's copy bandwidth in this run,
--                                              the reference the adds are held to
-- Usage: dlua add1m.lua [ITERS]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local iters = tonumber(arg[1]) or 200
local n = 1000000
local bytes = 3 * 4 * n
dl.manual_seed(0)
local a, b = dl.rand(n), dl.rand(n)
local c
local fresh = B.best_of(function() c = a + b end, iters)
local inplace = B.best_of(function() a:add_(b) end, iters)
local copy = B.best_of(function() c:copy_(a) end, iters)
assert(c:numel() == n)
print(string.format("RESULT add-1M dlua %.2f GB/s", bytes / fresh * 1e-9))
print(string.format("RESULT add-1M dlua_inplace %.2f GB/s", bytes / inplace * 1e-9))
print(string.format("RESULT add-1M copy %.2f GB/s", 2 * 4 * n / copy * 1e-9))
