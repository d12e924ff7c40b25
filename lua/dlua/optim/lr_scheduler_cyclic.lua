-- dlua.optim.lr_scheduler_cyclic: OneCycleLR and CyclicLR, the schedulers
-- that also cycle momentum (or Adam's beta1). Part of dl.optim.lr_scheduler.
local dl = require "dlua"
local B = require "dlua.optim.lr_scheduler_base"
local Scheduler = B.Scheduler
local base_init = B.base_init
local boolean = B.boolean
local choice = B.choice
local class = B.class
local fail = B.fail
local get_momentum = B.get_momentum
local integer = B.integer
local is_callable = B.is_callable
local momentum_kind = B.momentum_kind
local nonneg = B.nonneg
local number = B.number
local per_group = B.per_group
local positive = B.positive
local set_momentum = B.set_momentum
local show = B.show

local floor, cos, pi = math.floor, math.cos, math.pi

---------------------------------------------------------------------------
-- OneCycleLR
---------------------------------------------------------------------------

local OneCycleLR = class("OneCycleLR", Scheduler, {
  "max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start", "anneal_strategy",
  "cycle_momentum", "base_momentum", "max_momentum", "div_factor", "final_div_factor",
  "three_phase"})

function OneCycleLR:_init(a, groups)
  local name = "OneCycleLR"
  if a.max_lr == nil then fail("%s: option 'max_lr' is required", name) end
  if a.total_steps ~= nil then
    self.total_steps = integer(name, "total_steps", a.total_steps, 1)
  elseif a.epochs ~= nil and a.steps_per_epoch ~= nil then
    self.total_steps = integer(name, "epochs", a.epochs, 1)
                       * integer(name, "steps_per_epoch", a.steps_per_epoch, 1)
  else
    fail("%s: give option 'total_steps', or options 'epochs' and 'steps_per_epoch'", name)
  end
  local pct = number(name, "pct_start", a.pct_start or 0.3)
  if pct < 0 or pct > 1 then fail("%s: option 'pct_start' must be in [0, 1], got %s", name, show(pct)) end
  self.anneal_strategy = choice(name, "anneal_strategy", a.anneal_strategy or "cos", "cos", "linear")
  local three = a.three_phase
  if three == nil then three = false end
  boolean(name, "three_phase", three)
  local T = self.total_steps
  if three then
    self._schedule_phases = {
      {end_step = pct * T - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = 2 * pct * T - 2, start_lr = "max_lr", end_lr = "initial_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
      {end_step = T - 1, start_lr = "initial_lr", end_lr = "min_lr",
       start_momentum = "max_momentum", end_momentum = "max_momentum"},
    }
  else
    self._schedule_phases = {
      {end_step = pct * T - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = T - 1, start_lr = "max_lr", end_lr = "min_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
    }
  end
  local n = #groups
  local max_lrs = per_group(name, "max_lr", a.max_lr, n, nonneg)
  local div = positive(name, "div_factor", a.div_factor or 25.0)
  local final_div = positive(name, "final_div_factor", a.final_div_factor or 1e4)
  local last_epoch = a.last_epoch or -1
  if last_epoch == -1 then
    for i, g in ipairs(groups) do
      g.initial_lr = max_lrs[i] / div
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / final_div
    end
  end
  local cm = a.cycle_momentum
  if cm == nil then cm = true end
  self.cycle_momentum = boolean(name, "cycle_momentum", cm)
  self.use_beta1 = false
  if cm then
    local kind = momentum_kind(self.optimizer, groups)
    if not kind then
      fail("%s: option 'cycle_momentum' needs an optimizer with momentum or betas "
           .. "(set cycle_momentum = false)", name)
    end
    self.use_beta1 = kind == "betas"
    local maxm = per_group(name, "max_momentum", a.max_momentum or 0.95, n, nonneg)
    local basem = per_group(name, "base_momentum", a.base_momentum or 0.85, n, nonneg)
    if last_epoch == -1 then
      for i, g in ipairs(groups) do
        set_momentum(g, maxm[i], self.use_beta1)
        g.max_momentum = maxm[i]
        g.base_momentum = basem[i]
      end
    end
  else
    if a.max_momentum ~= nil then nonneg(name, "max_momentum", a.max_momentum) end
    if a.base_momentum ~= nil then nonneg(name, "base_momentum", a.base_momentum) end
  end
  if last_epoch ~= -1 then
    -- resuming: the groups must hold what the first construction stored
    local keys = cm and {"max_lr", "min_lr", "max_momentum", "base_momentum"} or {"max_lr", "min_lr"}
    for i, g in ipairs(groups) do
      for _, k in ipairs(keys) do
        if type(g[k]) ~= "number" then
          fail("%s: param_groups[%d] has no '%s', needed to resume with last_epoch = %s",
               name, i, k, tostring(last_epoch))
        end
      end
    end
  end
  base_init(self, a, groups)
end

local function anneal(strategy, start, stop, pct)
  if strategy == "cos" then
    local cos_out = cos(pi * pct) + 1
    return stop + (start - stop) / 2.0 * cos_out
  end
  return (stop - start) * pct + start
end

function OneCycleLR:_compute(out)
  local groups, step_num = self.optimizer.param_groups, self.last_epoch
  if step_num > self.total_steps then
    fail("OneCycleLR: tried to step %d times; total_steps is %d", step_num + 1, self.total_steps)
  end
  local phases, strategy = self._schedule_phases, self.anneal_strategy
  for i, g in ipairs(groups) do
    local start_step, lr, mom = 0, nil, nil
    for k, ph in ipairs(phases) do
      local end_step = ph.end_step
      if step_num <= end_step or k == #phases then
        if end_step == start_step then
          fail("OneCycleLR: phase %d of the schedule has no steps (pct_start * total_steps "
               .. "too small or pct_start = 1); total_steps is %d", k, self.total_steps)
        end
        local pct = (step_num - start_step) / (end_step - start_step)
        lr = anneal(strategy, g[ph.start_lr], g[ph.end_lr], pct)
        if self.cycle_momentum then
          mom = anneal(strategy, g[ph.start_momentum], g[ph.end_momentum], pct)
        end
        break
      end
      start_step = end_step
    end
    out[i] = lr
    if mom then set_momentum(g, mom, self.use_beta1) end
  end
  return #groups
end

---------------------------------------------------------------------------
-- CyclicLR
---------------------------------------------------------------------------

local CyclicLR = class("CyclicLR", Scheduler, {
  "base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma", "scale_fn",
  "scale_mode", "cycle_momentum", "base_momentum", "max_momentum"})

function CyclicLR:_init(a, groups)
  local name, n = "CyclicLR", #groups
  if a.base_lr == nil then fail("%s: option 'base_lr' is required", name) end
  if a.max_lr == nil then fail("%s: option 'max_lr' is required", name) end
  local base_lrs = per_group(name, "base_lr", a.base_lr, n, nonneg)
  local last_epoch = a.last_epoch or -1
  if last_epoch == -1 then
    for i, g in ipairs(groups) do g.lr = base_lrs[i] end
  end
  self.max_lrs = per_group(name, "max_lr", a.max_lr, n, nonneg)
  local up = positive(name, "step_size_up", a.step_size_up or 2000) + 0.0
  local down = a.step_size_down == nil and up
               or positive(name, "step_size_down", a.step_size_down) + 0.0
  self.total_size = up + down
  self.step_ratio = up / self.total_size
  self.mode = choice(name, "mode", a.mode or "triangular", "triangular", "triangular2", "exp_range")
  self.gamma = nonneg(name, "gamma", a.gamma or 1.0)
  if a.scale_fn ~= nil then
    if not is_callable(a.scale_fn) then
      fail("%s: option 'scale_fn' must be a function, got %s", name, type(a.scale_fn))
    end
    self.scale_fn = a.scale_fn
    self.scale_mode = choice(name, "scale_mode", a.scale_mode or "cycle", "cycle", "iterations")
  else
    if a.scale_mode ~= nil then choice(name, "scale_mode", a.scale_mode, "cycle", "iterations") end
    self.scale_mode = self.mode == "exp_range" and "iterations" or "cycle"
  end
  local cm = a.cycle_momentum
  if cm == nil then cm = true end
  self.cycle_momentum = boolean(name, "cycle_momentum", cm)
  self.use_beta1 = false
  if cm then
    local kind = momentum_kind(self.optimizer, groups)
    if not kind then
      fail("%s: option 'cycle_momentum' needs an optimizer with momentum or betas "
           .. "(set cycle_momentum = false)", name)
    end
    self.use_beta1 = kind == "betas"
    local basem = per_group(name, "base_momentum", a.base_momentum or 0.8, n, nonneg)
    if last_epoch == -1 then
      for i, g in ipairs(groups) do set_momentum(g, basem[i], self.use_beta1) end
    end
    local bm = {}
    for i, g in ipairs(groups) do bm[i] = get_momentum(g, self.use_beta1) end
    self.base_momentums = bm
    self.max_momentums = per_group(name, "max_momentum", a.max_momentum or 0.9, n, nonneg)
  else
    if a.max_momentum ~= nil then nonneg(name, "max_momentum", a.max_momentum) end
    if a.base_momentum ~= nil then nonneg(name, "base_momentum", a.base_momentum) end
  end
  base_init(self, a, groups)
  self.base_lrs = base_lrs
end

function CyclicLR:_scale(x)
  local f = self.scale_fn
  if f then
    local s = f(x)
    if type(s) ~= "number" then
      fail("CyclicLR: scale_fn returned %s, expected a number", type(s))
    end
    return s
  end
  local mode = self.mode
  if mode == "triangular" then return 1.0 end
  if mode == "triangular2" then return 1 / (2.0 ^ (x - 1)) end
  return self.gamma ^ x
end

function CyclicLR:_compute(out)
  local e = self.last_epoch
  local cycle = floor(1 + e / self.total_size)
  local x = 1.0 + e / self.total_size - cycle
  local sf
  if x <= self.step_ratio then
    sf = x / self.step_ratio
  else
    sf = (x - 1) / (self.step_ratio - 1)
  end
  local scale = self:_scale(self.scale_mode == "cycle" and cycle or e)
  local base, maxl = self.base_lrs, self.max_lrs
  for i = 1, #base do out[i] = base[i] + (maxl[i] - base[i]) * sf * scale end
  if self.cycle_momentum then
    local groups, bm, mm = self.optimizer.param_groups, self.base_momentums, self.max_momentums
    for i = 1, math.min(#groups, #bm) do
      set_momentum(groups[i], mm[i] - (mm[i] - bm[i]) * sf * scale, self.use_beta1)
    end
  end
  return #base
end

return dl.optim
