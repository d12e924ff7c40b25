-- dlua.nn.loss (being written)
local dl = require "dlua"
return dl.nn
