-- dl.optim: optimisers (fused C updates with a Lua face), L-BFGS and
-- conjugate gradient, and learning-rate schedulers.
local dl = require "dlua"

local optim = dl.optim or {}
dl.optim = optim

require "dlua.optim.optimizer"    -- Optimizer base: param_groups, state, state_dict
require "dlua.optim.sgd_family"   -- SGD, Adagrad, RMSprop, Adam, AdamW, Adamax, NAdam, Adadelta
require "dlua.optim.lbfgs"        -- LBFGS
require "dlua.optim.cg"           -- CG
require "dlua.optim.lr_scheduler" -- dl.optim.lr_scheduler

return optim
