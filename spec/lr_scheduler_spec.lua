-- dl.optim.lr_scheduler: every scheduler's lr (and momentum / beta1 where it
-- cycles them) over 100 steps against PyTorch's values
-- (spec/fixtures/lr_scheduler_reference.lua), step(epoch) and resuming,
-- ReduceLROnPlateau on fixed metric sequences, state_dict round trips,
-- verbose output and bad inputs.
local dl = require "dlua"
local H = require "spec.helper"
local LS = dl.optim.lr_scheduler
local ref = require "spec.fixtures.lr_scheduler_reference"

-- the functions the fixture names (same formulas as its Python FUNCS)
local FUNCS = {
  exp97 = function(e) return 0.97 ^ e end,
  inv = function(e) return 1.0 / (e + 1) end,
  pow9 = function(e) return 0.9 ^ e end,
  half_sine = function(x) return 0.5 * (1 + math.sin(x * math.pi / 2)) end,
}

-- a minimal optimizer: param_groups with PyTorch's SGD(momentum = 0.9) or
-- Adam defaults filled in, and the defaults table
local function fake_optim(kind, groups)
  local defaults = kind == "Adam" and {lr = 0.1, betas = {0.9, 0.999}}
                   or {lr = 0.1, momentum = 0.9}
  local pg = {}
  for i, g in ipairs(groups or {{lr = 0.1}}) do
    local c = {}
    for k, v in pairs(g) do c[k] = v end
    for k, v in pairs(defaults) do
      if c[k] == nil then c[k] = type(v) == "table" and {table.unpack(v)} or v end
    end
    pg[i] = c
  end
  return {param_groups = pg, defaults = defaults}
end

local function close(a, b)
  return math.abs(a - b) <= 1e-12 * math.max(1, math.abs(b))
end

