-- fashion_synth.lua — fashion_mlp.lua's workload where the Fashion-MNIST
-- files are missing (a bare GPU machine): the same 784-256-128-100-10 ReLU
-- MLP, cross-entropy, Adam lr 1e-3, batch 128 and hand-shuffled epoch over
-- 60,000 rows, with uniform random inputs and labels instead of images.
-- One warm-up epoch, then the least of EPOCHS epochs:
--   RESULT fashion-mlp-synthetic dlua <s> s/epoch
-- Usage: dlua fashion_synth.lua [--epochs E] [--device cuda]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local nn = dl.nn

local epochs = B.number(arg, "--epochs", 1)
local device, sync = B.device(arg)
dl.manual_seed(0)

local N, BATCH = 60000, 128
local X, Y = dl.rand(N, 784), dl.randint(1, 11, {N})
if device ~= "cpu" then X, Y = X:to(device), Y:to(device) end

local model = nn.Sequential(
  nn.Linear(784, 256), nn.ReLU(),
  nn.Linear(256, 128), nn.ReLU(),
  nn.Linear(128, 100), nn.ReLU(),
  nn.Linear(100, 10))
if device ~= "cpu" then model:to(device) end
local loss_fn = nn.CrossEntropyLoss()
local opt = dl.optim.Adam(model:parameters(), {lr = 1e-3})

local function epoch()
  local perm = dl.randperm(N)
  if device ~= "cpu" then perm = perm:to(device) end
  local loss
  for i = 1, N, BATCH do
    local idx = perm:narrow(1, i, math.min(BATCH, N - i + 1))
    local xb, yb = X:index_select(1, idx), Y:index_select(1, idx)
    loss = loss_fn(model(xb), yb)
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
  return loss
end

epoch() -- warm-up
local best = math.huge
for _ = 1, epochs do
  if sync then sync() end
  local t0 = B.clock()
  local loss = epoch():item()
  if sync then sync() end
  best = math.min(best, B.clock() - t0)
  assert(loss == loss, "fashion-mlp-synthetic: the loss is NaN")
end
print(string.format("RESULT fashion-mlp-synthetic dlua %.4f s/epoch", best))
