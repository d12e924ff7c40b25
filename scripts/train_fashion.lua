-- scripts/train_fashion.lua — `make demo`: the Fashion-MNIST benchmark's
-- "MLP 256-128-100" (784-256-128-100-10, ReLU, cross-entropy, Adam) on
-- z-scored pixels, with a validation split, early stopping, a progress bar per
-- epoch, the best checkpoint saved and a loss/accuracy plot.
--
--   dlua scripts/train_fashion.lua [--quick] [--epochs N] [--out DIR]
--                                  [--batch-size B] [--lr LR] [--seed S]
--   dlua scripts/train_fashion.lua --eval CHECKPOINT   (test accuracy of a saved model)
--   dlua scripts/train_fashion.lua --nproc 2 ...        (data parallel: 2 processes,
--        nn.DistributedDataParallel over dl.dist, each on half of every batch)
--
-- Defaults: 55,000 training and 5,000 validation images, batch 128, Adam lr
-- 1e-3 halved every 4 epochs, at most 15 epochs, early stopping with patience
-- 5 on validation accuracy, output under runs/fashion. --quick: 6,000 / 1,000
-- images, 1 epoch, the first 2,000 test images (what spec/demo_spec.lua runs).
--
-- The checkpoint is a safetensors file holding the model's state_dict under
-- "model." and the fitted scaler under "scaler.", so a new process (or
-- PyTorch's safetensors) can rebuild the exact model from it alone.
local dl = require "dlua"
local nn, optim = dl.nn, dl.optim

local t_start = dl._time()

---------------------------------------------------------------------------
-- options

package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local cli = require "demo_cli"
local O, given = cli.parse("train_fashion.lua",
  "usage: dlua scripts/train_fashion.lua [--quick] [--epochs N] [--out DIR] [--batch-size B] [--lr LR] [--seed S] " ..
  "[--eval CHECKPOINT] [--nproc N]",
  {{"--quick", "quick", "flag"}, {"--epochs", "epochs", "count"}, {"--out", "out", "string"},
   {"--batch-size", "batch_size", "count"}, {"--lr", "lr", "number"}, {"--seed", "seed", "count"},
   {"--eval", "eval", "string"}, {"--nproc", "nproc", "count"}},
  {quick = false, epochs = 15, out = cli.repo() .. "/runs/fashion", batch_size = 128, lr = 1e-3, seed = 1,
   patience = 5, val = 5000, nproc = 1})
if O.quick and not given.epochs then O.epochs = 1 end

-- --nproc N: data parallel over N processes of this machine (dl.dist):
-- this script again under `dlua --nproc N`, each rank training on its
-- share of every batch of --batch-size (the global batch stays the same)
local under_mpi = os.getenv("OMPI_COMM_WORLD_SIZE") ~= nil
if O.nproc > 1 and not under_mpi then
  local words = {}
  local i = 1
  while arg[i] do
    if arg[i] == "--nproc" then i = i + 1 else words[#words + 1] = "'" .. arg[i]:gsub("'", "'\\''") .. "'" end
    i = i + 1
  end
  local ok, _, code = os.execute(string.format("'%s' --nproc %d '%s' %s", arg[-1], O.nproc, arg[0],
    table.concat(words, " ")))
  os.exit(ok and 0 or code or 1)
end
if under_mpi then dl.dist.init() end
local world = dl.dist.size()
if O.batch_size % world ~= 0 then
  io.stderr:write(string.format("train_fashion.lua: --batch-size %d does not split into %d processes\n", O.batch_size,
    world))
  os.exit(2)
end
-- every line of the log once: rank 0's
local print = dl.dist.print

---------------------------------------------------------------------------
-- data

-- images [N, 784] float32 in [0, 1] and labels [N] int64 (1..10)
local function load_split(split)
  local X, y = dl.datasets.fashion_mnist({split = split})
  return X:reshape(X:size(1), -1):float(), y:long()
end

-- the quick run trains on a small subset and tests on 2,000 images
local QUICK_TRAIN, QUICK_VAL, QUICK_TEST = 6000, 1000, 2000

local function test_set()
  local X, y = load_split("test")
  if O.quick then X, y = X:narrow(1, 1, QUICK_TEST), y:narrow(1, 1, QUICK_TEST) end
  return X, y
end

---------------------------------------------------------------------------
-- model

local function make_model()
  return nn.Sequential(
    nn.Linear(784, 256), nn.ReLU(),
    nn.Linear(256, 128), nn.ReLU(),
    nn.Linear(128, 100), nn.ReLU(),
    nn.Linear(100, 10))
end

-- fraction of X's images classified as y says (one no-grad pass)
local function accuracy(model, X, y)
  model:eval()
  local acc = dl.no_grad(function() return dl.metrics.accuracy(model(X), y) end)
  model:train()
  return acc
end

-- mean cross-entropy over X, y
local function mean_loss(model, loss_fn, X, y)
  model:eval()
  local l = dl.no_grad(function() return loss_fn(model(X), y):item() end)
  model:train()
  return l
end

local function prefixed(prefix, sd, into)
  for k, v in pairs(sd) do into[prefix .. k] = v end
  return into
end

local function unprefixed(prefix, ck)
  local out = {}
  for k, v in pairs(ck) do
    if k:sub(1, #prefix) == prefix then out[k:sub(#prefix + 1)] = v end
  end
  return out
end

---------------------------------------------------------------------------
-- --eval CHECKPOINT: rebuild the model and scaler from the file alone

if O.eval then
  local ck = dl.load(O.eval)
  local scaler = dl.preprocessing.StandardScaler()
  scaler:load_state_dict(unprefixed("scaler.", ck))
  local model = make_model()
  model:load_state_dict(unprefixed("model.", ck))
  local Xte, yte = test_set()
  local acc = accuracy(model, scaler:transform(Xte), yte)
  print(string.format("test accuracy: %.4f (%d images, checkpoint %s)", acc, Xte:size(1), O.eval))
  os.exit(0)
end

---------------------------------------------------------------------------
-- training

dl.manual_seed(O.seed)
os.execute("mkdir -p '" .. O.out:gsub("'", "'\\''") .. "'")

local Xall, yall = load_split("train")
local Xte, yte = test_set()
local n_val = O.quick and QUICK_VAL or O.val
local n_train = O.quick and QUICK_TRAIN or (Xall:size(1) - n_val)
-- one fixed permutation splits train / validation
local perm = dl.randperm(Xall:size(1))
local itr, iva = perm:narrow(1, 1, n_train), perm:narrow(1, n_train + 1, n_val)
local Xtr, ytr = Xall:index_select(1, itr), yall:index_select(1, itr)
local Xva, yva = Xall:index_select(1, iva), yall:index_select(1, iva)
Xall, yall, perm, itr, iva = nil, nil, nil, nil, nil

-- z-score every pixel with the training split's statistics
local scaler = dl.preprocessing.StandardScaler()
Xtr = scaler:fit_transform(Xtr)
Xva, Xte = scaler:transform(Xva), scaler:transform(Xte)
-- the raw copies and the scaler's temporaries go back to the system
collectgarbage()
dl.empty_cache()

local train_set = dl.data.TensorDataset(Xtr, ytr)
local sampler = world > 1 and dl.data.DistributedSampler(train_set, {seed = O.seed}) or nil
local loader = dl.data.DataLoader(train_set, {batch_size = O.batch_size // world, shuffle = sampler == nil,
  seed = sampler == nil and O.seed or nil, sampler = sampler})

local model = make_model()
-- the gradients averaged over the processes during backward
local net = world > 1 and nn.DistributedDataParallel(model) or model
local loss_fn = nn.CrossEntropyLoss()
local opt = optim.Adam(model:parameters(), {lr = O.lr})
-- halve the step size every 4 epochs: the late epochs refine instead of bouncing
local sched = optim.lr_scheduler.StepLR(opt, {step_size = 4, gamma = 0.5})
local best_path = O.out .. "/best_model.safetensors"
-- early stopping watches validation accuracy: the validation loss turns up
-- (over-confidence) epochs before the accuracy stops improving
local es = dl.utils.EarlyStopping({patience = O.patience, path = best_path, mode = "max"})

print(string.format("Fashion-MNIST MLP 784-256-128-100-10: %d train, %d validation, %d test images; %d parameters%s",
  n_train, n_val, Xte:size(1), model:num_parameters(), world > 1 and string.format("; %d processes", world) or ""))

local hist = {train_loss = {}, val_loss = {}, val_acc = {}}
local epochs_run = 0
for epoch = 1, O.epochs do
  if sampler then sampler:set_epoch(epoch) end
  local bar = dl.utils.progress(loader:iter(), {total = #loader, desc = string.format("epoch %d/%d", epoch, O.epochs)})
  local sum, count = 0, 0
  for xb, yb in bar do
    local loss = loss_fn(net(xb), yb)
    opt:zero_grad()
    loss:backward()
    opt:step()
    local l = loss:item()
    sum, count = sum + l * xb:size(1), count + xb:size(1)
    bar:set_postfix({loss = sum / count})
  end
  if world > 1 then -- the epoch's mean loss over every rank's samples
    local t = dl.tensor({sum, count}, {dtype = "float64"})
    dl.dist.all_reduce(t)
    sum, count = t[1]:item(), t[2]:item()
  end
  sched:step()
  epochs_run = epoch
  local vl, va = mean_loss(model, loss_fn, Xva, yva), accuracy(model, Xva, yva)
  hist.train_loss[epoch], hist.val_loss[epoch], hist.val_acc[epoch] = sum / count, vl, va
  print(string.format("epoch %2d  train loss %.4f  val loss %.4f  val acc %.4f", epoch, sum / count, vl, va))
  if es:step(va, model) then
    print(string.format("early stop: no improvement for %d epochs (best val acc %.4f at epoch %d)",
      es.patience, es.best, es.best_step))
    break
  end
end

-- the best epoch's weights, saved with the scaler as one checkpoint
es:load_best(model)
local ckpt = O.out .. "/fashion_mlp.safetensors"
dl.save(ckpt, prefixed("scaler.", scaler:state_dict(), prefixed("model.", model:state_dict(), {})))
if dl.dist.is_main() then os.remove(best_path) end
local test_acc = accuracy(model, Xte, yte)

local plot = O.out .. "/fashion_curves.png"
if dl.dist.is_main() then dl.plot.lines({
  ["train loss"] = hist.train_loss, ["validation loss"] = hist.val_loss, ["validation accuracy"] = hist.val_acc,
}, {file = plot, title = "Fashion-MNIST MLP 256-128-100", xlabel = "epoch", ylabel = "cross-entropy",
    y2 = {"validation accuracy"}, y2label = "accuracy"}) end

print(string.format("test accuracy: %.4f (%d images, best epoch %d of %d)", test_acc, Xte:size(1), es.best_step, epochs_run))
print("checkpoint: " .. ckpt)
print("plot: " .. plot)
print(string.format("wall time: %.1f s", dl._time() - t_start))
