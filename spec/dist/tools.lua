-- Run under mpirun -np 2 by spec/dist_spec.lua: the rank-aware tools.
-- Prints "ok <case>" / "FAIL <case>: <why>" lines.
dl.dist.init({timeout = 60})
local rank, world = dl.dist.rank(), dl.dist.size()
local function check(name, cond, why)
  print((cond and "ok " or "FAIL ") .. name .. (cond and "" or ": " .. tostring(why)))
end

-- the sampler: every index exactly once an epoch over the ranks, the same
-- permutation on every rank, a new one each epoch
local ds = dl.data.TensorDataset(dl.arange(1, 11):double())
local s = dl.data.DistributedSampler(ds, {seed = 3})
local orders = {}
for epoch = 1, 2 do
  s:set_epoch(epoch)
  local mine = s:indices()
  local all = dl.dist.all_gather(mine):view(-1)
  local seen, ok = {}, all:numel() == 10
  for i = 1, all:numel() do
    local v = all[i]:item()
    ok = ok and not seen[v] and v >= 1 and v <= 10
    seen[v] = true
  end
  check("sampler epoch " .. epoch .. " covers each index once", ok, all)
  orders[epoch] = all
end
check("sampler reshuffles each epoch", not orders[1]:equal(orders[2]), orders[1])
local loader = dl.data.DataLoader(ds, {batch_size = 2, sampler = s})
local n = 0
for xb in loader:iter() do n = n + xb:numel() end
check("loader draws the rank's share", n == 5 and #loader == 3, n)

-- EarlyStopping: ranks see different metrics and take the same decision
local es = dl.utils.EarlyStopping({patience = 1})
local stops = {}
for step = 1, 4 do
  local metric = rank == 0 and 1.0 / step or step -- the average improves twice, then not
  stops[step] = es:step(metric) and 1 or 0
end
local mine = dl.tensor(stops)
local other = dl.dist.all_gather(mine)
check("EarlyStopping decides the same on every rank", other[1]:equal(other[2]), other)

-- one progress bar (rank 0's) unless every rank asks
local written = {n = 0}
local sink = {write = function(_, str) written.n = written.n + #str end}
local bar = dl.utils.progress(3, {file = sink, tty = false, interval = 0})
for _ in bar do end
check("progress draws on rank 0 only", (rank == 0) == (written.n > 0), written.n)
written.n = 0
bar = dl.utils.progress(3, {file = sink, tty = false, interval = 0, all_ranks = true})
for _ in bar do end
check("progress all_ranks draws everywhere", written.n > 0, written.n)

-- one checkpoint: rank 0 writes unless all_ranks
local dir = arg[1]
local wrote = dl.save(dir .. "/ckpt.pt", {x = dl.ones(2)})
check("dl.save writes on rank 0 only", wrote == (rank == 0), wrote)
local wrote_all = dl.save(dir .. "/rank" .. rank .. ".pt", {x = dl.ones(2)}, {all_ranks = true})
check("dl.save all_ranks writes everywhere", wrote_all == true, wrote_all)
dl.dist.barrier()
print("done rank " .. rank)
