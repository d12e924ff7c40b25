-- dlua.nn.containers: Sequential, ModuleList, Residual, Identity, Flatten.
--
-- Naming: as in PyTorch, the children of Sequential and ModuleList are named
-- "0", "1", ... (so named_parameters gives "0.weight" and tostring shows
-- "(0): Linear(...)"), while Lua indexing is 1-based: `seq[1]` is the first
-- module (named "0"), `#seq` the number of modules, and `seq[#seq + 1] = m`
-- or `seq:add(m)` appends.
local dl = require "dlua"
local nn = dl.nn
local Module = nn.Module

-- cached child names "0", "1", ... so forward builds no strings
local NAMES = setmetatable({}, {__index = function(t, i)
  local s = tostring(i - 1)
  rawset(t, i, s)
  return s
end})

---------------------------------------------------------------------------
-- shared list behaviour of Sequential and ModuleList
---------------------------------------------------------------------------

local function list_class(name)
  local C = Module:extend(name)
  function C:__getitem(i)
    if math.type(i) ~= "integer" then return nil end
    local n = rawget(self, "_len")
    if i < 0 then i = n + 1 + i end
    if i < 1 or i > n then return nil end
    return rawget(self, NAMES[i])
  end
  function C:__setitem(i, m)
    local n = rawget(self, "_len")
    if math.type(i) ~= "integer" or i < 1 or i > n + 1 then
      error(string.format("%s: index %s out of range (1..%d)", self.__name, tostring(i), n + 1), 3)
    end
    if not nn.is_module(m) then
      error(string.format("%s: only modules can be stored (got %s)", self.__name, type(m)), 3)
    end
    if i == n + 1 then rawset(self, "_len", n + 1) end
    Module.add_module(self, NAMES[i], m)
  end
  function C.__len(self)
    return rawget(self, "_len")
  end
  nn._enable_getitem(C)
  C.__newindex = Module.__newindex

  function C:init(...)
    rawset(self, "_len", 0)
    local args = table.pack(...)
    -- a single Lua list of modules is accepted as well as varargs
    if args.n == 1 and type(args[1]) == "table" and not nn.is_module(args[1]) then
      args = {n = #args[1], table.unpack(args[1])}
    end
    for i = 1, args.n do
      if not nn.is_module(args[i]) then
        error(string.format("%s: bad argument #%d (module expected, got %s)", name, i, type(args[i])), 3)
      end
      self:append(args[i])
    end
  end

  function C:append(m)
    if not nn.is_module(m) then
      error(string.format("%s.append: bad argument #1 (module expected, got %s)", name, type(m)), 2)
    end
    local n = rawget(self, "_len") + 1
    rawset(self, "_len", n)
    Module.add_module(self, NAMES[n], m)
    return self
  end
  C.add = C.append

  -- list:extend({m1, m2}) reaches this through Module.extend
  function C:extend_with(list)
    if type(list) ~= "table" or nn.is_module(list) then
      error(string.format("%s.extend: bad argument #1 (list of modules expected, got %s)", name,
        nn.is_module(list) and "a module" or type(list)), 3)
    end
    for _, m in ipairs(list) do self:append(m) end
    return self
  end

  -- for i, m in seq:iter() do ... end (i 1-based); ipairs(seq) works too
  function C:iter()
    local i, n = 0, rawget(self, "_len")
    return function()
      i = i + 1
      if i <= n then return i, rawget(self, NAMES[i]) end
    end
  end
  return C
end

nn.Sequential = list_class("Sequential")

-- whether modules a, b of a Sequential run as one: an instance of a class
-- that defines _forward_relu itself (BatchNorm; not a subclass, which may
-- override forward), then an nn.ReLU, neither with a forward of its own
local function fuses_relu(a, b)
  local cls = getmetatable(a)
  return rawget(cls, "_forward_relu") ~= nil and rawget(a, "forward") == nil and getmetatable(b) == nn.ReLU
    and rawget(b, "forward") == nil
end

-- whether the module after those is an nn.MaxPool2d of 2x2 windows with
-- stride 2, unpadded, undilated, floor mode, without indices
local function is2(v, n) return v == n or (type(v) == "table" and v[1] == n and v[2] == n and #v == 2) end
local NO_OPTS = {}
local function pools_2x2(c)
  if getmetatable(c) ~= nn.MaxPool2d or rawget(c, "forward") ~= nil then return false end
  local o = c.opts or NO_OPTS
  return is2(c.kernel_size, 2) and (o.stride == nil or is2(o.stride, 2)) and (o.padding == nil or is2(o.padding, 0))
    and (o.dilation == nil or is2(o.dilation, 1)) and not o.ceil_mode and not o.return_indices
end

-- whether m is an nn.Conv2d without a forward of its own, followed by a
-- BatchNorm2d and a ReLU that fuse
local function conv_block(self, m, i, n)
  if i + 2 > n or getmetatable(m) ~= nn.Conv2d or rawget(m, "forward") ~= nil then return false end
  local bn = rawget(self, NAMES[i + 1])
  return getmetatable(bn) == nn.BatchNorm2d and fuses_relu(bn, rawget(self, NAMES[i + 2]))
end

-- one input, passed through each module in turn (as PyTorch's); BatchNorm
-- then ReLU run fused, and with a MaxPool2d(2) after them BatchNorm2d, ReLU
-- and the pooling; a Conv2d before BatchNorm2d and ReLU (and the pooling)
-- joins them (the same values and gradients, passes less each way)
function nn.Sequential:forward(x)
  local n = rawget(self, "_len")
  local i = 1
  while i <= n do
    local m = rawget(self, NAMES[i])
    local y
    if conv_block(self, m, i, n) then
      local pool = i + 3 <= n and pools_2x2(rawget(self, NAMES[i + 3]))
      y = m:_forward_block(x, rawget(self, NAMES[i + 1]), pool)
      if y then
        x = y
        i = i + (pool and 4 or 3)
      end
    end
    if y then -- done above
    elseif i < n and fuses_relu(m, rawget(self, NAMES[i + 1])) then
      local pool = rawget(self, NAMES[i + 2])
      local y = i + 1 < n and m._forward_relu_pool and pools_2x2(pool) and m:_forward_relu_pool(x)
      if y then
        x = y
        i = i + 3
      else
        x = m:_forward_relu(x)
        i = i + 2
      end
    else
      x = m(x)
      i = i + 1
    end
  end
  return x
end

nn.ModuleList = list_class("ModuleList")

function nn.ModuleList:forward()
  error("ModuleList: has no forward; iterate over its modules instead", 2)
end

---------------------------------------------------------------------------
-- Residual(m): x + m(x)
---------------------------------------------------------------------------

local Residual = Module:extend("Residual")
nn.Residual = Residual

function Residual:init(m)
  if not nn.is_module(m) then
    error("Residual: bad argument #1 (module expected, got " .. type(m) .. ")", 3)
  end
  self.module = m
end

function Residual:forward(x, ...)
  return x + self.module(x, ...)
end

---------------------------------------------------------------------------
-- Identity
---------------------------------------------------------------------------

local Identity = Module:extend("Identity")
nn.Identity = Identity

-- accepts and ignores constructor arguments, as PyTorch's does
function Identity:init() end

function Identity:forward(x)
  return x
end

---------------------------------------------------------------------------
-- Flatten(start_dim = 2, end_dim = -1): 1-based dims; PyTorch's default
-- start_dim = 1 keeps the batch dim, which is our 2.
---------------------------------------------------------------------------

local Flatten = Module:extend("Flatten")
nn.Flatten = Flatten

function Flatten:init(start_dim, end_dim)
  start_dim = start_dim or 2
  end_dim = end_dim or -1
  if math.type(start_dim) ~= "integer" then
    error("Flatten: bad argument #1 (integer start_dim expected, got " .. type(start_dim) .. ")", 3)
  end
  if math.type(end_dim) ~= "integer" then
    error("Flatten: bad argument #2 (integer end_dim expected, got " .. type(end_dim) .. ")", 3)
  end
  self.start_dim = start_dim
  self.end_dim = end_dim
end

function Flatten:forward(x)
  return x:flatten(self.start_dim, self.end_dim)
end

function Flatten:extra_repr()
  return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim)
end

return nn
