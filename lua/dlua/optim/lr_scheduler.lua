-- dlua.optim.lr_scheduler: learning-rate schedulers with PyTorch's values at
-- every step (torch.optim.lr_scheduler, the chainable/recursive forms).
--
-- A scheduler acts on `optimizer.param_groups` (a list of tables with `lr`,
-- and `momentum` or `betas` for the schedulers that cycle momentum).
-- Construction performs PyTorch's initial step: `last_epoch` goes from -1 to
-- 0 and every group gets `initial_lr` (its lr, unless already set).
--
-- Arguments follow PyTorch's order after the optimizer and may also be given
-- by name in a trailing option table, or both:
--   StepLR(opt, 30, 0.1)  ==  StepLR(opt, {step_size = 30, gamma = 0.1})
--   MultiStepLR(opt, {30, 80}, {gamma = 0.5})
-- Every class also takes `last_epoch` (default -1: a fresh schedule; >= 0
-- resumes and needs `initial_lr` in every group) and `verbose` (default
-- false: true prints each change). Unknown options and bad values raise an
-- error naming the scheduler and the option.
--
-- `sched:step(epoch?)` (ReduceLROnPlateau: `sched:step(metric)`),
-- `sched:get_last_lr()` (a new list, one lr per group), `sched:state_dict()`
-- (plain values; the optimizer and functions such as LambdaLR's lr_lambda
-- or CyclicLR's scale_fn are left out, as PyTorch does; a callable table
-- lr_lambda saves its plain fields) and `sched:load_state_dict(sd)`.
--
-- Files: lr_scheduler_base.lua (checks, option parsing, the LRScheduler
-- base), this file (the epoch-driven schedules and ReduceLROnPlateau),
-- lr_scheduler_cyclic.lua (OneCycleLR, CyclicLR).
local dl = require "dlua"
local optim = dl.optim
local B = require "dlua.optim.lr_scheduler_base"
local Scheduler = B.Scheduler
local apply = B.apply
local base_init = B.base_init
local boolean = B.boolean
local choice = B.choice
local class = B.class
local deepcopy = B.deepcopy
local fail = B.fail
local integer = B.integer
local is_callable = B.is_callable
local nonneg = B.nonneg
local number = B.number
local per_group = B.per_group
local positive = B.positive
local show = B.show

local floor, cos, pi, log = math.floor, math.cos, math.pi, math.log

---------------------------------------------------------------------------
-- StepLR, MultiStepLR, ExponentialLR, LinearLR
---------------------------------------------------------------------------

local StepLR = class("StepLR", Scheduler, {"step_size", "gamma"})

function StepLR:_init(a, groups)
  self.step_size = integer("StepLR", "step_size", a.step_size, 1)
  self.gamma = nonneg("StepLR", "gamma", a.gamma or 0.1)
  base_init(self, a, groups)
end

function StepLR:_compute(out)
  local groups, e = self.optimizer.param_groups, self.last_epoch
  local decay = e ~= 0 and e % self.step_size == 0
  for i, g in ipairs(groups) do out[i] = decay and g.lr * self.gamma or g.lr end
  return #groups
end

function StepLR:_closed_form(out)
  local k = self.last_epoch // self.step_size
  for i, b in ipairs(self.base_lrs) do out[i] = b * self.gamma ^ k end
  return #self.base_lrs
end

local MultiStepLR = class("MultiStepLR", Scheduler, {"milestones", "gamma"})

