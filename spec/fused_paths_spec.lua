-- The engine's fused paths give what the ops they stand in for give:
-- max pooling's one-pass gradient against its differentiable composition,
-- batch norm + ReLU (dl._batch_norm_relu, what nn.Sequential runs for
-- BatchNorm then ReLU) and batch norm + ReLU + 2x2 max pooling
-- (dl._batch_norm_relu_pool, for BatchNorm2d, ReLU, MaxPool2d(2)) against
-- the separate ops, values and every gradient, and the float32 batch-norm
-- kernels against float64.
local dl = require "dlua"
local H = require "spec.helper"
local nn, F = dl.nn, dl.F

local function r(...) return dl.randn(...) end

-- the input gradient of fn at x for output weights w: plain backward, and
-- with create_graph (the rule's composed path)
local function grads(fn, x, w)
  local xa = x:detach():requires_grad_()
  local ga = dl.autograd.grad(dl.dot(fn(xa):reshape(-1), w), {xa})
  local xb = x:detach():requires_grad_()
  local gb = dl.autograd.grad(dl.dot(fn(xb):reshape(-1), w), {xb}, nil, {create_graph = true})
  return ga, gb
end

describe("max pooling's gradient kernel", function()
  local cases = {
    {"2x2 windows", {4, 3, 8, 6}, function(x) return F.max_pool2d(x, 2) end},
    {"odd sizes, ceil mode and padding", {2, 3, 7, 5},
      function(x) return F.max_pool2d(x, 3, {stride = 2, padding = 1, ceil_mode = true}) end},
    {"overlapping windows (each gradient added)", {2, 2, 6, 6}, function(x) return F.max_pool2d(x, 3, {stride = 1}) end},
    {"dilation", {1, 2, 9, 9}, function(x) return F.max_pool2d(x, 2, {dilation = 2}) end},
    {"1-D", {3, 4, 11}, function(x) return F.max_pool1d(x, 3, {stride = 2}) end},
    {"3-D", {1, 2, 4, 5, 6}, function(x) return F.max_pool3d(x, 2, {stride = {1, 2, 2}, padding = 1}) end},
  }
  for _, c in ipairs(cases) do
    for _, dtype in ipairs({"float32", "float64"}) do
      it(c[1] .. " (" .. dtype .. ") equals the composed scatter", function()
        local x = dl.randn(c[2], {dtype = dtype})
        local n = dl.no_grad(c[3], x):numel()
        local w = dl.randn(n, {dtype = dtype})
        local ga, gb = grads(c[3], x, w)
        H.assert_close(ga, gb, 0)
        -- every output gradient lands once: the gradient sums to w's sum
        assert.is_true(math.abs(ga:sum():item() - w:sum():item()) < 1e-4)
      end)
    end
  end
  it("ties go to the first maximum; a strided output gradient is read as its values", function()
    local x = dl.zeros(1, 1, 4, 4)
    local y = F.max_pool2d(x:requires_grad_(), 2)
    y:backward(dl.tensor({{{{1, 2}, {3, 4}}}}, {dtype = "float32"}):transpose(3, 4))
    local want = dl.zeros(1, 1, 4, 4)
    want[1][1][1][1], want[1][1][1][3], want[1][1][3][1], want[1][1][3][3] = 1, 3, 2, 4
    H.assert_close(x.grad, want, 0)
  end)
end)

-- batch norm then ReLU, as two ops
local function two_ops(x, rm, rv, o) return dl.batch_norm(x, rm, rv, o):relu() end

describe("dl._batch_norm_relu", function()
  for _, dtype in ipairs({"float32", "float64"}) do
    for _, shape in ipairs({{16, 5}, {6, 4, 33}, {3, 2, 1}}) do
      local label = string.format("%s [%s]", dtype, table.concat(shape, ","))
      it("training: output, running statistics and gradients equal the two ops' (" .. label .. ")", function()
        local C = shape[2]
        local x = dl.randn(shape, {dtype = dtype}) * 2 + 0.3
        local w, b = dl.rand(C, {dtype = dtype}) + 0.5, dl.randn(C, {dtype = dtype}) * 0.5
        local g = dl.randn(shape, {dtype = dtype})
        local res = {}
        for k, f in ipairs({dl._batch_norm_relu, two_ops}) do
          local xi, wi, bi = x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
          local rm, rv = dl.zeros(C, {dtype = dtype}), dl.ones(C, {dtype = dtype})
          local y = f(xi, rm, rv, {weight = wi, bias = bi, training = true, momentum = 0.3})
          y:backward(g)
          res[k] = {y, xi.grad, wi.grad, bi.grad, rm, rv}
        end
        for i = 1, 6 do H.assert_close(res[1][i], res[2][i], 0) end
        assert.is_true(res[1][1]:min():item() >= 0)
      end)
    end
    it("evaluation mode and no affine parameters (" .. dtype .. ")", function()
      local x = dl.randn(7, 3, 5, {dtype = dtype})
      local rm, rv = dl.randn(3, {dtype = dtype}), dl.rand(3, {dtype = dtype}) + 0.5
      local g = dl.randn(7, 3, 5, {dtype = dtype})
      for _, o in ipairs({{training = false}, {training = true}}) do
        local res = {}
        for k, f in ipairs({dl._batch_norm_relu, two_ops}) do
          local xi = x:clone():requires_grad_()
          local y = f(xi, rm:clone(), rv:clone(), o)
          y:backward(g)
          res[k] = {y, xi.grad}
        end
        H.assert_close(res[1][1], res[2][1], 0)
        H.assert_close(res[1][2], res[2][2], dtype == "float64" and 1e-12 or 1e-5)
      end
    end)
  end
  it("gradcheck, jvp and double backward (training and evaluation)", function()
    local F64 = {dtype = "float64"}
    dl.manual_seed(14) -- fixed draws: random points a finite difference could straddle a kink at
    for _, training in ipairs({true, false}) do
      local rm, rv = dl.randn(3, F64), dl.rand(3, F64) + 0.5
      H.check_derivatives(function(x, w, b)
        return dl._batch_norm_relu(x, rm:clone(), rv:clone(), {weight = w, bias = b, training = training})
      end, function()
        dl.manual_seed(4)
        -- values away from the ReLU's kink, where a finite difference would straddle it
        local x = dl.randn(5, 3, 4, F64)
        return {x, dl.rand(3, F64) + 0.5, dl.randn(3, F64) * 0.1}
      end)
    end
  end)
  it("under create_graph the gradient equals the two ops' and records", function()
    local F64 = {dtype = "float64"}
    local x, w, b = dl.randn(6, 2, 5, F64), dl.rand(2, F64) + 0.5, dl.randn(2, F64)
    local v = dl.randn(60, F64)
    local res = {}
    for k, f in ipairs({dl._batch_norm_relu, two_ops}) do
      local xi, wi = x:clone():requires_grad_(), w:clone():requires_grad_()
      local y = f(xi, nil, nil, {weight = wi, bias = b, training = true})
      local gx = dl.autograd.grad(dl.dot(y:reshape(-1), v), {xi}, nil, {create_graph = true})
      assert.is_true(gx.requires_grad)
      local gw = dl.autograd.grad(gx:square():sum(), {wi})
      res[k] = {gx, gw}
    end
    H.assert_close(res[1][1], res[2][1], 1e-12)
    H.assert_close(res[1][2], res[2][2], 1e-10)
  end)
  it("names itself and checks its operands as dl.batch_norm does", function()
    assert.equal("NativeBatchNormReluBackward0",
      dl._batch_norm_relu(dl.randn(4, 3):requires_grad_(), nil, nil, {training = true}).grad_fn:name())
    H.assert_error(function() dl._batch_norm_relu(dl.randn(4, 3, 2, 2), nil, nil, {training = true}) end,
      "dl._batch_norm_relu", "expected 2D or 3D input", "[4,3,2,2]")
    H.assert_error(function() dl._batch_norm_relu(dl.randn(4, 3), nil, nil, {weight = dl.ones(2)}) end,
      "dl._batch_norm_relu", "weight")
    H.assert_error(function() dl._batch_norm_relu(dl.randn(4, 3), nil, nil, {relu = true}) end,
      "dl._batch_norm_relu", "relu")
  end)
end)

-- batch norm + ReLU, then 2x2 max pooling, as separate ops
local function three_ops(x, rm, rv, o)
  local N, C = x:size(1), x:size(2)
  return F.max_pool2d(dl.batch_norm(x:reshape(N, C, -1), rm, rv, o):relu():view(x:size()), 2)
end

describe("dl._batch_norm_relu_pool", function()
  for _, dtype in ipairs({"float32", "float64"}) do
    local tol = dtype == "float64" and 1e-12 or 2e-5
    for _, shape in ipairs({{4, 3, 6, 8}, {3, 2, 7, 5}, {2, 2, 2, 2}, {5, 3, 28, 28}, {2, 4, 14, 14}, {2, 3, 3, 35},
      {1, 2, 4, 1030}}) do
      local label = string.format("%s [%s]", dtype, table.concat(shape, ","))
      it("training: output (exactly), running statistics and gradients as the three ops' (" .. label .. ")", function()
        local C = shape[2]
        local x = dl.randn(shape, {dtype = dtype}) * 2 + 0.3
        local w, b = dl.rand(C, {dtype = dtype}) + 0.5, dl.randn(C, {dtype = dtype}) * 0.5
        local gp = dl.randn(shape[1], C, shape[3] // 2, shape[4] // 2, {dtype = dtype})
        local res = {}
        for k, f in ipairs({dl._batch_norm_relu_pool, three_ops}) do
          local xi, wi, bi = x:clone():requires_grad_(), w:clone():requires_grad_(), b:clone():requires_grad_()
          local rm, rv = dl.zeros(C, {dtype = dtype}), dl.ones(C, {dtype = dtype})
          local y = f(xi, rm, rv, {weight = wi, bias = bi, training = true, momentum = 0.3})
          y:backward(gp)
          res[k] = {y, rm, rv, xi.grad, wi.grad, bi.grad}
        end
        for i = 1, 3 do H.assert_close(res[1][i], res[2][i], 0) end
        local n = shape[1] * shape[3] * shape[4]
        H.assert_close(res[1][4], res[2][4], tol)
        H.assert_close(res[1][5], res[2][5], tol * n)
        H.assert_close(res[1][6], res[2][6], tol * n)
      end)
    end
    it("ties, zeros, NaN and infinities pick the winners the pooling picks (" .. dtype .. ")", function()
      local x = dl.randn(3, 2, 6, 20, {dtype = dtype})
      x:narrow(1, 1, 1):fill_(0.25) -- every window a tie
      x[2][1][1][1], x[2][1][1][2], x[2][2][3][4] = 0 / 0, 0 / 0, 0 / 0
      x[3][1][2][2], x[3][2][5][7] = math.huge, -math.huge
      local gp = dl.randn(3, 2, 3, 10, {dtype = dtype})
      local res = {}
      -- evaluation mode (batch statistics would spread a NaN over the whole channel)
      for k, f in ipairs({dl._batch_norm_relu_pool, three_ops}) do
        local xi = x:clone():requires_grad_()
        local y = f(xi, dl.zeros(2, {dtype = dtype}) + 0.1, dl.ones(2, {dtype = dtype}) * 2, {training = false})
        y:backward(gp)
        res[k] = {y, xi.grad}
      end
      -- equal, NaN where NaN (printed alike)
      assert.equal(tostring(res[1][1]:detach()), tostring(res[2][1]:detach()))
      assert.equal(tostring(res[1][2]), tostring(res[2][2]))
      assert.is_true(res[1][2]:isnan():any():item() == false and res[1][1]:isnan():any():item())
    end)
  end
  it("keeps channels apart in training: an infinity in the next channel leaves this one's gradient alone", function()
    for _, size in ipairs({28, 14, 10}) do
      local x = dl.randn(3, 2, size, size)
      -- the first values of channel 2's planes: what a vector step past a row of channel 1 reads
      for n = 1, 3 do
        x[n][2][1][1], x[n][2][1][2], x[n][2][1][3], x[n][2][1][4] = math.huge, -math.huge, math.huge, 1
      end
      local gp = dl.randn(3, 2, size // 2, size // 2)
      local res = {}
      for k, f in ipairs({dl._batch_norm_relu_pool, three_ops}) do
        local xi, wi = x:clone():requires_grad_(), dl.ones(2):requires_grad_()
        f(xi, nil, nil, {weight = wi, training = true}):backward(gp)
        res[k] = {xi.grad:select(2, 1), wi.grad[1]}
      end
      assert.is_true(res[1][1]:isfinite():all():item(), "channel 1's gradient is finite")
      H.assert_close(res[1][1], res[2][1], 2e-5)
      H.assert_close(res[1][2], res[2][2], 2e-3)
    end
  end)
  it("gradcheck, jvp and double backward (training and evaluation)", function()
    local F64 = {dtype = "float64"}
    dl.manual_seed(15) -- fixed draws, as above
    for _, training in ipairs({true, false}) do
      local rm, rv = dl.randn(2, F64), dl.rand(2, F64) + 0.5
      H.check_derivatives(function(x, w, b)
        return dl._batch_norm_relu_pool(x, rm:clone(), rv:clone(), {weight = w, bias = b, training = training})
      end, function()
        dl.manual_seed(5)
        return {dl.randn(3, 2, 4, 5, F64), dl.rand(2, F64) + 0.5, dl.randn(2, F64) * 0.1}
      end)
    end
  end)
  it("under create_graph the gradient equals the three ops' and records", function()
    local F64 = {dtype = "float64"}
    local x, w, b = dl.randn(3, 2, 6, 4, F64), dl.rand(2, F64) + 0.5, dl.randn(2, F64)
    local v = dl.randn(3 * 2 * 3 * 2, F64)
    local res = {}
    for k, f in ipairs({dl._batch_norm_relu_pool, three_ops}) do
      local xi, wi = x:clone():requires_grad_(), w:clone():requires_grad_()
      local y = f(xi, nil, nil, {weight = wi, bias = b, training = true})
      local gx = dl.autograd.grad(dl.dot(y:reshape(-1), v), {xi}, nil, {create_graph = true})
      assert.is_true(gx.requires_grad)
      res[k] = {gx, dl.autograd.grad(gx:square():sum(), {wi})}
    end
    H.assert_close(res[1][1], res[2][1], 1e-12)
    H.assert_close(res[1][2], res[2][2], 1e-10)
  end)
  it("names itself and refuses what it cannot pool", function()
    assert.equal("NativeBatchNormReluMaxPoolBackward0",
      dl._batch_norm_relu_pool(dl.randn(2, 3, 4, 4):requires_grad_(), nil, nil, {training = true}).grad_fn:name())
    H.assert_error(function() dl._batch_norm_relu_pool(dl.randn(4, 3, 5), nil, nil, {training = true}) end,
      "dl._batch_norm_relu_pool", "4D input", "[4,3,5]")
    H.assert_error(function() dl._batch_norm_relu_pool(dl.randn(2, 3, 1, 5), nil, nil, {training = true}) end,
      "dl._batch_norm_relu_pool", "smaller than the")
    H.assert_error(function() dl._batch_norm_relu_pool(dl.randn(2, 3, 4, 4), nil, nil, {weight = dl.ones(4)}) end,
      "dl._batch_norm_relu_pool", "weight")
  end)
end)

describe("nn.Sequential's BatchNorm + ReLU fusion", function()
  local function run(net, x)
    dl.manual_seed(0)
    local xi = x:clone():requires_grad_()
    local y = net(xi)
    y:backward(dl.ones(y:size()))
    local out = {y, xi.grad}
    for _, p in ipairs(net:parameters()) do out[#out + 1] = p.grad end
    return out
  end
  it("runs BatchNorm then ReLU as one op, with the modules' values and gradients", function()
    for _, case in ipairs({
      {function() return nn.BatchNorm1d(4) end, {8, 4}},
      {function() return nn.BatchNorm2d(3) end, {4, 3, 5, 6}},
      {function() return nn.BatchNorm3d(2) end, {3, 2, 3, 2, 4}},
    }) do
      dl.manual_seed(1)
      local bn = case[1]()
      local seq = nn.Sequential(bn, nn.ReLU())
      local x = dl.randn(case[2]) * 3
      local fused = run(seq, x)
      -- the same modules one at a time
      local manual = nn.Module:extend("TwoSteps")
      function manual:init(m) self.m = m end
      function manual:forward(v) return nn.ReLU()(self.m(v)) end
      local bn2 = case[1]()
      bn2:load_state_dict(bn:state_dict())
      bn2.running_mean:zero_()
      bn2.running_var:fill_(1)
      bn2.num_batches_tracked:zero_()
      local plain = run(manual(bn2), x)
      for i = 1, #fused do H.assert_close(fused[i], plain[i], 0) end
      H.assert_close(bn.running_mean, bn2.running_mean, 0)
      H.assert_close(bn.running_var, bn2.running_var, 0)
    end
    local y = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU())(dl.randn(5, 3):requires_grad_())
    assert.equal("NativeBatchNormReluBackward0", y.grad_fn:name())
    nn.Sequential(nn.BatchNorm1d(3), nn.ReLU()):eval()(dl.randn(5, 3)) -- evaluation mode fuses too
  end)
  it("leaves a subclass, a forward of the instance's own and other activations alone", function()
    local Sub = nn.BatchNorm1d:extend("MyBN")
    function Sub:forward(x) return nn.BatchNorm1d.forward(self, x) * 2 end
    local x = dl.randn(6, 3):requires_grad_()
    local y = nn.Sequential(Sub(3), nn.ReLU())(x)
    assert.equal("ReluBackward0", y.grad_fn:name())
    H.assert_close(y, F.relu(nn.BatchNorm1d(3)(x) * 2), 1e-6)
    local bn = nn.BatchNorm1d(3)
    bn.forward = function(self, v) return nn.BatchNorm1d.forward(self, v) + 1 end
    assert.equal("ReluBackward0", nn.Sequential(bn, nn.ReLU())(x).grad_fn:name())
    local act = nn.ReLU()
    act.forward = function(_, v) return v:relu() * 3 end
    H.assert_close(nn.Sequential(nn.BatchNorm1d(3), act)(x), F.relu(nn.BatchNorm1d(3)(x)) * 3, 1e-6)
    assert.equal("LeakyReluBackward0", nn.Sequential(nn.BatchNorm1d(3), nn.LeakyReLU())(x).grad_fn:name())
  end)
  it("runs BatchNorm2d, ReLU and MaxPool2d(2) as one op; other pooling as two", function()
    local x = dl.randn(4, 3, 6, 6) * 2
    local function modules(pool) return nn.BatchNorm2d(3), nn.ReLU(), pool end
    local y = nn.Sequential(modules(nn.MaxPool2d(2)))(x:clone():requires_grad_())
    assert.equal("NativeBatchNormReluMaxPoolBackward0", y.grad_fn:name())
    H.assert_close(y, three_ops(x, nil, nil, {training = true, weight = dl.ones(3), bias = dl.zeros(3)}), 0)
    assert.equal("NativeBatchNormReluMaxPoolBackward0",
      nn.Sequential(modules(nn.MaxPool2d({2, 2}, {stride = 2, padding = 0})))(x:requires_grad_()).grad_fn:name())
    for _, pool in ipairs({nn.MaxPool2d(2, {stride = 1}), nn.MaxPool2d(3), nn.MaxPool2d(2, {padding = 1}),
      nn.MaxPool2d(2, {ceil_mode = true}), nn.MaxPool2d(2, {dilation = 2}), nn.AvgPool2d(2)}) do
      local got = nn.Sequential(modules(pool))(x)
      assert.is_true(got.grad_fn:name() ~= "NativeBatchNormReluMaxPoolBackward0", tostring(pool))
      H.assert_close(got, pool(F.relu(nn.BatchNorm2d(3)(x))), 1e-6)
    end
    local y2 = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2, {return_indices = true}))(x)
    assert.are_not.equal("NativeBatchNormReluMaxPoolBackward0", y2.grad_fn:name())
    -- an image smaller than the window: MaxPool2d's own error
    H.assert_error(function() nn.Sequential(modules(nn.MaxPool2d(2)))(dl.randn(2, 3, 1, 5)) end,
      "MaxPool2d", "smaller than the kernel")
    local _, err = pcall(function() nn.Sequential(modules(nn.MaxPool2d(2)))(dl.randn(2, 3, 1, 5)) end)
    assert.is_nil(tostring(err):find("BatchNorm2d", 1, true), "the pooling's error, not the batch norm's")
  end)
  it("names the layer in errors, as the unfused forward does", function()
    H.assert_error(function() nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())(dl.randn(2, 4, 5, 5)) end,
      "BatchNorm2d(3)", "4 channels")
    H.assert_error(function() nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())(dl.randn(2, 3, 5)) end,
      "BatchNorm2d(3)", "expected 4D input")
  end)
