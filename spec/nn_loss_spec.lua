-- Losses: dl.F.<loss> and dl.nn.<Loss> against PyTorch's values and
-- gradients (spec/fixtures/loss_reference.lua), gradcheck + jvp for every
-- entry of spec/gradcheck/loss.lua, second derivatives, and bad inputs.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd
local F = dl.F

local F64 = {dtype = "float64"}
local I64 = {dtype = "int64"}
local ref = require "spec.fixtures.loss_reference"
local ops = require "spec.gradcheck.loss"

local MODULE = {
  mse_loss = "MSELoss", l1_loss = "L1Loss", smooth_l1_loss = "SmoothL1Loss",
  binary_cross_entropy = "BCELoss", binary_cross_entropy_with_logits = "BCEWithLogitsLoss",
  cross_entropy = "CrossEntropyLoss", nll_loss = "NLLLoss",
}

-- a tensor of the case's values and shape (a number is a 0-d tensor)
local function build(values, shape, dtype)
  local t = dl.tensor(values, {dtype = dtype})
  if #shape == 0 then return t:reshape({}) end
  return t
end

-- the transpose of a 2-D Lua table
local function transposed(rows)
  local out = {}
  for j = 1, #rows[1] do
    out[j] = {}
    for i = 1, #rows do out[j][i] = rows[i][j] end
  end
  return out
end

-- the case's options with tensors for weight / pos_weight
local function options(c, dtype)
  local o = {}
  for k, v in pairs(c.opts) do
    if k == "weight" or k == "pos_weight" then o[k] = dl.tensor(v, {dtype = dtype}) else o[k] = v end
  end
  return o
end

-- input and target of a case (dtype for the float ones); `nc`: built as the
-- transpose of a transposed copy, so 2-D operands are non-contiguous
local function operands(c, dtype, nc)
  local function mk(values, shape, dt)
    if nc and #shape == 2 then return dl.tensor(transposed(values), {dtype = dt}):t() end
    return build(values, shape, dt)
  end
  local x = mk(c.input, c.input_shape, dtype)
  local t = mk(c.target, c.target_shape, c.target_dtype == "int64" and "int64" or dtype)
  return x, t
end

local function check_case(c, dtype, tol, nc)
  local x, t = operands(c, dtype, nc)
  x:requires_grad_(true)
  if c.grad_target then t:requires_grad_(true) end
  local out = F[c.fn](x, t, options(c, dtype))
  assert.equal(dtype, out.dtype)
  assert.same(c.out_shape, out:size())
  if #c.out_shape == 0 then
    assert(math.abs(out:item() - c.out) <= tol * (1 + math.abs(c.out)),
      string.format("%s: %.12g vs PyTorch %.12g", c.name, out:item(), c.out))
  else
    H.assert_close(out, c.out, tol)
  end
  if c.name == "bce_extremes" then return end -- PyTorch's gradient there is ±1e12-scale
  out:sum():backward()
  H.assert_close(x.grad, c.grad_input, tol)
  if c.grad_target then H.assert_close(t.grad, c.grad_target, tol) end
end

describe("losses: values and gradients against PyTorch", function()
  for _, c in ipairs(ref) do
    it(c.name .. " (float64)", function() check_case(c, "float64", 1e-10) end)
  end
  for _, c in ipairs(ref) do
    it(c.name .. " (float64, non-contiguous operands)", function() check_case(c, "float64", 1e-10, true) end)
  end
  for _, c in ipairs(ref) do
    it(c.name .. " (float32)", function() check_case(c, "float32", 2e-4) end)
  end
end)

