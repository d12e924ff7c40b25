-- housing_mlp.lua — the seed's regression (scripts/seed/regression_mlp.lua)
-- as a timing: X 20640x8 (standardised features), y a smooth function of X
-- plus noise, Sequential(Linear(8,64), ReLU, Linear(64,64), ReLU,
-- Linear(64,64), ReLU, Linear(64,1)), MSELoss, Adam lr 1e-3, batch 64,
-- shuffled each epoch; seconds per epoch over all 20,640 rows, two loops:
--   DataLoader  the loop the seed writes: dl.data.DataLoader(TensorDataset,
--               {batch_size = 64, shuffle = true})
--   index       by hand: randperm, then index_select of 64-row slices
-- Both loops read loss:item() each step, as the seed does. Twin:
-- housing_mlp.py (same shapes; the data differ, the two generators do).
-- Prints, for the least of EPOCHS timed epochs after 50 warm-up batches,
--   RESULT housing-mlp dlua_DataLoader <s> s/epoch
--   RESULT housing-mlp dlua_index <s> s/epoch
-- Usage: dlua housing_mlp.lua [--epochs E] [--device cuda]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local nn = dl.nn

local epochs = B.number(arg, "--epochs", 3)
local device, sync = B.device(arg)
dl.manual_seed(0)

local N, BATCH = 20640, 64
local X = dl.randn(N, 8)
local w = dl.linspace(-1, 1, 8):view(8, 1)
local y = (X:matmul(w):tanh() + X:narrow(2, 1, 1):pow(2) * 0.1 + dl.randn(N, 1) * 0.1):contiguous()
if device ~= "cpu" then X, y = X:to(device), y:to(device) end

local function setup()
  local model = nn.Sequential(
    nn.Linear(8, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    nn.Linear(64, 1))
  if device ~= "cpu" then model:to(device) end
  return model, nn.MSELoss(), dl.optim.Adam(model:parameters(), {lr = 1e-3})
end

-- the seed's loop; limit (optional) stops after that many batches
local function epoch_loader(model, loss_fn, opt, loader, limit)
  local sum, b = 0, 0
  for xb, yb in loader:iter() do
    b = b + 1
    if limit and b > limit then break end
    local loss = loss_fn(model(xb), yb)
    opt:zero_grad()
    loss:backward()
    opt:step()
    sum = sum + loss:item()
  end
  return sum
end

-- hand indexing
local function epoch_index(model, loss_fn, opt, limit)
  local sum = 0
  local perm = dl.randperm(N)
  if device ~= "cpu" then perm = perm:to(device) end
  local last = limit and math.min(N, limit * BATCH) or N
  for i = 1, last, BATCH do
    local idx = perm:narrow(1, i, math.min(BATCH, N - i + 1))
    local xb, yb = X:index_select(1, idx), y:index_select(1, idx)
    local loss = loss_fn(model(xb), yb)
    opt:zero_grad()
    loss:backward()
    opt:step()
    sum = sum + loss:item()
  end
  return sum
end

local WARMUP = 50 -- batches: allocator, BLAS buffers, optimiser state
local function time_epochs(run)
  run(WARMUP)
  local best = math.huge
  for _ = 1, epochs do
    if sync then sync() end
    local t0 = B.clock()
    local loss = run()
    if sync then sync() end
    best = math.min(best, B.clock() - t0)
    assert(loss == loss, "housing-mlp: the loss is NaN")
  end
  return best
end

local m1, l1, o1 = setup()
local loader = dl.data.DataLoader(dl.data.TensorDataset(X, y), {batch_size = BATCH, shuffle = true})
local t_loader = time_epochs(function(limit) return epoch_loader(m1, l1, o1, loader, limit) end)
local m2, l2, o2 = setup()
local t_index = time_epochs(function(limit) return epoch_index(m2, l2, o2, limit) end)
print(string.format("RESULT housing-mlp dlua_DataLoader %.5f s/epoch", t_loader))
print(string.format("RESULT housing-mlp dlua_index %.5f s/epoch", t_index))
