-- Views and copies under autograd: gradcheck and jvp-vs-reverse for every
-- entry of spec/gradcheck/view.lua, plus writes through views.
local dl = require "dlua"
local H = require "spec.helper"

local cases = require "spec.gradcheck.view"

local names = {}
for name in pairs(cases) do names[#names + 1] = name end
table.sort(names)

-- each entry's main case, then its variants (if any)
local function each_case(name)
  local list = {{desc = name, fn = cases[name].fn, inputs = cases[name].inputs, opts = cases[name].opts,
                 jvp_tol = cases[name].jvp_tol}}
  for _, v in ipairs(cases[name].variants or {}) do
    list[#list + 1] = {desc = name .. ", " .. v.desc, fn = v.fn, inputs = v.inputs, opts = v.opts, jvp_tol = v.jvp_tol}
  end
  return list
end

describe("views and copies: gradcheck", function()
  for i, name in ipairs(names) do
    for j, c in ipairs(each_case(name)) do
      it(c.desc, function()
        dl.manual_seed(300 + i + 1000 * (j - 1))
        local ins = c.inputs()
        for _, x in ipairs(ins) do x:requires_grad_() end
        assert.is_true(dl.autograd.gradcheck(c.fn, ins, c.opts))
      end)
    end
  end
end)

describe("views and copies: forward mode", function()
  for i, name in ipairs(names) do
    for j, c in ipairs(each_case(name)) do
      it(c.desc .. ": jvp equals J·v", function()
        dl.manual_seed(400 + i + 1000 * (j - 1))
        H.check_jvp(c.fn, c.inputs(), c.jvp_tol)
      end)
    end
  end
end)

describe("view nodes' names", function()
  it("are PyTorch's", function()
    local x = dl.randn(2, 3, {dtype = "float64"}):requires_grad_()
    assert.equal("TBackward0", x:t().grad_fn:name())
    assert.equal("TBackward0", x:select(1, 1):t().grad_fn:name()) -- 1-D: the tensor itself
    assert.equal("TransposeBackward0", x:transpose(1, 2).grad_fn:name())
    assert.equal("SliceBackward0", x:narrow(2, 1, 2).grad_fn:name())
    assert.equal("SqueezeBackward0", x:view(1, 2, 3):squeeze().grad_fn:name())
    assert.equal("SqueezeBackward1", x:view(1, 2, 3):squeeze(1).grad_fn:name())
  end)
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

-- A view taken before its base (or another view of it) was written in place
-- derives its history again from the base's (AsStridedBackward0), as PyTorch
-- regenerates a view's grad_fn; forward mode writes the new tangent into the
-- one the views share. Values: spec/fixtures/view_history_reference.py.
describe("views of a tensor written in place after they were taken", function()
  local R = require "spec.fixtures.view_history_reference"
  local function X() return dl.tensor(R.x, {dtype = "float64", requires_grad = true}) end
  local W = dl.tensor(R.unfold_weights, {dtype = "float64"}):view(3, 2)
  -- x[2:3] as a view of q = x * 1, then q written (q:mul_(3)); prepare(v), if
  -- given, runs on the view before the write
  local function written_view(x, prepare)
    local q = x * 1
    local vw = q:narrow(1, 2, 2)
    if prepare then prepare(vw) end
    q:mul_(3)
    return vw
  end
  local reverse = {
    base_mul = function(x)
      local vw = written_view(x)
      return (vw * vw):sum()
    end,
    sibling_copy = function(x)
      local q = x * 1
      local a, b = q:narrow(1, 1, 2), q:narrow(1, 2, 2)
      a:copy_(x:narrow(1, 3, 2) * 10)
      return b:sum()
    end,
    base_assign = function(x)
      local q = x * 1
      local vw = q:view(2, 2)
      q[1] = 0
      return vw:sum()
    end,
    expanded = function(x) -- the view's elements share memory: gradients add up
      local q = x * 1
      local e = q:narrow(1, 1, 1):expand(3)
      q:mul_(2)
      return e:sum()
    end,
    unfolded = function(x) -- overlapping windows
      local q = x * 1
      local u = q:unfold(1, 2, 1)
      q:mul_(2)
      return (u * W):sum()
    end,
    transposed = function(x)
      local q = x * 1
      local t = q:view(2, 2):t()
      q:add_(1)
      return (t * t):sum()
    end,
    view_of_view = function(x)
      local q = x * 1
      local w = q:view(2, 2):t():narrow(1, 1, 1)
      q:mul_(5)
      return w:sum()
    end,
  }
  for name, f in pairs(reverse) do
    it("give PyTorch's gradient: " .. name, function()
      local x = X()
      f(x):backward()
      assert.same(R.reverse[name], x.grad:totable())
    end)
  end
  it("name the new history, keep a retained gradient, and start a backward from the view", function()
    local x = X()
    local vw = written_view(x, function(v) v:retain_grad() end)
    assert.equal(R.grad_fn_after_write, vw.grad_fn:name())
    assert.is_false(vw.is_leaf)
    local loss = (vw * 2):sum()
    loss:backward()
    assert.same(R.retained.view, vw.grad:totable())
    assert.same(R.retained.x, x.grad:totable())
    x = X()
    vw = written_view(x)
    vw:backward(dl.ones(2, {dtype = "float64"}))
    assert.same(R.from_view, x.grad:totable())
  end)
  it("give second derivatives through the re-derived history (create_graph)", function()
    -- g = 2x + 18x on elements 2 and 3 (v = 3 x there), so d sum(g)/dx = (2, 20, 20, 2)
    local x = X()
    local vw = written_view(x)
    local g = dl.autograd.grad((vw * vw):sum() + (x * x):sum(), x, nil, {create_graph = true})
    g:sum():backward()
    assert.same({2, 20, 20, 2}, x.grad:totable())
    local x2 = dl.tensor({1, 2}, {dtype = "float64", requires_grad = true}) -- an expanded view: gathered back
    local q2 = x2 * 1
    local e = q2:narrow(1, 1, 1):expand(3)
    q2:mul_(2)
    local g2 = dl.autograd.grad((e * e):sum(), x2, nil, {create_graph = true})
    assert.same({24, 0}, g2:totable()) -- 3 * 2 * (2x) * 2 at x = 1
    g2:sum():backward()
    assert.same({24, 0}, x2.grad:totable())
  end)
  it("a view detached in place stays a leaf (it is not derived from its base again)", function()
    local x = X()
    local vw = written_view(x, function(v)
      v:detach_()
      v:requires_grad_(true)
    end)
    assert.is_true(vw.is_leaf)
    vw:sum():backward()
    assert.same({1, 1}, vw.grad:totable())
    assert.is_nil(x.grad)
  end)
  it("print the history they would give", function()
    local vw = written_view(X())
    assert.truthy(tostring(vw):find("grad_fn=<AsStridedBackward0>", 1, true))
  end)
  it("are unchanged by writes under no_grad (the old history still holds)", function()
    local x = X()
    local q = x * 1
    local vw = q:narrow(1, 2, 2)
    dl.no_grad(function() q:mul_(3) end)
    vw:sum():backward()
    assert.same({0, 1, 1, 0}, x.grad:totable())
  end)

  local function narrowed(q) return q:narrow(1, 2, 2) end
  local forward = {
    base_mul = function(x) local q = x * 1; local v = narrowed(q); q:mul_(3); return v end,
    view_mul = function(x) local q = x * 1; narrowed(q):mul_(3); return q end,
    sibling_copy = function(x)
      local q = x * 1
      local b = q:narrow(1, 2, 2)
      q:narrow(1, 1, 2):copy_(x:narrow(1, 3, 2) * 10)
      return b
    end,
    base_sigmoid = function(x) local q = x * 1; local v = narrowed(q); q:sigmoid_(); return v end,
    base_scatter = function(x)
      local q = x * 1
      local v = narrowed(q)
      q:scatter_(1, dl.tensor({1, 2}), x:narrow(1, 3, 2))
      return v
    end,
    base_index_add = function(x)
      local q = x * 1
      local v = narrowed(q)
      q:index_add_(1, dl.tensor({2, 3}), x:narrow(1, 1, 2))
      return v
    end,
    base_clamp = function(x) local q = x * 1; local v = narrowed(q); q:clamp_(2.5, 3.5); return v end,
    base_masked_fill = function(x)
      local q = x * 1
      local v = narrowed(q)
      q:masked_fill_(dl.tensor({false, true, false, false}), 0)
      return v
    end,
  }
  it("an in-place op on a reshaped copy leaves the input's tangent (and the caller's) alone", function()
    local xt = dl.tensor({{1, 2}, {3, 4}}, {dtype = "float64"}):t() -- reshape(4) copies it
    local v = dl.tensor({{1, 10}, {100, 1000}}, {dtype = "float64"})
    local _, t = dl.autograd.jvp(function(a)
      local r = a:reshape(4)
      r:mul_(3)
      return a * 1
    end, xt, v)
    assert.same({{1, 10}, {100, 1000}}, t:totable())
    assert.same({{1, 10}, {100, 1000}}, v:totable())
  end)
  for name, f in pairs(forward) do
    it("give PyTorch's tangent (forward mode): " .. name, function()
      local _, t = dl.autograd.jvp(f, dl.tensor(R.x, {dtype = "float64"}), dl.tensor(R.tangent, {dtype = "float64"}))
      H.assert_close(t, dl.tensor(R.forward[name], {dtype = "float64"}), 1e-12)
    end)
  end
end)
