-- Differentiable element-wise ops: every name in dl_grad_ewise_names (methods,
-- dl.* functions, aliases and in-place forms) with inputs that exercise
-- broadcasting, non-contiguous views (:t(), :narrow), number operands and
-- the metamethods. Checked by spec/autograd_ewise_spec.lua (gradcheck + jvp)
-- and counted by the coverage spec in spec/autograd_spec.lua.
--
-- An entry is {fn =, inputs =} or {variants = {{desc =, fn =, inputs =}, ...}}.
-- Inputs are float64 tensors; the spec makes them leaves requiring grad.
-- Inputs stay away from kinks (|x| > 0.1 for abs, bounds apart from x for
-- clamp, ...) so central differences are exact enough.
local dl = require "dlua"

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end
-- values in [lo, hi)
local function u(lo, hi, ...) return dl.rand({...}, F64) * (hi - lo) + lo end
-- values with |x| in [0.2, 1.5), either sign
local function away0(...)
  local s = dl.rand({...}, F64):lt(0.5):double() * 2 - 1
  return u(0.2, 1.5, ...) * s
end

-- constant (non-differentiable) masks, fixed so the entries are reproducible
local COND = dl.tensor({{true, false, true}, {false, false, true}})
local ROWMASK = dl.tensor({true, false, true})

local M = {}

local function variants(list) return {variants = list} end
local function v(desc, fn, inputs) return {desc = desc, fn = fn, inputs = inputs} end

-- z = x * 1 gives a non-leaf copy that in-place ops may write
local function fresh(x) return x * 1 end

---------------------------------------------------------------------------
-- binary arithmetic
---------------------------------------------------------------------------

M.add = variants {
  v("method, b broadcast over rows", function(a, b) return a:add(b) end, function() return {r(2, 3), r(3)} end),
  v("dl.add with alpha, transposed a", function(a, b) return dl.add(a:t(), b, {alpha = 2.5}) end,
    function() return {r(3, 2), r(2, 1)} end),
  v("__add with a number", function(a) return a + 2 end, function() return {r(2, 3)} end),
  v("__add with the number first", function(a) return 3 + a end, function() return {r(4)} end),
  v("outer broadcast", function(a, b) return a + b end, function() return {r(3, 1), r(1, 4)} end),
}
M.add_ = variants {
  v("broadcast b, alpha", function(a, b)
    local z = fresh(a)
    z:add_(b, {alpha = -1.5})
    return z
  end, function() return {r(2, 3), r(3)} end),
  v("a number", function(a)
    local z = fresh(a)
    z:add_(2)
    return z * a
  end, function() return {r(3)} end),
}
M.sub = variants {
  v("method, outer broadcast", function(a, b) return a:sub(b) end, function() return {r(2, 1), r(1, 3)} end),
  v("dl.sub with alpha", function(a, b) return dl.sub(a, b, {alpha = 2}) end, function() return {r(2, 3), r(2, 3)} end),
  v("__sub", function(a, b) return a - b:t() end, function() return {r(2, 3), r(3, 2)} end),
  v("__sub with the number first", function(a) return 2 - a end, function() return {r(3)} end),
}
M.sub_ = v(nil, function(a, b)
  local z = fresh(a)
  z:sub_(b, {alpha = 0.5})
  return z
end, function() return {r(2, 3), r(2, 1)} end)
M.subtract = v(nil, function(a, b) return dl.subtract(a, b) end, function() return {r(3), r(2, 3)} end)

M.mul = variants {
  v("method, broadcast", function(a, b) return a:mul(b) end, function() return {r(2, 3), r(3)} end),
  v("__mul of narrowed operands", function(a, b) return a:narrow(2, 2, 3) * b end,
    function() return {r(2, 4), r(2, 1)} end),
  v("__mul with a number", function(a) return a * 3 end, function() return {r(2, 2)} end),
  v("__mul with the number first", function(a) return -2 * a end, function() return {r(3)} end),
  v("a tensor by itself", function(a) return a * a end, function() return {r(3)} end),
}
M.mul_ = variants {
  v("broadcast b", function(a, b)
    local z = fresh(a)
    z:mul_(b)
    return z
  end, function() return {r(2, 3), r(3)} end),
  v("by itself", function(a)
    local z = fresh(a)
    z:mul_(z)
    return z
  end, function() return {r(4)} end),
}
M.multiply = v(nil, function(a, b) return dl.multiply(a, b) end, function() return {r(2, 3), r(1, 3)} end)

