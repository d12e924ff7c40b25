-- dlua.nn.initializers: dl.nn.init, PyTorch's torch.nn.init plus LeCun's.
-- Every initializer fills its tensor in place without recording a graph
-- (so it works on parameters that require grad) and returns the tensor.
-- Fans follow PyTorch: for a weight [out, in, k...], fan_in = in * prod(k)
-- and fan_out = out * prod(k).
local dl = require "dlua"
local errors = require "dlua.errors"
local nn = dl.nn

local init = {}
nn.init = init

local sqrt = math.sqrt

local function check_tensor(fn, t)
  if not dl.is_tensor(t) then
    error(string.format("dl.nn.init.%s: bad argument #1 (tensor expected, got %s)", fn, type(t)), 3)
  end
end

local function check_number(fn, i, v, what)
  if type(v) ~= "number" then
    error(string.format("dl.nn.init.%s: bad argument #%d (%s expected, got %s)", fn, i, what, type(v)), 3)
  end
end

local function no_grad(f, ...)
  return dl.no_grad(f, ...)
end

---------------------------------------------------------------------------
-- gains and fans
---------------------------------------------------------------------------

local unit_gain = {
  linear = true, identity = true, sigmoid = true, conv1d = true, conv2d = true, conv3d = true,
  conv_transpose1d = true, conv_transpose2d = true, conv_transpose3d = true,
}

