-- dlua.nn.conv: convolution and pooling (Conv1d/2d/3d, MaxPool1d/2d/3d,
-- AvgPool1d/2d/3d, Unfold, Fold) and their functional forms in dl.F.
--
-- A convolution is dl.convolution (src/autograd/grad_conv.c): oneDNN's on
-- the CPU in float32, else the sliding-window op dl.im2col and one GEMM for
-- the whole batch (groups as a batch of GEMMs). Pooling is built on
-- dl.im2col (PyTorch's F.unfold; dl.col2im is F.fold): average pooling sums
-- each window over its count; max pooling is its own op, dl.max_pool (one
-- pass, the argmax kept for the backward). The window ops are linear and each other's
-- adjoint, so every layer here is differentiable in reverse and forward
-- mode, to any order. Weights have PyTorch's layout ([out, in / groups,
-- *kernel]), so state dicts move between the two.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local im2col, col2im, convolution, max_pool_op = dl.im2col, dl.col2im, dl.convolution, dl.max_pool
local is_tensor = dl.is_tensor
local fmt = string.format
local shape_str, check_options = checks.shape_str, checks.options
local pybool = nn._pybool

-- an error naming fn ("dl.F.conv2d: ..."); a module's forward passes nil
-- and its wrapper names the module ("Conv2d(3, 16): ...")
local function fail(fn, ...)
  local msg = fmt(...)
  raise(fn and fn .. ": " .. msg or msg)
end

-- v (a number or a list of nd integers >= min) as a list of nd, for fn's
-- argument called name
local function tuple(fn, name, v, nd, min)
  if math.type(v) == "integer" then
    if v < min then fail(fn, "%s must be >= %d, got %d", name, min, v) end
    local t = {}
    for i = 1, nd do t[i] = v end
    return t
  end
  if type(v) ~= "table" or is_tensor(v) then
    fail(fn, "%s must be an integer or a list of %d integers, got %s", name, nd,
      type(v) == "number" and tostring(v) or type(v))
  end
  checks.list(fn, 1, v)
  if #v ~= nd then fail(fn, "%s must have %d values (one per spatial dim), got %d", name, nd, #v) end
  for i = 1, nd do
    if math.type(v[i]) ~= "integer" or v[i] < min then
      fail(fn, "%s must hold integers >= %d, got %s", name, min, tostring(v[i]))
    end
  end
  return v
end

local function tuple_str(t)
  if #t == 1 then return fmt("(%d,)", t[1]) end
  return "(" .. table.concat(t, ", ") .. ")"
end

-- x as [N, C, *S] for nd spatial dims, and whether it came unbatched ([C, *S])
local function batched(fn, x, nd)
  if not is_tensor(x) then fail(fn, "input must be a tensor, got %s", type(x)) end
  local d = x:dim()
  if d == nd + 2 then return x, false end
  if d == nd + 1 then return x:unsqueeze(1), true end
  fail(fn, "expected a %dD (unbatched) or %dD (batched) input, got %s", nd + 1, nd + 2, shape_str(x))
end

-- the spatial sizes of y [N, C, L] as dims of x [N, C, *S] with out sizes
local function spatial_view(y, N, C, out)
  local shape = {N, C}
  for i = 1, #out do shape[2 + i] = out[i] end
  return y:view(shape)
end

-- the number of windows along each dim
local function out_sizes(size, k, s, d, lo, hi)
  local o = {}
  for i = 1, #size do o[i] = (size[i] + lo[i] + hi[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 end
  return o
end

