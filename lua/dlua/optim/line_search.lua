-- dlua.optim.line_search: what L-BFGS and CG share. The strong-Wolfe line
-- search and cubic interpolation are ported from PyTorch 1.13's
-- torch/optim/lbfgs.py (itself from torch/optim's lswolfe.lua and
-- polyinterp.lua), branch for branch, so trajectories match PyTorch's. The
-- flat-vector helpers view all parameters of a group as one vector.
-- Scalars (losses, dot products, step sizes) are Lua numbers (doubles).
local dl = require "dlua"

local M = {}

local abs, sqrt, min, max = math.abs, math.sqrt, math.min, math.max
local fmt = string.format

-- ---- parameters as one flat vector ----

-- the gradients of all params as one new vector (zeros where grad is nil)
function M.gather_flat_grad(params)
  local views = {}
  for i, p in ipairs(params) do
    local g = p.grad
    if g == nil then
      views[i] = dl.zeros(p:numel(), {dtype = p.dtype, device = p.device})
    else
      views[i] = g:reshape(-1)
    end
  end
  return dl.cat(views, 1)
end

-- params += step * update (update is a flat vector); run under no_grad
function M.add_grad(params, step, update)
  local offset = 1
  for _, p in ipairs(params) do
    local n = p:numel()
    p:add_(update:narrow(1, offset, n):view_as(p), {alpha = step})
    offset = offset + n
  end
end

function M.clone_params(params)
  local out = {}
  for i, p in ipairs(params) do out[i] = p:clone() end
  return out
end

function M.set_params(params, data)
  for i, p in ipairs(params) do p:copy_(data[i]) end
end

-- the loss a closure returned, as a number
-- largest absolute entry (the infinity norm) as a Lua number
function M.amax(t) return t:abs():max():item() end

-- the optimiser's global state (kept with the first parameter, as PyTorch)
function M.global_state(self)
  local key = self._params[1]
  local state = self.state[key]
  if state == nil then
    state = {func_evals = 0, n_iter = 0}
    self.state[key] = state
  end
  return state
end

function M.loss_value(fn, loss)
  if type(loss) == "number" then return loss end
  if dl.is_tensor(loss) and loss:numel() == 1 then return loss:item() end
  dl.optim._error(fmt("%s: the closure must return the loss (a one-element tensor or a number), got %s", fn,
    dl.is_tensor(loss) and "a tensor of " .. loss:numel() .. " elements" or type(loss)))
end

-- the closure runs with grad mode on, even inside the optimiser's no_grad
function M.evaluate(fn, closure)
  local loss = dl.enable_grad(closure)
  return loss, M.loss_value(fn, loss)
end

-- f and flat gradient at x + t*d; the parameters are restored to x after
function M.directional_evaluate(fn, params, closure, x, t, d)
  M.add_grad(params, t, d)
  local _, loss = M.evaluate(fn, closure)
  local flat_grad = M.gather_flat_grad(params)
  M.set_params(params, x)
  return loss, flat_grad
end

-- ---- line search ----

-- minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to
-- bounds (default: between the two points); midpoint when there is none
function M.cubic_interpolate(x1, f1, g1, x2, f2, g2, bmin, bmax)
  local xmin_bound, xmax_bound
  if bmin ~= nil then
    xmin_bound, xmax_bound = bmin, bmax
  elseif x1 <= x2 then
    xmin_bound, xmax_bound = x1, x2
  else
    xmin_bound, xmax_bound = x2, x1
  end
  local d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
  local d2_square = d1 ^ 2 - g1 * g2
  if d2_square >= 0 then
    local d2 = sqrt(d2_square)
    local min_pos
    if x1 <= x2 then
      min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else
      min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    end
    return min(max(min_pos, xmin_bound), xmax_bound)
  end
  return (xmin_bound + xmax_bound) / 2
end

local function bmax2(b) return max(b[1], b[2]) end
local function bmin2(b) return min(b[1], b[2]) end

