-- dlua.nn.layers: Linear, RBF, Dropout, BatchNorm1d/2d/3d and their functional
-- forms dl.F.linear, rbf, dropout, batch_norm.
--
-- Linear is one GEMM with the bias folded in (dl.addmm); RBF, Dropout and
-- BatchNorm1d call the fused differentiable C ops dl.rbf, dl.dropout and
-- dl.batch_norm (src/ops/dl_layer.c, src/autograd/grad_layer.c).
-- Forward passes create no Lua tables.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local pybool = nn._pybool

local addmm, mm, matmul, rbf, dropout, batch_norm = dl.addmm, dl.mm, dl.matmul, dl.rbf, dl.dropout, dl.batch_norm
local batch_norm_relu, batch_norm_relu_pool = dl._batch_norm_relu, dl._batch_norm_relu_pool
local is_tensor = dl.is_tensor
local sqrt, fmt = math.sqrt, string.format
local errors = require "dlua.errors"
local raise = errors.raise

local checks = require "dlua.checks"
local shape_str, check_options, check_count = checks.shape_str, checks.options, checks.count

-- dtype/device options for new parameters
local function tensor_opts(opts)
  return {dtype = opts.dtype, device = opts.device}
end

---------------------------------------------------------------------------
-- Linear
---------------------------------------------------------------------------

-- y = x @ w^T + b for x [..., in]; one GEMM, the bias folded in. (Linear
-- calls this local, not dl.F.linear, which init.lua wraps to name its errors.)
local function linear(x, w, b)
  local nd = x:dim()
  if nd == 2 then
    if b then return addmm(b, x, w:t()) end
    return mm(x, w:t())
  end
  if nd == 1 then
    local y = matmul(w, x)
    if b then y = y + b end
    return y
  end
  if nd == 0 then error("dl.F.linear: input must have at least 1 dim, got a 0-d tensor", 2) end
  local shape = x:size()
  local x2 = x:reshape(-1, shape[nd])
  local y = b and addmm(b, x2, w:t()) or mm(x2, w:t())
  shape[nd] = w:size(1)
  return y:reshape(shape)
end
F.linear = linear

local Linear = nn.Module:extend("Linear")
nn.Linear = Linear

local linear_opts = {bias = true, dtype = true, device = true}

-- Linear(in, out, {bias = true, dtype, device}): weight [out, in] and bias
-- [out] drawn as PyTorch does (kaiming_uniform_ with a = sqrt(5), i.e.
-- U(-1/sqrt(in), 1/sqrt(in)), and the same bound for the bias).
function Linear:init(in_features, out_features, opts)
  check_count("dl.nn.Linear", 1, "in_features", in_features, 0)
  check_count("dl.nn.Linear", 2, "out_features", out_features, 0)
  opts = check_options("dl.nn.Linear", opts, linear_opts)
  self.in_features, self.out_features = in_features, out_features
  local to = tensor_opts(opts)
  self.weight = nn.Parameter(dl.empty(out_features, in_features, to))
  if opts.bias ~= false then
    self.bias = nn.Parameter(dl.empty(out_features, to))
  else
    self:register_parameter("bias", nil)
  end
  self:reset_parameters()
end

-- PyTorch's default for Linear and ConvNd: weight and bias uniform in
-- +-1/sqrt(fan_in) (kaiming_uniform_ with a = sqrt(5) works out to that)
function nn._reset_uniform(m, fan_in)
  local bound = fan_in > 0 and 1 / sqrt(fan_in) or 0
  dl.no_grad(function()
    m.weight:uniform_(-bound, bound)
    if m.bias then m.bias:uniform_(-bound, bound) end
  end)
end

function Linear:reset_parameters() nn._reset_uniform(self, self.in_features) end

function Linear:forward(x)
  local nd = is_tensor(x) and x:dim() or 0
  if nd == 0 or x:size(nd) ~= self.in_features then
    raise(is_tensor(x) and fmt("%s: input %s has %s features, expected %d", self:_label(), shape_str(x),
      nd == 0 and "no" or tostring(x:size(nd)), self.in_features)
      or fmt("%s: input must be a tensor, got %s", self:_label(), type(x)))
  end
  return linear(x, self.weight, self.bias)
