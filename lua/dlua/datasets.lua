-- dlua.datasets (being written)
local dl = require "dlua"
return dl
