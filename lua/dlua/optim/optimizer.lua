-- dlua.optim.optimizer (being written)
local dl = require "dlua"
return dl.optim