---------------------------------------------------------------------------
-- Unfold / Fold (PyTorch's F.unfold, F.fold: any of 1 to 3 spatial dims)
---------------------------------------------------------------------------

local fold_opts = {dilation = true, padding = true, stride = true}

-- F.unfold(x, kernel_size, {dilation = 1, padding = 0, stride = 1}):
-- x [N, C, *S] -> [N, C * prod(kernel_size), windows]
function F.unfold(x, kernel_size, opts)
  opts = check_options("dl.F.unfold", opts, fold_opts)
  return im2col(x, kernel_size, opts)
end

-- F.fold(cols, output_size, kernel_size, {dilation, padding, stride}):
-- [N, C * prod(kernel_size), windows] -> [N, C, *output_size], overlaps summed
function F.fold(cols, output_size, kernel_size, opts)
  opts = check_options("dl.F.fold", opts, fold_opts)
  return col2im(cols, output_size, kernel_size, opts)
end

local Unfold = nn.Module:extend("Unfold")
nn.Unfold = Unfold
function Unfold:init(kernel_size, opts)
  self.kernel_size = kernel_size
  self.opts = check_options("dl.nn.Unfold", opts, fold_opts)
end
function Unfold:forward(x) return im2col(x, self.kernel_size, self.opts) end

local Fold = nn.Module:extend("Fold")
nn.Fold = Fold
function Fold:init(output_size, kernel_size, opts)
  self.output_size, self.kernel_size = output_size, kernel_size
  self.opts = check_options("dl.nn.Fold", opts, fold_opts)
end
function Fold:forward(x) return col2im(x, self.output_size, self.kernel_size, self.opts) end

---------------------------------------------------------------------------
-- Convolution
---------------------------------------------------------------------------

local conv_fopts = {stride = true, padding = true, dilation = true, groups = true}

-- conv over nd spatial dims: x [N, C, *S] (or [C, *S]), w [O, C / groups, *k], b [O] or nil
local function conv(fn, nd, x, w, b, o)
  o = check_options(fn, o, conv_fopts)
  local xb, unbatched = batched(fn, x, nd)
  if not is_tensor(w) or w:dim() ~= nd + 2 then
    fail(fn, "weight must be a %dD tensor [out, in / groups, *kernel], got %s", nd + 2,
      is_tensor(w) and shape_str(w) or type(w))
  end
  local groups = o.groups or 1
  if math.type(groups) ~= "integer" or groups < 1 then
    fail(fn, "groups must be an integer >= 1, got %s", tostring(groups))
  end
  local N, C, O = xb:size(1), xb:size(2), w:size(1)
  if C ~= w:size(2) * groups then
    fail(fn, "input %s has %d channels, but weight %s with groups = %d expects %d", shape_str(x), C,
      shape_str(w), groups, w:size(2) * groups)
  end
  if O % groups ~= 0 then
    fail(fn, "out channels %d (weight %s) are not divisible by groups = %d", O, shape_str(w), groups)
  end
  if b ~= nil and (not is_tensor(b) or b:dim() ~= 1 or b:size(1) ~= O) then
    fail(fn, "bias must be a tensor [%d], got %s", O, is_tensor(b) and shape_str(b) or type(b))
  end
  local k, S = {}, {}
  for i = 1, nd do k[i], S[i] = w:size(2 + i), xb:size(2 + i) end
  local s = tuple(fn, "stride", o.stride or 1, nd, 1)
  local d = tuple(fn, "dilation", o.dilation or 1, nd, 1)
  local lo, hi
  local p = o.padding or 0
  if p == "valid" then
    lo = tuple(fn, "padding", 0, nd, 0)
    hi = lo
  elseif p == "same" then
    -- PyTorch's "same": total padding d (k - 1), the odd one on the right
    lo, hi = {}, {}
    for i = 1, nd do
      if s[i] ~= 1 then fail(fn, "padding = 'same' needs stride 1, got stride %s", tuple_str(s)) end
      local total = d[i] * (k[i] - 1)
      lo[i], hi[i] = total // 2, total - total // 2
    end
  else
    if type(p) == "string" then fail(fn, "padding must be 'same', 'valid' or sizes, got '%s'", p) end
    lo = tuple(fn, "padding", p, nd, 0)
    hi = lo
  end
  local out = out_sizes(S, k, s, d, lo, hi)
  for i = 1, nd do
    if out[i] < 1 then
      fail(fn, "input %s (padded: %d in spatial dim %d) is smaller than the kernel %s (dilated: %d)", shape_str(x), S[i] + lo[i] + hi[i], i, shape_str(w), d[i] * (k[i] - 1) + 1)
    end
  end
  local y = convolution(xb, w, b, {stride = s, dilation = d, padding = lo, padding_end = hi, groups = groups})
  if unbatched then y = y:squeeze(1) end
  return y
end

-- F.conv1d/conv2d/conv3d(x, weight, bias, {stride = 1, padding = 0 | 'same' |
-- 'valid', dilation = 1, groups = 1})
for nd = 1, 3 do
  local fn = fmt("dl.F.conv%dd", nd)
  F[fmt("conv%dd", nd)] = function(x, w, b, opts) return conv(fn, nd, x, w, b, opts) end
end

local conv_opts = {stride = true, padding = true, dilation = true, groups = true, bias = true, dtype = true,
  device = true}

-- ConvNd(in, out, kernel_size, {stride, padding, dilation, groups, bias =
-- true, dtype, device}): weight [out, in / groups, *kernel], bias [out],
-- initialised as PyTorch's (uniform in +-1/sqrt(fan_in))
local function conv_class(nd)
  local name = fmt("Conv%dd", nd)
  local fn = "dl.nn." .. name
  local M = nn.Module:extend(name)
  nn[name] = M
  function M:init(in_channels, out_channels, kernel_size, opts)
    checks.count(fn, 1, "in_channels", in_channels, 1)
    checks.count(fn, 2, "out_channels", out_channels, 1)
    opts = check_options(fn, opts, conv_opts)
    local groups = opts.groups or 1
    checks.count(fn, 4, "groups", groups, 1)
    if in_channels % groups ~= 0 or out_channels % groups ~= 0 then
      fail(fn, "in_channels %d and out_channels %d must both be divisible by groups = %d", in_channels,
        out_channels, groups)
    end
    self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
    self.kernel_size = tuple(fn, "kernel_size", kernel_size, nd, 1)
    self.stride = tuple(fn, "stride", opts.stride or 1, nd, 1)
    self.dilation = tuple(fn, "dilation", opts.dilation or 1, nd, 1)
    local p = opts.padding or 0
    if p == "same" or p == "valid" then
      if p == "same" then
        for i = 1, nd do
          if self.stride[i] ~= 1 then fail(fn, "padding = 'same' needs stride 1") end
        end
      end
      self.padding = p
    else
      self.padding = tuple(fn, "padding", p, nd, 0)
    end
    local shape = {out_channels, in_channels // groups}
    for i = 1, nd do shape[2 + i] = self.kernel_size[i] end
    local to = {dtype = opts.dtype, device = opts.device}
    self.weight = nn.Parameter(dl.empty(shape, to))
    if opts.bias ~= false then
      self.bias = nn.Parameter(dl.empty(out_channels, to))
    else
      self:register_parameter("bias", nil)
    end
    self:reset_parameters()
  end
  function M:reset_parameters() nn._reset_uniform(self, self.weight:numel() // self.out_channels) end
  local call = {}
  function M:forward(x)
    call.stride, call.padding, call.dilation, call.groups = self.stride, self.padding, self.dilation, self.groups
    return conv(nil, nd, x, self.weight, self.bias, call)
  end
  function M:_label() return fmt("%s(%d, %d)", name, self.in_channels, self.out_channels) end
  function M:extra_repr()
    local parts = {fmt("%d, %d, kernel_size=%s, stride=%s", self.in_channels, self.out_channels,
      tuple_str(self.kernel_size), tuple_str(self.stride))}
    local p = self.padding
    if type(p) == "string" then
      parts[#parts + 1] = fmt("padding=%s", p)
    else
      for i = 1, nd do
        if p[i] ~= 0 then parts[#parts + 1] = fmt("padding=%s", tuple_str(p)); break end
      end
    end
    for i = 1, nd do
      if self.dilation[i] ~= 1 then parts[#parts + 1] = fmt("dilation=%s", tuple_str(self.dilation)); break end
    end
    if self.groups ~= 1 then parts[#parts + 1] = fmt("groups=%d", self.groups) end
    if not self.bias then parts[#parts + 1] = "bias=False" end
    return table.concat(parts, ", ")
  end
end
for nd = 1, 3 do conv_class(nd) end

---------------------------------------------------------------------------
-- Pooling
---------------------------------------------------------------------------

-- the window of a pooling layer: kernel, stride (default: the kernel),
-- padding (at most half the kernel), dilation, and in ceil mode the extra
-- padding at the end that makes the floor count the ceil one (a last window
-- must still start inside the input or its left padding)
local function pool_window(fn, nd, S, kernel_size, o, dilated)
  local k = tuple(fn, "kernel_size", kernel_size, nd, 1)
  local s = tuple(fn, "stride", o.stride or k, nd, 1)
  local p = tuple(fn, "padding", o.padding or 0, nd, 0)
  local d = dilated and tuple(fn, "dilation", o.dilation or 1, nd, 1) or tuple(fn, "dilation", 1, nd, 1)
  local hi, out = {}, {}
  for i = 1, nd do
    if 2 * p[i] > k[i] then
      fail(fn, "padding %s should be at most half of the kernel size %s", tuple_str(p), tuple_str(k))
    end
    local span = d[i] * (k[i] - 1) + 1
    local room = S[i] + 2 * p[i] - span
    if room < 0 then
      fail(fn, "input spatial size %d (padded: %d) in dim %d is smaller than the kernel (%d)", S[i],
        S[i] + 2 * p[i], i, span)
    end
    local n = room // s[i] + 1
    if o.ceil_mode and room % s[i] ~= 0 then
      n = n + 1
      -- the last window must start inside the input or the left padding
      if (n - 1) * s[i] >= S[i] + p[i] then n = n - 1 end
    end
    out[i] = n
    hi[i] = p[i] + math.max(0, (n - 1) * s[i] + span - (S[i] + 2 * p[i]))
  end
  return {kernel = k, stride = s, padding = p, padding_end = hi, dilation = d, out = out}
end

-- a pooling layer's input as planes [N C, 1, *S] (each channel pooled on
-- its own), whether it came unbatched, N, C, S and the window
local function pool_input(fn, nd, x, kernel_size, o, dilated)
  local xb, unbatched = batched(fn, x, nd)
  local N, C, S = xb:size(1), xb:size(2), {}
  for i = 1, nd do S[i] = xb:size(2 + i) end
  local w = pool_window(fn, nd, S, kernel_size, o, dilated)
  local planes = {N * C, 1}
  for i = 1, nd do planes[2 + i] = S[i] end
  return xb:reshape(planes), unbatched, N, C, S, w
end

local max_opts = {stride = true, padding = true, dilation = true, ceil_mode = true, return_indices = true}

-- max pooling over nd spatial dims; with return_indices also the 1-based
-- flat index of each maximum in its input plane (PyTorch's are 0-based)
local function max_pool(fn, nd, x, kernel_size, o)
  local planes, unbatched, N, C, S, w = pool_input(fn, nd, x, kernel_size, check_options(fn, o, max_opts), true)
  o = o or {}
  local y, idx = max_pool_op(planes, w.kernel, {stride = w.stride, dilation = w.dilation, padding = w.padding,
    padding_end = w.padding_end}) -- [N C, 1, *out]
  y = spatial_view(y, N, C, w.out)
  if unbatched then y = y:squeeze(1) end
  if not o.return_indices then return y end
  idx = spatial_view(idx, N, C, w.out)
  if unbatched then idx = idx:squeeze(1) end
  return y, idx
end

local avg_opts = {stride = true, padding = true, ceil_mode = true, count_include_pad = true, divisor_override = true}

-- average pooling: the sum of each window over its count (the padded
-- input's taps with count_include_pad, else the input's; never the extra
-- taps of ceil mode), or over divisor_override
local function avg_pool(fn, nd, x, kernel_size, o)
  local planes, unbatched, N, C, S, w = pool_input(fn, nd, x, kernel_size, check_options(fn, o, avg_opts), false)
  o = o or {}
  local win = {stride = w.stride, padding = w.padding, padding_end = w.padding_end}
  local sums = im2col(planes, w.kernel, win):sum(2) -- [N C, L]
  local div = o.divisor_override
  if div ~= nil then
    if math.type(div) ~= "integer" or div < 1 then
      fail(fn, "divisor_override must be an integer >= 1, got %s", tostring(div))
    end
  else
    -- the count of each window: taps on ones (the padded input's, or the input's)
    local include = o.count_include_pad ~= false
    local shape, extra = {1, 1}, {}
    for i = 1, nd do
      shape[2 + i] = include and S[i] + 2 * w.padding[i] or S[i]
      extra[i] = w.padding_end[i] - w.padding[i]
    end
    local ones = dl.ones(shape, {dtype = x.dtype, device = x.device})
    local cw = include and {stride = w.stride, padding = 0, padding_end = extra}
      or {stride = w.stride, padding = w.padding, padding_end = w.padding_end}
    div = im2col(ones, w.kernel, cw):sum(2) -- [1, L]
  end
  local y = spatial_view(sums / div, N, C, w.out)
  if unbatched then y = y:squeeze(1) end
  return y
end

for nd = 1, 3 do
  local mfn, afn = fmt("dl.F.max_pool%dd", nd), fmt("dl.F.avg_pool%dd", nd)
  -- F.max_poolNd(x, kernel_size, {stride = kernel_size, padding = 0,
  -- dilation = 1, ceil_mode = false, return_indices = false})
  F[fmt("max_pool%dd", nd)] = function(x, kernel_size, opts) return max_pool(mfn, nd, x, kernel_size, opts) end
  -- F.avg_poolNd(x, kernel_size, {stride = kernel_size, padding = 0,
  -- ceil_mode = false, count_include_pad = true, divisor_override})
  F[fmt("avg_pool%dd", nd)] = function(x, kernel_size, opts) return avg_pool(afn, nd, x, kernel_size, opts) end
end

local function pool_class(kind, nd, allowed, pool)
  local name = fmt("%sPool%dd", kind, nd)
  local fn = "dl.nn." .. name
  local M = nn.Module:extend(name)
  nn[name] = M
  function M:init(kernel_size, opts)
    self.kernel_size = tuple(fn, "kernel_size", kernel_size, nd, 1)
    self.opts = check_options(fn, opts, allowed)
    tuple(fn, "stride", self.opts.stride or 1, nd, 1)
    tuple(fn, "padding", self.opts.padding or 0, nd, 0)
  end
  function M:forward(x) return pool(nil, nd, x, self.kernel_size, self.opts) end
  function M:extra_repr()
    local o = self.opts
    local parts = {fmt("kernel_size=%s, stride=%s, padding=%s", tuple_str(self.kernel_size),
      tuple_str(tuple(fn, "stride", o.stride or self.kernel_size, nd, 1)), tuple_str(tuple(fn, "padding", o.padding or 0, nd, 0)))}
    if kind == "Max" then
      parts[#parts + 1] = fmt("dilation=%s, ceil_mode=%s", tuple_str(tuple(fn, "dilation", o.dilation or 1, nd, 1)),
        pybool(o.ceil_mode == true))
    else
      parts[#parts + 1] = fmt("ceil_mode=%s, count_include_pad=%s", pybool(o.ceil_mode == true),
        pybool(o.count_include_pad ~= false))
    end
    return table.concat(parts, ", ")
  end
end
for nd = 1, 3 do
  pool_class("Max", nd, max_opts, max_pool)
  pool_class("Avg", nd, avg_opts, avg_pool)
end

return nn
