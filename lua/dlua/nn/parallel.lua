-- dlua.nn.parallel: dl.nn.DistributedDataParallel, data parallelism over
-- dl.dist. Each rank holds the whole model and a share of each batch; the
-- gradients are averaged across ranks during backward, bucket by bucket as
-- autograd finishes them (src/dl_dist_reducer.c), so every rank takes the
-- same optimizer step as one process on the global batch would.
local dl = require "dlua"
local nn = dl.nn

local DDP = nn.Module:extend("DistributedDataParallel")
nn.DistributedDataParallel = DDP

local allowed = {bucket_mb = true, broadcast_buffers = true, find_unused_parameters = true}

-- DistributedDataParallel(model, {bucket_mb = 25, broadcast_buffers = true,
-- find_unused_parameters = false}). Wrap after moving the model to its
-- device and before building the optimizer's state. Rank 0's parameters and
-- buffers are copied to every rank now; with broadcast_buffers, its buffers
-- (BatchNorm's running statistics) again before each forward. With
-- find_unused_parameters a parameter no rank used in a step keeps a nil
-- .grad (one more small all-reduce a step); without, it gets zeros.
function DDP:init(model, opts)
  local fn = "dl.nn.DistributedDataParallel"
  if not nn.is_module(model) then
    error(fn .. ": bad argument #1 (module expected, got " .. type(model) .. ")", 3)
  end
  opts = require("dlua.checks").options(fn, opts, allowed)
  local mb = opts.bucket_mb == nil and 25 or opts.bucket_mb
  if type(mb) ~= "number" or not (mb > 0) or mb == math.huge then
    error(fn .. ": option 'bucket_mb' must be a positive number, got " .. tostring(mb), 3)
  end
  if not dl.dist.is_initialized() then
    error(fn .. ": call dl.dist.init() first", 3)
  end
  self.module = model
  rawset(self, "broadcast_buffers", opts.broadcast_buffers ~= false)
  rawset(self, "bucket_mb", mb)
  local all, params, buffers = model:parameters(), {}, model:buffers()
  for _, p in ipairs(all) do
    if p.requires_grad then params[#params + 1] = p end
  end
  -- the ranks' models agree before any broadcast: counts here, shapes and
  -- dtypes in the reducer (a mismatch is an error on every rank, not a hang)
  local counts = dl.dist.all_gather(dl.tensor({#all, #params, #buffers}))
  for r = 2, counts:size(1) do
    if not counts[r]:equal(counts[1]) then
      error(string.format("%s: the ranks wrap different models: rank 0 has %d parameters (%d requiring grad) and " ..
        "%d buffers, rank %d has %d (%d) and %d", fn, counts[1][1]:item(), counts[1][2]:item(), counts[1][3]:item(),
        r - 1, counts[r][1]:item(), counts[r][2]:item(), counts[r][3]:item()), 3)
    end
  end
  rawset(self, "_reducer", dl.dist._reducer(params, math.max(1, math.floor(mb * 1024 * 1024)),
    opts.find_unused_parameters == true))
  for _, p in ipairs(all) do dl.dist.broadcast(p.data, 0) end
  for _, b in ipairs(buffers) do dl.dist.broadcast(b, 0) end
end

function DDP:forward(...)
  if self.broadcast_buffers and dl.dist.size() > 1 then
    dl.no_grad(function()
      for _, b in ipairs(self.module:buffers()) do dl.dist.broadcast(b, 0) end
    end)
  end
  return self.module(...)
end

-- ddp:no_sync(fn): backward passes inside fn accumulate .grad locally and
-- communicate nothing; the next backward outside averages the total, as
-- PyTorch's `with ddp.no_sync():` does for gradient accumulation.
function DDP:no_sync(fn)
  if type(fn) ~= "function" then
    error("dl.nn.DistributedDataParallel:no_sync: bad argument #1 (function expected, got " .. type(fn) .. ")", 2)
  end
  local was = self._reducer:sync()
  self._reducer:set_sync(false)
  local r = table.pack(pcall(fn))
  self._reducer:set_sync(was)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

-- the number of gradient buckets (one all-reduce each per step)
function DDP:num_buckets() return self._reducer:nbuckets() end

function DDP:extra_repr()
  return string.format("bucket_mb=%g, broadcast_buffers=%s", self.bucket_mb, tostring(self.broadcast_buffers))
end

return DDP