end

-- "Linear(3 -> 2)", how errors name the module
function Linear:_label() return fmt("Linear(%d -> %d)", self.in_features, self.out_features) end

function Linear:extra_repr()
  return fmt("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features,
    pybool(self.bias ~= nil))
end

---------------------------------------------------------------------------
-- RBF
---------------------------------------------------------------------------

local BIAS_UNIT = {[true] = {bias_unit = true}, [false] = {bias_unit = false}}
local rbf_fopts = {bias_unit = true}

-- phi_j(x) = exp(-|x - mu_j|^2 / (2 s_j^2)) for x [N, D] (or [D]); with
-- bias_unit a constant-1 column comes first
function F.rbf(x, centers, sigmas, opts)
  opts = check_options("dl.F.rbf", opts, rbf_fopts)
  local bias_unit = opts.bias_unit == true -- a local key: Lua 5.4.4 miscompiles t[a == b] on an upvalue t
  local o = BIAS_UNIT[bias_unit]
  if is_tensor(x) and x:dim() == 1 then return rbf(x:unsqueeze(1), centers, sigmas, o):squeeze(1) end
  return rbf(x, centers, sigmas, o)
end

local RBF = nn.Module:extend("RBF")
nn.RBF = RBF

local rbf_opts = {sigma = true, learn_centers = true, learn_sigma = true, bias_unit = true, dtype = true,
  device = true}

-- RBF(in, n_centers, {sigma = 1, learn_centers = true, learn_sigma = true,
-- bias_unit = false}): centers [n, in] drawn from N(0, 1) (place them with
-- set_centers, e.g. from dl.cluster.kmeans), sigmas [n] = sigma. Fixed
-- centers / sigmas are buffers instead of parameters.
function RBF:init(in_features, n_centers, opts)
  check_count("dl.nn.RBF", 1, "in_features", in_features, 1)
  check_count("dl.nn.RBF", 2, "n_centers", n_centers, 1)
  opts = check_options("dl.nn.RBF", opts, rbf_opts)
  local sigma = opts.sigma or 1
  if type(sigma) ~= "number" or not (sigma > 0) then
    error(fmt("dl.nn.RBF: sigma must be a positive number, got %s", tostring(sigma)), 2)
  end
  self.in_features, self.n_centers = in_features, n_centers
  self.bias_unit = opts.bias_unit == true
  local to = tensor_opts(opts)
  local c, s = dl.randn(n_centers, in_features, to), dl.empty(n_centers, to):fill_(sigma)
  if opts.learn_centers ~= false then self.centers = nn.Parameter(c) else self:register_buffer("centers", c) end
  if opts.learn_sigma ~= false then self.sigmas = nn.Parameter(s) else self:register_buffer("sigmas", s) end
end

function RBF:forward(x)
  local o = BIAS_UNIT[self.bias_unit]
  if x:dim() == 1 then return rbf(x:unsqueeze(1), self.centers, self.sigmas, o):squeeze(1) end
  return rbf(x, self.centers, self.sigmas, o)
end

local function set_tensor(self, fn, name, t)
  local dst = self[name]
  if not is_tensor(t) then error(fmt("%s: bad argument #1 (tensor expected, got %s)", fn, type(t)), 3) end
  local a, b = table.concat(dst:size(), ","), table.concat(t:size(), ",")
  if a ~= b then error(fmt("%s: expected a tensor of shape [%s], got [%s]", fn, a, b), 3) end
  dl.no_grad(function() dst:copy_(t) end)
  return self
end

-- copies t into the centers / sigmas (no gradient recorded)
function RBF:set_centers(t) return set_tensor(self, "RBF:set_centers", "centers", t) end
function RBF:set_sigmas(t) return set_tensor(self, "RBF:set_sigmas", "sigmas", t) end

