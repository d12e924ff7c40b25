-- LayerNorm, GroupNorm, InstanceNorm, RMSNorm, Dropout2d, Unflatten: values
-- and gradients against PyTorch (spec/fixtures/norm_reference.py, float64),
-- gradcheck / jvp / double backward of the composed forms, modules, bad input.
local dl = require "dlua"
local H = require "spec.helper"
local ref = require "spec.fixtures.norm_reference"
local nn, F, A = dl.nn, dl.nn.functional, dl.autograd

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end
local function tensor(t) return dl.tensor(t.values, F64):view(t.shape):requires_grad_() end
local function case(name) for _, c in ipairs(ref) do if c.name == name then return c end end end

local calls = {
  layer_norm = function(x, w, b) return F.layer_norm(x, {3, 4}, w, b, 1e-5) end,
  group_norm = function(x, w, b) return F.group_norm(x, 2, w, b, 1e-5) end,
  instance_norm = function(x, w, b, ins)
    local m = nn.InstanceNorm2d(3, {affine = true, dtype = "float64"})
    -- the module's parameters stand for the fixture's inputs 2 and 3
    m.weight, m.bias = nn.Parameter(w), nn.Parameter(b)
    ins[2], ins[3] = m.weight, m.bias
    return m(x)
  end,
  rms_norm = function(x, w) return F.rms_norm(x, 4, w) end,
}

describe("against PyTorch", function()
  for _, name in ipairs({"layer_norm", "group_norm", "instance_norm", "rms_norm"}) do
    it(name, function()
      local c = case(name)
      local ins = {}
      for i = 1, 3 do if c["in" .. i] then ins[i] = tensor(c["in" .. i]) end end
      local out = calls[name](ins[1], ins[2], ins[3], ins)
      assert.same(c.out.shape, out:size())
      H.assert_close(H.flat(out), c.out.values, 1e-10)
      local grads = {A.grad(out, ins, dl.tensor(c.gout, F64):view(c.out.shape))}
      for i = 1, #ins do H.assert_close(H.flat(grads[i]), c["in" .. i].grad, 1e-10) end
    end)
  end
end)

describe("under autograd", function()
  local fns = {
    ["layer_norm"] = {function(x, w, b) return F.layer_norm(x, 4, w, b) end, function() return {r(3, 4), r(4), r(4)} end},
    ["group_norm"] = {function(x, w) return F.group_norm(x, 3, w) end, function() return {r(2, 6, 2), r(6)} end},
    ["rms_norm"] = {function(x, w) return F.rms_norm(x, {2, 3}, w) end, function() return {r(2, 2, 3), r(2, 3)} end},
  }
  for _, name in ipairs(H.sorted_keys(fns)) do
    it(name .. ": gradcheck, jvp and double backward", function()
      dl.manual_seed(31)
      H.check_derivatives(fns[name][1], fns[name][2])
    end)
  end
end)

