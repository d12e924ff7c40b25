-- Convolution, pooling, unfold/fold and BatchNorm2d: values and gradients
-- against PyTorch (spec/fixtures/conv_reference.py -> conv_reference.lua,
-- float64), gradcheck / jvp / double backward of the window ops and of the
-- layers built on them, the modules, and bad input.
local dl = require "dlua"
local H = require "spec.helper"
local ref = require "spec.fixtures.conv_reference"
local nn, F, A = dl.nn, dl.nn.functional, dl.autograd

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end

local function tensor(t) return dl.tensor(t.values, F64):view(t.shape):requires_grad_() end

local close = H.assert_pytorch

local function run_case(c, call)
  local ins = {}
  for i = 1, 3 do if c["in" .. i] then ins[i] = tensor(c["in" .. i]) end end
  local out, idx = call(ins)
  assert.same(c.out.shape, out:size())
  close(out, c.out.values, c.fn .. " output")
  local gout = dl.tensor(c.gout, F64):view(c.out.shape)
  local grads = {A.grad(out, ins, gout)}
  for i = 1, #ins do close(grads[i], c["in" .. i].grad, c.fn .. " grad of input " .. i) end
  if c.indices then
    local want = {}
    for i, v in ipairs(c.indices) do want[i] = v + 1 end -- PyTorch's are 0-based
    assert.equal("int64", idx.dtype)
    close(idx, want, c.fn .. " indices")
  end
end

describe("against PyTorch", function()
  for i, c in ipairs(ref.conv) do
    it(string.format("%s #%d", c.fn, i), function()
      run_case(c, function(ins) return F[c.fn](ins[1], ins[2], ins[3], c.opts) end)
    end)
  end
  for i, c in ipairs(ref.pool) do
    it(string.format("%s #%d", c.fn, i), function()
      run_case(c, function(ins) return F[c.fn](ins[1], c.kernel, c.opts) end)
    end)
  end
  local misc = {
    conv_transpose2d = function(i) return F.conv_transpose2d(i[1], i[2], i[3], {stride = 2, padding = 1, output_padding = 1}) end,
    conv_transpose1d = function(i) return F.conv_transpose1d(i[1], i[2], nil, {stride = 2, padding = 2, groups = 2, dilation = 2}) end,
    pad_constant = function(i) return F.pad(i[1], {1, 2, 2, 1}, {value = 0.5}) end,
    pad_reflect = function(i) return F.pad(i[1], {1, 2, 2, 1}, {mode = "reflect"}) end,
    pad_replicate = function(i) return F.pad(i[1], {1, 2, 2, 1}, {mode = "replicate"}) end,
    pad_circular = function(i) return F.pad(i[1], {1, 2, 2, 1}, {mode = "circular"}) end,
    interpolate_bilinear = function(i) return F.interpolate(i[1], {size = {5, 7}, mode = "bilinear", align_corners = false}) end,
    interpolate_bilinear_corners = function(i)
      return F.interpolate(i[1], {size = {5, 7}, mode = "bilinear", align_corners = true})
    end,
    interpolate_nearest = function(i) return F.interpolate(i[1], {scale_factor = 2}) end,
    interpolate_linear = function(i) return F.interpolate(i[1], {scale_factor = 1.5, mode = "linear"}) end,
    adaptive_avg_pool2d = function(i) return F.adaptive_avg_pool2d(i[1], {3, 2}) end,
    adaptive_max_pool2d = function(i) return F.adaptive_max_pool2d(i[1], {3, 4}) end,
    adaptive_avg_pool1d = function(i) return F.adaptive_avg_pool1d(i[1], 4) end,
    conv_transpose3d = function(i)
      return F.conv_transpose3d(i[1], i[2], i[3], {stride = {2, 1, 1}, padding = {0, 1, 0}})
    end,
    max_pool3d = function(i) return F.max_pool3d(i[1], 2, {stride = {1, 2, 2}, padding = 1}) end,
    avg_pool3d = function(i) return F.avg_pool3d(i[1], {2, 3, 2}, {stride = 2, padding = 1, count_include_pad = false}) end,
    adaptive_max_pool1d = function(i) return F.adaptive_max_pool1d(i[1], 3) end,
    interpolate_trilinear = function(i) return F.interpolate(i[1], {size = {3, 4, 5}, mode = "trilinear"}) end,
    instance_norm1d = function(i) return nn.InstanceNorm1d(3, {dtype = "float64"})(i[1]) end,
    pixel_shuffle = function(i) return F.pixel_shuffle(i[1], 2) end,
    pixel_unshuffle = function(i) return F.pixel_unshuffle(i[1], 2) end,
    adaptive_max_pool2d_indices = function(i) return F.adaptive_max_pool2d(i[1], {3, 4}, {return_indices = true}) end,
    adaptive_max_pool2d_ties = function(i) return nn.AdaptiveMaxPool2d({2, 3}, {return_indices = true})(i[1]) end,
    adaptive_max_pool1d_indices = function(i) return F.adaptive_max_pool1d(i[1], 3, {return_indices = true}) end,
  }
  for _, c in ipairs(ref.misc) do
    it(c.fn, function() run_case(c, misc[c.fn]) end)
  end
  it("unfold", function()
    local c = ref.unfold[1]
    run_case(c, function(ins) return F.unfold(ins[1], c.kernel, c.opts) end)
  end)
  it("fold", function()
    local c = ref.fold[1]
    run_case(c, function(ins) return F.fold(ins[1], c.output_size, c.kernel, c.opts) end)
  end)
  it("BatchNorm2d in training mode", function()
    local c = ref.batch_norm2d[1]
    run_case(c, function(ins)
      local m = nn.BatchNorm2d(3, F64)
      -- the module's parameters are the fixture's inputs 2 and 3
      m.weight, m.bias = nn.Parameter(ins[2]), nn.Parameter(ins[3])
      ins[2], ins[3] = m.weight, m.bias
      return m(ins[1])
    end)
  end)
end)

