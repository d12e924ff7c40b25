-- dl.optim.CG: nonlinear conjugate gradient over all parameters viewed as
-- one flat vector. Directions are Polak-Ribiere+:
--   d = -g + beta * d_prev,  beta = max(0, g.(g - g_prev) / g_prev.g_prev),
-- restarted with steepest descent (d = -g) every `restart` iterations
-- (default: the number of parameter elements) and whenever d is not a
-- descent direction (g.d >= 0). Each step length comes from the strong-Wolfe
-- line search shared with LBFGS (c1 = 1e-4, c2 = 0.1, the usual curvature
-- constant for CG). The first trial step is min(1, 1/|g|_1) * lr, later ones
-- t_prev * (g_prev.d_prev) / (g.d) (Nocedal & Wright, 3.60), so the search
-- starts at the scale the previous one found. Driven by opt:step(closure)
-- like LBFGS; the state carries over between step calls.
local dl = require "dlua"
local LS = require "dlua.optim.line_search"

local optim = dl.optim

local defaults = {lr = 1, max_iter = 20, tolerance_grad = 1e-7, tolerance_change = 1e-9}
local types = {
  lr = "number", max_iter = "number", tolerance_grad = "number", tolerance_change = "number",
  restart = "number",
}
local nonneg = {lr = true, max_iter = true, tolerance_grad = true, tolerance_change = true, restart = true}

local C1, C2 = 1e-4, 0.1

local function validate(fn, g)
  for _, k in ipairs({"max_iter", "restart"}) do
    local v = g[k]
    if v ~= nil and (v ~= math.floor(v) or v < 1) then
      optim._error(string.format("%s: invalid %s: %s (an integer >= 1 expected)", fn, k, tostring(v)))
    end
  end
end

-- dl.optim.CG(params, {lr = 1, max_iter = 20, tolerance_grad = 1e-7,
--   tolerance_change = 1e-9, restart = number of parameter elements});
-- one param group only.
local CG = LS.class("CG", defaults, types, nonneg, validate)

local amax = LS.amax

local function step(self, closure)
  local fn = "dl.optim.CG:step"
  local params = self._params
  local group = self.param_groups[1]
  local lr = group.lr
  local max_iter = group.max_iter
  local tolerance_grad = group.tolerance_grad
  local tolerance_change = group.tolerance_change

  local state = LS.global_state(self)

  local orig_loss, loss = LS.evaluate(fn, closure)
  state.func_evals = state.func_evals + 1
  local flat_grad = LS.gather_flat_grad(params)
  if amax(flat_grad) <= tolerance_grad then return orig_loss end

  local restart = group.restart or flat_grad:numel()
  local d, t, prev_gtd = state.d, state.t, state.prev_gtd
  local prev_flat_grad = state.prev_flat_grad
  local since_restart = state.since_restart or 0

  local function obj_func(x, tt, dd)
    return LS.directional_evaluate(fn, params, closure, x, tt, dd)
  end

  local n_iter = 0
  while n_iter < max_iter do
    n_iter = n_iter + 1
    state.n_iter = state.n_iter + 1

    -- search direction
    local restarted = d == nil or since_restart >= restart
    if not restarted then
      local y = flat_grad:sub(prev_flat_grad)
      local beta = math.max(0, flat_grad:dot(y):item() / prev_flat_grad:dot(prev_flat_grad):item())
      d = flat_grad:neg():add_(d, {alpha = beta})
      -- not a descent direction: restart
      if not (flat_grad:dot(d):item() < 0) then restarted = true end
    end
    if restarted then
      d = flat_grad:neg()
      since_restart = 0
    end
    since_restart = since_restart + 1

    local gtd = flat_grad:dot(d):item()
    if gtd > -tolerance_change then
      d = nil -- no usable direction: the next step starts afresh
      break
    end

    -- initial trial step
    if t == nil or prev_gtd == nil then
      t = math.min(1, 1 / flat_grad:abs():sum():item()) * lr
    else
      t = t * prev_gtd / gtd
    end

    prev_flat_grad = flat_grad
    local prev_loss = loss
    prev_gtd = gtd

    local x_init = LS.clone_params(params)
    local ls_func_evals
    loss, flat_grad, t, ls_func_evals = LS.strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
      C1, C2, tolerance_change)
    LS.check_finite_step(fn, t, loss, flat_grad)
    LS.add_grad(params, t, d)
    state.func_evals = state.func_evals + ls_func_evals

    -- check conditions
    if amax(flat_grad) <= tolerance_grad then break end
    if amax(d:mul(t)) <= tolerance_change then break end
    if math.abs(loss - prev_loss) < tolerance_change then break end
  end

  state.d = d
  state.t = t
  state.prev_gtd = prev_gtd
  state.prev_flat_grad = prev_flat_grad
  state.since_restart = since_restart
  return orig_loss
end

CG._step = step

optim.CG = CG
return optim
