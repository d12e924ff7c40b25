-- Activations: fused C forward/backward kernels (src/cpu/cpu_activation.c),
-- their autograd (src/autograd/grad_activation.c), dl.F forms and nn modules
-- (lua/dlua/nn/activation.lua). Reference values come from PyTorch
-- (spec/fixtures/activation_reference.py -> activation_reference.lua).
local dl = require "dlua"
local H = require "spec.helper"
require "dlua.nn"

local nn, F, A = dl.nn, dl.F, dl.autograd
local ref = require "spec.fixtures.activation_reference"
local cases = require "spec.gradcheck.activation"

local function t64(list, shape) return dl.tensor(list, {dtype = "float64"}):reshape(shape) end

-- fixture case -> (x, w) -> output, with the input shape it uses
local fixture_fns = {
  relu = function(x) return F.relu(x) end,
  tanh = function(x) return F.tanh(x) end,
  sigmoid = function(x) return F.sigmoid(x) end,
  leaky_relu = function(x) return F.leaky_relu(x) end,
  ["leaky_relu_0.2"] = function(x) return x:leaky_relu(0.2) end,
  elu = function(x) return F.elu(x) end,
  ["elu_0.5"] = function(x) return x:elu({alpha = 0.5}) end,
  gelu = function(x) return F.gelu(x) end,
  gelu_tanh = function(x) return F.gelu(x, {approximate = "tanh"}) end,
  silu = function(x) return F.silu(x) end,
  softplus = function(x) return F.softplus(x) end,
  softplus_2_5 = function(x) return F.softplus(x, {beta = 2, threshold = 5}) end,
  softmax_1 = function(x) return F.softmax(x, 1) end,
  softmax_2 = function(x) return x:softmax(2) end,
  log_softmax_1 = function(x) return F.log_softmax(x, 1) end,
  log_softmax_2 = function(x) return x:log_softmax(-1) end,
  softmax3_2 = function(x) return x:softmax(2) end,
  log_softmax3_2 = function(x) return x:log_softmax(2) end,
  prelu_shared = function(x, w) return F.prelu(x, w) end,
  prelu_channels = function(x, w) return x:prelu(w) end,
  prelu3_channels = function(x, w) return F.prelu(x, w) end,
}

local function fixture_inputs(name, dtype)
  local c = ref.cases[name]
  local three = name:find("3_", 1, true) ~= nil
  local shape = three and {2, 3, 2} or {3, 4}
  local x = dl.tensor(three and ref.x3 or ref.x, {dtype = dtype}):reshape(shape)
  local g = dl.tensor(three and ref.gout3 or ref.gout, {dtype = dtype}):reshape(shape)
  local w = c.w and dl.tensor(c.w, {dtype = dtype}) or nil
  return x, g, w, shape
end

