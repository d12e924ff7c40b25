-- The seed's optimisation experiments:
--  * linear regression y = 3x + 2 + U(-0.1, 0.1), N = 30 (fixed seed),
--    theta = [intercept, slope] from theta0 = [10, 5], MSE, lr 0.005,
--    full-batch steps: plain SGD, momentum 0.6 and Nesterov 0.8 each end
--    within 0.03 of [2, 3];
--  * the 2-D Rosenbrock function from (-1.5, 2): L-BFGS (strong Wolfe)
--    reaches (1, 1) to 1e-6 in at most 100 iterations (one step call with
--    max_iter = 100), CG to 1e-5 in at most 500 (one step call with
--    max_iter = 500).
local dl = require "dlua"
local H = require "spec.helper"

local F64 = {dtype = "float64"}

-- N points, x ~ U(-5, 5), noise ~ U(-0.1, 0.1); X has a column of ones
local function regression_data()
  dl.manual_seed(2024)
  local N = 30
  local x = dl.rand(N, F64) * 10 - 5
  local noise = dl.rand(N, F64) * 0.2 - 0.1
  local y = x * 3 + 2 + noise
  local X = dl.stack({dl.ones(N, F64), x}, 2)
  return X, y
end

local function fit(opts, steps)
  local X, y = regression_data()
  local theta = dl.tensor({10, 5}, {dtype = "float64", requires_grad = true})
  local opt = dl.optim.SGD({theta}, opts)
  local first, last
  for i = 1, steps do
    opt:zero_grad()
    local loss = ((X:mv(theta) - y) ^ 2):mean()
    loss:backward()
    opt:step()
    if i == 1 then first = loss:item() end
    last = loss:item()
  end
  return theta:detach(), first, last
end

local function rosenbrock(p)
  local x, y = p[1], p[2]
  return (1 - x) ^ 2 + 100 * (y - x * x) ^ 2
end

describe("seed: linear regression", function()
  local target = dl.tensor({2, 3}, F64)

  it("the data follow y = 3x + 2 within the noise", function()
    local X, y = regression_data()
    local resid = y - X:mv(target)
    assert.is_true(resid:abs():max():item() <= 0.1)
    assert.are.same({30, 2}, X:size())
  end)

  it("plain SGD converges to [2, 3] within 0.03", function()
    local theta, first, last = fit({lr = 0.005}, 2000)
    H.assert_close(theta, target, 0.03)
    assert.is_true(last < first * 1e-3)
  end)

  it("momentum 0.6 converges to [2, 3] within 0.03", function()
    local theta = fit({lr = 0.005, momentum = 0.6}, 1000)
    H.assert_close(theta, target, 0.03)
  end)

  it("Nesterov momentum 0.8 (Sutskever's form) converges to [2, 3] within 0.03", function()
    local theta = fit({lr = 0.005, momentum = 0.8, nesterov = true}, 600)
    H.assert_close(theta, target, 0.03)
  end)

  it("SGD's momentum and Nesterov steps equal the update rules written out", function()
    local X, y = regression_data()
    local N = 30
    for _, o in ipairs({{lr = 0.005}, {lr = 0.005, momentum = 0.6}, {lr = 0.005, momentum = 0.8, nesterov = true}}) do
      local got = fit(o, 50)
      -- reference: g = 2/N X'(X theta - y); buf = mu buf + g (buf = g at
      -- first); theta -= lr * (nesterov and g + mu buf or buf)
      local theta, buf = dl.tensor({10, 5}, F64), nil
      local mu = o.momentum or 0
      for _ = 1, 50 do
        local g = X:t():mv(X:mv(theta) - y) * (2 / N)
        local step = g
        if mu > 0 then
          buf = buf and buf * mu + g or g
          step = o.nesterov and g + buf * mu or buf
        end
        theta = theta - step * o.lr
      end
      H.assert_close(got, theta, 1e-12)
    end
  end)

  it("momentum gets closer than plain SGD in the same number of steps", function()
    local plain = fit({lr = 0.005}, 300)
    local mom = fit({lr = 0.005, momentum = 0.6}, 300)
    local nest = fit({lr = 0.005, momentum = 0.8, nesterov = true}, 300)
    local e_plain = H.max_abs_diff(plain, target)
    assert.is_true(H.max_abs_diff(mom, target) < e_plain)
    assert.is_true(H.max_abs_diff(nest, target) < e_plain)
  end)
end)

describe("seed: Rosenbrock", function()
  local one = dl.tensor({1, 1}, F64)

  it("L-BFGS (strong Wolfe) reaches (1, 1) to 1e-6 within 100 iterations", function()
    local p = dl.tensor({-1.5, 2}, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({p}, {max_iter = 100, tolerance_grad = 1e-12, tolerance_change = 1e-14,
                                     line_search_fn = "strong_wolfe"})
    local function closure()
      opt:zero_grad()
      local l = rosenbrock(p)
      l:backward()
      return l
    end
    local l0 = opt:step(closure)
    assert.are.equal(rosenbrock({-1.5, 2}), l0:item())
    assert.is_true(opt.state[p].n_iter <= 100)
    H.assert_close(p, one, 1e-6)
  end)

  it("CG (Polak-Ribiere+, strong Wolfe) reaches (1, 1) to 1e-5 within 500 iterations", function()
    local p = dl.tensor({-1.5, 2}, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.CG({p}, {max_iter = 500, tolerance_grad = 1e-12, tolerance_change = 1e-14})
    local function closure()
      opt:zero_grad()
      local l = rosenbrock(p)
      l:backward()
      return l
    end
    opt:step(closure)
    assert.is_true(opt.state[p].n_iter <= 500)
    H.assert_close(p, one, 1e-5)
  end)

  it("L-BFGS and CG also work on float32 parameters", function()
    for _, cls in ipairs({"LBFGS", "CG"}) do
      local p = dl.tensor({-1.5, 2}, {requires_grad = true})
      local opt = dl.optim[cls]({p}, {max_iter = 200, line_search_fn = cls == "LBFGS" and "strong_wolfe" or nil})
      opt:step(function()
        opt:zero_grad()
        local l = rosenbrock(p)
        l:backward()
        return l
      end)
      assert.are.equal("float32", p.dtype)
      H.assert_close(p, one, 2e-3)
    end
  end)
end)