end)

describe("ReLU's gradient at NaN", function()
  it("passes the gradient, first order and under create_graph alike (as PyTorch's threshold_backward)", function()
    local x = dl.tensor({-1, 0 / 0, 2, 0}, {dtype = "float64"}):requires_grad_()
    local g1 = dl.autograd.grad(x:relu(), {x}, dl.tensor({1, 2, 3, 4}, {dtype = "float64"}))
    local g2 = dl.autograd.grad(x:relu(), {x}, dl.tensor({1, 2, 3, 4}, {dtype = "float64"}), {create_graph = true})
    assert.same({0, 2, 3, 0}, g1:totable())
    assert.same({0, 2, 3, 0}, g2:detach():totable())
  end)
end)

describe("batch norm's float32 kernels", function()
  it("match float64 on data far from zero, runs of any length", function()
    for _, shape in ipairs({{64, 3, 49}, {4, 2, 3000}, {7, 5, 1}, {200, 2, 17}}) do
      local x64 = dl.randn(shape, {dtype = "float64"}) * 0.5 + 1000
      local g64 = dl.randn(shape, {dtype = "float64"})
      local x32, g32 = x64:float(), g64:float()
      local w = dl.rand(shape[2], {dtype = "float64"}) + 0.5
      local res = {}
      for k, pair in ipairs({{x64, g64, w}, {x32, g32, w:float()}}) do
        local xi, wi = pair[1]:clone():requires_grad_(), pair[3]:clone():requires_grad_()
        local y = dl.batch_norm(xi, nil, nil, {weight = wi, training = true})
        y:backward(pair[2])
        res[k] = {y, xi.grad, wi.grad}
      end
      -- the float32 input is itself rounded: compare with float64 on the same rounded values
      local xr = x32:double():requires_grad_()
      local wr = w:clone():requires_grad_()
      local yr = dl.batch_norm(xr, nil, nil, {weight = wr, training = true})
      yr:backward(g32:double())
      H.assert_close(res[2][1], yr, 2e-4)
      H.assert_close(res[2][2], xr.grad, 2e-3)
      H.assert_close(res[2][3], wr.grad, 2e-3 * math.sqrt(shape[1] * shape[3]))
    end
  end)
  it("keep their precision when a channel starts with an outlier or an infinity", function()
    local x64 = dl.randn(32, 3, 49, {dtype = "float64"})
    x64[1][1][1], x64[1][2][1] = 1e6, math.huge
    local y32 = dl.batch_norm(x64:float(), nil, nil, {training = true})
    local y64 = dl.batch_norm(x64:float():double(), nil, nil, {training = true})
    H.assert_close(y32:select(2, 1), y64:select(2, 1), 1e-5)
    H.assert_close(y32:select(2, 3), y64:select(2, 3), 1e-5)
    assert.is_true(y32:select(2, 2):isnan():all():item()) -- an infinity in the channel: NaN, as in float64
    assert.is_true(y64:select(2, 2):isnan():all():item())
  end)
end)
