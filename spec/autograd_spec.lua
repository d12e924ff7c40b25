-- The autograd engine: graph building, backward, accumulation, grad mode,
-- safety checks, autograd.grad, custom Lua functions, forward mode.
local dl = require "dlua"
local H = require "spec.helper"

local function f64(t) return dl.tensor(t, {dtype = "float64", requires_grad = true}) end

describe("Tensor:backward", function()
  it("accumulates into leaves and marks non-leaves", function()
    local x = f64({1, 2, 3})
    local y = (x * x):sum()
    assert.is_true(x.is_leaf)
    assert.is_false(y.is_leaf)
    assert.equal("SumBackward0", y.grad_fn:name())
    y:backward()
    H.assert_close(x.grad, {2, 4, 6})
    local z = (x * 3):sum()
    z:backward()
    H.assert_close(x.grad, {5, 7, 9})
  end)
  it("adds to .grad in place, so a reference kept across backward calls sees the sum (as PyTorch)", function()
    local x = f64({1, 2})
    ;(x * x):sum():backward()
    local g = x.grad
    ;(x * 3):sum():backward()
    H.assert_close(g, {5, 7})
    -- under create_graph the sum is recorded: a new tensor with a history
    local y = f64({1, 2})
    ;(y * y):sum():backward()
    local gy = y.grad
    ;(y * y):sum():backward({create_graph = true})
    H.assert_close(gy, {2, 4})
    H.assert_close(y.grad, {4, 8})
    -- a .grad first set under create_graph is a copy: the caller's gradient
    -- and the other leaf's (AddBackward hands both the same tensor) stay apart
    local x1, x2 = f64({1, 2}), f64({3, 4})
    local go = dl.ones(2, {dtype = "float64"})
    ;(x1 + x2):backward(go, {create_graph = true})
    ;(x1 + x2):backward(dl.ones(2, {dtype = "float64"}))
    H.assert_close(x1.grad, {2, 2})
    H.assert_close(x2.grad, {2, 2})
    H.assert_close(go, {1, 1})
  end)
  it("gives zeros, not nothing, to the values a zero_ / fill_ / copy_ overwrote (as PyTorch)", function()
    for _, write in ipairs({
      function(q) q:zero_() end,
      function(q) q:fill_(7) end,
      function(q) q:copy_(dl.tensor({5, 6}, {dtype = "float64"})) end,
    }) do
      local x = f64({1, 2})
      local q = x * 1
      write(q)
      q:sum():backward()
      H.assert_close(x.grad, {0, 0})
    end
    local w, s = f64({1, 2}), f64({3, 4})
    local q = w * 1
    q:copy_(s)
    ;(q * 2):sum():backward()
    H.assert_close(w.grad, {0, 0})
    H.assert_close(s.grad, {2, 2})
  end)
  it("reduces broadcast gradients to each input's shape", function()
    local a = f64({{1, 2, 3}, {4, 5, 6}})
    local b = f64({10, 20, 30})
    ;(a * b):sum():backward()
    H.assert_close(b.grad, {5, 7, 9})
    H.assert_close(a.grad, {{10, 20, 30}, {10, 20, 30}})
  end)
  it("takes a gradient for non-scalar outputs and refuses none", function()
    local x = f64({1, 2})
    local y = x * 2
    H.assert_error(function() y:backward() end, "dl.backward", "scalar outputs")
    y:backward(dl.tensor({1, 10}, {dtype = "float64"}))
    H.assert_close(x.grad, {2, 20})
  end)
  it("frees the graph unless retain_graph, and says so", function()
    local x = f64({1, 2})
    local y = (x * x):sum()
    y:backward({retain_graph = true})
    y:backward()
    H.assert_close(x.grad, {4, 8})
    H.assert_error(function() y:backward() end, "second time", "retain_graph")
  end)
  it("keeps gradients of non-leaves that ask retain_grad", function()
    local x = f64({1, 2})
    local h = x * 3
    h:retain_grad()
    ;(h * h):sum():backward()
    H.assert_close(h.grad, {6, 12})
    H.assert_close(x.grad, {18, 36})
  end)
  it("detach cuts the graph and shares storage", function()
    local x = f64({1, 2})
    local d = (x * 2):detach()
    assert.is_false(d.requires_grad)
    assert.is_nil(d.grad_fn)
  end)
  it("works through a 10,000-op chain without recursion", function()
    local x = f64({1})
    local y = x
    for _ = 1, 10000 do y = y * 1 end
    y:sum():backward()
    H.assert_close(x.grad, {1})
  end)
end)

