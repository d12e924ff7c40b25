-- dlua.optim.lbfgs (being written)
local dl = require "dlua"
return dl.optim
