-- F.scaled_dot_product_attention, MultiheadAttention and the Transformer
-- layers: values, attention weights and the gradients of every input and
-- parameter against PyTorch (spec/fixtures/attention_reference.py ->
-- attention_reference.lua, float64), gradcheck / jvp / double backward,
-- masks and their equivalences, dropout, deep copies, bad input.
local dl = require "dlua"
local H = require "spec.helper"
local ref = require "spec.fixtures.attention_reference"
local nn, F, A = dl.nn, dl.nn.functional, dl.autograd

local F64 = {dtype = "float64"}
local function r(...) return dl.randn({...}, F64) end
local sdpa = F.scaled_dot_product_attention

-- a fixture tensor entry as a tensor (bool masks come as 0/1)
local function tensor(e)
  local t = dl.tensor(e.values, F64):view(e.shape)
  if e.dtype == "bool" then t = t:gt(0.5) end
  return t
end

local close = H.assert_pytorch

local function layer_opts(c)
  return {dim_feedforward = c.dim_feedforward, dropout = c.dropout, activation = c.activation,
    norm_first = c.norm_first, batch_first = c.batch_first, layer_norm_eps = c.layer_norm_eps, dtype = "float64"}
end

-- the module of a fixture case, as the user would build it
local build = {
  mha = function(c)
    return nn.MultiheadAttention(c.embed_dim, c.num_heads, {bias = c.bias, batch_first = c.batch_first,
      kdim = c.kdim, vdim = c.vdim, dtype = "float64"})
  end,
  encoder_layer = function(c) return nn.TransformerEncoderLayer(c.d_model, c.nhead, layer_opts(c)) end,
  decoder_layer = function(c) return nn.TransformerDecoderLayer(c.d_model, c.nhead, layer_opts(c)) end,
  encoder = function(c)
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(c.d_model, c.nhead, layer_opts(c)), c.num_layers,
      {norm = nn.LayerNorm(c.d_model, F64)})
  end,
  decoder = function(c)
    return nn.TransformerDecoder(nn.TransformerDecoderLayer(c.d_model, c.nhead, layer_opts(c)), c.num_layers,
      {norm = nn.LayerNorm(c.d_model, F64)})
  end,
}

-- the call of a fixture case: out (and weights)
local call = {
  sdpa = function(_, c, i, masks)
    return sdpa(i.q, i.k, i.v, {attn_mask = i.attn_mask or masks.attn_mask, is_causal = c.is_causal, scale = c.scale})
  end,
  mha = function(m, c, i, masks)
    local o = {attn_mask = masks.attn_mask, key_padding_mask = masks.key_padding_mask, need_weights = c.need_weights,
      average_attn_weights = c.average_attn_weights}
    if c.self_attention then return m(i.x, i.x, i.x, o) end
    return m(i.query, i.key, i.value, o)
  end,
  encoder_layer = function(m, _, i, masks) return m(i.src, masks) end,
  decoder_layer = function(m, _, i, masks) return m(i.tgt, i.memory, masks) end,
  encoder = function(m, _, i, masks) return m(i.src, masks) end,
  decoder = function(m, _, i, masks) return m(i.tgt, i.memory, masks) end,
}

describe("against PyTorch (float64)", function()
  for _, c in ipairs(ref) do
    it(c.name .. ": output, weights and every gradient", function()
      local ins, masks = {}, {}
      for _, e in ipairs(c.inputs) do ins[e.name] = tensor(e):requires_grad_() end
      for k, e in pairs(c.masks) do masks[k] = tensor(e) end
      local m
      if build[c.kind] then
        m = build[c.kind](c.config)
        local sd, names = {}, {}
        for i, p in ipairs(c.params) do sd[p.name], names[i] = tensor(p), p.name end
        assert.same(names, nn.state_dict_keys(m:state_dict()))
        m:load_state_dict(sd)
        m:eval()
      end
      local out, w = call[c.kind](m, c.config, ins, masks)
      assert.same(c.out.shape, out:size())
      close(out, c.out.values, "output")
      local loss = (out * dl.tensor(c.gout, F64):view(c.out.shape)):sum()
      if c.weights then
        assert.same(c.weights.shape, w:size())
        close(w, c.weights.values, "weights")
        loss = loss + (w * dl.tensor(c.gweights, F64):view(c.weights.shape)):sum()
      elseif c.kind == "mha" then
        assert.is_nil(w)
      end
      loss:backward()
      for _, e in ipairs(c.inputs) do close(ins[e.name].grad, e.grad, "grad of " .. e.name) end
      if m then
        local params = {}
        for _, e in ipairs(m:named_parameters()) do params[e[1]] = e[2] end
        for _, p in ipairs(c.params) do close(params[p.name].grad, p.grad, "grad of " .. p.name) end
      end
    end)
  end
end)

