-- dlua.metrics (being written)
local dl = require "dlua"
return dl
