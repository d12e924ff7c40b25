-- dlua.nn.utils (being written)
local dl = require "dlua"
return dl.nn
