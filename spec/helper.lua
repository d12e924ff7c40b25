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

return H
