-- Gradients at the special points (0, -0, denormals, large |x|, ties and
-- loss breakpoints) equal
-- PyTorch's (spec/fixtures/kink_reference.py -> kink_reference.lua): a
-- formula composed of abs and relu must not take a one-sided derivative
-- where PyTorch's analytic rule is smooth (BCE with logits at logit 0).
local dl = require "dlua"
local ref = require "spec.fixtures.kink_reference"

local F64 = {dtype = "float64"}
local F = dl.nn.functional

local H = require "spec.helper"
local values = H.flat

local function near(got, want, what, xs)
  xs = xs or ref.x
  assert.equal(#want, #got, what)
  for i = 1, #want do
    assert(math.abs(got[i] - want[i]) <= 1e-12 * math.max(1, math.abs(want[i])),
      string.format("%s[%d]: got %.17g, PyTorch %.17g (x = %s)", what, i, got[i], want[i], tostring(xs[i])))
  end
end

local t = dl.tensor(ref.target, F64)
local pw = dl.tensor(ref.pos_weight, F64)
local cases = {
  bce_logits = function(x) return F.binary_cross_entropy_with_logits(x, t, {reduction = "none"}) end,
  bce_logits_pos_weight = function(x)
    return F.binary_cross_entropy_with_logits(x, t, {pos_weight = pw, reduction = "none"})
  end,
  relu = function(x) return F.relu(x) end,
  leaky_relu = function(x) return F.leaky_relu(x, 0.1) end,
  elu = function(x) return F.elu(x) end,
  abs = function(x) return x:abs() end,
  softplus = function(x) return F.softplus(x) end,
  silu = function(x) return F.silu(x) end,
  gelu = function(x) return F.gelu(x) end,
}

describe("gradients at the special points", function()
  for _, name in ipairs({"bce_logits", "bce_logits_pos_weight", "relu", "leaky_relu", "elu", "abs", "softplus",
                         "silu", "gelu"}) do
    it(name .. " matches PyTorch's value and gradient", function()
      local x = dl.tensor(ref.x, {dtype = "float64", requires_grad = true})
      local y = cases[name](x)
      y:sum():backward()
      near(values(y), ref[name].out, name)
      near(values(x.grad), ref[name].grad, name .. " grad")
    end)
  end
end)

-- ties: several entries share the extreme value (max/min/amax spread the
-- gradient evenly, max along a dim picks the first), a stable sort, clamp at
-- its bounds, and differences exactly on a loss's breakpoint
describe("gradients at ties and breakpoints", function()
  local T = ref.ties
  local w = dl.tensor(T.w, F64)
  local lt = dl.tensor(T.l1_target, F64)
  local tie_cases = {
    max = function(x) return x:max() end,
    amax = function(x) return x:amax() end,
    min = function(x) return (-x):min() end,
    max_dim = function(x) return (x:view(1, 5):max(2)) end,
    clamp = function(x) return x:clamp(1, 3) end,
    sort = function(x) return (x:sort()) * w end,
    smooth_l1 = function(x) return F.smooth_l1_loss(x, w, {beta = 1}) end,
    l1 = function(x) return F.l1_loss(x, lt) end,
    relu_at_3 = function(x) return F.relu(x - 3) end,
    abs_at_3 = function(x) return (x - 3):abs() end,
  }
  for _, name in ipairs({"max", "amax", "min", "max_dim", "clamp", "sort", "smooth_l1", "l1", "relu_at_3",
                         "abs_at_3"}) do
    it(name .. " matches PyTorch's value and gradient", function()
      local x = dl.tensor(T.x, {dtype = "float64", requires_grad = true})
      local y = tie_cases[name](x)
      y:sum():backward()
      near(values(y), T[name].out, name, T.x)
      near(values(x.grad), T[name].grad, name .. " grad", T.x)
    end)
  end
end)

-- non-finite inputs: +-inf and NaN through the activations, the element-wise
-- losses and the reductions give PyTorch's values and gradients (NaN where
-- PyTorch has NaN)
describe("values and gradients at +-inf and NaN", function()
  local N = ref.nonfinite
  local tn, w5 = dl.tensor(N.target, F64), dl.tensor(N.w, F64)
  local function same(got, want, what, xs)
    assert.equal(#want, #got, what)
    for i = 1, #want do
      local g, w = got[i], want[i]
      local ok = (g ~= g and w ~= w) or g == w or math.abs(g - w) <= 1e-12 * math.max(1, math.abs(w))
      assert(ok, string.format("%s[%d]: got %.17g, PyTorch %.17g (x = %s)", what, i, g, w, tostring(xs[i])))
    end
  end
  local cases = {
    relu = function(x) return F.relu(x) end,
    leaky_relu = function(x) return F.leaky_relu(x, 0.1) end,
    elu = function(x) return F.elu(x) end,
    softplus = function(x) return F.softplus(x) end,
    silu = function(x) return F.silu(x) end,
    gelu = function(x) return F.gelu(x) end,
    sigmoid = function(x) return x:sigmoid() end,
    tanh = function(x) return x:tanh() end,
    abs = function(x) return x:abs() end,
    mse = function(x) return F.mse_loss(x, tn, {reduction = "none"}) end,
    l1 = function(x) return F.l1_loss(x, tn, {reduction = "none"}) end,
    smooth_l1 = function(x) return F.smooth_l1_loss(x, tn, {reduction = "none"}) end,
    bce_logits = function(x) return F.binary_cross_entropy_with_logits(x, tn, {reduction = "none"}) end,
    sum = function(x) return (x * w5):sum() end,
    mean = function(x) return x:mean() end,
    logsumexp = function(x) return x:logsumexp(1) end,
    sum_inf = function(x) return x:sum() end,
    mean_inf = function(x) return x:mean() end,
    max_inf = function(x) return x:max() end,
    logsumexp_inf = function(x) return x:logsumexp(1) end,
    softmax_inf = function(x) return F.softmax(x, 1) * w5:narrow(1, 1, 3) end,
    log_softmax_inf = function(x) return F.log_softmax(x, 1) * w5:narrow(1, 1, 3) end,
    -- class 2, 1-based (PyTorch's class 1)
    cross_entropy_inf = function(x)
      return F.cross_entropy(x:view(1, 3), dl.tensor({2}, {dtype = "int64"})):view(1)
    end,
  }
  for _, name in ipairs({"relu", "leaky_relu", "elu", "softplus", "silu", "gelu", "sigmoid", "tanh", "abs", "mse", "l1",
                         "smooth_l1", "bce_logits", "sum", "mean", "logsumexp", "sum_inf", "mean_inf", "max_inf",
                         "logsumexp_inf", "softmax_inf", "log_softmax_inf", "cross_entropy_inf"}) do
    it(name .. " matches PyTorch's value and gradient", function()
      local xs = name:match("_inf$") and N.x_inf or N.x
      local x = dl.tensor(xs, {dtype = "float64", requires_grad = true})
      local y = cases[name](x)
      y:sum():backward()
      same(values(y), N[name].out, name, xs)
      same(values(x.grad), N[name].grad, name .. " grad", xs)
    end)
  end
end)