function RBF:extra_repr()
  return fmt("in_features=%d, n_centers=%d, learn_centers=%s, learn_sigma=%s, bias_unit=%s", self.in_features,
    self.n_centers, pybool(nn.is_parameter(self.centers)), pybool(nn.is_parameter(self.sigmas)),
    pybool(self.bias_unit))
end

---------------------------------------------------------------------------
-- Dropout
---------------------------------------------------------------------------

-- inverted dropout: kept elements scaled by 1 / (1 - p); x itself when not
-- training
function F.dropout(x, p, training)
  if p == nil then p = 0.5 end
  if training == nil then training = true end
  return dropout(x, p, training)
end

local Dropout = nn.Module:extend("Dropout")
nn.Dropout = Dropout

-- Dropout(p = 0.5) or Dropout({p = 0.5})
function Dropout:init(p)
  if type(p) == "table" then p = check_options("dl.nn.Dropout", p, {p = true}).p end
  if p == nil then p = 0.5 end
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    error(fmt("dl.nn.Dropout: dropout probability has to be between 0 and 1, but got %s", tostring(p)), 2)
  end
  self.p = p
end

function Dropout:forward(x)
  return dropout(x, self.p, self.training)
end

function Dropout:extra_repr()
  return fmt("p=%s, inplace=False", tostring(self.p + 0.0))
end

---------------------------------------------------------------------------
-- BatchNorm1d
---------------------------------------------------------------------------

local bn_fopts = {weight = true, bias = true, training = true, momentum = true, eps = true}

-- F.batch_norm(x, running_mean, running_var, {weight, bias, training =
-- false, momentum = 0.1, eps = 1e-5}) for x [N, C] or [N, C, L]
function F.batch_norm(x, running_mean, running_var, opts)
  check_options("dl.F.batch_norm", opts, bn_fopts)
  return batch_norm(x, running_mean, running_var, opts)
end

local BatchNorm1d = nn.Module:extend("BatchNorm1d")
nn.BatchNorm1d = BatchNorm1d

local bn_opts = {eps = true, momentum = true, affine = true, track_running_stats = true, dtype = true,
  device = true}
-- per-module options tables handed to dl.batch_norm, refreshed each call
local call_opts = setmetatable({}, {__mode = "k"})

