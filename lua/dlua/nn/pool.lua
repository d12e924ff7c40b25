-- dlua.nn.pool: pooling (MaxPool1d/2d/3d, AvgPool1d/2d/3d,
-- AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d) and their functional forms in
-- dl.F. Max pooling is the op dl.max_pool (one pass, the argmax kept for the
-- backward); average pooling sums each window of dl.im2col over its count.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"
local S = require "dlua.nn.spatial"

local im2col, max_pool_op = dl.im2col, dl.max_pool
local fmt = string.format
local check_options = checks.options
local pybool = nn._pybool
local fail, tuple, tuple_str, batched, spatial_view = S.fail, S.tuple, S.tuple_str, S.batched, S.spatial_view

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

---------------------------------------------------------------------------
-- Adaptive pooling: output sizes given, window i of a dim covering
-- [floor(i n / m), ceil((i + 1) n / m)) (PyTorch's); separable, so each
-- spatial dim is pooled in turn (one narrow and one reduction per window)

local function adaptive(fn, nd, x, output_size, reduce)
  local xb, unbatched = batched(fn, x, nd)
  local out = tuple(fn, "output_size", output_size, nd, 1)
  local y = xb
  for i = 1, nd do
    local dim, n, m = 2 + i, xb:size(2 + i), out[i]
    if n == 0 then fail(fn, "input %s is empty in spatial dim %d", checks.shape_str(x), i) end
    if n % m == 0 then
      -- equal windows: one reshape and one reduction
      local shape = y:size()
      shape[dim] = m
      table.insert(shape, dim + 1, n // m)
      y = reduce(y:reshape(shape), dim + 1)
    elseif m ~= n then
      local parts = {}
      for j = 0, m - 1 do
        local a, b = (j * n) // m, -((-(j + 1) * n) // m)
        parts[j + 1] = reduce(y:narrow(dim, a + 1, b - a), dim):unsqueeze(dim)
      end
      y = dl.cat(parts, dim)
    end
  end
  if unbatched then y = y:squeeze(1) end
  return y
end

local function mean_of(t, dim) return t:mean(dim) end
local function max_of(t, dim) return (t:max(dim)) end -- the gradient to the first maximum, as PyTorch's

for nd = 1, 2 do
  local afn, mfn = fmt("dl.F.adaptive_avg_pool%dd", nd), fmt("dl.F.adaptive_max_pool%dd", nd)
  -- F.adaptive_avg_poolNd(x, output_size), F.adaptive_max_poolNd(x, output_size)
  F[fmt("adaptive_avg_pool%dd", nd)] = function(x, output_size) return adaptive(afn, nd, x, output_size, mean_of) end
  F[fmt("adaptive_max_pool%dd", nd)] = function(x, output_size) return adaptive(mfn, nd, x, output_size, max_of) end
  for kind, reduce in pairs({Avg = mean_of, Max = max_of}) do
    local name = fmt("Adaptive%sPool%dd", kind, nd)
    local M = nn.Module:extend(name)
    nn[name] = M
    function M:init(output_size) self.output_size = tuple("dl.nn." .. name, "output_size", output_size, nd, 1) end
    function M:forward(x) return adaptive(nil, nd, x, self.output_size, reduce) end
    function M:extra_repr() return fmt("output_size=%s", tuple_str(self.output_size)) end
  end
end

return nn
