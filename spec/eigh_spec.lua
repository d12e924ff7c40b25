-- dl.linalg.eigh: symmetric eigendecomposition through LAPACK (syevd).
local dl = require "dlua"
local H = require "spec.helper"

-- a random symmetric n x n matrix of dtype dt
local function sym(n, dt)
  local a = dl.randn(n, n, {dtype = dt})
  return (a + a:t()) / 2
end

-- V diag(w) V^T
local function rebuild(w, V)
  return (V * w):mm(V:t())
end

describe("dl.linalg.eigh", function()
  it("decomposes a 3 x 3 matrix with known eigenvalues (3 - sqrt 3, 3, 3 + sqrt 3)", function()
    local A = dl.tensor({{2, 1, 0}, {1, 3, 1}, {0, 1, 4}}, {dtype = "float64"})
    local w, V = dl.linalg.eigh(A)
    H.assert_close(w, {3 - math.sqrt(3), 3, 3 + math.sqrt(3)}, 1e-12)
    -- the eigenvector of 3 is +-(1, 1, -1) / sqrt 3 ... up to sign: check A v = 3 v
    local v = V:select(2, 2)
    H.assert_close(A:mv(v), v * 3, 1e-12)
    H.assert_close(rebuild(w, V), A, 1e-12)
  end)

  it("returns ascending eigenvalues and orthonormal eigenvector columns, float64", function()
    dl.manual_seed(7)
    local A = sym(20, "float64")
    local w, V = dl.linalg.eigh(A)
    assert.same({20}, w:size())
    assert.same({20, 20}, V:size())
    assert.equal("float64", w.dtype)
    assert.equal("float64", V.dtype)
    for i = 2, 20 do assert.is_true(w:get(i - 1) <= w:get(i)) end
    H.assert_close(V:t():mm(V), dl.eye(20, {dtype = "float64"}), 1e-12)
    H.assert_close(rebuild(w, V), A, 1e-12)
    H.assert_close(A:mm(V), V * w, 1e-12)
  end)

  it("works in float32", function()
    dl.manual_seed(8)
    local A = sym(16, "float32")
    local w, V = dl.linalg.eigh(A)
    assert.equal("float32", w.dtype)
    assert.equal("float32", V.dtype)
    assert.is_true(V:is_contiguous())
    H.assert_close(V:t():mm(V), dl.eye(16), 1e-5)
    H.assert_close(rebuild(w, V), A, 1e-4)
  end)

  it("matches the trace and determinant of a 2 x 2 matrix", function()
    local w = dl.linalg.eigh(dl.tensor({{4, 2}, {2, 1}}, {dtype = "float64"}))
    H.assert_close(w, {0, 5}, 1e-12)
  end)

  it("accepts non-contiguous (transposed, narrowed) input and leaves it untouched", function()
    dl.manual_seed(9)
    local big = sym(6, "float64")
    local A = big:narrow(1, 2, 4):narrow(2, 2, 4)
    assert.is_false(A:is_contiguous())
    local before = A:clone()
    local w, V = dl.linalg.eigh(A)
    H.assert_close(rebuild(w, V), A, 1e-12)
    H.assert_close(A, before, 0)
    local w2 = dl.linalg.eigh(A:t())
    H.assert_close(w2, w, 1e-12)
  end)

  it("reads the lower triangle by default and the upper one with \"U\"", function()
    local A = dl.tensor({{1, 100}, {2, 1}}, {dtype = "float64"}) -- lower: [[1, 2], [2, 1]]
    H.assert_close(dl.linalg.eigh(A), {-1, 3}, 1e-12)
    H.assert_close(dl.linalg.eigh(A, "L"), {-1, 3}, 1e-12)
    H.assert_close(dl.linalg.eigh(A, "U"), {-99, 101}, 1e-12)
  end)

  it("handles 1 x 1 and empty matrices", function()
    local w, V = dl.linalg.eigh(dl.tensor({{-2.5}}, {dtype = "float64"}))
    H.assert_close(w, {-2.5}, 0)
    H.assert_close(V:abs(), {{1}}, 0)
    local w0, V0 = dl.linalg.eigh(dl.zeros(0, 0))
    assert.same({0}, w0:size())
    assert.same({0, 0}, V0:size())
  end)

  it("rejects non-square, non-2-D and non-float matrices", function()
    H.assert_error(function() dl.linalg.eigh(dl.zeros(2, 3)) end, "dl.linalg.eigh", "square", "[2,3]")
    H.assert_error(function() dl.linalg.eigh(dl.zeros(3)) end, "dl.linalg.eigh", "[3]")
    H.assert_error(function() dl.linalg.eigh(dl.zeros(2, 2, 2)) end, "dl.linalg.eigh", "[2,2,2]")
    H.assert_error(function() dl.linalg.eigh(dl.zeros(2, 2, {dtype = "int64"})) end, "dl.linalg.eigh", "int64")
    H.assert_error(function() dl.linalg.eigh(dl.zeros(2, 2, {dtype = "bool"})) end, "dl.linalg.eigh", "bool")
  end)

  it("rejects NaN and Inf entries, a bad UPLO and a non-tensor", function()
    H.assert_error(function() dl.linalg.eigh(dl.tensor({{0 / 0, 1}, {1, 1}})) end, "dl.linalg.eigh", "NaN")
    H.assert_error(function() dl.linalg.eigh(dl.tensor({{math.huge, 1}, {1, 1}}, {dtype = "float64"})) end,
      "dl.linalg.eigh", "Inf")
    H.assert_error(function() dl.linalg.eigh(dl.eye(2), "X") end, "bad argument #2", "UPLO")
    H.assert_error(function() dl.linalg.eigh({{1}}) end, "bad argument #1")
  end)

  it("ignores the triangle it does not read, NaN there included (as PyTorch)", function()
    -- [[1, 2], [2, 1]] has eigenvalues -1 and 3
    local w = dl.linalg.eigh(dl.tensor({{1, 0 / 0}, {2, 1}}, {dtype = "float64"}), "L")
    H.assert_close(w, {-1, 3}, 1e-12)
    w = dl.linalg.eigh(dl.tensor({{1, 2}, {math.huge, 1}}, {dtype = "float64"}), "U")
    H.assert_close(w, {-1, 3}, 1e-12)
    H.assert_error(function() dl.linalg.eigh(dl.tensor({{1, 0 / 0}, {2, 1}}), "U") end, "NaN")
  end)
end)
