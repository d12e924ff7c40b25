-- Differentiable matrix products: each entry (its fn/inputs and every
-- variant) is checked by spec/autograd_linalg_spec.lua (gradcheck, jvp
-- against the reverse-mode Jacobian, double backward) and counted by the
-- coverage spec in spec/autograd_spec.lua. Inputs are plain float64
-- tensors; the runner makes them require grad. Non-contiguous operands come
-- from the inputs (transposed / narrowed leaves) or from fn (views of them).
local dl = require "dlua"

local function r(...) return dl.randn({...}, {dtype = "float64"}) end

return {
  matmul = {
    fn = function(a, b) return dl.matmul(a, b) end,
    inputs = function() return {r(3, 4), r(4, 2)} end,
    variants = {
      {name = "1-D . 1-D", fn = function(a, b) return a:matmul(b) end, inputs = function() return {r(4), r(4)} end},
      {name = "1-D @ 2-D", fn = function(a, b) return a:matmul(b) end, inputs = function() return {r(3), r(3, 4)} end},
      {name = "2-D @ 1-D", fn = function(a, b) return a:matmul(b) end, inputs = function() return {r(3, 4), r(4)} end},
      {name = "batched with broadcast batch dims",
       fn = function(a, b) return dl.matmul(a, b) end, inputs = function() return {r(2, 1, 3, 4), r(3, 4, 2)} end},
      {name = "batched @ 2-D (a Linear layer on a batch)",
       fn = function(a, b) return dl.matmul(a, b) end, inputs = function() return {r(2, 3, 4), r(4, 5)} end},
      {name = "2-D @ batched", fn = function(a, b) return dl.matmul(a, b) end,
       inputs = function() return {r(3, 4), r(2, 4, 2)} end},
      {name = "1-D @ batched", fn = function(a, b) return dl.matmul(a, b) end,
       inputs = function() return {r(4), r(2, 4, 3)} end},
      {name = "batched @ 1-D", fn = function(a, b) return dl.matmul(a, b) end,
       inputs = function() return {r(2, 3, 4), r(4)} end},
      {name = "x @ W:t() (transposed view)", fn = function(x, w) return x:matmul(w:t()) end,
       inputs = function() return {r(5, 3), r(4, 3)} end},
      {name = "non-contiguous leaves (transposed, narrowed)", fn = function(a, b) return dl.matmul(a, b) end,
       inputs = function() return {r(4, 3):t(), r(4, 6):narrow(2, 2, 3)} end},
      {name = "batched transposed views", fn = function(a, b) return dl.matmul(a:transpose(2, 3), b) end,
       inputs = function() return {r(2, 4, 3), r(1, 4, 2)} end},
      {name = "the same tensor on both sides", fn = function(a) return dl.matmul(a, a) end,
       inputs = function() return {r(3, 3)} end},
    },
  },
  mm = {
    fn = function(a, b) return dl.mm(a, b) end,
    inputs = function() return {r(3, 4), r(4, 2)} end,
    variants = {
      {name = "transposed operands", fn = function(a, b) return a:t():mm(b:t()) end,
       inputs = function() return {r(4, 3), r(2, 4)} end},
      {name = "broadcast (expanded) operand", fn = function(a, b) return dl.mm(a, b:expand(4, 3)) end,
       inputs = function() return {r(2, 4), r(1, 3)} end},
    },
  },
  bmm = {
    fn = function(a, b) return dl.bmm(a, b) end,
    inputs = function() return {r(2, 3, 4), r(2, 4, 2)} end,
    variants = {
      {name = "transposed and permuted operands", fn = function(a, b) return a:transpose(2, 3):bmm(b:permute(2, 1, 3)) end,
       inputs = function() return {r(2, 4, 3), r(4, 2, 2)} end},
    },
  },
  mv = {
    fn = function(a, v) return dl.mv(a, v) end,
    inputs = function() return {r(3, 4), r(4)} end,
    variants = {
      {name = "transposed matrix, strided vector", fn = function(a, v) return a:t():mv(v:select(2, 1)) end,
       inputs = function() return {r(4, 3), r(4, 2)} end},
    },
  },
  dot = {
    fn = function(a, b) return dl.dot(a, b) end,
    inputs = function() return {r(5), r(5)} end,
    variants = {
      {name = "strided vectors", fn = function(a, b) return a:select(2, 2):dot(b:narrow(1, 2, 5)) end,
       inputs = function() return {r(5, 3), r(7)} end},
    },
  },
  outer = {
    fn = function(a, b) return dl.outer(a, b) end,
    inputs = function() return {r(3), r(4)} end,
    variants = {
      {name = "strided vectors", fn = function(a, b) return a:select(1, 2):outer(b) end,
       inputs = function() return {r(2, 3), r(2)} end},
    },
  },
  addmm = {
    fn = function(c, a, b) return dl.addmm(c, a, b, {beta = 0.5, alpha = 2}) end,
    inputs = function() return {r(3, 2), r(3, 4), r(4, 2)} end,
    variants = {
      {name = "defaults (beta = alpha = 1)", fn = function(c, a, b) return c:addmm(a, b) end,
       inputs = function() return {r(3, 2), r(3, 4), r(4, 2)} end},
      {name = "bias row broadcast, x @ W:t()", fn = function(c, x, w) return dl.addmm(c, x, w:t()) end,
       inputs = function() return {r(2), r(5, 3), r(2, 3)} end},
      {name = "column input broadcast", fn = function(c, a, b) return dl.addmm(c, a, b, {beta = -1.5}) end,
       inputs = function() return {r(3, 1), r(3, 4), r(4, 2)} end},
      {name = "0-d input broadcast", fn = function(c, a, b) return dl.addmm(c, a, b, {alpha = 0.25}) end,
       inputs = function() return {dl.randn({1}, {dtype = "float64"}):reshape({}), r(3, 4), r(4, 2)} end},
      {name = "beta = 0 ignores the input", fn = function(c, a, b) return dl.addmm(c, a, b, {beta = 0, alpha = 3}) end,
       inputs = function() return {r(3, 2), r(3, 4), r(4, 2)} end},
      {name = "transposed matrices", fn = function(c, a, b) return dl.addmm(c, a:t(), b:t(), {beta = 2}) end,
       inputs = function() return {r(1, 2), r(4, 3), r(2, 4)} end},
    },
  },
}
