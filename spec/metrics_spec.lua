-- dl.metrics: accuracy and confusion_matrix on 1-based class labels.
local dl = require "dlua"
local H = require "spec.helper"

local function long(t) return dl.tensor(t, {dtype = "int64"}) end

describe("dl.metrics.accuracy", function()
  it("compares label tensors and returns a Lua number", function()
    local acc = dl.metrics.accuracy(long({1, 2, 3, 3}), long({1, 2, 2, 3}))
    assert.equal("number", type(acc))
    assert.equal(0.75, acc)
  end)

  it("takes the argmax of N x C logits", function()
    local logits = dl.tensor({{2, 1, 0}, {0, 5, 1}, {0.1, 0.2, 0.3}, {9, 0, 0}})
    assert.equal(0.5, dl.metrics.accuracy(logits, long({1, 3, 3, 2})))
    assert.equal(0.5, dl.metrics.accuracy(logits:double(), long({1, 3, 3, 2})))
  end)

  it("accepts float labels, non-contiguous scores and scores that require grad", function()
    assert.equal(1, dl.metrics.accuracy(dl.tensor({1.0, 2}), dl.tensor({1, 2}, {dtype = "float64"})))
    local scores = dl.tensor({{0, 1}, {1, 0}, {1, 0}}):t() -- [2, 3]: rows are samples after t()
    assert.is_false(scores:is_contiguous())
    assert.equal(2 / 2, dl.metrics.accuracy(scores, long({2, 1})))
    local logits = dl.tensor({{0.0, 1}, {1, 0}}, {requires_grad = true})
    assert.equal(0.5, dl.metrics.accuracy(logits, long({2, 2})))
  end)

  it("agrees with a plain Lua count on random data", function()
    dl.manual_seed(3)
    local logits = dl.randn(200, 7)
    local target = dl.randint(1, 8, {200})
    local hits = 0
    for i = 1, 200 do
      local best, bj = -math.huge, 0
      for j = 1, 7 do
        local v = logits:get(i, j)
        if v > best then best, bj = v, j end
      end
      if bj == target:get(i) then hits = hits + 1 end
    end
    assert.equal(hits / 200, dl.metrics.accuracy(logits, target))
  end)

  it("rejects mismatched sizes, bad shapes, empty input and non-tensors", function()
    H.assert_error(function() dl.metrics.accuracy(long({1, 2}), long({1, 2, 3})) end,
      "dl.metrics.accuracy", "[2]", "[3]")
    H.assert_error(function() dl.metrics.accuracy(dl.zeros(2, 3), long({1, 2, 3})) end, "[2]", "[3]")
    H.assert_error(function() dl.metrics.accuracy(dl.zeros(2, 3, 4), long({1, 2})) end, "[2,3,4]")
    H.assert_error(function() dl.metrics.accuracy(long({1, 2}), long({{1, 2}})) end, "target", "[1,2]")
    H.assert_error(function() dl.metrics.accuracy(long({}), long({})) end, "empty")
    H.assert_error(function() dl.metrics.accuracy({1}, long({1})) end, "bad argument #1", "tensor")
    H.assert_error(function() dl.metrics.accuracy(long({1}), 1) end, "bad argument #2", "tensor")
    H.assert_error(function() dl.metrics.accuracy(dl.tensor({true}), long({1})) end, "bool")
  end)

  it("refuses labels outside 1..C and fractional labels instead of scoring them as misses", function()
    local scores = dl.tensor({{1, 2}, {3, 1}})
    H.assert_error(function() dl.metrics.accuracy(scores, long({1, 0})) end,
      "dl.metrics.accuracy", "target labels must be in 1..2", "0..1")
    H.assert_error(function() dl.metrics.accuracy(scores, long({1, 3})) end, "1..2", "1..3")
    H.assert_error(function() dl.metrics.accuracy(long({0, 1}), long({1, 1})) end, "pred labels", "0..1")
    H.assert_error(function() dl.metrics.accuracy(dl.tensor({1.5, 2}), long({1, 2})) end,
      "pred labels must be whole numbers")
    H.assert_error(function() dl.metrics.confusion_matrix(long({1, 2}), dl.tensor({1, 2.25}), 2) end,
      "dl.metrics.confusion_matrix", "target labels must be whole numbers")
  end)
end)

describe("dl.metrics.confusion_matrix", function()
  it("counts true classes in rows and predictions in columns", function()
    local cm = dl.metrics.confusion_matrix(long({1, 2, 2, 3, 1}), long({1, 2, 3, 3, 2}), 3)
    assert.equal("int64", cm.dtype)
    assert.same({{1, 0, 0}, {1, 1, 0}, {0, 1, 1}}, cm:totable())
  end)

  it("sums to N, its diagonal to the hits, its rows to the class counts", function()
    dl.manual_seed(4)
    local logits = dl.randn(300, 5)
    local target = dl.randint(1, 6, {300})
    local cm = dl.metrics.confusion_matrix(logits, target, 5)
    assert.same({5, 5}, cm:size())
    assert.equal(300, cm:sum():item())
    local diag = 0
    for i = 1, 5 do diag = diag + cm:get(i, i) end
    assert.equal(dl.metrics.accuracy(logits, target), diag / 300)
    local rows = cm:sum(2)
    for c = 1, 5 do assert.equal(target:eq(c):sum():item(), rows:get(c)) end
    local cols, pred = cm:sum(1), logits:argmax(2)
    for c = 1, 5 do assert.equal(pred:eq(c):sum():item(), cols:get(c)) end
  end)

  it("infers num_classes from the labels or the scores", function()
    assert.same({{0, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 1}},
      dl.metrics.confusion_matrix(long({2, 4}), long({2, 4})):totable())
    assert.same({4, 4}, dl.metrics.confusion_matrix(dl.zeros(2, 4), long({1, 1})):size())
  end)

  it("gives a zero matrix for empty input with num_classes", function()
    assert.same({{0, 0}, {0, 0}}, dl.metrics.confusion_matrix(long({}), long({}), 2):totable())
  end)

  it("rejects labels out of range and a bad num_classes", function()
    H.assert_error(function() dl.metrics.confusion_matrix(long({1, 4}), long({1, 2}), 3) end,
      "dl.metrics.confusion_matrix", "pred", "1..3")
    H.assert_error(function() dl.metrics.confusion_matrix(long({1, 2}), long({0, 2}), 3) end, "target", "1..3")
    H.assert_error(function() dl.metrics.confusion_matrix(long({1}), long({1}), 0) end, "bad argument #3")
    H.assert_error(function() dl.metrics.confusion_matrix(long({1}), long({1}), 1.5) end, "bad argument #3")
    H.assert_error(function() dl.metrics.confusion_matrix(dl.zeros(1, 4), long({1}), 3) end, "4 classes", "3")
    H.assert_error(function() dl.metrics.confusion_matrix(long({}), long({})) end, "empty")
    H.assert_error(function() dl.metrics.confusion_matrix(long({1, 2}), long({1})) end, "[2]", "[1]")
  end)
end)
