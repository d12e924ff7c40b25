-- scripts/seed/batchnorm.lua — the seed lecture's batch-normalisation
-- experiment on Fashion-MNIST (z-scored pixels, StandardScaler fitted on the
-- training images): an MLP with 3 fully connected hidden layers of 100
-- sigmoid units (784-100-100-100-10, cross-entropy), trained twice from the
-- same seed with plain SGD (lr 0.1, batch 64, no momentum):
--
--   plain      Linear -> Sigmoid                  (x3) -> Linear
--   batchnorm  Linear -> BatchNorm1d -> Sigmoid   (x3) -> Linear
--
-- Printed per epoch (epoch 0 = before training): test accuracy of both, and
-- the 15th / 50th / 85th percentiles of the last hidden layer's sigmoid
-- outputs on a fixed batch of 1,000 test images (eval mode; percentiles from
-- dl.sort of the 100,000 values, linear interpolation as numpy's default).
-- Expect: the BatchNorm net is far ahead after the first epoch (~0.83 vs
-- ~0.5) and plateaus within a few epochs, while the plain net creeps up and
-- only slowly closes the gap. Without BatchNorm the last layer's activation
-- percentiles keep moving outwards for several epochs (the distribution a
-- following layer sees keeps changing); with it each unit's pre-activation is
-- re-standardised, so the percentiles settle after the first epoch. Plots: accuracy.png/.svg and
-- percentiles.png/.svg in the out dir.
--
-- Full run: the 60,000 training images, 10 epochs, test on all 10,000;
-- --quick: a 2,000-image training subset, 1 epoch, 1,000 test images.
--
--   dlua scripts/seed/batchnorm.lua [--quick] [--epochs N] [--out DIR]
local dl = require "dlua"
local nn, optim = dl.nn, dl.optim

-- the shared command line (scripts/seed/seed_cli.lua)
package.path = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local O = require("seed_cli").options("batchnorm", {"epochs"})

local EPOCHS = O.epochs or (O.quick and 1 or 10)
local N_TRAIN = O.quick and 2000 or nil
local N_TEST = O.quick and 1000 or nil
local BATCH, LR, HIDDEN, PROBE = 64, 0.1, 100, 1000
local PCTS = {0.15, 0.50, 0.85}

-- data: z-scored with the training set's statistics
local Xtr, ytr = dl.datasets.fashion_mnist({split = "train"})
local Xte, yte = dl.datasets.fashion_mnist({split = "test"})
if N_TRAIN then Xtr, ytr = Xtr:narrow(1, 1, N_TRAIN), ytr:narrow(1, 1, N_TRAIN) end
if N_TEST then Xte, yte = Xte:narrow(1, 1, N_TEST), yte:narrow(1, 1, N_TEST) end
local scaler = dl.preprocessing.StandardScaler()
Xtr = scaler:fit_transform(Xtr)
Xte = scaler:transform(Xte)
local probe = Xte:narrow(1, 1, math.min(PROBE, Xte:size(1)))
collectgarbage()

-- body: the 3 hidden layers (their output is the last hidden activation)
local function make_model(bn)
  local mods, fan_in = {}, 784
  for _ = 1, 3 do
    mods[#mods + 1] = nn.Linear(fan_in, HIDDEN)
    if bn then mods[#mods + 1] = nn.BatchNorm1d(HIDDEN) end
    mods[#mods + 1] = nn.Sigmoid()
    fan_in = HIDDEN
  end
  local body = nn.Sequential(table.unpack(mods))
  return nn.Sequential(body, nn.Linear(HIDDEN, 10)), body
end

-- q-quantiles of all values of t (numpy's linear interpolation)
local function percentiles(t, qs)
  local v = t:reshape(-1):double():sort()
  local n, out = v:size(1), {}
  for i, q in ipairs(qs) do
    local pos = q * (n - 1)
    local lo = math.floor(pos)
    local a = v:narrow(1, lo + 1, 1):item()
    local b = lo + 1 < n and v:narrow(1, lo + 2, 1):item() or a
    out[i] = a + (b - a) * (pos - lo)
  end
  return out
end

local function evaluate(model, body)
  model:eval()
  local acc, p = dl.no_grad(function()
    return dl.metrics.accuracy(model(Xte), yte), percentiles(body(probe), PCTS)
  end)
  model:train()
  return acc, p
end

local runs = {}
for _, bn in ipairs({false, true}) do
  dl.manual_seed(1)
  local model, body = make_model(bn)
  local loader = dl.data.DataLoader(dl.data.TensorDataset(Xtr, ytr), {batch_size = BATCH, shuffle = true, seed = 1})
  local loss_fn = nn.CrossEntropyLoss()
  local opt = optim.SGD(model:parameters(), {lr = LR})
  local acc, pct = {}, {}
  acc[0], pct[0] = evaluate(model, body)
  for epoch = 1, EPOCHS do
    local bar = dl.utils.progress(loader:iter(), {total = #loader,
      desc = string.format("%s epoch %d/%d", bn and "batchnorm" or "plain", epoch, EPOCHS)})
    for xb, yb in bar do
      local loss = loss_fn(model(xb), yb)
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    acc[epoch], pct[epoch] = evaluate(model, body)
  end
  runs[#runs + 1] = {name = bn and "batchnorm" or "plain", acc = acc, pct = pct}
end

local plain, bnr = runs[1], runs[2]
print(string.format("Fashion-MNIST, 784-100-100-100-10 sigmoid MLP, SGD lr %g batch %d: %d train, %d test images",
  LR, BATCH, Xtr:size(1), Xte:size(1)))
print("test accuracy, and 15/50/85th percentiles of the last hidden layer's activations on " ..
  probe:size(1) .. " test images")
print(string.format("%5s %10s %10s   %-22s %-22s", "epoch", "acc_plain", "acc_bn",
  "plain p15/p50/p85", "batchnorm p15/p50/p85"))
for e = 0, EPOCHS do
  local a, b = plain.pct[e], bnr.pct[e]
  print(string.format("%5d %10.4f %10.4f   %6.3f %6.3f %6.3f   %6.3f %6.3f %6.3f", e, plain.acc[e], bnr.acc[e],
    a[1], a[2], a[3], b[1], b[2], b[3]))
end

local function plot(series, name, opts)
  if not (dl.plot and dl.plot.lines) then
    print("note: dl.plot.lines is not available, no plot written for " .. name)
    return
  end
  for _, ext in ipairs({"png", "svg"}) do
    opts.file = O.out .. "/" .. name .. "." .. ext
    dl.plot.lines(series, opts)
    print("plot: " .. opts.file)
  end
end

local ep = {}
for e = 0, EPOCHS do ep[#ep + 1] = e end
local function col(t, k)
  local out = {}
  for e = 0, EPOCHS do out[#out + 1] = k and t[e][k] or t[e] end
  return out
end
plot({{name = "plain", x = ep, y = col(plain.acc)}, {name = "batchnorm", x = ep, y = col(bnr.acc)}},
  "accuracy", {title = "Fashion-MNIST sigmoid MLP: test accuracy", xlabel = "epoch", ylabel = "test accuracy"})
local ps = {}
for _, r in ipairs(runs) do
  for k, q in ipairs(PCTS) do
    ps[#ps + 1] = {name = string.format("%s p%d", r.name, math.floor(q * 100 + 0.5)), x = ep, y = col(r.pct, k)}
  end
end
plot(ps, "percentiles", {title = "last hidden layer: 15/50/85th percentiles of the sigmoid outputs",
  xlabel = "epoch", ylabel = "activation"})
