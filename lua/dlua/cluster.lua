-- dlua.cluster: k-means and the placement of RBF centres.
--   local centers, labels, inertia, n_iter = dl.cluster.kmeans(X, k,
--     {init = "k-means++" | "random", iters = 100, tol = 1e-4, seed, n_init = 1})
--   dl.cluster.rbf_init(rbf, X, {kmeans options..., scale = 1 / sqrt(2)})
--
-- X is [N, D] (one sample per row). centers [k, D] in X's float dtype,
-- labels int64 [N] holding 1-based cluster indices, inertia the sum of
-- squared distances to the assigned centres (a Lua number), n_iter the
-- Lloyd iterations of the returned run.
--
-- Seeding: "k-means++" (Arthur & Vassilvitskii, 2007): the first centre is
-- a uniformly drawn sample, each next one a sample drawn with probability
-- proportional to its squared distance to the nearest centre chosen so far;
-- "random": k distinct samples drawn uniformly. Draws come from the dlua
-- generator; with `seed` the generator is seeded for the call and its state
-- restored afterwards, so the global stream is not disturbed.
-- Lloyd iterations: squared distances as |x|^2 - 2 x.c + |c|^2, one matmul
-- per iteration; new centres as per-cluster means (one GEMM with the
-- one-hot assignments, or a scatter_add when N x k is large); an
-- emptied cluster takes the sample farthest from its centre. Stops after
-- `iters` iterations or when the centres move by at most tol times the mean
-- feature variance (summed squared shift), as scikit-learn.
local dl = require "dlua"

local C = {}
dl.cluster = C

local fmt = string.format
local is_tensor = dl.is_tensor

local shape_str = require("dlua.checks").shape_str

local kmeans_allowed = {init = true, iters = true, tol = true, seed = true, n_init = true}

local function check_kmeans_opts(fn, opts, extra)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error(fmt("%s: bad argument #3 (options table expected, got %s)", fn, type(opts)), 3) end
  for key in pairs(opts) do
    if not kmeans_allowed[key] and not (extra and extra[key]) then
      error(require("dlua.checks").unknown_option(fn, key, kmeans_allowed, extra or {}), 3)
    end
  end
  local init = opts.init or "k-means++"
  if init ~= "k-means++" and init ~= "random" then
    error(fmt("%s: option 'init' must be \"k-means++\" or \"random\", got %s", fn, tostring(init)), 3)
  end
  local iters = opts.iters == nil and 100 or opts.iters
  if math.type(iters) ~= "integer" or iters < 0 then
    error(fmt("%s: option 'iters' must be an integer >= 0, got %s", fn, tostring(iters)), 3)
  end
  local tol = opts.tol == nil and 1e-4 or opts.tol
  if type(tol) ~= "number" or not (tol >= 0) then
    error(fmt("%s: option 'tol' must be a number >= 0, got %s", fn, tostring(tol)), 3)
  end
  local n_init = opts.n_init == nil and 1 or opts.n_init
  if math.type(n_init) ~= "integer" or n_init < 1 then
    error(fmt("%s: option 'n_init' must be an integer >= 1, got %s", fn, tostring(n_init)), 3)
  end
  if opts.seed ~= nil and math.type(opts.seed) ~= "integer" then
    error(fmt("%s: option 'seed' must be an integer, got %s", fn, tostring(opts.seed)), 3)
  end
  return {init = init, iters = iters, tol = tol, n_init = n_init, seed = opts.seed}
end

-- squared distances [N, k] from the rows of X to the rows of c: one matmul
local function sq_dist(X, xx, c)
  local cc = c:pow(2):sum(2)
  return dl.addmm(xx + cc:view(1, -1), X, c:t(), {alpha = -2}):clamp(0, math.huge)
end

-- uniform number in [0, 1) from the dlua generator
local function uniform()
  return dl.rand(1, {dtype = "float64"}):item()
end

