-- dl.preprocessing: MinMaxScaler, StandardScaler, ZCA and PCA fitted on
-- training data; also reachable as dl.data.<Name>.
local dl = require "dlua"
local H = require "spec.helper"
local P = dl.preprocessing

-- column means and population stds of a [N, D] tensor, in plain Lua
local function col_stats(X)
  local t = X:double():totable()
  local n, d = #t, #t[1]
  local mean, std = {}, {}
  for j = 1, d do
    local s = 0
    for i = 1, n do s = s + t[i][j] end
    mean[j] = s / n
    local v = 0
    for i = 1, n do v = v + (t[i][j] - mean[j]) ^ 2 end
    std[j] = math.sqrt(v / n)
  end
  return mean, std
end

-- population covariance [D, D] as a float64 tensor
local function cov(Y)
  local y = Y:double()
  local yc = y - y:mean(1)
  return yc:t():mm(yc) / y:size(1)
end

-- correlated data: N samples of D features with different scales and offsets
local function correlated(n, d, dt, seed)
  dl.manual_seed(seed or 1)
  local A = dl.randn(d, d, {dtype = "float64"})
  local X = dl.randn(n, d, {dtype = "float64"}):mm(A) * dl.linspace(0.5, 5, d):double()
    + dl.linspace(-3, 10, d):double()
  return X:to(dt or "float64")
end