describe("losses: modules", function()
  for _, c in ipairs(ref) do
    it(MODULE[c.fn] .. " matches dl.F." .. c.fn .. " (" .. c.name .. ")", function()
      local m = dl.nn[MODULE[c.fn]](options(c, "float64"))
      local x, t = operands(c, "float64")
      local a, b = m(x, t), F[c.fn](x, t, options(c, "float64"))
      H.assert_close(a, b, 0)
      H.assert_close(m:forward(x, t), b, 0)
    end)
  end
  it("keep weight and pos_weight as buffers, no parameters", function()
    local w = dl.ones(3, F64)
    local m = dl.nn.CrossEntropyLoss({weight = w})
    assert.equal(0, #m:parameters())
    assert.equal(1, #m:buffers())
    assert.equal(w, m.weight)
    local b = dl.nn.BCEWithLogitsLoss({weight = dl.ones(3), pos_weight = dl.ones(3)})
    assert.equal(2, #b:buffers())
  end)
  it("take a positional tensor as PyTorch does (weight; pos_weight for BCEWithLogitsLoss)", function()
    local x = dl.tensor({{1, 2, 3}, {0, 1, -1}}, F64)
    local y = dl.tensor({3, 1}, I64)
    local w = dl.tensor({1, 2, 3}, F64)
    H.assert_close(dl.nn.CrossEntropyLoss(w)(x, y), F.cross_entropy(x, y, {weight = w}), 0)
    H.assert_close(dl.nn.NLLLoss(w)(x, y), F.nll_loss(x, y, {weight = w}), 0)
    local t = dl.tensor({{1, 0, 1}, {0, 0, 1}}, F64)
    H.assert_close(dl.nn.BCEWithLogitsLoss(w)(x, t), F.binary_cross_entropy_with_logits(x, t, {pos_weight = w}), 0)
  end)
  it("follow a changed reduction field and a moved weight buffer", function()
    local x = dl.tensor({{1, 2, 3}, {0, 1, -1}}, F64)
    local y = dl.tensor({3, 1}, I64)
    local m = dl.nn.CrossEntropyLoss({weight = dl.tensor({1, 2, 3}, {dtype = "float32"})})
    m:to("float64")
    assert.equal("float64", m.weight.dtype)
    m.reduction = "none"
    H.assert_close(m(x, y), F.cross_entropy(x, y, {weight = dl.tensor({1, 2, 3}, F64), reduction = "none"}), 1e-12)
  end)
  it("print like PyTorch's modules", function()
    assert.equal("MSELoss()", tostring(dl.nn.MSELoss()))
    assert.equal("CrossEntropyLoss(reduction=sum, label_smoothing=0.1)",
      tostring(dl.nn.CrossEntropyLoss({reduction = "sum", label_smoothing = 0.1})))
  end)
  it("train a linear classifier (loss decreases)", function()
    dl.manual_seed(5)
    local x = dl.randn(32, 4)
    local y = (x:narrow(2, 1, 1):gt(0):long() + 1):reshape(32)
    local w = dl.zeros(4, 2, {requires_grad = true})
    local crit = dl.nn.CrossEntropyLoss()
    local first, last
    for _ = 1, 50 do
      local loss = crit(x:matmul(w), y)
      first = first or loss:item()
      last = loss:item()
      w.grad = nil
      loss:backward()
      dl.no_grad(function() w:sub_(w.grad * 0.5) end)
    end
    assert(last < 0.5 * first, string.format("loss %g -> %g", first, last))
  end)
end)

describe("losses: special values", function()
  it("cross_entropy's mean over only ignored targets is nan, as PyTorch's", function()
    local l = F.cross_entropy(dl.randn(2, 3, F64), dl.tensor({-100, -100}, I64))
    assert.is_true(l:item() ~= l:item())
  end)
  it("cross_entropy with an ignored target gives that row a zero gradient", function()
    local x = dl.randn({2, 3}, {dtype = "float64", requires_grad = true})
    F.cross_entropy(x, dl.tensor({2, 7}, I64), {ignore_index = 7}):backward()
    assert.same({0, 0, 0}, x.grad[2]:totable())
  end)
  it("cross_entropy is stable for huge logits", function()
    local x = dl.tensor({{1000, 0, -1000}, {-1e4, 1e4, 0}}, {dtype = "float32", requires_grad = true})
    local l = F.cross_entropy(x, dl.tensor({1, 1}, I64), {reduction = "none"})
    H.assert_close(l, {0, 2e4}, 1e-3)
    l:sum():backward()
    H.assert_close(x.grad, {{0, 0, 0}, {-1, 1, 0}}, 1e-6)
  end)
  it("binary_cross_entropy_with_logits is stable for huge logits", function()
    local x = dl.tensor({100, -100, 800}, F64)
    local l = F.binary_cross_entropy_with_logits(x, dl.tensor({1, 0, 0}, F64), {reduction = "none"})
    H.assert_close(l, {0, 0, 800}, 1e-12)
  end)
  it("binary_cross_entropy clamps log at -100, with PyTorch's gradient there", function()
    for _, dt in ipairs({"float64", "float32"}) do
      local x = dl.tensor({0, 1}, {dtype = dt, requires_grad = true})
      local l = F.binary_cross_entropy(x, dl.tensor({1, 0}, {dtype = dt}), {reduction = "sum"})
      assert.equal(200, l:item())
      l:backward()
      -- (x - t) / max(x (1 - x), 1e-12)
      H.assert_close(x.grad, {-1e12, 1e12}, 1e12 * 1e-6)
    end
  end)
  it("cross_entropy on a large batch (threaded kernels) matches log-softmax + gather", function()
    dl.manual_seed(11)
    local N, C = 300, 257
    local x = dl.randn({N, C}, {dtype = "float64", requires_grad = true})
    local y = dl.randint(1, C + 1, {N})
    local l = F.cross_entropy(x, y, {reduction = "none"})
    local lp = x:detach() - x:detach():logsumexp(2, true)
    H.assert_close(l, -(lp:gather(2, y:reshape(N, 1)):reshape(N)), 1e-12)
    l:sum():backward()
    local p = lp:exp()
    H.assert_close(x.grad, p - dl.zeros({N, C}, F64):scatter(2, y:reshape(N, 1), 1), 1e-12)
  end)
  it("regression losses on a large tensor (threaded kernels) match their formulas", function()
    dl.manual_seed(12)
    local x = dl.randn({300, 200}, {dtype = "float64", requires_grad = true})
    local t = dl.randn({200, 300}, F64):t()
    local d = x:detach() - t
    H.assert_close(F.mse_loss(x, t, {reduction = "sum"}), (d * d):sum(), 1e-8)
    H.assert_close(F.l1_loss(x, t, {reduction = "none"}), d:abs(), 1e-15)
    local sl = F.smooth_l1_loss(x, t, {beta = 0.5})
    local ad = d:abs()
    local ref = dl.where(ad:lt(0.5), d * d / (2 * 0.5), ad - 0.25):mean()
    H.assert_close(sl, ref, 1e-12)
    sl:backward()
    H.assert_close(x.grad, (d / 0.5):clamp(-1, 1) / d:numel(), 1e-15)
  end)
  it("regression losses promote mixed float dtypes and cast each gradient back", function()
    local x = dl.tensor({1, 2, 3}, {dtype = "float32", requires_grad = true})
    local t = dl.tensor({0.5, 2, 4}, {dtype = "float64", requires_grad = true})
    local l = F.mse_loss(x, t, {reduction = "sum"})
    assert.equal("float64", l.dtype)
    assert.equal(1.25, l:item())
    l:backward()
    assert.equal("float32", x.grad.dtype)
    assert.equal("float64", t.grad.dtype)
    assert.same({1, 0, -2}, x.grad:totable())
    assert.same({-1, 0, 2}, t.grad:totable())
  end)
  it("regression and BCE losses name their backward nodes as PyTorch", function()
    local x = dl.rand({2, 3}, {dtype = "float64", requires_grad = true})
    local t = dl.rand(2, 3, F64)
    assert.equal("MseLossBackward0", F.mse_loss(x, t).grad_fn:name())
    assert.equal("L1LossBackward0", F.l1_loss(x, t).grad_fn:name())
    assert.equal("SmoothL1LossBackward0", F.smooth_l1_loss(x, t).grad_fn:name())
    assert.equal("BinaryCrossEntropyBackward0", F.binary_cross_entropy(x, t).grad_fn:name())
  end)
  it("cross_entropy names its backward node; nll_loss too", function()
    local x = dl.randn({2, 3}, {dtype = "float64", requires_grad = true})
    assert.equal("CrossEntropyLossBackward0", F.cross_entropy(x, dl.tensor({1, 2}, I64)).grad_fn:name())
    assert.equal("NllLossBackward0", F.nll_loss(x, dl.tensor({1, 2}, I64)).grad_fn:name())
  end)
  it("records nothing without requires_grad or under no_grad", function()
    local x = dl.randn(2, 3)
    assert.is_nil(F.cross_entropy(x, dl.tensor({1, 2}, I64)).grad_fn)
    local xr = x:clone():requires_grad_(true)
    dl.no_grad(function()
      assert.is_nil(F.cross_entropy(xr, dl.tensor({1, 2}, I64)).grad_fn)
      assert.is_nil(F.mse_loss(xr, x).grad_fn)
    end)
  end)
  it("detects an input modified in place after the forward", function()
    local x = dl.randn({2, 3}, {dtype = "float64", requires_grad = true})
    local z = x * 1
    local l = F.cross_entropy(z, dl.tensor({1, 2}, I64))
    z:add_(1)
    H.assert_error(function() l:backward() end, "CrossEntropyLossBackward0")
  end)
end)

-- gradcheck / jvp over spec/gradcheck/loss.lua

local function inputs_of(c, seed)
  dl.manual_seed(seed)
  local xs = c.inputs()
  for _, x in ipairs(xs) do x:requires_grad_(true) end
  return xs
end

describe("losses: gradcheck (reverse mode, float64 central differences)", function()
  for _, name in ipairs(H.sorted_keys(ops)) do
    for i, c in ipairs(ops[name].variants) do
      it(name .. ": " .. c.desc, function()
        assert.is_true(A.gradcheck(c.fn, inputs_of(c, 100 + i), c.opts))
      end)
    end
  end
end)

describe("losses: jvp agrees with reverse mode", function()
  for _, name in ipairs(H.sorted_keys(ops)) do
    for i, c in ipairs(ops[name].variants) do
      it(name .. ": " .. c.desc, function()
        dl.manual_seed(200 + i)
        H.check_jvp(c.fn, c.inputs())
      end)
    end
  end
end)

describe("losses: second derivatives (create_graph)", function()
  -- gradcheck of x -> w^T J(x): a vector-Jacobian product taken with
  -- create_graph, so it is differentiable in x
  local function check_double(fn, xs)
    local x = xs[1]
    local rest = {}
    for k = 2, #xs do rest[k - 1] = xs[k]:detach() end
    local w = dl.randn(fn(x:detach(), table.unpack(rest)):size(), F64)
    local function vjp(xi)
      if xi.requires_grad then return A.grad(fn(xi, table.unpack(rest)), xi, w, {create_graph = true}) end
      return dl.enable_grad(function()
        local z = xi:detach():requires_grad_(true)
        return A.grad(fn(z, table.unpack(rest)), z, w)
      end)
    end
    assert.is_true(A.gradcheck(vjp, {x}))
  end
  local cases = {
    {"cross_entropy (fused, class indices)", ops.cross_entropy.variants[4]},
    {"cross_entropy spatial", ops.cross_entropy.variants[5]},
    {"cross_entropy (class probabilities)", ops.cross_entropy.variants[9]},
    -- nll_loss is linear in its input: checked composed with tanh
    {"nll_loss (of tanh)", {fn = function(x) return ops.nll_loss.variants[2].fn(x:tanh()) end,
      inputs = ops.nll_loss.variants[2].inputs}},
    {"mse_loss", ops.mse_loss.variants[1]},
    {"smooth_l1_loss", ops.smooth_l1_loss.variants[2]},
    {"binary_cross_entropy", ops.binary_cross_entropy.variants[2]},
    {"binary_cross_entropy_with_logits", ops.binary_cross_entropy_with_logits.variants[2]},
  }
  for i, k in ipairs(cases) do
    it(k[1], function()
      local xs = inputs_of(k[2], 500 + i)
      check_double(k[2].fn, xs)
    end)
  end
  it("the create_graph gradient of cross_entropy equals the fused one", function()
    dl.manual_seed(9)
    local x = dl.randn({3, 4}, {dtype = "float64", requires_grad = true})
    local y = dl.tensor({4, 1, 2}, I64)
    local o = {weight = dl.tensor({1, 2, 3, 4}, F64), label_smoothing = 0.3}
    local g1 = A.grad(F.cross_entropy(x, y, o), x)
    local g2 = A.grad(F.cross_entropy(x, y, o), x, nil, {create_graph = true})
    assert.is_not_nil(g2.grad_fn)
    H.assert_close(g1, g2, 1e-14)
  end)
end)

describe("losses: bad inputs", function()
  local x = dl.randn(2, 3)
  local y = dl.tensor({1, 3}, I64)
  it("class index 0 or above C names the loss and the value", function()
    H.assert_error(function() F.cross_entropy(x, dl.tensor({0, 1}, I64)) end, "cross_entropy", "target 0", "1..3")
    H.assert_error(function() F.nll_loss(x, dl.tensor({1, 4}, I64)) end, "nll_loss", "target 4")
    H.assert_error(function() F.cross_entropy(x, dl.tensor({1, -100}, I64), {ignore_index = 2}) end, "-100")
  end)
  it("a wrong target dtype", function()
    H.assert_error(function() F.cross_entropy(x, dl.tensor({1, 0}, {dtype = "bool"})) end, "cross_entropy",
      "class indices or float class probabilities", "bool")
    H.assert_error(function() F.nll_loss(x, dl.tensor({1.5, 2}, {dtype = "float32"})) end, "nll_loss", "int64", "float32")
    H.assert_error(function() F.mse_loss(x, dl.zeros({2, 3}, I64)) end, "mse_loss", "floating-point target")
    H.assert_error(function() F.cross_entropy(dl.zeros({2, 3}, I64), y) end, "floating-point input")
  end)
  it("float labels of class-index shape: the dtype is named as wrong, not the shape", function()
    H.assert_error(function() F.cross_entropy(x, dl.tensor({1.0, 3})) end, "cross_entropy",
      "target [2] of class indices must be int64, got float32", "target:long()", "[2,3]")
    H.assert_error(function() F.cross_entropy(dl.randn(2, 3, 4), dl.ones(2, 4)) end, "target [2,4]", "int64")
  end)
  it("a loss module's error names the module and points at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, e = pcall(function() return dl.nn.CrossEntropyLoss()(x, dl.tensor({1.0, 3})) end)
    assert.is_false(ok)
    assert.truthy(e:find("nn_loss_spec.lua:" .. line .. ": CrossEntropyLoss: dl.cross_entropy: target [2]", 1, true), e)
    H.assert_error(function() dl.nn.MSELoss()(x, dl.zeros(3, 2)) end, "MSELoss: dl.mse_loss", "[2,3]", "[3,2]")
  end)
  it("shape mismatches name both shapes", function()
    H.assert_error(function() F.cross_entropy(x, dl.tensor({1, 2, 3}, I64)) end, "cross_entropy", "[2,3]", "[3]")
    H.assert_error(function() F.mse_loss(x, dl.zeros(3, 2)) end, "mse_loss", "[2,3]", "[3,2]")
    H.assert_error(function() F.l1_loss(x, dl.zeros(3)) end, "l1_loss", "[2,3]", "[3]")
    H.assert_error(function() F.binary_cross_entropy(dl.rand(2, 3), dl.rand(2, 2)) end, "[2,3]", "[2,2]")
    H.assert_error(function() F.cross_entropy(x, dl.rand(2, 4)) end, "cross_entropy", "[2,3]", "[2,4]")
    H.assert_error(function() F.cross_entropy(x, y, {weight = dl.ones(4)}) end, "weight", "[4]", "[2,3]")
    H.assert_error(function() F.binary_cross_entropy_with_logits(x, dl.rand(2, 3), {pos_weight = dl.ones(2)}) end,
      "pos_weight", "[2]", "[2,3]")
    H.assert_error(function() F.binary_cross_entropy(dl.rand(2, 3), dl.rand(2, 3), {weight = dl.ones(2, 2, 3)}) end,
      "weight", "[2,2,3]", "[2,3]")
    H.assert_error(function() F.cross_entropy(dl.tensor(1.5), dl.tensor(1, I64)) end, "cross_entropy")
  end)
  it("an unknown reduction string", function()
    H.assert_error(function() F.mse_loss(x, x, {reduction = "avg"}) end, "mse_loss", "unknown reduction 'avg'")
    H.assert_error(function() F.cross_entropy(x, y, {reduction = "batchmean"}) end, "unknown reduction")
    H.assert_error(function() dl.nn.L1Loss({reduction = "elementwise"}) end, "L1Loss", "unknown reduction")
  end)
  it("unknown options and bad option values", function()
    H.assert_error(function() F.mse_loss(x, x, {reductio = "sum"}) end, "reductio")
    H.assert_error(function() dl.nn.MSELoss({weight = dl.ones(3)}) end, "MSELoss", "weight")
    H.assert_error(function() F.cross_entropy(x, y, {label_smoothing = 1.5}) end, "label_smoothing")
    H.assert_error(function() F.smooth_l1_loss(x, x, {beta = -1}) end, "beta")
    H.assert_error(function() F.cross_entropy(x, y, {ignore_index = 1.5}) end, "ignore_index")
    H.assert_error(function() F.cross_entropy(x, y, {weight = 3}) end, "weight", "tensor")
    H.assert_error(function() dl.nn.BCELoss({weight = 3}) end, "BCELoss", "weight")
    H.assert_error(function() F.mse_loss(x, x, 5) end, "options")
    H.assert_error(function() F.mse_loss(x) end, "tensor")
  end)
  it("binary_cross_entropy refuses inputs outside [0, 1]", function()
    H.assert_error(function() F.binary_cross_entropy(dl.tensor({0.5, 1.5}), dl.tensor({0, 1}, {dtype = "float32"})) end,
      "binary_cross_entropy", "between 0 and 1")
  end)
end)
