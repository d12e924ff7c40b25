-- dlua.nn.layers (being written)
local dl = require "dlua"
return dl.nn
