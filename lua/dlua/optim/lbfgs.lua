-- dl.optim.LBFGS: limited-memory BFGS over all parameters viewed as one
-- flat vector, a port of PyTorch 1.13's torch/optim/lbfgs.py (two-loop
-- recursion, history_size, tolerance_grad / tolerance_change, max_iter,
-- max_eval, optional strong-Wolfe line search), so trajectories match.
-- Driven by opt:step(closure); the closure zeroes the gradients, computes
-- the loss, calls backward and returns the loss. Vector work is tensor ops
-- (dot, add_ with alpha); scalars are Lua numbers.
local dl = require "dlua"
local LS = require "dlua.optim.line_search"

local optim = dl.optim

local defaults = {
  lr = 1, max_iter = 20, tolerance_grad = 1e-7, tolerance_change = 1e-9, history_size = 100,
}
local types = {
  lr = "number", max_iter = "number", max_eval = "number", tolerance_grad = "number",
  tolerance_change = "number", history_size = "number", line_search_fn = "string",
}
local nonneg = {lr = true, max_iter = true, max_eval = true, tolerance_grad = true, tolerance_change = true,
                history_size = true}

local function check_int(fn, g, k, lo)
  local v = g[k]
  if v ~= math.floor(v) or v < lo then
    optim._error(string.format("%s: invalid %s: %s (an integer >= %d expected)", fn, k, tostring(v), lo))
  end
end

local function validate(fn, g)
  -- max_eval defaults to max_iter * 5 // 4, as PyTorch's
  if g.max_eval == nil then g.max_eval = g.max_iter * 5 // 4 end
  check_int(fn, g, "max_iter", 1)
  check_int(fn, g, "max_eval", 1)
  check_int(fn, g, "history_size", 1)
  if g.line_search_fn ~= nil and g.line_search_fn ~= "strong_wolfe" then
    optim._error(string.format("%s: invalid line_search_fn: '%s' (only 'strong_wolfe' is supported)",
      fn, g.line_search_fn))
  end
end

-- dl.optim.LBFGS(params, {lr = 1, max_iter = 20, max_eval = max_iter * 5 // 4,
--   tolerance_grad = 1e-7, tolerance_change = 1e-9, history_size = 100,
--   line_search_fn = nil | "strong_wolfe"}); one param group only.
local LBFGS = LS.class("LBFGS", defaults, types, nonneg, validate)

local amax = LS.amax

local function step(self, closure)
  local fn = "dl.optim.LBFGS:step"
  local params = self._params
  local group = self.param_groups[1]
  local lr = group.lr
  local max_iter = group.max_iter
  local max_eval = group.max_eval
  local tolerance_grad = group.tolerance_grad
  local tolerance_change = group.tolerance_change
  local line_search_fn = group.line_search_fn
  local history_size = group.history_size

  -- LBFGS has only global state, kept with the first parameter (as PyTorch)
  local state = LS.global_state(self)

  -- evaluate initial f(x) and df/dx
  local orig_loss, loss = LS.evaluate(fn, closure)
  local current_evals = 1
  state.func_evals = state.func_evals + 1

  local flat_grad = LS.gather_flat_grad(params)
  local opt_cond = amax(flat_grad) <= tolerance_grad
  if opt_cond then return orig_loss end

  local d, t = state.d, state.t
  local old_dirs, old_stps, ro = state.old_dirs, state.old_stps, state.ro
  local H_diag = state.H_diag
  local prev_flat_grad, prev_loss = state.prev_flat_grad, state.prev_loss

  local function obj_func(x, tt, dd)
    return LS.directional_evaluate(fn, params, closure, x, tt, dd)
  end

  local n_iter = 0
  while n_iter < max_iter do
    n_iter = n_iter + 1
    state.n_iter = state.n_iter + 1

    -- compute the descent direction
    if state.n_iter == 1 then
      d = flat_grad:neg()
      old_dirs, old_stps, ro = {}, {}, {}
      H_diag = 1
    else
      -- update the memory
      local y = flat_grad:sub(prev_flat_grad)
      local s = d:mul(t)
      local ys = y:dot(s):item()
      if ys > 1e-10 then
        if #old_dirs == history_size then
          -- shift history by one (limited memory)
          table.remove(old_dirs, 1)
          table.remove(old_stps, 1)
          table.remove(ro, 1)
        end
        old_dirs[#old_dirs + 1] = y
        old_stps[#old_stps + 1] = s
        ro[#ro + 1] = 1 / ys
        -- scale of the initial Hessian approximation
        H_diag = ys / y:dot(y):item()
      end

      -- two-loop recursion: approximate inverse Hessian times -gradient
      local num_old = #old_dirs
      local al = state.al
      if al == nil then
        al = {}
        state.al = al
      end
      local q = flat_grad:neg()
      for i = num_old, 1, -1 do
        al[i] = old_stps[i]:dot(q):item() * ro[i]
        q:add_(old_dirs[i], {alpha = -al[i]})
      end
      -- multiply by the initial Hessian; r is the final direction
      local r = q:mul(H_diag)
      d = r
      for i = 1, num_old do
        local be_i = old_dirs[i]:dot(r):item() * ro[i]
        r:add_(old_stps[i], {alpha = al[i] - be_i})
      end
    end

    if prev_flat_grad == nil then
      prev_flat_grad = flat_grad:clone()
    else
      prev_flat_grad:copy_(flat_grad)
    end
    prev_loss = loss

    -- step length: reset the initial guess
    if state.n_iter == 1 then
      t = math.min(1, 1 / flat_grad:abs():sum():item()) * lr
    else
      t = lr
    end

    -- directional derivative
    local gtd = flat_grad:dot(d):item()
    -- below tolerance
    if gtd > -tolerance_change then break end

    local ls_func_evals = 0
    if line_search_fn ~= nil then
      local x_init = LS.clone_params(params)
      loss, flat_grad, t, ls_func_evals = LS.strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd)
      LS.check_finite_step(fn, t, loss, flat_grad)
      LS.add_grad(params, t, d)
      opt_cond = amax(flat_grad) <= tolerance_grad
    else
      -- no line search: a fixed step
      LS.add_grad(params, t, d)
      if n_iter ~= max_iter then
        -- re-evaluate only if not in the last iteration (no use in a
        -- stochastic setting)
        local _
        _, loss = LS.evaluate(fn, closure)
        flat_grad = LS.gather_flat_grad(params)
        opt_cond = amax(flat_grad) <= tolerance_grad
        ls_func_evals = 1
      end
    end

    current_evals = current_evals + ls_func_evals
    state.func_evals = state.func_evals + ls_func_evals

    -- check conditions
    if n_iter == max_iter then break end
    if current_evals >= max_eval then break end
    if opt_cond then break end
    -- lack of progress
    if amax(d:mul(t)) <= tolerance_change then break end
    if math.abs(loss - prev_loss) < tolerance_change then break end
  end

  state.d = d
  state.t = t
  state.old_dirs = old_dirs
  state.old_stps = old_stps
  state.ro = ro
  state.H_diag = H_diag
  state.prev_flat_grad = prev_flat_grad
  state.prev_loss = prev_loss

  return orig_loss
end

LBFGS._step = step

optim.LBFGS = LBFGS
return optim
