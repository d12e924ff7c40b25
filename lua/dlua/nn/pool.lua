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
-- spatial dim is pooled in turn (one narrow and one reduction per window),
-- the last dim first: a max then goes to the first maximum in row-major
-- order, as PyTorch's loops pick it. With indices, each step also keeps
-- where along its dim the kept element came from; earlier steps' positions
-- follow by gather, and the end gives the 1-based flat index in the plane.

-- 1-based positions along dim of a tensor shaped like `like` (size n there),
-- (j - 1) * step added at position j
local function positions(like, dim, n, step)
  local shape = {}
  for d = 1, like:dim() do shape[d] = 1 end
  shape[dim] = n
  return (dl.arange(0, n, {device = like.device}) * step):view(shape):expand(like:size())
end

local function adaptive(fn, nd, x, output_size, reduce, want_idx)
  local xb, unbatched = batched(fn, x, nd)
  local out = tuple(fn, "output_size", output_size, nd, 1)
  local y, at = xb, {}
  for i = nd, 1, -1 do
    local dim, n, m = 2 + i, xb:size(2 + i), out[i]
    if n == 0 then fail(fn, "input %s is empty in spatial dim %d", checks.shape_str(x), i) end
    local pos -- with indices: the 1-based position along dim of each kept element
    if m == n then
      if want_idx then pos = positions(y, dim, n, 1) + 1 end
    elseif n % m == 0 then
      -- equal windows: one reshape and one reduction
      local shape = y:size()
      shape[dim] = m
      table.insert(shape, dim + 1, n // m)
      local v, a = reduce(y:reshape(shape), dim + 1)
      if want_idx then pos = a + positions(v, dim, m, n // m) end
      y = v
    else
      local parts, where = {}, {}
      for j = 0, m - 1 do
        local lo, hi = (j * n) // m, -((-(j + 1) * n) // m)
        local v, a = reduce(y:narrow(dim, lo + 1, hi - lo), dim)
        parts[j + 1] = v:unsqueeze(dim)
        if want_idx then where[j + 1] = (a + lo):unsqueeze(dim) end
      end
      y = dl.cat(parts, dim)
      if want_idx then pos = dl.cat(where, dim) end
    end
    if want_idx then
      for d, p in pairs(at) do at[d] = p:gather(dim, pos) end
      at[i] = pos
    end
  end
  local idx
  if want_idx then
    local stride = 1
    idx = at[nd]
    for i = nd - 1, 1, -1 do
      stride = stride * xb:size(3 + i)
      idx = idx + (at[i] - 1) * stride
    end
    if unbatched then idx = idx:squeeze(1) end
  end
  if unbatched then y = y:squeeze(1) end
  return y, idx
end

local function mean_of(t, dim) return t:mean(dim) end
local function max_of(t, dim) return t:max(dim) end -- values and 1-based positions; the gradient to the first maximum

local adaptive_max_opts = {return_indices = true}

for nd = 1, 2 do
  local afn, mfn = fmt("dl.F.adaptive_avg_pool%dd", nd), fmt("dl.F.adaptive_max_pool%dd", nd)
  -- F.adaptive_avg_poolNd(x, output_size)
  F[fmt("adaptive_avg_pool%dd", nd)] = function(x, output_size) return (adaptive(afn, nd, x, output_size, mean_of)) end
  -- F.adaptive_max_poolNd(x, output_size, {return_indices = false}): with
  -- return_indices also the 1-based flat index of each maximum in its plane
  F[fmt("adaptive_max_pool%dd", nd)] = function(x, output_size, opts)
    local o = check_options(mfn, opts, adaptive_max_opts)
    local y, idx = adaptive(mfn, nd, x, output_size, max_of, o.return_indices)
    if o.return_indices then return y, idx end
    return y
  end
  for kind, reduce in pairs({Avg = mean_of, Max = max_of}) do
    local name = fmt("Adaptive%sPool%dd", kind, nd)
    local M = nn.Module:extend(name)
    nn[name] = M
    if kind == "Max" then
      -- AdaptiveMaxPoolNd(output_size, {return_indices = false})
      function M:init(output_size, opts)
        self.output_size = tuple("dl.nn." .. name, "output_size", output_size, nd, 1)
        self.return_indices = check_options("dl.nn." .. name, opts, adaptive_max_opts).return_indices == true
      end
      function M:forward(x)
        local y, idx = adaptive(nil, nd, x, self.output_size, reduce, self.return_indices)
        if self.return_indices then return y, idx end
        return y
      end
    else
      function M:init(output_size) self.output_size = tuple("dl.nn." .. name, "output_size", output_size, nd, 1) end
      function M:forward(x) return (adaptive(nil, nd, x, self.output_size, reduce)) end
    end
    function M:extra_repr() return fmt("output_size=%s", tuple_str(self.output_size)) end
  end
end

return nn