describe("dl.preprocessing.StandardScaler", function()
  it("maps a constant column to 0 even when its float64 mean is a rounding off (std 1)", function()
    local rows = {}
    for i = 1, 10 do rows[i] = {0.1, i} end
    local X = dl.tensor(rows, {dtype = "float64"})
    local s = P.StandardScaler():fit(X)
    assert.equal(1, s.std[1]:item()) -- variance ~1.9e-34: rounding, not spread
    assert.is_true(math.abs(s:transform(X)[1][1]:item()) < 1e-15)
    H.assert_close(s.std[2], math.sqrt(8.25), 1e-12) -- population std of 1..10
  end)
  it("gives every column mean 0 and (population) std 1, float64", function()
    local X = correlated(500, 4)
    local Y = P.StandardScaler():fit_transform(X)
    local mean, std = col_stats(Y)
    H.assert_close(mean, {0, 0, 0, 0}, 1e-12)
    H.assert_close(std, {1, 1, 1, 1}, 1e-12)
  end)

  it("stores the column means and stds computed by hand, float32", function()
    local X = correlated(300, 3, "float32")
    local s = P.StandardScaler():fit(X)
    local mean, std = col_stats(X)
    assert.equal("float32", s.mean.dtype)
    H.assert_close(s.mean, mean, 1e-4)
    H.assert_close(s.std, std, 1e-4)
    local Y = s:transform(X)
    assert.equal("float32", Y.dtype)
    local m2, s2 = col_stats(Y)
    H.assert_close(m2, {0, 0, 0}, 1e-5)
    H.assert_close(s2, {1, 1, 1}, 1e-5)
  end)

  it("accumulates over several blocks of rows (N = 20000) in float64", function()
    local X = correlated(20000, 3, "float32", 3)
    local s = P.StandardScaler():fit(X)
    local mean, std = col_stats(X)
    H.assert_close(s.mean, mean, 1e-4)
    H.assert_close(s.std, std, 1e-4)
    H.assert_close(cov(P.ZCA({eps = 0}):fit_transform(X)), dl.eye(3, {dtype = "float64"}), 1e-3)
  end)

  it("round trips through inverse_transform", function()
    local X = correlated(100, 5)
    local s = P.StandardScaler():fit(X)
    H.assert_close(s:inverse_transform(s:transform(X)), X, 1e-12)
  end)

  it("fits non-contiguous (transposed, narrowed) input", function()
    local X = correlated(6, 40):t() -- [40, 6], transposed
    assert.is_false(X:is_contiguous())
    local Xn = X:narrow(2, 2, 3)
    local Y = P.StandardScaler():fit_transform(Xn)
    local mean, std = col_stats(Y)
    H.assert_close(mean, {0, 0, 0}, 1e-12)
    H.assert_close(std, {1, 1, 1}, 1e-12)
  end)

  it("maps a constant column to 0 (std taken as 1)", function()
    local X = dl.tensor({{1, 5}, {2, 5}, {3, 5}}, {dtype = "float64"})
    local s = P.StandardScaler():fit(X)
    H.assert_close(s.std, {math.sqrt(2 / 3), 1}, 1e-12)
    H.assert_close(s:transform(X):select(2, 2), {0, 0, 0}, 0)
  end)

  it("turns integer input into float32 and honours with_mean / with_std", function()
    local X = dl.tensor({{1, 10}, {3, 30}})
    local Y = P.StandardScaler():fit_transform(X)
    assert.equal("float32", Y.dtype)
    H.assert_close(Y, {{-1, -1}, {1, 1}}, 1e-6)
    local Xf = X:double()
    H.assert_close(P.StandardScaler({with_mean = false}):fit_transform(Xf), {{1, 1}, {3, 3}}, 1e-12)
    H.assert_close(P.StandardScaler({with_std = false}):fit_transform(Xf), {{-1, -10}, {1, 10}}, 1e-12)
  end)

  it("applies the training statistics to new data and broadcasts none of its own", function()
    local s = P.StandardScaler():fit(dl.tensor({{0.0}, {2.0}}, {dtype = "float64"}))
    H.assert_close(s:transform(dl.tensor({{4.0}}, {dtype = "float64"})), {{3}}, 1e-12)
  end)

  it("lets gradients flow through transform (d/dx = 1 / std)", function()
    local s = P.StandardScaler():fit(dl.tensor({{0.0, 1}, {4, 3}}, {dtype = "float64"}))
    local x = dl.tensor({{1.0, 1}}, {dtype = "float64", requires_grad = true})
    s:transform(x):sum():backward()
    H.assert_close(x.grad, {{0.5, 1}}, 1e-12)
    assert.equal("StandardScaler(n_features=2)", tostring(s))
    assert.equal("StandardScaler(not fitted)", tostring(P.StandardScaler()))
  end)

  it("saves and restores its state", function()
    local X = correlated(50, 3)
    local s = P.StandardScaler():fit(X)
    local sd = s:state_dict()
    assert.is_true(dl.is_tensor(sd.mean) and dl.is_tensor(sd.std))
    local s2 = P.StandardScaler():load_state_dict(sd)
    H.assert_close(s2:transform(X), s:transform(X), 0)
    H.assert_error(function() P.StandardScaler():load_state_dict({mean = sd.mean}) end, "missing key 'std'")
    H.assert_error(function() P.StandardScaler():load_state_dict({mean = sd.mean, std = dl.ones(2)}) end,
      "[3]", "[2]")
    H.assert_error(function() P.StandardScaler():load_state_dict({mean = sd.mean, std = sd.std, x = 1}) end,
      "unexpected key 'x'")
    H.assert_error(function() P.StandardScaler():load_state_dict({mean = 1, std = sd.std}) end, "'mean'", "tensor")
  end)

  it("rejects use before fit, wrong widths, bad shapes and options", function()
    local s = P.StandardScaler()
    H.assert_error(function() s:transform(dl.zeros(2, 2)) end, "StandardScaler:transform", "not fitted")
    s:fit(dl.randn(4, 3))
    H.assert_error(function() s:transform(dl.zeros(2, 2)) end, "expected 3 features", "[2,2]")
    H.assert_error(function() s:inverse_transform(dl.zeros(2, 4)) end, "expected 3 features", "[2,4]")
    H.assert_error(function() s:fit(dl.zeros(3)) end, "StandardScaler:fit", "2-D", "[3]")
    H.assert_error(function() s:fit(dl.zeros(0, 3)) end, "at least 1 samples", "[0,3]")
    H.assert_error(function() s:fit({{1}}) end, "bad argument #1", "tensor")
    H.assert_error(function() P.StandardScaler({center = true}) end, "unknown option 'center'")
  end)
end)

