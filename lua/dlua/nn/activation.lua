-- dlua.nn.activation: activation modules (ReLU, LeakyReLU, PReLU, ELU, GELU,
-- SiLU, Softplus, Tanh, Sigmoid, Softmax, LogSoftmax) and their functional
-- forms in dl.F.
--
-- The functional forms are the fused differentiable C ops themselves
-- (src/lua_activation.c, src/autograd/grad_activation.c; relu, tanh and
-- sigmoid are the element-wise tensor ops), so dl.F.gelu == dl.gelu. A
-- module's forward is one call with its stored arguments: no table is made
-- per call. Softmax dims are 1-based and printed as given.
local dl = require "dlua"
local checks = require "dlua.checks"
local nn = dl.nn
local F = nn.functional

local fmt = string.format
local relu, tanh, sigmoid = dl.relu, dl.tanh, dl.sigmoid
local leaky_relu, prelu, elu, gelu, silu, softplus = dl.leaky_relu, dl.prelu, dl.elu, dl.gelu, dl.silu, dl.softplus
local softmax, log_softmax = dl.softmax, dl.log_softmax

F.relu, F.tanh, F.sigmoid = relu, tanh, sigmoid
F.leaky_relu, F.prelu, F.elu, F.gelu, F.silu, F.softplus = leaky_relu, prelu, elu, gelu, silu, softplus
F.softmax, F.log_softmax = softmax, log_softmax

local function check_number(cls, argn, name, v)
  if type(v) ~= "number" then
    error(fmt("dl.nn.%s: bad argument #%d (%s must be a number, got %s)", cls, argn, name, type(v)), 3)
  end
  return v
end

local function check_options(cls, opts, allowed) return checks.options("dl.nn." .. cls, opts, allowed) end

---------------------------------------------------------------------------
-- Without parameters
---------------------------------------------------------------------------

local ReLU = nn.Module:extend("ReLU")
nn.ReLU = ReLU
function ReLU:forward(x) return relu(x) end

local Tanh = nn.Module:extend("Tanh")
nn.Tanh = Tanh
function Tanh:forward(x) return tanh(x) end

local Sigmoid = nn.Module:extend("Sigmoid")
nn.Sigmoid = Sigmoid
function Sigmoid:forward(x) return sigmoid(x) end

local SiLU = nn.Module:extend("SiLU")
nn.SiLU = SiLU
function SiLU:forward(x) return silu(x) end

-- LeakyReLU(negative_slope = 0.01)
local LeakyReLU = nn.Module:extend("LeakyReLU")
nn.LeakyReLU = LeakyReLU
function LeakyReLU:init(negative_slope)
  self.negative_slope = check_number("LeakyReLU", 1, "negative_slope", negative_slope or 0.01)
end
function LeakyReLU:forward(x) return leaky_relu(x, self.negative_slope) end
function LeakyReLU:extra_repr() return fmt("negative_slope=%s", tostring(self.negative_slope)) end

-- ELU(alpha = 1.0)
local ELU = nn.Module:extend("ELU")
nn.ELU = ELU
function ELU:init(alpha)
  self.alpha = check_number("ELU", 1, "alpha", alpha or 1.0)
end
function ELU:forward(x) return elu(x, self.alpha) end
function ELU:extra_repr() return fmt("alpha=%s", tostring(self.alpha)) end

-- GELU() exact (erf) form, GELU("tanh") or GELU({approximate = "tanh"})
local GELU = nn.Module:extend("GELU")
nn.GELU = GELU
function GELU:init(approximate)
  if type(approximate) == "table" then
    approximate = check_options("GELU", approximate, {approximate = true}).approximate
  end
  approximate = approximate or "none"
  if approximate ~= "none" and approximate ~= "tanh" then
    error(fmt('dl.nn.GELU: approximate must be "none" or "tanh", got %s', tostring(approximate)), 2)
  end
  self.approximate = approximate
end
function GELU:forward(x) return gelu(x, self.approximate) end
function GELU:extra_repr() return fmt("approximate='%s'", self.approximate) end

-- Softplus(beta = 1, threshold = 20) or Softplus({beta, threshold})
local Softplus = nn.Module:extend("Softplus")
nn.Softplus = Softplus
function Softplus:init(beta, threshold)
  if type(beta) == "table" then
    local o = check_options("Softplus", beta, {beta = true, threshold = true})
    beta, threshold = o.beta, o.threshold
  end
  self.beta = check_number("Softplus", 1, "beta", beta or 1)
  self.threshold = check_number("Softplus", 2, "threshold", threshold or 20)
  if self.beta == 0 then error("dl.nn.Softplus: beta must be non-zero", 2) end
end
function Softplus:forward(x) return softplus(x, self.beta, self.threshold) end
function Softplus:extra_repr() return fmt("beta=%s, threshold=%s", tostring(self.beta), tostring(self.threshold)) end

-- Softmax(dim) / LogSoftmax(dim): dim is 1-based (negative from the end)
local function check_dim(cls, dim)
  if math.type(dim) ~= "integer" or dim == 0 then
    error(fmt("dl.nn.%s: bad argument #1 (dim must be a non-zero integer, got %s)", cls, tostring(dim)), 3)
  end
  return dim
end

local Softmax = nn.Module:extend("Softmax")
nn.Softmax = Softmax
function Softmax:init(dim) self.dim = check_dim("Softmax", dim) end
function Softmax:forward(x) return softmax(x, self.dim) end
function Softmax:extra_repr() return fmt("dim=%d", self.dim) end

local LogSoftmax = nn.Module:extend("LogSoftmax")
nn.LogSoftmax = LogSoftmax
function LogSoftmax:init(dim) self.dim = check_dim("LogSoftmax", dim) end
function LogSoftmax:forward(x) return log_softmax(x, self.dim) end
function LogSoftmax:extra_repr() return fmt("dim=%d", self.dim) end

---------------------------------------------------------------------------
-- PReLU(num_parameters = 1, init = 0.25, {dtype, device}): a learnable
-- slope, shared or one per channel (dim 2 of the input)
---------------------------------------------------------------------------

local PReLU = nn.Module:extend("PReLU")
nn.PReLU = PReLU
function PReLU:init(num_parameters, init, opts)
  num_parameters = num_parameters or 1
  if math.type(num_parameters) ~= "integer" or num_parameters < 1 then
    error(fmt("dl.nn.PReLU: bad argument #1 (num_parameters must be an integer >= 1, got %s)",
      tostring(num_parameters)), 2)
  end
  init = check_number("PReLU", 2, "init", init or 0.25)
  opts = check_options("PReLU", opts, {dtype = true, device = true})
  self.num_parameters = num_parameters
  self.weight = nn.Parameter(dl.full({num_parameters}, init, {dtype = opts.dtype, device = opts.device}))
end
function PReLU:forward(x) return prelu(x, self.weight) end
function PReLU:extra_repr() return fmt("num_parameters=%d", self.num_parameters) end

return nn
