-- tiny_op.lua — per-op overhead: `c = a + b` on 8-element float32 tensors in
-- a Lua loop. Prints "tiny-op <ns per op>" (process CPU time, best of 3).
-- Usage: dlua scripts/bench/tiny_op.lua [N]; compare scripts/bench/tiny_op.py.
local dl = require "dlua"
local n = tonumber(arg and arg[1]) or 2000000
dl.set_num_threads(1)
local a = dl.rand(8)
local b = dl.rand(8)
local c
for _ = 1, n // 10 do c = a + b end -- warm the allocator and the collector
local best = math.huge
for _ = 1, 3 do
  local t0 = os.clock()
  for _ = 1, n do c = a + b end
  local dt = (os.clock() - t0) / n * 1e9
  if dt < best then best = dt end
end
assert(c:size(1) == 8)
print(string.format("tiny-op %.1f", best))
