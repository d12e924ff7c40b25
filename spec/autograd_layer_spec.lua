-- Layer ops under autograd: gradcheck and jvp-vs-reverse for every entry of
-- spec/gradcheck/layer.lua, further variants, double backward, and errors.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd

local cases = require "spec.gradcheck.layer"

local function r(...) return dl.randn({...}, {dtype = "float64"}) end

local function leaves(ins)
  for _, x in ipairs(ins) do x:requires_grad_() end
  return ins
end

-- variants beyond the coverage table (same checks)
local variants = {
  ["rbf without the bias unit, fixed centers"] = {
    fn = function(x, s) return dl.rbf(x, dl.tensor({{0.5, -1}, {1, 0.25}}, {dtype = "float64"}), s) end,
    inputs = function() return {r(3, 2), dl.rand(2, {dtype = "float64"}) + 0.7} end,
  },
  ["rbf with one learnable center row (broadcast-free 1 x D)"] = {
    fn = function(x, c) return dl.rbf(x, c, dl.tensor({1.3}, {dtype = "float64"})) end,
    inputs = function() return {r(4, 3), r(1, 3)} end,
  },
  ["batch_norm training on [N, C] without weight and bias"] = {
    fn = function(x) return dl.batch_norm(x, nil, nil, {training = true}) end,
    inputs = function() return {r(5, 3)} end,
  },
  ["batch_norm training with weight only, narrowed input"] = {
    fn = function(x, w) return dl.batch_norm(x, nil, nil, {weight = w, training = true, eps = 1e-3}) end,
    inputs = function() return {r(6, 5):narrow(2, 2, 3), r(3)} end,
  },
  ["batch_norm eval (running statistics)"] = {
    fn = function(x, w, b)
      local rm = dl.tensor({0.1, -0.2, 0.3}, {dtype = "float64"})
      local rv = dl.tensor({0.5, 1.5, 2.0}, {dtype = "float64"})
      return dl.batch_norm(x, rm, rv, {weight = w, bias = b})
    end,
    inputs = function() return {r(4, 3, 2), r(3), r(3)} end,
  },
  ["dropout p = 0.8 on a 3-D input"] = {
    fn = function(x)
      dl.manual_seed(11)
      return dl.F.dropout(x, 0.8)
    end,
    inputs = function() return {r(2, 3, 4)} end,
  },
}

for _, set in ipairs({{"layer ops", cases}, {"layer op variants", variants}}) do
  local title, tbl = set[1], set[2]
  describe(title .. ": gradcheck", function()
    for i, name in ipairs(H.sorted_keys(tbl)) do
      it(name, function()
        dl.manual_seed(500 + i)
        assert.is_true(A.gradcheck(tbl[name].fn, leaves(tbl[name].inputs()), tbl[name].opts))
      end)
    end
  end)
  describe(title .. ": forward mode", function()
    for i, name in ipairs(H.sorted_keys(tbl)) do
      it(name .. ": jvp equals J·v", function()
        dl.manual_seed(600 + i)
        H.check_jvp(tbl[name].fn, tbl[name].inputs(), tbl[name].jvp_tol)
      end)
    end
  end)
  describe(title .. ": double backward (create_graph)", function()
    for i, name in ipairs(H.sorted_keys(tbl)) do
      it(name, function()
        dl.manual_seed(700 + i)
        local ins = leaves(tbl[name].inputs())
        local w = r(dl.no_grad(tbl[name].fn, table.unpack(ins)):numel())
        assert.is_true(A.gradcheck(H.grad_of(tbl[name].fn, w), ins))
      end)
    end
  end)
end

