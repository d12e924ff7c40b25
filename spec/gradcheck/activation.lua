-- Differentiable activations: each entry is checked by
-- spec/nn_activation_spec.lua (gradcheck + jvp, the entry and its variants)
-- and counted by the coverage spec. Inputs are random float64, with
-- non-contiguous views (t, narrow, transpose) and softmax along inner dims.
local dl = require "dlua"

local function r(...) return dl.randn({...}, {dtype = "float64"}) end

return {
  leaky_relu = {
    fn = function(x) return x:t():leaky_relu(0.2) end,
    inputs = function() return {r(3, 4)} end,
    variants = {
      {fn = function(x) return dl.F.leaky_relu(x:narrow(2, 2, 3)) end, inputs = function() return {r(3, 5)} end},
      {fn = function(x) return x:leaky_relu({negative_slope = -1.5}) end, inputs = function() return {r(2, 3)} end},
    },
  },
  prelu = {
    -- a slope per channel (dim 2)
    fn = function(x, w) return x:transpose(1, 3):prelu(w) end,
    inputs = function() return {r(4, 3, 2), r(3)} end,
    variants = {
      -- one shared slope, on a transposed matrix
      {fn = function(x, w) return dl.F.prelu(x:t(), w) end, inputs = function() return {r(4, 3), r(1)} end},
      -- 1-d input
      {fn = function(x, w) return x:prelu(w) end, inputs = function() return {r(5), r(1)} end},
    },
  },
  elu = {
    fn = function(x) return x:t():elu(0.7) end,
    inputs = function() return {r(3, 4)} end,
    variants = {
      {fn = function(x) return dl.F.elu(x:narrow(1, 2, 2), {alpha = 1.3}) end, inputs = function() return {r(3, 4)} end},
    },
  },
  gelu = {
    fn = function(x) return x:t():gelu() end,
    inputs = function() return {r(3, 4)} end,
    variants = {
      {fn = function(x) return x:t():gelu({approximate = "tanh"}) end, inputs = function() return {r(3, 4)} end},
      {fn = function(x) return dl.F.gelu(x * 3, "tanh") end, inputs = function() return {r(2, 3)} end},
    },
  },
  silu = {
    fn = function(x) return x:narrow(2, 2, 3):silu() end,
    inputs = function() return {r(3, 5)} end,
  },
  softplus = {
    -- some elements past the threshold (beta x > 3)
    fn = function(x) return (x * 3):t():softplus({beta = 2, threshold = 3}) end,
    inputs = function() return {r(3, 4)} end,
    variants = {
      {fn = function(x) return dl.F.softplus(x:t()) end, inputs = function() return {r(3, 4)} end},
      {fn = function(x) return x:softplus(-0.5, 20) end, inputs = function() return {r(4)} end},
    },
  },
  softmax = {
    -- along a non-last dim of a transposed input
    fn = function(x) return x:t():softmax(1) end,
    inputs = function() return {r(3, 4)} end,
    variants = {
      {fn = function(x) return x:softmax(-1) end, inputs = function() return {r(2, 3, 4)} end},
      {fn = function(x) return x:transpose(1, 3):softmax(2) end, inputs = function() return {r(2, 3, 4)} end},
    },
  },
  log_softmax = {
    fn = function(x) return x:transpose(1, 3):log_softmax(2) end,
    inputs = function() return {r(2, 3, 4)} end,
    variants = {
      {fn = function(x) return dl.F.log_softmax(x, 2) end, inputs = function() return {r(3, 5)} end},
      {fn = function(x) return x:narrow(1, 1, 2):log_softmax(1) end, inputs = function() return {r(4, 3)} end},
    },
  },
}
