-- The convolution block (dl._conv_block: a 2-D convolution, batch norm with
-- the batch statistics, a ReLU and optionally 2x2 max pooling as one op,
-- what nn.Sequential runs for Conv2d, BatchNorm2d, ReLU and MaxPool2d(2))
-- against the layers run one by one: output, running statistics, every
-- gradient, gradients under create_graph; its derivatives in the
-- gradcheck/jvp rows; nn.Sequential's fusion and where it steps aside.
-- Where the CPU computes the convolution in blocks of 16 channels (oneDNN
-- on AVX-512) the op keeps its output in them between the two layers
-- (ops/dl_conv_block.h); elsewhere it runs the layers one by one.
local dl = require "dlua"
local H = require "spec.helper"
local nn, F = dl.nn, dl.F

local FUSED = {ConvolutionBatchNormReluBackward0 = true, ConvolutionBatchNormReluMaxPoolBackward0 = true}

-- whether this CPU has AVX-512 (oneDNN's blocks of 16 channels)
local function has_avx512()
  local f = io.open("/proc/cpuinfo")
  if not f then return false end
  local s = f:read("a")
  f:close()
  return s:find("avx512f", 1, true) ~= nil
end

-- the layers one by one, as dl._conv_block's arguments
local function one_by_one(x, w, b, copts, bw, bb, rm, rv, o)
  local y = dl.convolution(x, w, b, copts)
  local N, C = y:size(1), y:size(2)
  local z = dl.batch_norm(y:reshape(N, C, -1), rm, rv, {weight = bw, bias = bb, training = true,
    momentum = o.momentum, eps = o.eps}):view(y:size()):relu()
  return o.pool and F.max_pool2d(z, 2) or z
end

-- output, running statistics and gradients of f on fresh leaves
local function run(f, args, g)
  local a = {}
  for i = 1, 6 do a[i] = args[i] and (type(args[i]) == "table" and args[i] or args[i]:clone():requires_grad_()) end
  local C = args[2]:size(1)
  local rm, rv = dl.zeros(C), dl.ones(C)
  local y = f(a[1], a[2], a[3], a[4], a[5], a[6], rm, rv, args[7])
  y:backward(g)
  return {y = y, rm = rm, rv = rv, gx = a[1].grad, gw = a[2].grad, gb = a[3] and a[3].grad,
    gbw = a[5] and a[5].grad, gbb = a[6] and a[6].grad}
end

describe("dl._conv_block", function()
  local cases = {
    -- N, C, O, H, W, conv options, conv bias, affine, pool
    {"the CNN demo's first block", 8, 1, 32, 28, 28, {padding = 1}, true, true, true},
    {"the demo's second block", 6, 32, 64, 14, 14, {padding = 1}, true, true, true},
    {"the demo's third block (no pooling)", 6, 64, 64, 7, 7, {padding = 1}, true, true, false},
    {"odd sizes (a last row and column no window covers)", 4, 16, 32, 9, 11, {padding = 1}, false, true, true},
    {"no affine parameters, no conv bias", 3, 16, 16, 8, 6, {padding = 1}, false, false, false},
    {"stride 2, padding 2, dilation 2", 3, 16, 32, 13, 12, {stride = 2, padding = 2, dilation = 2}, true, true, true},
    {"channels not a multiple of 16 (layer by layer)", 3, 5, 24, 8, 8, {padding = 1}, true, true, true},
    {"a 2x2 output (one window)", 5, 16, 16, 4, 4, {padding = 0}, true, true, true},
  }
  for _, c in ipairs(cases) do
    local label, N, C, O, Hh, W, copts, cbias, affine, pool = table.unpack(c)
    it(label .. ": output, running statistics and gradients as the layers one by one", function()
      dl.manual_seed(3)
      local x = dl.randn(N, C, Hh, W) * 1.5 + 0.2
      local w = dl.randn(O, C, 3, 3) * (1 / math.sqrt(9 * C))
      local b = cbias and dl.randn(O) * 0.1 or nil
      local bw, bb = affine and dl.rand(O) + 0.5 or nil, affine and dl.randn(O) * 0.3 or nil
      local o = {momentum = 0.3, eps = 1e-5, pool = pool}
      local args = {x, w, b, copts, bw, bb, o}
      local y0 = dl.no_grad(one_by_one, x, w, b, copts, bw, bb, nil, nil, o)
      local g = dl.randn(y0:size())
      local A, B = run(dl._conv_block, args, g), run(one_by_one, args, g)
      H.assert_close(A.y, B.y, 1e-5)
      H.assert_close(A.rm, B.rm, 1e-6)
      H.assert_close(A.rv, B.rv, 1e-5)
      local n = N * y0:numel() // (N * O)
      H.assert_close(A.gx, B.gx, 1e-4)
      H.assert_close(A.gw, B.gw, 1e-4 * math.sqrt(n))
      if b then H.assert_close(A.gb, B.gb, 1e-4 * math.sqrt(n)) end
      if affine then
        H.assert_close(A.gbw, B.gbw, 1e-4 * math.sqrt(n))
        H.assert_close(A.gbb, B.gbb, 1e-4 * math.sqrt(n))
      end
      local name = A.y.grad_fn:name()
      assert.is_true(FUSED[name] or name == (pool and "NativeBatchNormReluMaxPoolBackward0" or "ViewBackward0"), name)
      if C == 5 then assert.is_nil(FUSED[name], "5 channels run layer by layer") end
    end)
  end

  it("runs the CNN demo's blocks over blocked channels where the CPU has AVX-512", function()
    if not has_avx512() then
      pending("no AVX-512 here: oneDNN computes in blocks of 8 channels, the layers run one by one")
      return
    end
    local cases = {{1, 32, 28, true}, {32, 64, 14, true}, {64, 64, 7, false}}
    for _, c in ipairs(cases) do
      local C, O, S, pool = table.unpack(c)
      local y = dl._conv_block(dl.randn(4, C, S, S), dl.randn(O, C, 3, 3):requires_grad_(), nil, {padding = 1}, nil,
        nil, nil, nil, {pool = pool})
      assert.equal(pool and "ConvolutionBatchNormReluMaxPoolBackward0" or "ConvolutionBatchNormReluBackward0",
        y.grad_fn:name())
    end
  end)

  it("float32 statistics hold against float64 for data far from zero with an odd first image or column", function()
    -- an identity convolution (exact in float32), so the batch norm's inputs are x itself: 10 + 0.01 noise,
    -- the first image (batch 8), or every image's first column (batch 64), 5 standard deviations off the rest
    local C = 16
    local w = dl.zeros(C, C, 3, 3)
    for c = 1, C do w[c][c][2][2] = 1 end
    for _, pool in ipairs({true, false, "column"}) do
      local x
      if pool == "column" then
        x = dl.randn(64, C, 8, 8) * 0.01 + 10
        x:narrow(4, 1, 1):add_(0.05)
        pool = false
      else
        x = dl.randn(8, C, 8, 8) * 0.01 + 10
        x:narrow(1, 1, 1):add_(0.05)
      end
      local o = {pool = pool, momentum = 1}
      local rm, rv = dl.zeros(C), dl.ones(C)
      local y = dl._conv_block(x, w:requires_grad_(), nil, {padding = 1}, nil, nil, rm, rv, o)
      local rm64, rv64 = dl.zeros(C, {dtype = "float64"}), dl.ones(C, {dtype = "float64"})
      local ref = dl.no_grad(one_by_one, x:double(), w:detach():double(), nil, {padding = 1}, nil, nil, rm64, rv64, o)
      H.assert_close(y:double(), ref, 2e-4)
      H.assert_close(rm:double(), rm64, 1e-4)
      H.assert_close(rv:double() / rv64, dl.ones(C, {dtype = "float64"}), 1e-4)
    end
  end)

  it("a bias that needs no gradient, an input that needs none: the other gradients as the layers'", function()
    dl.manual_seed(8)
    local x, w, b = dl.randn(4, 32, 10, 10), dl.randn(32, 32, 3, 3) * 0.06, dl.randn(32) * 0.1
    local g = dl.randn(4, 32, 5, 5)
    local res = {}
    for k, f in ipairs({dl._conv_block, one_by_one}) do
      local wi, bwi = w:clone():requires_grad_(), dl.ones(32):requires_grad_()
      local y = f(x, wi, b, {padding = 1}, bwi, nil, nil, nil, {pool = true})
      if k == 1 then assert.equal("ConvolutionBatchNormReluMaxPoolBackward0", y.grad_fn:name()) end
      y:backward(g)
      res[k] = {y, wi.grad, bwi.grad}
    end
    H.assert_close(res[1][1], res[2][1], 1e-5)
    H.assert_close(res[1][2], res[2][2], 1e-3)
    H.assert_close(res[1][3], res[2][3], 1e-3)
  end)

  it("ties and a zero variance pick the pooling's winners", function()
    -- a constant image: each channel constant, normalised to its bias; every window a tie
    local x, w = dl.ones(3, 16, 6, 8), dl.randn(16, 16, 3, 3) * 0.1
    local bb = dl.randn(16)
    local g = dl.randn(3, 16, 2, 3)
    local A = run(dl._conv_block, {x, w, nil, {padding = 0}, nil, bb, {pool = true}}, g)
    local B = run(one_by_one, {x, w, nil, {padding = 0}, nil, bb, {pool = true}}, g)
    H.assert_close(A.y, B.y, 1e-6)
    H.assert_close(A.gx, B.gx, 1e-4)
    H.assert_close(A.gbb, B.gbb, 1e-5)
  end)

  it("under create_graph its gradients equal the layers' and record second derivatives", function()
    dl.manual_seed(4)
    local x, w, b = dl.randn(3, 16, 6, 6), dl.randn(16, 16, 3, 3) * 0.1, dl.randn(16) * 0.1
    local bw, bb = dl.rand(16) + 0.5, dl.randn(16)
    for _, pool in ipairs({true, false}) do
      local o = {pool = pool}
      local v = dl.randn(dl.no_grad(one_by_one, x, w, b, {padding = 1}, bw, bb, nil, nil, o):numel())
      local res = {}
      for k, f in ipairs({dl._conv_block, one_by_one}) do
        local xi, wi, bwi = x:clone():requires_grad_(), w:clone():requires_grad_(), bw:clone():requires_grad_()
        -- x's gradient depends on x through a path before the block (its square)
        local x2 = xi * xi
        local y = f(x2, wi, b, {padding = 1}, bwi, bb, nil, nil, o)
        local gx, gw = dl.autograd.grad(dl.dot(y:reshape(-1), v), {xi, wi}, nil, {create_graph = true})
        assert.is_true(gx.requires_grad and gw.requires_grad)
        local s = gx:square():sum() + gw:square():sum()
        res[k] = {gx, gw, table.pack(dl.autograd.grad(s, {xi, wi, bwi}))}
      end
      H.assert_close(res[1][1], res[2][1], 1e-4)
      H.assert_close(res[1][2], res[2][2], 1e-4)
      for i = 1, 3 do H.assert_close(res[1][3][i], res[2][3][i], 1e-3) end
    end
  end)

  it("gradcheck, jvp and double backward (float64: the layers one by one)", function()
    local F64 = {dtype = "float64"}
    for _, pool in ipairs({true, false}) do
      H.check_derivatives(function(x, w, b, bw, bb)
        return dl._conv_block(x, w, b, {padding = 1}, bw, bb, nil, nil, {pool = pool})
      end, function()
        dl.manual_seed(6)
        return {dl.randn(2, 2, 4, 5, F64), dl.randn(3, 2, 3, 3, F64), dl.randn(3, F64), dl.rand(3, F64) + 0.5,
          dl.randn(3, F64) * 0.1}
      end)
    end
  end)

  it("forward mode: tangents run the layers one by one and give their jvp", function()
    local x, w = dl.randn(2, 16, 6, 6), dl.randn(16, 16, 3, 3) * 0.1
    local tx, tw = dl.randn(2, 16, 6, 6), dl.randn(16, 16, 3, 3)
    local res = {}
    for k, f in ipairs({dl._conv_block, one_by_one}) do
      local _, t = dl.autograd.jvp(function(xi, wi)
        return f(xi, wi, nil, {padding = 1}, nil, nil, nil, nil, {pool = true})
      end, {x, w}, {tx, tw})
      res[k] = t
    end
    H.assert_close(res[1], res[2], 1e-5)
  end)

  it("names the convolution and both shapes in its errors", function()
    H.assert_error(function() dl._conv_block(dl.randn(2, 3, 8, 8), dl.randn(16, 4, 3, 3), nil, {}) end,
      "dl._conv_block", "[2,3,8,8]", "[16,4,3,3]")
    H.assert_error(function() dl._conv_block(dl.randn(2, 16, 2, 2), dl.randn(16, 16, 3, 3), nil, {}) end,
      "dl._conv_block", "[2,16,2,2]")
    H.assert_error(function()
      dl._conv_block(dl.randn(2, 16, 4, 4), dl.randn(16, 16, 3, 3), nil, {}, nil, nil, dl.zeros(16))
    end, "dl._conv_block", "running_mean and running_var")
    H.assert_error(function()
      dl._conv_block(dl.randn(2, 16, 4, 4), dl.randn(16, 16, 3, 3), nil, {padding = 1}, dl.ones(8))
    end, "dl._conv_block", "weight", "[8]")
    H.assert_error(function() dl._conv_block(dl.randn(2, 16, 4, 4), dl.randn(16, 16, 3, 3), nil, {}, nil, nil, nil,
      nil, {eps = -1}) end, "eps")
  end)
end)

describe("nn.Sequential's Conv2d + BatchNorm2d + ReLU (+ MaxPool2d) fusion", function()
  local function demo(extra)
    dl.manual_seed(0)
    return nn.Sequential(
      nn.Conv2d(1, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 3, {padding = 1}), nn.BatchNorm2d(64, extra), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(64, 64, 3, {padding = 1}), nn.BatchNorm2d(64), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 3 * 3, 10))
  end
  -- the modules one by one
  local function by_hand(net, x)
    for i = 1, #net do x = net[i](x) end
    return x
  end
  local function train_once(net, f, x)
    local y = f(net, x)
    y:backward(dl.ones(y:size()))
    local out = {y}
    for _, p in ipairs(net:parameters()) do out[#out + 1] = p.grad end
    for _, t in ipairs(net:buffers()) do out[#out + 1] = t end
    return out
  end

  for _, extra in ipairs({{}, {track_running_stats = false}, {momentum = false}}) do
    local label = next(extra) and (next(extra) .. " = " .. tostring(extra[next(extra)])) or "defaults"
    it("trains as the modules one by one (" .. label .. ")", function()
      local x = dl.randn(6, 1, 12, 12)
      local A = train_once(demo(extra), function(net, xi) return net(xi) end, x)
      local B = train_once(demo(extra), by_hand, x)
      assert.equal(#A, #B)
      for i = 1, #A do H.assert_close(A[i], B[i], 2e-4) end
    end)
  end

  it("evaluation mode runs the modules one by one and gives their output", function()
    local net = demo()
    net(dl.randn(6, 1, 12, 12))
    net:eval()
    local x = dl.randn(3, 1, 12, 12)
    H.assert_close(net(x), by_hand(net, x), 0)
  end)

  it("steps aside for a subclass, other padding modes, an unbatched input and a small image", function()
    local Sub = nn.Conv2d:extend("MyConv")
    local reflect = nn.Conv2d(3, 16, 3, {padding = 1, padding_mode = "reflect"})
    for _, conv in ipairs({Sub(3, 16, 3, {padding = 1}), reflect}) do
      local net = nn.Sequential(conv, nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
      local y = net(dl.randn(2, 3, 6, 6):requires_grad_())
      assert.equal("NativeBatchNormReluMaxPoolBackward0", y.grad_fn:name())
    end
    local net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
    -- a 3x3 image convolves to 1x1: MaxPool2d's own error
    H.assert_error(function() net(dl.randn(2, 3, 3, 3)) end, "MaxPool2d")
    -- unbatched: BatchNorm2d's own error, as module by module
    H.assert_error(function() net(dl.randn(3, 6, 6)) end, "BatchNorm2d(16)", "4D")
  end)

  it("a channel mismatch gets the modules' own errors", function()
    local net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(32), nn.ReLU())
    H.assert_error(function() net(dl.randn(2, 3, 6, 6)) end, "BatchNorm2d(32)", "16 channels")
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU())
    H.assert_error(function() net(dl.randn(2, 4, 6, 6)) end, "Conv2d(3, 16)", "[2,4,6,6]", "[16,3,3,3]")
  end)
end)
