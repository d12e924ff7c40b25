-- dlua.nn.module: dl.nn.Module (the base of every layer and user model) and
-- dl.nn.Parameter.
--
-- Classes: `local M = dl.nn.Module:extend("M")`, `function M:init(...) end`,
-- `function M:forward(x) end`, `local m = M(...)`; `m(x)` calls forward.
-- A class table is the metatable of its instances, so `m.fc` is a raw field
-- lookup and `m(x)` costs one __call plus the forward lookup.
--
-- Registration: every field first assigned through `self.name = v` is
-- remembered in assignment order (`self._order`); whether a name is a child
-- module, a parameter or a buffer is decided from its current value when the
-- module is walked. So reassigning a field (`self.fc = other`) is seen, and
-- a field set to a plain value or nil stops being a child; a name keeps its
-- first position when it is assigned again.
--
-- state_dict(): a table name -> tensor (detached views that share storage
-- with the parameters) whose metatable makes `pairs(sd)` yield the names in
-- registration order; dl.nn.state_dict_keys(sd) returns that order as a list.
--
-- to(dtype|device): converts parameters and buffers in place (t.data = ...),
-- as PyTorch does: each stays the same Lua object (an optimizer built before
-- to() keeps working), its grad is converted too, and a parameter shared by
-- several modules is converted once. Integer buffers keep their dtype.
local dl = require "dlua"
local nn = dl.nn

---------------------------------------------------------------------------
-- Parameters
---------------------------------------------------------------------------

local is_param = setmetatable({}, {__mode = "k"})

-- dl.nn.Parameter(t, requires_grad = true): a leaf sharing t's storage,
-- marked as a parameter so module fields holding it register as such.
function nn.Parameter(t, requires_grad)
  if not dl.is_tensor(t) then
    error("dl.nn.Parameter: expected a tensor, got " .. type(t), 2)
  end
  local p = t:detach()
  if requires_grad ~= false then p:requires_grad_(true) end
  is_param[p] = true
  return p
end

function nn.is_parameter(t)
  return is_param[t] == true
end

local checks = require "dlua.checks"
local shape_str = checks.shape_str
nn._shape_str = shape_str

---------------------------------------------------------------------------
-- Classes
---------------------------------------------------------------------------

local class = require "dlua.class"
local errors = require "dlua.errors"
local raise = errors.raise

local function is_module(v)
  return class.is_instance(v, nn.Module)
end
nn.is_module = is_module

local function construct(cls, ...)
  local self = setmetatable({_order = {}, _buffers = {}, _param_slots = {}, training = true}, cls)
  self:init(...)
  return self
end

local Module = class.root("Module", "dl.nn.Module", construct)
nn.Module = Module