-- BatchNorm1d(C, {eps = 1e-5, momentum = 0.1, affine = true,
-- track_running_stats = true}); momentum = false gives the cumulative
-- average (PyTorch's momentum=None)
function BatchNorm1d:init(num_features, opts)
  local fn = "dl.nn." .. self.__name -- BatchNorm2d and 3d share this
  check_count(fn, 1, "num_features", num_features, 1)
  opts = check_options(fn, opts, bn_opts)
  local momentum = opts.momentum
  if momentum == nil then momentum = 0.1 end
  if momentum ~= false and type(momentum) ~= "number" then
    error(fn .. ": momentum must be a number or false, got " .. type(momentum), 2)
  end
  self.num_features = num_features
  self.eps = opts.eps or 1e-5
  self.momentum = momentum
  self.affine = opts.affine ~= false
  self.track_running_stats = opts.track_running_stats ~= false
  local to = tensor_opts(opts)
  if self.affine then
    self.weight = nn.Parameter(dl.ones(num_features, to))
    self.bias = nn.Parameter(dl.zeros(num_features, to))
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", dl.zeros(num_features, to))
    self:register_buffer("running_var", dl.ones(num_features, to))
    self:register_buffer("num_batches_tracked", dl.tensor(0, {dtype = "int64", device = opts.device}))
  end
end

function BatchNorm1d:reset_running_stats()
  if not self.track_running_stats then return end
  dl.no_grad(function()
    self.running_mean:zero_()
    self.running_var:fill_(1)
    self.num_batches_tracked:zero_()
  end)
end

-- x [N, C, L]: batch statistics per channel over N and L; f: the op
-- (dl.batch_norm, or with what follows it fused: nn.Sequential's fusion,
-- _forward_relu below)
local function bn_forward(self, x, f)
  local o = call_opts[self]
  if not o then
    o = {}
    call_opts[self] = o
  end
  local momentum = self.momentum
  local track = self.track_running_stats
  if self.training and track then
    local n = self.num_batches_tracked
    n:add_(1)
    if momentum == false then momentum = 1 / n:item() end
  end
  o.weight, o.bias, o.eps = self.weight, self.bias, self.eps
  o.momentum = momentum or 0.0
  -- batch statistics when training or when no running statistics are kept
  o.training = self.training or not track
  f = f or batch_norm
  if track then
    return f(x, self.running_mean, self.running_var, o)
  end
  return f(x, nil, nil, o)
end

-- what nn.Sequential runs for a Conv2d before this layer (conv.lua's
-- _forward_block): the running statistics' bookkeeping of a forward, then
-- f(x, running_mean, running_var, opts)
nn._batch_norm_call = bn_forward

-- "BatchNorm2d(16)", how errors name the module
function BatchNorm1d:_label() return fmt("%s(%d)", self.__name, self.num_features) end

local function check_bn_input(self, x, dims, what)
  local nd = is_tensor(x) and x:dim() or 0
  if not dims[nd] then
    raise(is_tensor(x) and fmt("%s: expected %s input (got %dD input %s)", self:_label(), what, nd, shape_str(x))
      or fmt("%s: input must be a tensor, got %s", self:_label(), type(x)))
  end
  if x:size(2) ~= self.num_features then
    raise(fmt("%s: input %s has %d channels, expected %d", self:_label(), shape_str(x), x:size(2), self.num_features))
  end
end

local dims_1d = {[2] = true, [3] = true}
function BatchNorm1d:forward(x)
  check_bn_input(self, x, dims_1d, "2D or 3D")
  return bn_forward(self, x)
end

-- What nn.Sequential runs for this layer followed by nn.ReLU(): the two
-- modules' output and gradients in one pass each way (the ReLU's mask is
-- recomputed in the backward, so nothing more is saved). Only these
-- classes themselves fuse (containers.lua): a subclass runs as written.
-- Its errors are named by the layer, as forward's are.
local function bn_label(self) return self:_label() end
BatchNorm1d._forward_relu = errors.named(bn_label, function(self, x)
  check_bn_input(self, x, dims_1d, "2D or 3D")
  return bn_forward(self, x, batch_norm_relu)
end)

-- BatchNorm2d(C) and BatchNorm3d(C): BatchNorm1d over [N, C, H*W(*D)]
for nd = 2, 3 do
  local cls = BatchNorm1d:extend(fmt("BatchNorm%dd", nd))
  nn[fmt("BatchNorm%dd", nd)] = cls
  local dims, what = {[nd + 2] = true}, fmt("%dD", nd + 2)
  -- [N, C, L] with L the product of the spatial sizes (spelt out: -1
  -- cannot be inferred for an empty batch)
  local function flat(x)
    local L = 1
    for d = 3, x:dim() do L = L * x:size(d) end
    return x:reshape(x:size(1), x:size(2), L)
  end
  function cls:forward(x)
    check_bn_input(self, x, dims, what)
    return bn_forward(self, flat(x)):view(x:size())
  end
  cls._forward_relu = errors.named(bn_label, function(self, x)
    check_bn_input(self, x, dims, what)
    return bn_forward(self, flat(x), batch_norm_relu):view(x:size())
  end)
  if nd == 2 then
    -- with a ReLU and MaxPool2d(2) after it (kernel 2, stride 2, no
    -- padding): the pooled output straight from the normalisation, each
    -- window's winner recorded for the backward (no indices kept); nil for
    -- an image smaller than the window, which the caller then runs module
    -- by module (so it fails as MaxPool2d does)
    cls._forward_relu_pool = errors.named(bn_label, function(self, x)
      check_bn_input(self, x, dims, what)
      if x:size(3) < 2 or x:size(4) < 2 then return nil end
      return bn_forward(self, x, batch_norm_relu_pool)
    end)
  end
end

function BatchNorm1d:extra_repr()
  local m = self.momentum == false and "None" or tostring(self.momentum)
  return fmt("%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s", self.num_features,
    fmt("%g", self.eps), m, pybool(self.affine), pybool(self.track_running_stats))
end

return nn
