-- dl.nn layers: Linear, RBF, Dropout, BatchNorm1d and their dl.F forms.
-- BatchNorm1d is compared with PyTorch through spec/fixtures/layers_reference.lua
-- (written by spec/fixtures/layers_reference.py).
local dl = require "dlua"
local H = require "spec.helper"
local nn, F = dl.nn, dl.F

local function f64(t) return dl.tensor(t, {dtype = "float64"}) end
local function r(...) return dl.randn({...}, {dtype = "float64"}) end
local ref = dofile("spec/fixtures/layers_reference.lua")

-- plain-Lua matrix helpers for reference values
local function matvec_ref(x, w, b)
  local out = {}
  for i = 1, #x do
    out[i] = {}
    for j = 1, #w do
      local s = b and b[j] or 0
      for k = 1, #x[i] do s = s + x[i][k] * w[j][k] end
      out[i][j] = s
    end
  end
  return out
end

describe("dl.nn.Linear", function()
  it("has weight [out, in] and bias [out], registered in that order", function()
    local l = nn.Linear(8, 64)
    assert.same({64, 8}, l.weight:size())
    assert.same({64}, l.bias:size())
    local np = l:named_parameters()
    assert.equal("weight", np[1][1])
    assert.equal("bias", np[2][1])
    assert.equal(8 * 64 + 64, l:num_parameters())
    assert.is_true(l.weight.requires_grad and l.weight.is_leaf)
  end)
  it("initialises weight and bias as PyTorch does: U(-1/sqrt(in), 1/sqrt(in))", function()
    dl.manual_seed(1)
    local l = nn.Linear(100, 400)
    local bound = 1 / math.sqrt(100)
    for _, t in ipairs({l.weight, l.bias}) do
      assert.is_true(t:abs():max():item() <= bound)
      assert.is_true(t:max():item() > 0.95 * bound and t:min():item() < -0.95 * bound)
    end
    -- U(-a, a): mean 0, variance a^2 / 3 (40000 draws)
    assert.is_true(math.abs(l.weight:mean():item()) < 0.002)
    local v = l.weight:var():item()
    assert.is_true(math.abs(v / (bound * bound / 3) - 1) < 0.03, "variance " .. v)
  end)
  it("computes x @ W^T + b (hand-computed)", function()
    local l = nn.Linear(3, 2, {dtype = "float64"})
    local w, b = {{1, 2, 3}, {-1, 0.5, 2}}, {0.5, -1}
    dl.no_grad(function()
      l.weight:copy_(f64(w))
      l.bias:copy_(f64(b))
    end)
    local x = {{1, 1, 1}, {2, -1, 0.5}}
    assert.same({{6.5, 0.5}, {2, -2.5}}, l(f64(x)):totable())
    H.assert_close(l(f64(x)), matvec_ref(x, w, b), 0)
  end)
  it("takes N-D inputs (leading dims flattened) and 1-D inputs", function()
    dl.manual_seed(2)
    local l = nn.Linear(4, 3, {dtype = "float64"})
    local x = r(2, 5, 4)
    local y = l(x)
    assert.same({2, 5, 3}, y:size())
    H.assert_close(y:select(1, 2), l(x:select(1, 2)), 1e-12)
    local v = r(4)
    local yv = l(v)
    assert.same({3}, yv:size())
    H.assert_close(yv, l(v:unsqueeze(1)):squeeze(1), 1e-12)
  end)
  it("takes non-contiguous inputs", function()
    local l = nn.Linear(3, 2, {dtype = "float64"})
    local x = r(3, 4):t()
    H.assert_close(l(x), l(x:contiguous()), 1e-12)
  end)
  it("without bias has only a weight", function()
    local l = nn.Linear(3, 2, {bias = false})
    assert.is_nil(l.bias)
    assert.equal(1, #l:parameters())
    assert.equal("Linear(in_features=3, out_features=2, bias=False)", tostring(l))
    local x = dl.randn(4, 3)
    H.assert_close(l(x), dl.matmul(x, l.weight:t()), 1e-6)
  end)
  it("backpropagates to weight, bias and input (hand-computed)", function()
    local l = nn.Linear(2, 2, {dtype = "float64"})
    dl.no_grad(function()
      l.weight:copy_(f64({{1, 2}, {3, 4}}))
      l.bias:zero_()
    end)
    local x = f64({{1, -1}, {2, 0.5}}):requires_grad_()
    l(x):sum():backward()
    assert.same({{3, -0.5}, {3, -0.5}}, l.weight.grad:totable())
    assert.same({2, 2}, l.bias.grad:totable())
    assert.same({{4, 6}, {4, 6}}, x.grad:totable())
  end)
  it("dl.F.linear equals the module", function()
    local l = nn.Linear(5, 3)
    local x = dl.randn(4, 5)
    H.assert_close(F.linear(x, l.weight, l.bias), l(x), 0)
    H.assert_close(F.linear(x, l.weight), l(x) - l.bias, 1e-6)
  end)
  it("prints like PyTorch", function()
    assert.equal("Linear(in_features=8, out_features=64, bias=True)", tostring(nn.Linear(8, 64)))
  end)
  it("rejects bad sizes, options and inputs", function()
    H.assert_error(function() nn.Linear(2.5, 3) end, "dl.nn.Linear", "in_features")
    H.assert_error(function() nn.Linear(2, -1) end, "dl.nn.Linear", "out_features")
    H.assert_error(function() nn.Linear(2, 3, {bais = true}) end, "dl.nn.Linear", "bais")
    H.assert_error(function() nn.Linear(2, 3, 5) end, "dl.nn.Linear", "options table")
    local err = H.assert_error(function() nn.Linear(4, 3)(dl.randn(2, 5)) end,
      "Linear(4 -> 3): input [2,5] has 5 features, expected 4")
    assert.matches("^spec/nn_layers_spec.lua:%d+: ", err) -- the user's line, not the library's
    H.assert_error(function() nn.Linear(4, 3)(dl.tensor(1.0)) end, "Linear(4 -> 3): input [] has no features")
    H.assert_error(function() nn.Linear(4, 3)("x") end, "Linear(4 -> 3): input must be a tensor, got string")
    H.assert_error(function() F.linear(dl.tensor(1.0), dl.randn(2, 1)) end, "0-d")
  end)
end)

describe("the seed's regression model", function()
  -- the seed counts 8,577 parameters for its MLP with 2 inputs:
  -- (2*64 + 64) + 2 * (64*64 + 64) + (64 + 1); with 8 inputs it is 8,961
  local function mlp(n_in)
    return {nn.Linear(n_in, 64), nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 1)}
  end
  local function count(layers)
    local n = 0
    for _, l in ipairs(layers) do n = n + l:num_parameters() end
    return n
  end
  it("Linear(2,64), ReLU, Linear(64,64), ReLU, Linear(64,64), ReLU, Linear(64,1) has 8,577 parameters", function()
    local layers = mlp(2)
    assert.equal(8577, count(layers))
    if nn.Sequential and nn.ReLU then
      local m = nn.Sequential(layers[1], nn.ReLU(), layers[2], nn.ReLU(), layers[3], nn.ReLU(), layers[4])
      assert.equal(8577, m:num_parameters())
      assert.same({64, 1}, m(dl.randn(64, 2)):size())
    end
  end)
  it("with 8 inputs, Linear(8,64), ... has 8,961 parameters", function()
    assert.equal(8961, count(mlp(8)))
  end)
  it("prints its tree as PyTorch's repr does", function()
    local l = mlp(8)
    local m = nn.Sequential(l[1], nn.ReLU(), l[2], nn.ReLU(), l[3], nn.ReLU(), l[4])
    assert.equal(table.concat({
      "Sequential(",
      "  (0): Linear(in_features=8, out_features=64, bias=True)",
      "  (1): ReLU()",
      "  (2): Linear(in_features=64, out_features=64, bias=True)",
      "  (3): ReLU()",
      "  (4): Linear(in_features=64, out_features=64, bias=True)",
      "  (5): ReLU()",
      "  (6): Linear(in_features=64, out_features=1, bias=True)",
      ")"}, "\n"), tostring(m))
    assert.equal(8961, m:num_parameters())
  end)
end)