describe("under autograd", function()
  local fns = {
    sdpa_float_mask = {function(q, k, v, m) return sdpa(q, k, v, {attn_mask = m}) end,
      function() return {r(2, 3, 2), r(2, 4, 2), r(2, 4, 3), r(3, 4)} end},
    sdpa_causal_scaled = {function(q, k, v) return sdpa(q, k, v, {is_causal = true, scale = 0.7}) end,
      function() return {r(2, 1, 3, 2), r(2, 4, 2), r(4, 3)} end},
  }
  for _, name in ipairs(H.sorted_keys(fns)) do
    it(name .. ": gradcheck, jvp and double backward", function()
      dl.manual_seed(41)
      H.check_derivatives(fns[name][1], fns[name][2])
    end)
  end

  it("a tiny MultiheadAttention: gradcheck, jvp and double backward w.r.t. query, key and value", function()
    dl.manual_seed(43)
    local m = nn.MultiheadAttention(4, 2, {kdim = 3, dtype = "float64"})
    local mask = dl.tensor({{false, false, true}, {false, true, false}})
    local fn = function(q, k, v)
      local out, w = m(q, k, v, {attn_mask = mask})
      return dl.cat({out:reshape(-1), w:reshape(-1)}, 1)
    end
    H.check_derivatives(fn, function() return {r(2, 2, 4), r(3, 2, 3), r(3, 2, 4)} end)
  end)

  it("a TransformerEncoderLayer: gradcheck w.r.t. its input", function()
    dl.manual_seed(44)
    local m = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 6, dropout = 0, activation = "gelu",
      dtype = "float64"})
    local x = r(3, 1, 4):requires_grad_()
    assert.is_true(A.gradcheck(function(t) return m(t, {is_causal = true}) end, {x}))
  end)
end)

describe("F.scaled_dot_product_attention", function()
  it("is_causal equals a bool mask with true above the diagonal (L ~= S: top-left aligned)", function()
    local q, k, v = r(2, 3, 4), r(2, 5, 4), r(2, 5, 2)
    H.assert_close(sdpa(q, k, v, {is_causal = true}), sdpa(q, k, v, {attn_mask = dl.ones(3, 5):bool():triu(1)}), 1e-14)
  end)
  it("a bool mask equals a float mask of -inf where it is true", function()
    local q, k, v = r(3, 4), r(5, 4), r(5, 3)
    local m = dl.rand(3, 5):lt(0.4)
    m[{{1, 3}, 1}] = false
    local f = dl.zeros(3, 5, F64):masked_fill(m, -math.huge)
    H.assert_close(sdpa(q, k, v, {attn_mask = m}), sdpa(q, k, v, {attn_mask = f}), 1e-14)
  end)
  it("broadcasts batch dims and takes float32", function()
    local out = sdpa(dl.randn(2, 3, 4, 5), dl.randn(3, 6, 5), dl.randn(1, 6, 7))
    assert.same({2, 3, 4, 7}, out:size())
    assert.equal("float32", out.dtype)
  end)
  it("a row with every key masked is NaN, as PyTorch's", function()
    local m = dl.tensor({{true, true}, {false, true}})
    local out = sdpa(r(2, 3), r(2, 3), r(2, 3), {attn_mask = m})
    assert.is_true(out[1]:isnan():all():item())
    assert.is_false(out[2]:isnan():any():item())
  end)
  it("drops attention weights when dropout_p > 0, seeded", function()
    local q, k, v = r(4, 6, 8), r(4, 6, 8), r(4, 6, 8)
    dl.manual_seed(5)
    local a = sdpa(q, k, v, {dropout_p = 0.5})
    dl.manual_seed(5)
    local b = sdpa(q, k, v, {dropout_p = 0.5})
    H.assert_close(a, b, 0)
    assert.is_true(H.max_abs_diff(a, sdpa(q, k, v)) > 1e-3)
    -- p = 1 drops everything
    H.assert_close(sdpa(q, k, v, {dropout_p = 1}), dl.zeros(4, 6, 8), 0)
  end)
end)

