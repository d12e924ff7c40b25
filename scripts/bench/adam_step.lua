-- adam_step.lua — one dl.optim.Adam step (fused C update, float32) over
-- the 8,577 parameters of the seed's MLP (2-64-64-64-1: 8 tensors) and over
-- a 1M-parameter model (Linear(1000, 1000): 1,001,000 in 2 tensors), with
-- fixed gradients, one thread. Twin: adam_step.py. Prints
--   RESULT adam-step-mlp dlua <us> us/step
--   RESULT adam-step-1M dlua <us> us/step
-- Usage: dlua adam_step.lua [ITERS]
local dl = require "dlua"
local iters = tonumber(arg and arg[1]) or 1000
dl.set_num_threads(1)
dl.manual_seed(0)

local function params_of(sizes)
  local ps = {}
  for i = 1, #sizes - 1 do
    ps[#ps + 1] = dl.nn.Parameter(dl.randn(sizes[i + 1], sizes[i]) * 0.1)
    ps[#ps + 1] = dl.nn.Parameter(dl.randn(sizes[i + 1]) * 0.1)
  end
  for _, p in ipairs(ps) do p.grad = dl.randn(table.unpack(p:size())) * 0.01 end
  return ps
end

local function bench(name, sizes, n)
  local ps = params_of(sizes)
  local opt = dl.optim.Adam(ps, {lr = 1e-3})
  for _ = 1, math.max(1, n // 10) do opt:step() end
  local best = math.huge
  for _ = 1, 5 do
    local t0 = os.clock()
    for _ = 1, n do opt:step() end
    best = math.min(best, (os.clock() - t0) / n)
  end
  print(string.format("RESULT %s dlua %.2f us/step", name, best * 1e6))
end

bench("adam-step-mlp", {2, 64, 64, 64, 1}, iters)
bench("adam-step-1M", {1000, 1000}, math.max(1, iters // 40))
