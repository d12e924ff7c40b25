-- dlua.nn.containers (being written)
local dl = require "dlua"
return dl.nn
