-- dlua.class: the one class system of the Lua library. Modules, optimisers,
-- datasets and lr schedulers are all made by it:
--   local Root = class.root("Module", "dl.nn.Module", new) -- new(cls, ...) builds one
--   local Sub = Root:extend("Sub")              -- a subclass, `Sub(...)` builds one
-- A class is the metatable of its instances and looks missing methods up
-- in its parent. Lua reads metamethods raw from a metatable, so each
-- subclass copies its parent's. tostring(Class) is its name.
local raise = require("dlua.errors").raise

local M = {}

local root_of = setmetatable({}, {__mode = "k"}) -- class -> its root class

local METAMETHODS = {"__newindex", "__call", "__tostring", "__len", "__eq", "__lt", "__le", "__concat", "__close"}

local function class_tostring(cls) return rawget(cls, "__name") end

-- the class table of a new class whose instances `new` builds
local function make(name, parent, new, root)
  local cls = {__name = name}
  if parent then
    for _, mm in ipairs(METAMETHODS) do cls[mm] = rawget(parent, mm) end
  end
  cls.__index = cls
  root_of[cls] = root or cls
  return setmetatable(cls, {__index = parent, __call = new, __tostring = class_tostring})
end

-- the usual constructor: an empty instance, then cls.init(self, ...)
local function construct(cls, ...)
  local self = setmetatable({}, cls)
  self:init(...)
  return self
end

-- A root class: `label` names the hierarchy in errors ("dl.nn.Module");
-- new(cls, ...) builds an instance (default: an empty table, then init).
function M.root(name, label, new)
  local cls = make(name, nil, new or construct)
  rawset(cls, "_class_label", label)
  return cls
end

-- Sub = Class:extend("Sub")
function M.extend(parent, name)
  local root = type(parent) == "table" and root_of[parent]
  if not root then raise("extend: call it as Class:extend(name)") end
  if type(name) ~= "string" then
    raise(string.format("%s.extend: bad argument #1 (class name string expected, got %s)", root._class_label,
      type(name)))
  end
  return make(name, parent, getmetatable(parent).__call, root)
end

-- whether v is a class made here (not an instance)
function M.is_class(v) return type(v) == "table" and root_of[v] ~= nil end

-- the class of v when v is an instance of any class made here, else nil
function M.class_of(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and root_of[mt] and mt or nil
end

-- whether v is an instance of a class of root's hierarchy
function M.is_instance(v, root)
  return type(v) == "table" and root_of[getmetatable(v)] == root
end

return M