-- calculate_gain(nonlinearity, param): the recommended gain (PyTorch's table)
function init.calculate_gain(nonlinearity, param)
  if type(nonlinearity) ~= "string" then
    error("dl.nn.init.calculate_gain: bad argument #1 (string expected, got " .. type(nonlinearity) .. ")", 2)
  end
  if unit_gain[nonlinearity] then return 1 end
  if nonlinearity == "tanh" then return 5 / 3 end
  if nonlinearity == "relu" then return sqrt(2) end
  if nonlinearity == "selu" then return 3 / 4 end
  if nonlinearity == "leaky_relu" then
    local slope = param
    if slope == nil then slope = 0.01 end
    if type(slope) ~= "number" then
      error("dl.nn.init.calculate_gain: negative_slope " .. tostring(slope) .. " is not a valid number", 2)
    end
    return sqrt(2 / (1 + slope * slope))
  end
  error("dl.nn.init.calculate_gain: unsupported nonlinearity " .. nonlinearity, 2)
end

-- calculate_fan_in_and_fan_out(t) -> fan_in, fan_out
function init.calculate_fan_in_and_fan_out(t)
  check_tensor("calculate_fan_in_and_fan_out", t)
  local size = t:size()
  if #size < 2 then
    error("dl.nn.init.calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a tensor with "
      .. "fewer than 2 dimensions (shape " .. nn._shape_str(t) .. ")", 2)
  end
  local rf = 1
  for i = 3, #size do rf = rf * size[i] end
  return size[2] * rf, size[1] * rf
end

local function fan(fn, t, mode)
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error(string.format("dl.nn.init.%s: mode %s not supported, use \"fan_in\" or \"fan_out\"", fn, tostring(mode)), 0)
  end
  -- level 0: fan is called at different depths; the public wrapper
  -- (errors.named) adds the caller's position
  local ok, fan_in, fan_out = pcall(init.calculate_fan_in_and_fan_out, t)
  if not ok then error((errors.strip(tostring(fan_in)):gsub("calculate_fan_in_and_fan_out", fn)), 0) end
  return mode == "fan_in" and fan_in or fan_out
end

---------------------------------------------------------------------------
-- plain fills
---------------------------------------------------------------------------

function init.uniform_(t, a, b)
  check_tensor("uniform_", t)
  a, b = a or 0, b or 1
  check_number("uniform_", 2, a, "number")
  check_number("uniform_", 3, b, "number")
  if a > b then
    error(string.format("dl.nn.init.uniform_: lower bound %g exceeds upper bound %g", a, b), 2)
  end
  no_grad(function() t:uniform_(a, b) end)
  return t
end

function init.normal_(t, mean, std)
  check_tensor("normal_", t)
  mean, std = mean or 0, std or 1
  check_number("normal_", 2, mean, "number")
  check_number("normal_", 3, std, "number")
  if std < 0 then error(string.format("dl.nn.init.normal_: std must be >= 0, got %g", std), 2) end
  no_grad(function() t:normal_(mean, std) end)
  return t
end

function init.constant_(t, val)
  check_tensor("constant_", t)
  check_number("constant_", 2, val, "number")
  no_grad(function() t:fill_(val) end)
  return t
end

function init.zeros_(t)
  check_tensor("zeros_", t)
  no_grad(function() t:zero_() end)
  return t
end

function init.ones_(t)
  check_tensor("ones_", t)
  no_grad(function() t:fill_(1) end)
  return t
end

-- eye_(t): the identity in a 2-D tensor (ones on the main diagonal)
function init.eye_(t)
  check_tensor("eye_", t)
  if t:dim() ~= 2 then
    error("dl.nn.init.eye_: only 2-D tensors are supported, got shape " .. nn._shape_str(t), 2)
  end
  local size = t:size()
  no_grad(function() t:copy_(dl.eye(size[1], size[2])) end)
  return t
end

---------------------------------------------------------------------------
-- scaled initializers
---------------------------------------------------------------------------

local function has_zero_dim(t)
  return t:numel() == 0
end

-- Glorot: std = gain * sqrt(2 / (fan_in + fan_out))
function init.xavier_uniform_(t, gain)
  check_tensor("xavier_uniform_", t)
  gain = gain or 1
  check_number("xavier_uniform_", 2, gain, "number gain")
  local fan_in, fan_out = fan("xavier_uniform_", t, "fan_in"), fan("xavier_uniform_", t, "fan_out")
  if has_zero_dim(t) then return t end
  local bound = sqrt(3) * gain * sqrt(2 / (fan_in + fan_out))
  no_grad(function() t:uniform_(-bound, bound) end)
  return t
end

function init.xavier_normal_(t, gain)
  check_tensor("xavier_normal_", t)
  gain = gain or 1
  check_number("xavier_normal_", 2, gain, "number gain")
  local fan_in, fan_out = fan("xavier_normal_", t, "fan_in"), fan("xavier_normal_", t, "fan_out")
  if has_zero_dim(t) then return t end
  local std = gain * sqrt(2 / (fan_in + fan_out))
  no_grad(function() t:normal_(0, std) end)
  return t
end

-- kaiming_*_(t, {a = 0, mode = "fan_in", nonlinearity = "leaky_relu"}), or
-- PyTorch's positional form kaiming_*_(t, a, mode, nonlinearity)
local function kaiming_std(fn, t, a, mode, nonlinearity)
  if type(a) == "table" then
    a, mode, nonlinearity = a.a, a.mode, a.nonlinearity
  elseif a ~= nil and type(a) ~= "number" then
    error(string.format("dl.nn.init.%s: bad argument #2 (number or options table expected, got %s)", fn, type(a)), 3)
  end
  a = a or 0
  mode = mode or "fan_in"
  nonlinearity = nonlinearity or "leaky_relu"
  local f = fan(fn, t, mode)
  local ok, gain = pcall(init.calculate_gain, nonlinearity, a)
  if not ok then error((errors.strip(tostring(gain)):gsub("calculate_gain", fn)), 0) end
  return gain / sqrt(f)
end

-- He: std = gain / sqrt(fan); sqrt(2 / fan_in) for relu
function init.kaiming_uniform_(t, a, mode, nonlinearity)
  check_tensor("kaiming_uniform_", t)
  local std = kaiming_std("kaiming_uniform_", t, a, mode, nonlinearity)
  if has_zero_dim(t) then return t end
  local bound = sqrt(3) * std
  no_grad(function() t:uniform_(-bound, bound) end)
  return t
end

function init.kaiming_normal_(t, a, mode, nonlinearity)
  check_tensor("kaiming_normal_", t)
  local std = kaiming_std("kaiming_normal_", t, a, mode, nonlinearity)
  if has_zero_dim(t) then return t end
  no_grad(function() t:normal_(0, std) end)
  return t
end

-- LeCun: variance 1 / fan_in
function init.lecun_uniform_(t)
  check_tensor("lecun_uniform_", t)
  local f = fan("lecun_uniform_", t, "fan_in")
  if has_zero_dim(t) then return t end
  local bound = sqrt(3 / f)
  no_grad(function() t:uniform_(-bound, bound) end)
  return t
end

function init.lecun_normal_(t)
  check_tensor("lecun_normal_", t)
  local f = fan("lecun_normal_", t, "fan_in")
  if has_zero_dim(t) then return t end
  no_grad(function() t:normal_(0, sqrt(1 / f)) end)
  return t
end

---------------------------------------------------------------------------
-- orthogonal_
---------------------------------------------------------------------------

-- Orthonormal columns of a random tall [n, k] float64 matrix by classical
-- Gram-Schmidt applied twice per column ("CGS2", as stable as modified GS
-- and made of matrix-vector products). R's diagonal is positive, which is
-- the sign fix PyTorch applies after its QR, so Q is Haar-distributed.
local function orthonormal_columns(n, k)
  local A = dl.randn(n, k, {dtype = "float64"})
  local Q = dl.zeros(n, k, {dtype = "float64"})
  for j = 1, k do
    local v = A:select(2, j)
    if j > 1 then
      local Qj = Q:narrow(2, 1, j - 1)
      for _ = 1, 2 do v = v - Qj:mv(Qj:t():mv(v)) end
    end
    local nrm = v:norm():item()
    if nrm < 1e-12 then
      -- a dependent draw (probability zero); redraw this column
      return orthonormal_columns(n, k)
    end
    Q:select(2, j):copy_(v / nrm)
  end
  return Q
end

-- orthogonal_(t, gain = 1): t viewed as [rows, cols] (cols = the other dims
-- flattened) gets orthonormal rows or columns, whichever are fewer.
function init.orthogonal_(t, gain)
  check_tensor("orthogonal_", t)
  gain = gain or 1
  check_number("orthogonal_", 2, gain, "number gain")
  if t:dim() < 2 then
    error("dl.nn.init.orthogonal_: only tensors with 2 or more dimensions are supported, got shape "
      .. nn._shape_str(t), 2)
  end
  if has_zero_dim(t) then return t end
  local rows = t:size(1)
  local cols = t:numel() // rows
  no_grad(function()
    local q
    if rows >= cols then
      q = orthonormal_columns(rows, cols)
    else
      q = orthonormal_columns(cols, rows):t()
    end
    t:copy_((q * gain):reshape(t:size()))
  end)
  return t
end

return nn
