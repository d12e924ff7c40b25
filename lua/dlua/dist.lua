-- dlua.dist: the Lua half of dl.dist (the collectives are C, src/lua_dist.c).
local dl = require "dlua"
local dist = dl.dist

-- dl.dist.print(...): print on rank 0 only (every process otherwise), so a
-- script's log reads as one process's
function dist.print(...)
  if dist.is_main() then print(...) end
end

return dist
