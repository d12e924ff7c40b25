-- float32 products past oneDNN's cut-off (m n k >= 2^20, src/cpu/cpu_linalg.c;
-- OpenBLAS below it, and for these too where dlua is built without
-- oneDNN): every layout of the operands, ragged sizes, narrowed views,
-- alpha and beta through addmm and out=, every kind of row bias, a Linear
-- layer's forward and backward, at one thread and two, each against the
-- same product in float64.
-- Row-major A @ B^T goes to oneDNN from 64^3 up (where oneDNN is built and
-- the small kernel declines the shape: on an AVX2-only CPU at one thread
-- it takes some of these): the shapes below the cut-off, attention's
-- batched products among them, in every layout too.
local dl = require "dlua"
local H = require "spec.helper"

local ref = H.matmul_ref

local SHAPES = { -- M, K, N of [M, K] @ [K, N]; all past the cut-off
  {128, 784, 256}, {256, 128, 784}, {130, 150, 70}, {1, 1100, 1000}, {1100, 1, 1000}, {100, 100, 105},
}

-- below the cut-off, above 64^3: [M, K] @ [K, N]^T goes to oneDNN, the
-- other layouts to OpenBLAS
local NT_SHAPES = {{128, 32, 128}, {70, 70, 70}, {1000, 64, 10}, {8, 100, 1000}, {65, 64, 64}}

describe("float32 products past oneDNN's cut-off, and A @ B^T from 64^3", function()
  local prev
  setup(function() prev = dl.get_num_threads() end)
  teardown(function() dl.set_num_threads(prev) end)
  dl.manual_seed(21)
  for _, threads in ipairs({1, 2}) do
    for _, shapes in ipairs({SHAPES, NT_SHAPES}) do
      H.matmul_layout_cases(it, shapes, string.format(", %d thread(s)", threads),
        function() dl.set_num_threads(threads) end)
    end
    it(string.format("match float64 for attention's batched (q @ k^T) @ v and its gradients, %d thread(s)",
      threads), function()
        dl.set_num_threads(threads)
        -- forward q @ k^T and backward dO @ v^T are [128, 32] @ [32, 128]^T
        local q = dl.randn(4, 2, 128, 32):requires_grad_()
        local k = dl.randn(4, 2, 128, 32):requires_grad_()
        local v = dl.randn(4, 2, 128, 32):requires_grad_()
        local g = dl.randn(4, 2, 128, 32)
        local s = dl.matmul(q, k:transpose(-2, -1))
        local o = dl.matmul(s, v)
        o:backward(g)
        local qd, kd, vd = q:detach():double():requires_grad_(), k:detach():double():requires_grad_(),
          v:detach():double():requires_grad_()
        local sd = dl.matmul(qd, kd:transpose(-2, -1))
        local od = dl.matmul(sd, vd)
        od:backward(g:double())
        H.assert_close(s:double(), sd, 1e-3)
        H.assert_close(o:double(), od, 1e-2)
        H.assert_close(q.grad:double(), qd.grad, 1e-2)
        H.assert_close(k.grad:double(), kd.grad, 1e-2)
        H.assert_close(v.grad:double(), vd.grad, 1e-2)
      end)
  end

  it("read operands with leading dims wider than the matrix (narrowed views)", function()
    local a = dl.randn(128, 300):narrow(2, 7, 256) -- lda 300
    local b = dl.randn(200, 256):narrow(1, 3, 160):t() -- [256, 160], column-major, ld 256
    H.assert_close(dl.mm(a, b):double(), ref(a, b), 1e-3)
  end)

  it("apply alpha and beta, and do not read the output when beta = 0", function()
    local a, b, input = dl.randn(128, 160), dl.randn(160, 96), dl.randn(128, 96)
    H.assert_close(dl.addmm(input, a, b, {beta = 2, alpha = 0.5}):double(), ref(a, b) * 0.5 + input:double() * 2,
      1e-3)
    local c = dl.addmm(dl.full({128, 96}, 0 / 0), a, b, {beta = 0})
    assert.is_false(c:isnan():any():item())
    H.assert_close(c:double(), ref(a, b), 1e-3)
    -- the product written over NaN (out=): the engine is called with beta = 0
    local out = dl.full({128, 96}, 0 / 0)
    dl.mm(a, b, {out = out})
    assert.is_false(out:isnan():any():item())
    H.assert_close(out:double(), ref(a, b), 1e-3)
  end)

  -- the bias is added after the product, split by rows across threads
  -- when the output is large: every kind of row bias, at one thread and two
  for _, threads in ipairs({1, 2}) do
    it(string.format("add a bias broadcast along the rows after the product, %d thread(s)", threads), function()
      local prev = dl.get_num_threads()
      dl.set_num_threads(threads)
      local a, w = dl.randn(512, 64), dl.randn(600, 64)
      local biases = {
        contiguous = dl.randn(600),
        strided = dl.randn(600, 2):select(2, 2), -- stride 2
        one = dl.randn(1), -- broadcast to every column
        row = dl.randn(1, 600),
      }
      for _, bias in pairs(biases) do
        for _, ab in ipairs({{1, 1}, {0.5, 3}}) do
          local y = dl.addmm(bias, a, w:t(), {alpha = ab[1], beta = ab[2]})
          local yd = dl.addmm(bias:double(), a:double(), w:double():t(), {alpha = ab[1], beta = ab[2]})
          H.assert_close(y:double(), yd, 1e-3)
        end
      end
      local ai, wi, bi = dl.randint(-5, 5, {300, 20}), dl.randint(-5, 5, {200, 20}), dl.randint(-9, 9, {200})
      local yi = dl.addmm(bi, ai, wi:t(), {alpha = 2, beta = 3})
      assert.same((dl.mm(ai:double(), wi:t():double()) * 2 + bi:double() * 3):long():totable(), yi:totable())
      dl.set_num_threads(prev)
    end)
  end

  it("give a Linear layer's output and gradients as float64 does", function()
    local lin = dl.nn.Linear(784, 256)
    local x, g = dl.randn(128, 784), dl.randn(128, 256)
    local y = lin(x)
    y:backward(g)
    local w, b = lin.weight:detach():double():requires_grad_(), lin.bias:detach():double():requires_grad_()
    local xd = x:double()
    local yd = dl.addmm(b, xd, w:t())
    yd:backward(g:double())
    H.assert_close(y:double(), yd, 1e-3)
    H.assert_close(lin.weight.grad:double(), w.grad, 1e-3)
    H.assert_close(lin.bias.grad:double(), b.grad, 1e-3)
    assert.is_true(lin.weight.grad:is_contiguous())
    -- a second backward adds to the gradient the first one left
    lin(x):backward(g)
    H.assert_close(lin.weight.grad:double(), w.grad * 2, 2e-3)
  end)
end)
