-- Autograd of indexing, joining and sorting: reverse mode (gradcheck), forward
-- mode (jvp against reverse-mode rows), second derivatives through recorded
-- backward passes, in-place forms and the safety checks.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd

local F64 = {dtype = "float64"}

local function randn(...)
  local shape = {...}
  shape[#shape + 1] = F64
  return dl.randn(table.unpack(shape))
end

-- a leaf requiring grad (views of a plain tensor are leaves too)
local function leaf(t) return t:requires_grad_(true) end

local function flat(t)
  local c = t:detach():double():contiguous():view(-1)
  local out = {}
  for i = 1, c:numel() do out[i] = c:get(i) end
  return out
end

local function dot(a, b)
  local fa, fb = flat(a), flat(b)
  local s = 0
  for i = 1, #fa do s = s + fa[i] * fb[i] end
  return s
end

-- J·v from reverse mode: one row of every input's Jacobian per output element
local function reverse_jv(fn, inputs, tangents)
  local ins = {}
  for i, x in ipairs(inputs) do ins[i] = x:detach():requires_grad_(true) end
  local y = fn(table.unpack(ins))
  local n = y:numel()
  local out = {}
  if n == 0 then return out end
  local yf = y:reshape(-1)
  for k = 1, n do
    local seed = dl.zeros(n, F64)
    seed:set(k, 1)
    local gs = table.pack(A.grad(yf, ins, seed, {retain_graph = true, allow_unused = true}))
    local s = 0
    for i = 1, #ins do
      if gs[i] then s = s + dot(gs[i], tangents[i]) end
    end
    out[k] = s
  end
  return out
end

-- forward mode must agree with reverse mode for random tangents
local function check_jvp(fn, inputs)
  local tangents = {}
  for i, x in ipairs(inputs) do tangents[i] = dl.randn(x:size(), F64) end
  local primals = {}
  for i, x in ipairs(inputs) do primals[i] = x:detach() end
  local out, tout = A.jvp(fn, primals, tangents)
  assert.same(out:size(), tout:size())
  assert.equal("float64", tout.dtype)
  local expected = reverse_jv(fn, inputs, tangents)
  local got = flat(tout)
  assert.equal(#expected, #got)
  for k = 1, #got do
    assert(math.abs(got[k] - expected[k]) <= 1e-10 * (1 + math.abs(expected[k])),
      string.format("jvp element %d: forward %.12g, reverse %.12g", k, got[k], expected[k]))
  end
  -- the primal output is the plain result
  H.assert_close(out, fn(table.unpack(primals)), 0)
end

local I = dl.tensor -- index tensors are int64, 1-based

-- every differentiable op of the family (spec/gradcheck/index.lua)
local cases = require "spec.gradcheck.index"

local names = {
  "cat", "stack", "index_select", "gather", "masked_select", "scatter", "scatter_", "scatter_add",
  "scatter_add_", "index_add", "index_add_", "index_copy", "index_copy_", "index_fill", "index_fill_",
  "sort", "topk", "flip", "roll",
}

describe("index-family autograd: coverage", function()
  it("has a gradcheck case for every differentiable op and no other", function()
    local listed, covered = {}, {}
    for _, n in ipairs(names) do listed[n] = true end
    for _, c in ipairs(cases) do
      assert(listed[c.op], "case for an op not in the list: " .. c.op)
      covered[c.op] = true
    end
    for _, n in ipairs(names) do assert(covered[n], "no gradcheck case for " .. n) end
  end)
  it("matches dl.autograd.differentiable_ops()", function()
    local all = {}
    for _, n in ipairs(A.differentiable_ops()) do all[n] = true end
    if not all.gather then
      pending("lua_autograd.c does not export dl_grad_index_names yet")
      return
    end
    for _, n in ipairs(names) do assert(all[n], n .. " missing from differentiable_ops()") end
  end)
end)

describe("index-family autograd: gradcheck", function()
  for i, c in ipairs(cases) do
    it(c.op .. ": " .. c.desc, function()
      dl.manual_seed(100 + i)
      assert.is_true(A.gradcheck(c.fn, c.make()))
    end)
  end
end)

describe("index-family autograd: forward mode", function()
  for i, c in ipairs(cases) do
    it(c.op .. ": jvp equals J·v from reverse mode (" .. c.desc .. ")", function()
      dl.manual_seed(200 + i)
      check_jvp(c.fn, c.make())
    end)
  end
  it("a constant input without a tangent contributes nothing", function()
    dl.manual_seed(3)
    local a, b = randn(2, 2), randn(1, 2)
    local v = randn(2, 2)
    local _, t = A.jvp(function(x) return dl.cat({x, b}) end, {a}, {v})
    H.assert_close(t, dl.cat({v, dl.zeros(1, 2, F64)}), 0)
    local _, ts = A.jvp(function(x) return x:scatter(1, I({{2, 1}}), b) end, {a}, {v})
    H.assert_close(ts, v:scatter(1, I({{2, 1}}), dl.zeros(1, 2, F64)), 0)
  end)
  it("leaves the caller's tangent untouched in in-place forms", function()
    local v = dl.ones(2, 3, F64)
    local _, t = A.jvp(function(x) return x:clone():index_fill_(2, I({2}), 5) end, {dl.zeros(2, 3, F64)}, {v})
    assert.same({{1, 0, 1}, {1, 0, 1}}, t:totable())
    assert.same({{1, 1, 1}, {1, 1, 1}}, v:totable())
  end)
end)

describe("index-family autograd: backward values", function()
  it("index_select accumulates duplicate rows", function()
    local x = leaf(dl.zeros(3, 2, F64))
    local y = x:index_select(1, I({3, 1, 3}))
    assert.equal("IndexSelectBackward0", y.grad_fn:name())
    y:backward(dl.ones(3, 2, F64))
    assert.same({{1, 1}, {0, 0}, {2, 2}}, x.grad:totable())
  end)
  it("gather sends gradients back with scatter_add", function()
    local x = leaf(dl.zeros(2, 3, F64))
    local y = x:gather(2, I({{1, 1}, {3, 2}}))
    assert.equal("GatherBackward0", y.grad_fn:name())
    y:backward(dl.tensor({{1, 2}, {3, 4}}, F64))
    assert.same({{3, 0, 0}, {0, 4, 3}}, x.grad:totable())
  end)
  it("scatter: self loses the written positions, src gets the gathered gradient padded to its shape", function()
    local s, src = leaf(dl.zeros(2, 3, F64)), leaf(dl.zeros(2, 4, F64))
    local y = s:scatter(1, I({{2, 1, 2}}), src)
    assert.equal("ScatterBackward0", y.grad_fn:name())
    y:backward(dl.tensor({{1, 2, 3}, {4, 5, 6}}, F64))
    assert.same({{1, 0, 3}, {0, 5, 0}}, s.grad:totable())
    assert.same({{4, 2, 6, 0}, {0, 0, 0, 0}}, src.grad:totable())
    local v = leaf(dl.zeros(2, 2, F64)):scatter(2, I({{2}, {1}}), 3)
    assert.equal("ScatterBackward1", v.grad_fn:name())
  end)
  it("index_add scales the source gradient by alpha", function()
    local s, src = leaf(dl.zeros(3, 2, F64)), leaf(dl.zeros(2, 2, F64))
    local y = s:index_add(1, I({3, 3}), src, 2)
    assert.equal("IndexAddBackward0", y.grad_fn:name())
    y:backward(dl.tensor({{1, 2}, {3, 4}, {5, 6}}, F64))
    assert.same({{1, 2}, {3, 4}, {5, 6}}, s.grad:totable())
    assert.same({{10, 12}, {10, 12}}, src.grad:totable())
  end)
  it("index_copy and index_fill zero the written slices of self's gradient", function()
    local s, src = leaf(dl.zeros(2, 3, F64)), leaf(dl.zeros(2, 1, F64))
    local y = s:index_copy(2, I({2}), src)
    assert.equal("IndexCopyBackward0", y.grad_fn:name())
    y:backward(dl.tensor({{1, 2, 3}, {4, 5, 6}}, F64))
    assert.same({{1, 0, 3}, {4, 0, 6}}, s.grad:totable())
    assert.same({{2}, {5}}, src.grad:totable())
    local t = leaf(dl.zeros(2, 2, F64))
    local z = t:index_fill(1, I({1}), 9)
    assert.equal("IndexFillBackward0", z.grad_fn:name())
    z:backward(dl.ones(2, 2, F64))
    assert.same({{0, 0}, {1, 1}}, t.grad:totable())
  end)
  it("masked_select puts the gradient at the mask and sums over broadcast dims", function()
    local x = leaf(dl.zeros(1, 3, F64))
    local y = x:masked_select(dl.tensor({{true, false, true}, {true, true, false}}))
    assert.equal("MaskedSelectBackward0", y.grad_fn:name())
    y:backward(dl.tensor({1, 2, 3, 4}, F64))
    assert.same({{4, 4, 2}}, x.grad:totable())
    local e = leaf(dl.zeros(2, F64))
    e:masked_select(dl.tensor({false, false})):backward(dl.zeros(0, F64))
    assert.same({0, 0}, e.grad:totable())
  end)
  it("sort and topk route gradients through the indices, which never record", function()
    local x = leaf(dl.tensor({3, 1, 2}, F64))
    local v, i = x:sort()
    assert.equal("SortBackward0", v.grad_fn:name())
    assert.is_nil(i.grad_fn)
    assert.is_false(i.requires_grad)
    v:backward(dl.tensor({10, 20, 30}, F64))
    assert.same({30, 10, 20}, x.grad:totable())
    local w = leaf(dl.tensor({{1, 5, 3}}, F64))
    local tv, ti = w:topk(2)
    assert.equal("TopkBackward0", tv.grad_fn:name())
    assert.is_false(ti.requires_grad)
    tv:backward(dl.tensor({{7, 8}}, F64))
    assert.same({{0, 7, 8}}, w.grad:totable())
    assert.is_false(w:argsort().requires_grad)
  end)
  it("sort and topk of a 0-d tensor", function()
    local x = leaf(dl.tensor(2.5, F64))
    local v = x:sort()
    v:backward(dl.tensor(3, F64))
    assert.equal(3, x.grad:item())
    local e = leaf(dl.tensor(1.5, F64))
    local tv = e:topk(0)
    assert.same({0}, tv:size())
    tv:backward(dl.zeros(0, F64))
    assert.equal(0, e.grad:item())
  end)
  it("cat casts each gradient to its input's dtype and handles skipped empty inputs", function()
    local a = leaf(dl.ones(2, {dtype = "float32"}))
    local b = leaf(dl.ones(1, F64))
    local e = leaf(dl.zeros(0, F64))
    local y = dl.cat({a, e, b, dl.tensor({5})})
    assert.equal("float64", y.dtype)
    assert.equal("CatBackward0", y.grad_fn:name())
    y:backward(dl.tensor({1, 2, 3, 4}, F64))
    assert.equal("float32", a.grad.dtype)
    assert.same({1, 2}, a.grad:totable())
    assert.same({3}, b.grad:totable())
    assert.same({0}, e.grad:size())
  end)
  it("cat and stack of many inputs", function()
    local xs = {}
    for i = 1, 20 do xs[i] = leaf(dl.full({1, 2}, i, F64)) end
    local y = dl.cat(xs)
    y:backward(dl.arange(1, 41, F64):view(20, 2))
    assert.same({{39, 40}}, xs[20].grad:totable())
    assert.same({{1, 2}}, xs[1].grad:totable())
    for i = 1, 20 do xs[i].grad = nil end
    local s = dl.stack(xs, 3)
    assert.equal("StackBackward0", s.grad_fn:name())
    assert.same({20, 1, 2}, {s:size(3), s:size(1), s:size(2)})
    s:backward(dl.ones(1, 2, 20, F64))
    assert.same({{1, 1}}, xs[7].grad:totable())
  end)
  it("flip and roll invert themselves", function()
    local x = leaf(dl.zeros(3, F64))
    local y = x:flip(1)
    assert.equal("FlipBackward0", y.grad_fn:name())
    y:backward(dl.tensor({1, 2, 3}, F64))
    assert.same({3, 2, 1}, x.grad:totable())
    local r = leaf(dl.zeros(4, F64))
    local z = r:roll(math.mininteger)
    assert.equal("RollBackward0", z.grad_fn:name())
    z:backward(dl.tensor({1, 2, 3, 4}, F64))
    assert.same({1, 2, 3, 4}, r.grad:totable())
    r.grad = nil
    r:roll(1):backward(dl.tensor({1, 2, 3, 4}, F64))
    assert.same({2, 3, 4, 1}, r.grad:totable())
  end)
  it("float32 inputs get float32 gradients", function()
    local x = leaf(dl.zeros(2, 3))
    local src = leaf(dl.zeros(1, 3))
    local y = x:gather(2, I({{3}, {1}}))
    y:backward(dl.tensor({{2}, {5}}, {dtype = "float32"}))
    assert.equal("float32", x.grad.dtype)
    assert.same({{0, 0, 2}, {5, 0, 0}}, x.grad:totable())
    local z = dl.zeros(2, 3):index_add(1, I({2}), src, 0.5)
    z:backward(dl.ones(2, 3))
    assert.equal("float32", src.grad.dtype)
    assert.same({{0.5, 0.5, 0.5}}, src.grad:totable())
  end)
  it("does not record under no_grad, for integer tensors or for inputs not requiring grad", function()
    local x = leaf(randn(2, 3))
    dl.no_grad(function()
      assert.is_nil(x:gather(2, I({{1}, {2}})).grad_fn)
      assert.is_nil(dl.cat({x, x}).grad_fn)
      assert.is_false((x:sort()).requires_grad)
    end)
    assert.is_false(I({3, 1}):sort().requires_grad)
    assert.is_false(randn(3):flip(1).requires_grad)
    assert.is_false(randn(2, 2):index_add(1, I({1}), randn(1, 2)).requires_grad)
  end)
end)

describe("index-family autograd: in-place forms", function()
  it("rebase the history of self and accumulate into both inputs", function()
    local x, s = leaf(dl.zeros(3, 2, F64)), leaf(dl.zeros(2, 2, F64))
    local c = x:clone()
    local r = c:index_add_(1, I({1, 3}), s, {alpha = 3})
    assert.is_true(rawequal(c, r))
    assert.equal("IndexAddBackward0", c.grad_fn:name())
    c:backward(dl.tensor({{1, 2}, {3, 4}, {5, 6}}, F64))
    assert.same({{1, 2}, {3, 4}, {5, 6}}, x.grad:totable())
    assert.same({{3, 6}, {15, 18}}, s.grad:totable())
  end)
  it("refuse a view of a tensor that requires grad", function()
    local x = leaf(dl.zeros(2, 3, F64))
    local v = x:clone():narrow(2, 1, 2)
    H.assert_error(function() v:index_fill_(1, I({1}), 3) end, "index_fill_", "view")
  end)
  it("record when only src requires grad", function()
    local base = dl.zeros(2, 2, F64)
    local src = leaf(dl.ones(1, 2, F64))
    base:scatter_add_(1, I({{2, 2}}), src)
    assert.equal("ScatterAddBackward0", base.grad_fn:name())
    base:backward(dl.tensor({{1, 2}, {3, 4}}, F64))
    assert.same({{3, 4}}, src.grad:totable())
  end)
  it("chain: each write sees the previous one's history", function()
    local x = leaf(dl.zeros(2, 3, F64))
    local c = x:clone()
    c:index_fill_(2, I({1}), 0)
    c:scatter_(2, I({{2}, {3}}), 1)
    c:index_copy_(1, I({2}), leaf(dl.zeros(1, 3, F64)))
    c:backward(dl.ones(2, 3, F64))
    assert.same({{0, 0, 1}, {0, 0, 0}}, x.grad:totable())
  end)
  it("refuse a leaf that requires grad", function()
    local x = leaf(dl.zeros(2, 2, F64))
    H.assert_error(function() x:scatter_(1, I({{1, 2}}), 1) end, "scatter_", "leaf")
    H.assert_error(function() x:scatter_add_(1, I({{1, 2}}), dl.ones(1, 2, F64)) end, "scatter_add_", "leaf")
    H.assert_error(function() x:index_add_(1, I({1}), dl.ones(1, 2, F64)) end, "index_add_", "leaf")
    H.assert_error(function() x:index_copy_(1, I({1}), dl.ones(1, 2, F64)) end, "index_copy_", "leaf")
    H.assert_error(function() x:index_fill_(1, I({1}), 3) end, "index_fill_", "leaf")
    assert.same({{0, 0}, {0, 0}}, x:totable())
    dl.no_grad(function() x:index_fill_(1, I({1}), 3) end)
    assert.same({{3, 3}, {0, 0}}, x:totable())
  end)
  it("a saved index modified in place makes backward fail naming the op", function()
    local x = leaf(randn(2, 3))
    local idx = I({{1, 3}, {2, 2}})
    local y = x:gather(2, idx)
    idx:index_fill_(2, I({1}), 1)
    H.assert_error(function() y:backward(dl.ones(2, 2, F64)) end, "GatherBackward0", "modified by an in-place")
    local v, i = x:sort()
    i:fill_(1)
    H.assert_error(function() v:backward(dl.ones(2, 3, F64)) end, "SortBackward0")
  end)
  it("a tensor modified after an op saved it makes backward fail", function()
    local x = leaf(randn(3))
    local mask = dl.tensor({true, false, true})
    local y = x:masked_select(mask)
    mask:fill_(false)
    H.assert_error(function() y:backward(dl.ones(2, F64)) end, "MaskedSelectBackward0")
  end)
end)

describe("index-family autograd: second derivatives", function()
  -- gradgradcheck: the gradient as a function of the output gradient v,
  -- through the recorded backward pass (create_graph)
  local function gradgrad(make_x, op, vshape, seed)
    dl.manual_seed(seed)
    local x = leaf(make_x())
    local v = leaf(dl.randn(vshape, F64))
    local function g_of(vv)
      return dl.enable_grad(function()
        return (A.grad(op(x), x, vv, {create_graph = true}))
      end)
    end
    assert.is_true(A.gradcheck(g_of, {v}))
    local g = g_of(v)
    assert.is_not_nil(g.grad_fn)
  end
  it("index_select (backward is index_add)", function()
    gradgrad(function() return randn(4, 3) end, function(x) return x:index_select(1, I({2, 4, 2})) end, {3, 3}, 1)
  end)
  it("gather (backward is scatter_add)", function()
    gradgrad(function() return randn(3, 4) end, function(x) return x:gather(2, I({{1, 1}, {4, 2}, {3, 3}})) end,
      {3, 2}, 2)
  end)
  it("scatter_add and index_add (backward is gather / index_select)", function()
    gradgrad(function() return randn(2, 3) end,
      function(x) return dl.ones(3, 3, F64):scatter_add(1, I({{1, 3, 3}}), x) end, {3, 3}, 3)
    gradgrad(function() return randn(3, 2) end,
      function(x) return dl.zeros(4, 2, F64):index_add(1, I({4, 1, 4}), x, 1.5) end, {4, 2}, 4)
  end)
  it("scatter (backward is scatter with 0 and gather)", function()
    gradgrad(function() return randn(2, 4) end,
      function(x) return dl.zeros(3, 3, F64):scatter(1, I({{3, 1, 2}}), x) end, {3, 3}, 5)
  end)
  it("cat, stack, sort, topk, masked_select, flip and roll", function()
    gradgrad(function() return randn(2, 3) end, function(x) return dl.cat({x, x:t():t()}, 2) end, {2, 6}, 6)
    gradgrad(function() return randn(2, 3) end, function(x) return dl.stack({x, x}) end, {2, 2, 3}, 7)
    gradgrad(function() return randn(3, 4) end, function(x) return (x:sort(2, true)) end, {3, 4}, 8)
    gradgrad(function() return randn(3, 4) end, function(x) return (x:topk(2, 1)) end, {2, 4}, 9)
    gradgrad(function() return randn(2, 3) end,
      function(x) return x:masked_select(dl.tensor({true, false, true})) end, {4}, 10)
    gradgrad(function() return randn(2, 3) end, function(x) return x:flip(2) end, {2, 3}, 11)
    gradgrad(function() return randn(2, 3) end, function(x) return x:roll(-1, 2) end, {2, 3}, 12)
  end)
  it("index_copy and index_fill", function()
    local src = leaf(randn(3, 1))
    gradgrad(function() return randn(3, 4) end, function(x) return x:index_copy(2, I({3}), src) end, {3, 4}, 13)
    gradgrad(function() return randn(3, 4) end, function(x) return x:index_fill(2, I({1, 3}), 2) end, {3, 4}, 14)
  end)
end)

describe("index-family autograd: bad inputs", function()
  it("still raise the plain op's errors with autograd on", function()
    local x = leaf(randn(2, 3))
    H.assert_error(function() x:gather(2, I({{4}, {1}})) end, "gather", "out of range")
    H.assert_error(function() x:index_select(1, dl.tensor({1.0})) end, "index_select", "int64")
    H.assert_error(function() dl.cat({x, randn(2, 2)}) end, "cat", "[2,3]", "[2,2]")
    H.assert_error(function() dl.stack({x, randn(3, 2)}) end, "stack", "[2,3]", "[3,2]")
    H.assert_error(function() x:scatter(1, I({{1, 2}}), dl.ones(1, 2)) end, "scatter", "dtype")
    H.assert_error(function() x:index_add(1, I({1}), randn(2, 3)) end, "index_add", "[2,3]")
    H.assert_error(function() x:masked_select(dl.tensor({1, 0, 1})) end, "masked_select", "bool")
    H.assert_error(function() x:topk(4) end, "topk", "out of range")
    H.assert_error(function() x:roll({1, 2}, 1) end, "roll")
    H.assert_error(function() x:flip({1, 1}) end, "flip", "more than once")
    H.assert_error(function() dl.scatter(x, 1, I({{1, 2}}), "a") end, "bad argument #4", "tensor or number")
    H.assert_error(function() x:index_fill(1, I({1}), {}) end, "bad argument #3", "number")
    assert.is_nil(x.grad)
  end)
end)