describe("nn.MultiheadAttention", function()
  it("is initialised as PyTorch's", function()
    dl.manual_seed(1)
    local m = nn.MultiheadAttention(8, 2)
    local bound = math.sqrt(6 / (8 + 24)) -- xavier_uniform_ on [3E, E]
    assert.is_true(m.in_proj_weight:abs():max():item() <= bound)
    assert.is_true(m.in_proj_weight:abs():max():item() > 0.8 * bound)
    assert.equal(0, m.in_proj_bias:abs():sum():item())
    assert.equal(0, m.out_proj.bias:abs():sum():item())
    assert.is_true(m.out_proj.weight:abs():max():item() <= 1 / math.sqrt(8))
    local s = nn.MultiheadAttention(6, 3, {kdim = 4, vdim = 5, bias = false})
    assert.same({"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"},
      nn.state_dict_keys(s:state_dict()))
    assert.same({6, 4}, s.k_proj_weight:size())
    assert.same({6, 5}, s.v_proj_weight:size())
    assert.is_nil(s.in_proj_weight)
  end)

  local function mha(opts)
    dl.manual_seed(9)
    local m = nn.MultiheadAttention(6, 3, opts or {dtype = "float64"})
    dl.no_grad(function() m.in_proj_bias:normal_(0, 1); m.out_proj.bias:normal_(0, 1) end)
    return m
  end

  it("self-attention's one GEMM equals three, and key == value's two", function()
    local m, x = mha(), r(4, 2, 6)
    H.assert_close(m(x, x, x), m(x, x:clone(), x:clone()), 1e-13)
    local y = r(5, 2, 6)
    H.assert_close(m(x, y, y), m(x, y, y:clone()), 1e-13)
  end)
  it("batch_first, unbatched and sequence-first inputs agree", function()
    local m, x, y = mha(), r(4, 2, 6), r(3, 2, 6)
    local out, w = m(x, y, y)
    local bf = mha({batch_first = true, dtype = "float64"})
    local ob, wb = bf(x:transpose(1, 2), y:transpose(1, 2), y:transpose(1, 2))
    H.assert_close(ob:transpose(1, 2), out, 1e-13)
    H.assert_close(wb, w, 1e-13)
    local o1, w1 = m(x:select(2, 2), y:select(2, 2), y:select(2, 2), {average_attn_weights = false})
    H.assert_close(o1, out:select(2, 2), 1e-13)
    assert.same({3, 4, 3}, w1:size())
    H.assert_close(w1:mean(1), w[2], 1e-13)
  end)
  it("is_causal equals the causal attn_mask; float and bool masks agree", function()
    local m, x = mha(), r(4, 2, 6)
    local causal = dl.ones(4, 4):bool():triu(1)
    local a, wa = m(x, x, x, {is_causal = true})
    local b, wb = m(x, x, x, {attn_mask = causal})
    H.assert_close(a, b, 1e-13)
    H.assert_close(wa, wb, 1e-13)
    -- the hint with its mask, as PyTorch code passes it
    H.assert_close(m(x, x, x, {attn_mask = causal, is_causal = true}), b, 1e-13)
    local kpm = dl.tensor({{false, false, true, false}, {false, false, false, true}})
    local fkpm = dl.zeros(2, 4, F64):masked_fill(kpm, -math.huge)
    local fmask = dl.zeros(4, 4, F64):masked_fill(causal, -math.huge)
    local c = m(x, x, x, {attn_mask = causal, key_padding_mask = kpm})
    H.assert_close(m(x, x, x, {attn_mask = fmask, key_padding_mask = kpm}), c, 1e-13)
    H.assert_close(m(x, x, x, {attn_mask = causal, key_padding_mask = fkpm}), c, 1e-13)
    H.assert_close(m(x, x, x, {is_causal = true, key_padding_mask = fkpm}), c, 1e-13)
  end)
  it("drops attention weights only in training", function()
    local m, x = mha({dropout = 0.5, dtype = "float64"}), r(5, 2, 6)
    local _, w = m(x, x, x, {average_attn_weights = false})
    local zeros = w:eq(0):sum():item()
    assert.is_true(zeros > 10 and zeros < 140, "zeroed " .. zeros)
    m:eval()
    local o1, w1 = m(x, x, x)
    local o2 = m(x, x, x)
    H.assert_close(o1, o2, 0)
    H.assert_close(w1:sum(-1), dl.ones(2, 5, F64), 1e-13)
  end)
  it("need_weights = false returns no weights", function()
    local m, x = mha(), r(3, 1, 6)
    local out, w = m(x, x, x, {need_weights = false})
    assert.same({3, 1, 6}, out:size())
    assert.is_nil(w)
  end)
end)

