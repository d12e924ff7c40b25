-- dl.data.DataLoader: batches of a dataset, optionally shuffled, optionally
-- transformed (dl.data.transforms).
-- A dataset with get_batch (TensorDataset, and Subsets of one) is gathered
-- by one index_select per tensor; any other goes sample by sample through
-- get(i) and the collate function.
local dl = require "dlua"
local data = dl.data

---------------------------------------------------------------------------
-- default_collate(samples): samples[j] is the packed list of values
-- ds:get(j) returned; the result is one batched value per position:
-- tensors stacked along a new dim 1, numbers and booleans made a tensor,
-- tables collated key by key, strings kept as a list.
---------------------------------------------------------------------------

local collate_values

local function collate_tables(vals)
  local first, out = vals[1], {}
  for key in pairs(first) do
    local col = {}
    for j = 1, #vals do
      if type(vals[j]) ~= "table" or vals[j][key] == nil then
        error(string.format("DataLoader: samples 1 and %d differ at key %s", j, tostring(key)), 0)
      end
      col[j] = vals[j][key]
    end
    out[key] = collate_values(col)
  end
  return out
end

collate_values = function(vals)
  local v = vals[1]
  if dl.is_tensor(v) then
    for j = 2, #vals do
      if not dl.is_tensor(vals[j]) then
        error(string.format("DataLoader: sample %d holds a %s where sample 1 holds a tensor", j, type(vals[j])), 0)
      end
    end
    return dl.stack(vals)
  end
  local t = type(v)
  if t == "number" or t == "boolean" then
    for j = 2, #vals do
      if type(vals[j]) ~= t then
        error(string.format("DataLoader: sample %d holds a %s where sample 1 holds a %s", j, type(vals[j]), t), 0)
      end
    end
    return dl.tensor(vals)
  end
  if t == "string" then return vals end
  if t == "table" then return collate_tables(vals) end
  error("DataLoader: the default collate cannot batch a " .. t .. " (pass {collate = fn})", 0)
end

function data.default_collate(samples)
  local n = samples[1].n or #samples[1]
  local out = {}
  for p = 1, n do
    local col = {}
    for j = 1, #samples do col[j] = samples[j][p] end
    out[p] = collate_values(col)
  end
  return table.unpack(out, 1, n)
end

---------------------------------------------------------------------------
-- DataLoader(ds, {batch_size = 1, shuffle = false, drop_last = false,
-- seed, collate, transform, sampler})
---------------------------------------------------------------------------

local DataLoader = {__name = "DataLoader"}
DataLoader.__index = DataLoader
data.DataLoader = DataLoader

local allowed = {batch_size = true, shuffle = true, drop_last = true, seed = true, collate = true, transform = true,
  sampler = true}

local function new(_, ds, opts)
  if not data.is_dataset(ds) then
    error("DataLoader: bad argument #1 (dataset expected, got " .. type(ds) .. ")", 2)
  end
  opts = opts or {}
  -- PyTorch's positional batch size: DataLoader(ds, 64)
  if math.type(opts) == "integer" then opts = {batch_size = opts} end
  if type(opts) ~= "table" then
    error("DataLoader: bad argument #2 (options table or batch size expected, got " .. type(opts) .. ")", 2)
  end
  for k in pairs(opts) do
    if not allowed[k] then error(require("dlua.checks").unknown_option("DataLoader", k, allowed), 2) end
  end
  local bs = opts.batch_size or 1
  if math.type(bs) ~= "integer" or bs < 1 then
    error("DataLoader: batch_size must be a positive integer, got " .. tostring(bs), 2)
  end
  if opts.collate ~= nil and type(opts.collate) ~= "function" then
    error("DataLoader: collate must be a function, got " .. type(opts.collate), 2)
  end
  if opts.seed ~= nil and math.type(opts.seed) ~= "integer" then
    error("DataLoader: seed must be an integer, got " .. type(opts.seed), 2)
  end
  local s = opts.sampler
  if s ~= nil and not (type(s) == "table" and type(s.indices) == "function") then
    error("DataLoader: sampler must have an indices() method (a dl.data.DistributedSampler), got " .. type(s), 2)
  end
  if s ~= nil and opts.shuffle then
    error("DataLoader: options 'sampler' and 'shuffle' exclude each other (the sampler shuffles)", 2)
  end
  local tmt = getmetatable(opts.transform)
  if opts.transform ~= nil and type(opts.transform) ~= "function" and not (type(tmt) == "table" and tmt.__call) then
    error("DataLoader: transform must be a function or a transform, got " .. type(opts.transform), 2)
  end
  return setmetatable({
    dataset = ds,
    batch_size = bs,
    shuffle = opts.shuffle and true or false,
    drop_last = opts.drop_last and true or false,
    seed = opts.seed,
    collate = opts.collate,
    transform = opts.transform,
    sampler = s,
  }, DataLoader)