-- Strong-Wolfe line search along d from x (step t, loss f, flat gradient g,
-- directional derivative gtd = g.d). obj_func(x, t, d) -> f_new, g_new.
-- Returns f_new, g_new, t, number of evaluations.
function M.strong_wolfe(obj_func, x, t, d, f, g, gtd, c1, c2, tolerance_change, max_ls)
  c1 = c1 or 1e-4
  c2 = c2 or 0.9
  tolerance_change = tolerance_change or 1e-9
  max_ls = max_ls or 25
  local d_norm = d:abs():max():item()
  g = g:clone()
  local f_new, g_new = obj_func(x, t, d)
  local ls_func_evals = 1
  local gtd_new = g_new:dot(d):item()

  -- bracket an interval containing a point satisfying the Wolfe criteria
  local t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
  local done = false
  local ls_iter = 0
  local bracket, bracket_f, bracket_g, bracket_gtd
  while ls_iter < max_ls do
    -- no sufficient decrease: the minimum is bracketed by [t_prev, t]
    local overshot = f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev)
    if not overshot and abs(gtd_new) <= -c2 * gtd then -- the strong Wolfe conditions hold
      bracket, bracket_f, bracket_g = {t}, {f_new}, {g_new}
      done = true
      break
    end
    if overshot or gtd_new >= 0 then
      bracket = {t_prev, t}
      bracket_f = {f_prev, f_new}
      bracket_g = {g_prev, g_new:clone()}
      bracket_gtd = {gtd_prev, gtd_new}
      break
    end
    -- interpolate
    local min_step = t + 0.01 * (t - t_prev)
    local max_step = t * 10
    local tmp = t
    t = M.cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, min_step, max_step)
    -- next step
    t_prev = tmp
    f_prev = f_new
    g_prev = g_new:clone()
    gtd_prev = gtd_new
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = ls_func_evals + 1
    gtd_new = g_new:dot(d):item()
    ls_iter = ls_iter + 1
  end

  -- reached max number of iterations?
  if ls_iter == max_ls then
    bracket, bracket_f, bracket_g = {0, t}, {f, f_new}, {g, g_new}
  end

  -- zoom phase: refine the bracket until a point satisfies the criteria
  local insuf_progress = false
  local low_pos, high_pos
  if bracket_f[1] <= bracket_f[#bracket_f] then low_pos, high_pos = 1, 2 else low_pos, high_pos = 2, 1 end
  while not done and ls_iter < max_ls do
    -- line-search bracket is so small
    if abs(bracket[2] - bracket[1]) * d_norm < tolerance_change then break end

    t = M.cubic_interpolate(bracket[1], bracket_f[1], bracket_gtd[1], bracket[2], bracket_f[2], bracket_gtd[2])

    -- insufficient progress near a boundary: move 0.1 * len(bracket) away
    local hi, lo = bmax2(bracket), bmin2(bracket)
    local eps = 0.1 * (hi - lo)
    if min(hi - t, t - lo) < eps then
      if insuf_progress or t >= hi or t <= lo then
        if abs(t - hi) < abs(t - lo) then t = hi - eps else t = lo + eps end
        insuf_progress = false
      else
        insuf_progress = true
      end
    else
      insuf_progress = false
    end

    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = ls_func_evals + 1
    gtd_new = g_new:dot(d):item()
    ls_iter = ls_iter + 1

    if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos] then
      -- Armijo condition not satisfied or not lower than lowest point
      bracket[high_pos] = t
      bracket_f[high_pos] = f_new
      bracket_g[high_pos] = g_new:clone()
      bracket_gtd[high_pos] = gtd_new
      if bracket_f[1] <= bracket_f[2] then low_pos, high_pos = 1, 2 else low_pos, high_pos = 2, 1 end
    else
      if abs(gtd_new) <= -c2 * gtd then
        done = true -- Wolfe conditions satisfied
      elseif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0 then
        -- old high becomes new low
        bracket[high_pos] = bracket[low_pos]
        bracket_f[high_pos] = bracket_f[low_pos]
        bracket_g[high_pos] = bracket_g[low_pos]
        bracket_gtd[high_pos] = bracket_gtd[low_pos]
      end
      -- new point becomes new low
      bracket[low_pos] = t
      bracket_f[low_pos] = f_new
      bracket_g[low_pos] = g_new:clone()
      bracket_gtd[low_pos] = gtd_new
    end
  end

  return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
end

