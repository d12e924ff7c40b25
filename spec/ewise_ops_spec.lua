-- The op table's newer element-wise ops against PyTorch
-- (spec/fixtures/ewise_reference.py -> ewise_reference.lua): values in
-- float64 and float32, gradients, and the special points; and what the table
-- generates for them (registration, in-place forms, differentiable_ops).
local dl = require "dlua"
local H = require "spec.helper"
local ref = require "spec.fixtures.ewise_reference"

local F64 = {dtype = "float64"}

-- relative comparison that also accepts equal infinities and NaN for NaN
local function same_value(got, want, rtol)
  if want ~= want then return got ~= got end
  if want == math.huge or want == -math.huge then return got == want end
  return math.abs(got - want) <= rtol * math.max(1, math.abs(want))
end

local function assert_values(t, want, rtol, what)
  local got = H.flat(t)
  assert.equal(#want, #got, what)
  for i = 1, #want do
    assert(same_value(got[i], want[i], rtol),
      string.format("%s[%d]: got %.17g, PyTorch %.17g", what, i, got[i], want[i]))
  end
end

for _, name in ipairs({"sinh", "cosh", "asinh"}) do
  describe(name, function()
    local r = ref[name]
    it("matches PyTorch in float64, with the gradient of sum(out * gout)", function()
      local x = dl.tensor(ref.x, {dtype = "float64", requires_grad = true})
      local y = dl[name](x)
      assert_values(y, r.out, 1e-13, name)
      assert.equal(name:sub(1, 1):upper() .. name:sub(2) .. "Backward0", y.grad_fn:name())
      local loss = (y * dl.tensor(ref.gout, F64)):sum()
      loss:backward()
      assert_values(x.grad, r.grad, 1e-12, name .. " grad")
    end)
    it("matches PyTorch in float32, and integers compute in float32", function()
      assert_values(dl.tensor(ref.x):float()[name](dl.tensor(ref.x):float()), r.out32, 2e-6, name .. " float32")
      local i = dl.tensor({-2, 0, 3})
      assert.equal("float32", i[name](i).dtype)
    end)
    it("keeps PyTorch's values at inf, -inf and NaN", function()
      assert_values(dl[name](dl.tensor(ref.special, F64)), r.special, 0, name .. " special")
    end)
    it("has an in-place form that bumps the version", function()
      local x = dl.tensor({0.5, -1.5}, F64)
      local want = H.flat(dl[name](x))
      x[name .. "_"](x)
      H.assert_close(x, want, 0)
      H.assert_error(function() dl.tensor({1, 2})[name .. "_"](dl.tensor({1, 2})) end,
        "dl." .. name .. "_: result type float32 can't be cast to the desired output type int64")
    end)
    it("is listed by differentiable_ops with its in-place form", function()
      local ops = {}
      for _, n in ipairs(dl.autograd.differentiable_ops()) do ops[n] = true end
      assert.is_true(ops[name] and ops[name .. "_"])
    end)
    it("rejects bad arguments", function()
      H.assert_error(function() dl[name]("x") end, "bad argument #1", "tensor expected, got string")
      H.assert_error(function() dl[name]() end, "bad argument #1", "tensor expected, got no value")
    end)
  end)
end
