-- The CUDA backend checked against the CPU: one parameterised suite that
-- reruns the CPU behaviours on "cuda" and compares the results.
--   * every differentiable op of spec/gradcheck/*.lua: outputs and input
--     gradients on both devices, in float64 and in float32 copies, with
--     ||gpu - cpu|| / ||cpu|| < 1e-5 (1e-4 after a GEMM) in float32, and
--     1e-12 (1e-10 after a GEMM) in float64;
--   * non-differentiable ops (comparisons, index ops, sort/topk, cat/stack),
--     on transposed and narrowed inputs;
--   * the Philox streams: rand, randn, randint, randperm, bernoulli_,
--     dropout masks give the same numbers on both devices for one seed;
--   * every nn module and loss (forward, backward, parameter gradients),
--     each optimiser for 5 steps, a small MLP trained for 20 steps, eigh.
-- Without a device the file runs a single pending test, shown as
-- "skipped: no CUDA device". DLUA_SPEC_DEVICE=cpu runs the whole suite
-- with the CPU in the GPU's place, which checks the harness itself.
local dl = require "dlua"

local function cuda_available()
  local ok, cuda = pcall(function() return dl.cuda end)
  if not ok or type(cuda) ~= "table" or type(cuda.is_available) ~= "function" then return false end
  local ok2, avail = pcall(cuda.is_available)
  return ok2 and avail == true
end

local DEV
if cuda_available() then
  DEV = "cuda"
elseif os.getenv("DLUA_SPEC_DEVICE") == "cpu" then
  DEV = "cpu"
end

if not DEV then
  describe("CUDA backend", function()
    it("runs on a GPU", function() pending("skipped: no CUDA device") end)
  end)
  return
end

local EXACT, GEMM = 1e-5, 1e-4
-- float64 results are held to float64's own precision
local F64_TOL = {[EXACT] = 1e-12, [GEMM] = 1e-10}
local F64, I64 = {dtype = "float64"}, {dtype = "int64"}

local function is_float(t) return t.dtype == "float32" or t.dtype == "float64" end

local function sync()
  if DEV == "cuda" then dl.cuda.synchronize() end
end

-- ---------------------------------------------------------------------------
-- comparison of a device result with the CPU's

local function shape_str(t) return "[" .. table.concat(t:size(), ",") .. "]" end

-- g (on DEV) against c (on the CPU): same shape and dtype; floats within
-- tol in relative 2-norm (non-finite entries equal where they are),
-- others exactly equal
local function check_close(g, c, tol, what)
  what = what or "result"
  assert(dl.is_tensor(g) and dl.is_tensor(c), what .. ": expected two tensors")
  if DEV ~= "cpu" then
    assert(g.device ~= "cpu", what .. ": the device result lives on the CPU")
  end
  local gc = g:detach():cpu()
  c = c:detach()
  assert(shape_str(gc) == shape_str(c), string.format("%s: shape %s on %s, %s on cpu", what, shape_str(gc), DEV,
    shape_str(c)))
  assert(gc.dtype == c.dtype, string.format("%s: dtype %s on %s, %s on cpu", what, gc.dtype, DEV, c.dtype))
  if gc:numel() == 0 then return end
  if not is_float(c) then
    assert(gc:eq(c):all():item(), what .. ": values differ from the CPU's")
    return
  end
  local cd, gd = c:double(), gc:double()
  assert(gd:isnan():eq(cd:isnan()):all():item(), what .. ": NaNs at other places than the CPU's")
  local cinf = cd:isinf()
  assert(gd:isinf():eq(cinf):all():item(), what .. ": infinities at other places than the CPU's")
  assert(gd:masked_select(cinf):eq(cd:masked_select(cinf)):all():item(), what .. ": infinities of another sign")
  local bad = cd:isnan():logical_or(cinf)
  cd, gd = cd:masked_fill(bad, 0), gd:masked_fill(bad, 0)
  local nc, nd = cd:norm():item(), (gd - cd):norm():item()
  local err = nc > 0 and nd / nc or nd
  if c.dtype == "float64" then tol = F64_TOL[tol] or tol end
  assert(err < tol, string.format("%s: ||%s - cpu|| / ||cpu|| = %.3g exceeds %g", what, DEV, err, tol))
end

-- every tensor of a (nested) list against its CPU twin
local function check_all(gs, cs, tol, what)
  assert(#gs == #cs, string.format("%s: %d results on %s, %d on cpu", what, #gs, DEV, #cs))
  for i = 1, #cs do
    if dl.is_tensor(cs[i]) then
      check_close(gs[i], cs[i], tol, what .. " " .. i)
    elseif type(cs[i]) == "table" then
      check_all(gs[i], cs[i], tol, what .. " " .. i)
    else
      assert.are.equal(cs[i], gs[i])
    end
  end
end

-- ---------------------------------------------------------------------------
-- running a CPU-written function on the device
--
-- The gradcheck tables' functions capture CPU constants (class targets,
-- masks, index tensors) and create tensors (dl.zeros, dl.tensor, ...).
-- While fn runs on the device, tensors among its upvalues (and those of the
-- Lua functions it reaches) are swapped for device copies, and dl's
-- factories hand out device tensors; both are restored afterwards.

local FACTORIES = {"tensor", "zeros", "ones", "full", "empty", "eye", "arange", "linspace", "rand", "randn",
  "randint", "randperm"}

local function to_dev(t) return t:to(DEV) end

local function swap_upvalues(fn, seen, undo, wrappers)
  if seen[fn] then return end
  seen[fn] = true
  if debug.getinfo(fn, "S").what == "C" then return end
  local i = 1
  while true do
    local name, v = debug.getupvalue(fn, i)
    if not name then break end
    if dl.is_tensor(v) and v.device == "cpu" then
      debug.setupvalue(fn, i, to_dev(v))
      undo[#undo + 1] = {fn, i, v}
    elseif type(v) == "function" then
      if wrappers[v] then
        debug.setupvalue(fn, i, wrappers[v])
        undo[#undo + 1] = {fn, i, v}
      else
        swap_upvalues(v, seen, undo, wrappers)
      end
    end
    i = i + 1
  end
end

local function on_device(fn, ...)
  local saved, wrappers = {}, {}
  for _, k in ipairs(FACTORIES) do
    local orig = dl[k]
    if orig then
      saved[k] = orig
      wrappers[orig] = function(...) return to_dev(orig(...)) end
    end
  end
  for k, orig in pairs(saved) do dl[k] = wrappers[orig] end
  local undo = {}
  swap_upvalues(fn, {}, undo, wrappers)
  local res = table.pack(pcall(fn, ...))
  for j = #undo, 1, -1 do debug.setupvalue(undo[j][1], undo[j][2], undo[j][3]) end
  for k, orig in pairs(saved) do dl[k] = orig end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- ---------------------------------------------------------------------------
-- the gradcheck tables, as one list of cases {name, fn, inputs, tol, seed}

local TABLES = {
  {"activation", EXACT}, {"ewise", EXACT}, {"index", EXACT}, {"layer", GEMM}, {"linalg", GEMM}, {"loss", EXACT},
  {"reduce", EXACT}, {"view", EXACT}, {"conv", EXACT},
}

local function gradcheck_cases()
  local out = {}
  for ti, t in ipairs(TABLES) do
    local family, tol = t[1], t[2]
    local tbl = require("spec.gradcheck." .. family)
    if tbl[1] then -- a list of {op, desc, make, fn}
      for i, c in ipairs(tbl) do
        out[#out + 1] = {name = family .. ": " .. c.op .. ": " .. (c.desc or i), fn = c.fn, inputs = c.make,
          tol = tol, seed = ti * 10000 + i}
      end
    else
      local names = {}
      for name in pairs(tbl) do names[#names + 1] = name end
      table.sort(names)
      for ni, name in ipairs(names) do
        local entry, list = tbl[name], {}
        if entry.fn then list[1] = {fn = entry.fn, inputs = entry.inputs} end
        for _, v in ipairs(entry.variants or {}) do
          if v.fn ~= entry.fn then list[#list + 1] = v end
        end
        for j, c in ipairs(list) do
          local desc = c.desc or c.name or (j == 1 and entry.fn and "main" or ("variant " .. j))
          out[#out + 1] = {name = family .. ": " .. name .. ": " .. desc, fn = c.fn, inputs = c.inputs, tol = tol,
            seed = ti * 10000 + ni * 50 + j}
        end
      end
    end
  end
  return out
end

-- fn's outputs and the inputs' gradients of sum(out_k * w_k), w_k fixed
-- random weights, on dev (inputs: CPU tensors; dtype converts float ones;
-- wrap: through on_device)
local function forward_backward(dev, fn, cpu_inputs, dtype, seed, wrap)
  local ins = {}
  for i, x in ipairs(cpu_inputs) do
    local t = x:detach()
    if dtype and is_float(t) then t = t:to(dtype) end
    t = t:to(dev):detach()
    if is_float(t) then t:requires_grad_(true) end
    ins[i] = t
  end
  dl.manual_seed(seed)
  local outs
  if wrap then
    outs = table.pack(on_device(fn, table.unpack(ins)))
  else
    outs = table.pack(fn(table.unpack(ins)))
  end
  local results, loss = {}, nil
  for k = 1, outs.n do
    local o = outs[k]
    if type(o) == "table" and not dl.is_tensor(o) then o = o[1] end -- sort-like tables: the values
    if dl.is_tensor(o) then
      results[#results + 1] = o
      if is_float(o) and o.requires_grad then
        dl.manual_seed(seed + 7 * k)
        local w = dl.randn(o:size(), {dtype = o.dtype}):to(dev)
        local term = (o * w):sum()
        loss = loss and loss + term or term
      end
    end
  end
  local grads = {}
  if loss then
    loss:backward()
    for i, x in ipairs(ins) do
      if x.grad then grads[#grads + 1] = x.grad else grads[#grads + 1] = false end
    end
  end
  return results, grads
end

local function check_case(c, dtype)
  dl.manual_seed(c.seed)
  local cpu_inputs = c.inputs()
  local okc, rc, gc = pcall(forward_backward, "cpu", c.fn, cpu_inputs, dtype, c.seed + 1)
  local okg, rg, gg = pcall(forward_backward, DEV, c.fn, cpu_inputs, dtype, c.seed + 1, true)
  if not okc then
    -- a case the float32 copies do not fit (a float64 constant inside fn):
    -- the device must refuse it the same way
    assert(dtype, rc)
    assert(not okg, "the CPU raised an error the device did not: " .. tostring(rc))
    assert.are.equal(tostring(rc), tostring(rg))
    return
  end
  assert(okg, rg)
  local tol = c.tol
  check_all(rg, rc, tol, "output")
  assert(#gg == #gc, "gradients: a different number of inputs got one")
  for i = 1, #gc do
    if gc[i] then
      assert(gg[i], "gradient " .. i .. ": missing on " .. DEV)
      check_close(gg[i], gc[i], tol, "gradient " .. i)
    else
      assert.is_false(gg[i])
    end
  end
end

describe("cuda: differentiable ops match the CPU (spec/gradcheck tables)", function()
  for _, c in ipairs(gradcheck_cases()) do
    it(c.name .. " (float64)", function() check_case(c, nil) end)
    it(c.name .. " (float32 copies)", function() check_case(c, "float32") end)
  end
end)

-- ---------------------------------------------------------------------------
-- ops without gradients, on non-contiguous inputs

local function r(...) return dl.randn({...}) end

local OPS = {
  {"eq/ne/lt/le/gt/ge on a transposed input", function(a, b)
    local at = a:t()
    return at:eq(b), at:ne(b), at:lt(b), at:le(b), at:gt(b), at:ge(b)
  end, function() return {dl.randint(0, 3, {3, 4}):float(), dl.randint(0, 3, {4, 3}):float()} end},
  {"comparisons with a broadcast scalar and narrowed input", function(a)
    local n = a:narrow(2, 2, 3)
    return n:gt(0), n:le(0.5), n:eq(n)
  end, function() return {r(4, 5)} end},
  {"isnan / isinf / all / any", function(a)
    return a:isnan(), a:isinf(), a:gt(-1e9):all(), a:isinf():any(), a:isnan():any()
  end, function() return {dl.tensor({{1, 0 / 0, math.huge}, {-math.huge, 2, 3}})} end},
  {"logical ops and where", function(a, b)
    local m = a:gt(0)
    return m:logical_and(b:gt(0)), m:logical_or(b:lt(0)), m:logical_not(), dl.where(m, a, b)
  end, function() return {r(3, 4), r(4, 3):t()} end},
  {"argmax / argmin / max / min along dims", function(a)
    local v, i = a:max(2)
    local w, j = a:t():min(1)
    return a:argmax(), a:argmin(1), v, i, w, j
  end, function() return {r(5, 6)} end},
  {"sort ascending and descending, transposed", function(a)
    local v, i = a:t():sort(1)
    local w, j = a:sort(2, true)
    return v, i, w, j
  end, function() return {r(6, 7)} end},
  {"sort of ties keeps a stable order of indices", function(a)
    local v, i = a:sort(1)
    return v, i
  end, function() return {dl.tensor({3, 1, 2, 1, 3, 2, 1, 0, 0, 2})} end},
  {"topk largest and smallest, narrowed", function(a)
    local n = a:narrow(2, 2, 6)
    local v, i = n:topk(3, 2)
    local w, j = n:topk(2, 1, false)
    return v, i, w, j
  end, function() return {r(5, 8)} end},
  {"cat and stack of mixed layouts", function(a, b)
    return dl.cat({a, b:t()}, 1), dl.cat({a:t(), b}, 2), dl.stack({a, b:t(), a}, 2), dl.stack({a, a}, 1)
  end, function() return {r(3, 4), r(4, 3)} end},
  {"cat of int64 and bool tensors", function(a)
    return dl.cat({a, a:narrow(1, 2, 2)}, 1), dl.cat({a:gt(2), a:lt(2)}, 1)
  end, function() return {dl.randint(0, 5, {4, 3})} end},
  {"index_select / gather / scatter_add with 1-based indices", function(a)
    local idx = dl.tensor({3, 1, 3}, I64)
    local g = dl.tensor({{1, 2}, {2, 2}, {3, 1}}, I64)
    local z = dl.zeros(3, 4)
    return a:index_select(1, idx), a:t():index_select(2, idx), a:gather(2, g), z:scatter_add(2, g, a:narrow(2, 1, 2))
  end, function() return {r(3, 4)} end},
  {"masked_select / masked_fill / nonzero", function(a)
    local m = a:gt(0)
    return a:masked_select(m), a:t():masked_fill(m:t(), -1), m:nonzero()
  end, function() return {r(4, 5)} end},
  {"t[mask] and t[idx]: reads and writes (advanced indexing)", function(a)
    local m = a:gt(0)
    local b, c, d = a:clone(), a:clone(), a:clone()
    b[m] = 0
    c[a:lt(0)] = a[a:lt(0)] * 2
    d[dl.tensor({3, 1}, I64)] = a[dl.tensor({1, 2}, I64)]
    return a[m], a[dl.tensor({2, 2, 3}, I64)], a[m:select(2, 1)], b, c, d
  end, function() return {r(3, 4)} end},
  {"index_fill_ / index_add_ / index_copy_ in place", function(a)
    local idx = dl.tensor({2, 4}, I64)
    local b = a:clone():index_fill_(2, idx, 7)
    local c = a:clone():index_add_(1, dl.tensor({1, 1}, I64), dl.ones(2, 4))
    local d = a:clone():index_copy_(1, dl.tensor({3, 2}, I64), dl.zeros(2, 4))
    return b, c, d
  end, function() return {r(3, 4)} end},
  {"one_hot of labels", function(y) return dl.one_hot(y, 5) end,
    function() return {dl.tensor({1, 5, 3, 3}, I64)} end},
  {"cumsum / logsumexp / var / std / norm along dims", function(a)
    return a:cumsum(2), a:t():logsumexp(1), a:var(1), a:std(2, {unbiased = false}), a:norm(1), a:norm(2, 2)
  end, function() return {r(5, 6)} end},
  {"integer arithmetic and division", function(a, b)
    return a + b, a * b, a - b:t():t(), a:t() * 3, (a % 3), a // 2
  end, function() return {dl.randint(-9, 10, {3, 4}), dl.randint(-9, 10, {3, 4})} end},
  {"dtype conversions", function(a)
    return a:double(), a:long(), a:gt(0):float(), (a * 50):to("uint8"), a:t():contiguous():to("float64")
  end, function() return {dl.rand(4, 5) * 4} end},
  {"copy_ into a transposed view and fill_", function(a, b)
    local z = dl.zeros(4, 3)
    z:t():copy_(a)
    local f = b:clone()
    f:narrow(2, 1, 2):fill_(3)
    return z, f
  end, function() return {r(3, 4), r(2, 5)} end},
  {"sum / mean / prod of a broadcast view", function(a)
    local e = a:expand(4, 3)
    return e:sum(), e:mean(1), e:prod(2), e:sum({1, 2})
  end, function() return {r(1, 3)} end},
}

-- sizes and dtypes that take every kernel path: reductions one thread per
-- output, a warp per row, a block per row and split across blocks; the
-- scan's chunked long lines; empty and 0-d tensors; uint8 and bool
local PATHS = {
  {"a sum of 3M elements (split across blocks)", function(a) return a:sum(), a:mean() end,
    function() return {r(3000000)} end},
  {"long rows, few outputs (a block each, split)", function(a) return a:sum(2), a:amax(2), a:var(2) end,
    function() return {r(3, 200000)} end},
  {"many short rows (a thread per output)", function(a) return a:sum(2), a:max(2) end,
    function() return {r(100000, 3)} end},
  {"middle rows (a warp each)", function(a) return a:sum(2), a:norm(2, 2) end, function() return {r(2000, 300)} end},
  {"a reduction over a strided dim", function(a) return a:sum(1), a:prod(1) end,
    function() return {r(50000, 4) * 0.01 + 1} end},
  {"cumsum / cumprod of a long line (chunked) and many short ones", function(a, b)
    return a:cumsum(2), b:cumsum(1), (b * 0.01 + 1):cumprod(2)
  end, function() return {r(2, 100000), r(3000, 7)} end},
  {"empty tensors", function(a)
    return a + 1, a:sum(), a:sum(1), a:exp(), a:t():contiguous(), dl.cat({a, a}, 1)
  end, function() return {dl.zeros(0, 3)} end},
  {"0-d tensors", function(a, b) return a * b, a:exp(), (a + b):sum(), a:view(1), a:expand(3) end,
    function() return {dl.tensor(1.5), dl.tensor(-2.0)} end},
  {"uint8 arithmetic (modulo 256) and comparisons", function(a, b)
    local d = b % 200 + 1 -- no zero divisor
    return a + b, a * b, a - b, a // d, a % d, a:gt(b), a:sum(), a:max()
  end, function() return {dl.randint(0, 256, {40, 30}):to("uint8"), dl.randint(0, 256, {40, 30}):to("uint8")} end},
  {"bool logic and reductions", function(a, b)
    return a:logical_and(b), a:logical_or(b:t():t()), a:logical_xor(b), a:logical_not(), a:sum(), a:any(2),
      a:all(1), a + b
  end, function() return {dl.rand(30, 40):gt(0.5), dl.rand(30, 40):gt(0.3)} end},
}

-- one `it` per {name, fn, inputs} of list: fn's results on the device
-- against the CPU's
local function compare_each(list, seed)
  for oi, op in ipairs(list) do
    it(op[1], function()
      dl.manual_seed(seed + oi)
      local ins = op[3]()
      local cpu = table.pack(op[2](table.unpack(ins)))
      local dev_ins = {}
      for i, x in ipairs(ins) do dev_ins[i] = to_dev(x) end
      local gpu = table.pack(on_device(op[2], table.unpack(dev_ins)))
      check_all({table.unpack(gpu, 1, gpu.n)}, {table.unpack(cpu, 1, cpu.n)}, EXACT, "output")
    end)
  end
end

describe("cuda: every kernel path (sizes, empty and 0-d tensors, uint8, bool)", function()
  compare_each(PATHS, 900)
  if DEV == "cuda" then
    it("element-wise grid-stride loops that go round more than once", function()
      -- past 65535 * 8 blocks of 256 threads: 150M bytes
      local n = 150000000
      local a = dl.ones(n, {dtype = "uint8", device = DEV})
      local s = (a + a):sum():item()
      assert.equal(2 * n, s)
    end)
  end
  it("an impossible allocation is an error, and the next op works", function()
    local ok, e = pcall(function() return dl.empty(2 ^ 40, {dtype = "float64", device = DEV}) end)
    assert.is_false(ok)
    assert.matches("out of memory", tostring(e))
    local x = dl.ones(4, {device = DEV})
    assert.equal(8, (x + x):sum():item())
  end)
end)

describe("cuda: ops without gradients match the CPU", function()
  compare_each(OPS, 500)

  it("mixing devices is an error naming both", function()
    if DEV == "cpu" then return end
    local a, b = dl.ones(2), dl.ones(2):to(DEV)
    local ok, err = pcall(function() return a + b end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("cuda", 1, true))
  end)
end)

-- ---------------------------------------------------------------------------
-- in-place writes that views and operands see

describe("cuda: writes through aliases match the CPU", function()
  -- x.grad through a view taken before its base was written in place (the
  -- view's history is derived again, AsStridedBackward0), for each device
  local function view_grads(dev)
    local out = {}
    for _, f in ipairs({
      function(q) local v = q:narrow(1, 2, 2); q:mul_(3); return (v * v):sum() end,
      function(q) local e = q:narrow(1, 1, 1):expand(3); q:mul_(2); return (e * e):sum() end, -- shared elements
      function(q) local u = q:unfold(1, 2, 1); q:add_(1); return (u * u):sum() end, -- overlapping windows
      function(q) local a, b = q:narrow(1, 1, 2), q:narrow(1, 2, 2); a:copy_(b * 10); return b:sum() end,
    }) do
      local x = dl.tensor({1, 2, 3, 4}, {dtype = "float64", device = dev, requires_grad = true})
      f(x * 1):backward()
      out[#out + 1] = x.grad
    end
    return out
  end
  it("gradients through views of a tensor written in place", function()
    check_all(view_grads(DEV), view_grads("cpu"), EXACT, "view gradient")
  end)
  local function aliased(dev)
    local t = dl.tensor({2, 1, 3}, {device = dev})
    t:scatter_(1, t, 100) -- the index is self: read before the write
    local a = dl.tensor({1, 2, 3}, {dtype = "float64", device = dev})
    a:index_add_(1, dl.tensor({3, 2, 1}, {device = dev}), a)
    local m = dl.arange(1, 13, {device = dev}):view(3, 4)
    m[{{}, {2, 4}}] = m[{{}, {1, 3}}] -- an overlapping copy
    return {t, a, m}
  end
  it("in-place index ops and copy_ with an aliased operand", function()
    check_all(aliased(DEV), aliased("cpu"), EXACT, "aliased write")
  end)
  it("batch norm of an empty batch", function()
    local bn = dl.nn.BatchNorm2d(3):to(DEV)
    local x = dl.randn(0, 3, 4, 4, {device = DEV}):requires_grad_()
    local y = bn(x)
    y:sum():backward()
    assert.same({0, 3, 4, 4}, y.shape)
    check_close(bn.weight.grad, dl.zeros(3), EXACT, "weight gradient")
    check_close(bn.running_mean, dl.zeros(3), EXACT, "running mean")
  end)
end)

-- ---------------------------------------------------------------------------
-- the Philox streams

-- make(dev) after the same seed on both devices: values within tol (the
-- normal transforms call log/sin/cos, whose last bits may differ between
-- libm and CUDA's), the generator's offset exactly
local function same_stream(make, tol)
  dl.manual_seed(2024)
  local c = make("cpu")
  local sc = dl.get_rng_state()
  dl.manual_seed(2024)
  local g = make(DEV)
  local sg = dl.get_rng_state()
  check_close(g, c, tol, "stream")
  assert.are.same(sc:totable(), sg:totable())
end

-- make(dev) after the same seed on both devices: equal values
local function same_values(make)
  dl.manual_seed(99)
  local c = make("cpu")
  dl.manual_seed(99)
  local g = make(DEV)
  if DEV ~= "cpu" then assert(g.device ~= "cpu", "the result lives on the CPU") end
  g = g:cpu()
  assert.are.equal(c.dtype, g.dtype)
  assert.is_true(g:eq(c):all():item(), "the device's stream differs from the CPU's")
end

describe("cuda: the same seed gives the CPU's random numbers", function()
  it("rand float32, an odd count", function() same_values(function(d) return dl.rand(1001, {device = d}) end) end)
  it("rand float64", function()
    same_values(function(d) return dl.rand({7, 9}, {dtype = "float64", device = d}) end)
  end)
  it("uniform_ on a transposed view", function()
    same_values(function(d) return dl.empty(5, 6, {device = d}):t():uniform_(-2, 3) end)
  end)
  it("randn float32 (Box-Muller in double, rounded once)", function()
    same_stream(function(d) return dl.randn(1001, {device = d}) end, 1e-7)
  end)
  it("randn float64, an odd count", function()
    same_stream(function(d) return dl.randn({3, 5}, {dtype = "float64", device = d}) end, 1e-14)
  end)
  it("normal_ on a narrowed view", function()
    same_stream(function(d) return dl.zeros(6, 8, {device = d}):narrow(2, 2, 5):normal_(1, 0.5) end, 1e-7)
  end)
  it("exponential_", function()
    same_stream(function(d) return dl.empty(257, {dtype = "float64", device = d}):exponential_(2) end, 1e-14)
  end)
  it("randint with a small range, int64", function()
    same_values(function(d) return dl.randint(-5, 17, {33}, {device = d}) end)
  end)
  it("randint with a range past 2^32", function()
    same_values(function(d) return dl.randint(0, 2 ^ 40, {9}, {device = d}) end)
  end)
  it("random_ into float32 and uint8", function()
    same_values(function(d) return dl.empty(13, {device = d}):random_(0, 100) end)
    same_values(function(d) return dl.empty(13, {dtype = "uint8", device = d}):random_(0, 200) end)
  end)
  it("randperm of an odd length", function() same_values(function(d) return dl.randperm(1001, {device = d}) end) end)
  it("bernoulli_ with a scalar p, float and bool", function()
    same_values(function(d) return dl.empty(99, {device = d}):bernoulli_(0.3) end)
    same_values(function(d) return dl.empty(99, {dtype = "bool", device = d}):bernoulli_(0.7) end)
  end)
  it("bernoulli with a tensor of probabilities", function()
    local p = dl.rand(41, {dtype = "float64"})
    same_values(function(d) return dl.bernoulli(p:to(d)) end)
  end)
  it("bernoulli rejects probabilities outside [0, 1] on both devices", function()
    local p = dl.tensor({0.5, 1.5, -0.1})
    local ok1, e1 = pcall(dl.bernoulli, p)
    local ok2, e2 = pcall(dl.bernoulli, p:to(DEV))
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.are.equal((tostring(e1):gsub("^.-dl%.", "dl.")), (tostring(e2):gsub("^.-dl%.", "dl.")))
  end)
  it("dropout masks", function()
    local x = dl.ones(16, 9)
    same_values(function(d) return dl.F.dropout(x:to(d), 0.4, true) end)
    same_values(function(d) return dl.nn.Dropout(0.25):to(d)(x:to(d):t()) end)
  end)
  it("the generator advances by the same offset on both devices", function()
    dl.manual_seed(3)
    dl.rand(5)
    dl.randn(3, {dtype = "float64"})
    dl.randperm(7)
    local sc = dl.get_rng_state()
    dl.manual_seed(3)
    dl.rand(5, {device = DEV})
    dl.randn(3, {dtype = "float64", device = DEV})
    dl.randperm(7, {device = DEV})
    assert.are.same(sc:totable(), dl.get_rng_state():totable())
  end)
end)

-- ---------------------------------------------------------------------------
-- nn modules and losses

local nn = dl.nn

-- make() builds the module on the CPU (seeded); its copy moves to DEV
local MODULES = {
  {"Linear", function() return nn.Linear(5, 4) end, function() return r(6, 5) end, GEMM},
  {"Linear without bias on a 3-D input", function() return nn.Linear(5, 3, {bias = false}) end,
    function() return r(2, 4, 5) end, GEMM},
  {"RBF with bias unit and learnable centers and widths", function()
    return nn.RBF(3, 4, {bias_unit = true, learn_centers = true, learn_sigma = true})
  end, function() return r(6, 3) end, GEMM},
  {"Sequential MLP", function() return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)) end,
    function() return r(5, 4) end, GEMM},
  {"Residual", function() return nn.Residual(nn.Linear(4, 4)) end, function() return r(3, 4) end, GEMM},
  {"Identity and Flatten", function() return nn.Sequential(nn.Identity(), nn.Flatten()) end,
    function() return r(2, 3, 4) end, EXACT},
  {"Dropout in training mode", function() return nn.Dropout(0.3) end, function() return r(8, 5) end, EXACT},
  {"BatchNorm1d training on [N, C]", function() return nn.BatchNorm1d(4) end, function() return r(16, 4) * 3 + 1 end,
    EXACT},
  {"BatchNorm1d training on [N, C, L]", function() return nn.BatchNorm1d(3) end,
    function() return r(5, 3, 7) end, EXACT},
  {"BatchNorm1d in eval mode", function()
    local m = nn.BatchNorm1d(4)
    m(r(10, 4) + 2) -- move the running statistics
    m:eval()
    return m
  end, function() return r(6, 4) end, EXACT},
  {"BatchNorm1d without affine", function() return nn.BatchNorm1d(4, {affine = false}) end,
    function() return r(9, 4) end, EXACT},
  {"ReLU", function() return nn.ReLU() end, function() return r(4, 5) end, EXACT},
  {"LeakyReLU", function() return nn.LeakyReLU(0.1) end, function() return r(4, 5) end, EXACT},
  {"PReLU per channel", function() return nn.PReLU(3) end, function() return r(4, 3, 2) end, EXACT},
  {"PReLU shared", function() return nn.PReLU() end, function() return r(4, 3) end, EXACT},
  {"ELU", function() return nn.ELU(0.8) end, function() return r(4, 5) end, EXACT},
  {"Tanh", function() return nn.Tanh() end, function() return r(4, 5) end, EXACT},
  {"Sigmoid", function() return nn.Sigmoid() end, function() return r(4, 5) end, EXACT},
  {"Softmax over the last dim", function() return nn.Softmax(2) end, function() return r(4, 300) end, EXACT},
  {"Softmax over a middle dim", function() return nn.Softmax(2) end, function() return r(3, 6, 5) end, EXACT},
  {"LogSoftmax", function() return nn.LogSoftmax(-1) end, function() return r(7, 10) * 20 end, EXACT},
  {"GELU", function() return nn.GELU() end, function() return r(4, 5) end, EXACT},
  {"GELU tanh", function() return nn.GELU({approximate = "tanh"}) end, function() return r(4, 5) end, EXACT},
  {"SiLU", function() return nn.SiLU() end, function() return r(4, 5) end, EXACT},
  {"Softplus", function() return nn.Softplus({beta = 2, threshold = 3}) end, function() return r(4, 5) * 2 end,
    EXACT},
  -- the convolutional family (float32: fused oneDNN on the CPU, cuDNN on the device where it loads; padding that
  -- differs before and after, as "same" with an even kernel, and float64 take im2col + GEMMs on both)
  {"Conv2d with groups and stride", function() return nn.Conv2d(4, 6, 3, {stride = 2, padding = 1, groups = 2}) end,
    function() return r(2, 4, 7, 6) end, GEMM},
  {"Conv2d 'same' with an even kernel (padded 1 before, 2 after)", function()
    return nn.Conv2d(3, 4, 4, {padding = "same"})
  end, function() return r(2, 3, 6, 5) end, GEMM},
  {"Conv1d dilated, depthwise Conv2d without bias", function()
    return nn.Sequential(nn.Conv1d(4, 4, 3, {dilation = 2, padding = 2}), nn.Unflatten(3, {1, -1}),
      nn.Conv2d(4, 4, 1, {groups = 4, bias = false}))
  end, function() return r(2, 4, 9) end, GEMM},
  {"Conv1d 'same', reflect padding", function() return nn.Conv1d(3, 2, 4, {padding = "same", padding_mode = "reflect"}) end,
    function() return r(2, 3, 9) end, GEMM},
  {"Conv3d", function() return nn.Conv3d(2, 3, 2) end, function() return r(1, 2, 4, 3, 5) end, GEMM},
  {"ConvTranspose2d", function() return nn.ConvTranspose2d(4, 3, 3, {stride = 2, padding = 1, output_padding = 1}) end,
    function() return r(2, 4, 3, 4) end, GEMM},
  {"MaxPool2d ceil mode", function() return nn.MaxPool2d(3, {stride = 2, padding = 1, ceil_mode = true}) end,
    function() return r(2, 3, 7, 6) end, EXACT},
  {"AvgPool2d without the padding", function() return nn.AvgPool2d(3, {stride = 2, padding = 1, count_include_pad = false}) end,
    function() return r(2, 3, 7, 6) end, EXACT},
  {"AdaptiveAvgPool2d and AdaptiveMaxPool1d", function()
    return nn.Sequential(nn.AdaptiveAvgPool2d({3, 2}), nn.Flatten(3), nn.AdaptiveMaxPool1d(4))
  end, function() return r(2, 3, 7, 5) end, EXACT},
  {"AdaptiveMaxPool2d with indices (the values scaled by the indices, so both must agree)", function()
    local M = nn.Module:extend("MaxWithIndices")
    function M:init() self.pool = nn.AdaptiveMaxPool2d({2, 3}, {return_indices = true}) end
    function M:forward(x)
      local y, idx = self.pool(x)
      return y * idx:to(y.dtype)
    end
    return M()
  end, function() return r(2, 3, 7, 5) end, EXACT},
  {"BatchNorm2d training", function() return nn.BatchNorm2d(3) end, function() return r(4, 3, 5, 4) * 2 + 1 end, EXACT},
  {"BatchNorm2d, ReLU and 2x2 max pooling (one op on the CPU, two on the device)", function()
    return nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2))
  end, function() return r(4, 3, 6, 5) * 2 + 0.5 end, EXACT},
  {"Conv2d, BatchNorm2d, ReLU (and 2x2 max pooling): one op over blocked channels on the CPU, layer by layer on the device",
    function()
      return nn.Sequential(nn.Conv2d(3, 16, 3, {padding = 1}), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, {padding = 1, bias = false}), nn.BatchNorm2d(32), nn.ReLU())
    end, function() return r(4, 3, 8, 6) end, GEMM},
  {"BatchNorm1d then ReLU fused, in eval mode", function()
    local m = nn.Sequential(nn.BatchNorm1d(4), nn.ReLU())
    m(r(10, 4) + 2) -- move the running statistics
    m:eval()
    return m
  end, function() return r(6, 4) end, EXACT},
  {"LayerNorm", function() return nn.LayerNorm({3, 4}) end, function() return r(2, 5, 3, 4) end, EXACT},
  {"GroupNorm", function() return nn.GroupNorm(2, 4) end, function() return r(3, 4, 5) end, EXACT},
  {"InstanceNorm2d affine", function() return nn.InstanceNorm2d(3, {affine = true}) end,
    function() return r(2, 3, 4, 5) end, EXACT},
  {"RMSNorm", function() return nn.RMSNorm(5) end, function() return r(3, 4, 5) end, EXACT},
  {"Dropout2d in training mode", function() return nn.Dropout2d(0.4) end, function() return r(3, 6, 2, 2) end, EXACT},
  -- sequences: embeddings, the recurrent family (one GEMM per layer and direction for the inputs, one addmm
  -- per step), attention (batched GEMMs around a masked softmax, dropout on the weights)
  {"Embedding with a padding row", function()
    local M = nn.Module:extend("Lookup")
    function M:init() self.emb = nn.Embedding(7, 3, {padding_idx = 2}) end
    function M:forward(x) return self.emb(dl.tensor({{1, 2, 5}, {7, 2, 1}}):to(x.device)) * x end
    return M()
  end, function() return r(2, 3, 3) end, EXACT},
  {"LSTM 2 layers bidirectional", function() return nn.LSTM(5, 4, {num_layers = 2, bidirectional = true}) end,
    function() return r(6, 3, 5) end, GEMM},
  {"LSTM with projections, batch first", function() return nn.LSTM(5, 4, {proj_size = 2, batch_first = true}) end,
    function() return r(3, 6, 5) end, GEMM},
  {"LSTM dropout between layers in training mode", function() return nn.LSTM(5, 4, {num_layers = 2, dropout = 0.3}) end,
    function() return r(6, 3, 5) end, GEMM},
  {"GRU batch first, bidirectional", function() return nn.GRU(5, 4, {batch_first = true, bidirectional = true}) end,
    function() return r(3, 6, 5) end, GEMM},
  {"RNN relu, 2 layers, no bias", function() return nn.RNN(5, 4, {nonlinearity = "relu", num_layers = 2, bias = false}) end,
    function() return r(6, 3, 5) end, GEMM},
  {"RNN tanh unbatched", function() return nn.RNN(5, 4) end, function() return r(6, 5) end, GEMM},
  {"LSTMCell", function() return nn.LSTMCell(5, 4) end, function() return r(3, 5) end, GEMM},
  {"GRUCell unbatched", function() return nn.GRUCell(5, 4) end, function() return r(5) end, GEMM},
  {"RNNCell relu", function() return nn.RNNCell(5, 4, {nonlinearity = "relu"}) end, function() return r(3, 5) end, GEMM},
  {"MultiheadAttention, batch first, key padding mask, per-head weights", function()
    local M = nn.Module:extend("SelfAttention")
    function M:init() self.attn = nn.MultiheadAttention(8, 2, {batch_first = true}) end
    function M:forward(x)
      local kpm = dl.tensor({{false, false, false, true, true}, {false, false, false, false, false}}):to(x.device)
      local out, w = self.attn(x, x, x, {key_padding_mask = kpm, average_attn_weights = false})
      return dl.cat({out, w:mean(2)}, 3) -- the weights checked too
    end
    return M()
  end, function() return r(2, 5, 8) end, GEMM},
  {"MultiheadAttention cross-attention, kdim/vdim, causal, dropout in training", function()
    local M = nn.Module:extend("CrossAttention")
    function M:init()
      self.attn = nn.MultiheadAttention(8, 2, {kdim = 6, vdim = 4, dropout = 0.2})
      self.mem = nn.Parameter(dl.randn(7, 3, 10))
    end
    function M:forward(x)
      return (self.attn(x, self.mem:narrow(3, 1, 6), self.mem:narrow(3, 7, 4), {is_causal = true}))
    end
    return M()
  end, function() return r(5, 3, 8) end, GEMM},
  {"TransformerEncoderLayer pre-norm, GELU, causal, dropout in training", function()
    local M = nn.Module:extend("CausalEncoderLayer")
    function M:init()
      self.layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, activation = "gelu", norm_first = true})
    end
    function M:forward(x) return self.layer(x, {is_causal = true}) end
    return M()
  end, function() return r(6, 2, 8) end, GEMM},
  {"TransformerDecoder of two pre-norm GELU layers over a fixed memory", function()
    local M = nn.Module:extend("DecoderStack")
    function M:init()
      self.dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, {dim_feedforward = 16, norm_first = true,
        activation = "gelu", batch_first = true}), 2)
      self.memory = nn.Parameter(dl.randn(3, 4, 8))
    end
    function M:forward(x) return self.dec(x, self.memory, {tgt_is_causal = true}) end
    return M()
  end, function() return r(3, 5, 8) end, GEMM},
  {"TransformerEncoder of two post-norm layers", function()
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, batch_first = true}), 2,
      {norm = nn.LayerNorm(8)})
  end, function() return r(3, 5, 8) end, GEMM},
  {"Upsample bilinear and PixelShuffle", function()
    return nn.Sequential(nn.Upsample({scale_factor = 2, mode = "bilinear"}), nn.PixelUnshuffle(2), nn.PixelShuffle(2),
      nn.Unflatten(2, {2, 2}))
  end, function() return r(2, 4, 3, 5) end, EXACT},
}

-- forward + backward of m on dev: output, input gradient, parameter
-- gradients and buffers (running statistics)
local function module_run(m, x, dev, seed)
  m = m:to(dev)
  local xi = x:to(dev):detach():requires_grad_(true)
  dl.manual_seed(seed)
  local y = m(xi)
  dl.manual_seed(seed + 1)
  local w = dl.randn(y:size(), {dtype = y.dtype}):to(dev)
  ;(y * w):sum():backward()
  local res = {y, xi.grad}
  for _, e in ipairs(m:named_parameters()) do res[#res + 1] = e[2].grad end
  for _, e in ipairs(m:named_buffers()) do
    if is_float(e[2]) then res[#res + 1] = e[2] end
  end
  return res
end

describe("cuda: nn modules match the CPU (forward, backward, parameters)", function()
  for mi, c in ipairs(MODULES) do
    it(c[1], function()
      dl.manual_seed(700 + mi)
      local mc = c[2]()
      dl.manual_seed(700 + mi)
      local mg = c[2]()
      local x = c[3]()
      local rc = module_run(mc, x, "cpu", 900 + mi)
      local rg = module_run(mg, x, DEV, 900 + mi)
      check_all(rg, rc, c[4], "tensor")
    end)
  end
end)

local Y = dl.tensor({2, 5, 1, 3, 4, 4}, I64)
local Y_IGN = dl.tensor({2, -100, 1, 3, 5, -100}, I64)
local WC = dl.tensor({0.5, 1.5, 1.0, 2.0, 0.7})
local LOSSES = {
  {"MSELoss", function() return nn.MSELoss() end, function() return r(6, 3), r(6, 3) end},
  {"MSELoss sum", function() return nn.MSELoss({reduction = "sum"}) end, function() return r(6, 3), r(6, 3) end},
  {"L1Loss none", function() return nn.L1Loss({reduction = "none"}) end, function() return r(6, 3), r(6, 3) end},
  {"SmoothL1Loss", function() return nn.SmoothL1Loss({beta = 0.5}) end, function() return r(6, 3), r(6, 3) end},
  {"BCELoss", function() return nn.BCELoss() end, function() return dl.rand(6, 3) * 0.8 + 0.1, dl.rand(6, 3) end},
  {"BCEWithLogitsLoss with pos_weight", function() return nn.BCEWithLogitsLoss({pos_weight = dl.rand(3) + 0.5}) end,
    function() return r(6, 3), dl.rand(6, 3):gt(0.5):float() end},
  {"CrossEntropyLoss", function() return nn.CrossEntropyLoss() end, function() return r(6, 5), Y end},
  {"CrossEntropyLoss weighted, smoothed, ignore_index", function()
    return nn.CrossEntropyLoss({weight = WC, label_smoothing = 0.1})
  end, function() return r(6, 5), Y_IGN end},
  {"CrossEntropyLoss sum, ignore_index 4", function()
    return nn.CrossEntropyLoss({reduction = "sum", ignore_index = 4})
  end, function() return r(6, 5), Y end},
  {"CrossEntropyLoss none on [N, C, d]", function() return nn.CrossEntropyLoss({reduction = "none"}) end,
    function() return r(3, 5, 2), dl.tensor({{1, 5}, {2, 2}, {4, 3}}, I64) end},
  {"CrossEntropyLoss with probability targets", function() return nn.CrossEntropyLoss({label_smoothing = 0.2}) end,
    function() return r(6, 5), r(6, 5):softmax(2) end},
  {"CrossEntropyLoss with many classes", function() return nn.CrossEntropyLoss() end,
    function() return r(4, 1000) * 5, dl.tensor({1, 1000, 517, 64}, I64) end},
  {"NLLLoss weighted", function() return nn.NLLLoss({weight = WC}) end,
    function() return r(6, 5):log_softmax(2), Y end},
}

local function loss_run(make, x, t, dev)
  local fn = make():to(dev)
  local xi = x:to(dev):detach():requires_grad_(true)
  local l = fn(xi, t:to(dev))
  local g = dl.randn(l:size(), {dtype = l.dtype}):to(dev)
  ;(l * g):sum():backward()
  return {l, xi.grad}
end

describe("cuda: losses match the CPU (value and gradient)", function()
  for li, c in ipairs(LOSSES) do
    it(c[1], function()
      dl.manual_seed(1100 + li)
      local x, t = c[3]()
      dl.manual_seed(1200 + li)
      local rc = loss_run(c[2], x, t, "cpu")
      dl.manual_seed(1200 + li)
      local rg = loss_run(c[2], x, t, DEV)
      check_all(rg, rc, EXACT, "loss")
    end)
  end

  it("a class index out of range is an error on both devices", function()
    local x, t = r(3, 4), dl.tensor({1, 5, 2}, I64)
    local ok1, e1 = pcall(dl.F.cross_entropy, x, t)
    local ok2, e2 = pcall(dl.F.cross_entropy, x:to(DEV), t:to(DEV))
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.truthy(tostring(e2):find("5", 1, true))
    -- found at the op itself: nothing is left for an unrelated later op
    local w = dl.ones(3, {device = DEV, requires_grad = true})
    local opt = dl.optim.SGD({w}, {lr = 0.1})
    w:sum():backward()
    opt:step()
    assert.near(2.7, w:sum():item(), 1e-6)
  end)
end)

-- ---------------------------------------------------------------------------
-- optimisers: 5 steps from the same start on both devices

local OPTIMS = {
  {"SGD", "SGD", {lr = 0.1}},
  {"SGD momentum, nesterov, weight decay", "SGD", {lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.01}},
  {"SGD momentum, dampening, maximize", "SGD", {lr = 0.05, momentum = 0.8, dampening = 0.3, maximize = true}},
  {"Adagrad", "Adagrad", {lr = 0.1, weight_decay = 0.01}},
  {"RMSprop", "RMSprop", {lr = 0.01}},
  {"RMSprop centered with momentum", "RMSprop", {lr = 0.01, centered = true, momentum = 0.9}},
  {"Adam", "Adam", {lr = 0.01}},
  {"Adam amsgrad with weight decay", "Adam", {lr = 0.01, amsgrad = true, weight_decay = 0.1}},
  {"AdamW", "AdamW", {lr = 0.01, weight_decay = 0.1}},
  {"Adamax", "Adamax", {lr = 0.01}},
  {"NAdam", "NAdam", {lr = 0.01}},
  {"Adadelta", "Adadelta", {lr = 1}},
  {"LBFGS", "LBFGS", {lr = 1, max_iter = 4}, true},
  {"LBFGS strong Wolfe", "LBFGS", {lr = 1, max_iter = 4, line_search_fn = "strong_wolfe"}, true},
  {"CG", "CG", {lr = 1, max_iter = 4}, true},
}

local function optim_run(name, opts, closure_style, dev, dtype)
  dl.manual_seed(42)
  local W = dl.randn(4, 3, {dtype = dtype}):to(dev):requires_grad_(true)
  local b = dl.randn(3, {dtype = dtype}):to(dev):requires_grad_(true)
  local X = dl.randn(10, 4, {dtype = dtype}):to(dev)
  local T = dl.randn(10, 3, {dtype = dtype}):to(dev)
  local opt = dl.optim[name]({W, b}, opts)
  local function closure()
    opt:zero_grad()
    local loss = ((X:matmul(W) + b - T) ^ 2):mean() + W:abs():sum() * 0.01
    loss:backward()
    return loss
  end
  for _ = 1, 5 do
    if closure_style then opt:step(closure) else closure() opt:step() end
  end
  return {W:detach(), b:detach()}
end

describe("cuda: optimisers take the CPU's steps", function()
  for _, c in ipairs(OPTIMS) do
    for _, dtype in ipairs({"float32", "float64"}) do
      it(c[1] .. " (" .. dtype .. ")", function()
        local pc = optim_run(c[2], c[3], c[4], "cpu", dtype)
        local pg = optim_run(c[2], c[3], c[4], DEV, dtype)
        check_all(pg, pc, EXACT, "parameter")
      end)
    end
  end
end)

-- ---------------------------------------------------------------------------
-- a small MLP trained on both devices

local function train_mlp(dev)
  dl.manual_seed(11)
  local X = dl.randn(64, 10)
  local Yc = X:narrow(2, 1, 3):argmax(2)
  local model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3)):to(dev)
  local opt = dl.optim.Adam(model:parameters(), {lr = 1e-2})
  local loss_fn = nn.CrossEntropyLoss()
  X, Yc = X:to(dev), Yc:to(dev)
  local loss
  for _ = 1, 20 do
    opt:zero_grad()
    loss = loss_fn(model(X), Yc)
    loss:backward()
    opt:step()
  end
  return loss:item(), model
end

describe("cuda: training", function()
  it("a small MLP trained 20 steps reaches the CPU's loss", function()
    local lc = train_mlp("cpu")
    local lg, mg = train_mlp(DEV)
    sync()
    assert(math.abs(lg - lc) < 1e-4, string.format("loss %.7g on %s, %.7g on cpu", lg, DEV, lc))
    for _, p in ipairs(mg:parameters()) do
      if DEV ~= "cpu" then assert.are_not.equal("cpu", p.device) end
    end
  end)
end)

-- ---------------------------------------------------------------------------
-- eigh through cuSOLVER

describe("cuda: linalg.eigh", function()
  for _, dtype in ipairs({"float64", "float32"}) do
    it("eigenvalues and a reconstruction match the CPU (" .. dtype .. ")", function()
      dl.manual_seed(8)
      local B = dl.randn(6, 6, {dtype = dtype})
      local A = B + B:t()
      local wc, vc = dl.linalg.eigh(A)
      local wg, vg = dl.linalg.eigh(A:to(DEV))
      local tol = dtype == "float64" and 1e-10 or 1e-5
      check_close(wg, wc, tol, "eigenvalues")
      -- eigenvectors up to sign: compare V diag(w) V^T with A, and V^T V with I
      check_close((vg * wg):matmul(vg:t()), A, tol * 10, "V diag(w) V^T")
      check_close(vg:t():matmul(vg), dl.eye(6, {dtype = dtype}), tol * 10, "V^T V")
    end)
  end
  it("non-finite input is an error on both devices", function()
    local A = dl.tensor({{1, 0 / 0}, {0 / 0, 1}}, F64)
    local ok1 = pcall(dl.linalg.eigh, A)
    local ok2, e2 = pcall(dl.linalg.eigh, A:to(DEV))
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.truthy(tostring(e2):find("eigh", 1, true))
  end)
end)
