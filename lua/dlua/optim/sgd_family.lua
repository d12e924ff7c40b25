-- dlua.optim.sgd_family (being written)
local dl = require "dlua"
return dl.optim
