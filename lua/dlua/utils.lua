-- dlua.utils (being written)
local dl = require "dlua"
return dl
