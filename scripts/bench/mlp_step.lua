-- mlp_step.lua — forward + backward of the seed's regression MLP
-- (8-64-64-64-1, ReLU, MSE) on a 64-row batch, written with raw tensors and
-- autograd (the nn layer comes later). Twin: mlp_step.py. Prints
--   RESULT mlp-step dlua <us> us/step
-- Usage: dlua mlp_step.lua [ITERS]
local dl = require "dlua"
local iters = tonumber(arg and arg[1]) or 2000
dl.set_num_threads(1)
dl.manual_seed(0)
local sizes = {8, 64, 64, 64, 1}
local params = {}
for i = 1, #sizes - 1 do
  local bound = 1 / math.sqrt(sizes[i])
  params[#params + 1] = (dl.rand(sizes[i + 1], sizes[i]) * 2 - 1):mul_(bound):requires_grad_()
  params[#params + 1] = (dl.rand(sizes[i + 1]) * 2 - 1):mul_(bound):requires_grad_()
end
local x, y = dl.randn(64, 8), dl.randn(64, 1)

local function step()
  local h = x
  for i = 1, #params, 2 do
    h = dl.addmm(params[i + 1], h, params[i]:t())
    if i < #params - 1 then h = h:relu() end
  end
  local d = h - y
  local loss = (d * d):mean()
  for _, p in ipairs(params) do p.grad = nil end
  loss:backward()
  return loss
end

for _ = 1, iters // 10 do step() end
local best = math.huge
for _ = 1, 5 do
  local t0 = os.clock()
  for _ = 1, iters do step() end
  best = math.min(best, (os.clock() - t0) / iters)
end
print(string.format("RESULT mlp-step dlua %.2f us/step", best * 1e6))
