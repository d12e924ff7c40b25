-- Embedding against PyTorch (spec/fixtures/embedding_reference.py, float64),
-- triu/tril against their definition, dl.multinomial's distribution and
-- errors, and what the sequence models need of them.
local dl = require "dlua"
local H = require "spec.helper"
local ref = require "spec.fixtures.embedding_reference"
local nn, F, A = dl.nn, dl.nn.functional, dl.autograd

local F64 = {dtype = "float64"}

describe("Embedding against PyTorch", function()
  for _, name in ipairs(H.sorted_keys(ref)) do
    it(name, function()
      local c = ref[name]
      local w = dl.tensor(c.weight.values, F64):view(c.weight.shape):requires_grad_()
      local idx = dl.tensor(c.idx.values):long():view(c.idx.shape)
      local out = F.embedding(idx, w, c.opts)
      assert.same({c.idx.shape[1], c.idx.shape[2], c.weight.shape[2]}, out:size())
      H.assert_close(H.flat(out), c.out, 1e-12)
      out:backward(dl.tensor(c.gout, F64):view(out:size()))
      H.assert_close(H.flat(w.grad), c.grad, 1e-12)
      H.assert_close(H.flat(w:detach()), c.weight_after, 1e-12) -- max_norm renormalised the rows in place
    end)
  end

  it("the module: N(0, 1) weights, a zero padding row, PyTorch's repr and names", function()
    dl.manual_seed(5)
    local e = nn.Embedding(1000, 16, {padding_idx = 3})
    assert.same({"weight"}, {e:named_parameters()[1][1]})
    assert.equal(0, e.weight[3]:abs():sum():item())
    local w = e.weight:detach()
    assert(math.abs(w:mean():item()) < 0.02 and math.abs(w:std():item() - 1) < 0.02)
    assert.equal("Embedding(1000, 16, padding_idx=3)", tostring(e))
    local y = e(dl.tensor({{1, 3}, {1000, 2}}))
    assert.same({2, 2, 16}, y:size())
    local p = nn.Embedding.from_pretrained(dl.eye(4))
    assert.is_false(p.weight.requires_grad)
    H.assert_close(p(dl.tensor({2})), dl.tensor({{0, 1, 0, 0}}), 0)
  end)

  it("gradcheck and jvp of the lookup with repeated indices and a padding row", function()
    local idx = dl.tensor({{1, 3, 3}, {2, 1, 4}})
    local fn = function(w) return F.embedding(idx, w, {padding_idx = 2}) end
    local w = dl.randn({4, 3}, F64):requires_grad_()
    assert.is_true(A.gradcheck(function(t) return F.embedding(idx, t) end, {w}))
    H.check_jvp(function(t) return F.embedding(idx, t) end, {dl.randn({4, 3}, F64)})
    fn(w):sum():backward()
    assert.equal(0, w.grad[2]:abs():sum():item())
  end)

  it("refuses bad input naming the layer and the index", function()
    local e = nn.Embedding(10, 4)
    H.assert_error(function() e(dl.tensor({1, 11})) end, "Embedding(10, 4)", "index 11", "[1, 10]")
    H.assert_error(function() e(dl.tensor({0, 3})) end, "Embedding(10, 4)", "index 0")
    H.assert_error(function() e(dl.tensor({1.5})) end, "Embedding(10, 4)", "int64")
    H.assert_error(function() nn.Embedding(10, 4, {padding_idx = 11}) end, "padding_idx")
    H.assert_error(function() nn.Embedding(0, 4) end, "num_embeddings")
    H.assert_error(function() nn.Embedding(10, 4, {sparse = true}) end, "unknown option 'sparse'")
    H.assert_error(function() F.embedding(dl.tensor({1}), dl.randn(3)) end, "dl.F.embedding", "2-D")
    H.assert_error(function() F.embedding(dl.tensor({1}), dl.randn(3, 2), {max_norm = -1}) end, "max_norm")
  end)
end)

