-- dlua.nn.utils: dl.nn.utils, gradient clipping, flattening parameters to a
-- vector and back, and weight penalties. `params` is everywhere a tensor, a
-- Lua list of tensors or a module (its parameters()).
local dl = require "dlua"
local checks = require "dlua.checks"
local nn = dl.nn

local utils = {}
nn.utils = utils

local function param_list(fn, params)
  if dl.is_tensor(params) then return {params} end
  if nn.is_module(params) then return params:parameters() end
  if type(params) ~= "table" then
    error(string.format("dl.nn.utils.%s: bad argument #1 (tensor, list of tensors or module expected, got %s)",
      fn, type(params)), 3)
  end
  checks.list("dl.nn.utils." .. fn, 1, params)
  for i, p in ipairs(params) do
    if not dl.is_tensor(p) then
      error(string.format("dl.nn.utils.%s: bad argument #1 (entry %d is a %s, not a tensor)", fn, i, type(p)), 3)
    end
  end
  return params
end

local function check_norm_type(fn, p)
  if p == "inf" then p = math.huge end
  if type(p) ~= "number" or p ~= p or p <= 0 then
    error(string.format("dl.nn.utils.%s: norm_type must be a positive number or math.huge, got %s",
      fn, tostring(p)), 3)
  end
  return p
end

-- total p-norm of the given tensors' values, as a Lua number
local function total_norm(ts, p)
  if p == math.huge then
    local m = 0
    for _, t in ipairs(ts) do
      if t:numel() > 0 then
        local v = t:abs():max():item()
        if v > m or v ~= v then m = v end
      end
    end
    return m
  end
  local s = 0
  for _, t in ipairs(ts) do s = s + t:double():norm(p):item() ^ p end
  return s ^ (1 / p)
end

-- what a bad number argument is, for messages: NaN is a number, but no value
local function what(v)
  if type(v) == "number" and v ~= v then return "NaN" end
  return type(v)
end

-- clip_grad_norm_(params, max_norm, {norm_type = 2, error_if_nonfinite = false})
-- scales every gradient by max_norm / (total + 1e-6) when that is below 1
-- and returns the total norm of all gradients (before clipping).
function utils.clip_grad_norm_(params, max_norm, opts)
  local ps = param_list("clip_grad_norm_", params)
  if type(max_norm) ~= "number" or max_norm ~= max_norm then
    error("dl.nn.utils.clip_grad_norm_: bad argument #2 (number max_norm expected, got " .. what(max_norm) .. ")", 2)
  end
  if max_norm < 0 then
    error(string.format("dl.nn.utils.clip_grad_norm_: max_norm must be >= 0, got %g", max_norm), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("dl.nn.utils.clip_grad_norm_: bad argument #3 (options table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  local p = check_norm_type("clip_grad_norm_", opts.norm_type or 2)
  local grads = {}
  for _, t in ipairs(ps) do
    local g = t.grad
    if g then grads[#grads + 1] = g end
  end
  if #grads == 0 then return 0 end
  local total = total_norm(grads, p)
  if opts.error_if_nonfinite and (total ~= total or total == math.huge) then
    error(string.format("dl.nn.utils.clip_grad_norm_: the total norm of order %g of the gradients is non-finite (%g)",
      p, total), 2)
  end
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    dl.no_grad(function()
      for _, g in ipairs(grads) do g:mul_(coef) end
    end)
  end
  return total
end

-- clip_grad_value_(params, v): clamps every gradient into [-v, v]
function utils.clip_grad_value_(params, v)
  local ps = param_list("clip_grad_value_", params)
  if type(v) ~= "number" or v ~= v then
    error("dl.nn.utils.clip_grad_value_: bad argument #2 (number clip_value expected, got " .. what(v) .. ")", 2)
  end
  if v < 0 then
    error(string.format("dl.nn.utils.clip_grad_value_: clip_value must be >= 0, got %g", v), 2)
  end
  dl.no_grad(function()
    for _, t in ipairs(ps) do
      local g = t.grad
      if g then g:clamp_(-v, v) end
    end
  end)
end

-- parameters_to_vector(params): one 1-D tensor of all values, in order
-- (differentiable, as PyTorch's)
function utils.parameters_to_vector(params)
  local ps = param_list("parameters_to_vector", params)
  if #ps == 0 then
    error("dl.nn.utils.parameters_to_vector: bad argument #1 (no parameters)", 2)
  end
  local flat = {}
  for i, t in ipairs(ps) do flat[i] = t:reshape(-1) end
  return dl.cat(flat)
end

-- vector_to_parameters(vec, params): copies consecutive slices of the 1-D
-- vec into the parameters, in place
function utils.vector_to_parameters(vec, params)
  if not dl.is_tensor(vec) then
    error("dl.nn.utils.vector_to_parameters: bad argument #1 (tensor expected, got " .. type(vec) .. ")", 2)
  end
  if vec:dim() ~= 1 then
    error("dl.nn.utils.vector_to_parameters: expected a 1-D vector, got shape " .. nn._shape_str(vec), 2)
  end
  local ps = param_list("vector_to_parameters", params)
  local n = 0
  for _, t in ipairs(ps) do n = n + t:numel() end
  if n ~= vec:numel() then
    error(string.format("dl.nn.utils.vector_to_parameters: vector of shape %s does not match the %d parameter elements",
      nn._shape_str(vec), n), 2)
  end
  dl.no_grad(function()
    local off = 1
    for _, t in ipairs(ps) do
      local k = t:numel()
      if k > 0 then t:copy_(vec:narrow(1, off, k):reshape(t:size())) end
      off = off + k
    end
  end)
end

local function penalty(fn, params, term)
  local ps = param_list(fn, params)
  local total
  for _, t in ipairs(ps) do
    local s = term(t):sum()
    total = total and total + s or s
  end
  return total or dl.tensor(0.0)
end

-- l1_penalty(params) = sum |w|, l2_penalty(params) = sum w^2: differentiable
-- 0-d tensors to add to a loss (times a coefficient)
function utils.l1_penalty(params)
  return penalty("l1_penalty", params, function(t) return t:abs() end)
end

function utils.l2_penalty(params)
  return penalty("l2_penalty", params, function(t) return t:square() end)
end

return nn
