-- scripts/seed/schedulers.lua — the seed lecture's learning-rate schedule
-- experiment: one MLP (784-256-128-10, ReLU, SGD with momentum 0.9, batch 128)
-- on z-scored Fashion-MNIST, trained with
--   constant   lr 0.05 throughout
--   step       StepLR: lr 0.05, times 0.1 every third of the run (per epoch)
--   plateau    ReduceLROnPlateau on the validation loss: halve lr 0.05 after
--              one epoch without improvement (patience 1)
--   1cycle     OneCycleLR stepped per batch: warm up to max_lr 0.1 over the
--              first 30 % of the steps, then cosine-anneal to 0.1/25/1e4
--              (momentum cycled 0.95 -> 0.85 -> 0.95)
--   SGDR       CosineAnnealingWarmRestarts stepped per batch with fractional
--              epochs: lr 0.05 cosine-annealed to 0 over cycles of 1, 2, 4, 8
--              epochs (T_0 = 1, T_mult = 2; 15 epochs end a cycle)
-- Every schedule starts from the same initial weights and sees the batches in
-- the same order (fixed seeds), on the same training subset.
--
-- What to expect (full run, see scripts/seed/RESULTS.md): the schedules
-- that end with a small lr (step, plateau after four halvings, 1cycle, SGDR)
-- finish about 1.5 points above the constant lr, whose validation accuracy
-- keeps bouncing; 1cycle and SGDR (ending a cycle at epoch 15) reach the best
-- validation accuracy. SGDR's validation accuracy dips after the restarts
-- at epochs 4 and 8 and recovers by each cycle's end.
--
--   dlua scripts/seed/schedulers.lua [--quick] [--epochs N] [--out DIR]
--
-- --quick: 1,000 training images, 1 epoch, and all subsets taken from the
-- 10,000-image test file (decoding the 60,000-image training file takes
-- seconds). Prints the table (schedule, final lr, best and final validation
-- accuracy, test accuracy) and writes lr.png (lr per step for all schedules)
-- and val_accuracy.png (validation accuracy per epoch) into the out dir
-- (default runs/seed/schedulers).
local dl = require "dlua"
local nn, optim = dl.nn, dl.optim
local sched_mod = optim.lr_scheduler

local t_start = dl._time()

---------------------------------------------------------------------------
-- options

-- the shared command line (scripts/seed/seed_cli.lua)
package.path = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local O = require("seed_cli").options("schedulers", {"epochs"})

local N_TRAIN, N_VAL, N_TEST = 20000, 5000, 10000
local EPOCHS, BATCH, SEED, LR = 15, 128, 1, 0.05
if O.quick then N_TRAIN, N_VAL, N_TEST, EPOCHS = 1000, 500, 1000, 1 end
EPOCHS = O.epochs or EPOCHS


---------------------------------------------------------------------------
-- data: see seed_data.lua

dl.manual_seed(SEED)
local Xtr, ytr, Xva, yva, Xte, yte = require("seed_data").fashion_subsets(O.quick, N_TRAIN, N_VAL, N_TEST)
collectgarbage()

local STEPS = (N_TRAIN + BATCH - 1) // BATCH -- batches per epoch (no drop_last)

---------------------------------------------------------------------------
-- model, evaluation

local function make_model()
  return nn.Sequential(
    nn.Linear(784, 256), nn.ReLU(),
    nn.Linear(256, 128), nn.ReLU(),
    nn.Linear(128, 10))
end

local loss_fn = nn.CrossEntropyLoss()
local function evaluate(model, X, y)
  model:eval()
  local acc, loss = dl.no_grad(function()
    local out = model(X)
    return dl.metrics.accuracy(out, y), loss_fn(out, y):item()
  end)
  model:train()
  return acc, loss
end

---------------------------------------------------------------------------
-- the schedules: make(opt) -> scheduler; `batch(s, epoch, i)` runs after the
-- i-th optimizer step of epoch (1-based), `epoch_end(s, val_loss)` after
-- each epoch's validation

