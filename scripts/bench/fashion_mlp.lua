-- fashion_mlp.lua — a classifier at the size where GEMM dominates:
-- 784-256-128-100-10 ReLU MLP, cross-entropy, Adam lr 1e-3, batch 128, over
-- the 60,000 Fashion-MNIST training images (dl.datasets.fashion_mnist,
-- Debian's dataset-fashion-mnist), inputs scaled to [0, 1], shuffled each
-- epoch by hand (randperm + index_select, the loop PyTorch is fastest with).
-- Twin: fashion_mlp.py (reads the same IDX files).
-- Timing (default): 50 warm-up batches, then the least of EPOCHS epochs:
--   RESULT fashion-mlp dlua <s> s/epoch
-- --accuracy: trains 3 epochs from seed 0, times the last two, and prints
-- the test accuracy as well:
--   RESULT fashion-mlp dlua_accuracy <percent> %
-- --synthetic: the same model and loop over 60,000 uniform random rows and
-- labels, for a machine without the dataset (a bare GPU machine):
--   RESULT fashion-mlp-synthetic dlua <s> s/epoch
-- --ddp (under mpirun, dist.lua runs it): the same global batches split
-- over the ranks, nn.DistributedDataParallel averaging the gradients;
-- rank 0 prints
--   RESULT fashion-mlp-ranks dlua_<ranks>x<threads> <s> s/epoch
-- Usage: dlua fashion_mlp.lua [--epochs E] [--accuracy | --synthetic | --ddp] [--device cuda]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local nn = dl.nn

local epochs = B.number(arg, "--epochs", 1)
local accuracy = B.flag(arg, "--accuracy")
local synthetic = B.flag(arg, "--synthetic")
if accuracy and synthetic then error("fashion_mlp.lua: --accuracy needs the real data, not --synthetic", 0) end
local NAME = synthetic and "fashion-mlp-synthetic" or "fashion-mlp"
local ddp = B.flag(arg, "--ddp")
local device, sync = B.device(arg)
if ddp then dl.dist.init() end
local rank, world = dl.dist.rank(), dl.dist.size()
dl.manual_seed(0)

local BATCH = 128
local X, Y -- float32 N x 784 in [0, 1], int64 labels 1..10
if synthetic then
  X, Y = dl.rand(60000, 784), dl.randint(1, 11, {60000})
else
  X, Y = dl.datasets.fashion_mnist({split = "train"})
end
local N = X:size(1)
local WARMUP = 50 -- batches
local starts = {} -- the first row of each batch
for i = 1, N, BATCH do starts[#starts + 1] = i end
if device ~= "cpu" then X, Y = X:to(device), Y:to(device) end

local model = nn.Sequential(
  nn.Linear(784, 256), nn.ReLU(),
  nn.Linear(256, 128), nn.ReLU(),
  nn.Linear(128, 100), nn.ReLU(),
  nn.Linear(100, 10))
if device ~= "cpu" then model:to(device) end
local loss_fn = nn.CrossEntropyLoss()
local opt = dl.optim.Adam(model:parameters(), {lr = 1e-3})
local net = ddp and nn.DistributedDataParallel(model) or model

-- one pass over the data in a fresh random order; limit (optional) stops
-- after that many batches (a warm-up)
local function epoch(limit)
  local perm = dl.randperm(N)
  if device ~= "cpu" then perm = perm:to(device) end
  local loss
  for b, i in ipairs(starts) do
    if limit and b > limit then break end
    local idx = perm:narrow(1, i, math.min(BATCH, N - i + 1))
    if world > 1 then -- this rank's share of the global batch
      local per = idx:numel() // world
      idx = idx:narrow(1, rank * per + 1, per)
    end
    local xb, yb = X:index_select(1, idx), Y:index_select(1, idx)
    loss = loss_fn(net(xb), yb)
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
  return loss
end

local function timed_epoch()
  if sync then sync() end
  local t0 = B.clock()
  local loss = epoch():item()
  if sync then sync() end
  assert(loss == loss, NAME .. ": the loss is NaN")
  return B.clock() - t0
end

local best = math.huge
if accuracy then
  -- 3 full epochs from the seed; the first is the warm-up, the other two
  -- are timed as well
  epoch()
  for _ = 2, 3 do best = math.min(best, timed_epoch()) end
  local Xt, Yt = dl.datasets.fashion_mnist({split = "test"})
  if device ~= "cpu" then Xt, Yt = Xt:to(device), Yt:to(device) end
  model:eval()
  local correct = dl.no_grad(function()
    return model(Xt):argmax(2):eq(Yt):sum():item()
  end)
  print(string.format("RESULT fashion-mlp dlua_accuracy %.2f %%", 100 * correct / Yt:size(1)))
else
  epoch(WARMUP)
  for _ = 1, epochs do best = math.min(best, timed_epoch()) end
end
if ddp then
  dl.dist.print(string.format("RESULT fashion-mlp-ranks dlua_%dx%d %.4f s/epoch", world, B.threads, best))
else
  print(string.format("RESULT %s dlua %.4f s/epoch", NAME, best))
end
