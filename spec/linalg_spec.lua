-- Matrix products: matmul, mm, bmm, mv, dot, outer, addmm.
local dl = require "dlua"
local H = require "spec.helper"

-- plain-Lua float64 reference of a 2-D product of tables
local function ref_mm(A, B)
  local C = {}
  for i = 1, #A do
    C[i] = {}
    for j = 1, #B[1] do
      local s = 0
      for p = 1, #B do s = s + A[i][p] * B[p][j] end
      C[i][j] = s
    end
  end
  return C
end

-- reference of a batched product of 3-D tables (equal batch)
local function ref_bmm(A, B)
  local C = {}
  for b = 1, #A do C[b] = ref_mm(A[b], B[b]) end
  return C
end

local function rand(dtype, rows, cols)
  return dl.rand(rows, cols, {dtype = dtype})
end

describe("dl.matmul 2-D @ 2-D", function()
  dl.manual_seed(11)
  for _, dt in ipairs({"float32", "float64"}) do
    it("matches the float64 reference for " .. dt, function()
      local a, b = rand(dt, 5, 7), rand(dt, 7, 3)
      local c = dl.matmul(a, b)
      assert.equal(dt, c.dtype)
      assert.same({5, 3}, c:size())
      H.assert_close(c, ref_mm(a:totable(), b:totable()), dt == "float32" and 1e-5 or 1e-12)
    end)
  end
  it("computes int64 products exactly", function()
    local a = dl.tensor({{1, 2, 3}, {4, 5, 6}})
    local b = dl.tensor({{7, 8}, {9, 10}, {11, 12}})
    local c = a:matmul(b)
    assert.equal("int64", c.dtype)
    assert.same({{58, 64}, {139, 154}}, c:totable())
    local big = dl.tensor({{2 ^ 40 | 0}}) -- exact past 2^53 in the products' sums
    assert.same({{(2 ^ 40 | 0) * 3}}, big:matmul(dl.tensor({{3}})):totable())
  end)
  it("has a method form equal to the function", function()
    local a, b = dl.rand(4, 6), dl.rand(6, 2)
    H.assert_close(a:matmul(b), dl.matmul(a, b), 0)
  end)
  it("reads transposed (column-major) operands in place", function()
    local a, b = dl.rand(6, 4, {dtype = "float64"}), dl.rand(3, 6, {dtype = "float64"})
    local at, bt = a:t(), b:t()
    assert.is_false(at:is_contiguous())
    H.assert_close(dl.matmul(at, bt), ref_mm(at:totable(), bt:totable()), 1e-12)
  end)
  it("reads narrowed rows (leading dim > cols) and narrowed columns", function()
    local base = dl.rand(8, 9, {dtype = "float64"})
    local a = base:narrow(2, 2, 5):narrow(1, 3, 4) -- [4,5] with row stride 9
    local b = base:t():narrow(1, 1, 5):narrow(2, 2, 3) -- [5,3] column-major, ld 9
    H.assert_close(a:matmul(b), ref_mm(a:totable(), b:totable()), 1e-12)
  end)
  it("copies operands BLAS cannot read (strides > 1 on both dims, broadcast)", function()
    local a = dl.rand(3, 2, 4, 2, {dtype = "float64"}):select(4, 1):select(2, 1) -- [3,4], strides {16,2}
    assert.same({16, 2}, a:stride())
    local b = dl.rand(4, 1, {dtype = "float64"}):expand(4, 5) -- strides {1,0}
    H.assert_close(dl.matmul(a, b), ref_mm(a:totable(), b:totable()), 1e-12)
  end)
  it("handles a large product (OpenBLAS threads)", function()
    local a, b = dl.rand(90, 130, {dtype = "float64"}), dl.rand(130, 70, {dtype = "float64"})
    H.assert_close(a:matmul(b), ref_mm(a:totable(), b:totable()), 1e-10)
  end)
  it("gives zeros for an empty inner dim and empty results for empty outer dims", function()
    assert.same({{0, 0, 0}, {0, 0, 0}}, dl.matmul(dl.zeros(2, 0), dl.zeros(0, 3)):totable())
    assert.same({0, 2}, dl.matmul(dl.zeros(0, 3), dl.zeros(3, 2)):size())
    assert.same({2, 0}, dl.matmul(dl.zeros(2, 3), dl.zeros(3, 0)):size())
  end)
end)

