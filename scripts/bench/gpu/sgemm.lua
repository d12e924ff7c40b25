-- sgemm.lua — a 4096 x 4096 float32 matrix product on the GPU through
-- dl.matmul (cuBLAS underneath): best of 5 batches after a warm-up,
--   RESULT gpu-sgemm-4096 dlua <GFLOP/s> GFLOP/s
-- Usage: dlua sgemm.lua [--iters K] [--n N]   (needs a CUDA device)
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"

local iters = B.number(arg, "--iters", 10)
local n = B.number(arg, "--n", 4096)
local _, sync = B.device({"--device", "cuda"})
local a = dl.randn(n, n, {device = "cuda"})
local b = dl.randn(n, n, {device = "cuda"})
local c
local t = B.best_of(function() c = dl.matmul(a, b) end, iters, 5, sync)
print(string.format("RESULT gpu-sgemm-%d dlua %.0f GFLOP/s", n, 2 * n ^ 3 / t / 1e9))
assert(c:size(1) == n)