describe("Transformer layers", function()
  it("a TransformerEncoder holds deep copies of its layer", function()
    local layer = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8, dtype = "float64"})
    local enc = nn.TransformerEncoder(layer, 2)
    local a, b = enc.layers[1], enc.layers[2]
    assert.equal("TransformerEncoderLayer", a.__name)
    H.assert_close(a.linear1.weight, layer.linear1.weight, 0)
    H.assert_close(b.self_attn.in_proj_weight, layer.self_attn.in_proj_weight, 0)
    assert.is_false(rawequal(a.linear1.weight, b.linear1.weight))
    assert.is_true(nn.is_parameter(a.linear1.weight) and a.linear1.weight.is_leaf)
    dl.no_grad(function() a.linear1.weight:fill_(3) end)
    assert.is_true(b.linear1.weight:ne(3):all():item())
    assert.is_true(layer.linear1.weight:ne(3):all():item())
    assert.equal(24, #enc:parameters()) -- two layers of 12; the layer given is not registered
    assert.equal(#a._order, #layer._order)
    -- training mode and dropout carry over; eval reaches the copies
    enc:eval()
    assert.is_false(b.dropout1.training)
    assert.equal(0.1, b.dropout1.p)
  end)
  it("dropout only in training", function()
    dl.manual_seed(3)
    local m = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, dropout = 0.3, dtype = "float64"})
    local x = r(5, 2, 8)
    dl.manual_seed(1)
    local a = m(x)
    dl.manual_seed(2)
    assert.is_true(H.max_abs_diff(a, m(x)) > 1e-3)
    m:eval()
    H.assert_close(m(x), m(x), 0)
  end)
  it("unbatched input and a module as activation", function()
    local m = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8, activation = nn.GELU(), dtype = "float64"})
    assert.equal("GELU", m.activation.__name)
    m:eval()
    local x = r(3, 4)
    H.assert_close(m(x), m(x:unsqueeze(2)):squeeze(2), 1e-13)
    local d = nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 8, batch_first = true, dtype = "float64"}):eval()
    assert.same({3, 4}, d(x, r(5, 4), {tgt_is_causal = true}):size())
  end)
end)