describe("dl.matmul with 1-D operands", function()
  it("1-D @ 1-D is a 0-d dot product", function()
    local r = dl.matmul(dl.tensor({1.0, 2, 3}), dl.tensor({4.0, 5, 6}))
    assert.equal(0, r:dim())
    assert.equal(32, r:item())
  end)
  it("1-D @ 2-D prepends then removes a dim", function()
    local r = dl.matmul(dl.tensor({1.0, 2}), dl.tensor({{1.0, 2, 3}, {4, 5, 6}}))
    assert.same({3}, r:size())
    assert.same({9, 12, 15}, r:totable())
  end)
  it("2-D @ 1-D appends then removes a dim", function()
    local r = dl.matmul(dl.tensor({{1.0, 2, 3}, {4, 5, 6}}), dl.tensor({1.0, 0, -1}))
    assert.same({2}, r:size())
    assert.same({-2, -2}, r:totable())
  end)
  it("strided 1-D operands", function()
    local v = dl.arange(12):double():view(4, 3):select(2, 2) -- {1, 4, 7, 10}, stride 3
    assert.equal(1 + 16 + 49 + 100, dl.matmul(v, v):item())
    local m = dl.arange(8):double():view(2, 4)
    assert.same({0 * 1 + 1 * 4 + 2 * 7 + 3 * 10, 4 * 1 + 5 * 4 + 6 * 7 + 7 * 10}, m:matmul(v):totable())
  end)
  it("1-D with batched operands", function()
    local a = dl.rand(2, 3, 4, {dtype = "float64"})
    local v = dl.tensor({1.0, 2, 3, 4}, {dtype = "float64"})
    local r = dl.matmul(a, v)
    assert.same({2, 3}, r:size())
    local at = a:totable()
    for b = 1, 2 do
      for i = 1, 3 do
        local s = 0
        for p = 1, 4 do s = s + at[b][i][p] * p end
        assert.is_true(math.abs(r:get(b, i) - s) < 1e-12)
      end
    end
    local w = dl.tensor({1.0, -1, 2}, {dtype = "float64"})
    local r2 = dl.matmul(w, a)
    assert.same({2, 4}, r2:size())
    local ref = ref_mm({w:totable()}, at[2])[1]
    H.assert_close(r2:select(1, 2), ref, 1e-12)
  end)
end)

describe("dl.matmul batched", function()
  it("multiplies 3-D @ 3-D batch by batch", function()
    local a, b = dl.rand(3, 2, 4, {dtype = "float64"}), dl.rand(3, 4, 5, {dtype = "float64"})
    local c = dl.matmul(a, b)
    assert.same({3, 2, 5}, c:size())
    H.assert_close(c, ref_bmm(a:totable(), b:totable()), 1e-12)
  end)
  it("broadcasts a 2-D operand over the batch", function()
    local a, b = dl.rand(4, 2, 3, {dtype = "float64"}), dl.rand(3, 5, {dtype = "float64"})
    local c = dl.matmul(a, b)
    assert.same({4, 2, 5}, c:size())
    local at, bt = a:totable(), b:totable()
    for i = 1, 4 do H.assert_close(c:select(1, i), ref_mm(at[i], bt), 1e-12) end
    local d = dl.matmul(b:t(), a:transpose(2, 3)) -- [5,3] @ [4,3,2]
    assert.same({4, 5, 2}, d:size())
    for i = 1, 4 do H.assert_close(d:select(1, i), ref_mm(b:t():totable(), a:select(1, i):t():totable()), 1e-12) end
  end)
  it("broadcasts batch dims of size 1 against each other", function()
    local a, b = dl.rand(2, 1, 3, 4, {dtype = "float64"}), dl.rand(5, 4, 2, {dtype = "float64"})
    local c = dl.matmul(a, b)
    assert.same({2, 5, 3, 2}, c:size())
    local at, bt = a:totable(), b:totable()
    for i = 1, 2 do
      for j = 1, 5 do H.assert_close(c:select(1, i):select(1, j), ref_mm(at[i][1], bt[j]), 1e-12) end
    end
  end)
  it("reads expanded (stride-0) batches and transposed batches in place", function()
    local m = dl.rand(1, 3, 4, {dtype = "float64"})
    local a = m:expand(6, 3, 4)
    local b = dl.rand(6, 2, 4, {dtype = "float64"}):transpose(2, 3)
    local c = dl.matmul(a, b)
    local mt, bt = m:totable()[1], b:totable()
    for i = 1, 6 do H.assert_close(c:select(1, i), ref_mm(mt, bt[i]), 1e-12) end
  end)
  it("runs many small products (threaded over the batch)", function()
    local a, b = dl.rand(512, 8, 8, {dtype = "float64"}), dl.rand(512, 8, 8, {dtype = "float64"})
    H.assert_close(dl.matmul(a, b), ref_bmm(a:totable(), b:totable()), 1e-12)
  end)
  it("handles empty batches", function()
    assert.same({0, 2, 5}, dl.matmul(dl.zeros(0, 2, 3), dl.zeros(3, 5)):size())
  end)
  it("rejects batch dims that cannot broadcast, naming both shapes", function()
    H.assert_error(function() dl.matmul(dl.zeros(2, 3, 4), dl.zeros(3, 4, 5)) end,
      "dl.matmul: batch dims cannot be broadcast, [2,3,4] @ [3,4,5]")
  end)
end)

