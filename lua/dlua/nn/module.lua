-- dlua.nn.module (being written)
local dl = require "dlua"
return dl.nn
