-- dl.cluster.kmeans (k-means++ seeding, Lloyd iterations) and
-- dl.cluster.rbf_init (RBF centres and widths from k-means).
local dl = require "dlua"
local H = require "spec.helper"
local kmeans = dl.cluster.kmeans

local TRUE_CENTERS = {{0, 0}, {10, 0}, {0, 10}, {10, 10}}

-- m points around each of TRUE_CENTERS (spread s), blob by blob
local function blobs(m, s, dt, seed)
  dl.manual_seed(seed or 11)
  local parts = {}
  for i, c in ipairs(TRUE_CENTERS) do
    parts[i] = dl.randn(m, 2, {dtype = "float64"}) * s + dl.tensor(c, {dtype = "float64"})
  end
  return dl.cat(parts, 1):to(dt or "float64")
end

-- sum of squared distances to the assigned centres, in plain Lua
local function inertia_of(X, centers, labels)
  local x, c = X:double():totable(), centers:double():totable()
  local s = 0
  for i = 1, #x do
    local cj = c[labels:get(i)]
    for d = 1, #x[i] do s = s + (x[i][d] - cj[d]) ^ 2 end
  end
  return s
end

-- the true blob each found centre sits on (nil if none within tol)
local function match(centers, tol)
  local found = {}
  for j = 1, centers:size(1) do
    for i, c in ipairs(TRUE_CENTERS) do
      if math.abs(centers:get(j, 1) - c[1]) < tol and math.abs(centers:get(j, 2) - c[2]) < tol then
        found[j] = i
      end
    end
  end
  return found
end

