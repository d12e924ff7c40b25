-- dlua.sampling: dl.multinomial, drawing category indices from rows of
-- probabilities (or unnormalised weights), composed from ops every device
-- has and seeded by dl.manual_seed like every random op.
--   with replacement: inverse CDF, the count of cumulative sums / total <= u
--   without: Gumbel top-k, the n largest log p - log(-log u), which draws as
--   sequential sampling without replacement does
local dl = require "dlua"
local raise = require("dlua.errors").raise
local checks = require "dlua.checks"

local fmt = string.format

-- dl.multinomial(probs, num_samples, {replacement = false}) -> int64 indices
-- (1-based) of shape [num_samples] for probs [K], [B, num_samples] for [B, K]
function dl.multinomial(probs, n, opts)
  local fn = "dl.multinomial"
  if not dl.is_tensor(probs) then raise(fmt("%s: bad argument #1 (tensor expected, got %s)", fn, type(probs))) end
  if probs.dtype ~= "float32" and probs.dtype ~= "float64" then
    raise(fmt("%s: probabilities must be float32 or float64, got %s", fn, probs.dtype))
  end
  local nd = probs:dim()
  if nd ~= 1 and nd ~= 2 then
    raise(fmt("%s: probabilities must be 1-D or 2-D, got %s", fn, checks.shape_str(probs)))
  end
  if math.type(n) ~= "integer" or n < 1 then
    raise(fmt("%s: bad argument #2 (num_samples must be an integer >= 1, got %s)", fn, tostring(n)))
  end
  local replacement = checks.options(fn, opts, {replacement = true}).replacement == true
  local p = nd == 1 and probs:view(1, -1) or probs
  local B, K = p:size(1), p:size(2)
  if K == 0 then raise(fmt("%s: no categories in %s", fn, checks.shape_str(probs))) end
  if B == 0 then return dl.empty({0, n}, {dtype = "int64", device = probs.device}) end -- a [0, K] input
  if not (p:isfinite():all():item() and p:ge(0):all():item()) then
    raise(fmt("%s: probabilities must be finite and >= 0", fn))
  end
  local fewest = p:gt(0):sum(2):min():item() -- the fewest categories a row can draw
  if fewest == 0 then raise(fmt("%s: a row of probabilities sums to 0", fn)) end
  if not replacement and fewest < n then
    raise(fmt("%s: cannot draw %d samples without replacement from a row with %d nonzero probabilities",
      fn, n, fewest))
  end
  local idx
  if replacement then
    -- the cumulative sums normalised (u * total instead would round to a
    -- multiple of the smallest subnormal when the weights are that small)
    local c = p:cumsum(2)                                    -- [B, K]
    c = c / c:narrow(2, K, 1)
    local u = dl.rand({B, n}, {dtype = p.dtype, device = p.device})
    idx = c:view(B, 1, K):le(u:view(B, n, 1)):sum(3)         -- [B, n]: categories passed (0-based pick)
    -- rounding can leave a sum below u near 1: the last category with a nonzero probability then
    local last = (p:gt(0):long() * dl.arange(1, K + 1, {device = p.device})):amax(2, true)
    idx = dl.minimum(idx + 1, last)
  else
    -- u in (0, 1): a draw of exactly 0 would give the key -inf of a zero weight
    local tiny = p.dtype == "float32" and 1.1754943508222875e-38 or 2.2250738585072014e-308
    local u = dl.rand({B, K}, {dtype = p.dtype, device = p.device}):clamp_min(tiny)
    local keys = p:log() - (-u:log()):log()                  -- log p + Gumbel noise
    local _, top = keys:topk(n, 2)
    idx = top
  end
  if nd == 1 then idx = idx:view(n) end
  return idx
end

return dl
