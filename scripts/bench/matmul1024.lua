-- matmul1024.lua — GEMM throughput: a 1024x1024 float32 product. Twin:
-- matmul1024.py. Threads and clock from run.sh's setting (bench_util.lua:
-- one thread and CPU time by default). Its 1-thread and 2-thread figures are
-- the sgemm rates report.lua divides FLOP counts by (the "floor" columns).
-- Prints the best of 3 batches of ITERS products as
--   RESULT matmul-1024 dlua <GFLOP/s> GFLOP/s   (2*n^3 flops per product)
-- Usage: dlua matmul1024.lua [ITERS]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local iters = tonumber(arg[1]) or 3
local n = 1024
dl.manual_seed(0)
local a, b, c = dl.rand(n, n), dl.rand(n, n), dl.empty(n, n)
local out = {out = c}
a:matmul(b, out) -- warm: first-touch pages and BLAS buffers
local best = math.huge
for _ = 1, 3 do
  local t0 = B.clock()
  for _ = 1, iters do a:matmul(b, out) end
  best = math.min(best, (B.clock() - t0) / iters)
end
print(string.format("RESULT matmul-1024 dlua %.2f GFLOP/s", 2 * n ^ 3 / best * 1e-9))
