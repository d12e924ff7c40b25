-- The engine adds the gradient of a narrow or select straight into its
-- region of the input's gradient buffer (src/autograd/dl_autograd.c,
-- add_into_region): the same numbers as the differentiable route (embed
-- into zeros, then sum), taken when a graph of the gradients is recorded,
-- and never a write into a tensor someone else holds. (That the backward
-- of a loop over x[t] is now linear in its length is a speed property: the
-- seq-lstm workload of make bench shows it.)
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd

local F64 = {dtype = "float64"}

-- gradients of f at x by the engine's route and by the recorded one
local function both(f, x)
  local fast = {A.grad(f(x), {x})}
  local slow = {A.grad(f(x), {x}, nil, {create_graph = true})}
  return fast[1], slow[1]
end

describe("gradients of regions", function()
  it("a loop over x[t] and narrow pieces sums as the embed route does", function()
    local x = dl.randn({6, 3, 4}, F64):requires_grad_()
    local function f(t)
      local y = t * 2 -- a non-leaf: its gradient buffer is the engine's
      local s = (y * y):sum() -- a full-size gradient as well
      for i = 1, 6 do s = s + (y[i]:sin() * i):sum() end
      for _, piece in ipairs(y:chunk(3, 3)) do s = s + piece:cos():sum() end
      return s + y:narrow(1, 2, 3):select(2, 1):exp():sum()
    end
    local fast, slow = both(f, x)
    H.assert_close(fast, slow, 1e-12)
    local ref = dl.autograd.jacobian(f, x) -- an independent route
    H.assert_close(fast, ref:view(6, 3, 4), 1e-10)
  end)

  it("a gradient handed on by identity is copied before regions are added to it", function()
    local x = dl.randn({4, 3}, F64):requires_grad_()
    local y = x:view(4, 3) -- a view node: the gradient passes through as is
    local z = y + 0
    z:retain_grad()
    local loss = (z * 3):sum() + z[2]:sum() + z[4]:sum()
    loss:backward()
    local want = dl.full({4, 3}, 3.0, F64)
    want[2] = 4
    want[4] = 4
    H.assert_close(z.grad, want, 0)
    H.assert_close(x.grad, want, 0)
  end)

  it("two leaves handed views of one gradient get .grad tensors of their own", function()
    local a, b = dl.randn(2, 3):requires_grad_(), dl.randn(2, 3):requires_grad_()
    ;(a:view(-1) + b:view(-1)):sum():backward()
    a.grad:mul_(5) -- as clip_grad_norm_ scales each in place
    H.assert_close(b.grad, dl.ones(2, 3), 0)
    H.assert_close(a.grad, dl.full({2, 3}, 5.0), 0)
  end)
end)
