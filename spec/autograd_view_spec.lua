-- Views and copies under autograd: gradcheck and jvp-vs-reverse for every
-- entry of spec/gradcheck/view.lua, plus writes through views.
local dl = require "dlua"
local H = require "spec.helper"

local cases = require "spec.gradcheck.view"

local names = {}
for name in pairs(cases) do names[#names + 1] = name end
table.sort(names)

describe("views and copies: gradcheck", function()
  for i, name in ipairs(names) do
    it(name, function()
      dl.manual_seed(300 + i)
      local ins = cases[name].inputs()
      for _, x in ipairs(ins) do x:requires_grad_() end
      assert.is_true(dl.autograd.gradcheck(cases[name].fn, ins, cases[name].opts))
    end)
  end
end)

describe("views and copies: forward mode", function()
  for i, name in ipairs(names) do
    it(name .. ": jvp equals J·v", function()
      dl.manual_seed(400 + i)
      H.check_jvp(cases[name].fn, cases[name].inputs(), cases[name].jvp_tol)
    end)
  end
end)

describe("writes through views", function()
  it("t[i] = v rebases the base's history (CopySlices)", function()
    local x = dl.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64", requires_grad = true})
    local y = dl.tensor({7, 8, 9}, {dtype = "float64", requires_grad = true})
    local z = x:clone()
    z[1] = y
    assert.equal("CopySlices", z.grad_fn:name())
    z:backward(dl.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64"}))
    assert.same({{0, 0, 0}, {4, 5, 6}}, x.grad:totable())
    assert.same({1, 2, 3}, y.grad:totable())
  end)
  it("refuses writes into a view of a leaf that requires grad", function()
    local x = dl.zeros(2, 3, {requires_grad = true})
    H.assert_error(function() x[1] = 5 end, "leaf")
    H.assert_error(function() x:narrow(1, 1, 1):fill_(5) end, "leaf")
  end)
  it("refuses other in-place ops through such views", function()
    local x = dl.zeros(2, 3, {requires_grad = true})
    local z = x * 1
    H.assert_error(function() z:narrow(1, 1, 1):add_(1) end, "view")
  end)
end)