describe("layer ops: nodes", function()
  it("are named as PyTorch names them", function()
    local x = r(4, 3):requires_grad_()
    assert.equal("NativeBatchNormBackward0", dl.batch_norm(x, nil, nil, {training = true}).grad_fn:name())
    assert.equal("NativeDropoutBackward0", dl.dropout(x, 0.5, true).grad_fn:name())
    assert.equal("RbfBackward0", dl.rbf(x, r(2, 3), dl.ones(2, {dtype = "float64"})).grad_fn:name())
  end)
  it("record nothing when no input requires grad", function()
    local x = r(4, 3)
    assert.is_nil(dl.batch_norm(x, nil, nil, {training = true}).grad_fn)
    assert.is_nil(dl.dropout(x, 0.5, true).grad_fn)
    assert.is_nil(dl.rbf(x, r(2, 3), dl.ones(2, {dtype = "float64"})).grad_fn)
  end)
  it("record nothing under no_grad", function()
    local x = r(4, 3):requires_grad_()
    local y = dl.no_grad(function() return dl.batch_norm(x, nil, nil, {training = true}) end)
    assert.is_nil(y.grad_fn)
  end)
  it("dropout keeps element i when the i-th word of the stream is below (1 - p) 2^32", function()
    -- randint over [0, 2^32) hands out the same words, one an element; a
    -- strided input draws as its contiguous copy
    for _, n in ipairs({1, 5, 127, 128, 129, 1000, 70001}) do
      for _, dt in ipairs({"float32", "float64"}) do
        local x = dl.randn(n, {dtype = dt}):requires_grad_()
        dl.manual_seed(n)
        local y = dl.dropout(x, 0.3, true)
        dl.manual_seed(n)
        local kept = dl.randint(0, 4294967296, {n}):lt(math.ceil(0.7 * 4294967296)):to(dt)
        H.assert_close(y, x * kept * (1 / 0.7), 0)
        local g = dl.randn(n, {dtype = dt})
        H.assert_close(dl.autograd.grad(y, x, g), g * kept * (1 / 0.7), 0)
      end
    end
    local x = dl.randn(40, 30)
    dl.manual_seed(9)
    local a = dl.dropout(x:t(), 0.5, true)
    dl.manual_seed(9)
    local b = dl.dropout(x:t():contiguous(), 0.5, true)
    H.assert_close(a, b, 0)
  end)
  it("the fused batch-norm backward equals the composed one", function()
    dl.manual_seed(3)
    local x, w, b = r(7, 4, 3):requires_grad_(), r(4):requires_grad_(), r(4):requires_grad_()
    local g = r(7, 4, 3)
    local fused = {A.grad(dl.batch_norm(x, nil, nil, {weight = w, bias = b, training = true}), {x, w, b}, g)}
    local composed = {A.grad(dl.batch_norm(x, nil, nil, {weight = w, bias = b, training = true}), {x, w, b}, g,
      {create_graph = true})}
    for i = 1, 3 do H.assert_close(fused[i], composed[i], 1e-12) end
  end)
  it("the fused rbf backward equals the composed one", function()
    dl.manual_seed(4)
    for _, bias_unit in ipairs({false, true}) do
      local x, c = r(6, 3):requires_grad_(), r(4, 3):requires_grad_()
      local s = (dl.rand(4, {dtype = "float64"}) + 0.5):requires_grad_()
      local g = r(6, bias_unit and 5 or 4)
      local o = {bias_unit = bias_unit}
      local fused = {A.grad(dl.rbf(x, c, s, o), {x, c, s}, g)}
      local composed = {A.grad(dl.rbf(x, c, s, o), {x, c, s}, g, {create_graph = true})}
      for i = 1, 3 do H.assert_close(fused[i], composed[i], 1e-12) end
    end
  end)
  it("rbf gradients stay finite where the features underflow to 0", function()
    local x = dl.tensor({{0, 0}, {100, 100}}, {dtype = "float64", requires_grad = true})
    local c = dl.tensor({{0, 0}}, {dtype = "float64", requires_grad = true})
    local s = dl.tensor({0.5}, {dtype = "float64", requires_grad = true})
    local y = dl.rbf(x, c, s)
    assert.same({{1}, {0}}, y:detach():totable())
    y:sum():backward()
    for _, t in ipairs({x.grad, c.grad, s.grad}) do
      assert.is_true(t:isfinite():all():item())
    end
    assert.same({0}, s.grad:totable())
  end)
end)

describe("layer ops: saved tensors modified in place", function()
  it("rbf: backward names the op", function()
    local x = r(3, 2):requires_grad_()
    local h = x * 1
    local y = dl.rbf(h, r(2, 2), dl.ones(2, {dtype = "float64"}))
    h:add_(1)
    H.assert_error(function() y:sum():backward() end, "RbfBackward0", "in-place")
  end)
  it("batch_norm: backward names the op", function()
    local x = r(4, 2):requires_grad_()
    local h = x * 1
    local y = dl.batch_norm(h, nil, nil, {training = true})
    h:mul_(2)
    H.assert_error(function() y:sum():backward() end, "NativeBatchNormBackward0", "in-place")
  end)
end)
