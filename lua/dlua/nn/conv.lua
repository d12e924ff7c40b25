-- dlua.nn.conv: convolution (Conv1d/2d/3d), Unfold, Fold and their
-- functional forms in dl.F (pooling is pool.lua).
--
-- A convolution is dl.convolution (src/autograd/grad_conv.c): oneDNN's on
-- the CPU in float32, else the sliding-window op dl.im2col and one GEMM for
-- the whole batch (groups as a batch of GEMMs). dl.im2col and dl.col2im
-- are PyTorch's F.unfold and F.fold; linear and each other's adjoint, so
-- every layer here is differentiable in reverse and forward mode, to any
-- order. Weights have PyTorch's layout ([out, in / groups,
-- *kernel]), so state dicts move between the two.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"

local im2col, col2im, convolution, conv_block = dl.im2col, dl.col2im, dl.convolution, dl._conv_block
local errors = require "dlua.errors"
local is_tensor = dl.is_tensor
local fmt = string.format
local shape_str, check_options = checks.shape_str, checks.options
local S = require "dlua.nn.spatial"

local fail, tuple, tuple_str, batched = S.fail, S.tuple, S.tuple_str, S.batched

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

-- the weight ((nd + 2)-D, its layout named for the message) and the groups
-- option of a convolution or a transposed one
local function check_weight(fn, nd, w, layout, o)
  if not is_tensor(w) or w:dim() ~= nd + 2 then
    fail(fn, "weight must be a %dD tensor [%s], got %s", nd + 2, layout, is_tensor(w) and shape_str(w) or type(w))
  end
  local groups = o.groups or 1
  if math.type(groups) ~= "integer" or groups < 1 then
    fail(fn, "groups must be an integer >= 1, got %s", tostring(groups))
  end
  return groups
end

-- the bias: nil or a tensor [n]
local function check_bias(fn, b, n)
  if b ~= nil and (not is_tensor(b) or b:dim() ~= 1 or b:size(1) ~= n) then
    fail(fn, "bias must be a tensor [%d], got %s", n, is_tensor(b) and shape_str(b) or type(b))
  end
end

-- conv over nd spatial dims: x [N, C, *S] (or [C, *S]), w [O, C / groups, *k], b [O] or nil;
-- run (optional) runs the checked convolution instead of dl.convolution:
-- run(x [N, C, *S], w, b, dl.convolution's options, the output's sizes)
local function conv(fn, nd, x, w, b, o, run)
  o = check_options(fn, o, conv_fopts)
  local xb, unbatched = batched(fn, x, nd)
  local groups = check_weight(fn, nd, w, "out, in / groups, *kernel", o)
  local N, C, O = xb:size(1), xb:size(2), w:size(1)
  if C ~= w:size(2) * groups then
    fail(fn, "input %s has %d channels, but weight %s with groups = %d expects %d", shape_str(x), C,
      shape_str(w), groups, w:size(2) * groups)
  end
  if O % groups ~= 0 then
    fail(fn, "out channels %d (weight %s) are not divisible by groups = %d", O, shape_str(w), groups)
  end
  check_bias(fn, b, O)
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
  local copts = {stride = s, dilation = d, padding = lo, padding_end = hi, groups = groups}
  if run then return run(xb, w, b, copts, out) end
  local y = convolution(xb, w, b, copts)
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
  device = true, padding_mode = true}
local PADDING_MODES = {zeros = true, reflect = true, replicate = true, circular = true}

-- what ConvNd and ConvTransposeNd check and keep alike: the channels and
-- groups, the kernel and stride, and the weight [dims[1], dims[2], *kernel]
-- (dims from the channels) and bias [out]
local function init_conv(self, fn, nd, in_channels, out_channels, kernel_size, opts, allowed, weight_dims)
  checks.count(fn, 1, "in_channels", in_channels, 1)
  checks.count(fn, 2, "out_channels", out_channels, 1)
  opts = check_options(fn, opts, allowed)
  local groups = opts.groups or 1
  checks.count(fn, 4, "groups", groups, 1)
  if in_channels % groups ~= 0 or out_channels % groups ~= 0 then
    fail(fn, "in_channels %d and out_channels %d must both be divisible by groups = %d", in_channels, out_channels,
      groups)
  end
  self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
  self.kernel_size = tuple(fn, "kernel_size", kernel_size, nd, 1)
  self.stride = tuple(fn, "stride", opts.stride or 1, nd, 1)
  self.dilation = tuple(fn, "dilation", opts.dilation or 1, nd, 1)
  local shape = weight_dims(in_channels, out_channels, groups)
  for i = 1, nd do shape[2 + i] = self.kernel_size[i] end
  local to = {dtype = opts.dtype, device = opts.device}
  self.weight = nn.Parameter(dl.empty(shape, to))
  if opts.bias ~= false then
    self.bias = nn.Parameter(dl.empty(out_channels, to))
  else
    self:register_parameter("bias", nil)
  end
  return opts
end