describe("layer norm's fused kernels", function()
  -- the formulas written as element-wise ops (what a device without the
  -- kernels runs; what the backward runs under create_graph)
  local function composed(x, N, w, b, eps)
    local x2 = x:reshape(-1, N)
    local c = x2 - x2:mean(2, true)
    local y = c * ((c * c):mean(2, true) + eps):rsqrt()
    if w then y = y * w:reshape(1, N) end
    if b then y = y + b:reshape(1, N) end
    return y:reshape(x:size())
  end
  for _, dt in ipairs({"float64", "float32"}) do
    for _, affine in ipairs({"both", "weight", "none"}) do
      it(string.format("%s, %s: values and gradients equal the composed formulas'", dt, affine), function()
        dl.manual_seed(8)
        local o = {dtype = dt}
        -- rows split across threads, columns in chunks of 64 (N = 130)
        local x = (dl.randn(40, 7, 130, o) * 3 + 1):requires_grad_()
        local w = affine ~= "none" and dl.randn(130, o):requires_grad_() or nil
        local b = affine == "both" and dl.randn(130, o):requires_grad_() or nil
        local tol = dt == "float64" and 1e-12 or 2e-5
        local y = F.layer_norm(x, 130, w, b)
        H.assert_close(y, composed(x, 130, w, b, 1e-5), tol)
        local g = dl.randn(40, 7, 130, o)
        local ins = {x, w, b}
        local fused = {A.grad(y, ins, g, {allow_unused = true})}
        -- under create_graph the rule runs the composed formulas
        local graph = {A.grad(F.layer_norm(x, 130, w, b), ins, g, {create_graph = true, allow_unused = true})}
        local direct = {A.grad(composed(x, 130, w, b, 1e-5), ins, g, {allow_unused = true})}
        for i = 1, 3 do
          if ins[i] then
            H.assert_close(fused[i], direct[i], tol * 10)
            H.assert_close(graph[i]:detach(), direct[i], tol * 10)
          end
        end
      end)
    end
  end
  it("jvp with tangents on the parameters only, and no affine parameters", function()
    dl.manual_seed(9)
    H.check_derivatives(function(x) return F.layer_norm(x, {2, 3}) end, function() return {r(4, 2, 3)} end)
    local X = r(5, 3)
    H.check_derivatives(function(w, b) return F.layer_norm(X, 3, w, b) end, function() return {r(3), r(3)} end)
  end)
  it("bad weight or bias: named, with the shapes", function()
    local x = dl.randn(2, 4)
    H.assert_error(function() F.layer_norm(x, 4, dl.randn(3)) end, "dl.F.layer_norm", "weight [3]", "normalized_shape [4]")
    H.assert_error(function() F.layer_norm(x, 4, nil, dl.randn(4, {dtype = "float64"})) end, "dl.F.layer_norm",
      "bias [4] (float64)")
    H.assert_error(function() F.layer_norm(x, 4, nil, nil, "a") end, "dl.F.layer_norm", "eps must be a number")
    H.assert_error(function() F.layer_norm(dl.ones(2, 4, {dtype = "int64"}), 4) end, "dl.F.layer_norm", "int64")
  end)
end)

describe("modules", function()
  it("have PyTorch's parameters and reprs", function()
    local ln = nn.LayerNorm({3, 4})
    assert.same({3, 4}, ln.weight:size())
    assert.same({"weight", "bias"}, nn.state_dict_keys(ln:state_dict()))
    assert.equal("LayerNorm((3, 4), eps=1e-05, elementwise_affine=True)", tostring(ln))
    assert.is_nil(nn.LayerNorm(4, {bias = false}).bias)
    assert.equal("GroupNorm(2, 4, eps=1e-05, affine=True)", tostring(nn.GroupNorm(2, 4)))
    assert.is_nil(nn.InstanceNorm2d(3).weight)
    assert.same({"weight"}, nn.state_dict_keys(nn.RMSNorm(4):state_dict()))
  end)
  it("InstanceNorm2d normalises each sample's channel; unbatched input too", function()
    local y = nn.InstanceNorm2d(3, F64)(r(2, 3, 5, 4) * 3 + 2)
    H.assert_close(y:mean({3, 4}), dl.zeros(2, 3, F64), 1e-12)
    assert.same({3, 5, 4}, nn.InstanceNorm2d(3)(dl.randn(3, 5, 4)):size())
  end)
  it("Dropout2d zeroes whole channels in training and nothing in eval", function()
    dl.manual_seed(4)
    local m = nn.Dropout2d(0.5)
    local y = m(dl.ones(4, 8, 3, 3))
    local zeroed = 0
    for n = 1, 4 do
      for c = 1, 8 do
        local s = y[n][c]:sum():item()
        assert.is_true(s == 0 or s == 18, "a channel partly dropped: " .. s)
        if s == 0 then zeroed = zeroed + 1 end
      end
    end
    assert.is_true(zeroed > 4 and zeroed < 28, "zeroed " .. zeroed)
    m:eval()
    assert.is_true(dl.equal(m(dl.ones(2, 3, 2, 2)), dl.ones(2, 3, 2, 2)))
  end)
  it("Unflatten splits a dim", function()
    assert.same({3, 2, 4}, nn.Unflatten(2, {2, -1})(dl.randn(3, 8)):size())
    assert.same({3, 8, 1, 2}, nn.Unflatten(-1, {1, 2})(dl.randn(3, 8, 2)):size())
  end)
end)