describe("dl.matmul errors", function()
  it("names both shapes on a size mismatch", function()
    H.assert_error(function() dl.matmul(dl.zeros(2, 3), dl.zeros(4, 5)) end, "dl.matmul: size mismatch, [2,3] @ [4,5]")
    H.assert_error(function() dl.matmul(dl.zeros(3), dl.zeros(4)) end, "dl.matmul: size mismatch, [3] @ [4]")
    H.assert_error(function() dl.zeros(2, 3):matmul(dl.zeros(2)) end, "size mismatch, [2,3] @ [2]")
  end)
  it("rejects mixed dtypes, naming both", function()
    H.assert_error(function() dl.matmul(dl.zeros(2, 2), dl.zeros(2, 2, {dtype = "float64"})) end,
      "dl.matmul", "float32", "float64")
  end)
  it("rejects bool and uint8", function()
    local b = dl.zeros(2, 2, {dtype = "bool"})
    H.assert_error(function() dl.matmul(b, b) end, "dl.matmul: dtype bool is not supported")
    local u = dl.zeros(2, 2, {dtype = "uint8"})
    H.assert_error(function() dl.matmul(u, u) end, "uint8")
  end)
  it("rejects 0-d operands and non-tensors", function()
    H.assert_error(function() dl.matmul(dl.tensor(2.0), dl.zeros(2)) end, "dl.matmul", "at least 1 dim")
    H.assert_error(function() dl.matmul(dl.zeros(2), 3) end, "bad argument #2", "tensor expected")
  end)
  it("rejects mixed devices", function()
    local ok = pcall(dl.zeros, 2, {device = "cuda"})
    if ok then
      H.assert_error(function() dl.matmul(dl.zeros(2, 2), dl.zeros(2, 2, {device = "cuda"})) end, "dl.matmul", "cuda")
    else
      H.assert_error(function() dl.zeros(2, {device = "cuda"}) end, "not available")
    end
  end)
end)

describe("dl.matmul {out = c}", function()
  it("writes into c and returns it", function()
    local a, b = dl.rand(3, 4, {dtype = "float64"}), dl.rand(4, 2, {dtype = "float64"})
    local c = dl.full({3, 2}, 0 / 0, {dtype = "float64"})
    local r = a:matmul(b, {out = c})
    assert.is_true(rawequal(r, c))
    H.assert_close(c, ref_mm(a:totable(), b:totable()), 1e-12)
  end)
  it("works with 1-D operands", function()
    local d = dl.empty(3)
    dl.matmul(dl.ones(3, 2), dl.ones(2), {out = d})
    assert.same({2, 2, 2}, d:totable())
    local e = dl.empty()
    dl.matmul(dl.ones(4), dl.ones(4), {out = e})
    assert.equal(4, e:item())
  end)
  it("rejects a wrong shape or dtype, non-contiguous and aliased outputs", function()
    local a = dl.ones(2, 2)
    H.assert_error(function() dl.matmul(a, a, {out = dl.empty(3, 3)}) end, "dl.matmul: out is float32 [3,3]",
      "[2,2]")
    H.assert_error(function() dl.matmul(a, a, {out = dl.empty(2, 2, {dtype = "float64"})}) end, "out is float64")
    H.assert_error(function() dl.matmul(a, a, {out = dl.empty(2, 2):t()}) end, "out must be contiguous")
    H.assert_error(function() dl.matmul(a, a, {out = a}) end, "share memory")
    H.assert_error(function() dl.matmul(a, a, {out = 1}) end, "'out' must be a tensor")
    H.assert_error(function() dl.matmul(a, a, {outt = 1}) end, "unknown option 'outt'")
  end)
end)

