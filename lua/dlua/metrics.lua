-- dlua.metrics: classification metrics on tensors of 1-based class labels.
--   dl.metrics.accuracy(pred_or_logits, target) -> fraction correct (number)
--   dl.metrics.confusion_matrix(pred_or_logits, target, num_classes)
--     -> int64 [C, C], rows = true class, columns = predicted class
-- Predictions are 1-D labels [N] or scores [N, C] (logits or
-- probabilities), whose argmax along dim 2 is the label.
local dl = require "dlua"

local M = {}
dl.metrics = M

local fmt = string.format
local is_tensor = dl.is_tensor

local shape_str = require("dlua.checks").shape_str

local function check_tensor(fn, argn, name, t)
  if not is_tensor(t) then
    error(fmt("%s: bad argument #%d (%s must be a tensor, got %s)", fn, argn, name, type(t)), 3)
  end
end

-- pred [N] or scores [N, C] and target [N] -> labels as int64 [N], target as
-- int64 [N], C of the scores (nil for labels); detached
local function labels_of(fn, pred, target)
  check_tensor(fn, 1, "pred", pred)
  check_tensor(fn, 2, "target", target)
  pred, target = pred:detach(), target:detach()
  if target:dim() ~= 1 then
    error(fmt("%s: target must be 1-D class labels, got shape %s", fn, shape_str(target)), 3)
  end
  if pred.dtype == "bool" or target.dtype == "bool" then
    error(fmt("%s: labels must be numbers, got a bool tensor", fn), 3)
  end
  local ncls
  if pred:dim() == 2 then
    ncls = pred:size(2)
    if ncls == 0 then error(fmt("%s: scores of shape %s have no class", fn, shape_str(pred)), 3) end
    pred = pred:argmax(2)
  elseif pred:dim() ~= 1 then
    error(fmt("%s: pred must be labels [N] or scores [N, C], got shape %s", fn, shape_str(pred)), 3)
  end
  if pred:size(1) ~= target:size(1) then
    error(fmt("%s: size mismatch, pred %s vs target %s", fn, shape_str(pred), shape_str(target)), 3)
  end
  if pred.device ~= target.device then
    error(fmt("%s: pred is on %s but target is on %s", fn, pred.device, target.device), 3)
  end
  if pred.dtype ~= "int64" then pred = pred:long() end
  if target.dtype ~= "int64" then target = target:long() end
  return pred, target, ncls
end

-- fraction of predictions equal to the target (a Lua number in [0, 1])
function M.accuracy(pred, target)
  local fn = "dl.metrics.accuracy"
  local p, t = labels_of(fn, pred, target)
  local n = t:numel()
  if n == 0 then error(fn .. ": empty input (no sample to score)", 2) end
  return p:eq(t):sum():item() / n
end

-- counts[i][j] = number of samples of true class i predicted as class j
function M.confusion_matrix(pred, target, num_classes)
  local fn = "dl.metrics.confusion_matrix"
  local p, t, ncls = labels_of(fn, pred, target)
  local n = t:numel()
  local C = num_classes
  if C ~= nil then
    if math.type(C) ~= "integer" or C < 1 then
      error(fmt("%s: bad argument #3 (num_classes must be an integer >= 1, got %s)", fn, tostring(C)), 2)
    end
    if ncls and ncls ~= C then
      error(fmt("%s: scores have %d classes but num_classes is %d", fn, ncls, C), 2)
    end
  else
    C = ncls or 0
    if n > 0 then C = math.max(C, p:max():item(), t:max():item()) end
    if C < 1 then error(fn .. ": empty input and no num_classes to size the matrix", 2) end
  end
  local opts = {dtype = "int64", device = t.device}
  if n == 0 then return dl.zeros(C, C, opts) end
  for _, pair in ipairs({{"target", t}, {"pred", p}}) do
    local lo, hi = pair[2]:min():item(), pair[2]:max():item()
    if lo < 1 or hi > C then
      error(fmt("%s: %s labels must be in 1..%d, got values in %d..%d", fn, pair[1], C, lo, hi), 2)
    end
  end
  -- one scatter_add over the flattened matrix: cell (i, j) is (i-1)*C + j
  local cell = (t - 1) * C + p
  return dl.zeros(C * C, opts):scatter_add(1, cell, dl.ones(n, opts)):view(C, C)
end

return M
