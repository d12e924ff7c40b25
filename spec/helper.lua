-- spec/helper.lua — shared helpers for the busted specs.
local dl = require "dlua"
local H = {}

-- runs a shell command: its stdout and stderr together, and its exit code
function H.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- max |a - b| over all elements of two tensors or tables
function H.max_abs_diff(a, b)
  local ta = dl.is_tensor(a) and a:double():totable() or a
  local tb = dl.is_tensor(b) and b:double():totable() or b
  local m = 0
  local function walk(x, y)
    if type(x) == "table" then
      assert(type(y) == "table" and #x == #y, "shape mismatch")
      for i = 1, #x do walk(x[i], y[i]) end
    else
      local d = math.abs(x - y)
      if d ~= d then d = math.huge end
      if d > m then m = d end
    end
  end
  walk(ta, tb)
  return m
end

function H.assert_close(a, b, tol)
  local d = H.max_abs_diff(a, b)
  assert(d <= (tol or 1e-6), string.format("max abs diff %g exceeds %g", d, tol or 1e-6))
end

-- asserts that fn raises an error whose message contains every given text
function H.assert_error(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs({...}) do
    assert(err:find(s, 1, true), string.format("error %q does not mention %q", err, s))
  end
  return err
end

-- values of a tensor as a flat Lua list (float64)
function H.flat(t)
  local c = t:detach():double():contiguous():view(-1)
  local out = {}
  for i = 1, c:numel() do out[i] = c:get(i) end
  return out
end

-- J·v from reverse mode: one row of every input's Jacobian per output
-- element, each dotted with the inputs' tangents
function H.reverse_jv(fn, inputs, tangents)
  local A = dl.autograd
  local ins = {}
  for i, x in ipairs(inputs) do ins[i] = x:detach():requires_grad_(true) end
  local y = fn(table.unpack(ins))
  local n = y:numel()
  local out = {}
  if n == 0 then return out end
  local yf = y:reshape(-1)
  for k = 1, n do
    local seed = dl.zeros(n, {dtype = "float64"})
    seed:set(k, 1)
    local gs = table.pack(A.grad(yf, ins, seed, {retain_graph = true, allow_unused = true}))
    local s = 0
    for i = 1, #ins do
      if gs[i] then
        local g, v = H.flat(gs[i]), H.flat(tangents[i])
        for j = 1, #g do s = s + g[j] * v[j] end
      end
    end
    out[k] = s
  end
  return out
end

-- Forward mode must agree with reverse mode: for random tangents v, the
-- tangent from jvp(fn, inputs, v) equals J·v from reverse-mode rows, and
-- the primal output equals fn's plain output.
function H.check_jvp(fn, inputs, tol)
  local tangents, primals = {}, {}
  for i, x in ipairs(inputs) do
    tangents[i] = dl.randn(x:size(), {dtype = "float64"})
    primals[i] = x:detach()
  end
  local out, tout = dl.autograd.jvp(fn, primals, tangents)
  assert(#out:size() == #tout:size(), "tangent and output differ in shape")
  local expected = H.reverse_jv(fn, inputs, tangents)
  local got = H.flat(tout)
  assert(#expected == #got, "tangent and output differ in size")
  for k = 1, #got do
    assert(math.abs(got[k] - expected[k]) <= (tol or 1e-9) * (1 + math.abs(expected[k])),
      string.format("jvp element %d: forward %.12g, reverse %.12g", k, got[k], expected[k]))
  end
  H.assert_close(out, fn(table.unpack(primals)), 0)
end

-- the float64 product of float32 operands, as float32's reference
function H.matmul_ref(a, b) return dl.matmul(a:double(), b:double()) end

-- a random [r, c] float32 matrix, stored as given (t: as the transpose of
-- a [c, r] tensor)
function H.matrix(r, c, t)
  if t then return dl.randn(c, r):t() end
  return dl.randn(r, c)
end

local luassert = require "luassert" -- busted's assert, outside a spec file

-- one case per shape {M, K, N} and layout (each operand plain or a
-- transposed view): dl.mm of float32 matrices against the float64 product.
-- it: busted's; suffix ends each case's name; before runs first in each.
function H.matmul_layout_cases(it, shapes, suffix, before)
  for _, s in ipairs(shapes) do
    local M, K, N = s[1], s[2], s[3]
    for _, ta in ipairs({false, true}) do
      for _, tb in ipairs({false, true}) do
        local name = string.format("[%d,%d]%s @ [%d,%d]%s%s", M, K, ta and "^T" or "", K, N, tb and "^T" or "",
          suffix or "")
        it("match float64 for " .. name, function()
          if before then before() end
          local a, b = H.matrix(M, K, ta), H.matrix(K, N, tb)
          local c = dl.mm(a, b)
          luassert.equal("float32", c.dtype)
          luassert.same({M, N}, c:size())
          H.assert_close(c:double(), H.matmul_ref(a, b), 1e-4 * math.sqrt(K))
        end)
      end
    end
  end
end

-- the keys of a table, sorted (case tables run in a fixed order)
function H.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- The gradient of <fn(...), w> for a fixed w, taken with create_graph: a
-- function whose own gradient needs double backward. Gradients that do not
-- depend on the inputs (constants) are left out.
function H.grad_of(fn, w)
  local A = dl.autograd
  return function(...)
    local ins = table.pack(...)
    return dl.enable_grad(function()
      local xs = {}
      for i = 1, ins.n do
        xs[i] = ins[i].requires_grad and ins[i] or ins[i]:detach():requires_grad_(true)
      end
      local y = dl.dot(fn(table.unpack(xs, 1, ins.n)):reshape(-1), w)
      local gs = table.pack(A.grad(y, xs, nil, {create_graph = true, allow_unused = true}))
      local out = {}
      for i = 1, gs.n do
        if gs[i] and gs[i].requires_grad then out[#out + 1] = gs[i] end
      end
      return table.unpack(out)
    end)
  end
end

-- every element of got (a tensor) within rtol (default 1e-10) of a PyTorch
-- fixture's flat list want, relative to max(1, |want|)
function H.assert_pytorch(got, want, what, rtol)
  rtol = rtol or 1e-10
  local g = H.flat(got)
  assert(#g == #want, string.format("%s: size %d, PyTorch %d", what, #g, #want))
  for i = 1, #want do
    assert(math.abs(g[i] - want[i]) <= rtol * math.max(1, math.abs(want[i])),
      string.format("%s[%d]: got %.17g, PyTorch %.17g", what, i, g[i], want[i]))
  end
end

-- gradcheck, jvp against reverse mode, and double backward of fn on the
-- float64 inputs make() returns (fresh ones each call)
function H.check_derivatives(fn, make)
  local A = dl.autograd
  local ins = make()
  for _, t in ipairs(ins) do t:requires_grad_() end
  assert(A.gradcheck(fn, ins) == true, "gradcheck failed")
  H.check_jvp(fn, make())
  local w = dl.randn({dl.no_grad(fn, table.unpack(ins)):numel()}, {dtype = "float64"})
  assert(A.gradcheck(H.grad_of(fn, w), ins) == true, "gradcheck of the gradient (double backward) failed")
end

return H
