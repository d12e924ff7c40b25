-- Autograd of the element-wise ops: reverse mode (gradcheck) and forward mode
-- (jvp against reverse-mode rows) over every entry of spec/gradcheck/ewise.lua,
-- second derivatives through recorded backward passes, PyTorch's choices at
-- kinks (ties, pow at 0, clamp bounds), dtypes of the gradients, in-place
-- forms and the safety checks.
local dl = require "dlua"
local H = require "spec.helper"
local cases = require "spec.gradcheck.ewise"
local A = dl.autograd

local F64 = {dtype = "float64"}
local function T(x) return dl.tensor(x, F64) end
local function leaf(x) return dl.tensor(x, {dtype = "float64", requires_grad = true}) end

local flat = H.flat

-- forward mode must agree with reverse mode for random tangents (spec/helper.lua)
local check_jvp = H.check_jvp

-- the entries, in a stable order, each with its own seed
local function each_case(f)
  local names = {}
  for name in pairs(cases) do names[#names + 1] = name end
  table.sort(names)
  for i, name in ipairs(names) do
    local entry = cases[name]
    local list = entry.variants or {entry}
    for j, c in ipairs(list) do
      f(name .. (c.desc and (": " .. c.desc) or ""), c, i * 100 + j)
    end
  end
end

local function make_inputs(c, seed)
  dl.manual_seed(seed)
  local ins = c.inputs()
  for i, x in ipairs(ins) do ins[i] = x:requires_grad_(true) end
  return ins
end

describe("element-wise autograd: gradcheck", function()
  each_case(function(desc, c, seed)
    it(desc, function() assert.is_true(A.gradcheck(c.fn, make_inputs(c, seed))) end)
  end)
end)

describe("element-wise autograd: forward mode agrees with reverse mode", function()
  each_case(function(desc, c, seed)
    it(desc, function() check_jvp(c.fn, make_inputs(c, seed)) end)
  end)
end)

describe("element-wise autograd: second derivatives", function()
  -- gradgradcheck: x -> d/dx sum(w * f(x)) recorded with create_graph, then
  -- checked by gradcheck itself (all inputs at once)
  local function gradgrad(f, inputs)
    local w
    local function g(...)
      local xs = {...}
      -- gradcheck's numerical pass runs without grad and with plain inputs
      return dl.enable_grad(function()
        for i, x in ipairs(xs) do
          if not x.requires_grad then xs[i] = x:detach():requires_grad_(true) end
        end
        local y = f(table.unpack(xs))
        w = w or dl.randn(y:size(), F64)
        local gs = table.pack(A.grad((y * w):sum(), xs, nil, {create_graph = true, allow_unused = true}))
        local parts = {}
        for i = 1, #xs do parts[#parts + 1] = (gs[i] or dl.zeros_like(xs[i])):reshape(-1) end
        return dl.cat(parts)
      end)
    end
    return A.gradcheck(g, inputs)
  end
  local function pos(...) return (dl.rand({...}, F64) + 0.5):requires_grad_(true) end
  local function rn(...) return dl.randn({...}, F64):requires_grad_(true) end
  local checks = {
    {"mul with broadcasting", function(a, b) return a * b end, function() return {rn(2, 3), rn(3)} end},
    {"div", function(a, b) return a / b end, function() return {rn(2, 3), pos(2, 3)} end},
    {"pow tensor ^ tensor", function(a, b) return a ^ b end, function() return {pos(3), rn(3)} end},
    {"pow with a number exponent", function(a) return a:pow(3) end, function() return {rn(4)} end},
    {"a number base", function(b) return 1.5 ^ b end, function() return {rn(3)} end},
    {"exp, log, sqrt", function(a) return a:exp() + a:log() * a:sqrt() end, function() return {pos(3)} end},
    {"tanh, sigmoid, sin", function(a) return a:tanh() * a:sigmoid() + a:sin() end, function() return {rn(4)} end},
    {"rsqrt, reciprocal, erf, atan", function(a) return a:rsqrt() + a:reciprocal() * a:erf() - a:atan() end,
      function() return {pos(3)} end},
    {"lerp with a tensor weight", function(a, e, w) return a:lerp(e, w) end,
      function() return {rn(3), rn(3), rn(3)} end},
    {"addcdiv", function(a, t1, t2) return a:addcdiv(t1, t2, {value = 2}) end,
      function() return {rn(3), rn(3), pos(3)} end},
    {"where and clamp", function(a, b) return dl.where(dl.tensor({true, false, true}), a * a, b:clamp(-0.5, 0.5) * b) end,
      function() return {rn(3), T({0.1, 0.9, -2}):requires_grad_(true)} end},
    {"in-place mul_ and exp_", function(a, b)
      local z = a * 1
      z:mul_(b)
      z:exp_()
      return z
    end, function() return {rn(3), rn(3)} end},
  }
  for i, c in ipairs(checks) do
    it(c[1], function()
      dl.manual_seed(1000 + i)
      assert.is_true(gradgrad(c[2], c[3]()))
    end)
  end
  it("hvp of sum(x^3) is 6 x v", function()
    local x, v = T({1, -2, 0.5}), T({1, 2, 3})
    local _, hv = A.hvp(function(a) return (a ^ 3):sum() end, x, v)
    H.assert_close(hv, {6, -24, 9}, 1e-12)
  end)
  it("the second derivative of sigmoid comes from its saved output", function()
    local x = leaf({0.3, -1.2})
    local y = x:sigmoid()
    local g = A.grad(y:sum(), x, nil, {create_graph = true})
    local gg = A.grad(g:sum(), x)
    for i, xv in ipairs({0.3, -1.2}) do
      local s = 1 / (1 + math.exp(-xv))
      assert(math.abs(gg:get(i) - s * (1 - s) * (1 - 2 * s)) < 1e-12)
    end
  end)
end)

describe("element-wise autograd: values at kinks follow PyTorch", function()
  it("maximum and minimum split the gradient of ties", function()
    local a, b = leaf({1, 2, 5}), leaf({1, 3, 4})
    dl.maximum(a, b):sum():backward()
    H.assert_close(a.grad, {0.5, 0, 1}, 0)
    H.assert_close(b.grad, {0.5, 1, 0}, 0)
    local c, d = leaf({1, 2}), leaf({1, 3})
    c:minimum(d):sum():backward()
    H.assert_close(c.grad, {0.5, 1}, 0)
    H.assert_close(d.grad, {0.5, 0}, 0)
  end)
  it("pow: 0 for the base where the exponent is 0, and for the exponent where the base is 0", function()
    local x, y = leaf({0, 2, 0}), leaf({0, 3, 2})
    local p = x ^ y
    p:sum():backward()
    H.assert_close(x.grad, {0, 12, 0}, 1e-12)
    H.assert_close(y.grad, {0, 8 * math.log(2), 0}, 1e-12)
    local z = leaf({0, 3})
    p = z ^ 0
    p:sum():backward()
    H.assert_close(z.grad, {0, 0}, 0)
    local e = leaf({0, 1})
    p = 0 ^ e
    p:sum():backward()
    H.assert_close(e.grad, {0, 0}, 0)
  end)
  it("clamp passes the gradient where lo <= x <= hi and tensor bounds get the rest", function()
    local x, lo, hi = leaf({0, 5, -5, 1}), leaf({-1, -1, -1, -1}), leaf({1, 1, 1, 1})
    x:clamp(lo, hi):sum():backward()
    H.assert_close(x.grad, {1, 0, 0, 1}, 0)
    H.assert_close(lo.grad, {0, 0, 1, 0}, 0)
    H.assert_close(hi.grad, {0, 1, 0, 0}, 0)
    local y = leaf({-2, 0.5, 2})
    y:clamp(-1, 1):sum():backward()
    H.assert_close(y.grad, {0, 1, 0}, 0)
  end)
  it("abs and relu at 0 give 0, sign and rounding give 0 everywhere", function()
    local x = leaf({-1, 0, 2})
    local s = (x:abs() + x:relu() + x:sign() + x:floor() + x:ceil() + x:round() + x:trunc())
    s:sum():backward()
    H.assert_close(x.grad, {-1, 0, 2}, 0)
  end)
  it("remainder gives -floor(a / b) to the divisor and floor_divide gives 0", function()
    local a, b = leaf({7, -7}), leaf({2, 2})
    local s = a % b + a // b
    s:sum():backward()
    H.assert_close(a.grad, {1, 1}, 0)
    H.assert_close(b.grad, {-3, 4}, 0)
  end)
  it("a 0-d masked_fill value gets the sum of the masked gradients", function()
    local a, val = leaf({{1, 2}, {3, 4}}), leaf(0.5)
    local w = T({{1, 2}, {3, 4}})
    local s = a:masked_fill(dl.tensor({true, false}), val) * w
    s:sum():backward()
    H.assert_close(a.grad, {{0, 2}, {0, 4}}, 0)
    H.assert_close(val.grad, 4, 0)
  end)
  it("where sends the gradient to the chosen side only", function()
    local a, b = leaf({1, 2, 3}), leaf({4, 5, 6})
    dl.where(dl.tensor({true, false, true}), a, b):sum():backward()
    H.assert_close(a.grad, {1, 0, 1}, 0)
    H.assert_close(b.grad, {0, 1, 0}, 0)
  end)
end)

describe("element-wise autograd: graph, dtypes and the fast path", function()
  it("names the nodes as PyTorch does", function()
    local a, b = leaf({1, 2}), leaf({3, 4})
    assert.equal("AddBackward0", (a + b).grad_fn:name())
    assert.equal("AddBackward0", (a + 1).grad_fn:name()) -- a number is a wrapped tensor, as in PyTorch
    assert.equal("MulBackward0", (a * 2).grad_fn:name())
    assert.equal("SubBackward0", (a - 2).grad_fn:name())
    assert.equal("RsubBackward1", (2 - a).grad_fn:name())
    assert.equal("DivBackward0", (a / 2).grad_fn:name())
    assert.equal("RemainderBackward1", (a % b).grad_fn:name())
    assert.equal("RemainderBackward0", (a % 2).grad_fn:name())
    assert.equal("LerpBackward0", dl.lerp(a, b, 0.5).grad_fn:name())
    assert.equal("LerpBackward1", dl.lerp(a, b, dl.tensor({0.5, 0.5}, {dtype = "float64"})).grad_fn:name())
    assert.equal("MulBackward0", (a * b).grad_fn:name())
    assert.equal("DivBackward0", (a / b).grad_fn:name())
    assert.equal("PowBackward1", (a ^ b).grad_fn:name())
    assert.equal("PowBackward0", (a ^ 2).grad_fn:name())
    assert.equal("PowBackward1", (2 ^ a).grad_fn:name())
    assert.equal("NegBackward0", (-a).grad_fn:name())
    assert.equal("ExpBackward0", a:exp().grad_fn:name())
    assert.equal("ClampBackward1", a:clamp(0, 1).grad_fn:name())
    assert.equal("WhereBackward0", dl.where(dl.tensor({true, false}), a, b).grad_fn:name())
  end)
  it("sums broadcast gradients back to each input's shape", function()
    local a, b = leaf({{1}, {2}}), leaf({1, 2, 3})
    local s = a * b
    s:sum():backward()
    assert.same({2, 1}, a.grad:size())
    H.assert_close(a.grad, {{6}, {6}}, 0)
    H.assert_close(b.grad, {3, 3, 3}, 0)
  end)
  it("casts each gradient to its input's dtype", function()
    local a = dl.tensor({1, 2}, {dtype = "float32", requires_grad = true})
    local b = leaf({3, 4})
    local y = a * b
    assert.equal("float64", y.dtype)
    y:sum():backward()
    assert.equal("float32", a.grad.dtype)
    assert.equal("float64", b.grad.dtype)
    H.assert_close(a.grad, {3, 4}, 0)
    H.assert_close(b.grad, {1, 2}, 0)
  end)
  it("integer operands take no gradient; float32 keeps its dtype with numbers", function()
    local x = dl.tensor({1.5, 2.5}, {dtype = "float32", requires_grad = true})
    local n = dl.tensor({2, 3}) -- int64
    local y = x * n + 0.5
    assert.equal("float32", y.dtype)
    y:sum():backward()
    H.assert_close(x.grad, {2, 3}, 0)
    assert.equal("float32", x.grad.dtype)
  end)
  it("comparisons, integer results and inputs without grad do not record", function()
    local a = leaf({1, 2})
    assert.is_false(a:gt(1).requires_grad)
    assert.is_nil(a:eq(a).grad_fn)
    assert.is_false(a:isnan().requires_grad)
    local p, q = dl.tensor({1, 2}), dl.tensor({3, 4})
    assert.is_nil((p + q).grad_fn)
    assert.is_false((p:double() * 2).requires_grad)
  end)
  it("float32 inputs get float32 gradients through unary and in-place ops", function()
    local x = dl.tensor({0.5, 1}, {dtype = "float32", requires_grad = true})
    local z = x * 1
    z:mul_(x:exp())
    local y = z:sqrt():sum()
    assert.equal("float32", y.dtype)
    y:backward()
    assert.equal("float32", x.grad.dtype)
    for i, xv in ipairs({0.5, 1}) do
      -- d/dx sqrt(x e^x) = (1 + x) e^x / (2 sqrt(x e^x))
      local want = (1 + xv) * math.exp(xv) / (2 * math.sqrt(xv * math.exp(xv)))
      assert(math.abs(x.grad:get(i) - want) < 1e-5)
    end
  end)
  it("nothing is recorded under no_grad", function()
    local a = leaf({1, 2})
    local y = dl.no_grad(function() return a * 2 + a:exp() end)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
  end)
  it("a backward without create_graph gives gradients without history", function()
    local a = leaf({1, 2})
    local g = A.grad((a * a):sum(), a)
    assert.is_false(g.requires_grad)
    H.assert_close(g, {2, 4}, 0)
  end)
  it("forward mode without recording: tangents through chains and in-place ops", function()
    local x, t = T({0.5, 1}), T({1, -1})
    local out, tout = A.jvp(function(a)
      local z = a:exp()
      z:mul_(2)
      return z:sin() + 3
    end, {x}, {t})
    for i, xv in ipairs({0.5, 1}) do
      local e = 2 * math.exp(xv)
      assert(math.abs(out:get(i) - (math.sin(e) + 3)) < 1e-12)
      assert(math.abs(tout:get(i) - math.cos(e) * e * t:get(i)) < 1e-12)
    end
  end)
end)

describe("element-wise autograd: in-place ops", function()
  it("rebase the history of self", function()
    local a = leaf({1, 2, 3})
    local z = a * 1
    z:mul_(a)
    assert.equal("MulBackward0", z.grad_fn:name())
    z:add_(1)
    assert.equal("AddBackward0", z.grad_fn:name())
    z:sum():backward()
    H.assert_close(a.grad, {2, 4, 6}, 0)
  end)
  it("a tensor without grad that takes an operand requiring grad starts recording", function()
    local w = leaf({1, 2})
    local z = dl.zeros(2, F64)
    z:addcmul_(w, w, {value = 3})
    assert.is_true(z.requires_grad)
    z:sum():backward()
    H.assert_close(w.grad, {6, 12}, 0)
  end)
  it("keep the old value when the rule needs it", function()
    local a = leaf({0.5, 2})
    local z = a * 1
    z:log_()
    z:sum():backward()
    H.assert_close(a.grad, {2, 0.5}, 1e-15)
  end)
  it("refuse a leaf that requires grad, naming the op", function()
    local a = leaf({1, 2})
    H.assert_error(function() a:add_(1) end, "add_", "leaf tensor that requires grad")
    H.assert_error(function() a:exp_() end, "exp_", "leaf")
    H.assert_error(function() a:clamp_(0, 1) end, "clamp_", "leaf")
    H.assert_error(function() a:masked_fill_(dl.tensor({true, false}), 0) end, "masked_fill_", "leaf")
    H.assert_error(function() a:lerp_(T({1, 1}), 0.5) end, "lerp_", "leaf")
    -- unchanged, and allowed under no_grad
    H.assert_close(a, {1, 2}, 0)
    dl.no_grad(function() a:mul_(2) end)
    H.assert_close(a:detach(), {2, 4}, 0)
  end)
  it("refuse a view of a tensor that requires grad", function()
    local a = leaf({1, 2, 3})
    local z = a * 1
    H.assert_error(function() z:narrow(1, 1, 2):mul_(2) end, "mul_", "view")
  end)
  it("modifying a saved input then calling backward raises, naming the node", function()
    local a = leaf({1, 2})
    local b = T({3, 4})
    local y = a * b
    b:add_(1)
    H.assert_error(function() y:sum():backward() end, "MulBackward0", "modified by an in-place")
  end)
  it("modifying a saved output then calling backward raises", function()
    local a = leaf({1, 2})
    local y = a:exp()
    local keep = y:sum()
    y:add_(1)
    H.assert_error(function() keep:backward() end, "ExpBackward0", "modified by an in-place")
  end)
  it("bad inputs still raise the plain op's errors", function()
    local a = leaf({1, 2})
    H.assert_error(function() return a + leaf({1, 2, 3}) end, "add", "[2]", "[3]")
    local z = a * 1
    H.assert_error(function() z:add_(leaf({{1, 2}, {3, 4}})) end, "add_", "doesn't match the broadcast shape")
    H.assert_error(function() return dl.where(T({1, 0}), a, a) end, "where", "bool")
    local i = dl.tensor({1, 2})
    H.assert_error(function() i:add_(a) end, "add_", "can't be cast")
  end)
end)
