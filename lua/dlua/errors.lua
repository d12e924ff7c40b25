-- dlua.errors: the one way library Lua code raises an error at the user's
-- line. A check in library code, or an error caught from a C function and
-- raised again, points at the first stack level outside dlua's own Lua
-- files (and outside C functions), never at `[dlua]/dlua.nn.layers.lua:48`.
local M = {}

-- embedded library chunks are named "=[dlua]/dlua.x.lua"; loaded from disk
-- (DLUA_LUA_PATH) they are "@.../dlua/x.lua"
local function internal(info)
  local s = info.source
  return info.what == "C" or s:find("^=%[dlua%]/") ~= nil or s:find("^@.-[/\\]dlua[/\\]") ~= nil
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

return M
