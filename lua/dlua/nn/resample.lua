-- dlua.nn.resample: padding (F.pad: constant, reflect, replicate,
-- circular), resizing (F.interpolate / Upsample: nearest, linear, bilinear,
-- with align_corners) and PixelShuffle / PixelUnshuffle, composed of views,
-- index_select, narrow, flip and cat, so every one is differentiable in
-- reverse and forward mode.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"
local S = require "dlua.nn.spatial"

local fmt, floor = string.format, math.floor
local is_tensor = dl.is_tensor
local shape_str = checks.shape_str
local fail = S.fail

---------------------------------------------------------------------------
-- F.pad(x, pad, {mode = "constant", value = 0}): pad = {left, right} of the
-- last dim, then {top, bottom} of the one before, ... (PyTorch's order);
-- negative amounts crop (constant mode)

local PAD_MODES = {constant = true, reflect = true, replicate = true, circular = true}

-- the slice of x at index i of dim, repeated k times along dim (a view)
local function edge(x, dim, i, k)
  local shape = x:size()
  shape[dim] = k
  return x:narrow(dim, i, 1):expand(shape)
end

local function pad_dim(fn, x, dim, l, r, mode, value)
  local n = x:size(dim)
  if mode == "constant" then
    if l < 0 then x, n, l = x:narrow(dim, 1 - l, n + l), n + l, 0 end
    if r < 0 then x, n, r = x:narrow(dim, 1, n + r), n + r, 0 end
    if n < 0 then fail(fn, "padding crops dim %d below 0", dim) end
    local parts = {}
    local function block(k)
      local shape = x:size()
      shape[dim] = k
      return dl.full(shape, value, {dtype = x.dtype, device = x.device})
    end
    if l > 0 then parts[#parts + 1] = block(l) end
    parts[#parts + 1] = x
    if r > 0 then parts[#parts + 1] = block(r) end
    return #parts == 1 and x or dl.cat(parts, dim)
  end
  if l < 0 or r < 0 then fail(fn, "negative padding needs mode 'constant'") end
  if mode == "reflect" and (l >= n or r >= n) then
    fail(fn, "reflect padding %d, %d must be smaller than the size %d of dim %d", l, r, n, dim)
  end
  if mode == "circular" and (l > n or r > n) then
    fail(fn, "circular padding %d, %d must be at most the size %d of dim %d", l, r, n, dim)
  end
  if n == 0 then fail(fn, "cannot pad an empty dim %d in mode '%s'", dim, mode) end
  local parts = {}
  if l > 0 then
    parts[#parts + 1] = mode == "reflect" and x:narrow(dim, 2, l):flip(dim)
      or mode == "replicate" and edge(x, dim, 1, l)
      or x:narrow(dim, n - l + 1, l)
  end
  parts[#parts + 1] = x
  if r > 0 then
    parts[#parts + 1] = mode == "reflect" and x:narrow(dim, n - r, r):flip(dim)
      or mode == "replicate" and edge(x, dim, n, r)
      or x:narrow(dim, 1, r)
  end
  return #parts == 1 and x or dl.cat(parts, dim)
end

function F.pad(x, pad, opts)
  local fn = "dl.F.pad"
  if not is_tensor(x) then fail(fn, "input must be a tensor, got %s", type(x)) end
  if type(pad) ~= "table" or #pad % 2 ~= 0 or #pad == 0 then
    fail(fn, "pad must be a list of (left, right) pairs, last dim first")
  end
  checks.list(fn, 2, pad)
  opts = checks.options(fn, opts, {mode = true, value = true})
  local mode, value = opts.mode or "constant", opts.value or 0
  if not PAD_MODES[mode] then fail(fn, "mode must be constant, reflect, replicate or circular, got %s", tostring(mode)) end
  if type(value) ~= "number" then fail(fn, "value must be a number, got %s", type(value)) end
  if #pad // 2 > x:dim() then fail(fn, "%d padded dims for input %s", #pad // 2, shape_str(x)) end
  if mode ~= "constant" and #pad // 2 > x:dim() - 1 then
    fail(fn, "mode '%s' pads at most the dims after the first of input %s", mode, shape_str(x))
  end
  for i, p in ipairs(pad) do
    if math.type(p) ~= "integer" then fail(fn, "pad[%d] must be an integer, got %s", i, tostring(p)) end
  end
  for j = 1, #pad // 2 do
    x = pad_dim(fn, x, x:dim() - j + 1, pad[2 * j - 1], pad[2 * j], mode, value)
  end
  return x
end

---------------------------------------------------------------------------
-- F.interpolate(x, {size | scale_factor, mode = "nearest", align_corners})

local LINEAR = {linear = 1, bilinear = 2, trilinear = 3}

-- output sizes and the source step of each spatial dim (PyTorch: the given
-- scale factor when there is one, else in / out)
local function targets(fn, x, nd, o)
  local size, sf = o.size, o.scale_factor
  if (size == nil) == (sf == nil) then fail(fn, "give exactly one of size and scale_factor") end
  local out, step = {}, {}
  for i = 1, nd do
    local n = x:size(2 + i)
    if size ~= nil then
      out[i] = S.tuple(fn, "size", size, nd, 1)[i]
      step[i] = n / out[i]
    else
      local f = type(sf) == "table" and sf[i] or sf
      if type(f) ~= "number" or not (f > 0) or f == math.huge then
        fail(fn, "scale_factor must be a positive number or a list of them, got %s", tostring(f))
      end
      out[i] = floor(n * f)
      if out[i] < 1 then fail(fn, "scale_factor %s makes spatial dim %d empty", tostring(f), i) end
      step[i] = 1 / f
    end
  end
  return out, step
end

-- x resampled along dim (n -> m) by nearest neighbour or linearly
local function resample_dim(x, dim, m, step, mode, align)
  local n = x:size(dim)
  local o = {dtype = "float64", device = x.device}
  if mode == "nearest" then
    local src = (dl.arange(0, m, o) * step):floor():clamp(0, n - 1):long() + 1
    return x:index_select(dim, src)
  end
  local src
  if align then
    src = m > 1 and dl.arange(0, m, o) * ((n - 1) / (m - 1)) or dl.zeros(m, o)
  else
    src = ((dl.arange(0, m, o) + 0.5) * step - 0.5):clamp_min(0)
  end
  local lo = src:floor():clamp(0, n - 1)
  local w = (src - lo):to(x.dtype)
  local hi = (lo + 1):clamp(0, n - 1)
  local shape = {}
  for i = 1, x:dim() do shape[i] = 1 end
  shape[dim] = m
  w = w:view(shape)
  return x:index_select(dim, lo:long() + 1) * (1 - w) + x:index_select(dim, hi:long() + 1) * w
end

local interp_opts = {size = true, scale_factor = true, mode = true, align_corners = true}

local function interpolate(fn, x, o)
  if not is_tensor(x) then fail(fn, "input must be a tensor, got %s", type(x)) end
  local nd = x:dim() - 2
  local mode = o.mode or "nearest"
  if mode ~= "nearest" and not LINEAR[mode] then
    fail(fn, "mode must be nearest, linear, bilinear or trilinear, got %s", tostring(mode))
  end
  if nd < 1 or nd > 3 or (LINEAR[mode] and LINEAR[mode] ~= nd) then
    fail(fn, "mode '%s' does not fit input %s", mode, shape_str(x))
  end
  if mode == "nearest" and o.align_corners ~= nil then fail(fn, "align_corners goes with the linear modes only") end
  local out, step = targets(fn, x, nd, o)
  for i = 1, nd do
    if out[i] ~= x:size(2 + i) or step[i] ~= 1 then
      x = resample_dim(x, 2 + i, out[i], step[i], mode, o.align_corners == true)
    end
  end
  return x
end

function F.interpolate(x, opts)
  local fn = "dl.F.interpolate"
  return interpolate(fn, x, checks.options(fn, opts, interp_opts))
end

local Upsample = nn.Module:extend("Upsample")
nn.Upsample = Upsample
-- Upsample({size | scale_factor, mode = "nearest", align_corners})
function Upsample:init(opts)
  self.opts = checks.options("dl.nn.Upsample", opts, interp_opts)
  if (self.opts.size == nil) == (self.opts.scale_factor == nil) then
    fail("dl.nn.Upsample", "give exactly one of size and scale_factor")
  end
end
function Upsample:forward(x) return interpolate(nil, x, self.opts) end
function Upsample:extra_repr()
  local o = self.opts
  local what = o.size and fmt("size=%s", type(o.size) == "table" and "(" .. table.concat(o.size, ", ") .. ")" or o.size)
    or fmt("scale_factor=%s", type(o.scale_factor) == "table" and "(" .. table.concat(o.scale_factor, ", ") .. ")"
      or fmt("%.1f", o.scale_factor))
  return fmt("%s, mode='%s'", what, o.mode or "nearest")
end

---------------------------------------------------------------------------
-- PixelShuffle(r): [N, C r^2, H, W] -> [N, C, H r, W r]; PixelUnshuffle(r)
-- the inverse

-- x [*, C, H, W] checked: its rank, C, H, W and the product of its leading dims
local function image_of(fn, x, key, r)
  if not is_tensor(x) or x:dim() < 3 then fail(fn, "expected an input [*, C, H, W]") end
  checks.count(fn, 2, key, r, 1)
  local nd = x:dim()
  local C, H, W = x:size(nd - 2), x:size(nd - 1), x:size(nd)
  return nd, C, H, W, x:numel() // math.max(1, C * H * W)
end

local function pixel_shuffle(fn, x, r)
  local nd, C, H, W, lead = image_of(fn, x, "upscale_factor", r)
  if C % (r * r) ~= 0 then fail(fn, "input %s: %d channels are not divisible by %d", shape_str(x), C, r * r) end
  local c = C // (r * r)
  local y = x:reshape(lead, c, r, r, H, W):permute(1, 2, 5, 3, 6, 4)
  local shape = x:size()
  shape[nd - 2], shape[nd - 1], shape[nd] = c, H * r, W * r
  return y:reshape(shape)
end

local function pixel_unshuffle(fn, x, r)
  local nd, C, H, W, lead = image_of(fn, x, "downscale_factor", r)
  if H % r ~= 0 or W % r ~= 0 then fail(fn, "input %s: %dx%d is not divisible by %d", shape_str(x), H, W, r) end
  local y = x:reshape(lead, C, H // r, r, W // r, r):permute(1, 2, 4, 6, 3, 5)
  local shape = x:size()
  shape[nd - 2], shape[nd - 1], shape[nd] = C * r * r, H // r, W // r
  return y:reshape(shape)
end

function F.pixel_shuffle(x, r) return pixel_shuffle("dl.F.pixel_shuffle", x, r) end
function F.pixel_unshuffle(x, r) return pixel_unshuffle("dl.F.pixel_unshuffle", x, r) end

for name, f in pairs({PixelShuffle = pixel_shuffle, PixelUnshuffle = pixel_unshuffle}) do
  local M = nn.Module:extend(name)
  nn[name] = M
  local key = name == "PixelShuffle" and "upscale_factor" or "downscale_factor"
  function M:init(r)
    checks.count("dl.nn." .. name, 1, key, r, 1)
    self[key] = r
  end
  function M:forward(x) return f(nil, x, self[key]) end
  function M:extra_repr() return fmt("%s=%d", key, self[key]) end
end

return nn