end
setmetatable(DataLoader, {__call = new})

-- samples an epoch: the sampler's share (#sampler when it has a length,
-- else its indices' count), or the whole dataset
local function epoch_size(self)
  local s = self.sampler
  if s then
    local mt = getmetatable(s)
    if type(mt) == "table" and mt.__len then return #s end
    return s:indices():numel()
  end
  return self.dataset:len()
end

function DataLoader:__len()
  local n = epoch_size(self)
  if self.drop_last then return n // self.batch_size end
  return (n + self.batch_size - 1) // self.batch_size
end

function DataLoader:__tostring()
  return string.format("DataLoader(%s, batch_size=%d, shuffle=%s, drop_last=%s)", tostring(self.dataset),
    self.batch_size, tostring(self.shuffle), tostring(self.drop_last))
end

-- The sample order of one epoch: the sampler's indices, a fresh permutation
-- when shuffling (from the loader's own generator when it has a seed), else
-- 1..n (cached).
function DataLoader:_order(n)
  if self.sampler then return self.sampler:indices() end
  if self.shuffle then return data._with_rng(self, dl.randperm, n) end
  if not self._arange or self._arange:numel() ~= n then self._arange = dl.arange(1, n + 1) end
  return self._arange
end

local function unpack_batch(b)
  local n = #b
  if n == 1 then return b[1] end
  if n == 2 then return b[1], b[2] end
  return table.unpack(b, 1, n)
end

-- the batch's values, its first one through the loader's transform (drawing
-- from the loader's generator when it has a seed)
local function transformed(self, first, ...)
  if self.transform == nil then return first, ... end
  return data._with_rng(self, self.transform, first), ...
end

-- for xb, yb in loader:iter() do ... end; also `for xb, yb in loader do`
-- (one pass at a time: the loader keeps it) and `loader()` (= loader:iter())
function DataLoader:__call(...)
  if select("#", ...) == 0 then return self:iter() end
  -- the generic for's call: (state, control), control nil on a loop's
  -- first call, else the batch it got last, which names its pass (so
  -- loops over one loader, nested or not, each go their own way)
  local _, control = ...
  local passes = self._passes
  if not passes then
    passes = setmetatable({}, {__mode = "k"})
    self._passes = passes
  end
  local pass
  if control == nil then
    pass = self:iter()
  else
    pass = passes[control]
    passes[control] = nil
    if not pass then error("DataLoader: this loop's pass is unknown (iterate with loader:iter())", 2) end
  end
  local r = table.pack(pass())
  if r[1] ~= nil then passes[r[1]] = pass end
  return table.unpack(r, 1, r.n)
end

function DataLoader:iter()
  local ds, bs = self.dataset, self.batch_size
  local n = epoch_size(self)
  local nb = #self
  local order = self:_order(n)
  local collate = self.collate or data.default_collate
  local fast = self.collate == nil and ds.get_batch ~= nil
  local b = 0
  return function()
    b = b + 1
    if b > nb then return nil end
    local start = (b - 1) * bs + 1
    local idx = order:narrow(1, start, math.min(bs, n - start + 1))
    if fast then
      local out = ds:get_batch(idx)
      if out then return transformed(self, unpack_batch(out)) end
      fast = false
    end
    local samples = {}
    for j = 1, idx:numel() do samples[j] = table.pack(ds:get(idx:get(j))) end
    return transformed(self, collate(samples))
  end
end

return DataLoader
