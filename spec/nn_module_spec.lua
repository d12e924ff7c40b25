-- dl.nn.Module, dl.nn.Parameter and the containers (Sequential, ModuleList,
-- Residual, Identity, Flatten).
local dl = require "dlua"
local H = require "spec.helper"
local nn = dl.nn

-- A Linear-like module built only from Parameter + addmm, so this spec does
-- not depend on the layers file.
local Lin = nn.Module:extend("Lin")
function Lin:init(i, o, bias)
  self.in_features, self.out_features = i, o
  self.weight = nn.Parameter(dl.randn(o, i))
  if bias ~= false then self.bias = nn.Parameter(dl.zeros(o)) end
end
function Lin:forward(x)
  if self.bias then return dl.addmm(self.bias, x, self.weight:t()) end
  return x:matmul(self.weight:t())
end
function Lin:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s",
    self.in_features, self.out_features, nn._pybool(self.bias ~= nil))
end

-- the seed's example: two layers and a skip connection
local Net = nn.Module:extend("Net")
function Net:init(n)
  self.fc1 = Lin(n, 8)
  self.fc2 = Lin(8, n)
  self:register_buffer("steps", dl.zeros(1, {dtype = "int64"}))
end
function Net:forward(x)
  return x + self.fc2(self.fc1(x):relu())
end