describe("safety", function()
  it("catches in-place changes to saved tensors, naming the op", function()
    local x = f64({1, 2})
    local a = x * 1
    local y = (a * a):sum()
    dl.no_grad(function() a:mul_(2) end)
    H.assert_error(function() y:backward() end, "MulBackward0", "in-place")
  end)
  it("refuses in-place ops on leaves that require grad", function()
    local x = f64({1, 2})
    H.assert_error(function() x:add_(1) end, "leaf")
    dl.no_grad(function() x:add_(1) end)
    H.assert_close(x, {2, 3})
  end)
  it("only floating-point tensors require grad", function()
    H.assert_error(function() dl.tensor({1, 2}):requires_grad_() end, "floating")
  end)
end)

describe("grad mode", function()
  it("no_grad runs without recording and restores the mode after errors", function()
    local x = f64({1})
    local y = dl.no_grad(function() return x * 2 end)
    assert.is_false(y.requires_grad)
    assert.is_true(dl.is_grad_enabled())
    pcall(dl.no_grad, function() error("inside") end)
    assert.is_true(dl.is_grad_enabled())
  end)
end)

describe("dl.autograd.grad", function()
  it("refuses an empty list of inputs or outputs, and tables that are not lists", function()
    local x = dl.randn(3):requires_grad_()
    local y = (x * x):sum()
    H.assert_error(function() dl.autograd.grad(y, {}) end, "dl.autograd.grad: bad argument #2", "no inputs")
    H.assert_error(function() dl.autograd.grad({}, x) end, "dl.autograd.grad: bad argument #1", "no outputs")
    H.assert_error(function() dl.autograd.grad(y, {x, extra = x}) end, "not a list", '"extra"')
  end)
  it("forward-mode helpers check their arguments", function()
    H.assert_error(function() dl.autograd.jvp(nil, dl.zeros(2), dl.zeros(2)) end,
      "dl.autograd.jvp: bad argument #1 (function expected, got nil)")
    H.assert_error(function() dl.autograd.jvp(function(a) return a end, {dl.zeros(2), "x"}, {dl.zeros(2)}) end,
      "dl.autograd.jvp: bad argument #2 (entry 2 is a string, not a tensor)")
    H.assert_error(function() dl.autograd.jacobian(function(a) return a end, "x") end,
      "dl.autograd.jacobian: bad argument #2 (x must be a tensor, got string)")
    H.assert_error(function() dl.autograd.gradcheck(function(a) return a end, {}) end,
      "dl.autograd.gradcheck: bad argument #2 (no inputs to check)")
  end)

  it("returns gradients without touching .grad", function()
    local x = f64({1, 2, 3})
    local w = f64({4, 5, 6})
    local gx, gw = dl.autograd.grad((x * w):sum(), {x, w})
    H.assert_close(gx, {4, 5, 6})
    H.assert_close(gw, {1, 2, 3})
    assert.is_nil(x.grad)
  end)
  it("create_graph gives second derivatives", function()
    local x = f64({1, 2, 3})
    local y = (x * x * x):sum()
    local g = dl.autograd.grad(y, x, nil, {create_graph = true})
    H.assert_close(g, {3, 12, 27})
    local g2 = dl.autograd.grad(g:sum(), x)
    H.assert_close(g2, {6, 12, 18})
  end)
  it("complains about unused inputs unless allowed", function()
    local x, z = f64({1}), f64({2})
    H.assert_error(function() dl.autograd.grad((x * 2):sum(), {x, z}) end, "not used")
    local gx, gz = dl.autograd.grad((x * 2):sum(), {x, z}, nil, {allow_unused = true})
    H.assert_close(gx, {2})
    assert.is_nil(gz)
  end)
  it("takes nil or false in grad_outputs for a one-element output (PyTorch's None)", function()
    local x = f64({1, 2})
    local y1, y2 = (x * x):sum(), x * 3
    local ones = dl.ones(2, {dtype = "float64"})
    -- d/dx sum(x^2) + d/dx sum(3x) = 2x + 3
    H.assert_close(dl.autograd.grad({y1, y2}, x, {nil, ones}, {retain_graph = true}), {5, 7})
    H.assert_close(dl.autograd.grad({y2, y1}, x, {ones, false}, {retain_graph = true}), {5, 7})
    H.assert_close(dl.autograd.grad({y2, y1}, x, {ones}, {retain_graph = true}), {5, 7}) -- a trailing nil
    H.assert_error(function() dl.autograd.grad({y1, y2}, x, {false, false}) end,
      "grad can be implicitly created only for scalar outputs (got shape [2])")
    H.assert_error(function() dl.autograd.grad({y1, y2}, x, {1, 2}) end, "entry 1 is not a tensor")
    H.assert_error(function() dl.autograd.grad({y1, y2}, x, {nil, nil, ones}) end, "3 grad_outputs for 2 outputs")
    H.assert_error(function() dl.autograd.grad({y1, y2}, x, ones) end, "1 grad_outputs for 2 outputs")
  end)
end)

