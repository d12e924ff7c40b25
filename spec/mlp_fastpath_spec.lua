-- The fast paths of an MLP training step: relu's first-order backward as
-- one fused pass (the recorded form kept for create_graph), and the column
-- sums of a bias gradient, each against its plain definition.
local dl = require "dlua"
local H = require "spec.helper"

describe("relu backward", function()
  dl.manual_seed(3)

  it("passes the gradient where the output is positive and 0 elsewhere", function()
    local x = dl.randn(64, 48):requires_grad_()
    local g = dl.randn(64, 48)
    x:relu():backward(g)
    local want = dl.where(x:detach():gt(0), g, dl.zeros(64, 48))
    assert.is_true(x.grad:equal(want))
  end)

  it("stops an infinite or NaN gradient at a dead unit, as PyTorch does", function()
    local x = dl.tensor({-1.0, 2.0, -3.0, 4.0}):requires_grad_()
    local g = dl.tensor({math.huge, 1, 0 / 0, -math.huge})
    x:relu():backward(g)
    local got = x.grad:totable()
    assert.equal(0, got[1])
    assert.equal(1, got[2])
    assert.equal(0, got[3])
    assert.equal(-math.huge, got[4])
  end)

  it("gives 0 at x == 0 and keeps float64", function()
    local x = dl.tensor({0, 1e-300, -0.0}, {dtype = "float64"}):requires_grad_()
    x:relu():sum():backward()
    assert.equal("float64", x.grad.dtype)
    assert.same({0, 1, 0}, x.grad:totable())
  end)

  it("reads a non-contiguous gradient", function()
    local x = dl.randn(8, 6):requires_grad_()
    local g = dl.randn(6, 8):t()
    x:relu():backward(g)
    local want = dl.where(x:detach():gt(0), g:contiguous(), dl.zeros(8, 6))
    assert.is_true(x.grad:equal(want))
  end)

  it("records under create_graph, so a second derivative flows through it", function()
    local x = dl.tensor({-1.5, 0.5, 2.0}, {dtype = "float64"}):requires_grad_()
    local y = (x:relu() * x:relu() * x):sum() -- x^3 where x > 0
    local gx = dl.autograd.grad(y, x, nil, {create_graph = true})
    H.assert_close(gx, dl.tensor({0, 3 * 0.25, 3 * 4.0}, {dtype = "float64"}), 1e-12)
    local ggx = dl.autograd.grad(gx:sum(), x)
    H.assert_close(ggx, dl.tensor({0, 6 * 0.5, 6 * 2.0}, {dtype = "float64"}), 1e-12)
  end)

  it("gives the jvp of relu by the same rule", function()
    local x = dl.tensor({-1.0, 2.0, 0.0, 3.0})
    local v = dl.tensor({5.0, 6.0, 7.0, 8.0})
    local _, t = dl.autograd.jvp(function(a) return a:relu() end, {x}, {v})
    if type(t) == "table" then t = t[1] end
    assert.same({0, 6, 0, 8}, t:totable())
  end)
end)

describe("bias gradient column sums", function()
  dl.manual_seed(4)
  for _, shape in ipairs({{64, 64}, {64, 40}, {7, 100}, {1, 33}, {300, 1}}) do
    local R, C = shape[1], shape[2]
    it(string.format("sum a float32 [%d, %d] over dim 1 as float64 does", R, C), function()
      local g = dl.randn(R, C)
      local want = g:double():sum(1)
      H.assert_close(g:sum(1):double(), want, 1e-5)
      H.assert_close(g:mean(1):double(), want / R, 1e-6)
    end)
  end

  it("sum exactly in double (float32 ones)", function()
    local g = dl.ones(100000, 40)
    assert.same(dl.full({40}, 100000):totable(), g:sum(1):totable())
  end)

  it("sum a strided view over its rows", function()
    local big = dl.randn(64, 90)
    local g = big:narrow(2, 5, 64) -- rows 90 apart
    H.assert_close(g:sum(1):double(), g:double():sum(1), 1e-5)
  end)

  it("give a Linear layer's bias gradient as the column sums of the output gradient", function()
    local lin = dl.nn.Linear(8, 40)
    local g = dl.randn(64, 40)
    lin(dl.randn(64, 8)):backward(g)
    H.assert_close(lin.bias.grad:double(), g:double():sum(1), 1e-5)
  end)
end)