local function check_groups(case, what, k, got)
  local want = case[what][k]
  assert(#got == #want, string.format("%s: %d groups, expected %d", case.name, #got, #want))
  for i = 1, #want do
    assert(close(got[i], want[i]), string.format("%s: %s of group %d after %d steps is %.17g, PyTorch %.17g",
      case.name, what, i, k - 1, got[i], want[i]))
  end
end

local function snapshot(opt, what)
  local out = {}
  for i, g in ipairs(opt.param_groups) do
    if what == "lr" then out[i] = g.lr
    elseif what == "momentum" then out[i] = g.momentum
    else out[i] = g.betas[1] end
  end
  return out
end

local function options_of(case)
  local o = {}
  for k, v in pairs(case.opts) do o[k] = v end
  for k, f in pairs(case.fns or {}) do
    if type(f) == "table" then
      local l = {}
      for i, n in ipairs(f) do l[i] = FUNCS[n] end
      o[k] = l
    else
      o[k] = FUNCS[f]
    end
  end
  return o
end

local function replay(case)
  local opt = fake_optim(case.optim, case.groups)
  local s = LS[case.cls](opt, options_of(case))
  local tracked = {"lr", "momentum", "beta1"}
  local function check(k)
    for _, what in ipairs(tracked) do
      if case[what] then check_groups(case, what, k, snapshot(opt, what)) end
    end
  end
  check(1)
  local n = #case.lr - 1
  for k = 1, n do
    if case.metrics then s:step(case.metrics[k])
    elseif case.epochs then s:step(case.epochs[k])
    else s:step() end
    check(k + 1)
  end
  local last = s:get_last_lr()
  for i = 1, #case.last_lr do assert(close(last[i], case.last_lr[i])) end
  return n
end

describe("lr_scheduler against PyTorch", function()
  for _, case in ipairs(ref) do
    it(case.cls .. " " .. case.name, function()
      local n = replay(case)
      assert.is_true(n >= 14)
      if not case.epochs or #case.epochs >= 100 then assert.is_true(n >= 100) end
    end)
  end
end)

describe("lr_scheduler arguments", function()
  it("takes PyTorch's positional order, an option table, or both", function()
    local a, b, c = fake_optim(), fake_optim(), fake_optim()
    local s1 = LS.StepLR(a, 3, 0.5)
    local s2 = LS.StepLR(b, {step_size = 3, gamma = 0.5})
    local s3 = LS.StepLR(c, 3, {gamma = 0.5})
    for _ = 1, 10 do s1:step(); s2:step(); s3:step() end
    assert.are.equal(0.1 * 0.5 ^ 3, a.param_groups[1].lr)
    assert.are.equal(a.param_groups[1].lr, b.param_groups[1].lr)
    assert.are.equal(a.param_groups[1].lr, c.param_groups[1].lr)
  end)

  it("reads a list as milestones and a callable table as an lr_lambda", function()
    local opt = fake_optim()
    local s = LS.MultiStepLR(opt, {2, 4}, {gamma = 0.5})
    for _ = 1, 4 do s:step() end
    assert.are.equal(0.025, opt.param_groups[1].lr)
    local f = setmetatable({rate = 0.5}, {__call = function(self, e) return self.rate ^ e end})
    local o2 = fake_optim()
    LS.LambdaLR(o2, f):step()
    assert.are.equal(0.05, o2.param_groups[1].lr)
  end)

  it("reads an empty table as options, except as empty milestones", function()
    local a, b = fake_optim(), fake_optim()
    local s1 = LS.LinearLR(a, {})
    local s2 = LS.MultiStepLR(b, {})
    assert.are.equal(1 / 3, s1.start_factor)
    for _ = 1, 10 do s1:step(); s2:step() end
    assert.are.equal(0.1, a.param_groups[1].lr)
    assert.are.equal(0.1, b.param_groups[1].lr)
  end)

  it("sets initial_lr on construction and keeps an existing one", function()
    local opt = fake_optim(nil, {{lr = 0.1}, {lr = 0.2, initial_lr = 0.4}})
    local s = LS.ExponentialLR(opt, 0.5)
    assert.are.same({0.1, 0.4}, s.base_lrs)
    assert.are.equal(0.1, opt.param_groups[1].initial_lr)
    assert.are.same({0.1, 0.2}, s:get_last_lr())
  end)

  it("OneCycleLR resumes with last_epoch from the groups it filled", function()
    local a = fake_optim()
    local s = LS.OneCycleLR(a, {max_lr = 1, total_steps = 30})
    for _ = 1, 12 do s:step() end
    local want = {}
    for k = 1, 10 do s:step(); want[k] = a.param_groups[1].lr end
    local b = fake_optim(nil, {a.param_groups[1]})
    b.param_groups[1].lr = 0 -- overwritten by the resumed schedule
    local r = LS.OneCycleLR(b, {max_lr = 1, total_steps = 30, last_epoch = 11})
    assert.are.equal(a.param_groups[1].initial_lr, r.base_lrs[1])
    for k = 1, 10 do r:step(); assert.are.equal(want[k], b.param_groups[1].lr) end
  end)

  it("get_last_lr returns a new list each call", function()
    local opt = fake_optim()
    local s = LS.StepLR(opt, 1, 0.5)
    local first = s:get_last_lr()
    s:step()
    assert.are.same({0.1}, first)
    assert.are.same({0.05}, s:get_last_lr())
    assert.are_not.equal(s:get_last_lr(), s:get_last_lr())
  end)

  it("follows an lr edited between steps (chainable form)", function()
    local opt = fake_optim()
    local s = LS.StepLR(opt, 2, 0.5)
    s:step()
    opt.param_groups[1].lr = 1.0
    s:step()
    assert.are.equal(0.5, opt.param_groups[1].lr)
  end)

  it("OneCycleLR cycles beta1 and keeps beta2", function()
    local opt = fake_optim("Adam")
    local s = LS.OneCycleLR(opt, {max_lr = 0.01, total_steps = 10})
    local betas = opt.param_groups[1].betas
    assert.are.equal(0.95, betas[1])
    assert.are.equal(0.999, betas[2])
    s:step()
    assert.is_true(opt.param_groups[1].betas[1] < 0.95)
    assert.are.equal(0.999, opt.param_groups[1].betas[2])
    assert.are.same({0.9, 0.999}, opt.defaults.betas)
  end)

  it("ReduceLROnPlateau accepts a one-element tensor metric", function()
    local opt = fake_optim()
    local s = LS.ReduceLROnPlateau(opt, {patience = 0, factor = 0.5})
    s:step(dl.tensor(1.0))
    s:step(dl.tensor({2.0}, {dtype = "float64"}))
    assert.are.equal(0.05, opt.param_groups[1].lr)
    assert.are.same({0.05}, s:get_last_lr())
    assert.are.equal(1.0, s.best)
  end)

  it("is silent by default and prints each change when verbose", function()
    local lines = {}
    local saved = _G.print
    _G.print = function(...) lines[#lines + 1] = table.concat({...}, "\t") end
    local ok, err = pcall(function()
      local s = LS.StepLR(fake_optim(), 1, 0.5)
      s:step()
      assert.are.equal(0, #lines)
      local v = LS.StepLR(fake_optim(nil, {{lr = 0.1}, {lr = 0.2}}), {step_size = 1, gamma = 0.5, verbose = true})
      v:step()
      v:step(5)
      local p = LS.ReduceLROnPlateau(fake_optim(), {patience = 0, verbose = true})
      p:step(1)
      p:step(2)
    end)
    _G.print = saved
    assert(ok, err)
    assert.are.same({
      "Adjusting learning rate of group 1 to 1.0000e-01.",
      "Adjusting learning rate of group 2 to 2.0000e-01.",
      "Adjusting learning rate of group 1 to 5.0000e-02.",
      "Adjusting learning rate of group 2 to 1.0000e-01.",
      "Epoch 00005: adjusting learning rate of group 1 to 3.1250e-03.",
      "Epoch 00005: adjusting learning rate of group 2 to 6.2500e-03.",
      "Epoch 00002: reducing learning rate of group 1 to 1.0000e-02.",
    }, lines)
  end)
end)

-- every scheduler with options that exercise its state
local ROUND_TRIP = {
  {"StepLR", {step_size = 7, gamma = 0.5}},
  {"MultiStepLR", {milestones = {10, 25, 25, 60}, gamma = 0.3}},
  {"ExponentialLR", {gamma = 0.95}},
  {"LinearLR", {start_factor = 0.25, total_iters = 50}},
  {"LambdaLR", {lr_lambda = FUNCS.exp97}},
  {"CosineAnnealingLR", {T_max = 30, eta_min = 0.001}},
  {"CosineAnnealingWarmRestarts", {T_0 = 10, T_mult = 2, eta_min = 0.01}},
  {"OneCycleLR", {max_lr = 1.0, total_steps = 80, three_phase = true}},
  {"CyclicLR", {base_lr = 0.01, max_lr = 0.1, step_size_up = 7, mode = "triangular2"}},
  {"CyclicLR", {base_lr = 0.01, max_lr = 0.1, step_size_up = 7, scale_fn = FUNCS.half_sine}},
  {"ReduceLROnPlateau", {factor = 0.5, patience = 2, cooldown = 3}},
}

local function metric(k) return 1 / (1 + math.min(k, 20)) end

describe("lr_scheduler state_dict", function()
  for _, entry in ipairs(ROUND_TRIP) do
    local cls, opts = entry[1], entry[2]
    it(cls .. " resumes exactly from its state_dict", function()
      local plateau = cls == "ReduceLROnPlateau"
      local opt = fake_optim(nil, {{lr = 0.1}, {lr = 0.05}})
      local s = LS[cls](opt, opts)
      local function step(sched, k) if plateau then sched:step(metric(k)) else sched:step() end end
      for k = 1, 37 do step(s, k) end
      local sd = s:state_dict()
      for k, v in pairs(sd) do
        assert.are_not.equal("function", type(v), k)
        assert.are_not.equal("optimizer", k)
      end
      -- a fresh optimizer whose groups are the saved ones (what an
      -- optimizer state_dict restores), and a fresh scheduler
      local groups = {}
      for i, g in ipairs(opt.param_groups) do
        groups[i] = {}
        for k, v in pairs(g) do groups[i][k] = type(v) == "table" and {table.unpack(v)} or v end
      end
      local opt2 = fake_optim(nil, groups)
      local s2 = LS[cls](opt2, opts)
      s2:load_state_dict(sd)
      for i, g in ipairs(groups) do
        for k, v in pairs(g) do opt2.param_groups[i][k] = v end
      end
      assert.are.same(s:get_last_lr(), s2:get_last_lr())
      for k in pairs(sd) do sd[k] = nil end -- the loaded state is a copy
      for k = 38, 70 do
        step(s, k)
        step(s2, k)
        assert.are.same(s:get_last_lr(), s2:get_last_lr())
        assert.are.equal(opt.param_groups[1].momentum, opt2.param_groups[1].momentum)
      end
    end)
  end

  it("LambdaLR saves a callable table's fields, not functions", function()
    local f = setmetatable({rate = 0.5}, {__call = function(self, e) return self.rate ^ e end})
    local s = LS.LambdaLR(fake_optim(nil, {{lr = 1}, {lr = 1}}), {f, FUNCS.inv})
    local sd = s:state_dict()
    assert.are.same({{rate = 0.5}, false}, sd.lr_lambdas)
    sd.lr_lambdas[1].rate = 0.25
    s:load_state_dict(sd)
    assert.are.equal(0.25, f.rate)
    s:step()
    assert.are.same({0.25, 0.5}, s:get_last_lr())
  end)

  it("load_state_dict rejects unknown keys and non-tables", function()
    local s = LS.StepLR(fake_optim(), 3)
    H.assert_error(function() s:load_state_dict({bogus = 1}) end, "StepLR.load_state_dict", "bogus")
    H.assert_error(function() s:load_state_dict(5) end, "StepLR.load_state_dict", "table")
    local e = LS.ExponentialLR(fake_optim(), 0.5)
    H.assert_error(function() e:load_state_dict(s:state_dict()) end, "ExponentialLR", "unknown key 'step_size'")
  end)
end)

describe("lr_scheduler with a real optimizer", function()
  local test = dl.optim.SGD and it or pending
  test("OneCycleLR drives dl.optim.SGD's lr and momentum", function()
  local p = dl.nn.Parameter(dl.zeros(3, {dtype = "float64"}))
  local opt = dl.optim.SGD({p}, {lr = 0.1, momentum = 0.9})
  local s = LS.OneCycleLR(opt, {max_lr = 1.0, total_steps = 20})
  local case = {lr = {}, momentum = {}}
  for _ = 1, 20 do
    p.grad = dl.ones(3, {dtype = "float64"})
    opt:step()
    s:step()
    case.lr[#case.lr + 1] = opt.param_groups[1].lr
    case.momentum[#case.momentum + 1] = opt.param_groups[1].momentum
  end
  local fake = fake_optim(nil, {{lr = 0.1, momentum = 0.9}})
  local s2 = LS.OneCycleLR(fake, {max_lr = 1.0, total_steps = 20})
  for k = 1, 20 do
    s2:step()
    assert.are.equal(fake.param_groups[1].lr, case.lr[k])
    assert.are.equal(fake.param_groups[1].momentum, case.momentum[k])
  end
  end)
end)

describe("lr_scheduler bad inputs", function()
  local opt = fake_optim
  it("refuses unknown options, naming them", function()
    H.assert_error(function() LS.StepLR(opt(), {step_size = 3, gama = 0.1}) end,
                   "StepLR", "unknown option 'gama'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {last_epoch = 3}) end,
                   "ReduceLROnPlateau", "unknown option 'last_epoch'")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 10, momentum = 0.9}) end,
                   "OneCycleLR", "unknown option 'momentum'")
  end)

  it("refuses negative or out-of-range values, naming the option", function()
    H.assert_error(function() LS.StepLR(opt(), 3, -0.1) end, "StepLR", "'gamma'", ">= 0")
    H.assert_error(function() LS.StepLR(opt(), 0) end, "StepLR", "'step_size'", "integer >= 1")
    H.assert_error(function() LS.StepLR(opt(), 2.5) end, "'step_size'")
    H.assert_error(function() LS.ExponentialLR(opt(), -1) end, "ExponentialLR", "'gamma'")
    H.assert_error(function() LS.MultiStepLR(opt(), {3, -1}) end, "MultiStepLR", "'milestones'")
    H.assert_error(function() LS.LinearLR(opt(), {start_factor = 0}) end, "LinearLR", "'start_factor'")
    H.assert_error(function() LS.LinearLR(opt(), {end_factor = 1.5}) end, "LinearLR", "'end_factor'")
    H.assert_error(function() LS.CosineAnnealingLR(opt(), 10, -0.01) end, "CosineAnnealingLR", "'eta_min'")
    H.assert_error(function() LS.CosineAnnealingLR(opt(), 0) end, "'T_max'", "> 0")
    H.assert_error(function() LS.CosineAnnealingWarmRestarts(opt(), 1.5) end, "'T_0'")
    H.assert_error(function() LS.CosineAnnealingWarmRestarts(opt(), 5, 0) end, "'T_mult'")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = -1, total_steps = 5}) end, "OneCycleLR", "'max_lr'")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 5, pct_start = 1.5}) end,
                   "'pct_start'")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 5, base_momentum = -0.1}) end,
                   "'base_momentum'")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 5, div_factor = 0}) end,
                   "'div_factor'")
    H.assert_error(function() LS.CyclicLR(opt(), -0.1, 1) end, "CyclicLR", "'base_lr'")
    H.assert_error(function() LS.CyclicLR(opt(), 0.1, 1, {step_size_up = 0}) end, "'step_size_up'")
    H.assert_error(function() LS.CyclicLR(opt(), 0.1, 1, {max_momentum = -1}) end, "'max_momentum'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {factor = 1}) end, "ReduceLROnPlateau", "'factor'", "< 1")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {factor = -0.5}) end, "'factor'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {eps = -1}) end, "'eps'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {min_lr = -1}) end, "'min_lr'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {patience = -1}) end, "'patience'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {threshold = -1}) end, "'threshold'")
    H.assert_error(function() LS.StepLR(opt(), 3, {last_epoch = -2}) end, "'last_epoch'")
    H.assert_error(function() LS.StepLR(opt(), 3, {verbose = 1}) end, "'verbose'", "boolean")
  end)

  it("refuses bad choices and missing required options", function()
    H.assert_error(function() LS.CyclicLR(opt(), 0.1, 1, {mode = "square"}) end, "CyclicLR", "'mode'", "square")
    H.assert_error(function() LS.CyclicLR(opt(), 0.1, 1, {scale_mode = "epoch"}) end, "'scale_mode'")
    H.assert_error(function() LS.CyclicLR(opt(), 0.1, 1, {scale_fn = 3}) end, "'scale_fn'")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 5, anneal_strategy = "exp"}) end,
                   "'anneal_strategy'")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {mode = "mid"}) end, "'mode'", "mid")
    H.assert_error(function() LS.ReduceLROnPlateau(opt(), {threshold_mode = "x"}) end, "'threshold_mode'")
    H.assert_error(function() LS.StepLR(opt()) end, "StepLR", "'step_size'")
    H.assert_error(function() LS.ExponentialLR(opt()) end, "'gamma'", "required")
    H.assert_error(function() LS.CosineAnnealingLR(opt()) end, "'T_max'", "required")
    H.assert_error(function() LS.CosineAnnealingWarmRestarts(opt()) end, "'T_0'", "required")
    H.assert_error(function() LS.OneCycleLR(opt(), {total_steps = 5}) end, "'max_lr'", "required")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, epochs = 5}) end, "'total_steps'", "'steps_per_epoch'")
    H.assert_error(function() LS.CyclicLR(opt(), {base_lr = 0.1}) end, "'max_lr'", "required")
    H.assert_error(function() LS.LambdaLR(opt(), 3) end, "LambdaLR", "'lr_lambda'")
    H.assert_error(function() LS.MultiStepLR(opt(), 3) end, "'milestones'")
  end)

  it("refuses per-group lists of the wrong length", function()
    local two = function() return fake_optim(nil, {{lr = 0.1}, {lr = 0.2}}) end
    H.assert_error(function() LS.LambdaLR(two(), {FUNCS.inv}) end, "LambdaLR", "expects 2", "got 1")
    H.assert_error(function() LS.OneCycleLR(two(), {max_lr = {1, 2, 3}, total_steps = 5}) end,
                   "'max_lr'", "expects 2", "got 3")
    H.assert_error(function() LS.CyclicLR(two(), {0.1}, 1) end, "'base_lr'", "expects 2")
    H.assert_error(function() LS.ReduceLROnPlateau(two(), {min_lr = {0.1}}) end, "'min_lr'", "expects 2")
  end)

  it("refuses arguments given twice or too many", function()
    H.assert_error(function() LS.StepLR(opt(), 3, {step_size = 4}) end, "StepLR", "'step_size' given twice")
    H.assert_error(function() LS.ExponentialLR(opt(), 0.5, -1, false, 7) end, "ExponentialLR", "at most 3")
  end)

  it("refuses something that is not an optimizer", function()
    H.assert_error(function() LS.StepLR(nil, 3) end, "StepLR", "expected an optimizer, got nil")
    H.assert_error(function() LS.StepLR({}, 3) end, "StepLR", "param_groups")
    H.assert_error(function() LS.StepLR({param_groups = {{momentum = 1}}}, 3) end, "param_groups[1]", "lr")
    H.assert_error(function() LS.StepLR(dl.zeros(2), 3) end, "StepLR", "optimizer")
  end)

  it("needs momentum or betas to cycle momentum", function()
    local plain = {param_groups = {{lr = 0.1}}}
    H.assert_error(function() LS.OneCycleLR(plain, {max_lr = 1, total_steps = 5}) end,
                   "OneCycleLR", "'cycle_momentum'")
    H.assert_error(function() LS.CyclicLR(plain, 0.1, 1) end, "CyclicLR", "'cycle_momentum'")
    local s = LS.OneCycleLR({param_groups = {{lr = 0.1}}}, {max_lr = 1, total_steps = 5, cycle_momentum = false})
    assert.is_true(s:get_last_lr()[1] > 0)
  end)

  it("refuses resuming without initial_lr", function()
    H.assert_error(function() LS.StepLR(opt(), 3, {last_epoch = 4}) end, "StepLR", "initial_lr", "last_epoch = 4")
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 9, last_epoch = 2}) end,
                   "OneCycleLR", "'max_lr'", "last_epoch = 2")
  end)

  it("OneCycleLR refuses stepping past total_steps", function()
    local s = LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 5})
    for _ = 1, 5 do s:step() end
    H.assert_error(function() s:step() end, "OneCycleLR", "tried to step 7 times", "total_steps is 5")
  end)

  it("OneCycleLR refuses a phase without steps", function()
    H.assert_error(function() LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 10, pct_start = 0.1}) end,
                   "OneCycleLR", "phase 1", "no steps")
    local s = LS.OneCycleLR(opt(), {max_lr = 1, total_steps = 10, pct_start = 1.0})
    for _ = 1, 9 do s:step() end
    H.assert_error(function() s:step() end, "OneCycleLR", "phase 2", "no steps")
  end)

  it("step checks its epoch and metric", function()
    H.assert_error(function() LS.StepLR(opt(), 3):step("x") end, "StepLR", "'epoch'")
    H.assert_error(function() LS.CosineAnnealingWarmRestarts(opt(), 5):step(-1) end, "epoch must be >= 0")
    local p = LS.ReduceLROnPlateau(opt())
    H.assert_error(function() p:step() end, "ReduceLROnPlateau", "metric")
    H.assert_error(function() p:step(dl.zeros(2)) end, "ReduceLROnPlateau", "2 elements")
  end)

  it("LambdaLR and CyclicLR check what their functions return", function()
    H.assert_error(function() LS.LambdaLR(opt(), function() return "a" end) end, "LambdaLR", "returned string")
    H.assert_error(function() LS.CyclicLR(opt(), 0.1, 1, {scale_fn = function() end}) end,
                   "CyclicLR", "scale_fn returned nil")
  end)
end)