describe("dl.mm", function()
  it("multiplies 2-D matrices only", function()
    local a, b = dl.rand(3, 4, {dtype = "float64"}), dl.rand(4, 2, {dtype = "float64"})
    H.assert_close(dl.mm(a, b), ref_mm(a:totable(), b:totable()), 1e-12)
    H.assert_close(a:mm(b), dl.mm(a, b), 0)
    H.assert_error(function() dl.mm(dl.zeros(2, 3, 4), dl.zeros(4, 5)) end,
      "dl.mm: expected 2-D matrices, [2,3,4] @ [4,5]")
    H.assert_error(function() dl.mm(dl.zeros(2, 3), dl.zeros(2, 3)) end, "dl.mm: size mismatch, [2,3] @ [2,3]")
  end)
end)

describe("dl.bmm", function()
  it("multiplies equal batches of 3-D tensors", function()
    local a, b = dl.rand(2, 3, 4, {dtype = "float64"}), dl.rand(2, 4, 5, {dtype = "float64"})
    H.assert_close(dl.bmm(a, b), ref_bmm(a:totable(), b:totable()), 1e-12)
    H.assert_close(a:bmm(b), dl.bmm(a, b), 0)
  end)
  it("computes int64 batches", function()
    local a = dl.arange(12):view(2, 2, 3)
    local b = dl.ones(2, 3, 1, {dtype = "int64"})
    assert.same({{{3}, {12}}, {{21}, {30}}}, dl.bmm(a, b):totable())
  end)
  it("rejects other ranks and unequal batches", function()
    H.assert_error(function() dl.bmm(dl.zeros(2, 3), dl.zeros(3, 2)) end, "dl.bmm: expected 3-D tensors")
    H.assert_error(function() dl.bmm(dl.zeros(2, 3, 4), dl.zeros(3, 4, 5)) end,
      "dl.bmm: batch size mismatch, [2,3,4] @ [3,4,5]")
    H.assert_error(function() dl.bmm(dl.zeros(2, 3, 4), dl.zeros(2, 5, 5)) end, "dl.bmm: size mismatch")
  end)
end)

describe("dl.mv", function()
  it("multiplies a matrix by a vector", function()
    local m = dl.tensor({{1.0, 2}, {3, 4}, {5, 6}})
    local v = dl.tensor({1.0, -1})
    assert.same({-1, -1, -1}, dl.mv(m, v):totable())
    assert.same({3, 7, 11}, m:mv(dl.ones(2)):totable())
    assert.same({9, 12}, m:t():mv(dl.tensor({1.0, 1, 1})):totable())
  end)
  it("rejects other ranks and sizes", function()
    H.assert_error(function() dl.mv(dl.zeros(2, 3), dl.zeros(2, 3)) end, "dl.mv: expected a 2-D matrix and a 1-D vector")
    H.assert_error(function() dl.mv(dl.zeros(2, 3), dl.zeros(2)) end, "dl.mv: size mismatch, [2,3] @ [2]")
  end)
end)

describe("dl.dot", function()
  it("returns a 0-d tensor for float and int64 vectors", function()
    local r = dl.dot(dl.tensor({1.0, 2, 3}), dl.tensor({4.0, 5, 6}))
    assert.equal(0, r:dim())
    assert.equal(32, r:item())
    assert.equal(32, dl.tensor({1, 2, 3}):dot(dl.tensor({4, 5, 6})):item())
    assert.equal("int64", dl.dot(dl.tensor({1}), dl.tensor({2})).dtype)
  end)
  it("reads strided vectors", function()
    local x = dl.arange(6):double()
    local even = x:view(3, 2):select(2, 1) -- {0, 2, 4}
    assert.equal(0 + 4 + 16, dl.dot(even, even):item())
  end)
  it("rejects mismatched lengths and other ranks", function()
    H.assert_error(function() dl.dot(dl.zeros(3), dl.zeros(4)) end, "dl.dot: size mismatch, [3] @ [4]")
    H.assert_error(function() dl.dot(dl.zeros(2, 2), dl.zeros(4)) end, "dl.dot: expected 1-D vectors")
  end)
end)

