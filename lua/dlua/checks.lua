-- dlua.checks: the argument checks the Lua library shares. Errors are
-- raised at the user's line (dlua.errors) and name the function.
local raise = require("dlua.errors").raise

local M = {}

-- "[4,5]"
function M.shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

-- "fn: unknown option 'k' (valid: a, b, c)": allowed is a set (name ->
-- true) or a list of names; more sets may follow (options of several kinds)
function M.unknown_option(fn, k, allowed, ...)
  local names, seen = {}, {}
  for _, set in ipairs({allowed, ...}) do
    for key, v in pairs(set) do
      local name = type(key) == "string" and key or v
      if type(name) == "string" and not seen[name] then
        seen[name] = true
        names[#names + 1] = name
      end
    end
  end
  table.sort(names)
  return string.format("%s: unknown option '%s' (valid: %s)", fn, tostring(k), table.concat(names, ", "))
end

-- opts (nil: {}) as an options table whose keys are all in allowed
function M.options(fn, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    raise(string.format("%s: bad argument (options table expected, got %s)", fn, type(opts)))
  end
  for k in pairs(opts) do
    if not allowed[k] then raise(M.unknown_option(fn, k, allowed)) end
  end
  return opts
end

-- v (a table) as a Lua list: keys 1..#v and nothing else (no holes),
-- argument #argn
function M.list(fn, argn, v)
  local n = #v
  for i = 1, n do
    if v[i] == nil then raise(string.format("%s: bad argument #%d (not a list: entry %d is nil)", fn, argn, i)) end
  end
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      raise(string.format("%s: bad argument #%d (not a list: it has the key %s besides its %d entries)", fn, argn,
        type(k) == "string" and ('"' .. k .. '"') or ("[" .. tostring(k) .. "]"), n))
    end
  end
  return v
end

-- v as an integer >= min, argument #argn called name
function M.count(fn, argn, name, v, min)
  if math.type(v) ~= "integer" or v < min then
    raise(string.format("%s: bad argument #%d (%s must be an integer >= %d, got %s)", fn, argn, name, min,
      tostring(v)))
  end
  return v
end

return M
