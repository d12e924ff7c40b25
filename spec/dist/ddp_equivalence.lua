-- Run under mpirun -np 2 by spec/dist_spec.lua: DistributedDataParallel on
-- two ranks, each with half of the global batch, against one process on
-- the whole batch (every rank computes the reference too), float64.
-- Prints "max diff <opt> <value>" lines; the spec checks them. arg[1]
-- "cuda": the model and data live on cuda:<rank> (NCCL), else the CPU.
dl.dist.init({timeout = 60})
local rank, world = dl.dist.rank(), dl.dist.size()
local device = arg[1] == "cuda" and "cuda:" .. rank % dl.cuda.device_count() or "cpu"
local nn = dl.nn

local function make_model()
  dl.manual_seed(7)
  return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)):double():to(device)
end

dl.manual_seed(123)
local per = 8 -- rows a rank; the global batch is 8 * world rows
local X = dl.randn(per * world, 5, {dtype = "float64"})
local Y = dl.randn(per * world, 3, {dtype = "float64"})
X, Y = X:to(device), Y:to(device)
local xs = X:narrow(1, rank * per + 1, per)
local ys = Y:narrow(1, rank * per + 1, per)

local function max_diff(a, b)
  local m = 0
  local pa, pb = a:parameters(), b:parameters()
  for i = 1, #pa do m = math.max(m, (pa[i] - pb[i]):abs():max():item()) end
  return m
end

for _, case in ipairs({
  {"sgd", function(ps) return dl.optim.SGD(ps, {lr = 0.1, momentum = 0.9}) end},
  {"adam", function(ps) return dl.optim.Adam(ps, {lr = 0.01}) end},
}) do
  local ref, model = make_model(), make_model()
  -- a different start on rank 1: the wrap must copy rank 0's parameters
  if rank == 1 then dl.no_grad(function() model:parameters()[1]:add_(1) end) end
  local ddp = nn.DistributedDataParallel(model, {bucket_mb = 0.0005}) -- several buckets
  local opt_ref, opt = case[2](ref:parameters()), case[2](ddp:parameters())
  for _ = 1, 5 do
    opt_ref:zero_grad()
    nn.functional.mse_loss(ref(X), Y):backward()
    opt_ref:step()
    opt:zero_grad()
    nn.functional.mse_loss(ddp(xs), ys):backward()
    opt:step()
  end
  print(string.format("max diff %s %.3e buckets %d", case[1], max_diff(ref, model), ddp:num_buckets()))
end

-- no_sync: two micro-batches accumulated locally, averaged once
do
  local ref, model = make_model(), make_model()
  local ddp = nn.DistributedDataParallel(model)
  local h = per // 2
  for k = 0, 1 do
    local lo = k * h
    nn.functional.mse_loss(ref(X:narrow(1, lo * world + 1, h * world)), Y:narrow(1, lo * world + 1, h * world))
      :backward()
  end
  -- the reference's micro-batch k is rows lo*world+1 .. of X; each rank's
  -- share of it is its own h rows there
  local function mine(T, k) return T:narrow(1, k * h * world + rank * h + 1, h) end
  ddp:no_sync(function() nn.functional.mse_loss(ddp(mine(X, 0)), mine(Y, 0)):backward() end)
  nn.functional.mse_loss(ddp(mine(X, 1)), mine(Y, 1)):backward()
  local m = 0
  local pr, pm = ref:parameters(), model:parameters()
  for i = 1, #pr do m = math.max(m, (pr[i].grad - pm[i].grad):abs():max():item()) end
  print(string.format("max diff no_sync %.3e", m))
end
