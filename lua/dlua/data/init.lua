-- dlua.data (being written)
local dl = require "dlua"
return dl