describe("dl.nn.RBF", function()
  -- phi_ij = exp(-|x_i - c_j|^2 / (2 s_j^2)) in float64 Lua
  local function rbf_ref(x, c, s, bias_unit)
    local out = {}
    for i = 1, #x do
      out[i] = {}
      if bias_unit then out[i][1] = 1 end
      for j = 1, #c do
        local d = 0
        for k = 1, #x[i] do d = d + (x[i][k] - c[j][k]) ^ 2 end
        out[i][#out[i] + 1] = math.exp(-d / (2 * s[j] ^ 2))
      end
    end
    return out
  end

  it("computes exp(-|x - mu_j|^2 / (2 s_j^2)) (float64 formula)", function()
    dl.manual_seed(4)
    local x, c, s = r(6, 3), r(4, 3), dl.rand(4, {dtype = "float64"}) + 0.5
    H.assert_close(F.rbf(x, c, s), rbf_ref(x:totable(), c:totable(), s:totable()), 1e-12)
  end)
  it("puts the constant-1 unit first with bias_unit", function()
    dl.manual_seed(5)
    local x, c, s = r(5, 2), r(3, 2), dl.rand(3, {dtype = "float64"}) + 0.5
    local y = F.rbf(x, c, s, {bias_unit = true})
    assert.same({5, 4}, y:size())
    H.assert_close(y, rbf_ref(x:totable(), c:totable(), s:totable(), true), 1e-12)
  end)
  it("gives 1 at a center and works in float32 on transposed inputs", function()
    local c = dl.tensor({{0, 0}, {1, 2}}, {dtype = "float32"})
    local x = dl.tensor({{1, 0}, {2, 0}}, {dtype = "float32"}):t() -- rows (1, 2) and (0, 0)
    local y = F.rbf(x, c, dl.tensor({1, 0.5}))
    assert.equal("float32", y.dtype)
    H.assert_close(y, {{math.exp(-5 / 2), 1}, {1, math.exp(-5 / 0.5)}}, 1e-6)
  end)
  it("has learnable centers [n, in] and sigmas [n] by default", function()
    local m = nn.RBF(3, 7, {sigma = 2})
    assert.same({7, 3}, m.centers:size())
    assert.same({7}, m.sigmas:size())
    assert.same({2, 2, 2, 2, 2, 2, 2}, m.sigmas:totable())
    assert.equal(2, #m:parameters())
    assert.equal(0, #m:buffers())
    local x = dl.randn(5, 3)
    m(x):sum():backward()
    assert.same({7, 3}, m.centers.grad:size())
    assert.same({7}, m.sigmas.grad:size())
  end)
  it("keeps fixed centers and sigmas as buffers", function()
    local m = nn.RBF(2, 4, {learn_centers = false, learn_sigma = false, bias_unit = true})
    assert.equal(0, #m:parameters())
    assert.equal(2, #m:buffers())
    assert.same({3, 5}, m(dl.randn(3, 2)):size())
    local sd = m:state_dict()
    assert.is_not_nil(sd.centers)
    assert.is_not_nil(sd.sigmas)
  end)
  it("matches the formula through the module, 1-D input included", function()
    local m = nn.RBF(2, 3, {dtype = "float64", bias_unit = true})
    local c = {{0, 1}, {1, 1}, {-1, 0.5}}
    m:set_centers(f64(c)):set_sigmas(f64({0.5, 1, 2}))
    local x = {{0.2, -0.3}, {1, 1}}
    H.assert_close(m(f64(x)), rbf_ref(x, c, {0.5, 1, 2}, true), 1e-12)
    H.assert_close(m(f64(x[1])), rbf_ref({x[1]}, c, {0.5, 1, 2}, true)[1], 1e-12)
    assert.is_nil(m.centers.grad_fn)
    assert.is_true(m.centers.is_leaf)
  end)
  it("prints its configuration", function()
    assert.equal("RBF(in_features=2, n_centers=5, learn_centers=True, learn_sigma=False, bias_unit=True)",
      tostring(nn.RBF(2, 5, {learn_sigma = false, bias_unit = true})))
  end)
  it("rejects bad sizes, options and inputs", function()
    H.assert_error(function() nn.RBF(0, 3) end, "dl.nn.RBF", "in_features")
    H.assert_error(function() nn.RBF(2, 3, {sigma = -1}) end, "dl.nn.RBF", "sigma")
    H.assert_error(function() nn.RBF(2, 3, {centers = 1}) end, "dl.nn.RBF", "centers")
    local m = nn.RBF(2, 3)
    H.assert_error(function() m(dl.randn(4, 3)) end, "rbf", "[4,3]", "[3,2]")
    H.assert_error(function() m:set_centers(dl.randn(2, 2)) end, "set_centers", "[3,2]", "[2,2]")
    H.assert_error(function() m:set_sigmas(5) end, "set_sigmas", "tensor expected")
    H.assert_error(function() F.rbf(dl.randn(4, 2), dl.randn(3, 2), dl.ones(2)) end, "sigmas", "[3]", "[2]")
    H.assert_error(function() F.rbf(dl.randn(4, 2), dl.randn(3, 2, {dtype = "float64"}), dl.ones(3)) end,
      "centers", "float64")
    H.assert_error(function() F.rbf(dl.ones(4, 2, {dtype = "int64"}), dl.randn(3, 2), dl.ones(3)) end,
      "rbf", "int64")
    H.assert_error(function() F.rbf(dl.randn(4, 2), dl.randn(3, 2), dl.ones(3), {bias = true}) end, "bias")
  end)
end)

describe("dl.nn.Dropout", function()
  it("zeroes a fraction p and scales the rest by 1/(1-p)", function()
    dl.manual_seed(6)
    local y = nn.Dropout(0.3)(dl.ones(20000))
    local zeros = y:eq(0):sum():item()
    assert.is_true(math.abs(zeros / 20000 - 0.3) < 0.015, "dropped " .. zeros)
    H.assert_close(y:max(), 1 / 0.7, 1e-6)
    assert.equal(20000 - zeros, y:eq(y:max()):sum():item())
    assert.is_true(math.abs(y:mean():item() - 1) < 0.03)
  end)
  it("is the identity in eval mode", function()
    local m = nn.Dropout(0.5)
    m:eval()
    local x = dl.randn(4, 5)
    assert.same(x:totable(), m(x):totable())
    assert.same(x:totable(), F.dropout(x, 0.5, false):totable())
  end)
  it("gives zeros for p = 1 and the input's values for p = 0", function()
    local x = dl.randn(3, 4, {dtype = "float64"})
    assert.same(dl.zeros(3, 4):totable(), F.dropout(x, 1):totable())
    assert.same(x:totable(), F.dropout(x, 0):totable())
  end)
  it("sends the gradient through the same mask", function()
    dl.manual_seed(8)
    local x = dl.ones(50, {dtype = "float64", requires_grad = true})
    local y = F.dropout(x, 0.4)
    y:sum():backward()
    assert.same(y:detach():totable(), x.grad:totable())
  end)
  it("draws the same mask from the same seed, on strided inputs too", function()
    local x = dl.randn(6, 4):t()
    dl.manual_seed(9)
    local a = F.dropout(x, 0.5)
    dl.manual_seed(9)
    local b = F.dropout(x:contiguous(), 0.5)
    assert.same(a:totable(), b:totable())
  end)
  it("prints like PyTorch", function()
    assert.equal("Dropout(p=0.5, inplace=False)", tostring(nn.Dropout()))
    assert.equal("Dropout(p=0.2, inplace=False)", tostring(nn.Dropout({p = 0.2})))
  end)
  it("rejects p outside [0, 1] and integer inputs", function()
    H.assert_error(function() nn.Dropout(1.5) end, "dl.nn.Dropout", "between 0 and 1", "1.5")
    H.assert_error(function() nn.Dropout(-0.1) end, "between 0 and 1")
    H.assert_error(function() nn.Dropout({p = 0.5, inplace = true}) end, "dl.nn.Dropout", "inplace")
    H.assert_error(function() F.dropout(dl.randn(3), 2) end, "dropout", "between 0 and 1")
    H.assert_error(function() F.dropout(dl.randn(3), 2, false) end, "between 0 and 1")
    H.assert_error(function() F.dropout(dl.ones(3, {dtype = "int64"}), 0.5) end, "dropout", "int64")
  end)
end)

describe("dl.nn.BatchNorm1d", function()
  local R = ref.bn2d

  local function bn2d(dtype)
    local m = nn.BatchNorm1d(4, {dtype = dtype})
    dl.no_grad(function()
      m.weight:copy_(f64(R.weight))
      m.bias:copy_(f64(R.bias))
    end)
    return m
  end

  it("has weight, bias and the running-statistics buffers", function()
    local m = nn.BatchNorm1d(5)
    assert.same({1, 1, 1, 1, 1}, m.weight:totable())
    assert.same({0, 0, 0, 0, 0}, m.bias:totable())
    assert.equal(2, #m:parameters())
    local names = {}
    for _, kv in ipairs(m:named_buffers()) do names[#names + 1] = kv[1] end
    assert.same({"running_mean", "running_var", "num_batches_tracked"}, names)
    assert.equal("int64", m.num_batches_tracked.dtype)
  end)
  it("equals PyTorch in training mode over 5 steps (outputs and running statistics)", function()
    local m = bn2d("float64")
    for s = 1, 5 do H.assert_close(m(f64(R.xs[s])), R.ys[s], 1e-12) end
    H.assert_close(m.running_mean, R.running_mean, 1e-12)
    H.assert_close(m.running_var, R.running_var, 1e-12)
    assert.equal(R.num_batches_tracked, m.num_batches_tracked:item())
  end)
  it("equals PyTorch in eval mode after 5 training steps", function()
    local m = bn2d("float64")
    for s = 1, 5 do m(f64(R.xs[s])) end
    m:eval()
    H.assert_close(m(f64(R.x_eval)), R.y_eval, 1e-12)
    assert.equal(5, m.num_batches_tracked:item())
  end)
  it("equals PyTorch in float32", function()
    local m = bn2d("float32")
    for s = 1, 5 do H.assert_close(m(dl.tensor(R.xs[s])), R.ys[s], 1e-5) end
    H.assert_close(m.running_var, R.running_var, 1e-5)
  end)
  it("gives PyTorch's gradients (fused backward)", function()
    local m = bn2d("float64")
    local x = f64(R.xs[5]):requires_grad_()
    local y = m(x)
    y:backward(f64(R.gy))
    H.assert_close(x.grad, R.gx, 1e-12)
    H.assert_close(m.weight.grad, R.gw, 1e-12)
    H.assert_close(m.bias.grad, R.gb, 1e-12)
  end)
  it("normalises [N, C, L] per channel; momentum = false is the cumulative average (PyTorch's None)", function()
    local R3 = ref.bn3d
    local m = nn.BatchNorm1d(2, {momentum = false, dtype = "float64"})
    for s = 1, 3 do H.assert_close(m(f64(R3.xs[s])), R3.ys[s], 1e-12) end
    H.assert_close(m.running_mean, R3.running_mean, 1e-12)
    H.assert_close(m.running_var, R3.running_var, 1e-12)
    assert.equal("BatchNorm1d(2, eps=1e-05, momentum=None, affine=True, track_running_stats=True)", tostring(m))
  end)
  it("takes non-contiguous inputs", function()
    local m = nn.BatchNorm1d(3, {dtype = "float64"})
    local x = r(3, 8):t()
    local y = m(x)
    H.assert_close(y, nn.BatchNorm1d(3, {dtype = "float64"})(x:contiguous()), 1e-12)
    H.assert_close(y:mean(1), {0, 0, 0}, 1e-12)
  end)
  it("without affine or running statistics uses batch statistics only", function()
    local m = nn.BatchNorm1d(3, {affine = false, track_running_stats = false})
    assert.equal(0, #m:parameters())
    assert.equal(0, #m:buffers())
    m:eval()
    local y = m(dl.randn(10, 3))
    H.assert_close(y:mean(1), {0, 0, 0}, 1e-5)
    H.assert_close(y:var(1, {unbiased = false}), {1, 1, 1}, 1e-3)
  end)
  it("dl.F.batch_norm: training updates the given running statistics", function()
    local x = f64({{1, 2}, {3, 6}})
    local rm, rv = dl.zeros(2, {dtype = "float64"}), dl.ones(2, {dtype = "float64"})
    local y = F.batch_norm(x, rm, rv, {training = true, momentum = 0.5, eps = 0})
    assert.same({{-1, -1}, {1, 1}}, y:totable())
    assert.same({1, 2}, rm:totable())     -- 0.5 * 0 + 0.5 * mean
    assert.same({1.5, 4.5}, rv:totable()) -- 0.5 * 1 + 0.5 * unbiased var (2, 8)
    -- eval: (x - rm) / sqrt(rv)
    H.assert_close(F.batch_norm(x, rm, rv, {eps = 0}), {{0, 0}, {2 / math.sqrt(1.5), 4 / math.sqrt(4.5)}}, 1e-12)
  end)
  it("prints like PyTorch", function()
    assert.equal("BatchNorm1d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)",
      tostring(nn.BatchNorm1d(64)))
    assert.equal("BatchNorm1d(3, eps=0.001, momentum=0.2, affine=False, track_running_stats=False)",
      tostring(nn.BatchNorm1d(3, {eps = 1e-3, momentum = 0.2, affine = false, track_running_stats = false})))
  end)
  it("rejects bad inputs", function()
    local m = nn.BatchNorm1d(3)
    H.assert_error(function() m(dl.randn(2, 3, 4, 5)) end, "BatchNorm1d", "4D")
    local err = H.assert_error(function() m(dl.randn(4, 5)) end, "BatchNorm1d(3): input [4,5] has 5 channels, expected 3")
    assert.matches("^spec/nn_layers_spec.lua:%d+: ", err)
    H.assert_error(function() m(dl.randn(1, 3)) end, "more than 1 value per channel", "[1,3]")
    H.assert_error(function() m(dl.randn(4, 3, {dtype = "float64"})) end, "batch_norm", "float64", "float32")
    H.assert_error(function() nn.BatchNorm1d(0) end, "dl.nn.BatchNorm1d", "num_features")
    H.assert_error(function() nn.BatchNorm1d(3, {momentun = 0.1}) end, "momentun")
    H.assert_error(function() F.batch_norm(dl.randn(4, 3)) end, "evaluation mode")
    H.assert_error(function() F.batch_norm(dl.randn(4, 3), dl.zeros(3)) end, "together")
    H.assert_error(function() F.batch_norm(dl.randn(4, 3), nil, nil, {training = true, weight = 1}) end,
      "weight", "tensor")
    H.assert_error(function() F.batch_norm(dl.ones(4, 3, {dtype = "int64"}), nil, nil, {training = true}) end,
      "batch_norm", "int64")
    H.assert_error(function() F.batch_norm(dl.randn(4, 3), "x") end, "tensor")
  end)
end)

-- [N, C] inputs take a row-walking kernel (channels in blocks of 256): a
-- ragged second block, checked against the formula written with plain ops
describe("dl.nn.BatchNorm1d on [N, C] with C past one channel block", function()
  for _, dtype in ipairs({"float64", "float32"}) do
    it("matches the composed formula forward and backward (" .. dtype .. ")", function()
      dl.manual_seed(3)
      local N, C = 9, 300
      local m = nn.BatchNorm1d(C, {dtype = dtype})
      dl.no_grad(function()
        m.weight:copy_(dl.rand(C) + 0.5)
        m.bias:copy_(dl.randn(C))
      end)
      local x = dl.randn({N, C}, {dtype = dtype}):requires_grad_()
      local g = dl.randn({N, C}, {dtype = dtype})
      local y = m(x)
      y:backward(g)
      local x2 = x:detach():requires_grad_()
      local w2, b2 = m.weight:detach():requires_grad_(), m.bias:detach():requires_grad_()
      local mu = x2:mean(1, true)
      local var = ((x2 - mu) ^ 2):mean(1, true)
      local y2 = (x2 - mu) / (var + m.eps):sqrt() * w2 + b2
      y2:backward(g)
      local tol = dtype == "float64" and 1e-10 or 2e-4
      H.assert_close(y, y2, tol)
      H.assert_close(x.grad, x2.grad, tol)
      H.assert_close(m.weight.grad, w2.grad, tol)
      H.assert_close(m.bias.grad, b2.grad, tol)
      -- running statistics use the unbiased variance, as PyTorch's
      H.assert_close(m.running_mean, mu:view(C) * 0.1, tol)
      H.assert_close(m.running_var, ((x2 - mu) ^ 2):sum(1) / (N - 1) * 0.1 + 0.9, tol)
    end)
  end
end)
