-- Differentiable reductions and scans: each key is a Lua-visible op name of
-- dl_grad_reduce_names; fn/inputs is its main case and `variants` lists every
-- case (all dims, one dim, several dims, keepdim, negative dims,
-- non-contiguous inputs, zeros for prod/cumprod, every norm p). Checked by
-- spec/autograd_reduce_spec.lua (gradcheck + jvp) and counted by the coverage
-- spec in spec/autograd_spec.lua. Inputs are float64 and do not require grad:
-- the runner marks them.
local dl = require "dlua"

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end
-- away from 0, for norms with p < 1 and for prod without zeros
local function pos(...) return dl.rand({...}, F64) + 0.5 end
-- x with x[i][j] = 0 for each {i, j} given (2-D)
local function zero_at(x, ...)
  for _, ij in ipairs({...}) do x:narrow(1, ij[1], 1):narrow(2, ij[2], 1):fill_(0) end
  return x
end

local function op(cases)
  for i, c in ipairs(cases) do c.desc = c.desc or ("case " .. i) end
  return {fn = cases[1].fn, inputs = cases[1].inputs, variants = cases}
end
local function case(desc, fn, inputs) return {desc = desc, fn = fn, inputs = inputs} end

return {
  sum = op{
    case("over every dim", function(x) return x:sum() end, function() return {r(2, 3)} end),
    case("over dim 2", function(x) return x:sum(2) end, function() return {r(3, 4)} end),
    case("over dims {1, 3} keepdim", function(x) return x:sum({1, 3}, true) end, function() return {r(2, 3, 2)} end),
    case("negative dim of a transposed input", function(x) return dl.sum(x, -1) end,
      function() return {r(4, 3):t()} end),
  },
  mean = op{
    case("over every dim", function(x) return x:mean() end, function() return {r(2, 3)} end),
    case("over dim 1 keepdim", function(x) return x:mean(1, true) end, function() return {r(3, 4)} end),
    case("over dims {2, 3} of a narrowed input", function(x) return dl.mean(x, {2, 3}) end,
      function() return {r(2, 5, 3):narrow(2, 2, 3)} end),
  },
  prod = op{
    case("over every dim", function(x) return x:prod() end, function() return {r(2, 3)} end),
    case("over dim 2 keepdim", function(x) return x:prod(2, true) end, function() return {r(3, 4)} end),
    case("over dims {1, 3}", function(x) return x:prod({1, 3}) end, function() return {r(2, 3, 2)} end),
    case("one zero per row, transposed", function(x) return x:prod(1) end,
      function() return {zero_at(r(4, 3), {2, 1}, {3, 3}):t()} end),
    case("two zeros in a row, one in another", function(x) return dl.prod(x, -1) end,
      function() return {zero_at(r(3, 4), {1, 2}, {1, 4}, {3, 1})} end),
    case("several zeros, over every dim", function(x) return x:prod() end,
      function() return {zero_at(r(2, 3), {1, 2}, {2, 3})} end),
    case("one zero, over every dim", function(x) return x:prod() end,
      function() return {zero_at(r(2, 3), {2, 2})} end),
  },
  var = op{
    case("over every dim", function(x) return x:var() end, function() return {r(2, 3)} end),
    case("over dim 2, correction 0", function(x) return x:var(2, {correction = 0}) end,
      function() return {r(3, 4)} end),
    case("over dims {1, 3} keepdim, transposed", function(x) return dl.var(x, {1, 3}, {keepdim = true}) end,
      function() return {r(2, 3, 4):transpose(1, 3)} end),
    case("correction 2", function(x) return x:var(1, {correction = 2}) end, function() return {r(5, 2)} end),
  },
  std = op{
    case("over every dim", function(x) return x:std() end, function() return {r(2, 3)} end),
    case("over dim 1 keepdim, unbiased false", function(x) return x:std(1, {keepdim = true, unbiased = false}) end,
      function() return {r(3, 4)} end),
    case("over dims {2, 3}, transposed", function(x) return dl.std(x, {2, 3}) end,
      function() return {r(3, 4, 2):transpose(1, 2)} end),
  },
  norm = op{
    case("p = 2 over every dim", function(x) return x:norm() end, function() return {r(2, 3)} end),
    case("p = 1 over dim 2", function(x) return x:norm(1, 2) end, function() return {r(3, 4)} end),
    case("p = inf over dim 1 keepdim", function(x) return x:norm("inf", 1, true) end,
      function() return {r(3, 4)} end),
    case("p = -inf over every dim", function(x) return x:norm(-math.huge) end, function() return {r(2, 3)} end),
    case("p = 3 over dims {1, 2}, transposed", function(x) return dl.norm(x, 3, {1, 2}) end,
      function() return {r(4, 3, 2):transpose(1, 3)} end),
    case("p = 1.5 over dim -1", function(x) return x:norm(1.5, -1) end, function() return {r(3, 4)} end),
    case("p = 0.5 over dim 1", function(x) return x:norm(0.5, 1) end, function() return {pos(3, 2)} end),
    case("p = -1 over every dim", function(x) return x:norm(-1) end, function() return {pos(2, 3)} end),
    case("p = 0 (counts nonzeros: zero gradient)", function(x) return x:norm(0, 2) end,
      function() return {r(2, 3)} end),
  },
  logsumexp = op{
    case("over dim 2", function(x) return x:logsumexp(2) end, function() return {r(3, 4)} end),
    case("over every dim", function(x) return x:logsumexp({1, 2}) end, function() return {r(2, 3)} end),
    case("over dim 1 keepdim, transposed", function(x) return dl.logsumexp(x, 1, true) end,
      function() return {r(4, 3):t()} end),
  },
  max = op{
    case("values along dim 2", function(x) return (x:max(2)) end, function() return {r(3, 4)} end),
    case("over every element", function(x) return x:max() end, function() return {r(2, 3)} end),
    case("values along dim 1 keepdim, transposed", function(x) return (dl.max(x, 1, true)) end,
      function() return {r(4, 3):t()} end),
  },
  min = op{
    case("values along dim -1", function(x) return (x:min(-1)) end, function() return {r(3, 4)} end),
    case("over every element", function(x) return x:min() end, function() return {r(2, 3)} end),
    case("values along dim 2 keepdim, narrowed", function(x) return (dl.min(x, {dim = 2, keepdim = true})) end,
      function() return {r(3, 6):narrow(2, 2, 4)} end),
  },
  amax = op{
    case("over dim 2", function(x) return x:amax(2) end, function() return {r(3, 4)} end),
    case("over dims {1, 3} keepdim", function(x) return x:amax({1, 3}, true) end,
      function() return {r(2, 3, 2)} end),
    case("over every dim, transposed", function(x) return dl.amax(x) end, function() return {r(4, 3):t()} end),
  },
  amin = op{
    case("over dim 1", function(x) return x:amin(1) end, function() return {r(3, 4)} end),
    case("over every dim", function(x) return x:amin() end, function() return {r(2, 3)} end),
    case("over dims {2, 3} keepdim, transposed", function(x) return dl.amin(x, {2, 3}, true) end,
      function() return {r(2, 3, 4):transpose(1, 3)} end),
  },
  cumsum = op{
    case("along dim 2", function(x) return x:cumsum(2) end, function() return {r(3, 4)} end),
    case("along dim 1 of a transposed input", function(x) return dl.cumsum(x, 1) end,
      function() return {r(4, 3):t()} end),
    case("along dim -1 of a 3-d input", function(x) return x:cumsum(-1) end, function() return {r(2, 2, 3)} end),
  },
  cumprod = op{
    case("along dim 2", function(x) return x:cumprod(2) end, function() return {r(3, 4)} end),
    case("along dim 1 of a transposed input", function(x) return dl.cumprod(x, 1) end,
      function() return {r(4, 3):t()} end),
    case("with one zero in a row", function(x) return x:cumprod(2) end,
      function() return {zero_at(r(3, 5), {1, 3}, {3, 1})} end),
    case("with two zeros in a row, transposed", function(x) return x:cumprod(1) end,
      function() return {zero_at(r(4, 3), {2, 1}, {4, 1}, {3, 2}):t()} end),
  },
}
