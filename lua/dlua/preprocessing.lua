-- dlua.preprocessing (being written)
local dl = require "dlua"
return dl
