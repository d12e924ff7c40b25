-- dlua.nn.norm: LayerNorm, GroupNorm, InstanceNorm1d/2d, RMSNorm, Dropout2d,
-- Unflatten and their functional forms, composed of differentiable tensor
-- ops (so reverse mode, forward mode and double backward come with them);
-- LayerNorm is one engine op (dl._layer_norm) with rules of its own.
-- Statistics use the biased variance, as PyTorch's.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local fmt = string.format
local is_tensor = dl.is_tensor
local shape_str = checks.shape_str
local pybool = nn._pybool

local function fail(fn, ...)
  local msg = fmt(...)
  raise(fn and fn .. ": " .. msg or msg)
end

local function tensor_arg(fn, name, t, optional)
  if t == nil and optional then return nil end
  if not is_tensor(t) then fail(fn, "%s must be a tensor, got %s", name, type(t)) end
  return t
end

-- a number or a list of sizes as a list
local function sizes(fn, name, v)
  if math.type(v) == "integer" then v = {v} end
  if type(v) ~= "table" or #v == 0 then fail(fn, "%s must be an integer or a list of integers", name) end
  checks.list(fn, 1, v)
  for i, s in ipairs(v) do
    if math.type(s) ~= "integer" or s < 1 then fail(fn, "%s[%d] must be an integer >= 1, got %s", name, i, tostring(s)) end
  end
  return v
end

-- the last #shape dims of x, which must be shape
local function last_dims(fn, x, shape)
  local nd, k = x:dim(), #shape
  if nd < k then fail(fn, "input %s has fewer dims than normalized_shape [%s]", shape_str(x), table.concat(shape, ",")) end
  local dims = {}
  for i = 1, k do
    if x:size(nd - k + i) ~= shape[i] then
      fail(fn, "input %s does not end in normalized_shape [%s]", shape_str(x), table.concat(shape, ","))
    end
    dims[i] = nd - k + i
  end
  return dims
end

-- x normalised over its last #shape dims (which must be shape): mean 0, variance 1
local function normalize_last(fn, x, shape, eps)
  local dims = last_dims(fn, x, shape)
  local mean = x:mean(dims, true)
  local c = x - mean
  local var = (c * c):mean(dims, true)
  return c * (var + eps):rsqrt()
end

local function check_affine(fn, y, w, b)
  if w ~= nil then
    if not is_tensor(w) then fail(fn, "weight must be a tensor, got %s", type(w)) end
    y = y * w
  end
  if b ~= nil then
    if not is_tensor(b) then fail(fn, "bias must be a tensor, got %s", type(b)) end
    y = y + b
  end
  return y
end

---------------------------------------------------------------------------
-- LayerNorm

-- layer norm over the trailing dims of x, which must be shape, by the
-- engine's op (dl._layer_norm: one fused pass forward and one backward where
-- the device has the kernels, the same formulas as element-wise ops
-- elsewhere); weight and bias of shape, or nil
local fused_layer_norm = dl._layer_norm
local function layer_norm(fn, x, shape, w, b, eps)
  if x.dtype ~= "float32" and x.dtype ~= "float64" then
    fail(fn, "expected a float32 or float64 input, got %s", x.dtype)
  end
  last_dims(fn, x, shape)
  local N = 1
  for _, n in ipairs(shape) do N = N * n end
  for _, e in ipairs({{"weight", w}, {"bias", b}}) do
    local t = e[2]
    if t ~= nil then
      if not is_tensor(t) then fail(fn, "%s must be a tensor, got %s", e[1], type(t)) end
      local ok = t:dim() == #shape and t.dtype == x.dtype
      for i = 1, #shape do ok = ok and t:size(i) == shape[i] end
      if not ok then
        fail(fn, "%s %s (%s) must have normalized_shape [%s] and the input's dtype %s", e[1], shape_str(t), t.dtype,
          table.concat(shape, ","), x.dtype)
      end
    end
  end
  if type(eps) ~= "number" then fail(fn, "eps must be a number, got %s", type(eps)) end
  return fused_layer_norm(x, N, w, b, eps)
