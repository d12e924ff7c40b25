-- dlua.nn.loss: loss functions dl.F.<name>(input, target, {reduction, ...})
-- and their modules (MSELoss, ..., CrossEntropyLoss, NLLLoss), with
-- PyTorch's semantics; reduction = "mean" (default) | "sum" | "none".
--
-- The functional forms are the C functions of src/lua_loss.c (dl._loss):
-- MSE, L1, smooth L1, cross-entropy with class indices and NLL are fused
-- kernels (src/ops/dl_loss.c), BCE with logits and probability-target
-- cross-entropy compositions of differentiable ops (src/autograd/grad_loss.c).
-- Class indices are 1-based int64. A module keeps one options table, built at
-- construction, so calling it creates no Lua table.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local C = dl._loss

local fmt = string.format
local is_tensor = dl.is_tensor

F.mse_loss = C.mse_loss
F.l1_loss = C.l1_loss
F.smooth_l1_loss = C.smooth_l1_loss
F.binary_cross_entropy = C.binary_cross_entropy
F.binary_cross_entropy_with_logits = C.binary_cross_entropy_with_logits
F.cross_entropy = C.cross_entropy
F.nll_loss = C.nll_loss

local REDUCTIONS = {mean = true, sum = true, none = true}

-- Checks a module's options (an options table, or the tensor its first
-- positional argument stands for in PyTorch) and returns a fresh table with
-- the allowed keys; tensor options become buffers of self.
local function read_options(self, name, opts, allowed, tensor_key)
  if is_tensor(opts) and tensor_key then opts = {[tensor_key] = opts} end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(fmt("dl.nn.%s: bad argument #1 (options table expected, got %s)", name, type(opts)), 4)
  end
  local o = {}
  for k, v in pairs(opts) do
    if not allowed[k] then error(require("dlua.checks").unknown_option("dl.nn." .. name, k, allowed), 4) end
    o[k] = v
  end
  local r = o.reduction or "mean"
  if not REDUCTIONS[r] then
    error(fmt("dl.nn.%s: unknown reduction '%s' (expected 'mean', 'sum' or 'none')", name, tostring(r)), 4)
  end
  o.reduction = r
  for _, key in ipairs({"weight", "pos_weight"}) do
    if o[key] ~= nil then
      if not is_tensor(o[key]) then
        error(fmt("dl.nn.%s: option '%s' must be a tensor, got %s", name, key, type(o[key])), 4)
      end
      self:register_buffer(key, o[key])
    end
  end
  return o
end

-- A loss module class: `fn` is the functional form, `allowed` its option
-- keys, `tensor_key` the option a positional tensor argument stands for.
local function loss_class(name, fn, allowed, tensor_key)
  local keys = {reduction = true}
  for _, k in ipairs(allowed) do keys[k] = true end
  local M = nn.Module:extend(name)
  function M:init(opts)
    rawset(self, "_opts", read_options(self, name, opts, keys, tensor_key))
    self.reduction = self._opts.reduction
  end
  if keys.weight or keys.pos_weight then
    -- buffers may have been replaced (m:to(...)): refresh the options' fields
    function M:forward(input, target)
      local o = self._opts
      o.weight, o.pos_weight, o.reduction = self.weight, self.pos_weight, self.reduction
      return fn(input, target, o)
    end
  else
    function M:forward(input, target)
      local o = self._opts
      o.reduction = self.reduction
      return fn(input, target, o)
    end
  end
  function M:extra_repr()
    local parts = {}
    if self.reduction ~= "mean" then parts[#parts + 1] = "reduction=" .. self.reduction end
    local o = self._opts
    if o.beta ~= nil then parts[#parts + 1] = "beta=" .. tostring(o.beta) end
    if o.ignore_index ~= nil then parts[#parts + 1] = "ignore_index=" .. tostring(o.ignore_index) end
    if o.label_smoothing ~= nil then parts[#parts + 1] = "label_smoothing=" .. tostring(o.label_smoothing) end
    return table.concat(parts, ", ")
  end
  nn[name] = M
  return M
end

loss_class("MSELoss", F.mse_loss, {})
loss_class("L1Loss", F.l1_loss, {})
loss_class("SmoothL1Loss", F.smooth_l1_loss, {"beta"})
loss_class("BCELoss", F.binary_cross_entropy, {"weight"}, "weight")
loss_class("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, {"weight", "pos_weight"}, "pos_weight")
loss_class("CrossEntropyLoss", F.cross_entropy, {"weight", "ignore_index", "label_smoothing"}, "weight")
loss_class("NLLLoss", F.nll_loss, {"weight", "ignore_index"}, "weight")

return nn
