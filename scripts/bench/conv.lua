-- conv.lua — the convolutional workloads, each a training step (forward,
-- backward, SGD) unless named otherwise. Twin: conv.py. Prints
--   RESULT conv-lenet dlua <ms> ms/step       LeNet-style net, batch 128, 1x28x28
--   RESULT conv-resblock dlua <ms> ms/step    ResNet basic block, 64 ch, 32x32, batch 32
--   RESULT conv-depthwise dlua <ms> ms/step   depthwise-separable block, 64 -> 128 ch, 32x32, batch 32
--   RESULT bn2d-step dlua <ms> ms/step        BatchNorm2d forward + backward, [32, 64, 32, 32]
--   RESULT cnn-epoch dlua <s> s/epoch         the make demo-cnn model: the best of 4 runs of 10 steps of batch 128, times 469
-- Usage: dlua conv.lua [ITERS]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local nn = dl.nn
local iters = tonumber(arg and arg[1]) or 5

local function train_step(model, x, y, loss)
  local params = model:parameters()
  local opt = dl.optim.SGD(params, {lr = 0.01, momentum = 0.9})
  return function()
    opt:zero_grad()
    local l = loss(model(x), y)
    l:backward()
    opt:step()
  end
end

dl.manual_seed(0)
local ce = nn.CrossEntropyLoss()
local function sum_loss(out) return out:mean() end

local lenet = nn.Sequential(nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
local step = train_step(lenet, dl.randn(128, 1, 28, 28), dl.randint(1, 11, {128}), function(o, y) return ce(o, y) end)
print(string.format("RESULT conv-lenet dlua %.2f ms/step", B.best_of(step, iters, 3) * 1e3))

-- x + bn(conv(relu(bn(conv(x))))), then relu
local Block = nn.Module:extend("Block")
function Block:init()
  self.c1, self.b1 = nn.Conv2d(64, 64, 3, {padding = 1, bias = false}), nn.BatchNorm2d(64)
  self.c2, self.b2 = nn.Conv2d(64, 64, 3, {padding = 1, bias = false}), nn.BatchNorm2d(64)
end
function Block:forward(x) return (self.b2(self.c2(self.b1(self.c1(x)):relu())) + x):relu() end
step = train_step(Block(), dl.randn(32, 64, 32, 32), nil, sum_loss)
print(string.format("RESULT conv-resblock dlua %.2f ms/step", B.best_of(step, iters, 3) * 1e3))

local dw = nn.Sequential(nn.Conv2d(64, 64, 3, {padding = 1, groups = 64, bias = false}), nn.BatchNorm2d(64), nn.ReLU(),
  nn.Conv2d(64, 128, 1, {bias = false}), nn.BatchNorm2d(128), nn.ReLU())
step = train_step(dw, dl.randn(32, 64, 32, 32), nil, sum_loss)
print(string.format("RESULT conv-depthwise dlua %.2f ms/step", B.best_of(step, iters, 3) * 1e3))

local bn = nn.BatchNorm2d(64)
step = train_step(bn, dl.randn(32, 64, 32, 32), nil, sum_loss)
print(string.format("RESULT bn2d-step dlua %.2f ms/step", B.best_of(step, iters * 4, 3) * 1e3))

-- the demo's model (scripts/train_fashion_cnn.lua) on batches of 128
local cnn = nn.Sequential(
  nn.Conv2d(1, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, {padding = 1}), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(64, 64, 3, {padding = 1}), nn.BatchNorm2d(64), nn.ReLU(),
  nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
step = train_step(cnn, dl.randn(128, 1, 28, 28), dl.randint(1, 11, {128}), function(o, y) return ce(o, y) end)
print(string.format("RESULT cnn-epoch dlua %.2f s/epoch", B.best_of(step, 10, 4) * 469))