describe("the seed's worked example", function()
  it("dJ/dw = (2/M)(Xw + b - y)^T X for J = mean((Xw + b - y)^2)", function()
    dl.manual_seed(3)
    local M = 7
    local X = dl.randn(M, 3, {dtype = "float64"})
    local y = dl.randn(M, {dtype = "float64"})
    local w = dl.randn(3, {dtype = "float64"}):requires_grad_()
    local b = dl.tensor(0.5, {dtype = "float64", requires_grad = true})
    local r = X:matmul(w) + b - y
    local J = (r * r):sum() / M
    J:backward()
    local expected = (X:matmul(w:detach()) + 0.5 - y):matmul(X) * (2 / M)
    H.assert_close(w.grad, expected, 1e-12)
    H.assert_close(b.grad, (X:matmul(w:detach()) + 0.5 - y):sum() * (2 / M), 1e-12)
  end)
end)

describe("dl.autograd.Function", function()
  local Scale = dl.autograd.Function{
    forward = function(ctx, x, k)
      ctx:save_for_backward(x)
      ctx.k = k
      return x * k, x * 0 + 1
    end,
    backward = function(ctx, g1, g2)
      return g1 * ctx.k, nil
    end,
  }
  it("runs Lua backward rules with non-tensor arguments", function()
    local x = f64({1, 2})
    local y, ones = Scale(x, 3)
    assert.equal("CustomFunctionBackward", y.grad_fn:name())
    ;(y + ones):sum():backward()
    H.assert_close(x.grad, {3, 3})
  end)
  it("reports needs_input_grad", function()
    local seen
    local F = dl.autograd.Function{
      forward = function(ctx, a, b) seen = ctx.needs_input_grad return a + b end,
      backward = function(ctx, g) return g, g end,
    }
    F(f64({1}), dl.tensor({1.0}))
    assert.same({true, false}, seen)
  end)
  it("surfaces errors of a Lua backward with a traceback and stays usable", function()
    local Bad = dl.autograd.Function{
      forward = function(ctx, x) return x * 1 end,
      backward = function() error("bad backward") end,
    }
    local x = f64({1})
    local err = H.assert_error(function() Bad(x):sum():backward() end, "bad backward", "traceback")
    assert.truthy(err)
    local z = f64({2})
    ;(z * z):sum():backward()
    H.assert_close(z.grad, {4})
  end)
  it("sums a backward's gradient of broadcast shape back to the input, as PyTorch; refuses other shapes", function()
    local Add = dl.autograd.Function{
      forward = function(ctx, a, b) return a + b end,
      backward = function(ctx, g) return g, g end,
    }
    local a = dl.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64", requires_grad = true})
    local b = f64({1, 1, 1})
    local c = dl.tensor({{1}, {1}}, {dtype = "float64", requires_grad = true})
    ;(Add(a, b) * dl.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64"})):sum():backward()
    -- d/db of sum(w * (a + b)) is the column sums of w
    H.assert_close(b.grad, {5, 7, 9})
    ;(Add(a, c) * 2):sum():backward()
    H.assert_close(c.grad, {{6}, {6}})
    local Wrong = dl.autograd.Function{
      forward = function(ctx, x) return x * 1 end,
      backward = function(ctx, g) return dl.ones(4, {dtype = "float64"}) end,
    }
    H.assert_error(function() Wrong(f64({1, 2})):sum():backward() end,
                   "custom Function backward returned a gradient of shape [4] for input 1 of shape [2]")
  end)
  it("refuses to read saved tensors changed in place since save_for_backward", function()
    local Mul = dl.autograd.Function{
      forward = function(ctx, x) ctx:save_for_backward(x) return x * x end,
      backward = function(ctx, g) return g * 2 * ctx.saved_tensors[1] end,
    }
    local leaf = f64({1, 2})
    local x = leaf * 1
    local y = Mul(x)
    x:add_(1) -- the backward would use 2 * (x + 1)
    H.assert_error(function() y:sum():backward() end, "saved tensor 1", "modified by an in-place operation",
                   "version 1, saved at version 0")
    local x2 = leaf * 1
    Mul(x2):sum():backward()
    H.assert_close(leaf.grad, {2, 4})
  end)
  it("records a backward under create_graph through a saved input (double backward)", function()
    local Sq = dl.autograd.Function{
      forward = function(ctx, x) ctx:save_for_backward(x) return x * x end,
      backward = function(ctx, g) return g * 2 * ctx.saved_tensors[1] end,
    }
    local x = f64({1, 2})
    local g = dl.autograd.grad(Sq(x):sum(), x, nil, {create_graph = true})
    assert.is_true(g.requires_grad)
    H.assert_close(g, {2, 4})
    -- d/dx of sum(x^2) + sum((2x)^2) = 10 x
    ;((x * x):sum() + (g * g):sum()):backward()
    H.assert_close(x.grad, {10, 20})
    -- without create_graph the saved input records nothing
    local x2 = f64({3})
    local g2 = dl.autograd.grad(Sq(x2):sum(), x2)
    assert.is_false(g2.requires_grad)
    H.assert_close(g2, {6})
  end)
end)

describe("forward mode", function()
  it("gives a / b PyTorch's tangent (t_a - t_b a/b) / b, also where b = 0", function()
    local F = function(v) return dl.tensor(v, {dtype = "float64"}) end
    local _, t = dl.autograd.jvp(function(a, b) return a / b end, {F({1, 2, -1, 3}), F({0, 4, 0, 2})},
      {F({1, 1, 1, 0.5}), F({1, 2, 1, 1})})
    -- b = 0: (1 - 1 * inf) / 0 = -inf and (1 - 1 * -inf) / 0 = inf (the sum of the two
    -- partial terms, 1/0 - 1 * 1/0^2, would be inf - inf = NaN)
    assert.same({-math.huge, 0, math.huge, -0.5}, t:totable())
    local _, t2 = dl.autograd.jvp(function(b) return 3 / b end, F({0, 2}), F({1, 1}))
    assert.same({-math.huge, -0.75}, t2:totable())
  end)
  it("jvp carries tangents through ops", function()
    local x = dl.tensor({1, 2, 3}, {dtype = "float64"})
    local v = dl.tensor({1, 0, 1}, {dtype = "float64"})
    local out, tout = dl.autograd.jvp(function(a) return (a * a):sum() end, {x}, {v})
    H.assert_close(out, 14)
    H.assert_close(tout, 8)
  end)
  it("jacobian and hvp", function()
    local x = dl.tensor({1, 2}, {dtype = "float64"})
    local J = dl.autograd.jacobian(function(a) return a * a end, x)
    H.assert_close(J, {{2, 0}, {0, 4}})
    local _, hv = dl.autograd.hvp(function(a) return (a * a * a):sum() end, x, dl.tensor({1, 1}, {dtype = "float64"}))
    H.assert_close(hv, {6, 12})
  end)
end)

describe("coverage of the gradient checks", function()
  it("every differentiable op has a gradcheck entry and vice versa", function()
    local covered = {}
    local p = io.popen("ls spec/gradcheck/*.lua 2>/dev/null")
    for file in p:lines() do
      local mod = file:gsub("%.lua$", ""):gsub("/", ".")
      -- a module maps names to entries, or lists cases with an `op` field
      for k, v in pairs(require(mod)) do covered[type(k) == "string" and k or v.op] = true end
    end
    p:close()
    local missing, extra = {}, {}
    local ops = {}
    for _, name in ipairs(dl.autograd.differentiable_ops()) do
      ops[name] = true
      if not covered[name] then missing[#missing + 1] = name end
    end
    for name in pairs(covered) do if not ops[name] then extra[#extra + 1] = name end end
    table.sort(missing)
    table.sort(extra)
    assert.same({}, missing, "differentiable ops without a gradcheck entry")
    assert.same({}, extra, "gradcheck entries that are not registered ops")
  end)
end)
