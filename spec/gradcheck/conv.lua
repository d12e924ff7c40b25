-- Differentiable sliding-window ops (src/autograd/grad_conv.c): each entry
-- is checked by spec/nn_conv_spec.lua (gradcheck, jvp, double backward),
-- counted by the coverage spec in spec/autograd_spec.lua and run on the GPU
-- by spec/cuda_spec.lua.
local dl = require "dlua"

local function r(...) return dl.randn({...}, {dtype = "float64"}) end

return {
  -- 2-D windows with stride, dilation and uneven padding, on a transposed input
  im2col = {
    fn = function(x)
      return dl.im2col(x, {2, 3}, {stride = {2, 1}, dilation = {1, 2}, padding = {1, 0}, padding_end = {2, 1}})
    end,
    inputs = function() return {r(2, 6, 5, 3):transpose(2, 4)} end,
  },
  -- float64: the composed route (im2col and GEMMs); groups, stride, bias
  convolution = {
    fn = function(x, w, b) return dl.convolution(x, w, b, {stride = {1, 2}, padding = 1, groups = 2}) end,
    inputs = function() return {r(2, 4, 5, 4), r(4, 2, 3, 2), r(4)} end,
  },
  -- distinct values (no ties), padding, dilation and a ceil-mode end
  max_pool = {
    fn = function(x) return (dl.max_pool(x, {3, 2}, {stride = 2, padding = 1, padding_end = {2, 1}, dilation = {1, 2}})) end,
    inputs = function() return {dl.randperm(120):double():view(2, 3, 5, 4) * 0.1} end,
  },
  -- the adjoint: overlapping windows summed back into a 1-D image
  col2im = {
    fn = function(c) return dl.col2im(c, {7}, 3, {stride = 2, padding = 1}) end,
    inputs = function() return {r(2, 6, 4)} end,
  },
}
