-- RNN, LSTM, GRU and their cells: outputs, final states and the gradients
-- of the input, the initial state and every parameter against PyTorch
-- (spec/fixtures/rnn_reference.py -> rnn_reference.lua, float64); parameter
-- names and order, state_dict keys and reprs as PyTorch's; gradcheck, jvp
-- and double backward on a tiny LSTM and GRU; dropout between layers; bad
-- input.
local dl = require "dlua"
local H = require "spec.helper"
local ref = require "spec.fixtures.rnn_reference"
local nn, A = dl.nn, dl.autograd

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end

local function tensor(t) return dl.tensor(t.values, F64):view(t.shape):requires_grad_() end

local close = H.assert_pytorch

local function names_of(m)
  local names = {}
  for i, e in ipairs(m:named_parameters()) do names[i] = e[1] end
  return names
end

-- the case's module in float64 with PyTorch's parameters copied in by name
local function build(c, extra)
  local opts = {dtype = "float64"}
  for k, v in pairs(c.opts) do opts[k] = v end
  for k, v in pairs(extra or {}) do opts[k] = v end
  local m = nn[c.class](c.args[1], c.args[2], opts)
  local want = {}
  for i, p in ipairs(c.params) do want[i] = p.name end
  assert.same(want, names_of(m))
  dl.no_grad(function()
    for _, p in ipairs(c.params) do m[p.name]:copy_(dl.tensor(p.values, F64):view(p.shape)) end
  end)
  return m
end

-- the case's input and initial state (nil, a tensor or an {h, c} pair) as leaves
local function inputs(c)
  local x, st = tensor(c.x), {}
  for i, s in ipairs(c.state or {}) do st[i] = tensor(s) end
  local state = st[2] and st or st[1]
  return x, state, st
end

-- out (nil for a cell) and the final states as a list
local function call(m, c, x, state)
  if c.class:find("Cell$") then return nil, {m(x, state)} end
  local out, s = m(x, state)
  return out, c.class == "LSTM" and s or {s}
end

