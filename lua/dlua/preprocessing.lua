-- dlua.preprocessing: transforms fitted on training data and applied
-- anywhere (also reachable as dl.data.<Name>):
--   MinMaxScaler({feature_range = {0, 1}})  StandardScaler({with_mean, with_std})
--   ZCA({eps = 1e-5})                        PCA(k, {whiten = false})
-- Each has :fit(X), :transform(X), :fit_transform(X), :inverse_transform(Y),
-- :state_dict() (a table of tensors, so a fitted scaler is saved beside the
-- model with dl.save) and :load_state_dict(sd).
--
-- X is [N, D], one sample per row. Statistics are computed in float64 and
-- stored in X's dtype (float32 for integer input) on X's device; variances
-- are population ones (divided by N) as in scikit-learn, except PCA's
-- explained variance, which divides by N - 1 (also as scikit-learn). ZCA and
-- PCA decompose the covariance with dl.linalg.eigh (LAPACK syevd). The
-- transforms are plain tensor ops, so gradients flow through them.
local dl = require "dlua"

local P = {}
dl.preprocessing = P

local fmt = string.format
local is_tensor = dl.is_tensor
local FLOAT = {float32 = true, float64 = true}

local checks = require "dlua.checks"
local shape_str, check_options = checks.shape_str, checks.options

-- the transforms are classes of dlua.class: Name(...) builds one through init
local classes = require "dlua.class"
local Transform = classes.root("Transform", "dl.preprocessing.Transform")
Transform.__tostring = function(self)
  return fmt("%s(%s)", self.__name, self.n_features and fmt("n_features=%d", self.n_features) or "not fitted")
end
local function class(name) return classes.extend(Transform, name) end

-- X as a detached 2-D float tensor; errors name fn (level: the caller of
-- the public method)
local function check_input(fn, X, min_rows)
  if not is_tensor(X) then error(fmt("%s: bad argument #1 (tensor expected, got %s)", fn, type(X)), 3) end
  if X:dim() ~= 2 then
    error(fmt("%s: expected a 2-D tensor [N, D] (one sample per row), got shape %s", fn, shape_str(X)), 3)
  end
  if X:size(1) < (min_rows or 0) then
    error(fmt("%s: need at least %d samples, got shape %s", fn, min_rows, shape_str(X)), 3)
  end
  if not FLOAT[X.dtype] then X = X:to("float32") end
  return X
end

-- checks that the scaler is fitted and X has its number of features
local function check_apply(self, fn, X, width)
  if not self.n_features then error(fmt("%s: not fitted yet (call fit first)", fn), 3) end
  X = check_input(fn, X)
  width = width or self.n_features
  if X:size(2) ~= width then
    error(fmt("%s: expected %d features, got shape %s", fn, width, shape_str(X)), 3)
  end
  if not FLOAT[X.dtype] then X = X:to(self.dtype) end
  return X
end

-- float64 statistics -> the stored dtype and device
local function store(t, like)
  return t:to(like.dtype):to(like.device):contiguous()
end

-- load_state_dict helper: every key a tensor of the given shape (nil: any)
local function check_state(fn, sd, spec)
  if type(sd) ~= "table" then error(fmt("%s: bad argument #1 (table expected, got %s)", fn, type(sd)), 3) end
  for _, s in ipairs(spec) do
    local key, want = s[1], s[2]
    local t = sd[key]
    if t == nil then error(fmt("%s: missing key '%s'", fn, key), 3) end
    if not is_tensor(t) then error(fmt("%s: '%s' must be a tensor, got %s", fn, key, type(t)), 3) end
    if not FLOAT[t.dtype] then error(fmt("%s: '%s' must be float32 or float64, got %s", fn, key, t.dtype), 3) end
    if want and shape_str(t) ~= shape_str(want) then
      error(fmt("%s: '%s' has shape %s, expected %s", fn, key, shape_str(t), shape_str(want)), 3)
    end
  end
  local known = {}
  for _, s in ipairs(spec) do known[s[1]] = true end
  for k in pairs(sd) do
    if not known[k] then error(fmt("%s: unexpected key '%s'", fn, tostring(k)), 3) end
  end
end

-- Float64 statistics over blocks of rows, so a large float32 X is never
-- converted to float64 whole
local CHUNK = 8192

local function f64_chunks(X)
  local n, i = X:size(1), 1
  return function()
    if i > n then return nil end
    local len = math.min(CHUNK, n - i + 1)
    local c = X:narrow(1, i, len):double()
    i = i + len
    return c
  end
