-- dl.autograd: custom functions, gradient checking, forward mode (jvp),
-- jacobian and Hessian-vector products. The graph machinery is in C
-- (src/autograd/); this file composes it.
local dl = require "dlua"
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise
local A = dl.autograd

---------------------------------------------------------------------------
-- Custom functions
---------------------------------------------------------------------------

local Ctx = {}

-- Tensors are saved detached, so a saved output cannot keep its own graph
-- alive through the ctx. Each one's version is noted: reading
-- ctx.saved_tensors after an in-place change to one of them is an error, as
-- in PyTorch, since the backward would compute a wrong gradient from it.
function Ctx:save_for_backward(...)
  local saved, versions, sources = table.pack(...), {}, {}
  for i = 1, saved.n do
    if dl.is_tensor(saved[i]) then
      versions[i] = A._version(saved[i])
      sources[i] = saved[i]
      saved[i] = saved[i]:detach()
    end
  end
  rawset(self, "_saved", saved)
  rawset(self, "_saved_versions", versions)
  rawset(self, "_saved_sources", sources)
end

-- After forward: a saved input (forward saw it detached) is saved as the
-- caller's tensor, with its history, so a backward run under create_graph
-- records through it (double backward), as in PyTorch; other saved tensors
-- (outputs among them) stay detached.
local function link_saved_inputs(ctx, args, plain)
  local saved, sources = rawget(ctx, "_saved"), rawget(ctx, "_saved_sources")
  if not saved then return end
  rawset(ctx, "_saved_sources", nil)
  for j, src in pairs(sources) do
    for i = 1, args.n do
      if rawequal(src, plain[i]) and args[i].requires_grad then
        saved[j] = args[i]
        break
      end
    end
  end
end

local function saved_tensors(ctx)
  local saved, versions = rawget(ctx, "_saved"), rawget(ctx, "_saved_versions")
  if not saved then return {} end
  for i, v in pairs(versions) do
    local now = A._version(saved[i])
    if now ~= v then
      error(string.format("dl.autograd.Function: saved tensor %d (shape %s) was modified by an in-place "
        .. "operation after save_for_backward (version %d, saved at version %d); its gradient would be wrong. "
        .. "Save a clone, or use an out-of-place op", i, require("dlua.checks").shape_str(saved[i]), now, v), 2)
    end
  end
  return saved
end

Ctx.__index = function(ctx, k)
  if k == "saved_tensors" then return saved_tensors(ctx) end
  return Ctx[k]
end

local Function = {}
Function.__index = Function

