-- dlua's Lua library entry. The C side has built the `dl` table (require
-- returns it even while it is being opened); this adds what is written in
-- Lua. Each submodule is its own file under lua/dlua/.
local dl = require "dlua"

dl._VERSION = "dlua " .. dl.version

-- dtype names as values, so `{dtype = dl.float64}` reads like PyTorch's
-- `dtype=torch.float64` (a misspelt constant would be nil: keep it a string)
for _, name in ipairs({"float32", "float64", "int64", "bool", "uint8"}) do dl[name] = name end
dl.float, dl.double, dl.long = "float32", "float64", "int64"

require "dlua.autograd"
require "dlua.nn"
require "dlua.optim"
require "dlua.io"            -- dl.save, dl.load
require "dlua.data"          -- dl.data: Dataset, DataLoader, read_csv, read_idx
require "dlua.datasets"      -- dl.datasets: fashion_mnist, mnist
require "dlua.preprocessing" -- dl.preprocessing scalers (also under dl.data)
require "dlua.cluster"       -- dl.cluster.kmeans
require "dlua.metrics"       -- dl.metrics
require "dlua.utils"         -- dl.utils: progress, EarlyStopping
require "dlua.plot"          -- dl.plot
require "dlua.sampling"      -- dl.multinomial
require "dlua.dist"          -- dl.dist: the Lua helpers beside the C collectives
require "dlua.help"          -- dl.help: the reference entry of a name

-- every public function, method and constructor written in Lua names
-- itself in the errors raised below it (the C functions already do)
require("dlua.errors").name_library(dl)

return dl