local function names_of(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e[1] end
  return out
end

describe("dl.nn.Parameter", function()
  it("returns a leaf requiring grad that shares storage with its input", function()
    local t = dl.zeros(3)
    local p = nn.Parameter(t)
    assert.is_true(p.requires_grad)
    assert.is_true(p.is_leaf)
    assert.is_true(nn.is_parameter(p))
    assert.is_false(nn.is_parameter(t))
    assert.is_false(t.requires_grad)
    t:fill_(2)
    assert.same({2, 2, 2}, p:totable())
  end)
  it("detaches a non-leaf and honours requires_grad = false", function()
    local x = dl.ones(2):requires_grad_(true)
    local p = nn.Parameter(x * 2)
    assert.is_true(p.is_leaf)
    assert.is_false(nn.Parameter(dl.ones(2), false).requires_grad)
  end)
  it("rejects non-tensors", function()
    H.assert_error(function() nn.Parameter(3) end, "dl.nn.Parameter", "expected a tensor")
  end)
end)

describe("Module:extend and construction", function()
  it("calls init with the constructor arguments and forward on call", function()
    local net = Net(4)
    assert.is_true(nn.is_module(net))
    assert.is_false(nn.is_module(Net))
    assert.is_true(net.training)
    local x = dl.randn(2, 4)
    local y = net(x)
    assert.same({2, 4}, y:size())
    H.assert_close(y, net:forward(x), 0)
    local ref = x + (x:matmul(net.fc1.weight:t()) + net.fc1.bias):relu():matmul(net.fc2.weight:t()) + net.fc2.bias
    H.assert_close(y, ref, 1e-5)
  end)
  it("supports subclassing a user class and calling the parent's init", function()
    local Wide = Net:extend("Wide")
    function Wide:init(n)
      Net.init(self, n)
      self.extra = Lin(n, n)
    end
    function Wide:forward(x) return Net.forward(self, self.extra(x)) end
    local w = Wide(3)
    assert.equal("Wide", w:_get_name())
    assert.same({"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "extra.weight", "extra.bias"},
      names_of(w:named_parameters()))
    assert.same({5, 3}, w(dl.randn(5, 3)):size())
  end)
  it("a module without forward raises naming the class", function()
    local Empty = nn.Module:extend("Empty")
    H.assert_error(function() Empty()(dl.ones(1)) end, "Empty: a Module subclass must define Empty:forward(...)")
  end)
  it("extend needs a class name", function()
    H.assert_error(function() nn.Module:extend(3) end, "class name string expected")
    H.assert_error(function() nn.Module.extend({}, "X") end, "Class:extend(name)")
  end)
end)

describe("Module registration", function()
  it("named_parameters lists own parameters, then children's, in assignment order", function()
    local M = nn.Module:extend("M")
    function M:init()
      self.b = Lin(2, 2)
      self.scale = nn.Parameter(dl.ones(1))
      self.a = Lin(2, 3, false)
      self.plain = dl.ones(2) -- a plain tensor is not a parameter
      self.n = 5
    end
    local m = M()
    assert.same({"scale", "b.weight", "b.bias", "a.weight"}, names_of(m:named_parameters()))
    assert.equal(4, #m:parameters())
    assert.equal(m.scale, m:parameters()[1])
    assert.same({"b", "a"}, names_of(m:named_children()))
    assert.same({"scale"}, names_of(m:named_parameters({recurse = false})))
  end)
  it("a shared parameter or module is listed once", function()
    local M = nn.Module:extend("Shared")
    function M:init()
      self.enc = Lin(2, 2)
      self.dec = self.enc
    end
    local m = M()
    assert.same({"enc.weight", "enc.bias"}, names_of(m:named_parameters()))
    assert.equal(2, #m:modules())
    assert.equal(6, m:num_parameters())
  end)
  it("reassigning a field replaces the child in place; assigning nil removes it", function()
    local net = Net(2)
    net.fc2 = Lin(8, 2, false)
    assert.same({"fc1.weight", "fc1.bias", "fc2.weight"}, names_of(net:named_parameters()))
    net.fc1 = nil
    assert.same({"fc2.weight"}, names_of(net:named_parameters()))
    net.fc1 = Lin(2, 8)
    -- a name keeps its first position
    assert.same({"fc1.weight", "fc1.bias", "fc2.weight"}, names_of(net:named_parameters()))
  end)
  it("buffers are listed by buffers() and not by parameters()", function()
    local net = Net(2)
    assert.same({"steps"}, names_of(net:named_buffers()))
    assert.equal(net.steps, net:buffers()[1])
    net.steps = dl.ones(1, {dtype = "int64"}) -- reassigning keeps it a buffer
    assert.equal(1, net:buffers()[1]:item())
    for _, p in ipairs(net:parameters()) do assert.is_false(p == net.steps) end
  end)
  it("register_parameter, add_module and register_buffer check their arguments", function()
    local m = nn.Module()
    local p = m:register_parameter("w", dl.ones(2))
    assert.is_true(nn.is_parameter(p))
    m:add_module("child", Lin(1, 1))
    assert.same({"w", "child.weight", "child.bias"}, names_of(m:named_parameters()))
    H.assert_error(function() m:add_module("x", 3) end, "add_module", "module expected")
    H.assert_error(function() m:add_module("a.b", Lin(1, 1)) end, "add_module", "without '.'")
    H.assert_error(function() m:register_buffer("b", "x") end, "register_buffer", "tensor or nil expected")
    H.assert_error(function() m:register_parameter("q", {}) end, "register_parameter", "tensor expected")
  end)
  it("refuses a parameter replaced by a plain tensor or another value when parameters are collected", function()
    local m = Lin(2, 3)
    m.weight = m.weight * 2 -- a common slip: the module would train a tensor no optimiser sees
    H.assert_error(function() m:parameters() end, "Lin: parameter 'weight' was replaced by a tensor",
                   "dl.nn.Parameter", "copy_")
    H.assert_error(function() m:state_dict() end, "parameter 'weight'")
    local s = nn.Sequential(Lin(2, 3))
    s[1].bias = "x"
    H.assert_error(function() dl.optim.SGD(s:parameters(), {lr = 1}) end, "parameter 'bias' was replaced by a string")
    local ok = Lin(2, 3)
    ok.bias = nil -- nil removes it, as in PyTorch
    ok.weight = nn.Parameter(dl.zeros(3, 2)) -- a new Parameter replaces it
    assert.same({"weight"}, names_of(ok:named_parameters()))
    assert.same({0, 0}, ok:parameters()[1]:totable()[1])
  end)
  it("modules and named_modules walk the tree depth first, self first", function()
    local s = nn.Sequential(Lin(2, 2), nn.Sequential(Lin(2, 2), nn.Identity()))
    assert.same({"", "0", "1", "1.0", "1.1"}, names_of(s:named_modules()))
    assert.equal(s, s:modules()[1])
    assert.equal(s[2][1], s:get_submodule("1.0"))
    H.assert_error(function() s:get_submodule("1.7") end, "get_submodule", "no submodule \"7\"")
  end)
end)

describe("Module:train / eval / apply / zero_grad / requires_grad_", function()
  it("train and eval propagate to every submodule", function()
    local s = nn.Sequential(Net(2), nn.Residual(Lin(2, 2)))
    s:eval()
    for _, m in ipairs(s:modules()) do assert.is_false(m.training) end
    s:train()
    for _, m in ipairs(s:modules()) do assert.is_true(m.training) end
    assert.equal(s, s:train(false))
    assert.is_false(s[2].module.training)
    H.assert_error(function() s:train("yes") end, "train", "boolean expected")
  end)
  it("apply visits children before self", function()
    local s = nn.Sequential(Lin(1, 1), nn.Residual(Lin(1, 1)))
    local seen = {}
    s:apply(function(m) seen[#seen + 1] = m:_get_name() end)
    assert.same({"Lin", "Lin", "Residual", "Sequential"}, seen)
    s:apply(function(m) if m.weight then dl.no_grad(function() m.weight:fill_(0.5) end) end end)
    assert.equal(0.5, s[2].module.weight:item())
    H.assert_error(function() s:apply(1) end, "apply", "function expected")
  end)
  it("zero_grad sets grads to nil, or to zeros with set_to_none = false", function()
    local net = Net(3)
    net(dl.randn(4, 3)):sum():backward()
    assert.is_not_nil(net.fc1.weight.grad)
    net:zero_grad({set_to_none = false})
    H.assert_close(net.fc1.weight.grad, dl.zeros(8, 3), 0)
    net:zero_grad()
    assert.is_nil(net.fc1.weight.grad)
    assert.is_nil(net.fc2.bias.grad)
  end)
  it("requires_grad_ freezes and unfreezes all parameters", function()
    local net = Net(2)
    net:requires_grad_(false)
    for _, p in ipairs(net:parameters()) do assert.is_false(p.requires_grad) end
    assert.equal(0, net:num_parameters({trainable_only = true}))
    net:requires_grad_()
    assert.equal(net:num_parameters(), net:num_parameters({trainable_only = true}))
  end)
  it("num_parameters counts elements", function()
    assert.equal(3 * 8 + 8 + 8 * 3 + 3, Net(3):num_parameters())
  end)
end)

describe("Module:to", function()
  it("takes an options table of dtype and device only", function()
    local m = dl.nn.Linear(2, 2)
    H.assert_error(function() m:to({dtpye = "float64"}) end, "Linear:to", "unknown option 'dtpye'")
    assert.equal("float64", m:to({dtype = "float64"}).weight.dtype)
  end)
  it("to('float64') converts parameters, grads and float buffers, keeping requires_grad", function()
    local net = Net(2)
    net:register_buffer("mean", dl.zeros(2))
    net(dl.randn(1, 2)):sum():backward()
    local w = net.fc1.weight:clone()
    local same = net.fc1.weight
    assert.equal(net, net:to("float64"))
    assert.equal(same, net.fc1.weight) -- converted in place: the same object
    for _, p in ipairs(net:parameters()) do
      assert.equal("float64", p.dtype)
      assert.is_true(p.requires_grad)
      assert.is_true(p.is_leaf)
      assert.is_true(nn.is_parameter(p))
      assert.equal("float64", p.grad.dtype)
    end
    assert.equal("float64", net.mean.dtype)
    assert.equal("int64", net.steps.dtype) -- integer buffers keep their dtype
    H.assert_close(net.fc1.weight, w, 0)
    assert.equal("float64", net(dl.randn(3, 2, {dtype = "float64"})).dtype)
  end)
  it("keeps shared parameters shared and leaves matching ones untouched", function()
    local M = nn.Module:extend("Tied")
    function M:init() self.a = Lin(2, 2); self.b = Lin(2, 2); self.b.weight = self.a.weight end
    local m = M()
    local bias = m.a.bias
    m:to("float32")
    assert.equal(bias, m.a.bias)
    m:double()
    assert.equal(m.a.weight, m.b.weight)
    assert.equal("float64", m.b.weight.dtype)
    assert.equal(2 * 2 + 2 + 2, m:num_parameters())
    m:float()
    assert.equal("float32", m.a.bias.dtype)
    m:to({dtype = "float64", device = "cpu"})
    assert.equal("float64", m.a.bias.dtype)
    m:to(dl.zeros(1)) -- a tensor gives dtype and device
    assert.equal("float32", m.a.bias.dtype)
    assert.equal("cpu", m:cpu().a.bias.device)
  end)
  it("rejects bad targets", function()
    local m = Lin(1, 1)
    H.assert_error(function() m:to("nonsense") end, "nonsense")
    H.assert_error(function() m:to(3) end, "to", "dtype, device, tensor")
  end)
end)

describe("Module:state_dict / load_state_dict", function()
  it("lists parameters and buffers in order; pairs yields that order", function()
    local net = Net(2)
    local sd = net:state_dict()
    local keys = {}
    for k in pairs(sd) do keys[#keys + 1] = k end
    assert.same({"steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}, keys)
    assert.same(keys, nn.state_dict_keys(sd))
    assert.is_false(sd["fc1.weight"].requires_grad)
    H.assert_close(sd["fc1.weight"], net.fc1.weight, 0)
  end)
  it("round-trips into a fresh model", function()
    local a, b = Net(3), Net(3)
    a.steps:fill_(7)
    local x = dl.randn(4, 3)
    assert.is_true(H.max_abs_diff(a(x), b(x)) > 0)
    local res = b:load_state_dict(a:state_dict())
    assert.same({}, res.missing_keys)
    assert.same({}, res.unexpected_keys)
    H.assert_close(a(x), b(x), 0)
    assert.equal(7, b.steps:item())
    -- values are copied: later changes to a do not reach b
    dl.no_grad(function() a.fc1.weight:fill_(0) end)
    assert.is_true(H.max_abs_diff(a(x), b(x)) > 0)
    -- b's parameters are still the same leaves
    assert.is_true(b.fc1.weight.requires_grad)
  end)
  it("a plain table works as a state dict and converts dtypes", function()
    local m = Lin(2, 1)
    m:load_state_dict({weight = dl.tensor({{1, 2}}, {dtype = "float64"}), bias = dl.tensor({3})})
    assert.same({{1, 2}}, m.weight:totable())
    assert.equal("float32", m.weight.dtype)
    assert.same({3}, m.bias:totable())
  end)
  it("strict loading names missing and unexpected keys", function()
    local net = Net(2)
    local sd = Net(2):state_dict()
    sd["fc2.bias"] = nil
    sd["fc3.weight"] = dl.ones(1)
    H.assert_error(function() net:load_state_dict(sd) end, "load_state_dict", "Net",
      "Missing key(s) in state_dict: \"fc2.bias\"", "Unexpected key(s) in state_dict: \"fc3.weight\"")
  end)
  it("strict = false reports missing and unexpected keys and loads the rest", function()
    local net = Net(2)
    local src = Net(2)
    local sd = src:state_dict()
    sd["fc2.bias"] = nil
    sd.extra = dl.ones(1)
    local res = net:load_state_dict(sd, {strict = false})
    assert.same({"fc2.bias"}, res.missing_keys)
    assert.same({"extra"}, res.unexpected_keys)
    H.assert_close(net.fc1.weight, src.fc1.weight, 0)
  end)
  it("a strict load with a shape mismatch names both shapes and loads nothing", function()
    local net = Net(2)
    local before = net.fc2.bias:clone()
    local bad = {}
    for k, v in pairs(net:state_dict()) do bad[k] = v:clone() + 1 end
    bad["fc1.weight"] = dl.ones(2, 8)
    H.assert_error(function() net:load_state_dict(bad) end, "size mismatch for fc1.weight", "[2,8]", "[8,2]")
    H.assert_close(net.fc2.bias, before, 0)
  end)
  it("strict = false reports a shape mismatch and skips that entry", function()
    local net = Net(2)
    local w = net.fc1.weight:clone()
    local bad = {}
    for k, v in pairs(net:state_dict()) do bad[k] = v:clone() + 1 end
    bad["fc1.weight"] = dl.ones(2, 8)
    local res = net:load_state_dict(bad, {strict = false})
    assert.same({"fc1.weight"}, res.mismatched_keys)
    assert.same({}, res.missing_keys)
    H.assert_close(net.fc1.weight, w, 0)
    H.assert_close(net.fc2.bias, bad["fc2.bias"], 0)
  end)
  it("rejects bad arguments", function()
    local m = Lin(1, 1)
    H.assert_error(function() m:load_state_dict(5) end, "load_state_dict", "table expected")
    H.assert_error(function() m:load_state_dict({}, 1) end, "load_state_dict", "options table expected")
    H.assert_error(function() m:load_state_dict({weight = 1, bias = dl.zeros(1)}) end,
      "value for weight is a number, not a tensor")
  end)
end)

describe("tostring(module)", function()
  it("prints leaf modules on one line with their extra_repr", function()
    assert.equal("Lin(in_features=8, out_features=64, bias=True)", tostring(Lin(8, 64)))
    assert.equal("Lin(in_features=1, out_features=2, bias=False)", tostring(Lin(1, 2, false)))
    assert.equal("Identity()", tostring(nn.Identity()))
  end)
  it("prints nested modules like PyTorch's repr", function()
    local s = nn.Sequential(Lin(8, 64), nn.Identity(), nn.Residual(nn.Sequential(Lin(64, 64), nn.Flatten())))
    assert.equal(table.concat({
      "Sequential(",
      "  (0): Lin(in_features=8, out_features=64, bias=True)",
      "  (1): Identity()",
      "  (2): Residual(",
      "    (module): Sequential(",
      "      (0): Lin(in_features=64, out_features=64, bias=True)",
      "      (1): Flatten(start_dim=2, end_dim=-1)",
      "    )",
      "  )",
      ")"}, "\n"), tostring(s))
  end)
  it("puts a multi-line extra_repr and children on separate lines", function()
    local M = nn.Module:extend("Both")
    function M:init() self.fc = Lin(1, 1) end
    function M:extra_repr() return "alpha=1" end
    assert.equal("Both(\n  alpha=1\n  (fc): Lin(in_features=1, out_features=1, bias=True)\n)", tostring(M()))
  end)
end)

describe("nn.Sequential", function()
  it("chains modules; seq[i] is 1-based while names are 0-based", function()
    local a, b = Lin(3, 4), Lin(4, 2)
    local s = nn.Sequential(a, nn.Identity(), b)
    assert.equal(3, #s)
    assert.equal(a, s[1])
    assert.equal(b, s[3])
    assert.equal(b, s[-1])
    assert.is_nil(s[4])
    assert.same({"0.weight", "0.bias", "2.weight", "2.bias"}, names_of(s:named_parameters()))
    local x = dl.randn(5, 3)
    H.assert_close(s(x), b(a(x)), 0)
  end)
  it("accepts a list, grows with add and seq[#seq + 1], iterates with ipairs and iter", function()
    local s = nn.Sequential({Lin(2, 2)})
    s:add(nn.Identity())
    s[#s + 1] = Lin(2, 3)
    assert.equal(3, #s)
    local seen = {}
    for i, m in ipairs(s) do seen[i] = m:_get_name() end
    assert.same({"Lin", "Identity", "Lin"}, seen)
    local seen2 = {}
    for i, m in s:iter() do seen2[i] = m:_get_name() end
    assert.same(seen, seen2)
    assert.same({4, 3}, s(dl.randn(4, 2)):size())
    s[2] = Lin(2, 2)
    assert.equal("Lin", s[2]:_get_name())
    assert.equal(3, #s)
  end)
  it("rejects non-modules and out-of-range assignment", function()
    H.assert_error(function() nn.Sequential(Lin(1, 1), 5) end, "Sequential", "bad argument #2", "module expected")
    H.assert_error(function() nn.Sequential():add("x") end, "append", "module expected")
    local s = nn.Sequential(Lin(1, 1))
    H.assert_error(function() s[5] = Lin(1, 1) end, "Sequential", "out of range")
    H.assert_error(function() s[1] = 3 end, "only modules")
  end)
  it("gradients flow to every layer", function()
    local s = nn.Sequential(Lin(2, 3), Lin(3, 1))
    s(dl.randn(4, 2)):sum():backward()
    for _, p in ipairs(s:parameters()) do assert.is_not_nil(p.grad) end
  end)
end)

describe("nn.ModuleList", function()
  it("holds modules, registers them and has no forward", function()
    local l = nn.ModuleList({Lin(2, 2), Lin(2, 2)})
    l:append(Lin(2, 1))
    assert.equal(3, #l)
    assert.same({"0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"}, names_of(l:named_parameters()))
    local x = dl.randn(1, 2)
    for _, m in ipairs(l) do x = m(x) end
    assert.same({1, 1}, x:size())
    H.assert_error(function() l(x) end, "ModuleList", "no forward")
  end)
  it("extend appends a list of modules; the class's extend still makes subclasses", function()
    local l = nn.ModuleList()
    assert.equal(l, l:extend({Lin(1, 1), nn.Identity()}))
    assert.equal(2, #l)
    assert.equal("Identity", l[2]:_get_name())
    local Sub = nn.ModuleList:extend("MyList")
    local s = Sub({Lin(1, 1)})
    assert.equal(1, #s)
    assert.equal("MyList", s:_get_name())
    assert.equal(s[1], s[-1])
    assert.same({"0.weight", "0.bias"}, names_of(s:named_parameters()))
    H.assert_error(function() l:append(5) end, "ModuleList.append", "module expected")
  end)
  it("registers inside a user module", function()
    local M = nn.Module:extend("Stack")
    function M:init() self.layers = nn.ModuleList({Lin(2, 2), Lin(2, 2)}) end
    assert.same({"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"},
      names_of(M():named_parameters()))
  end)
end)

describe("nn.Residual / nn.Identity / nn.Flatten", function()
  it("Residual(m)(x) = x + m(x)", function()
    local l = Lin(3, 3)
    local r = nn.Residual(l)
    local x = dl.randn(2, 3)
    H.assert_close(r(x), x + l(x), 0)
    assert.same({"module.weight", "module.bias"}, names_of(r:named_parameters()))
    H.assert_error(function() nn.Residual(5) end, "Residual", "module expected")
  end)
  it("Identity returns its input", function()
    local x = dl.randn(2)
    assert.equal(x, nn.Identity(5, "ignored")(x))
  end)
  it("Flatten keeps the batch dim by default and takes 1-based dims", function()
    local x = dl.randn(2, 3, 4, 5)
    assert.same({2, 60}, nn.Flatten()(x):size())
    assert.same({6, 4, 5}, nn.Flatten(1, 2)(x):size())
    assert.same({2, 12, 5}, nn.Flatten(2, -2)(x):size())
    H.assert_close(nn.Flatten()(x:transpose(1, 2)), x:transpose(1, 2):reshape(3, 40), 0)
    H.assert_error(function() nn.Flatten("a") end, "Flatten", "integer start_dim")
    H.assert_error(function() nn.Flatten(1, 1.5) end, "Flatten", "integer end_dim")
  end)
end)