local function check_case(c)
  local m = build(c)
  local x, state, st = inputs(c)
  local out, finals = call(m, c, x, state)
  local loss = dl.zeros({}, F64)
  if c.out then
    assert.same(c.out.shape, out:size())
    close(out, c.out.values, c.name .. " output")
    loss = loss + (out * dl.tensor(c.gout, F64):view(c.out.shape)):sum()
  end
  assert.equal(#c.finals, #finals)
  for i, f in ipairs(c.finals) do
    assert.same(f.shape, finals[i]:size())
    close(finals[i], f.values, c.name .. " final state " .. i)
    loss = loss + (finals[i] * dl.tensor(c.gfinals[i], F64):view(f.shape)):sum()
  end
  loss:backward()
  close(x.grad, c.x.grad, c.name .. " grad of the input")
  for i, s in ipairs(c.state or {}) do close(st[i].grad, s.grad, c.name .. " grad of initial state " .. i) end
  for _, p in ipairs(c.params) do close(m[p.name].grad, p.grad, c.name .. " grad of " .. p.name) end
end

describe("against PyTorch", function()
  for _, c in ipairs(ref.layers) do
    it(c.name .. ": output, final states and every gradient", function() check_case(c) end)
  end
  for _, c in ipairs(ref.cells) do
    it(c.name .. ": new state and every gradient", function() check_case(c) end)
  end
  it("state_dict keys and reprs are PyTorch's", function()
    for _, c in ipairs(ref.layers) do
      local m = build(c)
      assert.same(c.keys, nn.state_dict_keys(m:state_dict()))
      assert.equal(c.repr, tostring(m))
    end
    for _, c in ipairs(ref.cells) do
      local m = build(c)
      assert.same(c.keys, nn.state_dict_keys(m:state_dict()))
      assert.equal(c.repr, tostring(m))
    end
    for _, c in ipairs(ref.reprs) do
      assert.equal(c.repr, tostring(nn[c.class](c.args[1], c.args[2], c.opts)))
    end
  end)
  it("a PyTorch state dict loads by name", function()
    local c = ref.layers[1]
    local sd = {}
    for _, p in ipairs(c.params) do sd[p.name] = dl.tensor(p.values, F64):view(p.shape) end
    local m = nn[c.class](c.args[1], c.args[2], {num_layers = 2, bidirectional = true, dtype = "float64"})
    m:load_state_dict(sd)
    local x, state = inputs(c)
    close(m(x, state), c.out.values, "output after load_state_dict")
  end)
end)

describe("defaults", function()
  it("parameters are uniform in [-1/sqrt(hidden), 1/sqrt(hidden)], in float32", function()
    dl.manual_seed(3)
    for _, m in ipairs({nn.LSTM(3, 16, {num_layers = 2}), nn.GRUCell(5, 16), nn.RNN(2, 16)}) do
      for _, e in ipairs(m:named_parameters()) do
        local p = e[2]
        assert.equal("float32", p.dtype)
        assert.is_true(p:abs():max():item() <= 0.25, e[1])
        assert.is_true(p:abs():max():item() > 0.2, e[1]) -- spread over the range, not zeros
      end
    end
  end)
  it("a missing state is zeros", function()
    local m = nn.GRU(3, 4, {dtype = "float64", num_layers = 2})
    local x = r(5, 2, 3)
    local out, h = m(x)
    local out0, h0 = m(x, dl.zeros(2, 2, 4, F64))
    H.assert_close(out, out0, 0)
    H.assert_close(h, h0, 0)
    local cell = nn.LSTMCell(3, 4, F64)
    local h1, c1 = cell(x[1])
    local h2, c2 = cell(x[1], {dl.zeros(2, 4, F64), dl.zeros(2, 4, F64)})
    H.assert_close(h1, h2, 0)
    H.assert_close(c1, c2, 0)
  end)
  it("an empty batch gives empty outputs and states", function()
    local out, s = nn.LSTM(3, 4, {bidirectional = true})(dl.randn(5, 0, 3))
    assert.same({5, 0, 8}, out:size())
    assert.same({2, 0, 4}, s[2]:size())
    assert.same({0, 4}, nn.GRUCell(3, 4)(dl.randn(0, 3)):size())
  end)
  it("a layer of one step is its cell", function()
    for _, kind in ipairs({"RNN", "LSTM", "GRU"}) do
      local m = nn[kind](3, 4, F64)
      local cell = nn[kind .. "Cell"](3, 4, F64)
      dl.no_grad(function()
        for _, k in ipairs({"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) do cell[k]:copy_(m[k .. "_l0"]) end
      end)
      local x = r(1, 2, 3)
      local out = m(x)
      H.assert_close(out[1], (cell(x[1])), 1e-15)
    end
  end)
  it("the final state of a bidirectional layer is the forward direction's last step and the reverse's first",
    function()
      local m = nn.LSTM(2, 3, {bidirectional = true, dtype = "float64"})
      local out, s = m(r(4, 2, 2))
      H.assert_close(s[1][1], out[4]:narrow(2, 1, 3), 0)
      H.assert_close(s[1][2], out[1]:narrow(2, 4, 3), 0)
    end)
end)

-- m's forward as one function of its input, initial state and parameters
-- (swapped in raw for the call, so finite differences and tangents reach
-- them); one output: out, h_n (and c_n) flattened into one vector
local function as_function(m, lstm)
  local names = names_of(m)
  local ns = lstm and 3 or 2
  return function(...)
    local a = table.pack(...)
    local saved = {}
    for i, n in ipairs(names) do
      saved[i] = rawget(m, n)
      rawset(m, n, a[ns + i])
    end
    local ok, out, s = pcall(m.forward, m, a[1], lstm and {a[2], a[3]} or a[2])
    for i, n in ipairs(names) do rawset(m, n, saved[i]) end
    assert(ok, out)
    local parts = {out:reshape(-1)}
    for _, t in ipairs(lstm and s or {s}) do parts[#parts + 1] = t:reshape(-1) end
    return dl.cat(parts, 1)
  end, names
end

describe("under autograd (T = 3, B = 2, in = 2, hidden = 2, float64)", function()
  local function tiny(kind, opts)
    dl.manual_seed(kind == "LSTM" and 31 or 32)
    local m = nn[kind](2, 2, opts)
    local fn, names = as_function(m, kind == "LSTM")
    local function leaves()
      local ins = {r(3, 2, 2), r(opts.bidirectional and 2 or 1, 2, 2)}
      if kind == "LSTM" then ins[3] = r(opts.bidirectional and 2 or 1, 2, 2) end
      for _, n in ipairs(names) do ins[#ins + 1] = m[n]:detach():clone() end
      for _, t in ipairs(ins) do t:requires_grad_() end
      return ins
    end
    return fn, leaves
  end
  for _, kind in ipairs({"LSTM", "GRU"}) do
    for _, variant in ipairs({{}, {bidirectional = true}}) do
      local opts = {dtype = "float64", bidirectional = variant.bidirectional}
      local title = kind .. (variant.bidirectional and " bidirectional" or "")
      it(title .. ": gradcheck of the input, the state and every parameter", function()
        local fn, leaves = tiny(kind, opts)
        assert.is_true(A.gradcheck(fn, leaves()))
      end)
      it(title .. ": forward mode (jvp) agrees with reverse mode", function()
        local fn, leaves = tiny(kind, opts)
        H.check_jvp(fn, leaves())
      end)
      it(title .. ": double backward", function()
        local fn, leaves = tiny(kind, opts)
        local ins = leaves()
        local w = r(dl.no_grad(fn, table.unpack(ins)):numel())
        assert.is_true(A.gradcheck(H.grad_of(fn, w), ins))
      end)
    end
  end
  it("RNN relu and the cells: gradcheck and jvp", function()
    dl.manual_seed(33)
    local rnn = nn.RNN(2, 2, {nonlinearity = "relu", num_layers = 2, dtype = "float64"})
    local fn, names = as_function(rnn, false)
    local ins = {r(3, 2, 2), r(2, 2, 2)}
    for _, n in ipairs(names) do ins[#ins + 1] = rnn[n]:detach():clone() end
    for _, t in ipairs(ins) do t:requires_grad_() end
    assert.is_true(A.gradcheck(fn, ins))
    H.check_jvp(fn, ins)
    for _, kind in ipairs({"RNNCell", "LSTMCell", "GRUCell"}) do
      local cell = nn[kind](2, 3, F64)
      local lstm = kind == "LSTMCell"
      local f = function(x, h, c)
        local h1, c1 = cell(x, lstm and {h, c} or h)
        return lstm and dl.cat({h1, c1}, 2) or h1
      end
      local cins = {r(2, 2):requires_grad_(), r(2, 3):requires_grad_(), r(2, 3):requires_grad_()}
      assert.is_true(A.gradcheck(f, cins))
      H.check_jvp(f, cins)
    end
  end)
end)

describe("dropout between layers", function()
  local c
  for _, case in ipairs(ref.layers) do
    if case.name == "lstm_2layer_bidirectional" then c = case end
  end
  it("is off in eval mode", function()
    local m = build(c, {dropout = 0.5}):eval()
    local x, state = inputs(c)
    close(m(x, state), c.out.values, "eval output")
  end)
  it("is drawn in training mode, from dl.manual_seed", function()
    local m = build(c, {dropout = 0.5})
    local x, state = inputs(c)
    dl.manual_seed(5)
    local a = m(x, state)
    dl.manual_seed(5)
    local b = m(x, state)
    H.assert_close(a, b, 0)
    assert.is_true(H.max_abs_diff(a, dl.tensor(c.out.values, F64):view(c.out.shape)) > 1e-3)
  end)
  it("with p = 1 the last layer sees zeros, so the output forgets the input", function()
    local m = build(c, {dropout = 1})
    local _, state = inputs(c)
    local a = m(r(4, 3, 3), state)
    local b = m(r(4, 3, 3), state)
    H.assert_close(a, b, 0)
  end)
  it("is never applied after the last layer", function()
    local m = nn.GRU(3, 4, {dropout = 1, dtype = "float64"})
    local x = r(4, 2, 3)
    local a = m(x)
    m:eval()
    H.assert_close(a, m(x), 0)
  end)
end)

describe("bad input", function()
  local lstm = nn.LSTM(3, 4, {num_layers = 2})
  local gru = nn.GRU(3, 4, {bidirectional = true, batch_first = true})
  local rnn = nn.RNN(3, 4)
  local x = dl.randn(5, 2, 3)
  it("a wrong number of features", function()
    H.assert_error(function() lstm(dl.randn(5, 3, 7)) end, "LSTM(3, 4)", "[5,3,7]", "7 features", "expected 3")
    H.assert_error(function() nn.GRUCell(3, 4)(dl.randn(2, 5)) end, "GRUCell(3, 4)", "[2,5]", "5 features")
  end)
  it("a wrong number of dims", function()
    H.assert_error(function() rnn(dl.randn(2, 5, 2, 3)) end, "RNN(3, 4)", "[2,5,2,3]", "3-D")
    H.assert_error(function() rnn(dl.randn(3)) end, "RNN(3, 4)", "[3]")
    H.assert_error(function() nn.LSTMCell(3, 4)(dl.randn(1, 2, 3)) end, "LSTMCell(3, 4)", "[1,2,3]", "2-D")
  end)
  it("an input that is not a tensor, or of another dtype", function()
    H.assert_error(function() rnn({1, 2, 3}) end, "RNN(3, 4)", "must be a tensor")
    H.assert_error(function() rnn(x:double()) end, "RNN(3, 4)", "[5,2,3]", "float64", "float32")
    H.assert_error(function() nn.RNNCell(3, 4)(dl.ones(2, 3, {dtype = "int64"})) end, "RNNCell(3, 4)", "int64")
  end)
  it("no time steps", function()
    H.assert_error(function() rnn(dl.randn(0, 2, 3)) end, "RNN(3, 4)", "[0,2,3]", "no time steps")
  end)
  it("a hidden state of the wrong batch or shape, naming both shapes", function()
    H.assert_error(function() rnn(x, dl.zeros(1, 3, 4)) end, "RNN(3, 4)", "h_0", "[1,3,4]", "[1,2,4]", "[5,2,3]")
    H.assert_error(function() rnn(x, dl.zeros(1, 2, 5)) end, "RNN(3, 4)", "[1,2,5]", "[1,2,4]")
    H.assert_error(function() gru(dl.randn(2, 5, 3), dl.zeros(1, 2, 4)) end, "GRU(3, 4)", "[1,2,4]", "[2,2,4]")
    H.assert_error(function() lstm(x, {dl.zeros(2, 2, 4), dl.zeros(2, 3, 4)}) end, "LSTM(3, 4)", "c_0", "[2,3,4]",
      "[2,2,4]")
    -- unbatched input takes an unbatched state
    H.assert_error(function() rnn(dl.randn(5, 3), dl.zeros(1, 1, 4)) end, "RNN(3, 4)", "[1,1,4]", "[1,4]")
    H.assert_error(function() nn.GRUCell(3, 4)(dl.randn(2, 3), dl.zeros(3, 4)) end, "GRUCell(3, 4)", "[3,4]", "[2,4]")
    H.assert_error(function() nn.RNNCell(3, 4)(dl.randn(3), dl.zeros(1, 4)) end, "RNNCell(3, 4)", "[1,4]", "[4]")
    H.assert_error(function() rnn(x, dl.zeros(1, 2, 4, {dtype = "float64"})) end, "RNN(3, 4)", "h_0", "float64")
  end)
  it("a state that is not a tensor, or not an {h, c} pair for an LSTM", function()
    H.assert_error(function() rnn(x, "h") end, "RNN(3, 4)", "must be a tensor", "string")
    H.assert_error(function() gru(dl.randn(2, 5, 3), {dl.zeros(2, 2, 4)}) end, "GRU(3, 4)", "must be a tensor", "table")
    H.assert_error(function() lstm(x, dl.zeros(2, 2, 4)) end, "LSTM(3, 4)", "{h, c} pair", "single tensor")
    H.assert_error(function() lstm(x, {dl.zeros(2, 2, 4)}) end, "LSTM(3, 4)", "{h, c} pair", "1 entries")
    H.assert_error(function() lstm(x, {dl.zeros(2, 2, 4), 0}) end, "LSTM(3, 4)", "{h, c} pair")
    H.assert_error(function() lstm(x, {h = dl.zeros(2, 2, 4), c = dl.zeros(2, 2, 4)}) end, "LSTM(3, 4)", "{h, c} pair")
    H.assert_error(function() nn.LSTMCell(3, 4)(dl.randn(2, 3), dl.zeros(2, 4)) end, "LSTMCell(3, 4)", "{h, c} pair")
    H.assert_error(function() nn.RNNCell(3, 4)(dl.randn(2, 3), 1) end, "RNNCell(3, 4)", "must be a tensor")
  end)
  it("dropout outside [0, 1]", function()
    H.assert_error(function() nn.LSTM(3, 4, {dropout = 1.5}) end, "dl.nn.LSTM", "dropout", "[0, 1]", "1.5")
    H.assert_error(function() nn.GRU(3, 4, {dropout = -0.1}) end, "dl.nn.GRU", "dropout", "-0.1")
    H.assert_error(function() nn.RNN(3, 4, {dropout = "0.5"}) end, "dl.nn.RNN", "dropout")
    H.assert_error(function() nn.RNN(3, 4, {dropout = 0 / 0}) end, "dl.nn.RNN", "dropout")
  end)
  it("unknown options", function()
    H.assert_error(function() nn.LSTM(3, 4, {nonlinearity = "relu"}) end, "dl.nn.LSTM", "unknown option 'nonlinearity'")
    H.assert_error(function() nn.GRU(3, 4, {proj_size = 2}) end, "dl.nn.GRU", "unknown option 'proj_size'")
    H.assert_error(function() nn.RNN(3, 4, {layers = 2}) end, "dl.nn.RNN", "unknown option 'layers'")
    H.assert_error(function() nn.LSTMCell(3, 4, {nonlinearity = "tanh"}) end, "dl.nn.LSTMCell", "unknown option")
    H.assert_error(function() nn.GRU(3, 4, 2) end, "dl.nn.GRU", "options table")
  end)
  it("a nonlinearity other than tanh or relu", function()
    H.assert_error(function() nn.RNN(3, 4, {nonlinearity = "sigmoid"}) end, "dl.nn.RNN", "tanh", "relu", "sigmoid")
    H.assert_error(function() nn.RNNCell(3, 4, {nonlinearity = "gelu"}) end, "dl.nn.RNNCell", "gelu")
  end)
  it("num_layers < 1 and other bad sizes", function()
    H.assert_error(function() nn.LSTM(3, 4, {num_layers = 0}) end, "dl.nn.LSTM", "num_layers", "0")
    H.assert_error(function() nn.GRU(3, 4, {num_layers = 1.5}) end, "dl.nn.GRU", "num_layers", "1.5")
    H.assert_error(function() nn.RNN(0, 4) end, "dl.nn.RNN", "input_size")
    H.assert_error(function() nn.GRUCell(3, 0) end, "dl.nn.GRUCell", "hidden_size")
    H.assert_error(function() nn.LSTM(3, 4, {proj_size = 4}) end, "dl.nn.LSTM", "proj_size", "smaller")
    H.assert_error(function() nn.LSTM(3, 4, {proj_size = -1}) end, "dl.nn.LSTM", "proj_size")
    H.assert_error(function() nn.LSTM(3, 4, {bidirectional = 1}) end, "dl.nn.LSTM", "bidirectional", "boolean")
  end)
end)