describe("dl.preprocessing.MinMaxScaler", function()
  it("maps every column onto [0, 1] with min 0 and max 1", function()
    local X = correlated(200, 4)
    local Y = P.MinMaxScaler():fit_transform(X)
    H.assert_close(Y:min(1), {0, 0, 0, 0}, 1e-12)
    H.assert_close(Y:max(1), {1, 1, 1, 1}, 1e-12)
  end)

  it("computes (x - min) / (max - min) * (hi - lo) + lo by hand, float32", function()
    local X = dl.tensor({{1, -2}, {3, 0}, {2, 6}})
    local s = P.MinMaxScaler({feature_range = {-1, 1}}):fit(X:float())
    H.assert_close(s.data_min, {1, -2}, 0)
    H.assert_close(s.data_max, {3, 6}, 0)
    H.assert_close(s:transform(X:float()), {{-1, -1}, {1, -0.5}, {0, 1}}, 1e-6)
    H.assert_close(s:transform(dl.tensor({{5.0, 2.0}})), {{3, 0}}, 1e-6)
  end)

  it("round trips through inverse_transform, also on transposed input", function()
    local X = correlated(3, 30):t()
    local s = P.MinMaxScaler():fit(X)
    H.assert_close(s:inverse_transform(s:transform(X)), X, 1e-12)
  end)

  it("maps a constant column to lo", function()
    local s = P.MinMaxScaler({feature_range = {2, 3}}):fit(dl.tensor({{7.0}, {7.0}}))
    H.assert_close(s:transform(dl.tensor({{7.0}, {8.0}})), {{2}, {3}}, 1e-6)
  end)

  it("saves and restores its state", function()
    local X = correlated(20, 2)
    local s = P.MinMaxScaler():fit(X)
    local s2 = P.MinMaxScaler():load_state_dict(s:state_dict())
    H.assert_close(s2:transform(X), s:transform(X), 0)
    H.assert_error(function() P.MinMaxScaler():load_state_dict({data_min = dl.zeros(2)}) end, "missing key 'data_max'")
  end)

  it("rejects a bad feature_range and use before fit", function()
    H.assert_error(function() P.MinMaxScaler({feature_range = {1, 0}}) end, "feature_range")
    H.assert_error(function() P.MinMaxScaler({feature_range = 1}) end, "feature_range")
    H.assert_error(function() P.MinMaxScaler():inverse_transform(dl.zeros(1, 1)) end, "not fitted")
  end)
end)

describe("dl.preprocessing.ZCA", function()
  it("whitens: the covariance after ZCA is the identity within 1e-3 (float64)", function()
    local X = correlated(2000, 5)
    local Y = P.ZCA():fit_transform(X)
    H.assert_close(cov(Y), dl.eye(5, {dtype = "float64"}), 1e-3)
    H.assert_close(Y:mean(1), {0, 0, 0, 0, 0}, 1e-9)
  end)

  it("whitens float32 data within 1e-3", function()
    local X = correlated(2000, 6, "float32", 2)
    local z = P.ZCA({eps = 1e-6}):fit(X)
    local Y = z:transform(X)
    assert.equal("float32", Y.dtype)
    H.assert_close(cov(Y), dl.eye(6, {dtype = "float64"}), 1e-3)
  end)

  it("uses a symmetric whitening matrix W with W C W = I", function()
    local X = correlated(400, 3)
    local z = P.ZCA({eps = 0}):fit(X)
    local W = z.whitening
    H.assert_close(W, W:t(), 1e-12)
    H.assert_close(W:mm(cov(X)):mm(W), dl.eye(3, {dtype = "float64"}), 1e-10)
  end)

  it("round trips through inverse_transform", function()
    local X = correlated(300, 4)
    local z = P.ZCA():fit(X)
    H.assert_close(z:inverse_transform(z:transform(X)), X, 1e-9)
  end)

  it("saves and restores its state", function()
    local X = correlated(100, 3)
    local z = P.ZCA():fit(X)
    local z2 = P.ZCA():load_state_dict(z:state_dict())
    H.assert_close(z2:transform(X), z:transform(X), 0)
    local sd = z:state_dict()
    H.assert_error(function()
      P.ZCA():load_state_dict({mean = sd.mean, whitening = dl.eye(2), coloring = sd.coloring})
    end, "ZCA:load_state_dict", "[2,2]")
  end)

  it("rejects singular data without eps and a negative eps", function()
    local X = dl.tensor({{1, 2}, {2, 4}, {3, 6}}, {dtype = "float64"}) -- rank 1
    H.assert_error(function() P.ZCA({eps = 0}):fit(X) end, "singular")
    H.assert_error(function() P.ZCA({eps = -1}) end, "eps")
    H.assert_error(function() P.ZCA():transform(X) end, "not fitted")
  end)
end)

