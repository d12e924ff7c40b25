-- Differentiable views and copies: each entry is checked by
-- spec/autograd_view_spec.lua (gradcheck + jvp) and counted by the coverage
-- spec in spec/autograd_spec.lua.
local dl = require "dlua"

local function r(...) return dl.randn({...}, {dtype = "float64"}) end

return {
  view = {fn = function(x) return x:view(3, 2) end, inputs = function() return {r(2, 3)} end},
  reshape = {fn = function(x) return x:t():reshape(6) end, inputs = function() return {r(2, 3)} end},
  transpose = {fn = function(x) return x:transpose(1, 3) end, inputs = function() return {r(2, 3, 2)} end},
  t = {fn = function(x) return x:t() end, inputs = function() return {r(2, 3)} end},
  permute = {fn = function(x) return x:permute(3, 1, 2) end, inputs = function() return {r(2, 3, 2)} end},
  narrow = {fn = function(x) return x:narrow(2, 2, 2) end, inputs = function() return {r(2, 4)} end},
  select = {fn = function(x) return x:select(2, 3) end, inputs = function() return {r(2, 4)} end},
  squeeze = {fn = function(x) return x:squeeze(2) end, inputs = function() return {r(3, 1, 2)} end},
  unsqueeze = {fn = function(x) return x:unsqueeze(-1) end, inputs = function() return {r(3, 2)} end},
  expand = {fn = function(x) return x:expand(2, 3, 2) end, inputs = function() return {r(3, 1)} end},
  flatten = {fn = function(x) return x:transpose(1, 2):flatten() end, inputs = function() return {r(2, 3)} end},
  unfold = {fn = function(x) return x:unfold(1, 3, 2) end, inputs = function() return {r(7, 2)} end,
    variants = { -- besides the main case
      {desc = "a 0-d tensor: its one window", fn = function(x) return x:unfold(1, 1, 1) * 2 end,
       inputs = function() return {r()} end},
    }},
  chunk = {fn = function(x) local c = x:chunk(2, 2) return c[2] end, inputs = function() return {r(2, 5)} end},
  split = {fn = function(x) local s = x:split({1, 3}, 1) return s[2] end, inputs = function() return {r(4, 2)} end},
  index = {fn = function(x) return x[{ {2, 3}, -1 }] end, inputs = function() return {r(3, 4)} end},
  clone = {fn = function(x) return x:t():clone() end, inputs = function() return {r(2, 3)} end},
  contiguous = {fn = function(x) return x:t():contiguous() end, inputs = function() return {r(2, 3)} end},
  -- float32 rounding: a coarser step and tolerance
  to = {
    fn = function(x) return x:to("float32"):to("float64") end,
    inputs = function() return {r(2, 3)} end,
    opts = {eps = 1e-3, atol = 1e-3, rtol = 1e-3},
    jvp_tol = 1e-6,
  },
  copy_ = {
    fn = function(x, y)
      local z = x * 1
      z:narrow(1, 1, 1):copy_(y)
      return z
    end,
    inputs = function() return {r(2, 3), r(3)} end,
  },
  fill_ = {
    fn = function(x)
      local z = x * 1
      z:narrow(2, 1, 1):fill_(2)
      return z * x
    end,
    inputs = function() return {r(2, 3)} end,
  },
}