M.div = variants {
  v("method, broadcast", function(a, b) return a:div(b) end, function() return {r(2, 3), away0(3)} end),
  v("__div of a transposed tensor", function(a, b) return a:t() / b end, function() return {r(3, 2), away0(2, 3)} end),
  v("__div by a number", function(a) return a / 4 end, function() return {r(3)} end),
  v("a number by a tensor", function(b) return 2 / b end, function() return {away0(2, 2)} end),
}
M.div_ = v(nil, function(a, b)
  local z = fresh(a)
  z:div_(b)
  return z
end, function() return {r(2, 3), away0(2, 1)} end)
M.divide = v(nil, function(a, b) return dl.divide(a, b) end, function() return {r(3), away0(3)} end)
M.true_divide = v(nil, function(a, b) return a:true_divide(b) end, function() return {r(2, 2), away0(2, 2)} end)

M.pow = variants {
  v("tensor ^ tensor, broadcast", function(a, b) return a:pow(b) end, function() return {u(0.5, 2, 2, 3), r(3)} end),
  v("__pow with a number exponent", function(a) return a ^ 2 end, function() return {r(2, 3)} end),
  v("a fractional exponent of a transposed base", function(a) return a:t():pow(0.5) end,
    function() return {u(0.5, 2, 3, 2)} end),
  v("a negative integer exponent", function(a) return dl.pow(a, -3) end, function() return {away0(4)} end),
  v("a number base", function(b) return 2 ^ b end, function() return {r(2, 3)} end),
  v("dl.pow with a number base", function(b) return dl.pow(0.5, b) end, function() return {r(3)} end),
}
M.pow_ = variants {
  v("tensor exponent", function(a, b)
    local z = fresh(a)
    z:pow_(b)
    return z
  end, function() return {u(0.5, 2, 2, 3), r(2, 1)} end),
  v("number exponent", function(a)
    local z = fresh(a)
    z:pow_(3)
    return z
  end, function() return {r(3)} end),
}

