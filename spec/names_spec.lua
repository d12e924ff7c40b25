-- Argument errors name the function as the user knows it, however it was
-- reached: a field, a method, through pcall, as a local, or as PyTorch's
-- other name for the op; property setters name the property.
local dl = require "dlua"

local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  return tostring(e)
end

describe("argument errors", function()
  it("name dl functions called as fields, through pcall or as locals", function()
    assert.matches("dl.zeros: bad argument #1 %(negative size%)", err(function() return dl.zeros(-1) end))
    assert.equal("dl.zeros: bad argument #1 (negative size)", err(dl.zeros, -1))
    local z = dl.zeros
    assert.matches("^spec/names_spec.lua:%d+: dl.zeros: bad argument #1", err(function() return z(-1) end))
  end)
  it("name methods as Tensor:name and count arguments after self", function()
    local t = dl.zeros(2, 3)
    assert.matches("Tensor:view: bad argument #1 %(number expected, got string%)", err(function() return t:view("a") end))
    assert.matches("Tensor:sum: bad argument #1", err(function() return t:sum("x") end))
    assert.matches("Tensor:add: bad argument #1 %(tensor or number expected, got table%)",
      err(function() return t:add({}) end))
  end)
  it("name a method called as a function with self as argument #1", function()
    assert.matches("dl.add: bad argument #2", err(function() return dl.add(dl.zeros(1), "x") end))
    assert.matches("dl.add: bad argument #2", err(function() return dl.zeros(1) + "x" end))
  end)
  it("name the alias the user called", function()
    assert.matches("dl.clip: bad argument #2", err(function() return dl.clip(dl.zeros(2), "a") end))
    assert.matches("Tensor:multiply: bad argument #1", err(function() return dl.zeros(2):multiply("a") end))
    assert.matches("dl.clamp: bad argument #2", err(function() return dl.clamp(dl.zeros(2), "a") end))
  end)
  it("name functions of sub-tables", function()
    assert.matches("dl.cuda.memory_allocated: bad argument #1", err(function() return dl.cuda.memory_allocated("x") end))
  end)
  it("name the property a setter refuses, at the user's line", function()
    local t = dl.zeros(2)
    assert.matches("^spec/names_spec.lua:%d+: Tensor.grad: bad value %(tensor expected, got number%)",
      err(function() t.grad = 5 end))
    assert.matches("Tensor.requires_grad: bad value %(boolean expected, got number%)",
      err(function() t.requires_grad = 3 end))
  end)
  it("name the alias, not the op, in the op's own errors", function()
    assert.matches("dl.subtract: shapes %[4,5%] and %[2,3%] cannot be broadcast",
      err(function() return dl.subtract(dl.zeros(4, 5), dl.zeros(2, 3)) end))
    assert.matches("dl.clip: at least one of min and max must be given", err(function() return dl.clip(dl.zeros(2)) end))
    assert.matches("Tensor:clip_: unknown option 'a'", err(function() return dl.zeros(2):clip_({a = 1}) end))
    assert.matches("dl.clamp: at least one of min and max", err(function() return dl.zeros(2):clamp() end))
    assert.matches("Tensor:zero_: a leaf tensor that requires grad",
      err(function() return dl.zeros(2):requires_grad_():zero_() end))
    assert.matches("Tensor:requires_grad_: only floating%-point tensors",
      err(function() return dl.zeros(2):long():requires_grad_() end))
  end)
  it("name operators by the op they perform", function()
    local i = dl.tensor({1, 2}, {dtype = "int64"})
    assert.matches("dl.remainder: ZeroDivisionError", err(function() return i % 0 end))
    assert.matches("dl.neg: bad argument #1", err(getmetatable(i).__unm, "x"))
    assert.matches("Tensor.__len: bad argument #1", err(getmetatable(i).__len, "x"))
  end)
  it("name the property in its value checks", function()
    local t = dl.zeros(2)
    assert.matches("Tensor.grad: assigned grad has dtype int64", err(function() t.grad = dl.zeros(2):long() end))
  end)
end)

describe("errors of library functions written in Lua", function()
  it("name the function and point at the user's line", function()
    assert.matches("^spec/names_spec.lua:%d+: dl.data.kfold: ", err(function() return dl.data.kfold(nil, 3) end))
    assert.matches("^spec/names_spec.lua:%d+: dl.nn.state_dict_keys: ",
      err(function() return dl.nn.state_dict_keys(nil) end))
    assert.matches("^spec/names_spec.lua:%d+: dl.autograd.hvp: bad argument #1 %(function expected, got string%)",
      err(function() return dl.autograd.hvp("f", dl.zeros(2), dl.zeros(2)) end))
  end)
  it("name the class of the instance a method was called on", function()
    local opt = dl.optim.SGD({dl.nn.Parameter(dl.zeros(2))}, {lr = 0.1})
    assert.matches("^spec/names_spec.lua:%d+: dl.optim.SGD: load_state_dict expects a table",
      err(function() return opt:load_state_dict(nil) end))
    -- called with a dot and the wrong self, the method is named by the class defining it
    assert.matches("^spec/names_spec.lua:%d+: dl.optim.Optimizer:zero_grad: ", err(function() return opt.zero_grad({}) end))
    local m = dl.nn.Linear(2, 2)
    assert.matches("^spec/names_spec.lua:%d+: Linear:add_module: bad argument #1 %(name must be",
      err(function() return m:add_module(nil, dl.nn.ReLU()) end))
  end)
  it("name a library module in the errors of its forward", function()
    assert.matches("^spec/names_spec.lua:%d+: ReLU: dl.relu: bad argument #1 %(tensor expected, got string%)",
      err(function() return dl.nn.ReLU()("x") end))
    assert.matches("^spec/names_spec.lua:%d+: Linear%(3 %-> 2%): input %[4,5%] has 5 features, expected 3",
      err(function() return dl.nn.Linear(3, 2)(dl.zeros(4, 5)) end))
    -- nested library calls name each one, outermost first
    assert.matches("^spec/names_spec.lua:%d+: Sequential: Linear%(3 %-> 2%): input %[4,5%] has 5 features",
      err(function() return dl.nn.Sequential(dl.nn.Linear(3, 2))(dl.zeros(4, 5)) end))
  end)
  it("let errors of the user's own code through unchanged", function()
    local e = err(function() return dl.autograd.jacobian(function() error("mine") end, dl.zeros(2)) end)
    assert.matches("^spec/names_spec.lua:%d+: mine$", e)
    local Net = dl.nn.Module:extend("Net")
    function Net:forward() error({code = 7}) end
    local ok, obj = pcall(Net(), dl.zeros(1))
    assert.is_false(ok)
    assert.equal(7, obj.code)
  end)
end)