function MultiStepLR:_init(a, groups)
  local ms = a.milestones
  if type(ms) ~= "table" then
    fail("MultiStepLR: option 'milestones' must be a list of epochs, got %s", show(ms))
  end
  local counts = {} -- epoch -> how many times it is listed (PyTorch's Counter)
  for i = 1, #ms do
    local m = integer("MultiStepLR", "milestones", ms[i], 0)
    counts[m] = (counts[m] or 0) + 1
  end
  self.milestones = counts
  self.gamma = nonneg("MultiStepLR", "gamma", a.gamma or 0.1)
  base_init(self, a, groups)
end

function MultiStepLR:_compute(out)
  local groups = self.optimizer.param_groups
  local c = self.milestones[self.last_epoch]
  for i, g in ipairs(groups) do out[i] = c and g.lr * self.gamma ^ c or g.lr end
  return #groups
end

function MultiStepLR:_closed_form(out)
  local k = 0 -- milestones <= last_epoch (bisect_right)
  for m, c in pairs(self.milestones) do
    if m <= self.last_epoch then k = k + c end
  end
  for i, b in ipairs(self.base_lrs) do out[i] = b * self.gamma ^ k end
  return #self.base_lrs
end

local ExponentialLR = class("ExponentialLR", Scheduler, {"gamma"})

function ExponentialLR:_init(a, groups)
  if a.gamma == nil then fail("ExponentialLR: option 'gamma' is required") end
  self.gamma = nonneg("ExponentialLR", "gamma", a.gamma)
  base_init(self, a, groups)
end

function ExponentialLR:_compute(out)
  local groups = self.optimizer.param_groups
  local first = self.last_epoch == 0
  for i, g in ipairs(groups) do out[i] = first and g.lr or g.lr * self.gamma end
  return #groups
end

function ExponentialLR:_closed_form(out)
  for i, b in ipairs(self.base_lrs) do out[i] = b * self.gamma ^ self.last_epoch end
  return #self.base_lrs
end

local LinearLR = class("LinearLR", Scheduler, {"start_factor", "end_factor", "total_iters"})

function LinearLR:_init(a, groups)
  local sf = number("LinearLR", "start_factor", a.start_factor or 1.0 / 3)
  if sf <= 0 or sf > 1 then
    fail("LinearLR: option 'start_factor' must be in (0, 1], got %s", show(sf))
  end
  local ef = number("LinearLR", "end_factor", a.end_factor or 1.0)
  if ef < 0 or ef > 1 then
    fail("LinearLR: option 'end_factor' must be in [0, 1], got %s", show(ef))
  end
  self.start_factor, self.end_factor = sf, ef
  self.total_iters = integer("LinearLR", "total_iters", a.total_iters or 5, 1)
  base_init(self, a, groups)
end

function LinearLR:_compute(out)
  local groups, e = self.optimizer.param_groups, self.last_epoch
  local sf, ef, n = self.start_factor, self.end_factor, self.total_iters
  for i, g in ipairs(groups) do
    if e == 0 then
      out[i] = g.lr * sf
    elseif e > n then
      out[i] = g.lr
    else
      out[i] = g.lr * (1.0 + (ef - sf) / (n * sf + (e - 1) * (ef - sf)))
    end
  end
  return #groups
end

function LinearLR:_closed_form(out)
  local sf, ef, n = self.start_factor, self.end_factor, self.total_iters
  local e = math.min(n, self.last_epoch)
  for i, b in ipairs(self.base_lrs) do out[i] = b * (sf + (ef - sf) * e / n) end
  return #self.base_lrs
end

---------------------------------------------------------------------------
-- LambdaLR
---------------------------------------------------------------------------

local LambdaLR = class("LambdaLR", Scheduler, {"lr_lambda"})

function LambdaLR:_init(a, groups)
  local f, fs = a.lr_lambda, {}
  if is_callable(f) then
    for i = 1, #groups do fs[i] = f end
  elseif type(f) == "table" then
    if #f ~= #groups then
      fail("LambdaLR: option 'lr_lambda' expects %d functions (one per param group), got %d",
           #groups, #f)
    end
    for i = 1, #groups do
      if not is_callable(f[i]) then
        fail("LambdaLR: option 'lr_lambda' must hold functions, got %s at %d", type(f[i]), i)
      end
      fs[i] = f[i]
    end
  else
    fail("LambdaLR: option 'lr_lambda' must be a function or a list of functions, got %s", type(f))
  end
  self.lr_lambdas = fs
  base_init(self, a, groups)
end

function LambdaLR:_compute(out)
  local base, fs = self.base_lrs, self.lr_lambdas
  for i = 1, #base do
    local f = fs[i](self.last_epoch)
    if type(f) ~= "number" then
      fail("LambdaLR: lr_lambda[%d] returned %s, expected a number", i, type(f))
    end
    out[i] = base[i] * f
  end
  return #base
end

-- a callable table saves its plain fields (PyTorch saves a callable
-- object's __dict__); a plain function saves false
function LambdaLR:state_dict()
  local sd = Scheduler.state_dict(self)
  local l = {}
  for i, f in ipairs(self.lr_lambdas) do
    if type(f) == "table" then
      local fields = {}
      for k, v in pairs(f) do
        if not is_callable(v) then fields[k] = deepcopy(v) end
      end
      l[i] = fields
    else
      l[i] = false
    end
  end
  sd.lr_lambdas = l
  return sd
end

function LambdaLR:load_state_dict(sd)
  Scheduler.load_state_dict(self, sd)
  local l = sd.lr_lambdas
  if type(l) ~= "table" then return end
  for i, fields in ipairs(l) do
    local f = self.lr_lambdas[i]
    if type(fields) == "table" and type(f) == "table" then
      for k, v in pairs(fields) do f[k] = deepcopy(v) end
    end
  end
end

---------------------------------------------------------------------------
-- CosineAnnealingLR, CosineAnnealingWarmRestarts
---------------------------------------------------------------------------

local CosineAnnealingLR = class("CosineAnnealingLR", Scheduler, {"T_max", "eta_min"})

function CosineAnnealingLR:_init(a, groups)
  if a.T_max == nil then fail("CosineAnnealingLR: option 'T_max' is required") end
  self.T_max = positive("CosineAnnealingLR", "T_max", a.T_max)
  self.eta_min = nonneg("CosineAnnealingLR", "eta_min", a.eta_min or 0)
  base_init(self, a, groups)
end

-- PyTorch's recursive form, term by term, so values agree to the last bit
function CosineAnnealingLR:_compute(out)
  local groups, base = self.optimizer.param_groups, self.base_lrs
  local e, T, eta = self.last_epoch, self.T_max, self.eta_min
  if e == 0 then
    for i, g in ipairs(groups) do out[i] = g.lr end
    return #groups
  end
  local n = math.min(#groups, #base)
  if self._step_count == 1 and e > 0 then
    for i = 1, n do out[i] = eta + (base[i] - eta) * (1 + cos(e * pi / T)) / 2 end
    return n
  elseif (e - 1 - T) % (2 * T) == 0 then
    for i = 1, n do out[i] = groups[i].lr + (base[i] - eta) * (1 - cos(pi / T)) / 2 end
    return n
  end
  for i, g in ipairs(groups) do
    out[i] = (1 + cos(pi * e / T)) / (1 + cos(pi * (e - 1) / T)) * (g.lr - eta) + eta
  end
  return #groups
end

function CosineAnnealingLR:_closed_form(out)
  local e, T, eta = self.last_epoch, self.T_max, self.eta_min
  for i, b in ipairs(self.base_lrs) do out[i] = eta + (b - eta) * (1 + cos(pi * e / T)) / 2 end
  return #self.base_lrs
end

local CosineAnnealingWarmRestarts = class("CosineAnnealingWarmRestarts", Scheduler,
                                          {"T_0", "T_mult", "eta_min"})

function CosineAnnealingWarmRestarts:_init(a, groups)
  local name = "CosineAnnealingWarmRestarts"
  if a.T_0 == nil then fail("%s: option 'T_0' is required", name) end
  self.T_0 = integer(name, "T_0", a.T_0, 1)
  self.T_i = self.T_0
  self.T_mult = integer(name, "T_mult", a.T_mult or 1, 1)
  self.eta_min = nonneg(name, "eta_min", a.eta_min or 0)
  self.T_cur = a.last_epoch or -1
  base_init(self, a, groups)
end

local function ipow(b, n)
  local r = 1
  for _ = 1, n do r = r * b end
  return r
end

-- step() advances one epoch, restarting when T_cur reaches T_i;
-- step(epoch) accepts fractional epochs (e.g. epoch + i / iters per batch)
function CosineAnnealingWarmRestarts:step(epoch)
  self._step_count = self._step_count + 1
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur = self.T_cur - self.T_i
      self.T_i = self.T_i * self.T_mult
    end
  else
    number(self.__name, "epoch", epoch)
    if epoch < 0 then fail("%s: epoch must be >= 0, got %s", self.__name, show(epoch)) end
    local T0, Tm = self.T_0, self.T_mult
    if epoch >= T0 then
      if Tm == 1 then
        self.T_cur = epoch % T0
      else
        -- log(x) / log(Tm) as Python's math.log(x, base), not Lua's log2
        local n = floor(log(epoch / T0 * (Tm - 1) + 1) / log(Tm))
        local p = ipow(Tm, n)
        self.T_cur = epoch - T0 * (p - 1) / (Tm - 1)
        self.T_i = T0 * p
      end
    else
      self.T_i = T0
      self.T_cur = epoch
    end
  end
  self.last_epoch = floor(epoch)
  local out, eta = self._values, self.eta_min
  local c = 1 + cos(pi * self.T_cur / self.T_i)
  for i, b in ipairs(self.base_lrs) do out[i] = eta + (b - eta) * c / 2 end
  apply(self, #self.base_lrs, epoch)
end

---------------------------------------------------------------------------
-- ReduceLROnPlateau
---------------------------------------------------------------------------

local ReduceLROnPlateau = class("ReduceLROnPlateau", Scheduler, {
  "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"},
  {"verbose"})

local function plateau_check_modes(self)
  local name = "ReduceLROnPlateau"
  choice(name, "mode", self.mode, "min", "max")
  choice(name, "threshold_mode", self.threshold_mode, "rel", "abs")
  self.mode_worse = self.mode == "min" and math.huge or -math.huge
end

function ReduceLROnPlateau:_init(a, groups)
  local name = "ReduceLROnPlateau"
  local factor = nonneg(name, "factor", a.factor or 0.1)
  if factor >= 1 then fail("%s: option 'factor' must be < 1, got %s", name, show(factor)) end
  self.factor = factor
  self.min_lrs = per_group(name, "min_lr", a.min_lr or 0, #groups, nonneg)
  self.patience = integer(name, "patience", a.patience or 10, 0)
  self.verbose = boolean(name, "verbose", a.verbose or false)
  self.cooldown = integer(name, "cooldown", a.cooldown or 0, 0)
  self.cooldown_counter = 0
  self.mode = a.mode or "min"
  self.threshold = nonneg(name, "threshold", a.threshold or 1e-4)
  self.threshold_mode = a.threshold_mode or "rel"
  self.eps = nonneg(name, "eps", a.eps or 1e-8)
  self.last_epoch = 0
  plateau_check_modes(self)
  self.best = self.mode_worse
  self.num_bad_epochs = 0
  self._last_lr = {}
  for i, g in ipairs(groups) do self._last_lr[i] = g.lr end
end

function ReduceLROnPlateau:is_better(a, best)
  local th = self.threshold
  if self.mode == "min" then
    if self.threshold_mode == "rel" then return a < best * (1.0 - th) end
    return a < best - th
  end
  if self.threshold_mode == "rel" then return a > best * (th + 1.0) end
  return a > best + th
end

-- step(metric, epoch?): metric is a number or a one-element tensor
function ReduceLROnPlateau:step(metric, epoch)
  local current = metric
  if dl.is_tensor(metric) then
    if metric:numel() ~= 1 then
      fail("ReduceLROnPlateau: step expects a number or a one-element tensor, got a tensor of %d elements",
           metric:numel())
    end
    current = metric:item()
  elseif type(metric) ~= "number" then
    fail("ReduceLROnPlateau: step expects the metric (a number), got %s", type(metric))
  end
  if epoch == nil then
    epoch = self.last_epoch + 1
  else
    number(self.__name, "epoch", epoch)
  end
  self.last_epoch = epoch

  if self:is_better(current, self.best) then
    self.best = current
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0 -- bad epochs in cooldown do not count
  end
  local groups = self.optimizer.param_groups
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(groups) do
      local old = g.lr
      local new = math.max(old * self.factor, self.min_lrs[i] or 0)
      if old - new > self.eps then
        g.lr = new
        if self.verbose then
          local es = math.type(epoch) == "float" and string.format("%.2f", epoch)
                     or string.format("%.5d", epoch)
          print(string.format("Epoch %s: reducing learning rate of group %d to %.4e.", es, i, new))
        end
      end
    end
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  local last = self._last_lr
  for i = 1, #groups do last[i] = groups[i].lr end
  for i = #last, #groups + 1, -1 do last[i] = nil end
end

function ReduceLROnPlateau:load_state_dict(sd)
  Scheduler.load_state_dict(self, sd)
  plateau_check_modes(self)
end

require "dlua.optim.lr_scheduler_cyclic"

return optim