-- k-means++ seeding: k row indices (1-based) of X
local function seed_plusplus(X, xx, k)
  local n = X:size(1)
  local idx = {math.min(n, 1 + math.floor(uniform() * n))}
  local d2 = sq_dist(X, xx, X:narrow(1, idx[1], 1)):view(-1)
  for j = 2, k do
    local total = d2:sum():item()
    local pick
    if total > 0 then
      -- first index whose cumulative weight exceeds u * total; cumsum in
      -- float64 so small weights are not lost
      local cum = d2:double():cumsum(1)
      local u = uniform() * cum:get(n)
      pick = math.min(n, cum:le(u):sum():item() + 1)
      while d2:get(pick) <= 0 and pick < n do pick = pick + 1 end -- never a chosen point
    else
      pick = math.min(n, 1 + math.floor(uniform() * n)) -- fewer distinct points than k
    end
    idx[j] = pick
    d2 = dl.minimum(d2, sq_dist(X, xx, X:narrow(1, pick, 1)):view(-1))
  end
  return idx
end

local function seed_random(X, k)
  local perm = dl.randperm(X:size(1)):narrow(1, 1, k)
  local idx = {}
  for j = 1, k do idx[j] = perm:get(j) end
  return idx
end

-- the N x k one-hot assignment matrix is used up to this many elements
-- (GEMM beats scatter_add), scatter_add above (a field so specs can test
-- both paths)
C._one_hot_limit = 1 << 24

-- one seeded Lloyd run -> centers, labels, inertia, n_iter
local function lloyd(X, xx, k, o, tol_abs)
  local n, d = X:size(1), X:size(2)
  local seeds = o.init == "random" and seed_random(X, k) or seed_plusplus(X, xx, k)
  local centers = X:index_select(1, dl.tensor(seeds, {dtype = "int64", device = X.device})):contiguous()
  local one_hot = n * k <= C._one_hot_limit
  local ones = not one_hot and dl.ones(n, {dtype = X.dtype, device = X.device}) or nil
  local n_iter = 0
  for it = 1, o.iters do
    local dist = sq_dist(X, xx, centers)
    local mind, labels = dist:min(2)
    local sums, counts
    if one_hot then
      -- per-cluster sums as one GEMM with the one-hot assignment matrix
      local oh = dl.one_hot(labels, k):to(X.dtype)
      sums, counts = oh:t():mm(X), oh:sum(1)
    else
      sums = dl.zeros(k, d, {dtype = X.dtype, device = X.device}):scatter_add(1, labels:view(n, 1):expand(n, d), X)
      counts = dl.zeros(k, {dtype = X.dtype, device = X.device}):scatter_add(1, labels, ones)
    end
    local new = sums / counts:clamp(1, math.huge):view(k, 1)
    if counts:eq(0):any():item() then
      -- an emptied cluster takes the sample farthest from its centre
      local far = mind:clone()
      for j = 1, k do
        if counts:get(j) == 0 then
          local p = far:argmax():item()
          new:select(1, j):copy_(X:select(1, p))
          far:set(p, -1)
        end
      end
    end
    local shift = (new - centers):pow(2):sum():item()
    centers = new
    n_iter = it
    if shift <= tol_abs then break end
  end
  local _, labels = sq_dist(X, xx, centers):min(2)
  -- exact inertia from the differences (the expanded form cancels)
  local inertia = (X - centers:index_select(1, labels)):pow(2):sum():item()
  return centers, labels, inertia, n_iter
end

-- runs fn with the generator seeded by seed (state restored), or plainly
local function with_seed(seed, fn, ...)
  if seed == nil then return fn(...) end
  local saved = dl.get_rng_state()
  dl.manual_seed(seed)
  local res = table.pack(pcall(fn, ...))
  dl.set_rng_state(saved)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

