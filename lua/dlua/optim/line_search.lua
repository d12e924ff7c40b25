-- dlua.optim.line_search (being written)
local dl = require "dlua"
return dl.optim
