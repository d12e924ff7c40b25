-- The examples of the docs run: every ```lua block of docs/guide.md and of
-- each reference page, a page's blocks in order as one script (later
-- blocks use what earlier ones made), in an empty directory, by bin/dlua.
-- So an example cannot rot while the code changes under it.
local H = require "spec.helper"

local bin = os.getenv("DLUA_BIN") or "bin/dlua"
local lib = os.getenv("DLUA_LIBDIR") or "lib"
local root = io.popen("pwd"):read("l")
local function abs(p) return p:sub(1, 1) == "/" and p or root .. "/" .. p end

local function lua_blocks(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  local out = {}
  for block in text:gmatch("\n```lua\n(.-)\n```") do out[#out + 1] = block end
  return table.concat(out, "\n")
end

local pages = {"docs/guide.md"}
for name in io.popen("ls docs/reference/*.md"):lines() do pages[#pages + 1] = name end

-- dl.dist's page starts MPI (a world of one): it needs the plugin
local has_mpi = io.open(lib .. "/libdlua_mpi.so", "rb") ~= nil

describe("the docs' examples", function()
  for _, page in ipairs(pages) do
    local code = lua_blocks(page)
    local run = (page:find("dist", 1, true) and not has_mpi) and pending or it
    if code ~= "" then run(page .. " runs", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir))
      local script = dir .. "/example.lua"
      local f = assert(io.open(script, "w"))
      f:write(code)
      f:close()
      local out, code_ = H.sh("cd " .. dir .. " && timeout 120 " .. abs(bin) .. " example.lua")
      os.execute("rm -rf " .. dir)
      assert.equal(0, code_, page .. ":\n" .. out)
    end) end
  end
end)
