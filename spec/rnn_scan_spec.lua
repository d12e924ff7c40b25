-- The whole-sequence LSTM and GRU layer ops behind nn.LSTM and nn.GRU
-- (dl._lstm_scan, dl._gru_scan): every output and every input's gradient
-- equal to the same layer written step by step with the per-step ops
-- (input projection, addmm, dl.lstm_cell / dl.gru_cell), forwards and
-- reversed, with and without biases; gradcheck, jvp and double backward;
-- the float32 path (the hidden weight packed once for all the steps on
-- CPUs with AVX-512) against float64; bad input. The layers themselves are
-- checked against PyTorch in nn_rnn_spec.lua.
local dl = require "dlua"
local H = require "spec.helper"
local A = dl.autograd

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end

-- the layer step by step: x [T, B, I] -> every h (and the last c)
local function composed(lstm, x, h0, c0, wi, wh, bi, bh, rev)
  local T, B = x:size(1), x:size(2)
  local gi = dl.mm(x:reshape(T * B, x:size(3)), wi:t())
  if bi then gi = gi + (lstm and (bi + bh) or bi) end
  gi = gi:view(T, B, -1)
  local outs, h, c = {}, h0, c0
  for s = 1, T do
    local t = rev and T + 1 - s or s
    if lstm then
      h, c = dl.lstm_cell(dl.addmm(gi:select(1, t), h, wh:t()), c)
    else
      local q = dl.mm(h, wh:t())
      if bh then q = q + bh end
      h = dl.gru_cell(gi:select(1, t), q, h)
    end
    outs[t] = h
  end
  return dl.stack(outs, 1), c
end

-- the op under test with the composed one's argument list
local function fused(lstm, x, h0, c0, wi, wh, bi, bh, rev)
  if lstm then return dl._lstm_scan(x, h0, c0, wi, wh, bi, bh, rev) end
  return dl._gru_scan(x, h0, wi, wh, bi, bh, rev)
end

-- x, h0, c0, w_ih, w_hh[, b_ih, b_hh] for a layer of G gates
local function inputs(G, T, B, I, Hs, bias, opts)
  local function mk(...) return dl.randn({...}, opts or F64) end
  local t = {mk(T, B, I), mk(B, Hs), mk(B, Hs), mk(G * Hs, I) * 0.5, mk(G * Hs, Hs) * 0.5}
  if bias then t[6], t[7] = mk(G * Hs), mk(G * Hs) end
  return t
end

