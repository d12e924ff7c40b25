-- dlua.nn.activation (being written)
local dl = require "dlua"
return dl.nn
