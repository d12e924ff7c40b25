-- The fused sequence ops: the recurrent cells dl.lstm_cell and dl.gru_cell
-- (src/cpu/cpu_rnn.c, src/autograd/grad_rnn.c) and the attention weights
-- dl.attention_softmax (cpu_attention.c, grad_attention.c): the same values
-- as the ops written from element-wise ones, gradients from the fused
-- backward and from the recorded one (create_graph) alike, second
-- derivatives, tangents, bad input. The layers built on them are checked
-- against PyTorch in nn_rnn_spec.lua and nn_attention_spec.lua.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end

local function lstm_ref(g, c)
  local q = g:chunk(4, g:dim())
  local c1 = q[2]:sigmoid() * c + q[1]:sigmoid() * q[3]:tanh()
  return q[4]:sigmoid() * c1:tanh(), c1
end

local function gru_ref(gi, gh, h)
  local i, g = gi:chunk(3, gi:dim()), gh:chunk(3, gh:dim())
  local rr, z = (i[1] + g[1]):sigmoid(), (i[2] + g[2]):sigmoid()
  local n = (i[3] + rr * g[3]):tanh()
  return n + z * (h - n)
end

local function lstm_both(g, c)
  local h, c1 = dl.lstm_cell(g, c)
  return dl.cat({h, c1}, -1)
end
local function lstm_ref_both(g, c)
  local h, c1 = lstm_ref(g, c)
  return dl.cat({h, c1}, -1)
end

describe("fused recurrent cells", function()
  it("equal the cells written from element-wise ops, float32 and float64, batched and not", function()
    for _, dt in ipairs({"float32", "float64"}) do
      local o = {dtype = dt}
      local tol = dt == "float32" and 1e-6 or 1e-14
      local g, c = dl.randn({5, 28}, o) * 3, dl.randn({5, 7}, o)
      H.assert_close(lstm_both(g, c), lstm_ref_both(g, c), tol)
      H.assert_close(lstm_both(g[2], c[2]), lstm_ref_both(g[2], c[2]), tol)
      local gi, gh, h = dl.randn({4, 9}, o) * 3, dl.randn({4, 9}, o) * 3, dl.randn({4, 3}, o)
      H.assert_close(dl.gru_cell(gi, gh, h), gru_ref(gi, gh, h), tol)
    end
  end)

  it("give the composed cells' gradients, with and without a recorded graph of them", function()
    local g, c, w = r(3, 8), r(3, 2), r(3, 4)
    local fast = {A.grad((lstm_both(g:requires_grad_(), c:requires_grad_()) * w):sum(), {g, c})}
    local rec = {A.grad((lstm_both(g, c) * w):sum(), {g, c}, nil, {create_graph = true})}
    local want = {A.grad((lstm_ref_both(g, c) * w):sum(), {g, c})}
    for i = 1, 2 do
      H.assert_close(fast[i], want[i], 1e-13)
      H.assert_close(rec[i], want[i], 1e-13)
    end
    local gi, gh, h, v = r(2, 6):requires_grad_(), r(2, 6):requires_grad_(), r(2, 2):requires_grad_(), r(2, 2)
    local gf = {A.grad((dl.gru_cell(gi, gh, h) * v):sum(), {gi, gh, h})}
    local gr = {A.grad((gru_ref(gi, gh, h) * v):sum(), {gi, gh, h})}
    for i = 1, 3 do H.assert_close(gf[i], gr[i], 1e-13) end
  end)

  it("have second derivatives and tangents (double backward, jvp)", function()
    local ins = {r(2, 8):requires_grad_(), r(2, 2):requires_grad_()}
    assert.is_true(A.gradcheck(H.grad_of(lstm_both, r(8)), ins))
    H.check_jvp(lstm_both, {r(2, 8), r(2, 2)})
    local gins = {r(2, 6):requires_grad_(), r(2, 6):requires_grad_(), r(2, 2):requires_grad_()}
    assert.is_true(A.gradcheck(H.grad_of(dl.gru_cell, r(4)), gins))
    H.check_jvp(dl.gru_cell, {r(2, 6), r(2, 6), r(2, 2)})
    local h = dl.lstm_cell(r(2, 8):requires_grad_(), r(2, 2))
    assert.equal("ThnnFusedLstmCellBackward0", h.grad_fn:name())
  end)

  it("refuse states and gates that do not fit, naming the op and both shapes", function()
    H.assert_error(function() dl.lstm_cell(r(3, 8), r(3, 3)) end, "dl.lstm_cell", "gates [3,8]", "[3,3]")
    H.assert_error(function() dl.lstm_cell(r(2, 8), r(3, 2)) end, "dl.lstm_cell", "[2,8]", "[3,2]")
    H.assert_error(function() dl.lstm_cell(r(3, 8), dl.zeros(3, 2, 1)) end, "dl.lstm_cell", "[B, H] or [H]")
    H.assert_error(function() dl.lstm_cell(dl.randn(3, 8), r(3, 2)) end, "dl.lstm_cell", "float64")
    H.assert_error(function() dl.lstm_cell(r(3, 8), dl.zeros({3, 2}, {dtype = "int64"})) end, "dl.lstm_cell")
    H.assert_error(function() dl.gru_cell(r(3, 6), r(3, 9), r(3, 2)) end, "dl.gru_cell", "hidden gates [3,9]")
    H.assert_error(function() dl.gru_cell(r(3, 6), r(3, 6)) end, "dl.gru_cell")
  end)
end)