end

local function f64_zeros(X, ...)
  return dl.zeros(..., {dtype = "float64", device = X.device})
end

-- column means [D]
local function col_mean(X)
  local s = f64_zeros(X, X:size(2))
  for c in f64_chunks(X) do s = s + c:sum(1) end
  return s / X:size(1)
end

-- population column variances [D] around mean
local function col_var(X, mean)
  local s = f64_zeros(X, X:size(2))
  for c in f64_chunks(X) do s = s + (c - mean):pow(2):sum(1) end
  return s / X:size(1)
end

-- scatter matrix sum_i (x_i - mean)^T (x_i - mean), [D, D]
local function scatter(X, mean)
  local d = X:size(2)
  local S = f64_zeros(X, d, d)
  for c in f64_chunks(X) do
    local cc = c - mean
    S = dl.addmm(S, cc:t(), cc)
  end
  return S
end

local function fit_transform(self, X)
  self:fit(X)
  return self:transform(X)
end

---------------------------------------------------------------------------
-- MinMaxScaler: (X - min) / (max - min) * (hi - lo) + lo per column; a
-- constant column gets scale 1 (it maps to lo)
---------------------------------------------------------------------------

local MinMaxScaler = class("MinMaxScaler")
P.MinMaxScaler = MinMaxScaler

function MinMaxScaler:init(opts)
  local fn = "dl.preprocessing.MinMaxScaler"
  opts = check_options(fn, opts, {feature_range = true})
  local r = opts.feature_range or {0, 1}
  if type(r) ~= "table" or type(r[1]) ~= "number" or type(r[2]) ~= "number" or not (r[1] < r[2]) then
    error(fn .. ": feature_range must be {lo, hi} with lo < hi", 2)
  end
  self.feature_range = {r[1], r[2]}
end

function MinMaxScaler:_derive()
  local lo, hi = self.feature_range[1], self.feature_range[2]
  local range = self.data_max - self.data_min
  range = dl.where(range:eq(0), dl.ones_like(range), range)
  self.scale = (hi - lo) / range
end

function MinMaxScaler:fit(X)
  X = check_input("MinMaxScaler:fit", X, 1):detach()
  self.data_min = store(X:min(1), X)
  self.data_max = store(X:max(1), X)
  self.n_features, self.dtype = X:size(2), X.dtype
  self:_derive()
  return self
end

function MinMaxScaler:transform(X)
  X = check_apply(self, "MinMaxScaler:transform", X)
  return (X - self.data_min) * self.scale + self.feature_range[1]
end

function MinMaxScaler:inverse_transform(Y)
  Y = check_apply(self, "MinMaxScaler:inverse_transform", Y)
  return (Y - self.feature_range[1]) / self.scale + self.data_min
end

MinMaxScaler.fit_transform = fit_transform

function MinMaxScaler:state_dict()
  return {data_min = self.data_min, data_max = self.data_max}
end

function MinMaxScaler:load_state_dict(sd)
  local fn = "MinMaxScaler:load_state_dict"
  check_state(fn, sd, {{"data_min"}, {"data_max"}})
  if sd.data_min:dim() ~= 1 or shape_str(sd.data_min) ~= shape_str(sd.data_max) then
    error(fmt("%s: data_min %s and data_max %s must be 1-D of one shape", fn, shape_str(sd.data_min),
      shape_str(sd.data_max)), 2)
  end
  self.data_min, self.data_max = sd.data_min:clone(), sd.data_max:to(sd.data_min.dtype):clone()
  self.n_features, self.dtype = sd.data_min:size(1), sd.data_min.dtype
  self:_derive()
  return self
end

---------------------------------------------------------------------------
-- StandardScaler: (X - mean) / std per column (population std); a constant
-- column (variance within rounding of 0) gets std 1
---------------------------------------------------------------------------

local StandardScaler = class("StandardScaler")
P.StandardScaler = StandardScaler

function StandardScaler:init(opts)
  opts = check_options("dl.preprocessing.StandardScaler", opts, {with_mean = true, with_std = true})
  self.with_mean, self.with_std = opts.with_mean ~= false, opts.with_std ~= false
end

