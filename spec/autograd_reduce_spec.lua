-- Autograd of the reductions and scans: reverse mode (gradcheck over every
-- case of spec/gradcheck/reduce.lua), forward mode (jvp against reverse-mode
-- rows), second derivatives through recorded backward passes, PyTorch's
-- conventions at zeros and ties, and the safety checks.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd
local ops = require "spec.gradcheck.reduce"

local F64 = {dtype = "float64"}

local function f64(t) return dl.tensor(t, {dtype = "float64", requires_grad = true}) end

-- fresh inputs for a case, marked as leaves requiring grad
local function inputs_of(c, seed)
  dl.manual_seed(seed)
  local xs = c.inputs()
  for _, x in ipairs(xs) do x:requires_grad_(true) end
  return xs
end

local function check_jvp(fn, x)
  local v = dl.randn(x:size(), F64)
  local out, tout = A.jvp(fn, {x:detach()}, {v})
  assert.same(out:size(), tout:size())
  assert.equal("float64", tout.dtype)
  local expected = H.reverse_jv(fn, {x}, {v})
  local got = H.flat(tout)
  assert.equal(#expected, #got)
  for k = 1, #got do
    assert(math.abs(got[k] - expected[k]) <= 1e-9 * (1 + math.abs(expected[k])),
      string.format("jvp element %d: forward %.12g, reverse %.12g", k, got[k], expected[k]))
  end
  H.assert_close(out, fn(x:detach()), 0)
end

-- second derivatives: gradcheck of x -> w^T J(x) (a vector-Jacobian product
-- taken with create_graph, so it is differentiable in x)
local function check_double(fn, x)
  dl.manual_seed(7)
  local w = dl.randn(fn(x:detach()):size(), F64)
  local function vjp(xi)
    if xi.requires_grad then return A.grad(fn(xi), xi, w, {create_graph = true}) end
    -- gradcheck's numerical side: the first derivative at a perturbed point
    return dl.enable_grad(function()
      local z = xi:detach():requires_grad_(true)
      return A.grad(fn(z), z, w)
    end)
  end
  assert.is_true(A.gradcheck(vjp, {x}))
end

describe("reductions: gradcheck (reverse mode, float64 central differences)", function()
  for _, name in ipairs(H.sorted_keys(ops)) do
    for i, c in ipairs(ops[name].variants) do
      it(name .. ": " .. c.desc, function()
        assert.is_true(A.gradcheck(c.fn, inputs_of(c, 100 + i)))
      end)
    end
  end
end)

describe("reductions: jvp agrees with reverse mode", function()
  for _, name in ipairs(H.sorted_keys(ops)) do
    for i, c in ipairs(ops[name].variants) do
      it(name .. ": " .. c.desc, function()
        local xs = inputs_of(c, 200 + i)
        check_jvp(c.fn, xs[1])
      end)
    end
  end
end)

describe("reductions: float32", function()
  for _, name in ipairs(H.sorted_keys(ops)) do
    for i, c in ipairs(ops[name].variants) do
      it(name .. ": " .. c.desc .. " gives float32 gradients close to float64 ones", function()
        local x64 = inputs_of(c, 400 + i)[1]
        local x32 = x64:detach():float():requires_grad_(true)
        local y64, y32 = c.fn(x64), c.fn(x32)
        assert.equal("float32", y32.dtype)
        local w = dl.randn(y64:size(), F64)
        y64:backward(w)
        y32:backward(w:float())
        assert.equal("float32", x32.grad.dtype)
        local scale = 1
        for _, g in ipairs(H.flat(x64.grad)) do scale = math.max(scale, math.abs(g)) end
        H.assert_close(x32.grad, x64.grad, 1e-4 * scale)
      end)
    end
  end
end)

describe("reductions: second derivatives (create_graph)", function()
  -- linear reductions (sum, mean, cumsum, max, amax) have a zero second
  -- derivative: they are checked composed with cumprod
  local function randn34() return dl.randn(3, 4, F64) end
  local cases = {
    {"sum over dim 2", function(x) return x:cumprod(2):sum(2) end, randn34},
    {"mean keepdim", function(x) return x:cumprod(1):mean(1, true) end, randn34},
    {"prod without zeros", function(x) return x:prod(2) end, randn34},
    {"prod with one zero", function(x) return x:prod() end, function()
      local x = dl.randn(2, 3, F64)
      x:narrow(2, 2, 1):narrow(1, 1, 1):fill_(0)
      return x
    end},
    {"prod with two zeros", function(x) return x:prod(2) end, function()
      local x = dl.randn(2, 4, F64)
      x:narrow(2, 2, 1):fill_(0)
      x:narrow(2, 4, 1):narrow(1, 1, 1):fill_(0)
      return x
    end},
    {"var", function(x) return x:var(1) end, randn34},
    {"std", function(x) return x:std(2, true) end, randn34},
    {"norm p = 2", function(x) return x:norm(2, 2) end, randn34},
    {"norm p = 3", function(x) return x:norm(3) end, randn34},
    {"norm p = 1.5", function(x) return x:norm(1.5, 1) end, randn34},
    {"norm p = 0.5", function(x) return x:norm(0.5, 1) end, function() return dl.rand(3, 4, F64) + 0.5 end},
    {"logsumexp", function(x) return x:logsumexp(2) end, randn34},
    {"max along a dim", function(x) return (x:cumprod(2):max(2)) end, randn34},
    {"amax", function(x) return x:cumprod(1):amax(1) end, randn34},
    {"cumsum", function(x) return x:cumprod(2):cumsum(2) end, randn34},
    {"cumprod without zeros", function(x) return x:cumprod(2) end, randn34},
    {"cumprod with zeros", function(x) return x:cumprod(2) end, function()
      local x = dl.randn(3, 5, F64)
      x:narrow(2, 2, 1):fill_(0)
      x:narrow(2, 4, 1):narrow(1, 1, 1):fill_(0)
      return x
    end},
  }
  for i, c in ipairs(cases) do
    it(c[1], function()
      dl.manual_seed(300 + i)
      local x = c[3]():requires_grad_(true)
      check_double(c[2], x)
    end)
  end
  it("hvp of logsumexp is diag(p) - p p^T", function()
    local x = dl.tensor({0.5, -1, 2}, F64)
    local v = dl.tensor({1, 2, -1}, F64)
    x:requires_grad_(true)
    local g = A.grad(x:logsumexp(1), x, nil, {create_graph = true})
    local hv = A.grad(g, x, v)
    local e = {math.exp(0.5), math.exp(-1), math.exp(2)}
    local s = e[1] + e[2] + e[3]
    local p = {e[1] / s, e[2] / s, e[3] / s}
    local pv = p[1] * 1 + p[2] * 2 + p[3] * -1
    H.assert_close(hv, {p[1] * (1 - pv), p[2] * (2 - pv), p[3] * (-1 - pv)}, 1e-12)
  end)
end)

describe("reductions: PyTorch's conventions", function()
  it("prod with one zero: the zero gets the product of the others", function()
    local x = f64({2, 0, 3})
    x:prod():backward()
    H.assert_close(x.grad, {0, 6, 0}, 0)
  end)
  it("prod with several zeros: every gradient is zero", function()
    local x = f64({{0, 4, 0}, {2, 3, 5}})
    x:prod(2):sum():backward()
    H.assert_close(x.grad, {{0, 0, 0}, {15, 10, 6}}, 1e-12)
  end)
  it("prod without zeros is out / x", function()
    local x = f64({{2, 3}, {4, 5}})
    x:prod(1, true):backward(dl.tensor({{1, 10}}, F64))
    H.assert_close(x.grad, {{4, 50}, {2, 30}}, 1e-12)
  end)
  it("cumprod with a zero: hand values", function()
    local x = f64({2, 0, 3, 4})
    x:cumprod(1):sum():backward()
    -- y = (2, 0, 0, 0); dy/dx1 = (1, 0, 0, 0); dy/dx2 = (0, 2, 6, 24)
    H.assert_close(x.grad, {1, 32, 0, 0}, 1e-12)
  end)
  it("amax shares the gradient evenly among ties", function()
    local x = f64({{1, 3, 3}, {5, 2, 5}})
    x:amax(2):sum():backward()
    H.assert_close(x.grad, {{0, 0.5, 0.5}, {0.5, 0, 0.5}}, 0)
  end)
  it("max() over all shares the gradient among ties; min too", function()
    local x = f64({4, 1, 4, 4})
    x:max():backward()
    H.assert_close(x.grad, {1 / 3, 0, 1 / 3, 1 / 3}, 1e-15)
    local y = f64({2, -1, -1})
    dl.min(y):backward()
    H.assert_close(y.grad, {0, 0.5, 0.5}, 0)
  end)
  it("max along a dim sends the gradient to the returned index", function()
    local x = f64({{1, 3, 3}, {7, 2, 0}})
    local v, i = x:max(2)
    H.assert_close(i, {2, 1}, 0)
    v:backward(dl.tensor({10, 20}, F64))
    H.assert_close(x.grad, {{0, 10, 0}, {20, 0, 0}}, 0)
    assert.is_false(i.requires_grad)
  end)
  it("min along a dim with keepdim", function()
    local x = f64({{1, 3}, {0, 2}})
    local v = x:min(1, true)
    assert.same({1, 2}, v:size())
    v:sum():backward()
    H.assert_close(x.grad, {{0, 0}, {1, 1}}, 0)
  end)
  it("norm at 0 has gradient 0 for p = 2 and general p", function()
    for _, p in ipairs({2, 3, 1.5}) do
      local x = f64({0, 0, 0})
      x:norm(p):backward()
      H.assert_close(x.grad, {0, 0, 0}, 0)
    end
  end)
  it("norm p = 1 is sign(x) (0 at 0), p = inf splits among ties", function()
    local x = f64({-2, 0, 3})
    x:norm(1):backward()
    H.assert_close(x.grad, {-1, 0, 1}, 0)
    local y = f64({-3, 1, 3})
    y:norm("inf"):backward()
    H.assert_close(y.grad, {-0.5, 0, 0.5}, 0)
  end)
  it("norm p = 2: x / |x|", function()
    local x = f64({3, -4})
    x:norm():backward()
    H.assert_close(x.grad, {0.6, -0.8}, 1e-15)
  end)
  it("std of a constant has gradient 0", function()
    local x = f64({{2, 2, 2}, {1, 2, 3}})
    x:std(2):sum():backward()
    H.assert_close(x.grad, {{0, 0, 0}, {-0.5, 0, 0.5}}, 1e-15)
  end)
  it("var: 2 (x - mean) / (n - correction)", function()
    local x = f64({1, 2, 6})
    x:var():backward()
    H.assert_close(x.grad, {-2, -1, 3}, 1e-14)
    local y = f64({1, 2, 6})
    y:var(1, {correction = 0}):backward()
    H.assert_close(y.grad, {-4 / 3, -2 / 3, 2}, 1e-14)
  end)
  it("mean over dims divides by the folded count", function()
    local x = f64({{1, 2, 3}, {4, 5, 6}})
    x:mean(2):sum():backward()
    H.assert_close(x.grad, {{1 / 3, 1 / 3, 1 / 3}, {1 / 3, 1 / 3, 1 / 3}}, 1e-15)
  end)
  it("cumsum's gradient is the reversed running sum", function()
    local x = f64({1, 2, 3})
    x:cumsum(1):backward(dl.tensor({1, 10, 100}, F64))
    H.assert_close(x.grad, {111, 110, 100}, 0)
  end)
  it("float32 inputs get float32 gradients", function()
    local x = dl.tensor({{1, 2}, {3, 4}}, {dtype = "float32", requires_grad = true})
    x:logsumexp(2):sum():backward()
    assert.equal("float32", x.grad.dtype)
    local e = math.exp(1)
    H.assert_close(x.grad, {{1 / (1 + e), e / (1 + e)}, {1 / (1 + e), e / (1 + e)}}, 1e-6)
  end)
  it("gradients of 0-d inputs", function()
    local x = dl.tensor(3, {dtype = "float64", requires_grad = true})
    for _, y in ipairs({x:prod(), x:cumprod(1), x:cumsum(-1), x:amax(), (x:max(1)), x:logsumexp(1)}) do
      assert.same({}, y:size())
      y:backward()
    end
    H.assert_close(x.grad, 6, 0)
  end)
end)

describe("reductions: graph records", function()
  it("names nodes as PyTorch does", function()
    local x = f64({{1, 2}, {3, 4}})
    local names = {
      {x:mean(), "MeanBackward0"}, {x:mean(1), "MeanBackward1"}, {x:prod(), "ProdBackward0"},
      {x:prod(2), "ProdBackward1"}, {x:var(), "VarBackward0"}, {x:std(1), "StdBackward0"},
      {x:norm(), "NormBackward1"}, {x:logsumexp(1), "LogsumexpBackward0"}, {(x:max(1)), "MaxBackward0"},
      {(x:min(2)), "MinBackward0"}, {x:max(), "MaxBackward1"}, {x:min(), "MinBackward1"},
      {x:amax(1), "AmaxBackward0"}, {x:amin(1), "AminBackward0"}, {x:cumsum(1), "CumsumBackward0"},
      {x:cumprod(2), "CumprodBackward0"},
    }
    for _, p in ipairs(names) do assert.equal(p[2], p[1].grad_fn:name()) end
  end)
  it("integer inputs, indices and boolean reductions never record", function()
    local x = f64({{1, 2}, {3, 4}})
    local _, i = x:max(2)
    assert.is_false(i.requires_grad)
    assert.is_false(x:argmax().requires_grad)
    assert.is_false(x:all().requires_grad)
    assert.is_false(x:count_nonzero().requires_grad)
    local n = dl.tensor({1, 2, 3})
    assert.is_nil(n:sum().grad_fn)
    assert.is_nil(n:cumprod(1).grad_fn)
  end)
  it("no_grad and inputs without requires_grad record nothing", function()
    local x = f64({1, 2, 3})
    local y = dl.no_grad(function() return x:prod() end)
    assert.is_false(y.requires_grad)
    assert.is_nil(dl.tensor({1, 2}, F64):var().grad_fn)
  end)
end)

describe("reductions: safety", function()
  it("modifying a saved input in place then backward raises naming the op", function()
    local x = f64({1, 2, 3})
    local a = x:clone()
    local y = a:prod()
    dl.no_grad(function() a:mul_(2) end)
    H.assert_error(function() y:backward() end, "ProdBackward0", "in-place")
  end)
  it("modifying a saved output in place then backward raises naming the op", function()
    local x = f64({1, 2, 3})
    local y = x:cumprod(1)
    dl.no_grad(function() y:add_(1) end)
    H.assert_error(function() y:sum():backward() end, "CumprodBackward0", "in-place")
  end)
  it("max's saved indices are checked too", function()
    local x = f64({{1, 3}, {2, 0}})
    local v, i = x:max(2)
    i:fill_(1)
    H.assert_error(function() v:sum():backward() end, "MaxBackward0", "in-place")
  end)
  it("an in-place op on a leaf that requires grad is refused, the leaf unchanged", function()
    local x = f64({1, 2})
    H.assert_error(function() x:fill_(0) end, "leaf")
    H.assert_close(x:sum(), 3, 0)
  end)
  it("backward twice without retain_graph says so", function()
    local x = f64({1, 2, 3})
    local y = x:logsumexp(1)
    y:backward()
    H.assert_error(function() y:backward() end, "second time")
  end)
  it("bad arguments still fail cleanly with grad on", function()
    local x = f64({{1, 2}, {3, 4}})
    H.assert_error(function() x:sum(3) end, "out of range")
    H.assert_error(function() x:prod({1, 1}) end, "more than once")
    H.assert_error(function() x:norm("bad") end, "unknown norm")
    H.assert_error(function() dl.zeros(0, F64):requires_grad_():max() end, "non-empty")
  end)
end)