-- the window ops and layers built on them, under autograd
local cases = require "spec.gradcheck.conv"
local variants = {
  ["conv2d with groups, stride, dilation and bias"] = {
    fn = function(x, w, b) return F.conv2d(x, w, b, {stride = {2, 1}, dilation = 2, padding = 2, groups = 2}) end,
    inputs = function() return {r(2, 4, 6, 5), r(4, 2, 2, 3), r(4)} end,
  },
  ["conv1d 'same'"] = {
    fn = function(x, w) return F.conv1d(x, w, nil, {padding = "same"}) end,
    inputs = function() return {r(2, 3, 6), r(2, 3, 4)} end,
  },
  ["max_pool2d with padding and ceil mode (distinct values)"] = {
    fn = function(x) return F.max_pool2d(x, 3, {stride = 2, padding = 1, ceil_mode = true}) end,
    inputs = function() return {dl.randperm(50):double():view(1, 2, 5, 5) * 0.1} end,
  },
  ["conv_transpose2d with groups and output padding"] = {
    fn = function(x, w, b) return F.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1, groups = 2}) end,
    inputs = function() return {r(2, 4, 3, 2), r(4, 1, 3, 2), r(2)} end,
  },
  ["pad reflect then replicate"] = {
    fn = function(x) return F.pad(F.pad(x, {2, 1}, {mode = "reflect"}), {1, 1, 0, 2}, {mode = "replicate"}) end,
    inputs = function() return {r(1, 2, 3, 4)} end,
  },
  ["interpolate bilinear"] = {
    fn = function(x) return F.interpolate(x, {size = {4, 5}, mode = "bilinear"}) end,
    inputs = function() return {r(1, 2, 3, 3)} end,
  },
  ["adaptive_avg_pool2d, uneven windows"] = {
    fn = function(x) return F.adaptive_avg_pool2d(x, {2, 3}) end,
    inputs = function() return {r(2, 2, 5, 4)} end,
  },
  ["max_pool3d, pixel shuffle and nearest upsampling"] = {
    fn = function(x)
      local y = F.interpolate(F.max_pool3d(x, 2, {stride = 1}):squeeze(1), {scale_factor = 2})
      return F.pixel_unshuffle(F.pixel_shuffle(y:reshape(1, 8, 3, 4), 2), 2)
    end,
    inputs = function() return {dl.randperm(60):double():view(1, 1, 3, 4, 5) * 0.1} end,
  },
  ["instance norm, dropout2d (a fixed mask) and adaptive max pooling"] = {
    fn = function(x)
      dl.manual_seed(5)
      return F.adaptive_max_pool2d(F.dropout2d(nn.InstanceNorm2d(2, F64)(x), 0.3), {2, 1})
    end,
    inputs = function() return {dl.randperm(40):double():view(2, 2, 5, 2) * 0.1} end,
  },
  ["avg_pool2d without the padding in the count"] = {
    fn = function(x) return F.avg_pool2d(x, 3, {stride = 2, padding = 1, count_include_pad = false}) end,
    inputs = function() return {r(2, 2, 5, 4)} end,
  },
}
local function leaves(ins)
  for _, x in ipairs(ins) do x:requires_grad_() end
  return ins
