-- dlua.optim.lr_scheduler_base: the shared part of dl.optim.lr_scheduler
-- (see lr_scheduler.lua for the public face): argument checks that name the
-- option, option-table parsing, the class maker and the LRScheduler base
-- (PyTorch's _LRScheduler: initial step, step(epoch?), get_last_lr,
-- state_dict / load_state_dict). Returns a table of these for the files
-- that define the schedulers.
local dl = require "dlua"
local optim = dl.optim

local S = optim.lr_scheduler or {}
optim.lr_scheduler = S

local raise = require("dlua.errors").raise
local class = require "dlua.class"
---------------------------------------------------------------------------
-- Errors and argument checks
---------------------------------------------------------------------------

-- raises at the user's line, whichever helper detected the problem
local function fail(fmt, ...) raise(string.format(fmt, ...)) end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function number(cls, name, v)
  if type(v) ~= "number" or v ~= v then
    fail("%s: option '%s' must be a number, got %s", cls, name, show(v))
  end
  return v
end

local function nonneg(cls, name, v)
  number(cls, name, v)
  if v < 0 then fail("%s: option '%s' must be >= 0, got %s", cls, name, show(v)) end
  return v
end

local function positive(cls, name, v)
  number(cls, name, v)
  if v <= 0 then fail("%s: option '%s' must be > 0, got %s", cls, name, show(v)) end
  return v
end

local function integer(cls, name, v, min)
  local i = type(v) == "number" and math.tointeger(v) or nil
  if not i or i < min then
    fail("%s: option '%s' must be an integer >= %d, got %s", cls, name, min, show(v))
  end
  return i
end

local function boolean(cls, name, v)
  if type(v) ~= "boolean" then
    fail("%s: option '%s' must be a boolean, got %s", cls, name, show(v))
  end
  return v
end

local function choice(cls, name, v, ...)
  for i = 1, select("#", ...) do
    if v == select(i, ...) then return v end
  end
  fail("%s: option '%s' must be one of %s, got %s", cls, name,
       table.concat({...}, ", "), show(v))
end