describe("dl._lstm_scan and dl._gru_scan", function()
  for _, lstm in ipairs({true, false}) do
    local name, G = lstm and "LSTM" or "GRU", lstm and 4 or 3
    for _, rev in ipairs({false, true}) do
      for _, bias in ipairs({true, false}) do
        local title = string.format("%s%s%s", name, rev and " reversed" or "", bias and "" or " without biases")

        it(title .. ": outputs and every gradient equal the step-by-step layer's", function()
          dl.manual_seed(3)
          local ins = inputs(G, 5, 3, 6, 4, bias)
          for _, t in ipairs(ins) do t:requires_grad_() end
          local a1, a2 = fused(lstm, ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], ins[7], rev)
          local b1, b2 = composed(lstm, ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], ins[7], rev)
          H.assert_close(a1, b1, 1e-14)
          if lstm then H.assert_close(a2, b2, 1e-14) end
          local list = {}
          for i, t in ipairs(ins) do
            if lstm or i ~= 3 then list[#list + 1] = t end
          end
          local gh, gc = r(5, 3, 4), r(3, 4)
          local ga = table.pack(A.grad(lstm and {a1, a2} or {a1}, list, lstm and {gh, gc} or {gh}))
          local gb = table.pack(A.grad(lstm and {b1, b2} or {b1}, list, lstm and {gh, gc} or {gh}))
          assert.equal(#list, ga.n)
          for i = 1, #list do H.assert_close(ga[i], gb[i], 1e-13) end
        end)

        it(title .. ": gradcheck, jvp and double backward", function()
          dl.manual_seed(4)
          local function make()
            local t = inputs(G, 3, 2, 3, 2, bias)
            if not lstm then table.remove(t, 3) end
            return t
          end
          local fn = function(...)
            local a = {...}
            if lstm then
              local hs, c = dl._lstm_scan(a[1], a[2], a[3], a[4], a[5], a[6], a[7], rev)
              return dl.cat({hs:reshape(-1), c:reshape(-1)})
            end
            return dl._gru_scan(a[1], a[2], a[3], a[4], a[5], a[6], rev)
          end
          H.check_derivatives(fn, make)
        end)
      end
    end

    it(name .. ": float32 (the packed weight's path) within float32 rounding of float64", function()
      dl.manual_seed(5)
      -- odd sizes: a panel of the packed weight only partly filled, batch rows
      -- that leave a partial block
      for _, d in ipairs({{7, 13, 5, 33}, {4, 1, 3, 20}, {3, 9, 128, 128}, {2, 32, 16, 100}}) do
        local T, B, I, Hs = table.unpack(d)
        local ins = inputs(G, T, B, I, Hs, true)
        local function run(dt)
          local t = {}
          for i, v in ipairs(ins) do t[i] = v:to(dt):requires_grad_() end
          local hs, c = fused(lstm, t[1], t[2], t[3], t[4], t[5], t[6], t[7], false)
          local outs = lstm and {hs, c} or {hs}
          local seeds = {dl.ones(T, B, Hs, {dtype = dt}), lstm and dl.ones(B, Hs, {dtype = dt}) or nil}
          local list = {}
          for i, v in ipairs(t) do
            if lstm or i ~= 3 then list[#list + 1] = v end
          end
          local g = table.pack(A.grad(outs, list, seeds))
          local all = {hs, c}
          for i = 1, g.n do all[#all + 1] = g[i] end
          return all
        end
        local a, b = run("float32"), run("float64")
        for i = 1, #b do
          if b[i] then
            local err = ((a[i]:double() - b[i]):abs():max() / (b[i]:abs():max() + 1)):item()
            assert(err < 2e-5, string.format("%s %s: result %d off by %g", name, table.concat(d, "x"), i, err))
          end
        end
      end
    end)
  end

  it("bad input: errors name the op and the shapes", function()
    local x, h, c = dl.randn(3, 2, 4), dl.randn(2, 5), dl.randn(2, 5)
    local wi, wh = dl.randn(20, 4), dl.randn(20, 5)
    H.assert_error(function() dl._lstm_scan(x, h, c, wi, dl.randn(20, 4)) end, "lstm_scan", "hidden weight",
      "[20,4]", "[20, 5]")
    H.assert_error(function() dl._lstm_scan(x, dl.randn(3, 5), c, wi, wh) end, "lstm_scan", "initial hidden state")
    H.assert_error(function() dl._lstm_scan(x, h, dl.randn(2, 4), wi, wh) end, "lstm_scan", "initial cell state")
    H.assert_error(function() dl._lstm_scan(dl.randn(3, 2, 3), h, c, wi, wh) end, "lstm_scan", "input weight")
    H.assert_error(function() dl._lstm_scan(dl.randn(0, 2, 4), h, c, wi, wh) end, "lstm_scan", "T >= 1")
    H.assert_error(function() dl._lstm_scan(dl.randn(2, 4), h, c, wi, wh) end, "lstm_scan", "the input")
    H.assert_error(function() dl._lstm_scan(dl.randn(3, 2, 0), h, c, dl.randn(20, 0), wh) end, "lstm_scan", "I >= 1")
    H.assert_error(function() dl._gru_scan(x, dl.randn(2, 0), dl.randn(0, 4), dl.randn(0, 0)) end, "gru_scan", "H >= 1")
    H.assert_error(function() dl._lstm_scan(x, h, c, wi, wh, dl.randn(20)) end, "lstm_scan", "both biases")
    H.assert_error(function() dl._lstm_scan(x, h, c, wi, wh, dl.randn(20), dl.randn(12)) end, "hidden bias")
    H.assert_error(function() dl._lstm_scan(x:double(), h, c, wi, wh) end, "lstm_scan", "float32")
    H.assert_error(function() dl._lstm_scan(x:long(), h:long(), c:long(), wi:long(), wh:long()) end, "lstm_scan",
      "int64")
    H.assert_error(function() dl._gru_scan(x, h, dl.randn(15, 4), dl.randn(15, 4)) end, "gru_scan", "hidden weight")
    H.assert_error(function() dl._gru_scan(x, h, dl.randn(15, 4)) end, "tensor")
  end)
end)