local fixture_names = {}
for name in pairs(ref.cases) do fixture_names[#fixture_names + 1] = name end
table.sort(fixture_names)

describe("activations: values against PyTorch", function()
  for _, name in ipairs(fixture_names) do
    local c = ref.cases[name]
    it(name .. " (float64): output and gradients", function()
      local x, g, w, shape = fixture_inputs(name, "float64")
      x:requires_grad_()
      if w then w:requires_grad_() end
      local y = fixture_fns[name](x, w)
      assert.equal("float64", y.dtype)
      H.assert_close(y, t64(c.out, shape), 1e-12)
      y:backward(g)
      H.assert_close(x.grad, t64(c.gx, shape), 1e-12)
      if w then H.assert_close(w.grad, dl.tensor(c.gw, {dtype = "float64"}), 1e-12) end
    end)
    it(name .. " (float64): the create_graph gradient (composed rule) equals the fused one", function()
      local x, g, w, shape = fixture_inputs(name, "float64")
      x:requires_grad_()
      if w then w:requires_grad_() end
      local y = fixture_fns[name](x, w)
      local gs = table.pack(A.grad(y, w and {x, w} or {x}, g, {create_graph = true}))
      H.assert_close(gs[1], t64(c.gx, shape), 1e-12)
      if w then H.assert_close(gs[2], dl.tensor(c.gw, {dtype = "float64"}), 1e-12) end
    end)
    it(name .. " (float32): output and gradients", function()
      local x, g, w, shape = fixture_inputs(name, "float32")
      x:requires_grad_()
      if w then w:requires_grad_() end
      local y = fixture_fns[name](x, w)
      assert.equal("float32", y.dtype)
      -- float32 has ~7 digits: compare relative to the magnitudes involved
      local yref = t64(c.out, shape)
      local tol = 2e-6 * (1 + yref:abs():max():item())
      H.assert_close(y, yref, tol)
      y:backward(g)
      H.assert_close(x.grad, t64(c.gx, shape), 2e-5)
      assert.equal("float32", x.grad.dtype)
      if w then H.assert_close(w.grad, dl.tensor(c.gw, {dtype = "float64"}), 1e-4) end
    end)
  end
end)

-- the entry itself and its variants, with a label each
local checks = {}
for name, c in pairs(cases) do
  checks[#checks + 1] = {label = name, fn = c.fn, inputs = c.inputs, opts = c.opts}
  for k, v in ipairs(c.variants or {}) do
    checks[#checks + 1] = {label = name .. " variant " .. k, fn = v.fn, inputs = v.inputs, opts = v.opts}
  end
end
table.sort(checks, function(a, b) return a.label < b.label end)

describe("activations: gradcheck", function()
  for i, c in ipairs(checks) do
    it(c.label, function()
      dl.manual_seed(700 + i)
      local ins = c.inputs()
      for _, x in ipairs(ins) do x:requires_grad_() end
      assert.is_true(A.gradcheck(c.fn, ins, c.opts))
    end)
  end
end)

describe("activations: forward mode", function()
  for i, c in ipairs(checks) do
    it(c.label .. ": jvp equals J·v", function()
      dl.manual_seed(800 + i)
      H.check_jvp(c.fn, c.inputs())
    end)
  end
  it("jvp through the dl.autograd.jacobian of softmax", function()
    dl.manual_seed(5)
    local x, v = dl.randn(4, {dtype = "float64"}), dl.randn(4, {dtype = "float64"})
    local f = function(t) return t:log_softmax(1) end
    local _, tout = A.jvp(f, {x}, {v})
    local J = A.jacobian(f, x)
    H.assert_close(tout, dl.mv(J, v), 1e-12)
  end)
end)

-- H v by reverse over reverse against central differences of the gradient
local function check_second(f, x, tol)
  local v = dl.randn(x:size(), {dtype = "float64"})
  local _, hv = A.hvp(f, x, v)
  local function grad_at(p)
    local xi = p:detach():requires_grad_(true)
    return A.grad(f(xi), xi)
  end
  local eps = 1e-5
  local num = (grad_at(x + v * eps) - grad_at(x - v * eps)) / (2 * eps)
  H.assert_close(hv, num, tol or 1e-6)
  assert.is_true(hv:abs():sum():item() > 0)
end

describe("activations: second derivatives (create_graph)", function()
  local c
  local function setup(n)
    dl.manual_seed(n)
    c = dl.randn(3, 4, {dtype = "float64"})
    return dl.randn(3, 4, {dtype = "float64"})
  end
  -- squared outputs so piecewise-linear ones have a non-zero Hessian too
  local ops = {
    leaky_relu = function(x) return x:leaky_relu(0.3) end,
    elu = function(x) return x:elu(0.8) end,
    gelu = function(x) return x:gelu() end,
    gelu_tanh = function(x) return x:gelu("tanh") end,
    silu = function(x) return x:silu() end,
    softplus = function(x) return x:softplus({beta = 1.5, threshold = 2}) end,
    softmax = function(x) return x:softmax(2) end,
    softmax_dim1 = function(x) return x:t():softmax(2) end,
    log_softmax = function(x) return x:log_softmax(1) end,
  }
  local names = {}
  for k in pairs(ops) do names[#names + 1] = k end
  table.sort(names)
  for i, name in ipairs(names) do
    it(name, function()
      local x = setup(900 + i)
      check_second(function(t)
        local y = ops[name](t)
        return (y * y * c:reshape(y:size())):sum()
      end, x)
    end)
  end
  it("prelu, with respect to the input and the slopes together", function()
    dl.manual_seed(950)
    local z = dl.randn(2 * 3 * 2 + 3, {dtype = "float64"})
    local cc = dl.randn(2, 3, 2, {dtype = "float64"})
    local f = function(t)
      local x, w = t:narrow(1, 1, 12):view(2, 3, 2), t:narrow(1, 13, 3)
      local y = x:prelu(w)
      return (y * y * cc):sum()
    end
    check_second(f, z)
  end)
  it("the gradient of a gradient records its own history", function()
    local x = dl.tensor({-1, 0.5, 2}, {dtype = "float64", requires_grad = true})
    local g = A.grad(x:gelu():sum(), x, nil, {create_graph = true})
    assert.is_true(g.requires_grad)
    assert.is_not_nil(g.grad_fn)
  end)
end)

describe("activations: autograd graph", function()
  it("names the nodes as PyTorch does", function()
    local x = dl.randn(2, 3, {dtype = "float64", requires_grad = true})
    local w = dl.tensor({0.25}, {dtype = "float64", requires_grad = true})
    assert.equal("LeakyReluBackward0", x:leaky_relu().grad_fn:name())
    assert.equal("EluBackward0", x:elu().grad_fn:name())
    assert.equal("GeluBackward0", x:gelu().grad_fn:name())
    assert.equal("GeluBackward0", x:gelu("tanh").grad_fn:name())
    assert.equal("SiluBackward0", x:silu().grad_fn:name())
    assert.equal("SoftplusBackward0", x:softplus().grad_fn:name())
    assert.equal("SoftmaxBackward0", x:softmax(1).grad_fn:name())
    assert.equal("LogSoftmaxBackward0", x:log_softmax(1).grad_fn:name())
    assert.equal("PreluKernelBackward0", x:prelu(w).grad_fn:name())
  end)
  it("records nothing without requires_grad or under no_grad", function()
    local x = dl.randn(2, 3)
    assert.is_false(x:gelu().requires_grad)
    local xr = dl.randn(2, 3, {requires_grad = true})
    local y = dl.no_grad(function() return xr:softmax(2) end)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
  end)
  it("gives the slope a gradient only when it requires one", function()
    local x = dl.randn(2, 3, {dtype = "float64", requires_grad = true})
    local w = dl.tensor({0.1, 0.2, 0.3}, {dtype = "float64"})
    x:prelu(w):sum():backward()
    assert.is_nil(w.grad)
    H.assert_close(x.grad, dl.where(x:gt(0), 1.0, w:expand(2, 3)), 1e-15)
  end)
  it("refuses a backward after the saved input was modified in place", function()
    local x = dl.randn(2, 3, {dtype = "float64", requires_grad = true})
    local h = x * 1
    local y = h:gelu()
    h:add_(1)
    H.assert_error(function() y:sum():backward() end, "GeluBackward0", "modified by an in-place")
  end)
  it("refuses a backward after the saved softmax output was modified in place", function()
    local x = dl.randn(2, 3, {dtype = "float64", requires_grad = true})
    local y = x:softmax(2)
    y:mul_(2)
    H.assert_error(function() y:sum():backward() end, "SoftmaxBackward0", "modified by an in-place")
  end)
  it("refuses in-place ops on a leaf that requires grad before they reach an activation", function()
    local x = dl.randn(3, {requires_grad = true})
    H.assert_error(function() x:mul_(2):gelu() end, "leaf")
  end)
end)

describe("activations: layouts and shapes", function()
  local names = {"leaky_relu", "elu", "gelu", "silu", "softplus"}
  for _, name in ipairs(names) do
    it(name .. ": a transposed or narrowed input gives the contiguous result", function()
      dl.manual_seed(11)
      local x = dl.randn(5, 7)
      -- strided runs use scalar libm, contiguous ones its SIMD twin: an ulp apart
      local tol = 1e-6
      H.assert_close(x:t()[name](x:t()), x:t():contiguous()[name](x:t():contiguous()), tol)
      local n = x:narrow(2, 2, 4)
      H.assert_close(n[name](n), n:contiguous()[name](n:contiguous()), tol)
      -- a broadcast (stride 0) input
      local e = dl.randn(1, 3):expand(4, 3)
      H.assert_close(e[name](e), e:contiguous()[name](e:contiguous()), tol)
    end)
  end
  it("softmax along every dim of a 3-d tensor sums to one", function()
    dl.manual_seed(12)
    local x = dl.randn(3, 4, 5, {dtype = "float64"})
    for d = 1, 3 do
      local s = x:softmax(d)
      H.assert_close(s:sum(d), dl.ones(table.unpack(s:sum(d):size())), 1e-12)
      H.assert_close(x:log_softmax(d), s:log(), 1e-12)
      -- a non-contiguous input
      local xt = x:transpose(1, 3)
      H.assert_close(xt:softmax(d), xt:contiguous():softmax(d), 1e-15)
    end
  end)
  it("softmax on large tensors (threaded) matches the composed formula", function()
    dl.manual_seed(13)
    for _, dt in ipairs({"float32", "float64"}) do
      local x = dl.randn(300, 257, {dtype = dt}) * 5
      for _, d in ipairs({1, 2}) do
        local e = (x - x:amax(d, {keepdim = true})):exp()
        local s = e / e:sum(d, {keepdim = true})
        H.assert_close(x:softmax(d), s, dt == "float32" and 1e-6 or 1e-14)
        H.assert_close(x:log_softmax(d), s:log(), dt == "float32" and 1e-4 or 1e-12)
      end
      local y = x:gelu()
      H.assert_close(y, x * (x / math.sqrt(2)):erf():add(1):mul(0.5), dt == "float32" and 1e-5 or 1e-13)
    end
  end)
  it("prelu on a large 4-d input matches where(x > 0, x, w x)", function()
    dl.manual_seed(14)
    local x = dl.randn(8, 16, 20, 20, {dtype = "float64", requires_grad = true})
    local w = dl.rand(16, {dtype = "float64", requires_grad = true})
    local y = x:prelu(w)
    local wb = w:detach():view(1, 16, 1, 1)
    H.assert_close(y, dl.where(x:detach():gt(0), x:detach(), x:detach() * wb), 0)
    local g = dl.randn(8, 16, 20, 20, {dtype = "float64"})
    y:backward(g)
    local xd = x:detach()
    H.assert_close(x.grad, dl.where(xd:gt(0), g, g * wb), 1e-15)
    local gw = dl.where(xd:gt(0), 0.0, g * xd):sum({1, 3, 4})
    H.assert_close(w.grad, gw, 1e-10)
  end)
  it("keeps 0-d and empty shapes", function()
    assert.equal(1, dl.tensor(2.5):softmax(1):item())
    assert.equal(0, dl.tensor(2.5):log_softmax(-1):item())
    assert.same({0, 3}, dl.empty(0, 3):softmax(2):size())
    assert.same({3, 0}, dl.empty(3, 0):log_softmax(2):size())
    assert.same({0}, dl.empty(0):gelu():size())
    assert.same({}, dl.tensor(-1.5):elu():size())
    local x = dl.tensor(3.0, {dtype = "float64", requires_grad = true})
    x:softmax(1):backward()
    assert.equal(0, x.grad:item())
  end)
end)

describe("activations: numerical stability", function()
  for _, dt in ipairs({"float32", "float64"}) do
    it("softmax and log_softmax of [1000, 0] (" .. dt .. ")", function()
      local x = dl.tensor({1000, 0}, {dtype = dt})
      H.assert_close(x:softmax(1), {1, 0}, 0)
      H.assert_close(x:log_softmax(1), {0, -1000}, 0)
      local big = dl.tensor({{1e4, 1e4 + 1}, {-1e4, -1e4 - 1}}, {dtype = dt})
      local ls = big:log_softmax(2)
      H.assert_close(ls, {{-1.3132616875182228, -0.31326168751822286}, {-0.31326168751822286, -1.3132616875182228}},
        dt == "float32" and 1e-6 or 1e-12)
      local xr = x:clone():requires_grad_()
      xr:softmax(1):select(1, 2):backward()
      assert.is_true(xr.grad:isfinite():all():item())
      local xl = dl.tensor({1e4, -1e4, 0}, {dtype = dt, requires_grad = true})
      xl:log_softmax(1):sum():backward()
      H.assert_close(xl.grad, {-2, 1, 1}, 1e-6)
    end)
    it("sigmoid, softplus, silu, gelu, elu at ±100 and beyond (" .. dt .. ")", function()
      local x = dl.tensor({-100, 100}, {dtype = dt, requires_grad = true})
      H.assert_close(x:sigmoid(), {0, 1}, 1e-30)
      local sp = x:softplus()
      H.assert_close(sp, {math.exp(-100), 100}, 1e-30)
      sp:sum():backward()
      H.assert_close(x.grad, {0, 1}, 1e-30)
      -- no threshold: the stable form still gives x for large x
      local far = dl.tensor({-800, 800}, {dtype = dt, requires_grad = true})
      local y = far:softplus({threshold = 1e30})
      H.assert_close(y, {0, 800}, 0)
      y:sum():backward()
      H.assert_close(far.grad, {0, 1}, 0)
      local z = dl.tensor({-1000, 1000}, {dtype = dt, requires_grad = true})
      H.assert_close(z:silu(), {0, 1000}, 0)
      H.assert_close(z:gelu(), {0, 1000}, 0)
      H.assert_close(z:gelu("tanh"), {0, 1000}, 0)
      H.assert_close(z:elu(), {-1, 1000}, 0)
      local s = z:silu() + z:gelu() + z:elu() + z:softplus({beta = 2}) + z:gelu("tanh")
      s:sum():backward()
      H.assert_close(z.grad, {0, 5}, 0)
    end)
  end
  it("second derivatives stay finite where exp would overflow", function()
    local x = dl.tensor({-800, 800}, {dtype = "float64", requires_grad = true})
    for _, f in ipairs({function(t) return t:elu() end, function(t) return t:softplus({threshold = 1e30}) end,
      function(t) return t:silu() end}) do
      local g = A.grad(f(x):sum(), x, nil, {create_graph = true})
      local h = A.grad(g:sum(), x)
      assert.is_true(h:isfinite():all():item())
    end
  end)
end)

describe("activations: bad input", function()
  local ops = {
    leaky_relu = function(x) return x:leaky_relu() end,
    elu = function(x) return x:elu() end,
    gelu = function(x) return x:gelu() end,
    silu = function(x) return x:silu() end,
    softplus = function(x) return x:softplus() end,
    softmax = function(x) return x:softmax(1) end,
    log_softmax = function(x) return x:log_softmax(1) end,
    prelu = function(x) return x:prelu(dl.tensor({0.25})) end,
  }
  for name, f in pairs(ops) do
    it(name .. " refuses integer and bool tensors", function()
      H.assert_error(function() f(dl.tensor({1, 2})) end, "dl." .. name .. ": expected a floating-point tensor, got int64")
      H.assert_error(function() f(dl.tensor({true})) end, "got bool")
      H.assert_error(function() f(dl.tensor({1}, {dtype = "uint8"})) end, "got uint8")
    end)
  end
  it("softmax / log_softmax refuse a bad dim", function()
    local x = dl.randn(2, 3)
    H.assert_error(function() x:softmax(3) end, "dim 3 out of range for a 2-d tensor")
    H.assert_error(function() x:log_softmax(-3) end, "dim -3 out of range")
    H.assert_error(function() x:softmax(0) end, "dim 0 out of range")
    -- a method call counts self out of the argument numbers
    H.assert_error(function() x:softmax() end, "Tensor:softmax: bad argument #1")
    H.assert_error(function() dl.softmax(x) end, "dl.softmax: bad argument #2")
    H.assert_error(function() F.softmax(x, "a") end, "bad argument #2")
  end)
  it("prelu refuses a slope count that is neither 1 nor the channels", function()
    H.assert_error(function() dl.randn(2, 3):prelu(dl.randn(2)) end,
      "dl.prelu: weight [2] has 2 elements; expected 1 or the 3 channels (dim 2) of input [2,3]")
    H.assert_error(function() dl.randn(3):prelu(dl.randn(3)) end, "expected 1 or the 1 channels")
    H.assert_error(function() dl.randn(3):prelu(dl.tensor({1})) end, "floating-point weight, got int64")
    H.assert_error(function() dl.randn(3):prelu(dl.tensor({0.5}, {dtype = "float64"})) end,
      "dl.prelu: weight dtype float64 does not match input dtype float32")
    H.assert_error(function() dl.prelu(dl.randn(3), 0.25) end, "dl.prelu: bad argument #2 (tensor expected")
  end)
  it("refuses bad options", function()
    local x = dl.randn(3)
    H.assert_error(function() x:gelu({approximate = "fast"}) end, 'approximate must be "none" or "tanh"')
    H.assert_error(function() x:gelu("erf") end, "approximate must be")
    H.assert_error(function() x:gelu({approx = "tanh"}) end, "approx")
    H.assert_error(function() x:softplus({beta = 0}) end, "beta must be non-zero")
    H.assert_error(function() x:softplus({betta = 2}) end, "betta")
    H.assert_error(function() F.leaky_relu(x, "x") end, "dl.leaky_relu: bad argument #2")
    H.assert_error(function() x:elu({alpha = "one"}) end, "option 'alpha' must be a number")
    H.assert_error(function() dl.gelu(5) end, "bad argument #1")
  end)
end)

describe("nn activation modules", function()
  it("print like PyTorch", function()
    assert.equal("ReLU()", tostring(nn.ReLU()))
    assert.equal("Tanh()", tostring(nn.Tanh()))
    assert.equal("Sigmoid()", tostring(nn.Sigmoid()))
    assert.equal("SiLU()", tostring(nn.SiLU()))
    assert.equal("LeakyReLU(negative_slope=0.01)", tostring(nn.LeakyReLU()))
    assert.equal("LeakyReLU(negative_slope=0.2)", tostring(nn.LeakyReLU(0.2)))
    assert.equal("PReLU(num_parameters=1)", tostring(nn.PReLU()))
    assert.equal("PReLU(num_parameters=3)", tostring(nn.PReLU(3)))
    assert.equal("ELU(alpha=1.0)", tostring(nn.ELU()))
    assert.equal("GELU(approximate='none')", tostring(nn.GELU()))
    assert.equal("GELU(approximate='tanh')", tostring(nn.GELU({approximate = "tanh"})))
    assert.equal("Softplus(beta=1, threshold=20)", tostring(nn.Softplus()))
    assert.equal("Softplus(beta=2, threshold=10)", tostring(nn.Softplus({beta = 2, threshold = 10})))
    assert.equal("Softmax(dim=2)", tostring(nn.Softmax(2)))
    assert.equal("LogSoftmax(dim=-1)", tostring(nn.LogSoftmax(-1)))
  end)
  it("forward equals the functional form", function()
    dl.manual_seed(21)
    local x = dl.randn(3, 4)
    local pairs_ = {
      {nn.ReLU(), x:relu()}, {nn.Tanh(), x:tanh()}, {nn.Sigmoid(), x:sigmoid()}, {nn.SiLU(), F.silu(x)},
      {nn.LeakyReLU(0.3), F.leaky_relu(x, 0.3)}, {nn.ELU(0.5), F.elu(x, 0.5)}, {nn.GELU(), F.gelu(x)},
      {nn.GELU("tanh"), F.gelu(x, "tanh")}, {nn.Softplus(2, 3), F.softplus(x, {beta = 2, threshold = 3})},
      {nn.Softmax(1), F.softmax(x, 1)}, {nn.LogSoftmax(2), F.log_softmax(x, 2)},
      {nn.PReLU(), F.prelu(x, dl.tensor({0.25}))},
    }
    for _, p in ipairs(pairs_) do H.assert_close(p[1](x), p[2], 0) end
  end)
  it("have no parameters except PReLU's slopes", function()
    assert.equal(0, #nn.GELU():parameters())
    assert.equal(0, #nn.Softmax(1):parameters())
    local p = nn.PReLU(4, 0.1, {dtype = "float64"})
    local ps = p:named_parameters()
    assert.equal(1, #ps)
    assert.equal("weight", ps[1][1])
    assert.same({4}, p.weight:size())
    assert.equal("float64", p.weight.dtype)
    H.assert_close(p.weight, {0.1, 0.1, 0.1, 0.1}, 1e-15)
    assert.is_true(p.weight.requires_grad)
  end)
  it("PReLU learns its slopes", function()
    local p = nn.PReLU(2, 0.5, {dtype = "float64"})
    local x = dl.tensor({{-1, 2}, {-3, -4}}, {dtype = "float64"})
    local y = p(x)
    H.assert_close(y, {{-0.5, 2}, {-1.5, -2}}, 1e-15)
    y:sum():backward()
    H.assert_close(p.weight.grad, {-4, -4}, 1e-15)
  end)
  it("work inside Sequential with autograd", function()
    dl.manual_seed(22)
    local m = nn.Sequential(nn.Linear(4, 5), nn.GELU(), nn.Linear(5, 3), nn.LogSoftmax(2))
    local y = m(dl.randn(6, 4))
    assert.same({6, 3}, y:size())
    H.assert_close(y:exp():sum(2), dl.ones(6), 1e-5)
    y:sum():backward()
    assert.is_not_nil(m[1].weight.grad)
  end)
  it("refuse bad constructor arguments", function()
    H.assert_error(function() nn.Softmax() end, "dl.nn.Softmax", "dim must be a non-zero integer")
    H.assert_error(function() nn.LogSoftmax(0) end, "dim must be a non-zero integer")
    H.assert_error(function() nn.PReLU(0) end, "num_parameters must be an integer >= 1")
    H.assert_error(function() nn.PReLU(2, "x") end, "init must be a number")
    H.assert_error(function() nn.LeakyReLU("x") end, "negative_slope must be a number")
    H.assert_error(function() nn.GELU("exact") end, 'approximate must be "none" or "tanh"')
    H.assert_error(function() nn.Softplus({beta = 0}) end, "beta must be non-zero")
    H.assert_error(function() nn.Softplus({gamma = 1}) end, "unknown option 'gamma'")
  end)
  it("PReLU with per-channel slopes refuses an input with other channels", function()
    H.assert_error(function() nn.PReLU(3)(dl.randn(2, 4)) end, "expected 1 or the 4 channels")
  end)
end)