-- a / b stays away from integers: a in (0.1, 0.9) + k, b in (1, 1.05)
local function rem_inputs() return {u(0.1, 0.8, 2, 3) + dl.randint(-3, 3, {2, 3}):double(), u(1, 1.05, 3)} end
M.remainder = variants {
  v("method, broadcast divisor", function(a, b) return a:remainder(b) end, rem_inputs),
  v("__mod", function(a, b) return a % b end, rem_inputs),
  v("by a number", function(a) return a % 1.05 end, function() return {u(0.1, 0.8, 4) + 2} end),
  v("a number by a tensor", function(b) return dl.remainder(2.5, b) end, function() return {u(1.1, 1.2, 3)} end),
}
M.remainder_ = v(nil, function(a, b)
  local z = fresh(a)
  z:remainder_(b)
  return z
end, rem_inputs)
M.floor_divide = variants {
  v("method", function(a, b) return a:floor_divide(b) end, rem_inputs),
  v("__idiv", function(a, b) return a // b end, rem_inputs),
}
M.floor_divide_ = v(nil, function(a, b)
  local z = fresh(a)
  z:floor_divide_(b)
  return z
end, rem_inputs)

M.maximum = variants {
  v("broadcast", function(a, b) return a:maximum(b) end, function() return {r(2, 3), r(3)} end),
  v("dl.maximum of a transposed tensor", function(a, b) return dl.maximum(a:t(), b) end,
    function() return {r(3, 2), r(2, 3)} end),
}
M.maximum_ = v(nil, function(a, b)
  local z = fresh(a)
  z:maximum_(b)
  return z
end, function() return {r(2, 3), r(3)} end)
M.minimum = variants {
  v("broadcast", function(a, b) return a:minimum(b) end, function() return {r(2, 1), r(1, 3)} end),
  v("dl.minimum", function(a, b) return dl.minimum(a, b) end, function() return {r(4), r(4)} end),
}
M.minimum_ = v(nil, function(a, b)
  local z = fresh(a)
  z:minimum_(b)
  return z
end, function() return {r(2, 3), r(2, 3)} end)

---------------------------------------------------------------------------
-- unary: the method on a transposed input, dl.<name> on a narrowed one, and
-- the in-place form on a copy
---------------------------------------------------------------------------

local unary_domain = {
  neg = r, abs = away0, sign = away0, sqrt = function(...) return u(0.3, 2, ...) end,
  rsqrt = function(...) return u(0.3, 2, ...) end, exp = r, exp2 = r,
  log = function(...) return u(0.3, 2, ...) end, log2 = function(...) return u(0.3, 2, ...) end,
  log10 = function(...) return u(0.3, 2, ...) end, log1p = function(...) return u(-0.6, 2, ...) end,
  expm1 = r, sin = r, cos = r, tan = function(...) return u(-1.2, 1.2, ...) end, atan = r, tanh = r,
  sigmoid = r, erf = r, reciprocal = away0, relu = away0, square = r, sinh = r, cosh = r, asinh = r,
  -- away from integers: the derivative of floor & co is 0, frac's is 1
  floor = function(...) return u(0.1, 0.9, ...) + dl.randint(-3, 3, {...}):double() end,
}
unary_domain.ceil, unary_domain.round = unary_domain.floor, unary_domain.floor
unary_domain.trunc, unary_domain.frac = unary_domain.floor, unary_domain.floor
-- round: not near .5 either
unary_domain.round = function(...) return u(0.1, 0.4, ...) + dl.randint(-3, 3, {...}):double() end

for name, gen in pairs(unary_domain) do
  M[name] = variants {
    v("method on a transposed input", function(x)
      local y = x:t()
      return y[name](y)
    end, function() return {gen(2, 3)} end),
    v("dl." .. name .. " on a narrowed input", function(x) return dl[name](x:narrow(2, 2, 2)) end,
      function() return {gen(3, 4)} end),
  }
  M[name .. "_"] = v(nil, function(x)
    local z = fresh(x)
    z[name .. "_"](z)
    return z
  end, function() return {gen(2, 3)} end)
end
M.neg.variants[3] = v("__unm", function(x) return -x end, function() return {r(2, 3)} end)
M.negative = v(nil, function(x) return dl.negative(x) end, function() return {r(3)} end)
M.absolute = v(nil, function(x) return x:absolute() end, function() return {away0(3)} end)

---------------------------------------------------------------------------
-- clamp and friends
---------------------------------------------------------------------------

-- x in [-1.5, -0.6) u [0.6, 1.5) or near 0: never within 0.1 of the +-0.5 bounds
local function clampable(...)
  local pick = dl.rand({...}, F64)
  return u(0.6, 1.5, ...) * (pick:lt(0.4):double() * 2 - 1) * pick:lt(0.8):double() + u(-0.3, 0.3, ...) *
    pick:ge(0.8):double()
end
-- tensor bounds well apart from x: x = lo + 1 + d or lo - 1 + d ...
local function tensor_bounds()
  local x = clampable(2, 3)
  local lo = dl.full({3}, -0.5, F64) + u(-0.05, 0.05, 3)
  local hi = dl.full({2, 1}, 0.5, F64) + u(-0.05, 0.05, 2, 1)
  return {x, lo, hi}
end

M.clamp = variants {
  v("number bounds, transposed input", function(x) return x:t():clamp(-0.5, 0.5) end,
    function() return {clampable(3, 2)} end),
  v("only a min, options table", function(x) return x:clamp{min = -0.5} end, function() return {clampable(2, 3)} end),
  v("only a max, dl.clamp", function(x) return dl.clamp(x, nil, 0.5) end, function() return {clampable(4)} end),
  v("tensor bounds, broadcast", function(x, lo, hi) return dl.clamp(x, lo, hi) end, tensor_bounds),
  v("a tensor min and a number max", function(x, lo) return x:clamp(lo, 0.5) end,
    function() local t = tensor_bounds() return {t[1], t[2]} end),
}
M.clamp_ = variants {
  v("number bounds", function(x)
    local z = fresh(x)
    z:clamp_(-0.5, 0.5)
    return z
  end, function() return {clampable(2, 3)} end),
  v("tensor bounds", function(x, lo, hi)
    local z = fresh(x)
    z:clamp_(lo, hi)
    return z
  end, tensor_bounds),
}
M.clamp_min = v(nil, function(x, lo) return x:clamp_min(lo) end,
  function() local t = tensor_bounds() return {t[1], t[2]} end)
M.clamp_min_ = v(nil, function(x)
  local z = fresh(x)
  z:clamp_min_(0.5)
  return z
end, function() return {clampable(2, 3)} end)
M.clamp_max = v(nil, function(x) return dl.clamp_max(x, -0.5) end, function() return {clampable(2, 3)} end)
M.clamp_max_ = v(nil, function(x, _, hi)
  local z = fresh(x)
  z:clamp_max_(hi)
  return z
end, tensor_bounds)
M.clip = v(nil, function(x) return x:clip(-0.5, 0.5) end, function() return {clampable(2, 3)} end)
M.clip_ = v(nil, function(x)
  local z = fresh(x)
  z:clip_(-0.5, 0.5)
  return z
end, function() return {clampable(3)} end)

---------------------------------------------------------------------------
-- lerp, addcmul, addcdiv
---------------------------------------------------------------------------

M.lerp = variants {
  v("number weight", function(a, e) return a:lerp(e, 0.3) end, function() return {r(2, 3), r(3)} end),
  v("tensor weight, broadcast, transposed start", function(a, e, w) return dl.lerp(a:t(), e, w) end,
    function() return {r(3, 2), r(2, 3), r(2, 1)} end),
}
M.lerp_ = variants {
  v("number weight", function(a, e)
    local z = fresh(a)
    z:lerp_(e, 0.7)
    return z
  end, function() return {r(2, 3), r(2, 3)} end),
  v("tensor weight", function(a, e, w)
    local z = fresh(a)
    z:lerp_(e, w)
    return z
  end, function() return {r(2, 3), r(3), r(2, 3)} end),
}
M.addcmul = variants {
  v("value, broadcast", function(a, t1, t2) return a:addcmul(t1, t2, {value = 0.5}) end,
    function() return {r(2, 3), r(3), r(2, 1)} end),
  v("dl.addcmul of transposed factors", function(a, t1, t2) return dl.addcmul(a, t1:t(), t2) end,
    function() return {r(2, 3), r(3, 2), r(2, 3)} end),
}
M.addcmul_ = v(nil, function(a, t1, t2)
  local z = fresh(a)
  z:addcmul_(t1, t2, {value = -2})
  return z
end, function() return {r(2, 3), r(2, 3), r(3)} end)
M.addcdiv = variants {
  v("value, broadcast", function(a, t1, t2) return a:addcdiv(t1, t2, {value = 0.5}) end,
    function() return {r(2, 3), r(3), away0(2, 1)} end),
  v("dl.addcdiv", function(a, t1, t2) return dl.addcdiv(a, t1, t2) end,
    function() return {r(3), r(2, 3), away0(2, 3)} end),
}
M.addcdiv_ = v(nil, function(a, t1, t2)
  local z = fresh(a)
  z:addcdiv_(t1, t2, 3)
  return z
end, function() return {r(2, 3), r(2, 3), away0(3)} end)

---------------------------------------------------------------------------
-- where, masked_fill
---------------------------------------------------------------------------

M.where = variants {
  v("dl.where, both tensors", function(a, b) return dl.where(COND, a, b) end, function() return {r(2, 3), r(2, 3)} end),
  v("broadcast operands", function(a, b) return dl.where(ROWMASK, a, b) end, function() return {r(2, 1), r(3)} end),
  v("x:where(cond, y) on a transposed x", function(a, b) return a:t():where(COND, b) end,
    function() return {r(3, 2), r(1, 3)} end),
  v("a number operand", function(a) return dl.where(COND, 2.5, a) end, function() return {r(2, 3)} end),
}
M.masked_fill = variants {
  v("a number value, broadcast mask", function(a) return a:masked_fill(ROWMASK, 2.5) end,
    function() return {r(2, 3)} end),
  v("a 0-d tensor value", function(a, val) return dl.masked_fill(a:t(), COND, val) end,
    function() return {r(3, 2), dl.tensor(0.7, F64)} end),
}
M.masked_fill_ = variants {
  v("a number value", function(a)
    local z = fresh(a)
    z:masked_fill_(COND, -1)
    return z
  end, function() return {r(2, 3)} end),
  v("a 0-d tensor value", function(a, val)
    local z = fresh(a)
    z:masked_fill_(ROWMASK, val)
    return z * a
  end, function() return {r(2, 3), dl.tensor(-0.3, F64)} end),
}

return M
