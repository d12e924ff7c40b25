-- mlp_nn.lua — forward + backward of the seed's regression MLP built from
-- dl.nn modules: Sequential(Linear(8,64), ReLU, Linear(64,64), ReLU,
-- Linear(64,64), ReLU, Linear(64,1)), MSE loss, 64-row batch, one thread.
-- Twin: mlp_nn.py. Compare with mlp_step (the same model on raw tensors) for
-- the cost of the module layer. Prints
--   RESULT mlp-nn dlua <us> us/step
-- Usage: dlua mlp_nn.lua [ITERS]
local dl = require "dlua"
local nn = dl.nn
local iters = tonumber(arg and arg[1]) or 2000
dl.set_num_threads(1)
dl.manual_seed(0)

-- a stand-in for nn.ReLU / nn.Sequential / nn.MSELoss where they are missing
local ReLU = nn.ReLU
if not ReLU then
  ReLU = nn.Module:extend("ReLU")
  function ReLU:forward(x) return x:relu() end
end
local layers = {nn.Linear(8, 64), ReLU(), nn.Linear(64, 64), ReLU(), nn.Linear(64, 64), ReLU(), nn.Linear(64, 1)}
local model
if nn.Sequential then
  model = nn.Sequential(table.unpack(layers))
else
  local Seq = nn.Module:extend("Seq")
  function Seq:init() for i, l in ipairs(layers) do self["l" .. i] = l end end
  function Seq:forward(x)
    for i = 1, #layers do x = layers[i](x) end
    return x
  end
  model = Seq()
end
local loss_fn
if nn.MSELoss then
  loss_fn = nn.MSELoss()
else
  loss_fn = function(out, y)
    local d = out - y
    return (d * d):mean()
  end
end
local params = model:parameters()
local x, y = dl.randn(64, 8), dl.randn(64, 1)

local function step()
  local loss = loss_fn(model(x), y)
  for i = 1, #params do params[i].grad = nil end
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
print(string.format("RESULT mlp-nn dlua %.2f us/step", best * 1e6))