-- a number for every group, or a list with one number per group; each
-- value passes check(cls, name, v)
local function per_group(cls, name, v, n, check)
  local out = {}
  if type(v) == "table" then
    if #v ~= n then
      fail("%s: option '%s' expects %d values (one per param group), got %d", cls, name, n, #v)
    end
    for i = 1, n do out[i] = check(cls, name, v[i]) end
  else
    local x = check(cls, name, v)
    for i = 1, n do out[i] = x end
  end
  return out
end

-- An option table is a table with a string key (and no __call, so a
-- callable table stays a positional lr_lambda / scale_fn). An empty table
-- is one too, except where it can only be an empty list of milestones.
local function is_options(t, argname)
  if type(t) ~= "table" or is_callable(t) then return false end
  if next(t) == nil then return argname ~= "milestones" end
  for k in pairs(t) do
    if type(k) == "string" then return true end
  end
  return false
end

-- Positional arguments then an optional trailing option table -> a table
-- name -> value, checked against the class's argument names.
local function parse_args(cls, ...)
  local names = cls._argnames
  local n = select("#", ...)
  local opts = n > 0 and select(n, ...) or nil
  if is_options(opts, names[n]) then n = n - 1 else opts = nil end
  if n > #names then
    fail("%s: expected at most %d arguments after the optimizer, got %d", cls.__name, #names, n)
  end
  local a = {}
  for i = 1, n do a[names[i]] = (select(i, ...)) end
  if opts then
    local allowed = cls._allowed
    for k, v in pairs(opts) do
      if type(k) ~= "string" or not allowed[k] then
        fail("%s", require("dlua.checks").unknown_option(cls.__name, k, allowed))
      end
      if a[k] ~= nil then fail("%s: option '%s' given twice", cls.__name, k) end
      a[k] = v
    end
  end
  return a
end

local function param_groups(cls, opt)
  local t = type(opt)
  if t ~= "table" and t ~= "userdata" then
    fail("%s: expected an optimizer, got %s", cls, t)
  end
  local ok, groups = pcall(function() return opt.param_groups end)
  if not ok or type(groups) ~= "table" or #groups == 0 then
    fail("%s: expected an optimizer with a non-empty param_groups list", cls)
  end
  for i, g in ipairs(groups) do
    if type(g) ~= "table" or type(g.lr) ~= "number" then
      fail("%s: param_groups[%d] has no numeric lr", cls, i)
    end
  end
  return groups
end

-- whether the optimizer has a momentum ("momentum") or Adam-style betas
-- ("betas") in its defaults or, lacking defaults, in its first group
local function momentum_kind(opt, groups)
  local ok, d = pcall(function() return opt.defaults end)
  local src = (ok and type(d) == "table") and d or groups[1]
  if src.betas ~= nil then return "betas" end
  if src.momentum ~= nil then return "momentum" end
  return nil
end

local function get_momentum(g, use_beta1)
  if use_beta1 then return g.betas[1] end
  return g.momentum
end

local function set_momentum(g, m, use_beta1)
  if use_beta1 then
    -- a new list, as PyTorch builds a new tuple: the old one may be shared
    -- with the optimizer's defaults or another group
    local b = g.betas
    local nb = {m}
    for i = 2, #b do nb[i] = b[i] end
    g.betas = nb
  else
    g.momentum = m
  end
end

---------------------------------------------------------------------------
-- Classes
---------------------------------------------------------------------------

local COMMON = {"last_epoch", "verbose"}

-- Name(optimizer, positional args or an options table)
local function construct(c, optimizer, ...)
  local a = parse_args(c, ...)
  local self = setmetatable({}, c)
  self.optimizer = optimizer
  self:_init(a, param_groups(c.__name, optimizer))
  return self
end

local Scheduler = class.root("LRScheduler", "dl.optim.lr_scheduler.LRScheduler", construct)
S.LRScheduler = Scheduler

-- a scheduler class: argnames are its positional arguments (after the
-- optimizer), then common ones (last_epoch, verbose)
local function scheduler_class(name, parent, argnames, common)
  local cls = class.extend(parent, name)
  local names, allowed = {}, {}
  for _, list in ipairs({argnames, common or COMMON}) do
    for _, k in ipairs(list) do
      names[#names + 1] = k
      allowed[k] = true
    end
  end
  cls._argnames, cls._allowed = names, allowed
  S[name] = cls
  return cls
end

local function print_lr(self, i, lr, epoch)
  if not self.verbose then return end
  if epoch == nil then
    print(string.format("Adjusting learning rate of group %d to %.4e.", i, lr))
  else
    local es = math.type(epoch) == "float" and string.format("%.2f", epoch)
               or string.format("%.5d", epoch)
    print(string.format("Epoch %s: adjusting learning rate of group %d to %.4e.", es, i, lr))
  end
end

-- PyTorch's _LRScheduler.__init__: initial_lr, base_lrs, the initial step
local function base_init(self, a, groups)
  local name = self.__name
  local last_epoch = integer(name, "last_epoch", a.last_epoch or -1, -1)
  self.verbose = boolean(name, "verbose", a.verbose or false)
  if last_epoch == -1 then
    for _, g in ipairs(groups) do
      if g.initial_lr == nil then g.initial_lr = g.lr end
    end
  else
    for i, g in ipairs(groups) do
      if type(g.initial_lr) ~= "number" then
        fail("%s: param_groups[%d] has no 'initial_lr', needed to resume with last_epoch = %d",
             name, i, last_epoch)
      end
    end
  end
  local base = {}
  for i, g in ipairs(groups) do base[i] = g.initial_lr end
  self.base_lrs = base
  self.last_epoch = last_epoch
  self._last_lr = {}
  self._values = {} -- scratch list of new lrs, reused every step
  self._step_count = 0
  self:step()
end

-- writes the first n values into the groups and records them
local function apply(self, n, epoch)
  local groups, out, last = self.optimizer.param_groups, self._values, self._last_lr
  if n > #groups then n = #groups end
  for i = 1, n do
    groups[i].lr = out[i]
    print_lr(self, i, out[i], epoch)
  end
  for i = 1, #groups do last[i] = groups[i].lr end
  for i = #last, #groups + 1, -1 do last[i] = nil end
end

-- step(): the next epoch from the chainable form; step(epoch): jump to a
-- given epoch (the closed form where the class has one)
function Scheduler:step(epoch)
  self._step_count = self._step_count + 1
  if epoch == nil then
    self.last_epoch = self.last_epoch + 1
    apply(self, self:_compute(self._values), nil)
  else
    number(self.__name, "epoch", epoch)
    self.last_epoch = epoch
    local f = self._closed_form or self._compute
    apply(self, f(self, self._values), epoch)
  end
end

function Scheduler:get_last_lr()
  local out = {}
  for i, v in ipairs(self._last_lr) do out[i] = v end
  return out
end

-- fields that are not state: the optimizer, scratch space, functions
local NOT_STATE = {optimizer = true, _values = true, lr_lambdas = true}

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return out
end

function Scheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if not NOT_STATE[k] and not is_callable(v) then sd[k] = deepcopy(v) end
  end
  return sd
end

function Scheduler:load_state_dict(sd)
  if type(sd) ~= "table" then
    fail("%s.load_state_dict: expected a table, got %s", self.__name, type(sd))
  end
  for k in pairs(sd) do
    if type(k) ~= "string" or NOT_STATE[k] or rawget(self, k) == nil
       or is_callable(rawget(self, k)) then
      if k ~= "lr_lambdas" then
        fail("%s.load_state_dict: unknown key '%s'", self.__name, tostring(k))
      end
    end
  end
  for k, v in pairs(sd) do
    if k ~= "lr_lambdas" then self[k] = deepcopy(v) end
  end
end

function Scheduler:__tostring()
  return string.format("%s(last_epoch=%s, last_lr={%s})", self.__name,
                       tostring(self.last_epoch), table.concat(self._last_lr, ", "))
end


return {
  S = S,
  Scheduler = Scheduler,
  apply = apply,
  base_init = base_init,
  boolean = boolean,
  choice = choice,
  class = scheduler_class,
  deepcopy = deepcopy,
  fail = fail,
  get_momentum = get_momentum,
  integer = integer,
  is_callable = is_callable,
  momentum_kind = momentum_kind,
  nonneg = nonneg,
  number = number,
  per_group = per_group,
  positive = positive,
  set_momentum = set_momentum,
  show = show,
}