-- An empty batch passes through, as in PyTorch: an empty output, zero
-- gradients for the affine parameters, the running statistics untouched
-- (num_batches_tracked still counts the call, as the module's forward does)
describe("an empty batch", function()
  local nn = dl.nn
  local cases = {
    {"BatchNorm1d [0, 3]", function() return nn.BatchNorm1d(3) end, {0, 3}, {0, 3}},
    {"BatchNorm1d [2, 3, 0]", function() return nn.BatchNorm1d(3) end, {2, 3, 0}, {2, 3, 0}},
    {"BatchNorm2d", function() return nn.BatchNorm2d(3) end, {0, 3, 5, 5}, {0, 3, 5, 5}},
    {"BatchNorm2d + ReLU (fused)", function() return nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()) end, {0, 3, 4, 4},
      {0, 3, 4, 4}},
    {"BatchNorm2d + ReLU + MaxPool2d (fused)", function()
      return nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2)) end, {0, 3, 4, 4}, {0, 3, 2, 2}},
    {"GroupNorm", function() return nn.GroupNorm(2, 4) end, {0, 4, 3}, {0, 4, 3}},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " gives an empty output and zero parameter gradients", function()
      local m = c[2]()
      local x = dl.randn(table.unpack(c[3])):requires_grad_()
      local y = m(x)
      assert.same(c[4], y.shape)
      y:sum():backward()
      assert.same(c[3], x.grad.shape)
      for _, p in ipairs(m:parameters()) do assert.same(dl.zeros(p:numel()):totable(), p.grad:totable()) end
      for _, b in ipairs(m:buffers()) do
        if b.dtype == "int64" then assert.equal(1, b:item()) -- num_batches_tracked
        else assert.is_true(b:eq(b:mean()):all():item()) end -- still all zeros or all ones
      end
    end)
  end
  it("in evaluation mode too", function()
    local bn = nn.BatchNorm1d(3)
    bn:eval()
    assert.same({0, 3}, bn(dl.randn(0, 3)).shape)
  end)
  it("one value per channel is still an error when training", function()
    H.assert_error(function() nn.BatchNorm1d(3)(dl.randn(1, 3)) end, "more than 1 value per channel")
  end)
end)

describe("bad input", function()
  it("names the layer and the shapes", function()
    H.assert_error(function() nn.LayerNorm(5)(dl.randn(2, 4)) end, "LayerNorm", "[2,4]", "normalized_shape [5]")
    H.assert_error(function() nn.GroupNorm(2, 4)(dl.randn(2, 6, 3)) end, "GroupNorm", "[2,6,3]", "expected 4")
    H.assert_error(function() nn.GroupNorm(4, 6) end, "dl.nn.GroupNorm", "divisible")
    H.assert_error(function() F.group_norm(dl.randn(2, 5), 2) end, "dl.F.group_norm", "not divisible by num_groups = 2")
    H.assert_error(function() nn.InstanceNorm2d(3)(dl.randn(2, 3)) end, "InstanceNorm2d", "expected a 3D")
    H.assert_error(function() nn.Dropout2d(2) end, "dl.nn.Dropout2d", "between 0 and 1")
    H.assert_error(function() nn.Unflatten(0, {2}) end, "dl.nn.Unflatten", "non-zero")
    H.assert_error(function() F.layer_norm("x", 3) end, "dl.F.layer_norm", "input must be a tensor")
  end)
end)
