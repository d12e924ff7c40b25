-- dlua.io (being written)
local dl = require "dlua"
return dl