local function call_function(F, ...)
  local args = table.pack(...)
  local ctx = setmetatable({needs_input_grad = A._needs_input_grad(args)}, Ctx)
  -- the forward runs on plain values: no recording, no tangents
  local plain = {}
  local any_tangent = false
  local tangents = {}
  for i = 1, args.n do
    local a = args[i]
    if dl.is_tensor(a) then
      local p, t = A._unpack_dual(a)
      plain[i] = p
      tangents[i] = t
      any_tangent = any_tangent or t ~= nil
    else
      plain[i] = a
    end
  end
  local results = table.pack(dl.no_grad(F.forward, ctx, table.unpack(plain, 1, args.n)))
  link_saved_inputs(ctx, args, plain)
  local outs, positions = {}, {}
  for i = 1, results.n do
    if dl.is_tensor(results[i]) then
      outs[#outs + 1] = results[i]
      positions[#positions + 1] = i
    end
  end
  local inputs = {}
  for i = 1, args.n do inputs[i] = dl.is_tensor(args[i]) and args[i] or false end
  local attached = A._attach(ctx, F.backward, inputs, outs)
  for k, pos in ipairs(positions) do results[pos] = attached[k] end
  if any_tangent then
    if not F.jvp then
      error("dl.autograd.Function: an input carries a tangent but this Function defines no jvp", 2)
    end
    local tin = {}
    for i = 1, args.n do
      if dl.is_tensor(args[i]) then tin[i] = tangents[i] or dl.zeros_like(plain[i]) else tin[i] = false end
    end
    local tout = table.pack(dl.no_grad(F.jvp, ctx, table.unpack(tin, 1, args.n)))
    for k, pos in ipairs(positions) do
      local t = tout[k]
      if t == nil then t = dl.zeros_like(results[pos]) end
      results[pos] = A._make_dual(results[pos], t)
    end
  end
  return table.unpack(results, 1, results.n)
end

-- F = dl.autograd.Function{forward = function(ctx, ...) end, backward = function(ctx, ...) end,
--                          jvp = optional function(ctx, tangents...) end}
function A.Function(def)
  assert(type(def) == "table", "dl.autograd.Function: expects a table with forward and backward")
  if type(def.forward) ~= "function" then error("dl.autograd.Function: forward must be a function", 2) end
  if type(def.backward) ~= "function" then error("dl.autograd.Function: backward must be a function", 2) end
  local F = setmetatable({forward = def.forward, backward = def.backward, jvp = def.jvp}, Function)
  -- PyTorch's Sq.apply(x); Sq:apply(x) (the colon a Lua user types) too
  F.apply = function(first, ...)
    if first == F then return call_function(F, ...) end
    return call_function(F, first, ...)
  end
  return F
end

Function.__call = function(F, ...) return call_function(F, ...) end

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

-- argument #argn of fn: a tensor or a list of tensors, as a list
local function as_list(fn, argn, x)
  if dl.is_tensor(x) then return {x}, true end
  if type(x) ~= "table" then
    raise(string.format("%s: bad argument #%d (tensor or list of tensors expected, got %s)", fn, argn, type(x)))
  end
  checks.list(fn, argn, x)
  for i, t in ipairs(x) do
    if not dl.is_tensor(t) then
      raise(string.format("%s: bad argument #%d (entry %d is a %s, not a tensor)", fn, argn, i, type(t)))
    end
  end
  return x, false
end

local function check_callable(fn, f)
  local mt = getmetatable(f)
  if type(f) ~= "function" and not (type(mt) == "table" and mt.__call) then
    raise(string.format("%s: bad argument #1 (function expected, got %s)", fn, type(f)))
  end
end

local function check_tensor(fn, argn, name, t)
  if not dl.is_tensor(t) then
    raise(string.format("%s: bad argument #%d (%s must be a tensor, got %s)", fn, argn, name, type(t)))
  end
end

local function flat_values(t)
  local c = t:detach():double():contiguous():view(-1)
  local out = {}
  for i = 1, c:numel() do out[i] = c:get(i) end
  return out
end

---------------------------------------------------------------------------
-- Forward mode
---------------------------------------------------------------------------

-- outputs, tangents = jvp(fn, primals, tangents): one forward pass carrying
-- tangents through every op's jvp rule.
function A.jvp(fn, primals, tangents)
  check_callable("dl.autograd.jvp", fn)
  local ps = as_list("dl.autograd.jvp", 2, primals)
  local ts = as_list("dl.autograd.jvp", 3, tangents)
  if #ps ~= #ts then error(string.format("dl.autograd.jvp: %d primals but %d tangents", #ps, #ts), 2) end
  local duals = {}
  for i = 1, #ps do duals[i] = A._make_dual(ps[i], ts[i]) end
  local res = table.pack(fn(table.unpack(duals, 1, #ps)))
  local outs, touts = {}, {}
  for i = 1, res.n do
    if dl.is_tensor(res[i]) then
      local p, t = A._unpack_dual(res[i])
      outs[i], touts[i] = p, t or dl.zeros_like(p)
    else
      outs[i], touts[i] = res[i], nil
    end
  end
  if res.n == 1 then return outs[1], touts[1] end
  return outs, touts
end

-- Jacobian of fn at x (a tensor) by reverse mode: shape out.shape .. x.shape
function A.jacobian(fn, x)
  check_callable("dl.autograd.jacobian", fn)
  check_tensor("dl.autograd.jacobian", 2, "x", x)
  local xi = x:detach():requires_grad_(true)
  local y = fn(xi)
  local ny, nx = y:numel(), xi:numel()
  local J = dl.zeros(ny, nx, {dtype = y.dtype})
  local yflat = y:reshape(-1)
  for k = 1, ny do
    local seed = dl.zeros(ny, {dtype = y.dtype})
    seed:set(k, 1)
    local gx = A.grad(yflat, xi, seed, {retain_graph = true, allow_unused = true})
    if gx then J[k] = gx:reshape(-1) end
  end
  local shape = {}
  for _, s in ipairs(y:size()) do shape[#shape + 1] = s end
  for _, s in ipairs(x:size()) do shape[#shape + 1] = s end
  if #shape == 0 then return J:reshape({}) end
  return J:reshape(shape)
end

-- Hessian-vector product of a scalar function: reverse over reverse
-- (grad of <grad f, v>); returns f(x), H v.
function A.hvp(fn, x, v)
  check_callable("dl.autograd.hvp", fn)
  check_tensor("dl.autograd.hvp", 2, "x", x)
  check_tensor("dl.autograd.hvp", 3, "v", v)
  local xi = x:detach():requires_grad_(true)
  local y = fn(xi)
  if y:numel() ~= 1 then error("dl.autograd.hvp: fn must return a scalar", 2) end
  local g = A.grad(y, xi, nil, {create_graph = true})
  local gv = (g * v):sum()
  local hv = A.grad(gv, xi)
  return y:detach(), hv
end

---------------------------------------------------------------------------
-- Gradient checking (float64 central differences)
---------------------------------------------------------------------------

-- gradcheck(fn, inputs, {eps = 1e-6, atol = 1e-5, rtol = 1e-3,
-- raise_exception = true}) -> true, or raises with the first mismatch (false
-- and the message with raise_exception = false, as PyTorch's). Inputs
-- requiring grad are perturbed one element at a time.
local gradcheck_opts = {eps = true, atol = true, rtol = true, raise_exception = true}
function A.gradcheck(fn, inputs, opts)
  local checks = require "dlua.checks"
  opts = checks.options("dl.autograd.gradcheck", opts, gradcheck_opts)
  for _, k in ipairs({"eps", "atol", "rtol"}) do
    if opts[k] ~= nil and (type(opts[k]) ~= "number" or not (opts[k] >= 0)) then
      raise(string.format("dl.autograd.gradcheck: option '%s' must be a non-negative number, got %s", k,
        tostring(opts[k])))
    end
  end
  if opts.raise_exception == false then
    local plain = {}
    for k, v in pairs(opts) do if k ~= "raise_exception" then plain[k] = v end end
    local ok, err = pcall(A.gradcheck, fn, inputs, plain)
    if ok then return true end
    return false, require("dlua.errors").strip(err)
  end
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  check_callable("dl.autograd.gradcheck", fn)
  local ins = as_list("dl.autograd.gradcheck", 2, inputs)
  if #ins == 0 then raise("dl.autograd.gradcheck: bad argument #2 (no inputs to check)") end
  local function outputs_of(...)
    local r = table.pack(fn(...))
    local o = {}
    for i = 1, r.n do if dl.is_tensor(r[i]) then o[#o + 1] = r[i] end end
    return o
  end
  local outs = outputs_of(table.unpack(ins))
  for _, o in ipairs(outs) do
    if o.dtype ~= "float64" then error("dl.autograd.gradcheck: outputs must be float64 (got " .. o.dtype .. ")", 2) end
  end
  for i, x in ipairs(ins) do
    if dl.is_tensor(x) and x.requires_grad then
      if x.dtype ~= "float64" then error("dl.autograd.gradcheck: input " .. i .. " must be float64", 2) end
      local n = x:numel()
      -- numerical: perturb the storage of a contiguous copy through a flat view
      local base = x:detach():clone()
      local flat = base:view(-1)
      for oi, o in ipairs(outs) do
        local no = o:numel()
        -- analytical rows: one backward per output element
        local analytic = {}
        local oflat = o:reshape(-1)
        for k = 1, no do
          local seed = dl.zeros(no, {dtype = "float64"})
          seed:set(k, 1)
          local g = A.grad(oflat, x, seed, {retain_graph = true, allow_unused = true})
          analytic[k] = g and flat_values(g) or nil
        end
        for j = 1, n do
          local orig = flat:get(j)
          local function eval(val)
            flat:set(j, val)
            local args = {}
            for a = 1, #ins do args[a] = ins[a] end
            args[i] = base
            local r = dl.no_grad(function() return outputs_of(table.unpack(args)) end)
            return flat_values(r[oi])
          end
          local plus, minus = eval(orig + eps), eval(orig - eps)
          flat:set(j, orig)
          for k = 1, no do
            local num = (plus[k] - minus[k]) / (2 * eps)
            local ana = analytic[k] and analytic[k][j] or 0
            if math.abs(num - ana) > atol + rtol * math.abs(num) or ana ~= ana then
              error(string.format(
                "dl.autograd.gradcheck: mismatch for input %d element %d, output %d element %d: numerical %.10g, analytical %.10g",
                i, j, oi, k, num, ana), 2)
            end
          end
        end
      end
    end
  end
  return true
end

return A
