-- dlua.optim.cg (being written)
local dl = require "dlua"
return dl.optim
