-- Gradcheck cases of the index family (cat, gather, scatter, sort, ...):
-- run by spec/autograd_index_spec.lua, counted by the coverage spec.
local dl = require "dlua"

local F64 = {dtype = "float64"}

local function randn(...)
  local shape = {...}
  shape[#shape + 1] = F64
  return dl.randn(table.unpack(shape))
end

local function leaf(t) return t:requires_grad_(true) end

local I = dl.tensor -- index tensors are int64, 1-based

-- every differentiable op of the family, with inputs that exercise
-- broadcasting, non-contiguous views, duplicates and negative dims
local cases = {
  {op = "cat", desc = "two inputs along dim 2, one transposed", make = function()
    return {leaf(randn(3, 2)), leaf(randn(4, 3):t())}
  end, fn = function(a, b) return dl.cat({a, b}, 2) end},
  {op = "cat", desc = "three inputs along dim 1 with a negative dim and a constant", make = function()
    return {leaf(randn(2, 3)), leaf(randn(3, 5):narrow(2, 2, 3))}
  end, fn = function(a, b) return dl.cat({a, dl.ones(1, 3, F64), b}, -2) end},
  {op = "stack", desc = "three inputs on a new middle dim", make = function()
    return {leaf(randn(2, 3)), leaf(randn(3, 2):t()), leaf(randn(2, 3))}
  end, fn = function(a, b, c) return dl.stack({a, b, c}, 2) end},
  {op = "index_select", desc = "rows with a duplicate, narrowed input", make = function()
    return {leaf(randn(5, 3):narrow(1, 2, 4))}
  end, fn = function(x) return x:index_select(1, I({3, 1, 3})) end},
  {op = "index_select", desc = "columns of a transposed input", make = function()
    return {leaf(randn(4, 3):t())}
  end, fn = function(x) return dl.index_select(x, -1, I({4, 2})) end},
  {op = "gather", desc = "dim 1 with duplicates, transposed input", make = function()
    return {leaf(randn(3, 4):t())}
  end, fn = function(x) return x:gather(1, I({{1, 4, 2}, {4, 4, 1}})) end},
  {op = "gather", desc = "dim 2, index smaller than the input", make = function()
    return {leaf(randn(3, 4))}
  end, fn = function(x) return dl.gather(x, 2, I({{2, 2}, {4, 1}})) end},
  {op = "masked_select", desc = "mask broadcast over rows", make = function()
    return {leaf(randn(3, 4))}
  end, fn = function(x) return x:masked_select(dl.tensor({true, false, true, true})) end},
  {op = "masked_select", desc = "input broadcast against a 2-D mask", make = function()
    return {leaf(randn(1, 3))}
  end, fn = function(x) return dl.masked_select(x, dl.tensor({{true, false, true}, {false, true, true}})) end},
  {op = "scatter", desc = "src form, src larger than the index", make = function()
    return {leaf(randn(3, 4)), leaf(randn(3, 5))}
  end, fn = function(s, src) return s:scatter(1, I({{2, 1, 3, 3}, {3, 2, 1, 1}}), src) end},
  {op = "scatter", desc = "value form along dim 2, transposed self", make = function()
    return {leaf(randn(4, 3):t())}
  end, fn = function(s) return dl.scatter(s, 2, I({{4}, {1}, {2}}), 1.5) end},
  {op = "scatter_add", desc = "duplicates accumulate, src larger than the index", make = function()
    return {leaf(randn(3, 4)), leaf(randn(2, 4):narrow(2, 1, 3))}
  end, fn = function(s, src) return s:scatter_add(2, I({{1, 1, 4}, {2, 2, 2}}), src) end},
  {op = "index_add", desc = "alpha 2.5 with a duplicate index", make = function()
    return {leaf(randn(4, 3)), leaf(randn(3, 3):t())}
  end, fn = function(s, src) return s:index_add(1, I({2, 4, 2}), src, {alpha = 2.5}) end},
  {op = "index_add", desc = "along the last dim", make = function()
    return {leaf(randn(2, 3)), leaf(randn(2, 2))}
  end, fn = function(s, src) return dl.index_add(s, -1, I({3, 1}), src) end},
  {op = "index_copy", desc = "rows of a transposed self", make = function()
    return {leaf(randn(3, 4):t()), leaf(randn(2, 3))}
  end, fn = function(s, src) return s:index_copy(1, I({3, 1}), src) end},
  {op = "index_fill", desc = "columns set to a constant", make = function()
    return {leaf(randn(3, 4))}
  end, fn = function(s) return s:index_fill(2, I({2, 4}), -1) end},
  {op = "sort", desc = "values along the last dim", make = function()
    return {leaf(randn(3, 5))}
  end, fn = function(x) return (x:sort()) end},
  {op = "sort", desc = "descending along dim 1 of a transposed input", make = function()
    return {leaf(randn(3, 4):t())}
  end, fn = function(x) return (dl.sort(x, 1, true)) end},
  {op = "topk", desc = "two largest along the last dim", make = function()
    return {leaf(randn(3, 5))}
  end, fn = function(x) return (x:topk(2)) end},
  {op = "topk", desc = "smallest, unsorted, along dim 1", make = function()
    return {leaf(randn(5, 3))}
  end, fn = function(x) return (dl.topk(x, 3, {dim = 1, largest = false, sorted = false})) end},
  {op = "flip", desc = "both dims of a transposed input", make = function()
    return {leaf(randn(3, 4):t())}
  end, fn = function(x) return x:flip({1, 2}) end},
  {op = "roll", desc = "per-dim shifts", make = function()
    return {leaf(randn(3, 4))}
  end, fn = function(x) return x:roll({1, -5}, {1, 2}) end},
  {op = "roll", desc = "the flattened tensor", make = function()
    return {leaf(randn(2, 3):t())}
  end, fn = function(x) return dl.roll(x, 4) end},
  {op = "triu", desc = "a batch of transposed matrices, above the diagonal", make = function()
    return {leaf(randn(2, 4, 3):transpose(2, 3))}
  end, fn = function(x) return x:triu(1) end},
  {op = "tril", desc = "below a negative diagonal", make = function()
    return {leaf(randn(4, 5))}
  end, fn = function(x) return dl.tril(x, -1) end},
  {op = "scatter_", desc = "src form in place on a clone", make = function()
    return {leaf(randn(3, 4)), leaf(randn(2, 4))}
  end, fn = function(s, src)
    local c = s:clone()
    c:scatter_(1, I({{2, 1, 3, 3}, {3, 2, 1, 1}}), src)
    return c
  end},
  {op = "scatter_", desc = "value form in place", make = function()
    return {leaf(randn(3, 4))}
  end, fn = function(s)
    local c = s:clone()
    return c:scatter_(2, I({{1}, {3}, {4}}), 0.5)
  end},
  {op = "scatter_add_", desc = "in place with duplicates", make = function()
    return {leaf(randn(3, 4)), leaf(randn(2, 3))}
  end, fn = function(s, src)
    local c = s:clone()
    return c:scatter_add_(2, I({{1, 1, 4}, {2, 2, 2}}), src)
  end},
  {op = "index_add_", desc = "in place with alpha", make = function()
    return {leaf(randn(4, 3)), leaf(randn(3, 3))}
  end, fn = function(s, src)
    local c = s:clone()
    return c:index_add_(1, I({2, 4, 2}), src, -0.5)
  end},
  {op = "index_copy_", desc = "in place into a transposed constant", make = function()
    return {leaf(randn(2, 3))}
  end, fn = function(src)
    local c = dl.zeros(4, 3, F64):t()
    return c:index_copy_(2, I({3, 1}), src:t())
  end},
  {op = "index_fill_", desc = "in place", make = function()
    return {leaf(randn(3, 4))}
  end, fn = function(s)
    local c = s:clone()
    return c:index_fill_(1, I({2}), 7)
  end},
}

return cases
