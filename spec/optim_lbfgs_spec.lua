-- dl.optim.LBFGS and dl.optim.CG: L-BFGS trajectories (every closure
-- evaluation, with and without the strong-Wolfe line search) equal
-- PyTorch 1.13's on a fixed 2-4-1 tanh MLP (spec/fixtures/lbfgs_reference.py
-- writes the fixture), the shared line search, CG's Polak-Ribiere+
-- directions and restarts, state_dict round trips, and bad options.
local dl = require "dlua"
local H = require "spec.helper"
local LS = require "dlua.optim.line_search"

local F64 = {dtype = "float64"}
local ref = dofile("spec/fixtures/lbfgs_reference.lua")

-- max relative difference of two number lists (math.huge if lengths differ)
local function max_rel(a, b)
  if #a ~= #b then return math.huge end
  local m = 0
  for i = 1, #a do
    local r = math.abs(a[i] - b[i]) / math.max(math.abs(b[i]), 1e-300)
    if not (r <= m) then m = r end
  end
  return m
end

-- the fixture's problem: parameters, a closure recording every loss
local function mlp_problem(dtype)
  local o = {dtype = dtype or "float64"}
  local X, Y = dl.tensor(ref.X, o), dl.tensor(ref.Y, o)
  local ps = {}
  for i, k in ipairs({"w1", "b1", "w2", "b2"}) do
    ps[i] = dl.tensor(ref.init[k], {dtype = o.dtype, requires_grad = true})
  end
  local evals = {}
  local function make_closure(opt)
    local w1, b1, w2, b2 = ps[1], ps[2], ps[3], ps[4]
    return function()
      opt:zero_grad()
      local h = dl.tanh(X:matmul(w1:t()) + b1)
      local loss = ((h:matmul(w2:t()) + b2 - Y) ^ 2):mean()
      loss:backward()
      evals[#evals + 1] = loss:item()
      return loss
    end
  end
  return ps, evals, make_closure
end

local function flat(ps)
  local v = {}
  for _, p in ipairs(ps) do
    for _, x in ipairs(H.flat(p)) do v[#v + 1] = x end
  end
  return v
end

local function quadratic(n)
  -- f(x) = 0.5 x'Ax - b'x with A SPD (condition ~ 100), minimiser A^-1 b
  local Q = dl.tensor({
    {0.5, 0.1, -0.3, 0.2, 0.0}, {0.1, 0.9, 0.2, -0.1, 0.3}, {-0.3, 0.2, 0.7, 0.1, -0.2},
    {0.2, -0.1, 0.1, 0.6, 0.4}, {0.0, 0.3, -0.2, 0.4, 0.8}}, F64):narrow(1, 1, n):narrow(2, 1, n)
  local A = Q:t():matmul(Q) + dl.eye(n, F64) * 0.01
  local b = dl.arange(1, n + 1, 1, F64)
  return A, b
end

describe("dl.optim.LBFGS", function()
  for _, case in ipairs(ref.cases) do
    it("matches PyTorch's trajectory: " .. case.name .. " (" .. #case.evals .. " evaluations)", function()
      assert.is_true(#case.evals >= 50)
      local ps, evals, make_closure = mlp_problem()
      local opt = dl.optim.LBFGS(ps, case.opts)
      local closure = make_closure(opt)
      local returns = {}
      for s = 1, case.steps do returns[s] = opt:step(closure):item() end
      assert.are.equal(#case.evals, #evals)
      assert.is_true(max_rel(evals, case.evals) <= 1e-5, "evals differ: " .. max_rel(evals, case.evals))
      assert.is_true(max_rel(returns, case.returns) <= 1e-5)
      assert.is_true(max_rel(flat(ps), case.final) <= 1e-5)
      local st = opt.state[ps[1]]
      assert.are.equal(case.func_evals, st.func_evals)
      assert.are.equal(case.n_iter, st.n_iter)
    end)
  end

  it("runs on float32 parameters, keeping float32 state", function()
    local ps, evals, make_closure = mlp_problem("float32")
    local opt = dl.optim.LBFGS(ps, ref.cases[3].opts)
    local closure = make_closure(opt)
    for _ = 1, ref.cases[3].steps do opt:step(closure) end
    local st = opt.state[ps[1]]
    assert.are.equal("float32", st.d.dtype)
    assert.are.equal("float32", ps[1].dtype)
    -- same path as float64 to float32 accuracy
    local want = ref.cases[3].evals
    assert.is_true(evals[#evals] < evals[1] * 0.05)
    assert.is_true(math.abs(evals[10] - want[10]) <= 1e-3 * want[10])
  end)

  it("solves a quadratic exactly-ish and leaves a gradient-free parameter alone", function()
    local A, b = quadratic(5)
    local x = dl.zeros(5, {dtype = "float64", requires_grad = true})
    local unused = dl.tensor({7, 8}, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({x, unused}, {line_search_fn = "strong_wolfe", max_iter = 50,
                                             tolerance_grad = 1e-12, tolerance_change = 1e-15})
    opt:step(function()
      opt:zero_grad()
      local l = x:dot(A:mv(x)) * 0.5 - b:dot(x)
      l:backward()
      return l
    end)
    H.assert_close(A:mv(x:detach()), b, 1e-8)
    H.assert_close(unused, {7, 8}, 0)
  end)

  it("updates non-contiguous (transposed, narrowed) parameters like contiguous ones", function()
    local function run(make)
      local w, v = make()
      local target = dl.tensor({{1, 2}, {3, 4}, {5, 6}}, F64)
      local opt = dl.optim.LBFGS({w, v}, {max_iter = 30, line_search_fn = "strong_wolfe"})
      opt:step(function()
        opt:zero_grad()
        local l = ((w - target) ^ 2):sum() + ((v - 2) ^ 4):sum() + (w:sum() * v:sum()) * 0.01
        l:backward()
        return l
      end)
      return w:detach():clone(), v:detach():clone()
    end
    local w1, v1 = run(function()
      return dl.zeros(3, 2, {dtype = "float64", requires_grad = true}),
             dl.zeros(3, {dtype = "float64", requires_grad = true})
    end)
    local w2, v2 = run(function()
      local w = dl.zeros(2, 3, F64):t()
      local v = dl.zeros(6, F64):narrow(1, 2, 3)
      assert.is_false(w:is_contiguous())
      return w:requires_grad_(), v:requires_grad_()
    end)
    H.assert_close(w1, w2, 1e-12)
    H.assert_close(v1, v2, 1e-12)
    H.assert_close(w1, {{0.985, 1.985}, {2.985, 3.985}, {4.985, 5.985}}, 0.02)
  end)

  it("returns the first loss and stops at once when the gradient is already small", function()
    local p = dl.tensor({1, 1}, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({p})
    local calls = 0
    local l = opt:step(function()
      calls = calls + 1
      opt:zero_grad()
      local loss = ((p - 1) ^ 2):sum()
      loss:backward()
      return loss
    end)
    assert.are.equal(0, l:item())
    assert.are.equal(1, calls)
    assert.are.equal(0, opt.state[p].n_iter)
  end)

  it("resumes from state_dict with the same next steps as never stopping", function()
    local ps, evals, make_closure = mlp_problem()
    local opts = {lr = 1, max_iter = 4, history_size = 3, line_search_fn = "strong_wolfe"}
    local opt = dl.optim.LBFGS(ps, opts)
    local closure = make_closure(opt)
    for _ = 1, 3 do opt:step(closure) end
    local sd = opt:state_dict()
    local saved = {}
    for i, p in ipairs(ps) do saved[i] = p:detach():clone() end
    local n0 = #evals
    for _ = 1, 3 do opt:step(closure) end
    local cont = table.move(evals, n0 + 1, #evals, 1, {})
    assert.are.same({1, 2, 3, 4}, sd.param_groups[1].params)
    assert.are.equal(3, sd.param_groups[1].history_size)

    local ps2, evals2, make_closure2 = mlp_problem()
    dl.no_grad(function()
      for i, p in ipairs(ps2) do p:copy_(saved[i]) end
    end)
    local opt2 = dl.optim.LBFGS(ps2, {history_size = 100})
    opt2:load_state_dict(sd)
    assert.are.equal(3, opt2.param_groups[1].history_size)
    local closure2 = make_closure2(opt2)
    for _ = 1, 3 do opt2:step(closure2) end
    assert.are.equal(#cont, #evals2)
    assert.is_true(max_rel(evals2, cont) <= 1e-12)
    H.assert_close(flat(ps2), flat(ps), 1e-12)
  end)

  it("the saved state_dict is a snapshot", function()
    local ps, _, make_closure = mlp_problem()
    local opt = dl.optim.LBFGS(ps, {max_iter = 3})
    local closure = make_closure(opt)
    opt:step(closure)
    local sd = opt:state_dict()
    local d, n = sd.state[1].d:clone(), opt.state[ps[1]].n_iter
    opt:step(closure)
    H.assert_close(sd.state[1].d, d, 0)
    assert.are.equal(n, sd.state[1].n_iter)
    assert.is_true(opt.state[ps[1]].n_iter > n)
  end)

  it("reads options from param_groups at every step", function()
    local p = dl.tensor({-1.5, 2}, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({p}, {max_iter = 1})
    assert.are.equal(1, opt.param_groups[1].max_eval) -- max_iter * 5 // 4
    local function closure()
      opt:zero_grad()
      local l = (1 - p[1]) ^ 2 + 100 * (p[2] - p[1] ^ 2) ^ 2
      l:backward()
      return l
    end
    opt:step(closure)
    assert.are.equal(1, opt.state[p].n_iter)
    opt.param_groups[1].max_iter = 3
    opt:step(closure)
    -- max_eval = 1 still stops after the first re-evaluation
    assert.are.equal(2, opt.state[p].n_iter)
    assert.are.equal(3, opt.state[p].func_evals)
    opt.param_groups[1].max_eval = 10
    opt:step(closure)
    -- three iterations; the last one does not re-evaluate
    assert.are.equal(5, opt.state[p].n_iter)
    assert.are.equal(6, opt.state[p].func_evals)
  end)

  it("has PyTorch's defaults and accepts one param group table", function()
    local p = dl.zeros(2, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({{params = {p}, lr = 0.5}})
    local g = opt.param_groups[1]
    assert.are.equal(0.5, g.lr)
    assert.are.equal(20, g.max_iter)
    assert.are.equal(25, g.max_eval)
    assert.are.equal(1e-7, g.tolerance_grad)
    assert.are.equal(1e-9, g.tolerance_change)
    assert.are.equal(100, g.history_size)
    assert.is_nil(g.line_search_fn)
    assert.are.equal(p, g.params[1])
    assert.is_truthy(tostring(opt):find("LBFGS", 1, true))
  end)

  it("zero_grad sets gradients to nil or to zero", function()
    local p = dl.ones(2, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({p})
    p:sum():backward()
    opt:zero_grad({set_to_none = false})
    H.assert_close(p.grad, {0, 0}, 0)
    opt:zero_grad()
    assert.is_nil(p.grad)
  end)

  it("rejects bad options, naming them", function()
    local p = dl.zeros(2, {dtype = "float64", requires_grad = true})
    H.assert_error(function() dl.optim.LBFGS({p}, {lr = -1}) end, "dl.optim.LBFGS", "lr")
    H.assert_error(function() dl.optim.LBFGS({p}, {tolerance_grad = -1e-3}) end, "tolerance_grad")
    H.assert_error(function() dl.optim.LBFGS({p}, {tolerance_change = -1}) end, "tolerance_change")
    H.assert_error(function() dl.optim.LBFGS({p}, {momentum = 0.9}) end, "unknown option 'momentum'")
    H.assert_error(function() dl.optim.LBFGS({p}, {line_search_fn = "backtracking"}) end,
      "line_search_fn", "strong_wolfe")
    H.assert_error(function() dl.optim.LBFGS({p}, {line_search_fn = true}) end, "line_search_fn")
    H.assert_error(function() dl.optim.LBFGS({p}, {history_size = 0}) end, "history_size")
    H.assert_error(function() dl.optim.LBFGS({p}, {max_iter = 2.5}) end, "max_iter")
    H.assert_error(function() dl.optim.LBFGS({p}, {max_eval = -3}) end, "max_eval")
    H.assert_error(function() dl.optim.LBFGS({p}, {lr = "1"}) end, "lr", "number")
    H.assert_error(function() dl.optim.LBFGS({p}, "5") end, "options must be a table")
    -- PyTorch's positional learning rate
    assert.equal(0.5, dl.optim.LBFGS({p}, 0.5).param_groups[1].lr)
  end)

  it("rejects bad parameters, several groups and bad closures", function()
    local p = dl.zeros(2, {dtype = "float64", requires_grad = true})
    local q = dl.zeros(2, {dtype = "float64", requires_grad = true})
    H.assert_error(function() dl.optim.LBFGS({}) end, "empty parameter list")
    H.assert_error(function() dl.optim.LBFGS({p, 3}) end, "not a tensor")
    H.assert_error(function() dl.optim.LBFGS({dl.zeros(2, {dtype = "int64"})}) end, "int64")
    H.assert_error(function() dl.optim.LBFGS({{params = {p}}, {params = {q}}}) end,
      "parameter groups")
    local opt = dl.optim.LBFGS({p})
    H.assert_error(function() opt:add_param_group({params = {q}}) end, "parameter groups")
    H.assert_error(function() opt:step() end, "closure")
    H.assert_error(function() opt:step(function() return dl.zeros(3) end) end, "closure", "3 elements")
    H.assert_error(function() opt:step(function() return "x" end) end, "closure")
    H.assert_error(function() opt:load_state_dict({}) end, "load_state_dict")
    local other = dl.optim.LBFGS({p, q}):state_dict()
    H.assert_error(function() opt:load_state_dict(other) end, "LBFGS")
  end)

  it("propagates an error raised by the closure and keeps grad mode on", function()
    local p = dl.zeros(2, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.LBFGS({p})
    H.assert_error(function() opt:step(function() error("boom") end) end, "boom")
    assert.is_true(dl.is_grad_enabled())
    local seen
    opt:step(function()
      seen = dl.is_grad_enabled()
      local l = ((p - 1) ^ 2):sum()
      opt:zero_grad()
      l:backward()
      return l
    end)
    assert.is_true(seen)
  end)
end)

describe("line search helpers", function()
  it("cubic_interpolate finds the minimiser of a cubic from two points", function()
    -- f(x) = x^3 - 3x: f(0) = 0, f'(0) = -3, f(2) = 2, f'(2) = 9; minimum at 1
    assert.is_true(math.abs(LS.cubic_interpolate(0, 0, -3, 2, 2, 9) - 1) < 1e-12)
    assert.is_true(math.abs(LS.cubic_interpolate(2, 2, 9, 0, 0, -3) - 1) < 1e-12)
    -- clamped to the bounds
    assert.are.equal(0.5, LS.cubic_interpolate(0, 0, -3, 2, 2, 9, 0, 0.5))
    -- no real minimiser: the midpoint of the bounds
    assert.are.equal(1.5, LS.cubic_interpolate(0, 0, 1, 3, 2, 1))
  end)

  it("strong_wolfe returns a step meeting both Wolfe conditions", function()
    -- f(x) = sum((x - c)^4) along d from x0 = 0
    local c = dl.tensor({1, 2, -1}, F64)
    local x0 = dl.zeros(3, F64)
    local function fg(x) return ((x - c) ^ 4):sum():item(), (x - c) ^ 3 * 4 end
    local f0, g0 = fg(x0)
    local d = -g0
    local gtd = g0:dot(d):item()
    local evals = 0
    local function obj(x, t, dd)
      evals = evals + 1
      return fg(x + dd * t)
    end
    for _, t0 in ipairs({1e-4, 1, 100}) do
      evals = 0
      local f, g, t, n = LS.strong_wolfe(obj, x0, t0, d, f0, g0, gtd)
      assert.are.equal(evals, n)
      assert.is_true(f <= f0 + 1e-4 * t * gtd)
      assert.is_true(math.abs(g:dot(d):item()) <= 0.9 * math.abs(gtd))
      H.assert_close(g, select(2, fg(x0 + d * t)), 1e-9)
    end
  end)
end)

describe("line search end points (LBFGS with strong_wolfe, CG)", function()
  it("stop with an error and leave the parameters as they were when the search ends at a non-finite loss", function()
    -- the loss falls without bound until x = 10 and is NaN past it: the
    -- search extrapolates past 10 and never brackets a minimum
    local makers = {
      {"dl.optim.CG:step", function(p) return dl.optim.CG(p) end},
      {"dl.optim.LBFGS:step", function(p) return dl.optim.LBFGS(p, {line_search_fn = "strong_wolfe"}) end},
    }
    for _, m in ipairs(makers) do
      local x = dl.zeros(1, {dtype = "float64", requires_grad = true})
      local opt = m[2]({x})
      H.assert_error(function()
        opt:step(function()
          opt:zero_grad()
          local l = (-x + (10 - x):sqrt() * 0):sum()
          l:backward()
          return l
        end)
      end, m[1], "non-finite point", "keep their values", "fixed data")
      assert.are.equal(0, x:item())
    end
  end)
end)

describe("dl.optim.CG", function()
  it("minimises an n-dimensional quadratic in about n iterations", function()
    local A, b = quadratic(5)
    local x = dl.zeros(5, {dtype = "float64", requires_grad = true})
    local opt = dl.optim.CG({x}, {max_iter = 30, tolerance_grad = 1e-10, tolerance_change = 1e-15})
    opt:step(function()
      opt:zero_grad()
      local l = x:dot(A:mv(x)) * 0.5 - b:dot(x)
      l:backward()
      return l
    end)
    H.assert_close(A:mv(x:detach()), b, 1e-8)
    assert.is_true(opt.state[x].n_iter <= 15)
  end)

  it("beats steepest descent (restart = 1) on an ill-conditioned quadratic", function()
    local A, b = quadratic(5)
    local function iters(opts)
      local x = dl.zeros(5, {dtype = "float64", requires_grad = true})
      opts.max_iter, opts.tolerance_grad, opts.tolerance_change = 400, 1e-8, 1e-15
      local opt = dl.optim.CG({x}, opts)
      opt:step(function()
        opt:zero_grad()
        local l = x:dot(A:mv(x)) * 0.5 - b:dot(x)
        l:backward()
        return l
      end)
      return opt.state[x].n_iter, x:detach()
    end
    local n_cg, x_cg = iters({})
    local n_sd = iters({restart = 1})
    H.assert_close(A:mv(x_cg), b, 1e-6)
    assert.is_true(n_sd > 3 * n_cg, string.format("CG %d, steepest descent %d iterations", n_cg, n_sd))
  end)

  it("continues across step calls and resumes from state_dict identically", function()
    local ps, evals, make_closure = mlp_problem()
    local opt = dl.optim.CG(ps, {max_iter = 5})
    local closure = make_closure(opt)
    for _ = 1, 4 do opt:step(closure) end
    local sd = opt:state_dict()
    local saved = {}
    for i, p in ipairs(ps) do saved[i] = p:detach():clone() end
    local n0 = #evals
    for _ = 1, 4 do opt:step(closure) end
    local cont = table.move(evals, n0 + 1, #evals, 1, {})
    assert.is_true(evals[#evals] < evals[1] * 0.2)

    local ps2, evals2, make_closure2 = mlp_problem()
    dl.no_grad(function()
      for i, p in ipairs(ps2) do p:copy_(saved[i]) end
    end)
    local opt2 = dl.optim.CG(ps2)
    opt2:load_state_dict(sd)
    assert.are.equal(5, opt2.param_groups[1].max_iter)
    local closure2 = make_closure2(opt2)
    for _ = 1, 4 do opt2:step(closure2) end
    assert.is_true(max_rel(evals2, cont) <= 1e-12)
  end)

  it("rejects bad options, naming them", function()
    local p = dl.zeros(2, {dtype = "float64", requires_grad = true})
    H.assert_error(function() dl.optim.CG({p}, {lr = -0.1}) end, "dl.optim.CG", "lr")
    H.assert_error(function() dl.optim.CG({p}, {tolerance_grad = -1}) end, "tolerance_grad")
    H.assert_error(function() dl.optim.CG({p}, {restart = 0}) end, "restart")
    H.assert_error(function() dl.optim.CG({p}, {max_iter = 0}) end, "max_iter")
    H.assert_error(function() dl.optim.CG({p}, {history_size = 3}) end, "unknown option 'history_size'")
    H.assert_error(function() dl.optim.CG({p}, {line_search_fn = "strong_wolfe"}) end, "unknown option")
    H.assert_error(function() dl.optim.CG({p}):step(42) end, "closure")
  end)
end)
