-- The float32 small-product path (src/cpu/cpu_gemm_small.c): every layout
-- of the operands (row-major, transposed views), row vectors, ragged
-- edges, beta = 0 / 1 through addmm, and a Linear layer's backward, each
-- against the same product in float64.
local dl = require "dlua"
local H = require "spec.helper"

local ref = H.matmul_ref

local SHAPES = { -- M, K, N of [M, K] @ [K, N]
  {64, 8, 64}, {64, 64, 64}, {64, 64, 1}, {64, 1, 64}, {1, 64, 64}, {64, 64, 8}, {32, 64, 64},
  {7, 5, 3}, {1, 1, 1}, {3, 13, 24}, {17, 40, 16}, {9, 200, 24}, {128, 100, 128}, {6, 3, 8},
}

describe("float32 small products", function()
  dl.manual_seed(5)
  H.matmul_layout_cases(it, SHAPES)

  it("add a broadcast bias (addmm, beta = 1) and scale by alpha", function()
    local bias, a, w = dl.randn(48), dl.randn(40, 24), dl.randn(48, 24)
    local c = dl.addmm(bias, a, w:t(), {beta = 1, alpha = 0.5})
    local want = ref(a, w:t()) * 0.5 + bias:double()
    H.assert_close(c:double(), want, 1e-4)
  end)

  it("scale the input by beta and ignore NaN in it when beta = 0", function()
    local a, b = dl.randn(16, 8), dl.randn(8, 24)
    local input = dl.randn(16, 24)
    H.assert_close(dl.addmm(input, a, b, {beta = 2}):double(), ref(a, b) + input:double() * 2, 1e-4)
    local nan = dl.full({16, 24}, 0 / 0)
    local c = dl.addmm(nan, a, b, {beta = 0})
    assert.is_false(c:isnan():any():item())
    H.assert_close(c:double(), ref(a, b), 1e-4)
  end)

  it("give a Linear layer's gradients as float64 does", function()
    local lin = dl.nn.Linear(8, 64)
    local x = dl.randn(64, 8)
    local g = dl.randn(64, 64)
    lin(x):backward(g)
    local w, b = lin.weight:detach():double(), lin.bias:detach():double()
    local wd, bd = w:clone():requires_grad_(), b:clone():requires_grad_()
    dl.addmm(bd, x:double(), wd:t()):backward(g:double())
    H.assert_close(lin.weight.grad:double(), wd.grad, 1e-4)
    H.assert_close(lin.bias.grad:double(), bd.grad, 1e-4)
  end)

  it("read operands with a leading dim wider than the matrix (narrowed views)", function()
    local big = dl.randn(64, 80)
    local a = big:narrow(2, 3, 64) -- lda 80
    local b = dl.randn(96, 64):narrow(1, 5, 64):t() -- column-major with ld 64
    H.assert_close(dl.mm(a, b):double(), ref(a, b), 1e-3)
  end)
end)

describe("addmm with an input broadcast along the rows (the bias of Linear)", function()
  dl.manual_seed(9)
  local INPUTS = { -- the input's shape for a [M, N] product
    function(_, N) return {N} end,
    function(_, N) return {1, N} end,
    function() return {1} end,
    function() return {} end,
    function(M) return {M, 1} end,
    function(M, N) return {M, N} end,
  }
  for _, dt in ipairs({"float32", "float64", "int64"}) do
    for _, dims in ipairs({{64, 8, 64}, {13, 7, 5}, {1, 64, 64}, {64, 64, 1}}) do
      for n, shape_of in ipairs(INPUTS) do
        local M, K, N = dims[1], dims[2], dims[3]
        it(string.format("equals beta * input + alpha * m1 @ m2 for %s, [%d,%d] @ [%d,%d], input #%d", dt, M, K, K, N,
          n), function()
          local function gen(...)
            if dt == "int64" then return dl.randint(-5, 6, {...}) end
            return dl.randn({...}, {dtype = dt})
          end
          local a, w = gen(M, K), gen(N, K)
          local shape = shape_of(M, N)
          local input = #shape == 0 and gen(1):reshape({}) or gen(table.unpack(shape))
          local alpha, beta = 2, 3
          local c = dl.addmm(input, a, w:t(), {alpha = alpha, beta = beta})
          assert.equal(dt, c.dtype)
          assert.same({M, N}, c:size())
          local want = dl.mm(a:double(), w:t():double()) * alpha + input:double() * beta
          if dt == "int64" then
            assert.is_true(c:double():equal(want))
          else
            H.assert_close(c:double(), want, dt == "float32" and 1e-4 * K or 1e-10)
          end
        end)
      end
    end
  end

  it("reads a strided bias in place", function()
    local bias = dl.randn(64, 2):select(2, 2) -- stride 2
    local a, w = dl.randn(16, 8), dl.randn(64, 8)
    H.assert_close(dl.addmm(bias, a, w:t()):double(), dl.mm(a:double(), w:t():double()) + bias:double(), 1e-4)
  end)
end)
