-- Differentiable losses: each key is a Lua-visible name of
-- dl_grad_loss_names; fn/inputs is its main case and `variants` lists every
-- case (each reduction, weights, pos_weight, ignore_index, label smoothing,
-- probability targets, spatial and unbatched inputs, broadcast weights,
-- non-contiguous operands). Checked by spec/nn_loss_spec.lua (gradcheck +
-- jvp) and counted by the coverage spec in spec/autograd_spec.lua. Inputs
-- are float64 and do not require grad (the runner marks them); integer
-- targets and class weights are constants captured by the closures.
local dl = require "dlua"
local F = dl.F

local F64 = {dtype = "float64"}
local I64 = {dtype = "int64"}
local function r(...) return dl.randn({...}, F64) end
-- in [0.1, 0.9]: probabilities away from the clamps
local function prob(...) return dl.rand({...}, F64) * 0.8 + 0.1 end

local function op(cases)
  for i, c in ipairs(cases) do c.desc = c.desc or ("case " .. i) end
  return {fn = cases[1].fn, inputs = cases[1].inputs, variants = cases}
end
local function case(desc, fn, inputs) return {desc = desc, fn = fn, inputs = inputs} end

local Y = dl.tensor({2, 5, 1, 3}, I64)           -- 4 samples, 5 classes
local Y_IGN = dl.tensor({2, -100, 1, 3}, I64)    -- default ignore_index
local Y_IGN3 = dl.tensor({3, 5, 1, 3}, I64)      -- ignore_index = 3
local YS = dl.tensor({{{1, 3}, {2, 2}}, {{3, 1}, {2, 1}}}, I64) -- [2, 2, 2] for input [2, 3, 2, 2]
local WC = dl.tensor({0.5, 1.5, 1.0, 2.0, 0.7}, F64)
local W3 = dl.tensor({0.3, 1.2, 2.0}, F64)
local W4 = dl.tensor({0.5, 1.5, 1.0, 2.0}, F64)