end
for _, set in ipairs({{"window ops", cases}, {"layers on them", variants}}) do
  local title, tbl = set[1], set[2]
  describe(title, function()
    for i, name in ipairs(H.sorted_keys(tbl)) do
      it(name .. ": gradcheck, jvp and double backward", function()
        dl.manual_seed(800 + i)
        assert.is_true(A.gradcheck(tbl[name].fn, leaves(tbl[name].inputs())))
        H.check_jvp(tbl[name].fn, tbl[name].inputs())
        local ins = leaves(tbl[name].inputs())
        local w = r(dl.no_grad(tbl[name].fn, table.unpack(ins)):numel())
        assert.is_true(A.gradcheck(H.grad_of(tbl[name].fn, w), ins))
      end)
    end
  end)
end

describe("the window ops", function()
  it("are named as their nodes say", function()
    local x = r(1, 1, 3, 3):requires_grad_()
    local c = dl.im2col(x, 2)
    assert.equal("Im2ColBackward0", c.grad_fn:name())
    assert.equal("Col2ImBackward0", dl.col2im(c, {3, 3}, 2).grad_fn:name())
  end)
  it("max pooling's padding never wins, and its gradient goes to the first maximum", function()
    local x = dl.full({1, 1, 2, 2}, -5.0, F64):requires_grad_()
    local y = F.max_pool2d(x, 2, {padding = 1})
    assert.same({-5, -5, -5, -5}, H.flat(y))
    y:sum():backward()
    assert.same({1, 1, 1, 1}, H.flat(x.grad))
  end)
  -- 2x2 windows of stride 2 take a row kernel (vectorised for float32, 8
  -- windows a step, the last few from the next rows or a padded copy):
  -- checked window by window against a plain loop over the taps, with rows
  -- of 3, 7, 8, 14 and 17 windows, odd sizes, padding and NaNs
  it("the 2x2 stride-2 row path: maxima, first-maximum indices and NaNs as the taps say", function()
    dl.manual_seed(11)
    for _, dtype in ipairs{"float32", "float64"} do
      for _, c in ipairs{{2, 3, 6, 6, 0}, {3, 2, 14, 14, 0}, {2, 2, 16, 16, 0}, {1, 2, 28, 28, 1},
                         {2, 1, 9, 35, 0}, {1, 1, 5, 33, 1}} do
        local N, C, Hh, W, pad = table.unpack(c)
        local x = dl.randn({N, C, Hh, W}, {dtype = dtype}):mul(4):round() -- ties: the first maximum wins
        x = dl.where(dl.rand({N, C, Hh, W}):lt(0.02), dl.full({N, C, Hh, W}, 0 / 0, {dtype = dtype}), x)
        local y, idx = F.max_pool2d(x, 2, {padding = pad, return_indices = true})
        local xs, ys, is = H.flat(x), H.flat(y), H.flat(idx)
        local OH, OW = y:size(3), y:size(4)
        for p = 0, N * C - 1 do
          for oh = 0, OH - 1 do
            for ow = 0, OW - 1 do
              local best, at, seen_nan
              for kh = 0, 1 do
                for kw = 0, 1 do
                  local h, w = 2 * oh - pad + kh, 2 * ow - pad + kw
                  if h >= 0 and h < Hh and w >= 0 and w < W then
                    local i = h * W + w + 1
                    local v = xs[p * Hh * W + i]
                    if v ~= v then best, at, seen_nan = v, i, true -- PyTorch: the last NaN
                    elseif not seen_nan and (best == nil or v > best) then best, at = v, i end
                  end
                end
              end
              local o = p * OH * OW + oh * OW + ow + 1
              local what = string.format("%s %s window %d (%d, %d)", dtype, table.concat(c, "x"), p, oh, ow)
              assert.equal(at, is[o], what .. " index")
              if best ~= best then assert(ys[o] ~= ys[o], what .. ": NaN expected")
              else assert.equal(best, ys[o], what) end
            end
          end
        end
      end
    end
  end)
end)

