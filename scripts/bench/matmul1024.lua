-- matmul1024.lua — GEMM throughput: a 1024x1024 float32 product, one thread.
-- Twin: matmul1024.py. Prints the best of 3 batches of ITERS products as
--   RESULT matmul-1024 dlua <GFLOP/s> GFLOP/s   (2*n^3 flops per product)
-- Usage: dlua matmul1024.lua [ITERS]
local dl = require "dlua"
local iters = tonumber(arg and arg[1]) or 3
local n = 1024
dl.set_num_threads(1)
dl.manual_seed(0)
local a, b, c = dl.rand(n, n), dl.rand(n, n), dl.empty(n, n)
local out = {out = c}
a:matmul(b, out) -- warm: first-touch pages and BLAS buffers
-- os.clock is CPU time; with one thread it is the loop's time, and other
-- load on a shared machine does not count against it
local best = math.huge
for _ = 1, 3 do
  local t0 = os.clock()
  for _ = 1, iters do a:matmul(b, out) end
  best = math.min(best, (os.clock() - t0) / iters)
end
print(string.format("RESULT matmul-1024 dlua %.2f GFLOP/s", 2 * n ^ 3 / best * 1e-9))
