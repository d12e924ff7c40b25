-- dlua's Lua library entry. The C side has built the `dl` table (require
-- returns it even while it is being opened); this adds what is written in
-- Lua. Each submodule is its own file under lua/dlua/.
local dl = require "dlua"

dl._VERSION = "dlua " .. dl.version

require "dlua.autograd"
require "dlua.nn"
require "dlua.optim"

return dl