function StandardScaler:fit(X)
  X = check_input("StandardScaler:fit", X, 1):detach()
  local d = X:size(2)
  local m = col_mean(X)
  local mean = self.with_mean and m or f64_zeros(X, d)
  local std = dl.ones_like(m)
  if self.with_std then
    -- constant: a variance within rounding of 0 (scikit-learn's test, float64
    -- eps), not only exactly 0 (a mean 1 ulp off leaves ~1e-34)
    local var = col_var(X, m)
    local n, eps = X:size(1), 2.0 ^ -52
    local bound = var * (n * eps) + (m * (n * eps)) ^ 2
    std = dl.where(var:le(bound), dl.ones_like(var), var:sqrt())
  end
  self.mean, self.std = store(mean, X), store(std, X)
  self.n_features, self.dtype = d, X.dtype
  return self
end

function StandardScaler:transform(X)
  X = check_apply(self, "StandardScaler:transform", X)
  return (X - self.mean) / self.std
end

function StandardScaler:inverse_transform(Y)
  Y = check_apply(self, "StandardScaler:inverse_transform", Y)
  return Y * self.std + self.mean
end

StandardScaler.fit_transform = fit_transform

function StandardScaler:state_dict()
  return {mean = self.mean, std = self.std}
end

function StandardScaler:load_state_dict(sd)
  local fn = "StandardScaler:load_state_dict"
  check_state(fn, sd, {{"mean"}, {"std"}})
  if sd.mean:dim() ~= 1 or shape_str(sd.mean) ~= shape_str(sd.std) then
    error(fmt("%s: mean %s and std %s must be 1-D of one shape", fn, shape_str(sd.mean), shape_str(sd.std)), 2)
  end
  self.mean, self.std = sd.mean:clone(), sd.std:to(sd.mean.dtype):clone()
  self.n_features, self.dtype = sd.mean:size(1), sd.mean.dtype
  return self
end

---------------------------------------------------------------------------
-- ZCA whitening: with the covariance C = U diag(l) U^T (population, /N),
-- W = U diag(1 / sqrt(l + eps)) U^T and Y = (X - mean) W, so cov(Y) = I up
-- to eps while Y stays as close to X as a whitened set can be
---------------------------------------------------------------------------

local ZCA = class("ZCA")
P.ZCA = ZCA

function ZCA:init(opts)
  opts = check_options("dl.preprocessing.ZCA", opts, {eps = true})
  local eps = opts.eps or 1e-5
  if type(eps) ~= "number" or not (eps >= 0) then
    error(fmt("dl.preprocessing.ZCA: eps must be a number >= 0, got %s", tostring(eps)), 2)
  end
  self.eps = eps
end

function ZCA:fit(X)
  X = check_input("ZCA:fit", X, 1):detach()
  local mean = col_mean(X)
  local l, U = dl.linalg.eigh(scatter(X, mean) / X:size(1))
  l = l:clamp(0, math.huge) + self.eps
  if l:min():item() <= 0 then
    error("ZCA:fit: the covariance is singular; use eps > 0", 2)
  end
  self.mean = store(mean, X)
  self.whitening = store((U * l:rsqrt()):mm(U:t()), X)
  self.coloring = store((U * l:sqrt()):mm(U:t()), X)
  self.n_features, self.dtype = X:size(2), X.dtype
  return self
end

function ZCA:transform(X)
  X = check_apply(self, "ZCA:transform", X)
  return (X - self.mean):mm(self.whitening)
end

function ZCA:inverse_transform(Y)
  Y = check_apply(self, "ZCA:inverse_transform", Y)
  return Y:mm(self.coloring) + self.mean
end

ZCA.fit_transform = fit_transform

function ZCA:state_dict()
  return {mean = self.mean, whitening = self.whitening, coloring = self.coloring}
end

function ZCA:load_state_dict(sd)
  local fn = "ZCA:load_state_dict"
  check_state(fn, sd, {{"mean"}, {"whitening"}, {"coloring"}})
  local d = sd.mean:dim() == 1 and sd.mean:size(1) or -1
  local square = fmt("[%d,%d]", d, d)
  if d < 0 or shape_str(sd.whitening) ~= square or shape_str(sd.coloring) ~= square then
    error(fmt("%s: expected mean [D] and D x D matrices, got mean %s, whitening %s, coloring %s", fn,
      shape_str(sd.mean), shape_str(sd.whitening), shape_str(sd.coloring)), 2)
  end
  local dt = sd.mean.dtype
  self.mean, self.whitening, self.coloring = sd.mean:clone(), sd.whitening:to(dt):clone(), sd.coloring:to(dt):clone()
  self.n_features, self.dtype = d, dt
  return self
end

