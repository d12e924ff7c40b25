-- scripts/seed/linear_regression.lua — the seed lecture's gradient-descent
-- experiment on a one-variable linear regression.
--
-- Data: N = 30 points, x ~ U(0, 10), y = 3x + 2 + U(-0.1, 0.1). The model is
-- h(x) = theta[1] + theta[2] * x (theta = [intercept, slope], as the seed
-- orders it), started at theta0 = [10, 5] and fitted by full-batch steps on the
-- mean squared error with lr = 0.005 for every optimiser: SGD, SGD with
-- momentum 0.6, Nesterov momentum 0.8, Adagrad, RMSprop and Adam. The whole
-- comparison runs twice: on raw x and on z-scored x (theta then lives in the
-- z-scored coordinates; the table converts it back to intercept/slope on x).
--
-- What to expect: the least-squares answer is theta ~ [1.99, 3.00]. On raw x
-- the problem is ill-conditioned (x has mean 5 and spread 3): SGD and the
-- momentum variants first fix the slope, then creep along the intercept
-- (momentum/Nesterov get there much faster), all converging within the 5,000
-- steps. Adagrad, RMSprop and Adam move each coordinate by about lr per step,
-- so with lr = 0.005 they need ~1,600 steps just to travel from 10 to 2:
-- RMSprop gets there, Adam is still on its way on raw x, and Adagrad, whose
-- steps shrink, stays far away (theta ~ [9.3, 4.3]). z-scoring x decouples the
-- two coordinates and every method but Adagrad converges; the momentum methods
-- converge in far fewer steps. Plots: loss vs step (log scale) per optimiser,
-- one for raw x and one for z-scored x, and the raw-x trajectories of theta in
-- the (intercept, slope) plane.
--
--   dlua scripts/seed/linear_regression.lua [--quick] [--out DIR] [--steps T]
local dl = require "dlua"
local optim = dl.optim

-- the shared command line (scripts/seed/seed_cli.lua)
package.path = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local O = require("seed_cli").options("linear_regression", {"steps"})
local T = O.steps or (O.quick and 300 or 5000)
local N, LR = 30, 0.005

-- data (float64 so the table shows the optimisers, not rounding)
dl.manual_seed(0)
local x = dl.rand({N}, {dtype = "float64"}) * 10
local y = x * 3 + 2 + (dl.rand({N}, {dtype = "float64"}) * 0.2 - 0.1)
local mu, sigma = x:mean():item(), x:std():item()
local xz = (x - mu) / sigma

-- closed-form least squares for reference
local function lstsq(xs)
  local mx, my = xs:mean():item(), y:mean():item()
  local slope = ((xs - mx) * (y - my)):sum():item() / ((xs - mx) ^ 2):sum():item()
  return my - slope * mx, slope
end

local optimisers = {
  {"SGD", function(p) return optim.SGD(p, {lr = LR}) end},
  {"SGD momentum 0.6", function(p) return optim.SGD(p, {lr = LR, momentum = 0.6}) end},
  {"Nesterov 0.8", function(p) return optim.SGD(p, {lr = LR, momentum = 0.8, nesterov = true}) end},
  {"Adagrad", function(p) return optim.Adagrad(p, {lr = LR}) end},
  {"RMSprop", function(p) return optim.RMSprop(p, {lr = LR}) end},
  {"Adam", function(p) return optim.Adam(p, {lr = LR}) end},
}

-- T full-batch steps from theta0; returns final theta and the loss per step
local function fit(make, xs)
  local theta = dl.tensor({10, 5}, {dtype = "float64", requires_grad = true})
  local opt = make({theta})
  local losses, path_b, path_w = {}, {10}, {5}
  for step = 1, T do
    local loss = ((theta[1] + theta[2] * xs - y) ^ 2):mean()
    opt:zero_grad()
    loss:backward()
    opt:step()
    losses[step] = loss:item()
    path_b[step + 1], path_w[step + 1] = theta:get(1), theta:get(2)
  end
  local final = dl.no_grad(function() return ((theta[1] + theta[2] * xs - y) ^ 2):mean():item() end)
  return theta:get(1), theta:get(2), final, losses, {x = path_b, y = path_w}
end

local rows, curves, paths = {}, {raw = {}, z = {}}, {}
for k, o in ipairs(optimisers) do
  local name, make = o[1], o[2]
  local b, w, l, ls, path = fit(make, x)
  local bz, wz, lz, lsz = fit(make, xz)
  -- back to x's units: wz * (x - mu) / sigma + bz
  rows[k] = {name, b, w, l, bz - wz * mu / sigma, wz / sigma, lz}
  curves.raw[k] = {name = name, y = ls}
  curves.z[k] = {name = name, y = lsz}
  paths[k] = {name = name, x = path.x, y = path.y}
end

local b0, w0 = lstsq(x)
print(string.format("linear regression y = 3x + 2 + U(-0.1, 0.1), N = %d, theta0 = [10, 5], lr = %g, %d full-batch steps",
  N, LR, T))
print(string.format("least squares: theta = [%.4f, %.4f]   (theta = [intercept, slope]; z-scored columns converted back to x)",
  b0, w0))
print("")
local fmt = "%-18s %10s %10s %12s   %10s %10s %12s"
print(string.format(fmt, "optimiser", "raw b", "raw w", "raw loss", "z b", "z w", "z loss"))
for _, r in ipairs(rows) do
  print(string.format("%-18s %10.4f %10.4f %12.4e   %10.4f %10.4f %12.4e", table.unpack(r)))
end
print("")

local plots = {
  {curves.raw, O.out .. "/linear_regression_raw.png", "raw x"},
  {curves.z, O.out .. "/linear_regression_zscored.png", "z-scored x"},
}
if dl.plot and dl.plot.lines then
  for _, p in ipairs(plots) do
    dl.plot.lines(p[1], {file = p[2], title = "linear regression, " .. p[3] .. ", lr " .. LR,
      xlabel = "step", ylabel = "MSE", logy = true})
    print("plot: " .. p[2])
  end
  -- the trajectories themselves, in the (intercept, slope) plane, raw x
  local file = O.out .. "/linear_regression_paths.png"
  dl.plot.lines(paths, {file = file, title = "theta trajectories from [10, 5], raw x, lr " .. LR,
    xlabel = "theta1 (intercept)", ylabel = "theta2 (slope)"})
  print("plot: " .. file)
else
  print("note: dl.plot.lines is not available, no plot written")
end
