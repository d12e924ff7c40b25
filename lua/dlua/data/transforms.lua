-- dl.data.transforms: image transforms for training, on batches [N, C, H, W]
-- (or one image [C, H, W]) on the tensors' device: Compose, RandomCrop,
-- RandomHorizontalFlip, Normalize. A DataLoader given {transform = t}
-- applies t to the first value of each batch, drawing from the loader's own
-- generator when it has a seed (so a seeded run sees the same crops).
local dl = require "dlua"
local class = require "dlua.class"
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local fmt = string.format
local T = {}
dl.data.transforms = T

local Transform = class.root("Transform", "dl.data.transforms.Transform")
Transform.__call = function(self, x) return self:forward(x) end

-- x as a batch [N, C, H, W], and whether it was one image
local function batch_of(name, x)
  if not dl.is_tensor(x) or (x:dim() ~= 3 and x:dim() ~= 4) then
    raise(fmt("%s: expected an image [C, H, W] or a batch [N, C, H, W], got %s", name,
      dl.is_tensor(x) and checks.shape_str(x) or type(x)))
  end
  if x:dim() == 3 then return x:unsqueeze(1), true end
  return x, false
end

---------------------------------------------------------------------------

-- Compose{t1, t2, ...}: each transform (or function) in turn
local Compose = class.extend(Transform, "Compose")
T.Compose = Compose
function Compose:init(list)
  if type(list) ~= "table" then raise("dl.data.transforms.Compose: bad argument #1 (a list of transforms expected)") end
  checks.list("dl.data.transforms.Compose", 1, list)
  for i, t in ipairs(list) do
    local mt = getmetatable(t)
    if type(t) ~= "function" and not (type(mt) == "table" and mt.__call) then
      raise(fmt("dl.data.transforms.Compose: entry %d is a %s, not a transform", i, type(t)))
    end
  end
  self.transforms = list
end
function Compose:forward(x)
  for _, t in ipairs(self.transforms) do x = t(x) end
  return x
end
function Compose:__tostring()
  local parts = {}
  for i, t in ipairs(self.transforms) do parts[i] = "    " .. tostring(t) end
  return "Compose(\n" .. table.concat(parts, "\n") .. "\n)"
end

---------------------------------------------------------------------------

-- RandomCrop(size, {padding = 0}): each image zero-padded by `padding` on
-- every side, then cut to size ([h, w] or a number) at a random place
local RandomCrop = class.extend(Transform, "RandomCrop")
T.RandomCrop = RandomCrop
function RandomCrop:init(size, opts)
  local fn = "dl.data.transforms.RandomCrop"
  if math.type(size) == "integer" then size = {size, size} end
  if type(size) ~= "table" or #size ~= 2 then raise(fn .. ": size must be an integer or {h, w}") end
  checks.count(fn, 1, "size[1]", size[1], 1)
  checks.count(fn, 1, "size[2]", size[2], 1)
  opts = checks.options(fn, opts, {padding = true})
  self.size = {size[1], size[2]}
  self.padding = checks.count(fn, 2, "padding", opts.padding or 0, 0)
end
function RandomCrop:forward(x)
  local xb, one = batch_of("RandomCrop", x)
  local N, C, H, W = table.unpack(xb:size())
  local p, h, w = self.padding, self.size[1], self.size[2]
  if H + 2 * p < h or W + 2 * p < w then
    raise(fmt("RandomCrop: image %s (padded by %d) is smaller than the crop %dx%d", checks.shape_str(x), p, h, w))
  end
  local src = xb
  if p > 0 then
    src = dl.zeros({N, C, H + 2 * p, W + 2 * p}, {dtype = x.dtype, device = x.device})
    src:narrow(3, p + 1, H):narrow(4, p + 1, W):copy_(xb)
  end
  local top = dl.randint(0, H + 2 * p - h + 1, {N})
  local left = dl.randint(0, W + 2 * p - w + 1, {N})
  local out = dl.empty({N, C, h, w}, {dtype = x.dtype, device = x.device})
  for i = 1, N do
    out[i]:copy_(src[i]:narrow(2, top:get(i) + 1, h):narrow(3, left:get(i) + 1, w))
  end
  if one then return out[1] end
  return out
end
function RandomCrop:__tostring() return fmt("RandomCrop(size=(%d, %d), padding=%d)", self.size[1], self.size[2], self.padding) end

---------------------------------------------------------------------------

-- RandomHorizontalFlip(p = 0.5): each image mirrored left-right with
-- probability p
local RandomHorizontalFlip = class.extend(Transform, "RandomHorizontalFlip")
T.RandomHorizontalFlip = RandomHorizontalFlip
function RandomHorizontalFlip:init(p)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    raise(fmt("dl.data.transforms.RandomHorizontalFlip: p must be a probability, got %s", tostring(p)))
  end
  self.p = p
end
function RandomHorizontalFlip:forward(x)
  local xb, one = batch_of("RandomHorizontalFlip", x)
  local flip = dl.rand({xb:size(1), 1, 1, 1}, {device = x.device}):lt(self.p)
  local out = dl.where(flip, xb:flip(4), xb)
  if one then return out[1] end
  return out
end
function RandomHorizontalFlip:__tostring() return fmt("RandomHorizontalFlip(p=%s)", tostring(self.p)) end

---------------------------------------------------------------------------

-- Normalize(mean, std): (x - mean[c]) / std[c] per channel (numbers or lists)
local Normalize = class.extend(Transform, "Normalize")
T.Normalize = Normalize
function Normalize:init(mean, std)
  local fn = "dl.data.transforms.Normalize"
  local function list(name, v)
    if type(v) == "number" then v = {v} end
    if type(v) ~= "table" or #v == 0 then raise(fmt("%s: %s must be a number or a list of numbers", fn, name)) end
    checks.list(fn, 1, v)
    for i, e in ipairs(v) do
      if type(e) ~= "number" or e ~= e then raise(fmt("%s: %s[%d] must be a number, got %s", fn, name, i, tostring(e))) end
      if name == "std" and e == 0 then raise(fn .. ": std must not be 0") end
    end
    return v
  end
  self.mean, self.std = list("mean", mean), list("std", std)
  if #self.mean ~= #self.std then raise(fmt("%s: %d means but %d stds", fn, #self.mean, #self.std)) end
end
function Normalize:forward(x)
  local xb, one = batch_of("Normalize", x)
  -- as torchvision: the statistics in an integer dtype would be truncated
  if not x.dtype:find("^float") then
    raise(fmt("Normalize: the input must be a float tensor, got %s (convert it first: x:float() / 255)", x.dtype))
  end
  local C = xb:size(2)
  local n = #self.mean
  if n ~= 1 and n ~= C then raise(fmt("Normalize: %d channel statistics for input %s", n, checks.shape_str(x))) end
  local o = {dtype = x.dtype, device = x.device}
  local m = dl.tensor(self.mean, o):view(1, n, 1, 1)
  local s = dl.tensor(self.std, o):view(1, n, 1, 1)
  local out = (xb - m) / s
  if one then return out[1] end
  return out
end
function Normalize:__tostring()
  return fmt("Normalize(mean=[%s], std=[%s])", table.concat(self.mean, ", "), table.concat(self.std, ", "))
end

return T