local function kmeans(fn, X, k, o)
  if not is_tensor(X) then error(fmt("%s: bad argument #1 (tensor expected, got %s)", fn, type(X)), 3) end
  if X:dim() ~= 2 then
    error(fmt("%s: expected X of shape [N, D] (one sample per row), got %s", fn, shape_str(X)), 3)
  end
  local n = X:size(1)
  if math.type(k) ~= "integer" or k < 1 then
    error(fmt("%s: bad argument #2 (k must be an integer >= 1, got %s)", fn, tostring(k)), 3)
  end
  if k > n then error(fmt("%s: k = %d exceeds the %d samples of X %s", fn, k, n, shape_str(X)), 3) end
  X = X:detach()
  if X.dtype ~= "float32" and X.dtype ~= "float64" then X = X:to("float32") end
  X = X:contiguous()
  if X:isnan():any():item() or X:isinf():any():item() then
    error(fmt("%s: X contains NaN or Inf", fn), 3)
  end
  local xx = X:pow(2):sum(2, true)
  local tol_abs = o.tol * X:var(1, {unbiased = false}):mean():item()
  return with_seed(o.seed, function()
    local best
    for _ = 1, o.n_init do
      local r = table.pack(lloyd(X, xx, k, o, tol_abs))
      if not best or r[3] < best[3] then best = r end
    end
    return best[1], best[2], best[3], best[4]
  end)
end

function C.kmeans(X, k, opts)
  local fn = "dl.cluster.kmeans"
  return kmeans(fn, X, k, check_kmeans_opts(fn, opts))
end

-- Places the centres of an nn.RBF layer by k-means++ on X (k = its
-- n_centers) and sets each width from the distance d_j of centre j to the
-- nearest other centre: sigma_j = scale * d_j, scale = 1 / sqrt(2) by
-- default, so a unit's response at the nearest other centre is
-- exp(-d_j^2 / (2 sigma_j^2)) = e^-1. With one centre, d is the RMS
-- distance of the samples to it; a zero distance (duplicate samples) falls
-- back to the smallest positive one, or 1. Returns rbf, centers, labels,
-- inertia.
function C.rbf_init(rbf, X, opts)
  local fn = "dl.cluster.rbf_init"
  if type(rbf) ~= "table" or not is_tensor(rbf.centers) or not is_tensor(rbf.sigmas) or not rbf.n_centers then
    error(fn .. ": bad argument #1 (nn.RBF module expected)", 2)
  end
  local o = check_kmeans_opts(fn, opts, {scale = true})
  local scale = opts and opts.scale or 1 / math.sqrt(2)
  if type(scale) ~= "number" or not (scale > 0) then
    error(fmt("%s: option 'scale' must be a number > 0, got %s", fn, tostring(scale)), 2)
  end
  if is_tensor(X) and X:dim() == 2 and X:size(2) ~= rbf.in_features then
    error(fmt("%s: the RBF layer takes %d features but X has shape %s", fn, rbf.in_features, shape_str(X)), 2)
  end
  local k = rbf.n_centers
  local centers, labels, inertia = kmeans(fn, X, k, o)
  local d
  if k == 1 then
    d = dl.full({1}, math.sqrt(inertia / X:size(1)), {dtype = centers.dtype})
  else
    local cc = centers:double()
    local dist = (cc:unsqueeze(2) - cc:unsqueeze(1)):pow(2):sum(3):sqrt()
    dist = dist:masked_fill(dl.eye(k, {dtype = "bool"}), math.huge)
    d = dist:min(2)
  end
  d = d:double()
  local pos = d:masked_select(d:gt(0):logical_and(d:isinf():logical_not()))
  local fallback = pos:numel() > 0 and pos:min():item() or 1
  d = dl.where(d:gt(0):logical_and(d:isinf():logical_not()), d, dl.full_like(d, fallback))
  rbf:set_centers(centers:to(rbf.centers.dtype))
  rbf:set_sigmas((d * scale):to(rbf.sigmas.dtype))
  return rbf, centers, labels, inertia
end

-- nn.RBF:init_kmeans(X, opts): the same as a method
if dl.nn and dl.nn.RBF then
  function dl.nn.RBF:init_kmeans(X, opts) return (C.rbf_init(self, X, opts)) end
end

return C
