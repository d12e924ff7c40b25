-- dlua.errors: the one way library Lua code raises an error at the user's
-- line. A check in library code, or an error caught from a C function and
-- raised again, points at the first stack level outside dlua's own Lua
-- files (and outside C functions), never at `[dlua]/dlua.nn.layers.lua:48`.
--
-- The library's public Lua functions and methods are wrapped by `named`
-- (lua/dlua/init.lua does it for all of them), so an error coming from
-- dlua's own code below them names what the user called and points at the
-- user's line: `dl.data.kfold: ...`, `SGD:step: ...`. Errors of the user's
-- own code (a closure given to the library, a forward they wrote) pass
-- through unchanged.
local M = {}

-- the directory of the library's chunks: "=[dlua]/" when embedded (chunks
-- are named "=[dlua]/dlua.x.lua"), this file's directory when loaded from
-- disk (DLUA_LUA_PATH)
local LIB = debug.getinfo(1, "S").source:match("^(=%[dlua%]/)") or debug.getinfo(1, "S").source:match("^(@.*[/\\])")

local function internal(info)
  return info.what == "C" or (LIB ~= nil and info.source:sub(1, #LIB) == LIB)
end

-- the level, as error() counts from its caller's caller, of the user's code
local function user_level()
  local level = 3 -- the caller of raise/rethrow's caller
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 1 end
    if not internal(info) then return level - 1 end
    level = level + 1
  end
end

-- raises msg at the user's line
function M.raise(msg) error(msg, user_level()) end

-- the message of a caught error without the position Lua put before it
function M.strip(e) return (tostring(e):gsub("^[^:\n]*:%d+: ", "")) end

-- raises a caught error again, at the user's line
function M.rethrow(e) error(M.strip(e), user_level()) end

-- What the handler below records at the error: whether it comes from the
-- library (a check, a C op called by library code, a Lua runtime error in a
-- library file) or from the user's own code (a callback given to the
-- library). Nested library calls name each function once, outermost first:
-- "Residual: Linear(3 -> 3): input must be a tensor, got nil".
local Caught = {}

local function from_library()
  local level = 3 -- above the handler and error()
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return true end
    if info.what ~= "C" then return internal(info) end
    level = level + 1
  end
end

-- msg named by name: kept when it names it already ("SGD:step: ...", or
-- "dl.optim.SGD: step expects ..."), else prefixed
local function name_message(name, msg)
  local owner, short = name:match("^(.-)[:.]([%w_]+)$")
  if msg:find(name, 1, true)
    or (owner and msg:find(owner, 1, true) and msg:find("%f[%w_]" .. short .. "%f[^%w_]")) then
    return msg
  end
  -- "add_module: bad argument ..." from Linear:add_module says it once
  if short and msg:sub(1, #short + 2) == short .. ": " then msg = msg:sub(#short + 3) end
  return name .. ": " .. msg
end

local function handler(e) return setmetatable({e, from_library()}, Caught) end

-- the results of a wrapped call, or its error named by label
local function finish(label, first, ok, ...)
  if ok then return ... end
  local c = ...
  if getmetatable(c) ~= Caught then error(c, 0) end
  local e, library = c[1], c[2]
  if not library or type(e) ~= "string" then error(e, 0) end
  local name = type(label) == "function" and label(first) or label
  error(name_message(name, M.strip(e)), user_level())
end

-- fn, wrapped so that its errors name it (label: a string, or a function
-- of the first argument, for methods). The wrapper costs one xpcall (~120
-- ns); the handler runs only on an error. One closure per function, made
-- as the library loads (name_library wraps about 560).
function M.named(label, fn)
  return function(first, ...) return finish(label, first, xpcall(fn, handler, first, ...)) end
end

-- Wraps every public function, method and constructor of the library that
-- is written in Lua (a walk of dl, once, at load) with `named`. A module's
-- forward is named by the module (`ReLU: ...`, `Linear(3 -> 2): ...`); other
-- methods by the receiver's class (`SGD:zero_grad: ...`); user classes made
-- later are left alone, their errors are their own.
function M.name_library(dl)
  local is_class = require("dlua.class").is_class
  local SKIP = {init = true, extend = true, __call = true, __index = true, __newindex = true}
  local public_name = {} -- class -> "dl.nn.Linear"
  local lua_fn = dl._lua_function
  local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do if type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end end
    table.sort(keys)
    return keys
  end
  local function class_of(self, cls)
    local mt = type(self) == "table" and getmetatable(self)
    return type(mt) == "table" and (rawget(mt, "__name") or public_name[mt]) or public_name[cls]
  end
  local function method_label(cls, k)
    if k == "forward" then
      return function(self)
        return type(self) == "table" and self._label and self:_label() or rawget(cls, "__name")
      end
    end
    return function(self) return class_of(self, cls) .. ":" .. k end
  end
  local function constructor_label(cls) return public_name[cls] or tostring(cls) end
  local function name_class(cls, name)
    public_name[cls] = name
    for k, f in pairs(cls) do
      if type(k) == "string" and lua_fn(f) and not SKIP[k] and (k:sub(1, 1) ~= "_" or k == "__tostring" or k == "__len") then
        rawset(cls, k, M.named(method_label(cls, k), f))
      end
    end
    local mt = getmetatable(cls)
    if mt and lua_fn(mt.__call) then mt.__call = M.named(constructor_label, mt.__call) end
  end
  local done = {[dl.Tensor] = true}
  local function name_all(t, prefix)
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if done[v] then -- reached before under another name
      elseif lua_fn(v) then
        t[k] = M.named(prefix .. k, v)
      elseif type(v) == "table" then
        done[v] = true
        -- a class, or a method table whose instances a function makes (dl.utils.Progress)
        if is_class(v) or rawget(v, "__index") == v then name_class(v, prefix .. k)
        elseif getmetatable(v) == nil then name_all(v, prefix .. k .. ".") end
      end
    end
  end
  name_all(dl, "dl.")
end

return M