describe("triu and tril", function()
  it("keep column - row >= k (triu) or <= k (tril) of the last two dims, any dtype", function()
    local x = dl.arange(1, 2 * 3 * 4 + 1):view(2, 3, 4)
    for _, k in ipairs({-2, -1, 0, 1, 3, 5}) do
      local u, l = x:triu(k), dl.tril(x, k)
      for b = 1, 2 do
        for i = 1, 3 do
          for j = 1, 4 do
            local v = x[b][i][j]:item()
            assert.equal(j - i >= k and v or 0, u[b][i][j]:item())
            assert.equal(j - i <= k and v or 0, l[b][i][j]:item())
          end
        end
      end
    end
    local m = dl.ones(3, 3):bool():triu(1)
    assert.equal("bool", m.dtype)
    assert.same({{false, true, true}, {false, false, true}, {false, false, false}}, m:totable())
  end)

  it("gradients and tangents are masked the same way (gradcheck, jvp, double backward)", function()
    local x = dl.randn({2, 3, 4}, F64):requires_grad_()
    assert.is_true(A.gradcheck(function(t) return t:triu(1) end, {x}))
    assert.is_true(A.gradcheck(function(t) return dl.tril(t, -1) end, {x}))
    H.check_jvp(function(t) return t:tril() end, {dl.randn({3, 3}, F64)})
    assert.is_true(A.gradcheck(H.grad_of(function(t) return (t * t):triu() end, dl.randn({24}, F64)), {x}))
    assert.equal("TriuBackward0", x:triu().grad_fn:name())
  end)

  it("refuse fewer than 2 dims and a non-integer diagonal", function()
    H.assert_error(function() dl.randn(3):triu() end, "triu", "at least 2 dims")
    H.assert_error(function() dl.randn(3, 3):tril(0.5) end, "tril")
  end)
end)

describe("dl.multinomial", function()
  it("draws each category in proportion to its weight (with replacement)", function()
    dl.manual_seed(1)
    local p = dl.tensor({{0.1, 0, 0.6, 0.3}, {1, 1, 1, 1}})
    local n = 20000
    local s = dl.multinomial(p, n, {replacement = true})
    assert.same({2, n}, s:size())
    assert.equal("int64", s.dtype)
    local counts = dl.one_hot(s, 4):sum(2):double() / n -- [2, 4]
    H.assert_close(counts[1], dl.tensor({0.1, 0, 0.6, 0.3}), 0.015)
    H.assert_close(counts[2], dl.tensor({0.25, 0.25, 0.25, 0.25}), 0.015)
  end)

  it("draws in proportion to weights as small as the smallest subnormal (with replacement)", function()
    dl.manual_seed(3)
    local n = 20000
    for _, c in ipairs({{1e-45, "float32"}, {3e-45, "float32"}, {5e-324, "float64"}}) do
      local s = dl.multinomial(dl.tensor({c[1], c[1]}, {dtype = c[2]}), n, {replacement = true})
      assert.near(0.5, s:eq(1):sum():item() / n, 0.015) -- was 0.25 for 1e-45: u * total rounded
    end
  end)

  it("without replacement: distinct categories, never a zero weight, first draws as sequential sampling", function()
    dl.manual_seed(2)
    local p = dl.tensor({0.5, 0.2, 0, 0.3})
    local firsts = dl.zeros(4)
    for _ = 1, 4000 do
      local s = dl.multinomial(p, 3)
      local seen = {}
      for i = 1, 3 do
        local v = s[i]:item()
        assert(not seen[v] and v ~= 3, "a repeated or zero-weight category")
        seen[v] = true
      end
      firsts[s[1]:item()] = firsts[s[1]:item()] + 1
    end
    H.assert_close(firsts / 4000, dl.tensor({0.5, 0.2, 0, 0.3}), 0.03)
  end)

  it("is seeded by dl.manual_seed", function()
    dl.manual_seed(9)
    local a = dl.multinomial(dl.ones(50), 10)
    dl.manual_seed(9)
    assert.same(a:totable(), dl.multinomial(dl.ones(50), 10):totable())
  end)

  it("refuses negative or non-finite weights, all-zero rows and too many draws", function()
    H.assert_error(function() dl.multinomial(dl.tensor({0.5, -0.1}), 1) end, "dl.multinomial", ">= 0")
    H.assert_error(function() dl.multinomial(dl.tensor({0.5, 0 / 0}), 1) end, "dl.multinomial", "finite")
    H.assert_error(function() dl.multinomial(dl.tensor({{1.0, 1.0}, {0.0, 0.0}}), 1) end, "sums to 0")
    H.assert_error(function() dl.multinomial(dl.tensor({1.0, 0.0, 1.0}), 3) end, "without replacement")
    H.assert_error(function() dl.multinomial(dl.tensor({1.0, 2.0}), 0) end, "num_samples")
    H.assert_error(function() dl.multinomial(dl.tensor({1, 2}):long(), 1) end, "float32 or float64")
    H.assert_error(function() dl.multinomial(dl.ones(2, 2, 2), 1) end, "1-D or 2-D")
  end)
end)