end

-- F.layer_norm(x, normalized_shape, weight, bias, eps = 1e-5)
function F.layer_norm(x, normalized_shape, weight, bias, eps)
  local fn = "dl.F.layer_norm"
  tensor_arg(fn, "input", x)
  local shape = sizes(fn, "normalized_shape", normalized_shape)
  if eps == nil then eps = 1e-5 end
  return layer_norm(fn, x, shape, weight, bias, eps)
end

local LayerNorm = nn.Module:extend("LayerNorm")
nn.LayerNorm = LayerNorm
-- LayerNorm(normalized_shape, {eps = 1e-5, elementwise_affine = true, bias = true, dtype, device})
function LayerNorm:init(normalized_shape, opts)
  local fn = "dl.nn.LayerNorm"
  opts = checks.options(fn, opts, {eps = true, elementwise_affine = true, bias = true, dtype = true, device = true})
  self.normalized_shape = sizes(fn, "normalized_shape", normalized_shape)
  self.eps = opts.eps or 1e-5
  self.elementwise_affine = opts.elementwise_affine ~= false
  local to = {dtype = opts.dtype, device = opts.device}
  if self.elementwise_affine then
    self.weight = nn.Parameter(dl.ones(self.normalized_shape, to))
    if opts.bias ~= false then self.bias = nn.Parameter(dl.zeros(self.normalized_shape, to)) end
  end
end
function LayerNorm:forward(x)
  tensor_arg(nil, "input", x)
  return layer_norm(nil, x, self.normalized_shape, self.weight, self.bias, self.eps)
end
function LayerNorm:extra_repr()
  local s = self.normalized_shape
  return fmt("(%s%s), eps=%g, elementwise_affine=%s", table.concat(s, ", "), #s == 1 and "," or "", self.eps,
    pybool(self.elementwise_affine))
end

---------------------------------------------------------------------------
-- RMSNorm: x / sqrt(mean(x^2) + eps) * weight over the last dims; eps
-- defaults to the dtype's machine epsilon, as PyTorch's

local EPS = {float32 = 2 ^ -23, float64 = 2 ^ -52}

local function rms_norm(fn, x, shape, weight, eps)
  local dims = last_dims(fn, x, shape)
  local y = x * ((x * x):mean(dims, true) + (eps or EPS[x.dtype] or 2 ^ -23)):rsqrt()
  return check_affine(fn, y, weight, nil)
end

-- F.rms_norm(x, normalized_shape, weight, eps)
function F.rms_norm(x, normalized_shape, weight, eps)
  local fn = "dl.F.rms_norm"
  tensor_arg(fn, "input", x)
  return rms_norm(fn, x, sizes(fn, "normalized_shape", normalized_shape), weight, eps)
end

local RMSNorm = nn.Module:extend("RMSNorm")
nn.RMSNorm = RMSNorm
-- RMSNorm(normalized_shape, {eps, elementwise_affine = true, dtype, device})
function RMSNorm:init(normalized_shape, opts)
  local fn = "dl.nn.RMSNorm"
  opts = checks.options(fn, opts, {eps = true, elementwise_affine = true, dtype = true, device = true})
  self.normalized_shape = sizes(fn, "normalized_shape", normalized_shape)
  self.eps = opts.eps
  self.elementwise_affine = opts.elementwise_affine ~= false
  if self.elementwise_affine then
    self.weight = nn.Parameter(dl.ones(self.normalized_shape, {dtype = opts.dtype, device = opts.device}))
  end
end
function RMSNorm:forward(x)
  tensor_arg(nil, "input", x)
  return rms_norm(nil, x, self.normalized_shape, self.weight, self.eps)
end
function RMSNorm:extra_repr()
  local s = self.normalized_shape
  return fmt("(%s%s), eps=%s, elementwise_affine=%s", table.concat(s, ", "), #s == 1 and "," or "",
    self.eps and fmt("%g", self.eps) or "None", pybool(self.elementwise_affine))
end

---------------------------------------------------------------------------
-- GroupNorm and InstanceNorm: per sample, over groups of channels (all
-- spatial positions), then a per-channel scale and shift

