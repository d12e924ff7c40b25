-- dlua.optim.optimizer: dl.optim.Optimizer, the base of every optimiser.
--
-- Classes: `local C = dl.optim.Optimizer:extend("Name")`, `function
-- C:init(params, opts) ... end`, `local opt = C(params, opts)`.
--
-- Parameters: `params` is a list of tensors (e.g. `model:parameters()`) or
-- a list of param groups `{params = {...}, lr = ..., ...}`; options missing
-- from a group come from the optimiser's options (`opt.defaults`).
-- `opt.param_groups` is a list of such tables; editing an option of a group
-- (`opt.param_groups[1].lr = 0.01`) takes effect at the next step.
--
-- State: `opt.state[p]` is a table per parameter (`step`, `exp_avg`, ...,
-- with PyTorch's names), created at the parameter's first step.
--
-- state_dict(): `{state = {[i] = {...}}, param_groups = {{params = {i...},
-- lr = ...}}}` with parameters numbered 1.. in group order, as PyTorch
-- (1-based). It is a snapshot: state tensors are cloned, so stepping on
-- does not change a saved state_dict. load_state_dict(sd) copies the state
-- into this optimiser (cast to each parameter's dtype and device) and takes
-- over the group options; groups must have the same sizes.
--
-- Options are checked: an unknown option, an option of the wrong type or a
-- negative lr/eps/momentum/weight_decay raises an error naming it. Groups
-- may also hold the keys lr schedulers add (initial_lr, max_lr, min_lr,
-- base_momentum, max_momentum).
--
-- Subclassing (lua/dlua/optim/sgd_family.lua, line_search.lua):
--   C = Optimizer:extend("Name"); C:init(params, opts) merges the options
--   (optim._merge_options(name, opts, defaults), with optim.required for an
--   option without default) and calls Optimizer.init(self, params, merged);
--   C:_update(group) updates one group (called by step for each group);
--   C._validate(name, group) (optional) checks option combinations;
--   C:_check_group(group) may be replaced wholesale.
-- Helpers: optim._error(msg) raises at the first caller outside the optim
-- package; optim._check_options(name, opts, defaults, what, skip) checks
-- keys, types and ranges against a defaults table.
local dl = require "dlua"
local optim = dl.optim

local class = require "dlua.class"

local Optimizer = class.root("Optimizer", "dl.optim.Optimizer")
optim.Optimizer = Optimizer

-- the `lr` default of optimisers that have none (SGD): must be given
local required = setmetatable({}, {__tostring = function() return "<required>" end})
optim.required = required

-- raises msg at the user's line
local raise = require("dlua.errors").raise
optim._error = raise

-- Sub = Optimizer:extend("Sub")
function Optimizer.extend(parent, name) return class.extend(parent, name) end

-- options that must be >= 0 wherever they exist
local nonneg = {lr = true, eps = true, momentum = true, weight_decay = true, dampening = true, lr_decay = true,
                initial_accumulator_value = true, alpha = true, momentum_decay = true}

-- Checks one option table against the defaults: names, types, ranges.
-- what: "option" (constructor) or "param group option".
local function check_options(name, opts, defaults, what, skip)
  what = what or "option"
  for k, v in pairs(opts) do
    if not (skip and skip[k]) then
      if type(k) ~= "string" or defaults[k] == nil then
        raise((require("dlua.checks").unknown_option("dl.optim." .. name, k, defaults):gsub("unknown option",
          "unknown " .. what, 1)))
      end
      local d = defaults[k]
      local want = d == required and "number" or type(d)
      if type(v) ~= want then
        raise(string.format("dl.optim.%s: %s '%s' must be a %s, got %s", name, what, k, want, type(v)))
      end
      if want == "number" and (v ~= v or (nonneg[k] and v < 0)) then
        raise(string.format("dl.optim.%s: invalid %s: %s (must be >= 0)", name, k, tostring(v)))
      end
      if k == "betas" then
        for i = 1, 2 do
          local b = v[i]
          if type(b) ~= "number" or not (b >= 0 and b < 1) or #v ~= 2 then
            raise(string.format("dl.optim.%s: invalid betas: expected {beta1, beta2} in [0, 1)", name))
          end
        end
      end
    end
  end
end
optim._check_options = check_options

-- Fills a copy of opts from defaults and checks it; raises for a missing
-- required option.
function optim._merge_options(name, opts, defaults)
  -- PyTorch's positional learning rate: Adam(params, 0.01)
  if type(opts) == "number" and defaults.lr ~= nil then opts = {lr = opts} end
  if opts ~= nil and type(opts) ~= "table" then
    raise(string.format("dl.optim.%s: options must be a table, got %s", name, type(opts)))
  end
  opts = opts or {}
  check_options(name, opts, defaults, "option")
  local out = {}
  for k, d in pairs(defaults) do
    local v = opts[k]
    if v == nil then v = d end
    if v == required then raise(string.format("dl.optim.%s: option '%s' is required", name, k)) end
    if type(v) == "table" then v = table.move(v, 1, #v, 1, {}) end
    out[k] = v
  end
  return out
end

local function is_group(x)
  return type(x) == "table" and not dl.is_tensor(x)
end

-- init(params, defaults): called by subclasses after merging options.
-- `self._validate(group)` (optional) checks option combinations.
function Optimizer:init(params, defaults)
  local name = self.__name
  self.defaults = defaults
  self.state = {}
  self.param_groups = {}
  if dl.is_tensor(params) then params = {params} end
  if type(params) ~= "table" then
    raise(string.format("dl.optim.%s: params must be a list of tensors or of param groups, got %s", name,
                        type(params)))
  end
  if #params == 0 then raise(string.format("dl.optim.%s: got an empty parameter list", name)) end
  if is_group(params[1]) then
    for _, g in ipairs(params) do self:add_param_group(g) end
  else
    self:add_param_group({params = params})
  end
end

-- group keys that are no optimiser option: params, and the numbers that
-- lr schedulers keep in each group (PyTorch's names), which state_dict
-- carries along
local group_extras = {params = true, initial_lr = true, max_lr = true, min_lr = true, base_momentum = true,
                      max_momentum = true}
optim._group_extras = group_extras

function Optimizer:_check_group(group)
  local name = self.__name
  check_options(name, group, self.defaults, "param group option", group_extras)
  for k in pairs(group_extras) do
    local v = group[k]
    if k ~= "params" and v ~= nil and type(v) ~= "number" then
      raise(string.format("dl.optim.%s: param group key '%s' must be a number, got %s", name, k, type(v)))
    end
  end
  for k, d in pairs(self.defaults) do
    if group[k] == nil then
      if d == required then
        raise(string.format("dl.optim.%s: param group option '%s' is required", name, k))
      end
      group[k] = type(d) == "table" and table.move(d, 1, #d, 1, {}) or d
    end
  end
  if self._validate then self._validate(name, group) end
end

function Optimizer:add_param_group(group)
  local name = self.__name
  if not is_group(group) then
    raise(string.format("dl.optim.%s: add_param_group expects a table {params = ..., ...}", name))
  end
  local ps = group.params
  if dl.is_tensor(ps) then ps = {ps} end
  if type(ps) ~= "table" then
    raise(string.format("dl.optim.%s: param group 'params' must be a tensor or a list of tensors", name))
  end
  local seen = {}
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do seen[p] = true end
  end
  local list = {}
  for i, p in ipairs(ps) do
    if not dl.is_tensor(p) then
      raise(string.format("dl.optim.%s: params[%d] is not a tensor (got %s)", name, i, type(p)))
    end
    if not p.is_leaf then raise(string.format("dl.optim.%s: can't optimize a non-leaf tensor (params[%d])", name, i)) end
    if p.dtype ~= "float32" and p.dtype ~= "float64" then
      raise(string.format("dl.optim.%s: params[%d] has dtype %s; parameters must be float32 or float64", name, i,
                          tostring(p.dtype)))
    end
    if seen[p] then
      raise(string.format("dl.optim.%s: some parameters appear in more than one parameter group", name))
    end
    seen[p] = true
    list[#list + 1] = p
  end
  local g = {}
  for k, v in pairs(group) do g[k] = v end
  g.params = list
  self:_check_group(g)
  self.param_groups[#self.param_groups + 1] = g
  return self
end

function Optimizer:zero_grad(opts)
  local to_none = not (type(opts) == "table" and opts.set_to_none == false)
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      if to_none then
        p.grad = nil
      else
        local gr = p.grad
        if gr then dl.no_grad(gr.zero_, gr) end
      end
    end
  end
  return self
end

-- step(closure?): re-evaluates the loss with closure (under enable_grad)
-- when given, updates every group and returns the loss.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= "function" then
      raise(string.format("dl.optim.%s: step expects a closure function or nothing", self.__name))
    end
    loss = dl.enable_grad(closure)
  end
  local groups = self.param_groups
  for i = 1, #groups do self:_update(groups[i]) end
  return loss
end

local function copy_value(v)
  if dl.is_tensor(v) then return v:detach():clone() end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = copy_value(x) end
    return t
  end
  return v
end

function Optimizer:state_dict()
  local state, groups, idx = {}, {}, 0
  for _, g in ipairs(self.param_groups) do
    local pg = {}
    for k, v in pairs(g) do
      if k ~= "params" then pg[k] = copy_value(v) end
    end
    local ids = {}
    for _, p in ipairs(g.params) do
      idx = idx + 1
      ids[#ids + 1] = idx
      local s = self.state[p]
      if s then state[idx] = copy_value(s) end
    end
    pg.params = ids
    groups[#groups + 1] = pg
  end
  return {state = state, param_groups = groups}
end

function Optimizer:load_state_dict(sd)
  local name = self.__name
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    raise(string.format("dl.optim.%s: load_state_dict expects a table {state = ..., param_groups = ...}", name))
  end
  local groups = self.param_groups
  if #sd.param_groups ~= #groups then
    raise(string.format("dl.optim.%s: loaded state dict has %d parameter groups, the optimizer has %d", name,
                        #sd.param_groups, #groups))
  end
  for i, g in ipairs(groups) do
    local sg = sd.param_groups[i]
    if type(sg) ~= "table" or type(sg.params) ~= "table" or #sg.params ~= #g.params then
      raise(string.format("dl.optim.%s: loaded state dict contains a parameter group that doesn't match the size of "
                          .. "optimizer's group %d", name, i))
    end
  end
  -- check every group before changing anything
  local newgroups = {}
  for i, g in ipairs(groups) do
    local ng = {}
    for k, v in pairs(sd.param_groups[i]) do
      if k ~= "params" then ng[k] = copy_value(v) end
    end
    ng.params = g.params
    self:_check_group(ng)
    newgroups[i] = ng
  end
  local state = {}
  for i, g in ipairs(groups) do
    local sg = sd.param_groups[i]
    for j, p in ipairs(g.params) do
      local s = sd.state[sg.params[j]]
      if s ~= nil then
        if type(s) ~= "table" then
          raise(string.format("dl.optim.%s: state of parameter %s is not a table", name, tostring(sg.params[j])))
        end
        local ns = {}
        for k, v in pairs(s) do
          if dl.is_tensor(v) then
            if not dl.is_tensor(p) or v:numel() ~= p:numel() then
              raise(string.format("dl.optim.%s: state '%s' has %d elements but its parameter has %d", name, k,
                                  v:numel(), p:numel()))
            end
            ns[k] = v:detach():to(p.dtype):to(p.device):reshape(p:size()):clone()
          else
            ns[k] = copy_value(v)
          end
        end
        state[p] = ns
      end
    end
  end
  for i, ng in ipairs(newgroups) do groups[i] = ng end
  self.state = state
  return self
end

function Optimizer:__tostring()
  local lines = {self.__name .. " ("}
  for i, g in ipairs(self.param_groups) do
    lines[#lines + 1] = string.format("Parameter Group %d", i - 1)
    local keys = {}
    for k in pairs(g) do
      if k ~= "params" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = g[k]
      if type(v) == "table" then v = "(" .. table.concat(v, ", ") .. ")" end
      lines[#lines + 1] = string.format("    %s: %s", k, tostring(v))
    end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

return optim
