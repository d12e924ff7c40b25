-- Autograd of the matrix products: gradcheck, forward mode (jvp) against
-- the reverse-mode Jacobian and double backward over every entry of
-- spec/gradcheck/linalg.lua; then hand-computed gradients, node names,
-- Hessian-vector products, layouts and errors.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd
local ops = require "spec.gradcheck.linalg"

local function f64(t) return dl.tensor(t, {dtype = "float64", requires_grad = true}) end
local function r(...) return dl.randn({...}, {dtype = "float64"}) end

-- every entry and variant of the table, in a stable order
local function cases()
  local names = {}
  for name in pairs(ops) do names[#names + 1] = name end
  table.sort(names)
  local list = {}
  for _, name in ipairs(names) do
    local e = ops[name]
    list[#list + 1] = {label = name, fn = e.fn, inputs = e.inputs}
    for _, v in ipairs(e.variants or {}) do
      list[#list + 1] = {label = name .. ": " .. v.name, fn = v.fn, inputs = v.inputs}
    end
  end
  return list
end

local function leaves(ins)
  for _, x in ipairs(ins) do x:requires_grad_(true) end
  return ins
end

describe("autograd of matrix products: gradcheck", function()
  for _, c in ipairs(cases()) do
    it(c.label, function()
      dl.manual_seed(7)
      assert.is_true(A.gradcheck(c.fn, leaves(c.inputs())))
    end)
  end
end)

describe("autograd of matrix products: jvp equals J·v", function()
  for _, c in ipairs(cases()) do
    it(c.label, function()
      dl.manual_seed(8)
      local ins = c.inputs()
      local vs = {}
      for i, x in ipairs(ins) do vs[i] = dl.randn(x:size(), {dtype = "float64"}) end
      local out, tout = A.jvp(c.fn, ins, vs)
      H.assert_close(out, dl.no_grad(c.fn, table.unpack(ins)), 0)
      assert.same(out:size(), tout:size())
      H.assert_close(H.flat(tout), H.reverse_jv(c.fn, ins, vs), 1e-10)
    end)
  end
end)

describe("autograd of matrix products: double backward (create_graph)", function()
  for _, c in ipairs(cases()) do
    it(c.label, function()
      dl.manual_seed(9)
      local ins = leaves(c.inputs())
      local w = dl.randn({dl.no_grad(c.fn, table.unpack(ins)):numel()}, {dtype = "float64"})
      assert.is_true(A.gradcheck(H.grad_of(c.fn, w), ins))
    end)
  end
end)

describe("dl.matmul backward", function()
  it("gives the hand-computed gradients of sum(a @ b)", function()
    local a, b = f64({{1, 2}, {3, 4}}), f64({{5, 6}, {7, 8}})
    dl.matmul(a, b):sum():backward()
    -- da = ones @ b^T, db = a^T @ ones
    assert.same({{11, 15}, {11, 15}}, a.grad:totable())
    assert.same({{4, 4}, {6, 6}}, b.grad:totable())
  end)
  it("gives the hand-computed gradients of a dot product and of mv", function()
    local a, b = f64({1, 2, 3}), f64({4, 5, 6})
    local d = a:matmul(b)
    assert.same({}, d:size())
    d:backward()
    assert.same({4, 5, 6}, a.grad:totable())
    assert.same({1, 2, 3}, b.grad:totable())
    local m, v = f64({{1, 2}, {3, 4}, {5, 6}}), f64({1, -1})
    m:mv(v):backward(dl.tensor({1, 2, 3}, {dtype = "float64"}))
    assert.same({{1, -1}, {2, -2}, {3, -3}}, m.grad:totable()) -- g v^T
    assert.same({22, 28}, v.grad:totable()) -- m^T g
  end)
  it("sums the gradient over broadcast batch dims", function()
    local a, b = f64({{1, 2}}), r(3, 2, 4):requires_grad_(true) -- [1,2] @ [3,2,4]
    dl.matmul(a, b):sum():backward()
    assert.same({1, 2}, a.grad:size())
    -- da = sum over batch and columns of b
    local bs = H.flat(b)
    local want = {0, 0}
    for i = 1, #bs do
      local row = ((i - 1) // 4) % 2 + 1
      want[row] = want[row] + bs[i]
    end
    H.assert_close(a.grad, {want}, 1e-12)
    H.assert_close(b.grad, dl.ones(3, 2, 4, {dtype = "float64"}) * dl.tensor({{1}, {2}}, {dtype = "float64"}), 0)
  end)
  it("names its nodes as PyTorch does", function()
    local x2, y2 = r(2, 2):requires_grad_(true), r(2, 2):requires_grad_(true)
    local v = r(2):requires_grad_(true)
    assert.equal("MmBackward0", dl.matmul(x2, y2).grad_fn:name())
    assert.equal("DotBackward0", dl.matmul(v, v).grad_fn:name())
    assert.equal("MvBackward0", dl.matmul(x2, v).grad_fn:name())
    assert.equal("MatmulBackward0", dl.matmul(v, x2).grad_fn:name())
    assert.equal("MatmulBackward0", dl.matmul(r(3, 2, 2), y2).grad_fn:name())
    assert.equal("MmBackward0", x2:mm(y2).grad_fn:name())
    assert.equal("BmmBackward0", dl.bmm(x2:unsqueeze(2), y2:unsqueeze(3)).grad_fn:name())
    assert.equal("MvBackward0", x2:mv(v).grad_fn:name())
    assert.equal("DotBackward0", v:dot(v).grad_fn:name())
    assert.equal("OuterBackward0", v:outer(v).grad_fn:name())
    assert.equal("AddmmBackward0", dl.addmm(v, x2, y2).grad_fn:name())
  end)
  it("records nothing in no_grad mode or when no operand requires grad", function()
    local a = r(2, 3):requires_grad_(true)
    local y = dl.no_grad(function() return a:matmul(r(3, 2)) end)
    assert.is_nil(y.grad_fn)
    assert.is_false(y.requires_grad)
    local z = r(2, 3):matmul(r(3, 2))
    assert.is_false(z.requires_grad)
    local i = dl.tensor({{1, 2}}):matmul(dl.tensor({{3}, {4}}))
    assert.is_false(i.requires_grad)
    assert.same({{11}}, i:totable())
  end)
  it("gives only the operand that requires grad a gradient", function()
    local a, b = r(2, 3):requires_grad_(true), r(3, 4)
    a:matmul(b):sum():backward()
    assert.same({2, 3}, a.grad:size())
    assert.is_nil(b.grad)
  end)
end)

describe("dl.addmm backward", function()
  it("scales the gradients by beta and alpha and sums the bias over rows", function()
    local bias = f64({1, 2})
    local m1, m2 = f64({{1, 2}, {3, 4}, {5, 6}}), f64({{1, 0}, {0, 1}})
    dl.addmm(bias, m1, m2, {beta = 3, alpha = 0.5}):sum():backward()
    assert.same({9, 9}, bias.grad:totable()) -- beta * 3 rows
    assert.same({{0.5, 0.5}, {0.5, 0.5}, {0.5, 0.5}}, m1.grad:totable())
    assert.same({{4.5, 4.5}, {6, 6}}, m2.grad:totable()) -- alpha * m1^T @ ones
  end)
  it("gives the input zeros when beta = 0", function()
    local c = f64({{0 / 0, 1}, {1, 1}})
    local m = f64({{1, 2}, {3, 4}})
    local y = dl.addmm(c, m, m, {beta = 0})
    assert.same({{7, 10}, {15, 22}}, y:detach():totable())
    y:sum():backward()
    assert.same({{0, 0}, {0, 0}}, c.grad:totable())
  end)
end)

describe("matrix products keep a Linear layer's layouts", function()
  it("gives W of x @ W:t() a contiguous gradient equal to g^T @ x", function()
    dl.manual_seed(3)
    local x, W = r(64, 8):requires_grad_(true), r(64, 8):requires_grad_(true)
    local g = r(64, 64)
    x:matmul(W:t()):backward(g)
    assert.is_true(W.grad:is_contiguous())
    H.assert_close(W.grad, dl.matmul(g:t(), x:detach()), 1e-10)
    H.assert_close(x.grad, dl.matmul(g, W:detach()), 1e-10)
    local bias = r(64):requires_grad_(true)
    local W2 = W:detach():clone():requires_grad_(true)
    dl.addmm(bias, x:detach(), W2:t()):backward(g)
    assert.is_true(W2.grad:is_contiguous())
    H.assert_close(W2.grad, dl.matmul(g:t(), x:detach()), 1e-10)
    H.assert_close(bias.grad, g:sum(1), 1e-10)
  end)
  it("folds the batch of a 3-D input against a 2-D weight", function()
    dl.manual_seed(4)
    local x, W = r(4, 5, 3), r(6, 3):requires_grad_(true)
    local g = r(4, 5, 6)
    dl.matmul(x, W:t()):backward(g)
    H.assert_close(W.grad, dl.matmul(g:reshape(20, 6):t(), x:reshape(20, 3)), 1e-10)
  end)
end)

describe("second derivatives of matrix products", function()
  -- H v by reverse over reverse, with <g, v> as a dot product
  local function hvp(f, x, v)
    local xi = x:detach():requires_grad_(true)
    local g = A.grad(f(xi), xi, nil, {create_graph = true})
    local gv = dl.dot(g:reshape(-1), v:reshape(-1))
    return A.grad(gv, xi)
  end

  it("gives the Hessian (A + A^T) of the quadratic form x @ A @ x", function()
    dl.manual_seed(5)
    local Am, x, v = r(4, 4), r(4), r(4)
    local hv = hvp(function(xi) return dl.matmul(dl.matmul(xi, Am), xi) end, x, v)
    local a, vv = Am:totable(), v:totable()
    local want = {}
    for i = 1, 4 do
      want[i] = 0
      for j = 1, 4 do want[i] = want[i] + (a[i][j] + a[j][i]) * vv[j] end
    end
    H.assert_close(hv, want, 1e-10)
  end)

  it("matches finite differences of the gradient for a two-layer product loss", function()
    dl.manual_seed(6)
    local x, W1, W2, V = r(5, 3), r(3, 4), r(4, 2), r(3, 4)
    local function loss(w1)
      local h = dl.matmul(dl.matmul(x, w1), W2):reshape(-1)
      return dl.dot(h, h)
    end
    local hv = hvp(loss, W1, V)
    local eps = 1e-5
    local function grad_at(w)
      local wi = w:detach():requires_grad_(true)
      return A.grad(loss(wi), wi)
    end
    local plus, minus = grad_at(W1 + V * eps), grad_at(W1 - V * eps)
    local fp, fm, num = H.flat(plus), H.flat(minus), {}
    for i = 1, #fp do num[i] = (fp[i] - fm[i]) / (2 * eps) end
    H.assert_close(H.flat(hv), num, 1e-6)
  end)

  local has = {}
  for _, name in ipairs(A.differentiable_ops()) do has[name] = true end
  if has.relu and has.pow and has.mul then
    it("matches finite differences for ((x @ W1):relu() @ W2):pow(2):sum()", function()
      dl.manual_seed(12)
      local x, W1, W2, V = r(6, 3), r(3, 5), r(5, 2), r(3, 5)
      local function loss(w1) return dl.matmul(dl.matmul(x, w1):relu(), W2):pow(2):sum() end
      local _, hv = A.hvp(loss, W1, V)
      local eps = 1e-6
      local function grad_at(w)
        local wi = w:detach():requires_grad_(true)
        return A.grad(loss(wi), wi)
      end
      local fp, fm = H.flat(grad_at(W1 + V * eps)), H.flat(grad_at(W1 - V * eps))
      local num = {}
      for i = 1, #fp do num[i] = (fp[i] - fm[i]) / (2 * eps) end
      H.assert_close(H.flat(hv), num, 1e-5)
    end)
  else
    pending("MLP loss with relu and pow (needs differentiable relu, pow and mul)")
  end
end)

describe("matrix products: autograd errors", function()
  it("refuses the out= form when an operand requires grad", function()
    local a = r(2, 3):requires_grad_(true)
    local b, out = r(3, 2), dl.zeros(2, 2, {dtype = "float64"})
    H.assert_error(function() dl.matmul(a, b, {out = out}) end, "dl.matmul", "out=", "requires grad")
    H.assert_error(function() dl.mm(a, b, {out = out}) end, "dl.mm", "out=")
    -- allowed outside grad mode
    local res = dl.no_grad(dl.matmul, a, b, {out = out})
    assert.is_true(rawequal(res, out))
    H.assert_close(out, dl.matmul(a:detach(), b), 1e-12)
  end)
  it("refuses the out= form for operands carrying a tangent", function()
    local out = dl.zeros(2, 2, {dtype = "float64"})
    H.assert_error(function()
      A.jvp(function(a) return dl.matmul(a, r(3, 2), {out = out}) end, {r(2, 3)}, {r(2, 3)})
    end, "dl.matmul", "out=", "tangent")
  end)
  it("raises at backward, naming the node, when a saved operand was modified in place", function()
    local w = r(3, 2):requires_grad_(true)
    local x = r(4, 3):requires_grad_(true):clone()
    local y = x:matmul(w)
    x:fill_(1)
    H.assert_error(function() y:sum():backward() end, "MmBackward0", "modified by an in-place operation")
    local b = r(2):requires_grad_(true)
    local m = r(4, 3):requires_grad_(true):clone()
    local z = dl.addmm(b, m, w:t():t())
    m:fill_(0)
    H.assert_error(function() z:sum():backward() end, "AddmmBackward0", "in-place")
  end)
  it("refuses an in-place write to a leaf operand that requires grad", function()
    local w = r(3, 2):requires_grad_(true)
    H.assert_error(function() w:fill_(0) end, "fill_", "leaf")
    local y = r(4, 3):matmul(w)
    assert.equal("MmBackward0", y.grad_fn:name())
  end)
  it("keeps the plain ops' shape errors", function()
    local a = r(2, 3):requires_grad_(true)
    H.assert_error(function() dl.matmul(a, r(4, 5)) end, "dl.matmul", "size mismatch, [2,3] @ [4,5]")
    H.assert_error(function() dl.addmm(r(5), a, r(3, 2)) end, "dl.addmm", "cannot be broadcast")
  end)
end)