describe("modules", function()
  it("Conv2d has PyTorch's parameter layout, initialisation bound and repr", function()
    dl.manual_seed(1)
    local m = nn.Conv2d(4, 6, {3, 5}, {stride = 2, padding = 1, groups = 2})
    assert.same({6, 2, 3, 5}, m.weight:size())
    assert.same({6}, m.bias:size())
    local bound = 1 / math.sqrt(2 * 3 * 5)
    assert.is_true(m.weight:abs():max():item() <= bound)
    assert.same({"weight", "bias"}, nn.state_dict_keys(m:state_dict()))
    assert.equal("Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), groups=2)", tostring(m))
    assert.same({2, 6, 4, 2}, m(dl.randn(2, 4, 8, 6)):size())
    assert.same({6, 4, 2}, m(dl.randn(4, 8, 6)):size()) -- unbatched
  end)
  it("Conv1d, Conv3d and the pooling modules", function()
    assert.same({2, 5, 8}, nn.Conv1d(3, 5, 3, {padding = "same"})(dl.randn(2, 3, 8)):size())
    assert.same({1, 2, 3, 3, 3}, nn.Conv3d(1, 2, 2)(dl.randn(1, 1, 4, 4, 4)):size())
    assert.same({2, 3, 4, 4}, nn.MaxPool2d(2)(dl.randn(2, 3, 8, 9)):size())
    assert.same({2, 3, 5, 5}, nn.MaxPool2d(2, {ceil_mode = true})(dl.randn(2, 3, 9, 9)):size())
    assert.same({2, 3, 3}, nn.AvgPool1d(3)(dl.randn(2, 3, 10)):size())
    assert.equal("MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)",
      tostring(nn.MaxPool2d(2)))
    assert.same({1, 12, 6}, nn.Unfold(2, {stride = 2})(dl.randn(1, 3, 4, 6)):size())
    assert.same({1, 3, 4, 6}, nn.Fold({4, 6}, 2, {stride = 2})(dl.randn(1, 12, 6)):size())
  end)
  it("BatchNorm2d normalises each channel over N, H and W and keeps running statistics", function()
    local m = nn.BatchNorm2d(3, F64)
    local x = r(4, 3, 5, 2) * 2 + 1
    local y = m(x)
    local per = y:transpose(1, 2):reshape(3, -1)
    H.assert_close(per:mean(2), {0, 0, 0}, 1e-12)
    H.assert_close(m.running_mean, x:transpose(1, 2):reshape(3, -1):mean(2) * 0.1, 1e-12)
    m:eval()
    assert.same({4, 3, 5, 2}, m(x):size())
  end)
  it("a small CNN trains: the loss falls", function()
    dl.manual_seed(2)
    local net = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    local x = dl.randn(16, 1, 8, 8)
    local y = x:mean({2, 3, 4}):gt(0):long() + 1
    local opt = dl.optim.Adam(net:parameters(), {lr = 0.05})
    local first, last
    for step = 1, 30 do
      opt:zero_grad()
      local loss = F.cross_entropy(net(x), y)
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < first * 0.5, string.format("loss %g -> %g", first, last))
  end)
end)

describe("transposed convolution, padding modes, resizing, pixel shuffle", function()
  it("modules have PyTorch's layouts and shapes", function()
    local m = nn.ConvTranspose2d(4, 6, 3, {stride = 2, padding = 1, output_padding = 1, groups = 2})
    assert.same({4, 3, 3, 3}, m.weight:size())
    assert.equal("ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), groups=2)",
      tostring(m))
    assert.same({2, 6, 10, 8}, m(dl.randn(2, 4, 5, 4)):size())
    -- a convolution's adjoint: <conv(x), y> = <x, conv_transpose(y)>
    local x, y, w = r(1, 3, 6, 5), r(1, 2, 3, 2), r(2, 3, 2, 2)
    local lhs = (F.conv2d(x, w, nil, {stride = 2}) * y):sum():item()
    local rhs = (x * F.conv_transpose2d(y, w, nil, {stride = 2, output_padding = {0, 1}})):sum():item()
    assert.is_true(math.abs(lhs - rhs) < 1e-10)
    local c = nn.Conv2d(2, 3, 3, {padding = 1, padding_mode = "circular"})
    assert.equal("Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), padding_mode=circular)", tostring(c))
    local xi = dl.randn(1, 2, 5, 5)
    H.assert_close(c(xi), F.conv2d(F.pad(xi, {1, 1, 1, 1}, {mode = "circular"}), c.weight, c.bias), 1e-6)
    assert.same({3, 5, 5}, c(dl.randn(2, 5, 5)):size()) -- unbatched
    assert.equal("Upsample(scale_factor=2.0, mode='nearest')", tostring(nn.Upsample({scale_factor = 2})))
    assert.same({1, 2, 6, 8}, nn.Upsample({scale_factor = 2})(dl.randn(1, 2, 3, 4)):size())
    assert.same({1, 2, 6, 4}, nn.PixelShuffle(2)(dl.randn(1, 8, 3, 2)):size())
    assert.same({1, 8, 3, 2}, nn.PixelUnshuffle(2)(dl.randn(1, 2, 6, 4)):size())
    assert.same({2, 3, 1, 1}, nn.AdaptiveAvgPool2d(1)(dl.randn(2, 3, 7, 5)):size())
    assert.same({3, 2, 2}, nn.AdaptiveMaxPool2d(2)(dl.randn(3, 5, 4)):size())
  end)
  it("refuse bad input, naming the function", function()
    H.assert_error(function() F.pad(dl.randn(1, 2, 3), {3, 0}, {mode = "reflect"}) end, "dl.F.pad", "smaller than the size 3")
    H.assert_error(function() F.pad(dl.randn(2, 3), {1}) end, "dl.F.pad", "pairs")
    H.assert_error(function() F.pad(dl.randn(2, 3), {1, 1}, {mode = "wrap"}) end, "dl.F.pad", "mode must be")
    H.assert_error(function() F.interpolate(dl.randn(1, 2, 3, 3)) end, "dl.F.interpolate", "exactly one of size")
    H.assert_error(function() F.interpolate(dl.randn(1, 2, 3), {size = 4, mode = "bilinear"}) end, "does not fit")
    H.assert_error(function() F.pixel_shuffle(dl.randn(1, 6, 2, 2), 2) end, "dl.F.pixel_shuffle", "not divisible by 4")
    H.assert_error(function() F.conv_transpose2d(dl.randn(1, 3, 4, 4), dl.randn(2, 3, 3, 3)) end,
      "dl.F.conv_transpose2d", "3 channels")
    H.assert_error(function() nn.ConvTranspose2d(2, 2, 3, {stride = 2, output_padding = 2}) (dl.randn(1, 2, 4, 4)) end,
      "ConvTranspose2d(2, 2)", "output_padding")
    H.assert_error(function() nn.Conv2d(2, 2, 3, {padding_mode = "mirror"}) end, "dl.nn.Conv2d", "padding_mode")
  end)
end)