---------------------------------------------------------------------------
-- PCA: projection on the k leading eigenvectors of the sample covariance
-- (/ (N - 1)). components [k, D] (rows, in descending explained variance,
-- each signed so its largest-magnitude entry is positive),
-- explained_variance [k], explained_variance_ratio [k]. whiten divides
-- each projection by sqrt(explained_variance).
---------------------------------------------------------------------------

local PCA = class("PCA")
P.PCA = PCA

function PCA:init(k, opts)
  local fn = "dl.preprocessing.PCA"
  if type(k) == "table" and opts == nil then k, opts = k.k, k end
  opts = check_options(fn, opts, {k = true, n_components = true, whiten = true})
  k = k or opts.n_components
  if k ~= nil and (math.type(k) ~= "integer" or k < 1) then
    error(fmt("%s: bad argument #1 (k must be an integer >= 1, got %s)", fn, tostring(k)), 2)
  end
  self.k, self.whiten = k, opts.whiten == true
end

function PCA:fit(X)
  local fn = "PCA:fit"
  X = check_input(fn, X, 2):detach()
  local n, d = X:size(1), X:size(2)
  local k = self.k or d
  if k > d then error(fmt("%s: k = %d exceeds the %d features of shape %s", fn, k, d, shape_str(X)), 2) end
  local mean = col_mean(X)
  local l, U = dl.linalg.eigh(scatter(X, mean) / (n - 1))
  l = l:clamp(0, math.huge)
  local total = l:sum():item()
  l = l:flip(1):narrow(1, 1, k)
  local comps = U:flip(2):narrow(2, 1, k):t():contiguous()
  -- deterministic signs: the largest-magnitude entry of each component > 0
  local big = comps:gather(2, comps:abs():argmax(2):unsqueeze(2))
  comps = comps * dl.where(big:lt(0), -dl.ones_like(big), dl.ones_like(big))
  self.mean = store(mean, X)
  self.components = store(comps, X)
  self.explained_variance = store(l, X)
  self.explained_variance_ratio = store(total > 0 and l / total or dl.zeros_like(l), X)
  self.n_features, self.n_components, self.dtype = d, k, X.dtype
  self:_derive()
  return self
end

function PCA:_derive()
  if self.whiten then
    local ev = self.explained_variance
    local s = ev:sqrt()
    self._scale = dl.where(s:eq(0), dl.ones_like(s), s)
  else
    self._scale = nil
  end
end

function PCA:transform(X)
  X = check_apply(self, "PCA:transform", X)
  local Z = (X - self.mean):mm(self.components:t())
  if self._scale then Z = Z / self._scale end
  return Z
end

function PCA:inverse_transform(Z)
  Z = check_apply(self, "PCA:inverse_transform", Z, self.n_components)
  if self._scale then Z = Z * self._scale end
  return Z:mm(self.components) + self.mean
end

PCA.fit_transform = fit_transform

function PCA:state_dict()
  return {mean = self.mean, components = self.components, explained_variance = self.explained_variance,
    explained_variance_ratio = self.explained_variance_ratio}
end

function PCA:load_state_dict(sd)
  local fn = "PCA:load_state_dict"
  check_state(fn, sd, {{"mean"}, {"components"}, {"explained_variance"}, {"explained_variance_ratio"}})
  local c = sd.components
  local d = sd.mean:dim() == 1 and sd.mean:size(1) or -1
  local k = c:dim() == 2 and c:size(1) or -1
  if d < 0 or k < 0 or c:size(2) ~= d or shape_str(sd.explained_variance) ~= fmt("[%d]", k)
      or shape_str(sd.explained_variance_ratio) ~= fmt("[%d]", k) then
    error(fmt("%s: expected mean [D], components [k,D] and variances [k], got mean %s, components %s, "
      .. "explained_variance %s, explained_variance_ratio %s", fn, shape_str(sd.mean), shape_str(c),
      shape_str(sd.explained_variance), shape_str(sd.explained_variance_ratio)), 2)
  end
  if self.k and self.k ~= k then
    error(fmt("%s: this PCA keeps %d components but the state has %d", fn, self.k, k), 2)
  end
  local dt = sd.mean.dtype
  self.mean, self.components = sd.mean:clone(), c:to(dt):clone()
  self.explained_variance = sd.explained_variance:to(dt):clone()
  self.explained_variance_ratio = sd.explained_variance_ratio:to(dt):clone()
  self.n_features, self.n_components, self.dtype = d, k, dt
  self:_derive()
  return self
end

-- also under dl.data (dlua.data is loaded first)
if type(dl.data) == "table" then
  for name, cls in pairs(P) do dl.data[name] = cls end
end

return P
