-- The habits PyTorch users bring, where Lua allows them: boolean-mask and
-- index-tensor indexing, ds[i], iterating a DataLoader directly, positional
-- learning rates / batch sizes / patience, printable sizes,
-- Function:apply, and unknown options that list the valid ones.
local dl = require "dlua"
local H = require "spec.helper"

describe("t[mask] and t[idx]", function()
  local x = dl.tensor({{1, -2, 3}, {-4, 5, -6}})

  it("reads the elements a bool mask of t's shape selects, in order", function()
    assert.same({1, 3, 5}, H.flat(x[x:gt(0)]))
    assert.same({0}, {x[x:gt(10)]:numel()})
  end)

  it("reads the sub-tensors a mask of the leading dims selects", function()
    local r = x[dl.tensor({false, true})]
    assert.same({1, 3}, r:size())
    assert.same({-4, 5, -6}, H.flat(r))
  end)

  it("reads rows by int64 indices (1-based, repeats, any shape of index)", function()
    local r = x[dl.tensor({2, 1, 2})]
    assert.same({3, 3}, r:size())
    assert.same({-4, 5, -6, 1, -2, 3, -4, 5, -6}, H.flat(r))
    assert.same({2, 1, 3}, x[dl.tensor({{2}, {1}})]:size())
  end)

  it("writes a number, a one-element tensor or one value a selected element", function()
    local y = x:clone()
    y[y:lt(0)] = 0
    assert.same({1, 0, 3, 0, 5, 0}, H.flat(y))
    y = x:clone()
    y[y:lt(0)] = dl.tensor({10, 20, 30})
    assert.same({1, 10, 3, 20, 5, 30}, H.flat(y))
    y = x:clone()
    y[y:lt(0)] = dl.tensor(7)
    assert.same({1, 7, 3, 7, 5, 7}, H.flat(y))
    y = x:clone()
    y[dl.tensor({false, true})] = 9
    assert.same({1, -2, 3, 9, 9, 9}, H.flat(y))
    -- through a view, with values of another dtype (they take t's, as in PyTorch)
    y = x:clone()
    local yt = y:t()
    yt[yt:gt(0)] = dl.tensor({7.0, 8.0, 9.0})
    assert.same({7, -2, 9, -4, 8, -6}, H.flat(y))
  end)

  it("writes rows by int64 indices", function()
    local y = x:clone()
    y[dl.tensor({2})] = dl.tensor({{9, 8, 7}})
    assert.same({1, -2, 3, 9, 8, 7}, H.flat(y))
    y[dl.tensor({1})] = 0
    assert.same({0, 0, 0, 9, 8, 7}, H.flat(y))
  end)

  it("is differentiable: reads pass the gradient to the selected elements, writes to the values", function()
    local w = dl.tensor({{1, -2}, {3, -4}}, {dtype = "float64", requires_grad = true})
    w[w:gt(0)]:sum():backward()
    assert.same({1, 0, 1, 0}, H.flat(w.grad))
    local v = dl.tensor({2, 3}, {dtype = "float64", requires_grad = true})
    local z = dl.zeros(2, 2, {dtype = "float64"}) + 0 * v:sum()
    z[dl.tensor({{true, false}, {false, true}})] = v * 2
    z:sum():backward()
    assert.same({2, 2}, H.flat(v.grad))
    local r = dl.tensor({{1, 2}, {3, 4}}, {dtype = "float64", requires_grad = true})
    r[dl.tensor({2, 2})]:sum():backward()
    assert.same({0, 0, 2, 2}, H.flat(r.grad))
  end)

  -- spec/fixtures/indexing_reference.py: values and gradients from PyTorch
  local ref = require "spec.fixtures.indexing_reference"
  local function tensor_of(c, dtype) return dl.tensor(c.values, {dtype = dtype or "float64"}):view(c.shape) end
  local function key_of(k)
    if k.mask then return tensor_of(k.mask):bool() end
    return tensor_of(k.idx, "int64")
  end

  it("reads and writes as PyTorch does, gradients included", function()
    for name, c in pairs(ref) do
      local x = tensor_of(c.x):requires_grad_()
      local key = key_of(c.key)
      local out, v
      if c.v == nil then
        out = x[key]
      else
        v = type(c.v) == "number" and c.v or tensor_of(c.v):requires_grad_()
        out = x * 1
        out[key] = v
      end
      assert.same(c.out.shape, out:size(), name)
      H.assert_pytorch(out, c.out.values, name .. " out")
      local gout = tensor_of({shape = c.out.shape, values = c.gout});
      (out * gout):sum():backward()
      H.assert_pytorch(x.grad, c.grad, name .. " grad")
      if c.vgrad then H.assert_pytorch(v.grad, c.vgrad, name .. " v.grad") end
    end
  end)

  it("has gradients and tangents that check (gradcheck, jvp, double backward)", function()
    local m = dl.tensor({{true, false, true}, {false, true, true}})
    local rows = dl.tensor({true, false})
    local idx = dl.tensor({{2, 1}, {2, 2}})
    local function inputs() return {dl.randn(2, 3, {dtype = "float64"}), dl.randn(4, {dtype = "float64"})} end
    H.check_derivatives(function(a) return a[m] end, inputs)
    H.check_derivatives(function(a) return a[rows] end, inputs)
    H.check_derivatives(function(a) return a[idx] end, inputs)
    H.check_derivatives(function(a, b) local y = a * 1; y[m] = b; return y end, inputs)
    H.check_derivatives(function(a, b) local y = a * 1; y[dl.tensor({2})] = b:narrow(1, 1, 3):view(1, 3); return y end,
      inputs)
  end)

  it("names the problem when the key or value does not fit", function()
    H.assert_error(function() return x[dl.tensor({1.5})] end, "a tensor index must be a bool mask or int64")
    H.assert_error(function() return x[dl.tensor({true, false, true})] end, "a mask of shape [3]", "[2,3]")
    H.assert_error(function() x[x:gt(0)] = dl.ones(2) end, "the mask selects 3 elements, v holds 2")
    H.assert_error(function() x[dl.tensor({5})] = 1 end, "out of range")
    H.assert_error(function() x[x:gt(0)] = "a" end, "tensor or number expected")
    H.assert_error(function() return dl.tensor(3)[dl.tensor({true})] end, "cannot index a 0-d tensor")
  end)
end)

describe("sizes", function()
  it("print as {3, 4}, compare by value, and stay lists", function()
    local s = dl.zeros(3, 4):size()
    assert.equal("{3, 4}", tostring(s))
    assert.equal("{3, 4}", tostring(dl.zeros(3, 4).shape))
    assert.equal("{}", tostring(dl.tensor(1):size()))
    assert.is_true(s == dl.ones(3, 4):size())
    assert.is_true(s == {3, 4})
    assert.is_false(s == dl.ones(4, 3):size())
    assert.equal(2, #s)
    assert.equal(4, s[2])
  end)
end)

describe("datasets and loaders", function()
  local ds = dl.data.TensorDataset(dl.arange(1, 6):double(), dl.arange(11, 16))

  it("ds[i] is sample i: its values as a list, or its one value", function()
    local s = ds[2]
    assert.equal(2, s[1]:item())
    assert.equal(12, s[2]:item())
    assert.equal(3, dl.data.TensorDataset(dl.arange(1, 6))[3]:item())
    assert.is_function(ds.get) -- methods are still found
  end)

  it("iterates with `for xb, yb in loader` and loader() as with loader:iter()", function()
    local loader = dl.data.DataLoader(ds, 2)
    for _ = 1, 2 do -- a second pass starts afresh
      local seen = {}
      for xb, yb in loader do
        for i = 1, xb:numel() do seen[#seen + 1] = xb[i]:item() + yb[i]:item() end
      end
      assert.same({12, 14, 16, 18, 20}, seen)
    end
    local n = 0
    for xb in loader() do n = n + xb:numel() end
    assert.equal(5, n)
    -- loops over one loader, nested, each make their own pass
    local pairs_seen = 0
    for _ in loader do
      for _ in loader do pairs_seen = pairs_seen + 1 end
    end
    assert.equal(9, pairs_seen) -- 3 batches x 3 batches
  end)
end)

describe("positional forms", function()
  it("take a learning rate, a batch size and a patience where PyTorch users pass them", function()
    local p = {dl.nn.Parameter(dl.ones(2))}
    assert.equal(0.01, dl.optim.Adam(p, 0.01).param_groups[1].lr)
    assert.equal(64, dl.data.DataLoader(dl.data.TensorDataset(dl.ones(4)), 64).batch_size)
    assert.equal(3, dl.utils.EarlyStopping(3).patience)
  end)
end)

describe("custom Functions", function()
  it("run through F(x), F.apply(x) and F:apply(x) alike", function()
    local Sq = dl.autograd.Function{
      forward = function(ctx, x) ctx:save_for_backward(x); return x * x end,
      backward = function(ctx, g) local x = table.unpack(ctx.saved_tensors); return g * 2 * x end,
    }
    for _, call in ipairs({function(x) return Sq(x) end, function(x) return Sq.apply(x) end,
                           function(x) return Sq:apply(x) end}) do
      local x = dl.tensor({3.0}, {requires_grad = true})
      local y = call(x)
      y:backward()
      assert.equal(9, y:item())
      assert.equal(6, x.grad:item())
    end
  end)
end)

describe("small fixes met while writing the reference", function()
  it("permute takes its dims as a table too, and an option-less function says so", function()
    assert.same({3, 2}, dl.ones(2, 3):permute({2, 1}):size())
    assert.same({3, 2}, dl.ones(2, 3):permute(2, 1):size())
    H.assert_error(function() dl.mul(dl.ones(1), dl.ones(1), {alpha = 1}) end, "unknown option 'alpha' (it takes no options)")
  end)

  it("an in-place random fill of a tensor in a graph passes no gradient to what it replaced", function()
    for _, f in ipairs({"normal_", "uniform_", "bernoulli_", "exponential_"}) do
      local x = dl.ones(2, {requires_grad = true})
      local y = x * 3
      y[f](y)
      y:sum():backward()
      -- as fill_: the history is cut (it was 3 per element before, a gradient through replaced values)
      assert.is_true(x.grad == nil or x.grad:abs():sum():item() == 0, f)
    end
  end)
end)

describe("dl.autograd.gradcheck", function()
  it("checks its options and returns false with raise_exception = false, as PyTorch's", function()
    local x = dl.randn(3, {dtype = "float64", requires_grad = true})
    local wrong = dl.autograd.Function{
      forward = function(_, t) return t * t end,
      backward = function(_, g) return g end, -- should be 2 t g
    }
    H.assert_error(function() dl.autograd.gradcheck(function(t) return wrong(t) end, {x}) end, "mismatch for input 1")
    local ok, msg = dl.autograd.gradcheck(function(t) return wrong(t) end, {x}, {raise_exception = false})
    assert.is_false(ok)
    assert.matches("mismatch for input 1", msg)
    assert.is_true(dl.autograd.gradcheck(function(t) return t * t end, {x}, {raise_exception = false}))
    H.assert_error(function() dl.autograd.gradcheck(function(t) return t end, {x}, {tol = 1}) end,
      "unknown option 'tol' (valid: atol, eps, raise_exception, rtol)")
    H.assert_error(function() dl.autograd.gradcheck(function(t) return t end, {x}, 1e-6) end,
      "options table expected")
  end)
end)

describe("unknown options", function()
  it("list the valid ones, in C and in Lua", function()
    H.assert_error(function() dl.zeros(2, {dtyp = "float32"}) end,
      "dl.zeros: unknown option 'dtyp' (valid: device, dtype, requires_grad)")
    H.assert_error(function() dl.datasets.fashion_mnist({train = true}) end,
      "unknown option 'train' (valid: flatten, root, split)")
    H.assert_error(function() dl.optim.SGD({dl.nn.Parameter(dl.ones(1))}, {lr = 1, mom = 0.9}) end,
      "unknown option 'mom' (valid: dampening, lr, maximize, momentum, nesterov, weight_decay)")
    H.assert_error(function() dl.data.DataLoader(dl.data.TensorDataset(dl.ones(2)), {batchsize = 2}) end,
      "unknown option 'batchsize' (valid: batch_size,")
    H.assert_error(function() dl.randperm(3, {dtype = "int64", devic = "cpu"}) end, "(valid: dtype, device")
  end)
end)