-- The line search's end point must be finite before the parameters move
-- there. A closure whose loss changes between calls (new minibatches each
-- call, dropout) breaks the search's bracketing: the trial step grows
-- tenfold per iteration until the loss or gradient is inf or NaN, and every
-- parameter would become NaN. The error leaves the parameters as they were
-- before this iteration.
function M.check_finite_step(fn, t, f, g)
  if t == t and abs(t) < math.huge and f == f and abs(f) < math.huge and g:isfinite():all():item() then return end
  dl.optim._error(fmt("%s: the line search ended at a non-finite point (step %s, loss %s); the parameters keep "
    .. "their values from before this iteration. Either the loss is not finite along the search direction, or "
    .. "the closure's loss changes from call to call (a new minibatch each call, dropout), which breaks the "
    .. "line search: give the closure fixed data, or use SGD or Adam",
    fn, tostring(t), tostring(f)))
end

-- ---- the optimiser face shared by LBFGS and CG ----

-- M.class(name, defaults, types, nonneg, validate): a subclass of
-- dl.optim.Optimizer with one param group only (as PyTorch's LBFGS), whose
-- options are checked against `types` (key -> Lua type; keys may have no
-- default, e.g. line_search_fn), `nonneg` (keys that must be >= 0) and
-- validate(name, group). The global state lives with the first parameter,
-- as PyTorch's: state_dict().state[1].
-- deep copy of a state value: tensors cloned (cast like `like` when given)
local function copy_value(v, like)
  if dl.is_tensor(v) then
    v = v:detach()
    if like then v = v:to(like.dtype):to(like.device) end
    return v:clone()
  elseif type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = copy_value(x, like) end
    return out
  end
  return v
end

function M.class(name, defaults, types, nonneg, validate)
  local Optimizer = dl.optim.Optimizer
  local raise = dl.optim._error
  local C = Optimizer:extend(name)
  local full = "dl.optim." .. name

  local function check(group, skip_params)
    for k, v in pairs(group) do
      if not (skip_params and k == "params") then
        local want = types[k]
        if want == nil then raise(require("dlua.checks").unknown_option(full, k, types)) end
        if type(v) ~= want then raise(fmt("%s: option '%s' must be a %s, got %s", full, k, want, type(v))) end
        if want == "number" and (v ~= v or (nonneg[k] and v < 0)) then
          raise(fmt("%s: invalid %s: %s (must be >= 0)", full, k, tostring(v)))
        end
      end
    end
  end

  function C:init(params, opts)
    -- PyTorch's positional learning rate: LBFGS(params, 1)
    if type(opts) == "number" and types.lr ~= nil then opts = {lr = opts} end
    if opts ~= nil and type(opts) ~= "table" then
      raise(fmt("%s: options must be a table, got %s", full, type(opts)))
    end
    check(opts or {}, false)
    local o = {}
    for k, v in pairs(defaults) do o[k] = v end
    for k, v in pairs(opts or {}) do o[k] = v end
    if validate then validate(full, o) end
    Optimizer.init(self, params, o)
    self._params = self.param_groups[1].params
  end

  function C:_check_group(group)
    check(group, true)
    for k, v in pairs(self.defaults) do
      if group[k] == nil then group[k] = v end
    end
    if validate then validate(full, group) end
  end

  function C:add_param_group(group)
    if #self.param_groups >= 1 then
      raise(fmt("%s: doesn't support per-parameter options (parameter groups)", full))
    end
    return Optimizer.add_param_group(self, group)
  end

  -- groups are checked by the base; the state holds flat vectors (cast to
  -- the first parameter's dtype and device)
  function C:load_state_dict(sd)
    if type(sd) ~= "table" or type(sd.state) ~= "table" then
      raise(fmt("%s: load_state_dict expects a table {state = ..., param_groups = ...}", full))
    end
    Optimizer.load_state_dict(self, {state = {}, param_groups = sd.param_groups})
    self._params = self.param_groups[1].params
    local p1 = self._params[1]
    local s = sd.state[1]
    if s ~= nil and type(s) ~= "table" then raise(fmt("%s: state of parameter 1 is not a table", full)) end
    self.state = {}
    if s ~= nil then self.state[p1] = copy_value(s, p1) end
    return self
  end

  -- opt:step(closure) -> the loss of the first closure evaluation; the
  -- algorithm is C._step(self, closure), run without recording
  function C:step(closure)
    if type(closure) ~= "function" then
      raise(fmt("%s:step: bad argument #1 (closure function expected, got %s)", full, type(closure)))
    end
    return dl.no_grad(self._step, self, closure)
  end

  return C
end

return M
