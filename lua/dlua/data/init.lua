-- dl.data: datasets, the DataLoader, splits and the file readers.
-- read_idx and read_csv are C (src/lua_data.c) and already sit in dl.data;
-- this file adds the dataset classes, loader.lua the DataLoader.
local dl = require "dlua"
local checks = require "dlua.checks"

local data = dl.data or {}
dl.data = data

---------------------------------------------------------------------------
-- Classes: `local D = dl.data.Dataset:extend("D")`, `function D:init(...)`,
-- `function D:len()`, `function D:get(i)` (1-based, may return several
-- values); `D(...)` builds one and `#ds` is ds:len().
---------------------------------------------------------------------------

local class = require "dlua.class"

local Dataset = class.root("Dataset", "dl.data.Dataset")
Dataset.__len = function(self) return self:len() end
Dataset.__tostring = function(self)
  local ok, n = pcall(self.len, self)
  return string.format("%s(%s)", self.__name, ok and tostring(n) or "?")
end
data.Dataset = Dataset

-- ds[i] as PyTorch's dataset[i]: sample i (1-based), its one value, or a
-- list of its values when get(i) returns several ({x, y}: local x, y =
-- table.unpack(ds[i]), or ds:get(i), which returns them as values)
local function samples_by_index(cls)
  rawset(cls, "__index", function(self, k)
    if math.type(k) == "integer" then
      local r = table.pack(self:get(k))
      if r.n == 1 then return r[1] end
      r.n = nil
      return r
    end
    return cls[k]
  end)
  return cls
end
samples_by_index(Dataset)

-- Sub = Dataset:extend("Sub")
function Dataset.extend(parent, name) return samples_by_index(class.extend(parent, name)) end

function Dataset:init() end

function Dataset:len()
  error(self.__name .. ": a Dataset subclass must define " .. self.__name .. ":len()", 2)
end

function Dataset:get()
  error(self.__name .. ": a Dataset subclass must define " .. self.__name .. ":get(i)", 2)
end

function data.is_dataset(x) return class.is_instance(x, Dataset) end

-- An index 1..n (integer-valued number) or an error naming fn.
local function check_index(fn, i, n)
  if math.type(i) ~= "integer" then
    if type(i) == "number" and i == math.floor(i) then
      i = math.tointeger(i)
    else
      error(string.format("%s: index must be an integer, got %s", fn, type(i) == "number" and tostring(i) or type(i)), 3)
    end
  end
  if i < 1 or i > n then
    error(string.format("%s: index %d out of range 1..%d", fn, i, n), 3)
  end
  return i
end
data._check_index = check_index

---------------------------------------------------------------------------
-- TensorDataset(t1, t2, ...): sample i is (t1[i], t2[i], ...) along dim 1.
---------------------------------------------------------------------------

local TensorDataset = Dataset:extend("TensorDataset")
data.TensorDataset = TensorDataset

function TensorDataset:init(...)
  local ts = table.pack(...)
  if ts.n == 0 then error("TensorDataset: at least one tensor expected", 3) end
  for k = 1, ts.n do
    local t = ts[k]
    if not dl.is_tensor(t) then
      error(string.format("TensorDataset: bad argument #%d (tensor expected, got %s)", k, type(t)), 3)
    end
    if t:dim() < 1 then
      error(string.format("TensorDataset: bad argument #%d (a 0-d tensor has no samples)", k), 3)
    end
    if t:size(1) ~= ts[1]:size(1) then
      error(string.format("TensorDataset: size mismatch, tensor 1 has %d samples but tensor %d has %d",
        ts[1]:size(1), k, t:size(1)), 3)
    end
  end
  self.tensors = {table.unpack(ts, 1, ts.n)}
  self.n = ts[1]:size(1)
end

function TensorDataset:len() return self.n end