describe("dl.outer", function()
  it("forms the outer product", function()
    local r = dl.outer(dl.tensor({1.0, 2}), dl.tensor({3.0, 4, 5}))
    assert.same({{3, 4, 5}, {6, 8, 10}}, r:totable())
    assert.same({{3}, {6}}, dl.tensor({1, 2}):outer(dl.tensor({3})):totable())
  end)
  it("rejects non-vectors", function()
    H.assert_error(function() dl.outer(dl.zeros(2, 2), dl.zeros(2)) end, "dl.outer: expected 1-D vectors")
  end)
end)

describe("dl.addmm", function()
  local m1 = dl.tensor({{1.0, 2}, {3, 4}}, {dtype = "float64"})
  local m2 = dl.tensor({{1.0, 0, 1}, {0, 1, 1}}, {dtype = "float64"})
  local prod = {{1, 2, 3}, {3, 4, 7}}
  it("adds input to the product (beta = alpha = 1)", function()
    local input = dl.full({2, 3}, 10, {dtype = "float64"})
    assert.same({{11, 12, 13}, {13, 14, 17}}, dl.addmm(input, m1, m2):totable())
    assert.same({{11, 12, 13}, {13, 14, 17}}, input:addmm(m1, m2):totable())
  end)
  it("scales by beta and alpha", function()
    local input = dl.full({2, 3}, 10, {dtype = "float64"})
    local r = dl.addmm(input, m1, m2, {beta = 0.5, alpha = 2})
    for i = 1, 2 do
      for j = 1, 3 do assert.equal(5 + 2 * prod[i][j], r:get(i, j)) end
    end
  end)
  it("broadcasts input to the result", function()
    local row = dl.tensor({1.0, 2, 3}, {dtype = "float64"})
    assert.same({{2, 4, 6}, {4, 6, 10}}, dl.addmm(row, m1, m2):totable())
    local col = dl.tensor({{100.0}, {200}}, {dtype = "float64"})
    assert.same({{101, 102, 103}, {203, 204, 207}}, dl.addmm(col, m1, m2):totable())
    assert.same({{2, 3, 4}, {4, 5, 8}}, dl.addmm(dl.tensor(1.0, {dtype = "float64"}), m1, m2):totable())
  end)
  it("ignores input when beta = 0, NaN included", function()
    local nan = dl.full({2, 3}, 0 / 0, {dtype = "float64"})
    assert.same(prod, dl.addmm(nan, m1, m2, {beta = 0}):totable())
  end)
  it("works for an empty inner dim", function()
    local input = dl.full({2, 3}, 5.0)
    assert.same({{10, 10, 10}, {10, 10, 10}}, dl.addmm(input, dl.zeros(2, 0), dl.zeros(0, 3), {beta = 2}):totable())
  end)
  it("computes int64 with integer scalars and rejects fractional ones", function()
    local i1, i2 = dl.tensor({{1, 2}, {3, 4}}), dl.tensor({{1, 0}, {0, 1}})
    assert.same({{3, 5}, {7, 9}}, dl.addmm(dl.tensor({1, 1}), i1, i2, {alpha = 2}):totable())
    H.assert_error(function() dl.addmm(dl.tensor({1, 1}), i1, i2, {alpha = 0.5}) end, "dl.addmm", "integers")
  end)
  it("rejects bad shapes, dtypes and options", function()
    H.assert_error(function() dl.addmm(dl.zeros(3, 3, {dtype = "float64"}), m1, m2) end,
      "dl.addmm: input of shape [3,3] cannot be broadcast to the product's shape [2,3]")
    H.assert_error(function() dl.addmm(dl.zeros(2, 3), m1, m2) end, "dl.addmm", "float32", "float64")
    H.assert_error(function() dl.addmm(dl.zeros(2, 3, {dtype = "float64"}), m1, dl.zeros(3, 3, {dtype = "float64"})) end,
      "dl.addmm: size mismatch, [2,2] @ [3,3]")
    H.assert_error(function() dl.addmm(m1, m1, m1:view(4)) end, "dl.addmm: expected 2-D matrices")
    H.assert_error(function() dl.addmm(m1, m1, m1, {gamma = 1}) end, "unknown option 'gamma'")
    H.assert_error(function() dl.addmm(m1, m1, m1, {beta = "x"}) end, "beta")
    H.assert_error(function() dl.addmm(m1, m1, m1, 3) end, "bad argument #4")
  end)
end)
