-- dl.data.DistributedSampler: each rank's share of a dataset, for a
-- DataLoader under dl.dist (PyTorch's torch.utils.data.DistributedSampler).
-- A sampler is any object with sampler:indices() (this epoch's 1-based
-- int64 indices) and #sampler; DataLoader({sampler = s}) draws from it.
local dl = require "dlua"
local data = dl.data

local Sampler = {__name = "DistributedSampler"}
Sampler.__index = Sampler
data.DistributedSampler = Sampler

local allowed = {num_replicas = true, rank = true, shuffle = true, seed = true, drop_last = true}

-- DistributedSampler(ds, {num_replicas = dl.dist.size(), rank = dl.dist.rank(),
-- shuffle = true, seed = 0, drop_last = false}). Every rank gets the same
-- number of samples: without drop_last the permutation is padded by
-- repeating its start, with it the tail is dropped. The permutation is
-- the same on every rank (seed + epoch); call set_epoch(e) each epoch.
local function new(_, ds, opts)
  local fn = "dl.data.DistributedSampler"
  if not data.is_dataset(ds) then
    error(fn .. ": bad argument #1 (dataset expected, got " .. type(ds) .. ")", 2)
  end
  opts = require("dlua.checks").options(fn, opts, allowed)
  local replicas = opts.num_replicas or dl.dist.size()
  if math.type(replicas) ~= "integer" or replicas < 1 then
    error(fn .. ": option 'num_replicas' must be a positive integer, got " .. tostring(replicas), 2)
  end
  local rank = opts.rank or dl.dist.rank()
  if math.type(rank) ~= "integer" or rank < 0 or rank >= replicas then
    error(string.format("%s: option 'rank' must be an integer in [0, %d], got %s", fn, replicas - 1, tostring(rank)), 2)
  end
  local seed = data._check_seed(fn, opts.seed) or 0
  local n = ds:len()
  local drop_last = opts.drop_last == true
  local per
  if drop_last and n % replicas ~= 0 then
    per = (n - replicas + replicas - 1) // replicas -- ceil((n - replicas) / replicas)
    if per < 0 then per = 0 end
  else
    per = (n + replicas - 1) // replicas
  end
  return setmetatable({
    dataset = ds, num_replicas = replicas, rank = rank, shuffle = opts.shuffle ~= false, seed = seed,
    drop_last = drop_last, epoch = 0, num_samples = per, total_size = per * replicas,
  }, Sampler)
end
setmetatable(Sampler, {__call = new})

function Sampler:set_epoch(epoch)
  if math.type(epoch) ~= "integer" then
    error("dl.data.DistributedSampler:set_epoch: bad argument #1 (integer expected, got " .. type(epoch) .. ")", 2)
  end
  self.epoch = epoch
end

function Sampler:__len() return self.num_samples end

function Sampler:__tostring()
  return string.format("DistributedSampler(num_replicas=%d, rank=%d, shuffle=%s, num_samples=%d)", self.num_replicas,
    self.rank, tostring(self.shuffle), self.num_samples)
end

-- this rank's indices for the current epoch: positions rank+1, rank+1+R,
-- ... of the (padded or cut) permutation
function Sampler:indices()
  local n, total, per = self.dataset:len(), self.total_size, self.num_samples
  if total == 0 then return dl.zeros(0, {dtype = "int64"}) end
  local order = self.shuffle and data._with_rng({seed = self.seed + self.epoch}, dl.randperm, n)
    or dl.arange(1, n + 1)
  if total > n then
    local reps = (total + n - 1) // n
    order = order:view(1, n):expand(reps, n):reshape(-1):narrow(1, 1, total)
  elseif total < n then
    order = order:narrow(1, 1, total)
  end
  return order:view(per, self.num_replicas):select(2, self.rank + 1):contiguous()
end

return Sampler
