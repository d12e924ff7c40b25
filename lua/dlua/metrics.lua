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

-- labels as int64; floating labels must be whole numbers (1.5 is no class)
local function whole_labels(fn, name, t)
  if t.dtype == "int64" then return t end
  if t.dtype:sub(1, 5) == "float" and t:numel() > 0 and t:ne(t:floor()):any():item() then
    error(fmt("%s: %s labels must be whole numbers, got a %s tensor with fractional values", fn, name, t.dtype), 4)
  end
  return t:long()
end

-- pred [N] or scores [N, C] and target [N] -> labels as int64 [N], target as
-- int64 [N], C of the scores (nil for labels); detached. Labels must lie in
-- 1..C, C being the scores' classes or num_classes when given.
local function labels_of(fn, pred, target, num_classes)
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
  pred = whole_labels(fn, "pred", pred)
  target = whole_labels(fn, "target", target)
  -- labels are 1-based: a 0-based target (or one past the scores' classes)
  -- would only lower the score without a word
  if target:numel() > 0 then
    local hi = num_classes or ncls
    for _, pair in ipairs({{"target", target}, {"pred", pred}}) do
      local lo, top = pair[2]:min():item(), pair[2]:max():item()
      if lo < 1 or (hi and top > hi) then
        error(fmt("%s: %s labels must be in 1..%s (1-based), got values in %d..%d", fn, pair[1],
                  hi and tostring(hi) or "C", lo, top), 3)
      end
    end
  end
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
  local C = num_classes
  if C ~= nil and (math.type(C) ~= "integer" or C < 1) then
    error(fmt("%s: bad argument #3 (num_classes must be an integer >= 1, got %s)", fn, tostring(C)), 2)
  end
  local p, t, ncls = labels_of(fn, pred, target, C)
  local n = t:numel()
  if C ~= nil then
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
  -- one scatter_add over the flattened matrix: cell (i, j) is (i-1)*C + j
  local cell = (t - 1) * C + p
  return dl.zeros(C * C, opts):scatter_add(1, cell, dl.ones(n, opts)):view(C, C)
end

return M