describe("dl.attention_softmax", function()
  local function ref(x, scale, causal)
    local s = x * scale
    if causal then s = s:masked_fill(dl.ones(x:size(-2), x:size(-1)):bool():triu(1), -math.huge) end
    return dl.F.softmax(s, -1)
  end

  it("is softmax of the scaled scores with the keys after each query cut (top-left when L ~= S)", function()
    for _, dt in ipairs({"float32", "float64"}) do
      local tol = dt == "float32" and 1e-6 or 1e-15
      for _, shape in ipairs({{2, 3, 5, 7}, {6, 4}, {3, 2, 9, 1}, {1, 300}}) do
        for _, causal in ipairs({false, true}) do
          local x = dl.randn(shape, {dtype = dt}) * 3
          H.assert_close(dl.attention_softmax(x, 0.37, causal), ref(x, 0.37, causal), tol)
        end
      end
    end
    local w = dl.attention_softmax(dl.zeros(3, 5), 1, true)
    H.assert_close(w[1], dl.tensor({1, 0, 0, 0, 0}), 0)
    H.assert_close(w[3], dl.tensor({1 / 3, 1 / 3, 1 / 3, 0, 0}), 1e-7)
  end)

  it("has the composed op's gradients by both routes, second derivatives and tangents", function()
    local x, g = r(2, 4, 6), r(2, 4, 6)
    local fast = A.grad((dl.attention_softmax(x:requires_grad_(), 0.5, true) * g):sum(), {x})
    local rec = A.grad((dl.attention_softmax(x, 0.5, true) * g):sum(), {x}, nil, {create_graph = true})
    local want = A.grad((ref(x, 0.5, true) * g):sum(), {x})
    H.assert_close(fast, want, 1e-13)
    H.assert_close(rec, want, 1e-13)
    local f = function(t) return dl.attention_softmax(t, -1.5, true) end
    assert.is_true(A.gradcheck(H.grad_of(f, r(12)), {r(3, 4):requires_grad_()}))
    H.check_jvp(f, {r(2, 3, 4)})
    assert.equal("AttentionSoftmaxBackward0", f(r(2, 2):requires_grad_()).grad_fn:name())
  end)

  it("refuses integer scores, fewer than 2 dims and a non-finite scale", function()
    H.assert_error(function() dl.attention_softmax(dl.ones({2, 2}, {dtype = "int64"})) end, "dl.attention_softmax", "float")
    H.assert_error(function() dl.attention_softmax(dl.randn(4)) end, "dl.attention_softmax", "[..., L, S]")
    H.assert_error(function() dl.attention_softmax(dl.randn(2, 2), 0 / 0) end, "dl.attention_softmax", "finite")
    H.assert_error(function() dl.attention_softmax(dl.randn(2, 2), 1, "yes") end, "dl.attention_softmax")
  end)
end)