describe("bad input", function()
  local x = r(3, 2, 8)
  local m = nn.MultiheadAttention(8, 2, {dtype = "float64"})
  it("F.scaled_dot_product_attention names itself and the shapes", function()
    local fn = "dl.F.scaled_dot_product_attention"
    H.assert_error(function() sdpa(r(2, 3), r(4, 5), r(4, 5)) end, fn, "[2,3]", "[4,5]", "feature sizes")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(5, 3)) end, fn, "[4,3]", "[5,3]", "lengths")
    H.assert_error(function() sdpa(r(2, 2, 3), r(3, 4, 3), r(3, 4, 3)) end, fn, "[2,2,3]", "[3,4,3]", "broadcast")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(4, 3), {attn_mask = dl.ones(2, 4):bool(), is_causal = true}) end,
      fn, "cannot be combined")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(4, 3), {attn_mask = dl.ones(3, 4):bool()}) end, fn,
      "attn_mask [3,4]", "[2,4]")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(4, 3), {attn_mask = dl.ones(2, 4):long()}) end, fn,
      "bool", "int64")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(4, 3), {dropout_p = 1.5}) end, fn, "dropout_p")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(4, 3), {scale = 0 / 0}) end, fn, "scale")
    H.assert_error(function() sdpa(r(2, 3), r(4, 3), r(4, 3), {causal = true}) end, fn, "unknown option 'causal'")
    H.assert_error(function() sdpa(dl.ones(2, 3):long(), r(4, 3), r(4, 3)) end, fn, "query", "int64")
    H.assert_error(function() sdpa(r(3), r(4, 3), r(4, 3)) end, fn, "at least 2 dims", "[3]")
    H.assert_error(function() sdpa(r(2, 3), dl.randn(4, 3), r(4, 3)) end, fn, "one dtype")
  end)
  it("MultiheadAttention names itself and the shapes", function()
    H.assert_error(function() nn.MultiheadAttention(10, 3) end, "dl.nn.MultiheadAttention", "divisible")
    H.assert_error(function() nn.MultiheadAttention(8, 2, {heads = 2}) end, "unknown option 'heads'")
    H.assert_error(function() nn.MultiheadAttention(8, 2, {dropout = 2}) end, "dropout", "[0, 1]")
    local label = "MultiheadAttention(8, 2)"
    H.assert_error(function() m(r(3, 2, 7), x, x) end, label, "query [3,2,7] has 7 features", "embed_dim = 8")
    H.assert_error(function() m(x, r(4, 2, 8), r(5, 2, 8)) end, label, "[4,2,8]", "[5,2,8]")
    H.assert_error(function() m(x, r(4, 3, 8), r(4, 3, 8)) end, label, "[4,3,8]", "[3,2,8]", "batch size")
    H.assert_error(function() m(x, x, x, {attn_mask = dl.ones(3, 4):bool()}) end, label, "attn_mask [3,4]",
      "[3, 3]", "[4, 3, 3]")
    H.assert_error(function() m(x, x, x, {attn_mask = dl.ones(3, 3):long()}) end, label, "attn_mask", "int64")
    H.assert_error(function() m(x, x, x, {key_padding_mask = dl.ones(3, 2):bool()}) end, label,
      "key_padding_mask [3,2]", "[2, 3]")
    H.assert_error(function() m(x, x, x, {key_padding_mask = dl.ones(2, 3)}) end, label, "key_padding_mask",
      "float32")
    H.assert_error(function() m(x, r(3, 8), r(3, 8)) end, label, "[3,8]", "3D like query")
    H.assert_error(function() m(r(2, 3, 2, 8), x, x) end, label, "[2,3,2,8]")
    H.assert_error(function() m(x, x, x, {need_weight = false}) end, label, "unknown option 'need_weight'")
    H.assert_error(function() m(x, x, nil) end, label, "value must be a tensor")
  end)
  it("the Transformer layers name themselves", function()
    H.assert_error(function() nn.TransformerEncoderLayer(8, 3) end, "dl.nn.TransformerEncoderLayer", "divisible")
    H.assert_error(function() nn.TransformerEncoderLayer(8, 2, {activation = "tanh"}) end, "activation", '"tanh"')
    H.assert_error(function() nn.TransformerDecoderLayer(8, 2, {norm_first = 1}) end,
      "dl.nn.TransformerDecoderLayer", "norm_first must be a boolean")
    local enc = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 4, dtype = "float64"})
    H.assert_error(function() enc(r(3, 2, 6)) end, "TransformerEncoderLayer(8, 2)", "src [3,2,6] has 6 features",
      "d_model = 8")
    H.assert_error(function() enc(x, {src_mask = dl.ones(2, 2):bool()}) end, "TransformerEncoderLayer(8, 2)",
      "MultiheadAttention(8, 2)", "attn_mask [2,2]")
    local dec = nn.TransformerDecoderLayer(8, 2, {dim_feedforward = 4, dtype = "float64"})
    H.assert_error(function() dec(x, r(4, 2, 5)) end, "TransformerDecoderLayer(8, 2)", "memory [4,2,5]")
    H.assert_error(function() dec(x, r(4, 8)) end, "TransformerDecoderLayer(8, 2)", "both be batched")
    H.assert_error(function() nn.TransformerEncoder("layer", 2) end, "dl.nn.TransformerEncoder", "module expected")
    H.assert_error(function() nn.TransformerEncoder(enc, -1) end, "dl.nn.TransformerEncoder", "num_layers")
    H.assert_error(function() nn.TransformerEncoder(enc, 2, {norm = 3}) end, "dl.nn.TransformerEncoder", "norm")
    H.assert_error(function() nn.TransformerEncoder(enc, 2)(x, {src_mask = 1}) end, "TransformerEncoder(2 layers)",
      "unknown option 'src_mask'")
  end)
end)