-- Instances record the names of new fields in order; the value itself is
-- stored raw so later reads are plain table lookups.
local function module_newindex(self, k, v)
  if type(k) == "number" then
    local setitem = self.__setitem
    if setitem then return setitem(self, k, v) end
    error(self.__name .. ": cannot assign to integer key " .. k, 2)
  end
  if v ~= nil then
    local order = rawget(self, "_order")
    local seen = false
    for i = 1, #order do
      if order[i] == k then seen = true; break end
    end
    if not seen then order[#order + 1] = k end
    if is_param[v] then rawget(self, "_param_slots")[k] = true end
  end
  rawset(self, k, v)
end
Module.__newindex = module_newindex

function Module.__call(self, ...)
  return self:forward(...)
end

-- Sub = Class:extend("Sub"). On a list instance (Sequential, ModuleList),
-- list:extend({m1, m2}) appends modules, as PyTorch's ModuleList.extend.
function Module.extend(parent, name)
  if is_module(parent) and type(name) == "table" and parent.extend_with then
    return parent:extend_with(name)
  end
  local cls = class.extend(parent, name)
  if parent.__getitem then nn._enable_getitem(cls) end
  return cls
end

-- A class that defines __getitem(self, i) calls this so integer keys
-- (seq[1]) fall through to it; its subclasses inherit the behaviour.
function nn._enable_getitem(cls)
  cls.__index = function(t, k)
    local v = cls[k]
    if v == nil and type(k) == "number" then return cls.__getitem(t, k) end
    return v
  end
end

function Module:init() end

function Module:forward()
  error(self.__name .. ": a Module subclass must define " .. self.__name .. ":forward(...)", 2)
end

function Module:_get_name()
  return self.__name
end

function Module:extra_repr()
  return ""
end

---------------------------------------------------------------------------
-- Registration helpers
---------------------------------------------------------------------------

local function check_name(fn, name)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(string.format("%s: bad argument #1 (name must be a non-empty string without '.', got %s)",
      fn, type(name) == "string" and string.format("%q", name) or type(name)), 3)
  end
end

function Module:add_module(name, m)
  check_name("add_module", name)
  if m ~= nil and not is_module(m) then
    error("add_module: bad argument #2 (module expected, got " .. type(m) .. ")", 2)
  end
  module_newindex(self, name, m)
  return self
end
Module.register_module = Module.add_module

function Module:register_parameter(name, p)
  check_name("register_parameter", name)
  if p ~= nil and not is_param[p] then
    if not dl.is_tensor(p) then
      error("register_parameter: bad argument #2 (tensor expected, got " .. type(p) .. ")", 2)
    end
    p = nn.Parameter(p)
  end
  module_newindex(self, name, p)
  return p
end

-- register_buffer(name, tensor|nil, persistent = true)
function Module:register_buffer(name, t, persistent)
  check_name("register_buffer", name)
  if t ~= nil and not dl.is_tensor(t) then
    error("register_buffer: bad argument #2 (tensor or nil expected, got " .. type(t) .. ")", 2)
  end
  rawget(self, "_buffers")[name] = persistent ~= false
  module_newindex(self, name, t)
  return t
end

---------------------------------------------------------------------------
-- Walking the tree
---------------------------------------------------------------------------

-- own entries in registration order, filtered by kind
local function own_children(self, out)
  local order = self._order
  for i = 1, #order do
    local k = order[i]
    local v = rawget(self, k)
    if is_module(v) then out[#out + 1] = {k, v} end
  end
  return out
end

-- A parameter's field is raw after its first assignment, so replacing it
-- (m.weight = m.weight * 2) cannot be stopped where it happens, as PyTorch
-- does; it is refused here, where the parameters are collected, rather than
-- leaving the module with a tensor no optimiser or state_dict sees.
local function own_params(self, out)
  local order, bufs, slots = self._order, self._buffers, self._param_slots
  for i = 1, #order do
    local k = order[i]
    local v = rawget(self, k)
    if bufs[k] ~= nil then -- a buffer: not a parameter slot
    elseif is_param[v] then
      out[#out + 1] = {k, v}
    elseif v ~= nil and slots[k] then
      raise(string.format("%s: parameter '%s' was replaced by a %s; assign a dl.nn.Parameter (or nil), "
        .. "or change its values in place (%s:copy_(t) under dl.no_grad)", self.__name, k,
        dl.is_tensor(v) and "tensor that is not a Parameter" or type(v), k))
    end
  end
  return out
end

local function own_buffers(self, out, persistent_only)
  local order, bufs = self._order, self._buffers
  for i = 1, #order do
    local k = order[i]
    local v = rawget(self, k)
    local b = bufs[k]
    if b ~= nil and dl.is_tensor(v) and (b or not persistent_only) then out[#out + 1] = {k, v} end
  end
  return out
end

-- list of {name, module} with dotted names, self first (name = prefix)
function Module:named_modules(prefix, memo)
  prefix = prefix or ""
  local out = {}
  memo = memo or {}
  local function walk(m, pre)
    if memo[m] then return end
    memo[m] = true
    out[#out + 1] = {pre, m}
    for _, c in ipairs(own_children(m, {})) do
      walk(c[2], pre == "" and c[1] or pre .. "." .. c[1])
    end
  end
  walk(self, prefix)
  return out
end

function Module:modules()
  local out = {}
  for i, e in ipairs(self:named_modules()) do out[i] = e[2] end
  return out
end

function Module:named_children()
  local out, memo = {}, {}
  for _, c in ipairs(own_children(self, {})) do
    if not memo[c[2]] then memo[c[2]] = true; out[#out + 1] = c end
  end
  return out
end

function Module:children()
  local out = {}
  for i, e in ipairs(self:named_children()) do out[i] = e[2] end
  return out
end

local function named_members(self, getter, recurse, dedup)
  local out, seen = {}, {}
  local mods = recurse == false and {{"", self}} or self:named_modules()
  for _, e in ipairs(mods) do
    local pre = e[1]
    for _, kv in ipairs(getter(e[2], {})) do
      local t = kv[2]
      if not (dedup and seen[t]) then
        seen[t] = true
        out[#out + 1] = {pre == "" and kv[1] or pre .. "." .. kv[1], t}
      end
    end
  end
  return out
end

-- list of {name, tensor}; a parameter shared by several modules appears once
function Module:named_parameters(opts)
  local recurse = not (type(opts) == "table" and opts.recurse == false)
  return named_members(self, own_params, recurse, true)
end

function Module:parameters(opts)
  local out = {}
  for i, e in ipairs(self:named_parameters(opts)) do out[i] = e[2] end
  return out
end

function Module:named_buffers(opts)
  local recurse = not (type(opts) == "table" and opts.recurse == false)
  return named_members(self, own_buffers, recurse, true)
end

function Module:buffers(opts)
  local out = {}
  for i, e in ipairs(self:named_buffers(opts)) do out[i] = e[2] end
  return out
end

function Module:num_parameters(opts)
  local trainable = type(opts) == "table" and opts.trainable_only
  local n = 0
  for _, p in ipairs(self:parameters()) do
    if not trainable or p.requires_grad then n = n + p:numel() end
  end
  return n
end

-- m:get_submodule("encoder.0")
function Module:get_submodule(path)
  if type(path) ~= "string" then
    error("get_submodule: bad argument #1 (string expected, got " .. type(path) .. ")", 2)
  end
  local m = self
  if path == "" then return m end
  for part in path:gmatch("[^.]+") do
    local c = rawget(m, part)
    if not is_module(c) then
      error(string.format("get_submodule: %s has no submodule %q", m.__name, part), 2)
    end
    m = c
  end
  return m
end

---------------------------------------------------------------------------
-- Modes and in-place transforms
---------------------------------------------------------------------------

function Module:train(mode)
  if mode == nil then mode = true end
  if type(mode) ~= "boolean" then
    error("train: bad argument #1 (boolean expected, got " .. type(mode) .. ")", 2)
  end
  for _, m in ipairs(self:modules()) do rawset(m, "training", mode) end
  return self
end

function Module:eval()
  return self:train(false)
end

-- fn(module) on every submodule, children first, then self (as PyTorch)
function Module:apply(fn)
  if type(fn) ~= "function" then
    error("apply: bad argument #1 (function expected, got " .. type(fn) .. ")", 2)
  end
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

function Module:requires_grad_(flag)
  if flag == nil then flag = true end
  for _, p in ipairs(self:parameters()) do p:requires_grad_(flag) end
  return self
end

-- zero_grad({set_to_none = true})
function Module:zero_grad(opts)
  local to_none = not (type(opts) == "table" and opts.set_to_none == false)
  for _, p in ipairs(self:parameters()) do
    if to_none then
      p.grad = nil
    else
      local g = p.grad
      if g then dl.no_grad(function() g:zero_() end) end
    end
  end
  return self
end

-- Resolves what to() was asked for: a dtype, a device, a tensor (both) or
-- a table {dtype =, device =}.
local function to_target(arg)
  if dl.is_tensor(arg) then return arg.dtype, arg.device end
  if type(arg) == "table" then
    checks.options("to", arg, {dtype = true, device = true})
    local dtype = arg.dtype
    if dtype ~= nil then -- its canonical name ("double" is float64)
      local ok, probe = pcall(dl.empty, 0, {dtype = dtype})
      if not ok then errors.rethrow(probe) end
      dtype = probe.dtype
    end
    return dtype, arg.device
  end
  if type(arg) ~= "string" then
    error("to: bad argument #1 (dtype, device, tensor or {dtype, device} expected, got " .. type(arg) .. ")", 3)
  end
  local ok, probe = pcall(dl.empty, 0, {dtype = arg})
  if ok then return probe.dtype, nil end
  return nil, arg
end

-- device is the canonical name (as tensors report it) or nil
local function convert(t, dtype, device)
  local out = t
  if dtype and t.dtype ~= dtype and t.dtype:find("^float") then out = out:to(dtype) end
  if device and out.device ~= device then out = out:to(device) end
  return out
end

function Module:to(arg)
  local dtype, device = to_target(arg)
  if dtype and not dtype:find("^float") then -- before anything is converted
    error("to: a module converts to floating point dtypes only, got " .. dtype, 2)
  end
  if device then
    -- validate once, so a bad device fails before anything is converted
    local ok, probe = pcall(function() return dl.empty(0):to(device) end)
    if not ok then errors.rethrow(probe) end
    device = probe.device
  end
  local memo = {}
  dl.no_grad(function()
    for _, e in ipairs(self:named_modules()) do
      local m = e[2]
      local order, bufs = m._order, m._buffers
      for i = 1, #order do
        local k = order[i]
        local v = rawget(m, k)
        if dl.is_tensor(v) and (bufs[k] ~= nil or is_param[v]) then
          -- converted in place (t.data = ...), as PyTorch does: parameters stay
          -- the same objects, so optimizers built before to() keep working
          if not memo[v] then
            memo[v] = true
            local nv = convert(v, dtype, device)
            if nv ~= v then
              local g = v.grad
              v.grad = nil
              v.data = nv
              if g then v.grad = convert(g, dtype, device) end
            end
          end
        end
      end
    end
  end)
  return self
end

function Module:double() return self:to("float64") end
function Module:float() return self:to("float32") end
function Module:cpu() return self:to("cpu") end
function Module:cuda() return self:to("cuda") end

---------------------------------------------------------------------------
-- state_dict
---------------------------------------------------------------------------

-- names of a state dict in order: registration order for ours (entries
-- added later follow, sorted), sorted for a plain table (e.g. from dl.load)
function nn.state_dict_keys(sd)
  local mt = getmetatable(sd)
  local order = mt and mt.keys or {}
  local keys, listed = {}, {}
  for _, k in ipairs(order) do
    if rawget(sd, k) ~= nil then keys[#keys + 1] = k; listed[k] = true end
  end
  local extra = {}
  for k in next, sd do
    if not listed[k] then extra[#extra + 1] = k end
  end
  table.sort(extra, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(extra) do keys[#keys + 1] = k end
  return keys
end

local function ordered_pairs(sd)
  local keys = nn.state_dict_keys(sd)
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, sd[k] end
  end, sd, nil
end

-- parameters and persistent buffers of every module, under every name: a
-- module reached by two names (the same layer used twice) is listed under
-- both, as PyTorch's state_dict recursion does (named_modules lists it once)
local function state_entries(self)
  local out, path = {}, {}
  local function walk(m, pre)
    if path[m] then return end -- a module inside itself: not followed again
    path[m] = true
    local own = own_params(m, {})
    own_buffers(m, own, true)
    for _, kv in ipairs(own) do
      out[#out + 1] = {pre == "" and kv[1] or pre .. "." .. kv[1], kv[2], m, kv[1]}
    end
    for _, c in ipairs(own_children(m, {})) do walk(c[2], pre == "" and c[1] or pre .. "." .. c[1]) end
    path[m] = nil
  end
  walk(self, "")
  return out
end

function Module:state_dict()
  local keys = {}
  local sd = setmetatable({}, {keys = keys, __pairs = ordered_pairs})
  for _, e in ipairs(state_entries(self)) do
    if sd[e[1]] == nil then keys[#keys + 1] = e[1] end
    sd[e[1]] = e[2]:detach()
  end
  return sd
end

local function quoted(list)
  local q = {}
  for i, k in ipairs(list) do q[i] = string.format("%q", k) end
  return table.concat(q, ", ")
end

-- load_state_dict(sd, {strict = true}) copies values in place (no grad)
-- and returns {missing_keys, unexpected_keys, mismatched_keys} (lists of
-- names). Strict: missing keys, unexpected keys and shape mismatches are one
-- error naming them all (both shapes for a mismatch), and nothing is loaded.
-- strict = false: they are only reported, and mismatched entries are
-- skipped (PyTorch raises on a mismatch even then). A value that is not a
-- tensor is always an error.
function Module:load_state_dict(sd, opts)
  if type(sd) ~= "table" then
    error("load_state_dict: bad argument #1 (table expected, got " .. type(sd) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("load_state_dict: bad argument #2 (options table expected, got " .. type(opts) .. ")", 2)
  end
  local strict = not (opts and opts.strict == false)
  local entries = state_entries(self)
  local expected, missing, unexpected, mismatched = {}, {}, {}, {}
  local errors, skip = {}, {}
  for _, e in ipairs(entries) do
    local name, t = e[1], e[2]
    expected[name] = true
    local src = rawget(sd, name)
    if src == nil then
      missing[#missing + 1] = name
    elseif not dl.is_tensor(src) then
      errors[#errors + 1] = string.format("value for %s is a %s, not a tensor", name, type(src))
    elseif shape_str(src) ~= shape_str(t) then
      mismatched[#mismatched + 1] = name
      skip[name] = true
      if strict then
        errors[#errors + 1] = string.format(
          "size mismatch for %s: copying a param with shape %s from checkpoint, the shape in current model is %s",
          name, shape_str(src), shape_str(t))
      end
    end
  end
  for _, k in ipairs(nn.state_dict_keys(sd)) do
    if not expected[k] then unexpected[#unexpected + 1] = k end
  end
  if strict then
    if #unexpected > 0 then
      table.insert(errors, 1, "Unexpected key(s) in state_dict: " .. quoted(unexpected))
    end
    if #missing > 0 then
      table.insert(errors, 1, "Missing key(s) in state_dict: " .. quoted(missing))
    end
  end
  if #errors > 0 then
    error("load_state_dict: error(s) in loading state_dict for " .. self.__name .. ":\n\t"
      .. table.concat(errors, "\n\t"), 2)
  end
  dl.no_grad(function()
    for _, e in ipairs(entries) do
      local src = rawget(sd, e[1])
      if src ~= nil and not skip[e[1]] then e[2]:copy_(src) end
    end
  end)
  return {missing_keys = missing, unexpected_keys = unexpected, mismatched_keys = mismatched}
end

---------------------------------------------------------------------------
-- tostring: PyTorch's repr layout
---------------------------------------------------------------------------

local function add_indent(s, n)
  local pad = string.rep(" ", n)
  return (s:gsub("\n", "\n" .. pad))
end

function Module.__tostring(self)
  local lines = {}
  local extra = self:extra_repr()
  local n_extra = 0
  if extra ~= nil and extra ~= "" then
    for line in (extra .. "\n"):gmatch("(.-)\n") do
      lines[#lines + 1] = line
      n_extra = n_extra + 1
    end
  end
  local children = own_children(self, {})
  for _, c in ipairs(children) do
    lines[#lines + 1] = "(" .. c[1] .. "): " .. add_indent(tostring(c[2]), 2)
  end
  local s = self:_get_name() .. "("
  if #lines > 0 then
    if n_extra == 1 and #children == 0 then
      s = s .. lines[1]
    else
      s = s .. "\n  " .. table.concat(lines, "\n  ") .. "\n"
    end
  end
  return s .. ")"
end

-- Python spelling of booleans, for extra_repr texts that match PyTorch's
function nn._pybool(b)
  return b and "True" or "False"
end

return nn