describe("dl.cluster.kmeans", function()
  it("recovers four well-separated blobs (float64)", function()
    local X = blobs(50, 0.5)
    local centers, labels, inertia = kmeans(X, 4, {seed = 1})
    assert.same({4, 2}, centers:size())
    assert.equal("float64", centers.dtype)
    local found = match(centers, 0.3)
    local seen = {}
    for j = 1, 4 do
      assert.is_not_nil(found[j])
      assert.is_nil(seen[found[j]])
      seen[found[j]] = true
    end
    -- every sample of blob b carries the label of the centre on blob b
    for b = 1, 4 do
      for i = (b - 1) * 50 + 1, b * 50 do assert.equal(b, found[labels:get(i)]) end
    end
    assert.is_true(math.abs(inertia - inertia_of(X, centers, labels)) < 1e-9 * inertia)
  end)

  it("recovers the blobs in float32 with random init and several runs", function()
    local X = blobs(40, 0.5, "float32", 5)
    local centers, labels, inertia = kmeans(X, 4, {init = "random", seed = 2, n_init = 5})
    assert.equal("float32", centers.dtype)
    local found, n = match(centers, 0.3), 0
    for _ in pairs(found) do n = n + 1 end
    assert.equal(4, n)
    assert.is_true(math.abs(inertia - inertia_of(X, centers, labels)) < 1e-4 * inertia)
  end)

  it("returns 1-based int64 labels and centres at the means of their clusters", function()
    local X = blobs(30, 1.0)
    local centers, labels = kmeans(X, 4, {seed = 3, tol = 0})
    assert.equal("int64", labels.dtype)
    assert.same({120}, labels:size())
    assert.is_true(labels:min():item() >= 1 and labels:max():item() <= 4)
    for j = 1, 4 do
      local members = X:index_select(1, labels:eq(j):nonzero():view(-1))
      H.assert_close(centers:select(1, j), members:mean(1), 1e-9)
    end
  end)

  it("is reproducible with a seed and leaves the global generator alone", function()
    local X = blobs(20, 2.0)
    dl.manual_seed(99)
    local expected = dl.rand(3)
    dl.manual_seed(99)
    local c1, l1, i1 = kmeans(X, 5, {seed = 7})
    local after = dl.rand(3)
    H.assert_close(after, expected, 0)
    local c2, l2, i2 = kmeans(X, 5, {seed = 7})
    H.assert_close(c1, c2, 0)
    H.assert_close(l1, l2, 0)
    assert.equal(i1, i2)
  end)

  it("spreads k-means++ seeds over far-apart groups (iters = 0 keeps the seeds)", function()
    dl.manual_seed(4)
    local X = dl.cat({dl.randn(100, 3) * 0.01, dl.randn(100, 3) * 0.01 + 100}, 1)
    for seed = 1, 10 do
      local centers, _, _, n_iter = kmeans(X, 2, {seed = seed, iters = 0})
      assert.equal(0, n_iter)
      local a, b = centers:get(1, 1), centers:get(2, 1)
      assert.is_true(math.abs(a - b) > 90)
      -- seeds are samples of X
      local d = (X - centers:select(1, 1)):pow(2):sum(2):min():item()
      assert.equal(0, d)
    end
  end)

  it("handles k = 1, k = N and fewer distinct points than k", function()
    local X = dl.tensor({{0.0, 0}, {2, 0}, {4, 6}}, {dtype = "float64"})
    local c1, l1, i1 = kmeans(X, 1, {seed = 1})
    H.assert_close(c1, {{2, 2}}, 1e-12)
    H.assert_close(l1, {1, 1, 1}, 0)
    assert.is_true(math.abs(i1 - 32) < 1e-9) -- (4+4) + (0+4) + (4+16)
    local _, l3, i3 = kmeans(X, 3, {seed = 1})
    assert.equal(0, i3)
    local l = l3:totable()
    table.sort(l)
    assert.same({1, 2, 3}, l)
    local dup = dl.tensor({{1.0, 1}, {1, 1}, {1, 1}, {5, 5}})
    local cd, ld, id = kmeans(dup, 3, {seed = 2})
    assert.equal(0, id)
    assert.same({3, 2}, cd:size())
    assert.is_true(ld:min():item() >= 1 and ld:max():item() <= 3)
  end)

  it("clusters non-contiguous and integer input", function()
    local X = blobs(25, 0.5):t():contiguous():t() -- [100, 2] column-major
    assert.is_false(X:is_contiguous())
    local centers = kmeans(X, 4, {seed = 4})
    local found, n = match(centers, 0.3), 0
    for _ in pairs(found) do n = n + 1 end
    assert.equal(4, n)
    local Xi = dl.tensor({{0, 0}, {0, 1}, {10, 10}, {10, 11}})
    local ci, li = kmeans(Xi, 2, {seed = 1})
    assert.equal("float32", ci.dtype)
    assert.equal(li:get(1), li:get(2))
    assert.is_true(li:get(1) ~= li:get(3))
  end)

  it("gives the same result through the one-hot GEMM and the scatter_add update", function()
    local X = blobs(30, 2.0, "float64", 9)
    local c1, l1, i1 = kmeans(X, 5, {seed = 3, tol = 0})
    local saved = dl.cluster._one_hot_limit
    dl.cluster._one_hot_limit = 0
    local ok, c2, l2, i2 = pcall(kmeans, X, 5, {seed = 3, tol = 0})
    dl.cluster._one_hot_limit = saved
    assert.is_true(ok, tostring(c2))
    H.assert_close(c2, c1, 1e-9)
    H.assert_close(l2, l1, 0)
    assert.is_true(math.abs(i1 - i2) < 1e-9 * i1)
  end)

  it("keeps the best of n_init runs", function()
    local X = blobs(20, 3.0, "float64", 8)
    local _, _, best = kmeans(X, 6, {seed = 5, n_init = 8, init = "random"})
    local _, _, single = kmeans(X, 6, {seed = 5, n_init = 1, init = "random"})
    assert.is_true(best <= single + 1e-9) -- the first of the 8 runs is this single run
  end)

  it("rejects bad X, k and options", function()
    local X = dl.randn(5, 2)
    H.assert_error(function() kmeans(X, 6) end, "dl.cluster.kmeans", "k = 6", "[5,2]")
    H.assert_error(function() kmeans(X, 0) end, "bad argument #2", "k")
    H.assert_error(function() kmeans(X, 1.5) end, "bad argument #2")
    H.assert_error(function() kmeans(dl.randn(5), 2) end, "[N, D]", "[5]")
    H.assert_error(function() kmeans({{1}}, 1) end, "bad argument #1", "tensor")
    H.assert_error(function() kmeans(X, 2, {init = "kmeans"}) end, "init")
    H.assert_error(function() kmeans(X, 2, {iters = -1}) end, "iters")
    H.assert_error(function() kmeans(X, 2, {tol = -1}) end, "tol")
    H.assert_error(function() kmeans(X, 2, {n_init = 0}) end, "n_init")
    H.assert_error(function() kmeans(X, 2, {seed = "a"}) end, "seed")
    H.assert_error(function() kmeans(X, 2, {max_iter = 3}) end, "unknown option 'max_iter'")
    H.assert_error(function() kmeans(dl.tensor({{0 / 0, 1}, {1, 1}}), 1) end, "NaN")
  end)
end)

