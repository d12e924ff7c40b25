-- dlua.cluster (being written)
local dl = require "dlua"
return dl
