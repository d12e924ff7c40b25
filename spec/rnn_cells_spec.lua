-- The fused recurrent cells dl.lstm_cell and dl.gru_cell (src/cpu/cpu_rnn.c,
-- src/autograd/grad_rnn.c): the same values as the cell written from
-- element-wise ops, gradients from the fused backward and from the recorded
-- one (create_graph) alike, second derivatives, tangents, bad input. The
-- layers built on them are checked against PyTorch in nn_rnn_spec.lua.
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