describe("bad input", function()
  local x = dl.randn(2, 3, 5, 5)
  it("names the layer and both shapes", function()
    H.assert_error(function() nn.Conv2d(4, 2, 3)(x) end, "Conv2d(4, 2)", "[2,3,5,5]", "3 channels", "[2,4,3,3]")
    H.assert_error(function() nn.Conv2d(3, 2, 7)(x) end, "Conv2d(3, 2)", "smaller than the kernel")
    H.assert_error(function() nn.Conv2d(3, 2, 3, {dilation = 3})(x) end, "smaller than the kernel", "dilated: 7")
    H.assert_error(function() nn.Conv2d(3, 2, 3)(dl.randn(5, 5)) end, "Conv2d(3, 2)", "expected a 3D (unbatched) or 4D")
    H.assert_error(function() nn.Conv2d(3, 4, 3, {groups = 2}) end, "dl.nn.Conv2d", "divisible by groups = 2")
    H.assert_error(function() nn.Conv2d(3, 2, 3, {padding = -1}) end, "dl.nn.Conv2d", "padding must be")
    H.assert_error(function() F.conv2d(x, dl.randn(2, 3, 3, 3), nil, {padding = "same", stride = 2}) end,
      "dl.F.conv2d", "'same' needs stride 1")
    H.assert_error(function() F.conv2d(x, dl.randn(2, 3, 3, 3), dl.randn(3)) end, "dl.F.conv2d", "bias")
    H.assert_error(function() nn.MaxPool2d(2, {padding = 2})(x) end, "MaxPool2d", "at most half")
    H.assert_error(function() F.max_pool2d(x, 6) end, "dl.F.max_pool2d", "smaller than the kernel")
    H.assert_error(function() nn.MaxPool2d(2, {stride = 0}) end, "dl.nn.MaxPool2d", "stride must be")
  end)
  it("the window ops check what they are given", function()
    H.assert_error(function() dl.im2col(dl.randn(5, 5), 2) end, "dl.im2col", "1 to 3 spatial dims")
    H.assert_error(function() dl.im2col(x, 6) end, "dl.im2col", "smaller than", "kernel")
    H.assert_error(function() dl.im2col(x, {2, 2, 2}) end, "dl.im2col", "expected 2 values")
    H.assert_error(function() dl.im2col(x, 2, {padding = -1}) end, "dl.im2col", "padding must be >= 0")
    H.assert_error(function() dl.im2col(x:long(), 2) end, "dl.im2col", "float32 or float64")
    H.assert_error(function() dl.col2im(dl.randn(1, 5, 4), {3, 3}, 2) end, "dl.col2im", "does not hold")
    H.assert_error(function() dl.im2col(x, 2, {bogus = 1}) end, "dl.im2col", "unknown option 'bogus'")
  end)
end)
