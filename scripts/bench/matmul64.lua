-- matmul64: a 64x64 float32 product through a:matmul(b) in a Lua loop, one
-- thread. Pair: matmul64_blas.c (cblas_sgemm on the same sizes); run both
-- with scripts/bench/matmul64.sh. Prints, best of 5 runs,
--   RESULT matmul64 dlua <ns> ns/op        a:matmul(b), a new tensor each time
--   RESULT matmul64 dlua_out <ns> ns/op    a:matmul(b, {out = c}), as C reuses c
local dl = require "dlua"
local n = tonumber(arg and arg[1]) or 20000
dl.set_num_threads(1)
dl.manual_seed(0)
local a, b, c = dl.rand(64, 64), dl.rand(64, 64), dl.empty(64, 64)
local out = {out = c}
-- os.clock is CPU time; with one thread it is the loop's wall time
local function best_of(f)
  for _ = 1, 1000 do f() end
  local best = math.huge
  for _ = 1, 5 do
    local t0 = os.clock()
    for _ = 1, n do f() end
    best = math.min(best, (os.clock() - t0) / n)
  end
  return best
end
local fresh = best_of(function() local _ = a:matmul(b) end)
local reuse = best_of(function() a:matmul(b, out) end)
print(string.format("RESULT matmul64 dlua %.1f ns/op", fresh * 1e9))
print(string.format("RESULT matmul64 dlua_out %.1f ns/op", reuse * 1e9))
