-- dlua.optim.lr_scheduler (being written)
local dl = require "dlua"
return dl.optim
