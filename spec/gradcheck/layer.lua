-- Differentiable layer ops (src/autograd/grad_layer.c, grad_rnn.c, grad_attention.c): each entry is
-- checked by spec/autograd_layer_spec.lua (gradcheck + jvp) and counted by
-- the coverage spec in spec/autograd_spec.lua.
local dl = require "dlua"

local function r(...) return dl.randn({...}, {dtype = "float64"}) end

return {
  -- learnable centers and widths; a transposed input and the bias unit
  rbf = {
    fn = function(x, c, s) return dl.rbf(x, c, s, {bias_unit = true}) end,
    inputs = function() return {r(2, 4):t(), r(3, 2) * 0.5, dl.rand(3, {dtype = "float64"}) + 0.8} end,
  },
  -- the same seed each call, so the mask is fixed
  dropout = {
    fn = function(x)
      dl.manual_seed(7)
      return dl.dropout(x, 0.4, true)
    end,
    inputs = function() return {r(4, 3):t()} end,
  },
  -- training mode (batch statistics) on [N, C, L], with weight and bias
  batch_norm = {
    fn = function(x, w, b) return dl.batch_norm(x, nil, nil, {weight = w, bias = b, training = true}) end,
    inputs = function() return {r(3, 4, 2):transpose(1, 3):transpose(2, 3), r(3), r(3)} end,
  },
  -- the fused LSTM cell: both outputs (h and the new cell state), transposed gates
  lstm_cell = {
    fn = function(g, c)
      local h, c1 = dl.lstm_cell(g, c)
      return dl.cat({h, c1 * 0.5}, 2)
    end,
    inputs = function() return {r(12, 3):t() * 2, r(3, 3)} end,
  },
  -- attention weights: scaled, causal, more keys than queries, a transposed input
  attention_softmax = {
    fn = function(x) return dl.attention_softmax(x, 0.8, true) end,
    inputs = function() return {r(2, 5, 3):transpose(2, 3)} end,
  },
  -- the fused GRU cell, unbatched
  gru_cell = {
    fn = function(gi, gh, h) return dl.gru_cell(gi, gh, h) end,
    inputs = function() return {r(9) * 2, r(9) * 2, r(3)} end,
  },
}
