-- demo_cli.lua — the command line the demo scripts share (train_fashion.lua,
-- train_fashion_cnn.lua, train_charlm.lua). A script lists its options once,
-- each {flag, key, kind}: kind "flag" takes no value, "string" any value,
-- "count" a positive integer, "number" a positive number. Bad arguments
-- print the script's usage and exit with status 2.
--   package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
--   local cli = require "demo_cli"
--   local O, given = cli.parse("train_x.lua", USAGE, OPTIONS, {out = cli.repo() .. "/runs/x", ...})
local M = {}

-- the repository root, from the running script's path (scripts/<name>.lua)
function M.repo()
  local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  return dir:match("^(.*)/scripts$") or (dir == "scripts" and ".") or (dir .. "/..")
end

-- the options (defaults, then what the command line gives) and the set of
-- keys it gave
function M.parse(script, usage_text, options, defaults)
  local function usage(msg)
    io.stderr:write(script .. ": " .. msg .. "\n" .. usage_text .. "\n")
    os.exit(2)
  end
  local by_flag = {}
  for _, o in ipairs(options) do by_flag[o[1]] = o end
  local O, given = {}, {}
  for k, v in pairs(defaults) do O[k] = v end
  local i = 1
  while arg and arg[i] do
    local a = arg[i]
    if a == "-h" or a == "--help" then usage("help") end
    local o = by_flag[a] or usage("unknown argument " .. a)
    local key, kind = o[2], o[3]
    if kind == "flag" then
      O[key] = true
    else
      i = i + 1
      local s = arg[i]
      if s == nil then usage(a .. " needs a value") end
      if kind == "string" then
        O[key] = s
      else
        local v = tonumber(s)
        if v == nil or v <= 0 or (kind == "count" and v ~= math.floor(v)) then
          usage(a .. " needs a positive " .. (kind == "count" and "integer" or "number"))
        end
        O[key] = kind == "count" and math.tointeger(v) or v
      end
    end
    given[key] = true
    i = i + 1
  end
  return O, given
end

return M
