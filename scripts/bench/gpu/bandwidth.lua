-- bandwidth.lua — element-wise throughput on the GPU against the copy
-- bandwidth: 256 MB float32 tensors (64 Mi elements), GB/s counting every
-- byte read and written once:
--   copy   b:copy_(a)   read a, write b   (2 x 256 MB)
--   add    c = a + b    read a, b, write c (3 x 256 MB; c from the cache)
--   mul_   a:mul_(2)    read and write a  (2 x 256 MB)
-- Prints RESULT lines (best of 5 batches after a warm-up):
--   RESULT gpu-bandwidth dlua_<op> <GB/s> GB/s
-- Usage: dlua bandwidth.lua [--iters K]   (needs a CUDA device)
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"

local iters = B.number(arg, "--iters", 20)
local _, sync = B.device({"--device", "cuda"})
local N = 64 * 1024 * 1024
local MB = N * 4
local a = dl.rand(N, {device = "cuda"})
local b = dl.rand(N, {device = "cuda"})
local c

-- mul_ alternates 2 and 0.5, so the values stay finite whatever the count
local k = 0
local ops = {
  {"copy", 2, function() b:copy_(a) end},
  {"add", 3, function() c = a + b end},
  {"mul_", 2, function() k = k + 1; a:mul_(k % 2 == 1 and 2 or 0.5) end},
}
for _, op in ipairs(ops) do
  local t = B.best_of(op[3], iters, 5, sync)
  print(string.format("RESULT gpu-bandwidth dlua_%s %.1f GB/s", op[1], op[2] * MB / t / 1e9))
end
assert(c:numel() == N)