-- ConvNd(in, out, kernel_size, {stride, padding, dilation, groups, bias =
-- true, padding_mode = "zeros", dtype, device}): weight [out, in / groups,
-- *kernel], bias [out], initialised as PyTorch's (uniform in
-- +-1/sqrt(fan_in)); padding_mode reflect, replicate or circular pads with
-- F.pad first
local function conv_class(nd)
  local name = fmt("Conv%dd", nd)
  local fn = "dl.nn." .. name
  local M = nn.Module:extend(name)
  nn[name] = M
  function M:init(in_channels, out_channels, kernel_size, opts)
    opts = init_conv(self, fn, nd, in_channels, out_channels, kernel_size, opts, conv_opts,
      function(i, o, g) return {o, i // g} end)
    self.padding_mode = opts.padding_mode or "zeros"
    if not PADDING_MODES[self.padding_mode] then
      fail(fn, "padding_mode must be zeros, reflect, replicate or circular, got %s", tostring(self.padding_mode))
    end
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
    self:reset_parameters()
  end
  function M:reset_parameters() nn._reset_uniform(self, self.weight:numel() // self.out_channels) end
  local call = {}
  function M:forward(x)
    call.stride, call.padding, call.dilation, call.groups = self.stride, self.padding, self.dilation, self.groups
    if self.padding_mode ~= "zeros" and self.padding ~= "valid" then
      -- F.pad's list: the last dim first, (before, after) each
      local pads = {}
      for i = nd, 1, -1 do
        local lo, hi
        if self.padding == "same" then
          local total = self.dilation[i] * (self.kernel_size[i] - 1)
          lo, hi = total // 2, total - total // 2
        else
          lo, hi = self.padding[i], self.padding[i]
        end
        pads[#pads + 1], pads[#pads + 2] = lo, hi
      end
      local xb, unbatched = batched(nil, x, nd)
      call.padding = 0
      local y = conv(nil, nd, F.pad(xb, pads, {mode = self.padding_mode}), self.weight, self.bias, call)
      return unbatched and y:squeeze(1) or y
    end
    return conv(nil, nd, x, self.weight, self.bias, call)
  end
  function M:_label() return fmt("%s(%d, %d)", name, self.in_channels, self.out_channels) end
  if nd == 2 then
    -- What nn.Sequential runs for this layer, a BatchNorm2d with batch
    -- statistics (training, or keeping no running ones), a ReLU and, with
    -- pool, a MaxPool2d(2): one op (dl._conv_block), whose convolution
    -- output stays in the kernels' own layout between the layers. It needs
    -- a 4-D input, zero padding, the norm's channels, more than one value a
    -- channel and, to pool, an output of at least 2x2; otherwise nil, and
    -- the caller runs the modules one by one (their errors are theirs).
    -- Only these classes themselves fuse (containers.lua).
    -- (the call's state goes through `block` to two functions made once,
    -- not through closures made each forward)
    local block = {opts = {}}
    local function run_norm(x, rm, rv, o) -- batch norm's bookkeeping done: the op
      local b = block
      b.opts.momentum, b.opts.eps = o.momentum, o.eps
      return conv_block(x, b.w, b.b, b.copts, o.weight, o.bias, rm, rv, b.opts)
    end
    local function run_conv(xb, w, b, copts, out) -- the convolution checked
      if (block.opts.pool and (out[1] < 2 or out[2] < 2)) or xb:size(1) * out[1] * out[2] < 2 then return nil end
      block.w, block.b, block.copts = w, b, copts
      return nn._batch_norm_call(block.bn, xb, run_norm)
    end
    local function label(self) return self:_label() end
    M._forward_block = errors.named(label, function(self, x, bn, pool)
      if not is_tensor(x) or x:dim() ~= 4 or (self.padding_mode ~= "zeros" and self.padding ~= "valid")
        or bn.num_features ~= self.out_channels or not (bn.training or not bn.track_running_stats) then
        return nil
      end
      call.stride, call.padding, call.dilation, call.groups = self.stride, self.padding, self.dilation, self.groups
      block.bn, block.opts.pool = bn, pool
      local y = conv(nil, nd, x, self.weight, self.bias, call, run_conv)
      block.bn, block.w, block.b, block.copts = nil, nil, nil, nil -- (an error leaves them to the next call)
      return y
    end)
  end
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
    if self.padding_mode ~= "zeros" then parts[#parts + 1] = fmt("padding_mode=%s", self.padding_mode) end
    return table.concat(parts, ", ")
  end
end
for nd = 1, 3 do conv_class(nd) end

---------------------------------------------------------------------------
-- Transposed convolution: the adjoint of a convolution (the gradient of
-- conv w.r.t. its input), as one GEMM and dl.col2im:
--   cols [C_out K, N L] = W^T @ x (per group), y = col2im(cols) + b
---------------------------------------------------------------------------

local convt_fopts = {stride = true, padding = true, output_padding = true, groups = true, dilation = true}

-- x [N, C_in, *S] (or [C_in, *S]), w [C_in, C_out / groups, *k]
local function conv_transpose(fn, nd, x, w, b, o)
  o = check_options(fn, o, convt_fopts)
  local xb, unbatched = batched(fn, x, nd)
  local G = check_weight(fn, nd, w, "in, out / groups, *kernel", o)
  local N, Cin = xb:size(1), xb:size(2)
  if Cin ~= w:size(1) or Cin % G ~= 0 then
    fail(fn, "input %s has %d channels, but weight %s with groups = %d expects %d", shape_str(x), Cin, shape_str(w),
      G, w:size(1))
  end
  local Cout = w:size(2) * G
  check_bias(fn, b, Cout)
  local s = tuple(fn, "stride", o.stride or 1, nd, 1)
  local d = tuple(fn, "dilation", o.dilation or 1, nd, 1)
  local p = tuple(fn, "padding", o.padding or 0, nd, 0)
  local op = tuple(fn, "output_padding", o.output_padding or 0, nd, 0)
  local k, size, L, K = {}, {}, 1, 1
  for i = 1, nd do
    if op[i] >= s[i] and op[i] >= d[i] then
      fail(fn, "output_padding %s must be smaller than stride %s or dilation %s", tuple_str(op), tuple_str(s), tuple_str(d))
    end
    k[i] = w:size(2 + i)
    size[i] = (xb:size(2 + i) - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
    if size[i] < 1 then fail(fn, "input %s gives an empty output in spatial dim %d", shape_str(x), i) end
    L, K = L * xb:size(2 + i), K * k[i]
  end
  local rows = xb:reshape(N, Cin, L):transpose(1, 2):reshape(Cin, N * L) -- [C_in, N L]
  local cols
  if G == 1 then
    cols = w:reshape(Cin, Cout * K):t():mm(rows) -- [C_out K, N L]
  else
    local wg = w:reshape(G, Cin // G, (Cout // G) * K):transpose(2, 3)
    cols = wg:bmm(rows:reshape(G, Cin // G, N * L)):reshape(Cout * K, N * L)
  end
  -- the windows of the output, padded by p, are the input's positions (the
  -- output_padding rows at the end lie past the last window)
  local y = col2im(cols:reshape(Cout * K, N, L):transpose(1, 2), size, k,
    {stride = s, dilation = d, padding = p, padding_end = p})
  if b ~= nil then
    local shape = {1, Cout}
    for _ = 1, nd do shape[#shape + 1] = 1 end
    y = y + b:view(shape)
  end
  if unbatched then y = y:squeeze(1) end
  return y
end

-- F.conv_transpose1d/2d/3d(x, weight, bias, {stride = 1, padding = 0,
-- output_padding = 0, groups = 1, dilation = 1})
for nd = 1, 3 do
  local fn = fmt("dl.F.conv_transpose%dd", nd)
  F[fmt("conv_transpose%dd", nd)] = function(x, w, b, opts) return conv_transpose(fn, nd, x, w, b, opts) end
end

local convt_opts = {stride = true, padding = true, output_padding = true, groups = true, dilation = true, bias = true,
  dtype = true, device = true}

-- ConvTransposeNd(in, out, kernel_size, {stride, padding, output_padding,
-- groups, dilation, bias = true, dtype, device}): weight [in, out / groups,
-- *kernel] (PyTorch's layout), bias [out]
for nd = 1, 3 do
  local name = fmt("ConvTranspose%dd", nd)
  local fn = "dl.nn." .. name
  local M = nn.Module:extend(name)
  nn[name] = M
  function M:init(in_channels, out_channels, kernel_size, opts)
    opts = init_conv(self, fn, nd, in_channels, out_channels, kernel_size, opts, convt_opts,
      function(i, o, g) return {i, o // g} end)
    self.padding = tuple(fn, "padding", opts.padding or 0, nd, 0)
    self.output_padding = tuple(fn, "output_padding", opts.output_padding or 0, nd, 0)
    self:reset_parameters()
  end
  -- PyTorch's fan_in of this weight layout: dim 2 times the kernel
  function M:reset_parameters() nn._reset_uniform(self, self.weight:numel() // self.in_channels) end
  local call = {}
  function M:forward(x)
    call.stride, call.padding, call.output_padding = self.stride, self.padding, self.output_padding
    call.dilation, call.groups = self.dilation, self.groups
    return conv_transpose(nil, nd, x, self.weight, self.bias, call)
  end
  function M:_label() return fmt("%s(%d, %d)", name, self.in_channels, self.out_channels) end
  function M:extra_repr()
    local parts = {fmt("%d, %d, kernel_size=%s, stride=%s", self.in_channels, self.out_channels,
      tuple_str(self.kernel_size), tuple_str(self.stride))}
    for i = 1, nd do
      if self.padding[i] ~= 0 then parts[#parts + 1] = fmt("padding=%s", tuple_str(self.padding)); break end
    end
    for i = 1, nd do
      if self.output_padding[i] ~= 0 then
        parts[#parts + 1] = fmt("output_padding=%s", tuple_str(self.output_padding))
        break
      end
    end
    if self.groups ~= 1 then parts[#parts + 1] = fmt("groups=%d", self.groups) end
    if not self.bias then parts[#parts + 1] = "bias=False" end
    return table.concat(parts, ", ")
  end
end

return nn