local SCHEDULES = {
  {name = "constant"},
  {name = "step",
   make = function(opt) return sched_mod.StepLR(opt, {step_size = math.max(1, EPOCHS // 3), gamma = 0.1}) end,
   epoch_end = function(s) s:step() end},
  {name = "plateau",
   make = function(opt) return sched_mod.ReduceLROnPlateau(opt, {mode = "min", factor = 0.5, patience = 1}) end,
   epoch_end = function(s, val_loss) s:step(val_loss) end},
  {name = "1cycle",
   make = function(opt)
     return sched_mod.OneCycleLR(opt, {max_lr = 2 * LR, epochs = EPOCHS, steps_per_epoch = STEPS})
   end,
   batch = function(s) s:step() end},
  {name = "SGDR",
   make = function(opt) return sched_mod.CosineAnnealingWarmRestarts(opt, {T_0 = 1, T_mult = 2}) end,
   batch = function(s, epoch, i) s:step(epoch - 1 + i / STEPS) end},
}

local function run(sc)
  dl.manual_seed(SEED)
  local model = make_model()
  local opt = optim.SGD(model:parameters(), {lr = LR, momentum = 0.9})
  local s = sc.make and sc.make(opt)
  local loader = dl.data.DataLoader(dl.data.TensorDataset(Xtr, ytr),
    {batch_size = BATCH, shuffle = true, seed = SEED})
  local group = opt.param_groups[1]

  local lrs, val_acc, best = {}, {}, 0
  for epoch = 1, EPOCHS do
    local i = 0
    for xb, yb in loader:iter() do
      i = i + 1
      lrs[#lrs + 1] = group.lr -- the lr this step uses
      local loss = loss_fn(model(xb), yb)
      opt:zero_grad()
      loss:backward()
      opt:step()
      if sc.batch then sc.batch(s, epoch, i) end
    end
    local va, vl = evaluate(model, Xva, yva)
    val_acc[epoch], best = va, math.max(best, va)
    io.stderr:write(string.format("%-9s epoch %2d  lr %.5f  val loss %.4f  val acc %.4f\n",
      sc.name, epoch, group.lr, vl, va))
    if sc.epoch_end then sc.epoch_end(s, vl) end
  end
  return {name = sc.name, final_lr = lrs[#lrs], best = best, val = val_acc[EPOCHS],
          test = (evaluate(model, Xte, yte)), lrs = lrs, val_acc = val_acc}
end

print(string.format("LR schedules on Fashion-MNIST, MLP 784-256-128-10 (SGD momentum 0.9, batch %d, %d epochs "
  .. "x %d steps): %d train, %d validation, %d test images", BATCH, EPOCHS, STEPS, N_TRAIN, N_VAL, N_TEST))

local results = {}
for i, sc in ipairs(SCHEDULES) do results[i] = run(sc) end

print()
print(string.format("%-9s %10s %13s %14s %9s", "schedule", "final lr", "best val acc", "final val acc", "test acc"))
for _, r in ipairs(results) do
  print(string.format("%-9s %10.2e %13.4f %14.4f %9.4f", r.name, r.final_lr, r.best, r.val, r.test))
end
print("(final lr: the lr of the last training step)")

if dl.plot and dl.plot.lines then
  local lr_series, acc_series = {}, {}
  for i, r in ipairs(results) do
    lr_series[i] = {name = r.name, y = r.lrs}
    acc_series[i] = {name = r.name, y = r.val_acc}
  end
  local lr_plot, acc_plot = O.out .. "/lr.png", O.out .. "/val_accuracy.png"
  dl.plot.lines(lr_series, {file = lr_plot, title = "Learning rate per step", xlabel = "step", ylabel = "lr"})
  dl.plot.lines(acc_series, {file = acc_plot, title = "LR schedules: validation accuracy per epoch",
                             xlabel = "epoch", ylabel = "validation accuracy"})
  print("plot: " .. lr_plot)
  print("plot: " .. acc_plot)
else
  print("plot: skipped (dl.plot.lines is not available)")
end
print(string.format("wall time: %.1f s", dl._time() - t_start))