function TensorDataset:get(i)
  i = check_index("TensorDataset:get", i, self.n)
  local ts = self.tensors
  if #ts == 1 then return ts[1]:select(1, i) end
  if #ts == 2 then return ts[1]:select(1, i), ts[2]:select(1, i) end
  local out = {}
  for k = 1, #ts do out[k] = ts[k]:select(1, i) end
  return table.unpack(out, 1, #ts)
end

-- The samples at the 1-based int64 indices idx, one index_select per tensor
-- (the DataLoader's fast path). Returns a list of tensors.
function TensorDataset:get_batch(idx)
  local out = {}
  for k, t in ipairs(self.tensors) do out[k] = t:index_select(1, idx) end
  return out
end

---------------------------------------------------------------------------
-- Subset(ds, indices): the samples of ds at indices (1-based int64 tensor
-- or Lua list).
---------------------------------------------------------------------------

local Subset = Dataset:extend("Subset")
data.Subset = Subset

function Subset:init(ds, indices)
  if not data.is_dataset(ds) then
    error("Subset: bad argument #1 (dataset expected, got " .. type(ds) .. ")", 3)
  end
  if type(indices) == "table" and not dl.is_tensor(indices) then
    indices = dl.tensor(checks.list("Subset", 2, indices), {dtype = "int64"})
  end
  if not dl.is_tensor(indices) or indices:dim() ~= 1 or indices.dtype ~= "int64" then
    error("Subset: bad argument #2 (1-D int64 tensor or list of indices expected)", 3)
  end
  local n = ds:len()
  if indices:numel() > 0 then
    local lo, hi = indices:min():item(), indices:max():item()
    if lo < 1 or hi > n then
      error(string.format("Subset: index %d out of range 1..%d", lo < 1 and lo or hi, n), 3)
    end
  end
  self.dataset, self.indices = ds, indices
end

function Subset:len() return self.indices:numel() end

function Subset:get(i)
  i = check_index("Subset:get", i, self.indices:numel())
  return self.dataset:get(self.indices:get(i))
end

function Subset:get_batch(idx)
  if not self.dataset.get_batch then return nil end
  return self.dataset:get_batch(self.indices:index_select(1, idx))
end

---------------------------------------------------------------------------
-- Randomness: with a seed, a private generator state kept in `holder.rng`
-- is swapped in around fn (the global generator is left as it was);
-- without one, the global generator (dl.manual_seed makes it reproducible).
---------------------------------------------------------------------------

function data._with_rng(holder, fn, ...)
  if holder.seed == nil then return fn(...) end
  local saved = dl.get_rng_state()
  if holder.rng == nil then
    dl.manual_seed(holder.seed)
  else
    dl.set_rng_state(holder.rng)
  end
  local ok, r = pcall(fn, ...)
  holder.rng = dl.get_rng_state()
  dl.set_rng_state(saved)
  if not ok then error(r, 0) end
  return r
end

local function check_seed(fn, seed)
  if seed ~= nil and math.type(seed) ~= "integer" then
    error(fn .. ": seed must be an integer, got " .. type(seed), 3)
  end
  return seed
end
data._check_seed = check_seed

---------------------------------------------------------------------------
-- random_split(ds, {0.8, 0.2} | {n1, n2}, {seed}) -> Subset, Subset, ...
-- Fractions are floored and the remainder handed out one by one from the
-- first split, as PyTorch does.
---------------------------------------------------------------------------

function data.random_split(ds, lengths, opts)
  if not data.is_dataset(ds) then
    error("random_split: bad argument #1 (dataset expected, got " .. type(ds) .. ")", 2)
  end
  if type(lengths) ~= "table" or #lengths == 0 then
    error("random_split: bad argument #2 (list of lengths or fractions expected)", 2)
  end
  opts = opts or {}
  local seed = check_seed("random_split", opts.seed)
  local n = ds:len()
  local sizes, total, all_int = {}, 0, true
  for k, v in ipairs(lengths) do
    if type(v) ~= "number" or v < 0 then
      error(string.format("random_split: bad argument #2 (entry %d must be a non-negative number)", k), 2)
    end
    if math.type(v) ~= "integer" then all_int = false end
    total = total + v
  end
  if all_int then
    if total ~= n then
      error(string.format("random_split: lengths sum to %d but the dataset has %d samples", total, n), 2)
    end
    for k, v in ipairs(lengths) do sizes[k] = v end
  else
    if math.abs(total - 1) > 1e-6 then
      error(string.format("random_split: fractions sum to %g, expected 1", total), 2)
    end
    local used = 0
    for k, v in ipairs(lengths) do
      sizes[k] = math.floor(n * v)
      used = used + sizes[k]
    end
    for k = 0, n - used - 1 do
      local j = k % #sizes + 1
      sizes[j] = sizes[j] + 1
    end
  end
  local perm = data._with_rng({seed = seed}, dl.randperm, n)
  local out, start = {}, 1
  for k, s in ipairs(sizes) do
    out[k] = Subset(ds, perm:narrow(1, start, s))
    start = start + s
  end
  return table.unpack(out)
end

---------------------------------------------------------------------------
-- kfold(n, k, {shuffle, seed}) -> {{train_idx, val_idx}, ...}: k folds of
-- 1-based int64 indices; the first n % k folds hold one extra sample.
---------------------------------------------------------------------------

function data.kfold(n, k, opts)
  if math.type(n) ~= "integer" or n < 1 then
    error("kfold: bad argument #1 (positive integer expected)", 2)
  end
  if math.type(k) ~= "integer" or k < 2 or k > n then
    error(string.format("kfold: bad argument #2 (number of folds must be an integer in 2..%d)", n), 2)
  end
  opts = opts or {}
  local seed = check_seed("kfold", opts.seed)
  local idx
  if opts.shuffle then
    idx = data._with_rng({seed = seed}, dl.randperm, n)
  else
    idx = dl.arange(1, n + 1)
  end
  local folds, start = {}, 1
  for f = 1, k do
    local size = n // k + (f <= n % k and 1 or 0)
    local val = idx:narrow(1, start, size):clone()
    local parts = {}
    if start > 1 then parts[#parts + 1] = idx:narrow(1, 1, start - 1) end
    if start + size <= n then parts[#parts + 1] = idx:narrow(1, start + size, n - start - size + 1) end
    local train = #parts == 1 and parts[1]:clone() or dl.cat(parts)
    folds[f] = {train, val, train = train, val = val}
    start = start + size
  end
  return folds
end

require "dlua.data.loader"
require "dlua.data.transforms"
require "dlua.data.sampler"   -- DistributedSampler

return data