describe("dl.preprocessing.PCA", function()
  it("has orthonormal components and descending explained variance", function()
    local X = correlated(500, 6)
    local p = P.PCA(4):fit(X)
    assert.same({4, 6}, p.components:size())
    H.assert_close(p.components:mm(p.components:t()), dl.eye(4, {dtype = "float64"}), 1e-12)
    local ev = p.explained_variance
    for i = 2, 4 do assert.is_true(ev:get(i - 1) >= ev:get(i)) end
    local r = p.explained_variance_ratio
    for i = 2, 4 do assert.is_true(r:get(i - 1) >= r:get(i)) end
    assert.is_true(r:sum():item() < 1)
  end)

  it("projects onto components whose sample variances are the explained variances", function()
    local X = correlated(400, 5)
    local p = P.PCA(3):fit(X)
    local Z = p:transform(X)
    assert.same({400, 3}, Z:size())
    H.assert_close(Z:var(1), p.explained_variance, 1e-9)
    H.assert_close(Z:mean(1), {0, 0, 0}, 1e-9)
    -- projections are uncorrelated
    local c = cov(Z)
    H.assert_close(c - c * dl.eye(3, {dtype = "float64"}), dl.zeros(3, 3), 1e-9)
  end)

  it("finds the direction of a 2-D line with a positive sign and ratio 1", function()
    local t = dl.linspace(-1, 1, 11):double():view(11, 1)
    local X = dl.cat({t * 3, t * 4}, 2) + dl.tensor({1.0, 2.0}, {dtype = "float64"})
    local p = P.PCA(1):fit(X)
    H.assert_close(p.components, {{0.6, 0.8}}, 1e-12)
    H.assert_close(p.explained_variance_ratio, {1}, 1e-12)
    H.assert_close(p:inverse_transform(p:transform(X)), X, 1e-12)
  end)

  it("round trips with all components, float32", function()
    local X = correlated(100, 4, "float32")
    local p = P.PCA():fit(X)
    assert.equal(4, p.n_components)
    H.assert_close(p.explained_variance_ratio:sum(), 1, 1e-5)
    H.assert_close(p:inverse_transform(p:transform(X)), X, 1e-3)
  end)

  it("whitens the projections to unit variance", function()
    local X = correlated(300, 4)
    local p = P.PCA(2, {whiten = true}):fit(X)
    local Z = p:transform(X)
    H.assert_close(Z:var(1), {1, 1}, 1e-9)
    local p3 = P.PCA(4, {whiten = true}):fit(X)
    H.assert_close(p3:inverse_transform(p3:transform(X)), X, 1e-9)
  end)

  it("saves and restores its state", function()
    local X = correlated(60, 3)
    local p = P.PCA(2):fit(X)
    local p2 = P.PCA(2):load_state_dict(p:state_dict())
    H.assert_close(p2:transform(X), p:transform(X), 0)
    H.assert_error(function() P.PCA(1):load_state_dict(p:state_dict()) end, "keeps 1", "has 2")
  end)

  it("rejects a bad k, too few samples and mismatched inputs", function()
    H.assert_error(function() P.PCA(0) end, "bad argument #1", "k")
    H.assert_error(function() P.PCA(1.5) end, "bad argument #1", "k")
    H.assert_error(function() P.PCA(4):fit(dl.randn(10, 3)) end, "PCA:fit", "k = 4", "[10,3]")
    H.assert_error(function() P.PCA(1):fit(dl.randn(1, 3)) end, "at least 2 samples")
    local p = P.PCA(2):fit(dl.randn(10, 3))
    H.assert_error(function() p:transform(dl.randn(2, 2)) end, "expected 3 features")
    H.assert_error(function() p:inverse_transform(dl.randn(2, 3)) end, "expected 2 features")
  end)
end)

describe("dl.data aliases", function()
  it("exposes the scalers under dl.data too", function()
    assert.equal(P.MinMaxScaler, dl.data.MinMaxScaler)
    assert.equal(P.StandardScaler, dl.data.StandardScaler)
    assert.equal(P.ZCA, dl.data.ZCA)
    assert.equal(P.PCA, dl.data.PCA)
  end)
end)
