-- spec/helper.lua — shared helpers for the busted specs.
local dl = require "dlua"
local H = {}

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

-- Forward mode must agree with reverse mode: for random tangents v, the
-- tangent jvp(fn, inputs, v) equals J·v built from reverse-mode rows.
function H.check_jvp(fn, inputs, tol)
  local A = dl.autograd
  local tangents, primals = {}, {}
  for i, x in ipairs(inputs) do
    tangents[i] = dl.randn(x:size(), {dtype = "float64"})
    primals[i] = x:detach()
  end
  local _, tout = A.jvp(fn, primals, tangents)
  local ins = {}
  for i, x in ipairs(primals) do ins[i] = x:clone():requires_grad_(true) end
  local y = fn(table.unpack(ins)):reshape(-1)
  local n = y:numel()
  local tflat = tout:reshape(-1)
  for k = 1, n do
    local seed = dl.zeros(n, {dtype = "float64"})
    seed:set(k, 1)
    local gs = table.pack(A.grad(y, ins, seed, {retain_graph = true, allow_unused = true}))
    local s = 0
    for i = 1, #ins do
      if gs[i] then s = s + (gs[i] * tangents[i]):sum():item() end
    end
    local d = math.abs(s - tflat:get(k))
    assert(d <= (tol or 1e-9) * (1 + math.abs(s)), string.format("jvp element %d: %g vs J·v %g", k, tflat:get(k), s))
  end
end

return H
