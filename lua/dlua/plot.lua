-- dlua.plot (being written)
local dl = require "dlua"
return dl