local function group_norm(fn, x, G, weight, bias, eps)
  if x:dim() < 2 then fail(fn, "expected an input [N, C, *], got %s", shape_str(x)) end
  local N, C = x:size(1), x:size(2)
  if C % G ~= 0 then fail(fn, "input %s has %d channels, not divisible by num_groups = %d", shape_str(x), C, G) end
  local per = C // G -- the group's channels times the spatial sizes (spelt out for an empty batch)
  for d = 3, x:dim() do per = per * x:size(d) end
  local y = normalize_last(fn, x:reshape(N, G, per), {per}, eps):view(x:size())
  local shape = {1, C}
  for _ = 3, x:dim() do shape[#shape + 1] = 1 end
  if weight ~= nil then
    if not is_tensor(weight) or weight:numel() ~= C then fail(fn, "weight must be a tensor of %d values", C) end
    y = y * weight:view(shape)
  end
  if bias ~= nil then
    if not is_tensor(bias) or bias:numel() ~= C then fail(fn, "bias must be a tensor of %d values", C) end
    y = y + bias:view(shape)
  end
  return y
end

-- F.group_norm(x, num_groups, weight, bias, eps = 1e-5)
function F.group_norm(x, num_groups, weight, bias, eps)
  local fn = "dl.F.group_norm"
  tensor_arg(fn, "input", x)
  checks.count(fn, 2, "num_groups", num_groups, 1)
  return group_norm(fn, x, num_groups, weight, bias, eps or 1e-5)
end

local GroupNorm = nn.Module:extend("GroupNorm")
nn.GroupNorm = GroupNorm
-- GroupNorm(num_groups, num_channels, {eps = 1e-5, affine = true, dtype, device})
function GroupNorm:init(num_groups, num_channels, opts)
  local fn = "dl.nn.GroupNorm"
  checks.count(fn, 1, "num_groups", num_groups, 1)
  checks.count(fn, 2, "num_channels", num_channels, 1)
  if num_channels % num_groups ~= 0 then
    fail(fn, "num_channels %d must be divisible by num_groups %d", num_channels, num_groups)
  end
  opts = checks.options(fn, opts, {eps = true, affine = true, dtype = true, device = true})
  self.num_groups, self.num_channels = num_groups, num_channels
  self.eps = opts.eps or 1e-5
  self.affine = opts.affine ~= false
  if self.affine then
    local to = {dtype = opts.dtype, device = opts.device}
    self.weight = nn.Parameter(dl.ones(num_channels, to))
    self.bias = nn.Parameter(dl.zeros(num_channels, to))
  end
end
function GroupNorm:forward(x)
  tensor_arg(nil, "input", x)
  if x:dim() < 2 or x:size(2) ~= self.num_channels then
    fail(nil, "input %s has %s channels, expected %d", shape_str(x), x:dim() >= 2 and x:size(2) or "no",
      self.num_channels)
  end
  return group_norm(nil, x, self.num_groups, self.weight, self.bias, self.eps)
end
function GroupNorm:extra_repr()
  return fmt("%d, %d, eps=%g, affine=%s", self.num_groups, self.num_channels, self.eps, pybool(self.affine))
end

-- InstanceNorm1d/2d(C, {eps = 1e-5, affine = false}): each (sample,
-- channel) normalised over its positions; batch statistics always (no
-- running statistics)
for nd = 1, 2 do
  local name = fmt("InstanceNorm%dd", nd)
  local fn = "dl.nn." .. name
  local M = nn.Module:extend(name)
  nn[name] = M
  function M:init(num_features, opts)
    checks.count(fn, 1, "num_features", num_features, 1)
    opts = checks.options(fn, opts, {eps = true, affine = true, dtype = true, device = true})
    self.num_features, self.eps, self.affine = num_features, opts.eps or 1e-5, opts.affine == true
    if self.affine then
      local to = {dtype = opts.dtype, device = opts.device}
      self.weight = nn.Parameter(dl.ones(num_features, to))
      self.bias = nn.Parameter(dl.zeros(num_features, to))
    end
  end
  function M:forward(x)
    tensor_arg(nil, "input", x)
    local unbatched = x:dim() == nd + 1
    if x:dim() ~= nd + 2 and not unbatched then
      fail(nil, "expected a %dD (unbatched) or %dD (batched) input, got %s", nd + 1, nd + 2, shape_str(x))
    end
    local xb = unbatched and x:unsqueeze(1) or x
    if xb:size(2) ~= self.num_features then
      fail(nil, "input %s has %d channels, expected %d", shape_str(x), xb:size(2), self.num_features)
    end
    local y = group_norm(nil, xb, self.num_features, self.weight, self.bias, self.eps)
    return unbatched and y:squeeze(1) or y
  end
  function M:extra_repr() return fmt("%d, eps=%g, affine=%s", self.num_features, self.eps, pybool(self.affine)) end
end

---------------------------------------------------------------------------
-- Dropout2d: whole channels zeroed with probability p (training only),
-- the rest scaled by 1 / (1 - p)

-- F.dropout2d(x, p = 0.5, training = true): x [N, C, H, W] or [C, H, W]
function F.dropout2d(x, p, training)
  local fn = "dl.F.dropout2d"
  tensor_arg(fn, "input", x)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    fail(fn, "dropout probability has to be between 0 and 1, but got %s", tostring(p))
  end
  if training == false or p == 0 then return x end
  if x:dim() ~= 3 and x:dim() ~= 4 then fail(fn, "expected a 3D or 4D input, got %s", shape_str(x)) end
  local shape = x:dim() == 4 and {x:size(1), x:size(2), 1, 1} or {x:size(1), 1, 1}
  if p == 1 then return x * 0 end
  local keep = dl.rand(shape, {dtype = x.dtype, device = x.device}):ge(p):to(x.dtype) / (1 - p)
  return x * keep
end

local Dropout2d = nn.Module:extend("Dropout2d")
nn.Dropout2d = Dropout2d
function Dropout2d:init(p)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    fail("dl.nn.Dropout2d", "dropout probability has to be between 0 and 1, but got %s", tostring(p))
  end
  self.p = p
end
function Dropout2d:forward(x) return F.dropout2d(x, self.p, self.training) end
function Dropout2d:extra_repr() return fmt("p=%s, inplace=False", tostring(self.p)) end

---------------------------------------------------------------------------
-- Unflatten(dim, sizes): dim split into sizes (one may be -1)

local Unflatten = nn.Module:extend("Unflatten")
nn.Unflatten = Unflatten
function Unflatten:init(dim, unflattened_size)
  local fn = "dl.nn.Unflatten"
  if math.type(dim) ~= "integer" or dim == 0 then fail(fn, "dim must be a non-zero integer, got %s", tostring(dim)) end
  if type(unflattened_size) ~= "table" or #unflattened_size == 0 then fail(fn, "unflattened_size must be a list") end
  checks.list(fn, 2, unflattened_size)
  for i, s in ipairs(unflattened_size) do
    if math.type(s) ~= "integer" or (s < 1 and s ~= -1) then
      fail(fn, "unflattened_size[%d] must be an integer >= 1 or -1, got %s", i, tostring(s))
    end
  end
  self.dim, self.unflattened_size = dim, unflattened_size
end
function Unflatten:forward(x)
  tensor_arg(nil, "input", x)
  local nd = x:dim()
  local d = self.dim < 0 and nd + 1 + self.dim or self.dim
  if d < 1 or d > nd then fail(nil, "dim %d out of range for input %s", self.dim, shape_str(x)) end
  local shape = {}
  for i = 1, d - 1 do shape[#shape + 1] = x:size(i) end
  for _, s in ipairs(self.unflattened_size) do shape[#shape + 1] = s end
  for i = d + 1, nd do shape[#shape + 1] = x:size(i) end
  return x:reshape(shape)
end
function Unflatten:extra_repr()
  return fmt("dim=%d, unflattened_size=(%s)", self.dim, table.concat(self.unflattened_size, ", "))
end

return nn
