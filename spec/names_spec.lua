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
end)
