-- dlua.nn.initializers (being written)
local dl = require "dlua"
return dl.nn
