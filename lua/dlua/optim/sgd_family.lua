-- dlua.optim.sgd_family: first-order optimisers with fused C updates
-- (src/lua_optim.c, src/cpu/cpu_optim.c): SGD, Adagrad, RMSprop, Adam,
-- AdamW, Adamax, NAdam, Adadelta. Defaults, update rules and the order of
-- operations are PyTorch 1.13's single-tensor implementations, so
-- trajectories match. Each step is one C call per param group; per
-- parameter it reads the gradient, the parameter and its state once.
--
--   dl.optim.SGD(params, {lr = 0.1, momentum = 0.9, nesterov = true})
--   dl.optim.Adam(model:parameters(), {lr = 1e-3, betas = {0.9, 0.999}})
local dl = require "dlua"
local errors = require "dlua.errors"
local optim = dl.optim
local Optimizer = optim.Optimizer
local required = optim.required
local cstep = dl._optim.step

-- define(name, algo, defaults, validate): a class whose constructor merges
-- and checks the options, and whose update is the fused C step `algo`.
local function define(name, algo, defaults, validate)
  local C = Optimizer:extend(name)
  C._defaults = defaults
  C._validate = validate
  function C:init(params, opts)
    local merged = optim._merge_options(name, opts, defaults)
    if validate then validate(name, merged) end
    Optimizer.init(self, params, merged)
  end
  function C:_update(group)
    local ok, err = pcall(cstep, algo, group, self.state, name)
    if not ok then errors.rethrow(err) end
  end
  optim[name] = C
  return C
end

local function check_range(name, group, key, lo, hi)
  local v = group[key]
  if not (v >= lo and v <= hi) then
    optim._error(string.format("dl.optim.%s: invalid %s: %s (must be in [%s, %s])", name, key, tostring(v), lo, hi))
  end
end

define("SGD", "sgd", {lr = required, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
                      maximize = false},
       function(name, g)
         if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
           optim._error(string.format("dl.optim.%s: nesterov momentum requires a momentum > 0 and zero dampening", name))
         end
       end)

define("Adagrad", "adagrad", {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0,
                              eps = 1e-10, maximize = false})

define("RMSprop", "rmsprop", {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
                              centered = false, maximize = false})

define("Adam", "adam", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, amsgrad = false,
                        maximize = false})

define("AdamW", "adamw", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 1e-2, amsgrad = false,
                          maximize = false})

define("Adamax", "adamax", {lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, maximize = false})

define("NAdam", "nadam", {lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, momentum_decay = 4e-3})

define("Adadelta", "adadelta", {lr = 1.0, rho = 0.9, eps = 1e-6, weight_decay = 0, maximize = false},
       function(name, g) check_range(name, g, "rho", 0, 1) end)

return optim