describe("dl.cluster.rbf_init", function()
  it("places the centres on the blobs and sets sigma_j = nearest-centre distance / sqrt 2", function()
    local X = blobs(40, 0.3)
    local rbf = dl.nn.RBF(2, 4)
    local r, centers, labels = dl.cluster.rbf_init(rbf, X, {seed = 3})
    assert.equal(rbf, r)
    assert.equal("int64", labels.dtype)
    H.assert_close(rbf.centers, centers, 1e-6)
    local c = centers:double():totable()
    for j = 1, 4 do
      local best = math.huge
      for i = 1, 4 do
        if i ~= j then best = math.min(best, math.sqrt((c[i][1] - c[j][1]) ^ 2 + (c[i][2] - c[j][2]) ^ 2)) end
      end
      assert.is_true(math.abs(rbf.sigmas:get(j) - best / math.sqrt(2)) < 1e-4)
      assert.is_true(math.abs(best - 10) < 0.3) -- neighbouring blobs are 10 apart
    end
    -- unit j responds 1 at its own centre and e^-1 at the nearest other one
    local phi = rbf(rbf.centers:detach())
    for j = 1, 4 do
      assert.is_true(math.abs(phi:get(j, j) - 1) < 1e-5)
      local nearest = 0
      for i = 1, 4 do
        if i ~= j then nearest = math.max(nearest, phi:get(i, j)) end
      end
      assert.is_true(math.abs(nearest - math.exp(-1)) < 1e-4)
    end
  end)

  it("honours scale, fixed (buffer) centres and the method form", function()
    local X = blobs(20, 0.3, "float32", 6)
    local rbf = dl.nn.RBF(2, 4, {learn_centers = false, learn_sigma = false})
    rbf:init_kmeans(X, {seed = 1, scale = 1})
    local s = rbf.sigmas
    for j = 1, 4 do assert.is_true(math.abs(s:get(j) - 10) < 0.3) end
    -- one centre: sigma is the RMS distance of the samples to it
    local r1 = dl.nn.RBF(2, 1)
    local _, c1, l1, inertia = dl.cluster.rbf_init(r1, X, {seed = 1})
    H.assert_close(c1, X:mean(1):view(1, 2), 1e-4)
    assert.equal(1, l1:max():item())
    assert.is_true(math.abs(r1.sigmas:get(1) - math.sqrt(inertia / 80) / math.sqrt(2)) < 1e-4)
  end)

  it("gives duplicate centres a positive width", function()
    local X = dl.tensor({{1.0, 1}, {1, 1}, {1, 1}, {4, 5}})
    local rbf = dl.nn.RBF(2, 3)
    dl.cluster.rbf_init(rbf, X, {seed = 1})
    assert.is_true(rbf.sigmas:min():item() > 0)
    assert.is_false(rbf.sigmas:isinf():any():item())
  end)

  it("rejects a non-RBF module, a width mismatch and a bad scale", function()
    H.assert_error(function() dl.cluster.rbf_init(dl.nn.Linear(2, 2), dl.randn(5, 2)) end, "nn.RBF")
    H.assert_error(function() dl.cluster.rbf_init(dl.nn.RBF(3, 2), dl.randn(5, 2)) end, "3 features", "[5,2]")
    H.assert_error(function() dl.cluster.rbf_init(dl.nn.RBF(2, 2), dl.randn(5, 2), {scale = 0}) end, "scale")
    H.assert_error(function() dl.cluster.rbf_init(dl.nn.RBF(2, 9), dl.randn(5, 2)) end, "k = 9")
  end)
end)