return {
  mse_loss = op{
    case("mean", function(x, t) return F.mse_loss(x, t) end, function() return {r(3, 4), r(3, 4)} end),
    case("sum, transposed operands", function(x, t) return F.mse_loss(x:t(), t, {reduction = "sum"}) end,
      function() return {r(4, 3), r(3, 4)} end),
    case("none, narrowed input", function(x, t) return F.mse_loss(x:narrow(2, 2, 3), t, {reduction = "none"}) end,
      function() return {r(2, 5), r(2, 3)} end),
  },
  l1_loss = op{
    case("mean", function(x, t) return F.l1_loss(x, t) end, function() return {r(3, 4), r(3, 4)} end),
    case("sum", function(x, t) return F.l1_loss(x, t, {reduction = "sum"}) end, function() return {r(5), r(5)} end),
    case("none, transposed input", function(x, t) return F.l1_loss(x:t(), t, {reduction = "none"}) end,
      function() return {r(3, 2), r(2, 3)} end),
  },
  smooth_l1_loss = op{
    case("mean, beta 1", function(x, t) return F.smooth_l1_loss(x, t) end, function() return {r(3, 4), r(3, 4)} end),
    case("sum, beta 0.5", function(x, t) return F.smooth_l1_loss(x, t, {reduction = "sum", beta = 0.5}) end,
      function() return {r(3, 4), r(3, 4)} end),
    case("none, beta 2, transposed", function(x, t) return F.smooth_l1_loss(x:t(), t, {reduction = "none", beta = 2}) end,
      function() return {r(4, 3), r(3, 4)} end),
    case("beta 0 (L1)", function(x, t) return F.smooth_l1_loss(x, t, {beta = 0}) end,
      function() return {r(3, 4), r(3, 4)} end),
  },
  binary_cross_entropy = op{
    case("mean", function(x, t) return F.binary_cross_entropy(x, t) end,
      function() return {prob(3, 4), dl.rand({3, 4}, F64)} end),
    case("sum, broadcast weight", function(x, t)
      return F.binary_cross_entropy(x, t, {reduction = "sum", weight = W4})
    end, function() return {prob(3, 4), dl.rand({3, 4}, F64)} end),
    case("none, weight requiring grad, transposed", function(x, t, w)
      return F.binary_cross_entropy(x:t(), t, {reduction = "none", weight = w})
    end, function() return {prob(4, 3), dl.rand({3, 4}, F64), dl.rand({3, 1}, F64)} end),
  },
  binary_cross_entropy_with_logits = op{
    case("mean", function(x, t) return F.binary_cross_entropy_with_logits(x, t) end,
      function() return {r(3, 4) * 3, dl.rand({3, 4}, F64)} end),
    case("sum, pos_weight", function(x, t, pw)
      return F.binary_cross_entropy_with_logits(x, t, {reduction = "sum", pos_weight = pw})
    end, function() return {r(3, 4) * 3, dl.rand({3, 4}, F64), dl.rand({4}, F64) * 2} end),
    case("none, weight and pos_weight, transposed", function(x, t, w, pw)
      return F.binary_cross_entropy_with_logits(x:t(), t, {reduction = "none", weight = w, pos_weight = pw})
    end, function() return {r(4, 3), dl.rand({3, 4}, F64), dl.rand({4}, F64), dl.rand({4}, F64) * 2} end),
  },
  cross_entropy = op{
    case("class indices, mean", function(x) return F.cross_entropy(x, Y) end, function() return {r(4, 5)} end),
    case("sum, weight", function(x) return F.cross_entropy(x, Y, {reduction = "sum", weight = WC}) end,
      function() return {r(4, 5)} end),
    case("none, ignore_index -100, transposed", function(x)
      return F.cross_entropy(x:t(), Y_IGN, {reduction = "none"})
    end, function() return {r(5, 4)} end),
    case("mean, weight + ignore_index + label_smoothing", function(x)
      return F.cross_entropy(x, Y_IGN3, {weight = WC, ignore_index = 3, label_smoothing = 0.2})
    end, function() return {r(4, 5)} end),
    case("spatial [2,3,2,2], smoothing, none", function(x)
      return F.cross_entropy(x, YS, {reduction = "none", label_smoothing = 0.1, weight = W3})
    end, function() return {r(2, 3, 2, 2)} end),
    case("spatial, permuted input, mean", function(x)
      return F.cross_entropy(x:permute(1, 4, 2, 3), YS, {weight = W3})
    end, function() return {r(2, 2, 2, 3)} end),
    case("unbatched", function(x) return F.cross_entropy(x, dl.tensor(4, I64), {label_smoothing = 0.3}) end,
      function() return {r(5)} end),
    case("class probabilities, mean", function(x, t) return F.cross_entropy(x, t) end,
      function() return {r(4, 5), dl.rand({4, 5}, F64)} end),
    case("class probabilities, weight + smoothing, none", function(x, t)
      return F.cross_entropy(x, t, {reduction = "none", weight = WC, label_smoothing = 0.2})
    end, function() return {r(4, 5), dl.rand({4, 5}, F64)} end),
    case("class probabilities, spatial, sum", function(x, t)
      return F.cross_entropy(x, t:transpose(2, 3), {reduction = "sum"})
    end, function() return {r(2, 3, 2), dl.rand({2, 2, 3}, F64)} end),
  },
  nll_loss = op{
    case("mean", function(x) return F.nll_loss(x, Y) end, function() return {r(4, 5)} end),
    case("sum, weight, ignore_index 3", function(x)
      return F.nll_loss(x, Y_IGN3, {reduction = "sum", weight = WC, ignore_index = 3})
    end, function() return {r(4, 5)} end),
    case("none, transposed", function(x) return F.nll_loss(x:t(), Y_IGN, {reduction = "none"}) end,
      function() return {r(5, 4)} end),
    case("spatial, weighted mean", function(x) return F.nll_loss(x, YS, {weight = W3}) end,
      function() return {r(2, 3, 2, 2)} end),
  },
}
