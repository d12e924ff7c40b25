-- dlua.nn.transformer: TransformerEncoderLayer, TransformerDecoderLayer,
-- TransformerEncoder and TransformerDecoder, as PyTorch's (submodule names,
-- registration order, post-norm by default or pre-norm with norm_first), so
-- state dicts move between the two by name. Built from MultiheadAttention,
-- Linear, LayerNorm and Dropout: differentiable in every mode with them.
local dl = require "dlua"
local nn = dl.nn
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local is_tensor = dl.is_tensor
local fmt = string.format
local shape_str, check_options, check_count = checks.shape_str, checks.options, checks.count

local function fail(fn, ...)
  raise(fn .. ": " .. fmt(...))
end

---------------------------------------------------------------------------
-- Options shared by the layers
---------------------------------------------------------------------------

local layer_opts = {dim_feedforward = true, dropout = true, activation = true, layer_norm_eps = true,
  batch_first = true, norm_first = true, dtype = true, device = true}

local ACTIVATIONS = {relu = dl.relu, gelu = dl.gelu}

-- "relu", "gelu" (exact), a function of one tensor, or a module (then a
-- child named "activation", as in PyTorch)
local function activation_of(fn, a)
  if a == nil then return dl.relu end
  if type(a) == "string" then
    local f = ACTIVATIONS[a]
    if not f then fail(fn, 'activation must be "relu", "gelu", a function or a module, got "%s"', a) end
    return f
  end
  if type(a) == "function" or nn.is_module(a) then return a end
  fail(fn, 'activation must be "relu", "gelu", a function or a module, got %s', type(a))
end

local function check_bool(fn, name, v)
  if v ~= nil and type(v) ~= "boolean" then fail(fn, "%s must be a boolean, got %s", name, type(v)) end
  return v
end

-- what both layers share: options checked, the feed-forward block, the
-- norms (n of them) and dropouts (dropout, dropout1..n). Registered in
-- PyTorch's order by the caller: attention blocks first.
local function common(self, fn, d_model, nhead, opts)
  check_count(fn, 1, "d_model", d_model, 1)
  check_count(fn, 2, "nhead", nhead, 1)
  opts = check_options(fn, opts, layer_opts)
  if d_model % nhead ~= 0 then fail(fn, "d_model %d must be divisible by nhead %d", d_model, nhead) end
  local ff = opts.dim_feedforward == nil and 2048 or check_count(fn, 3, "dim_feedforward", opts.dim_feedforward, 1)
  local p = opts.dropout == nil and 0.1 or opts.dropout
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    fail(fn, "dropout must be a number in [0, 1], got %s", tostring(p))
  end
  local eps = opts.layer_norm_eps == nil and 1e-5 or opts.layer_norm_eps
  if type(eps) ~= "number" or not (eps >= 0 and eps < math.huge) then
    fail(fn, "layer_norm_eps must be a finite number >= 0, got %s", tostring(eps))
  end
  local c = {
    d_model = d_model, nhead = nhead, ff = ff, p = p, eps = eps,
    batch_first = check_bool(fn, "batch_first", opts.batch_first) == true,
    norm_first = check_bool(fn, "norm_first", opts.norm_first) == true,
    activation = activation_of(fn, opts.activation),
    to = {dtype = opts.dtype, device = opts.device},
  }
  self.d_model = d_model
  return c
end

local function attention(c)
  return nn.MultiheadAttention(c.d_model, c.nhead, {dropout = c.p, batch_first = c.batch_first,
    dtype = c.to.dtype, device = c.to.device})
end

local function linear(i, o, c) return nn.Linear(i, o, {dtype = c.to.dtype, device = c.to.device}) end
local function norm(c) return nn.LayerNorm(c.d_model, {eps = c.eps, dtype = c.to.dtype, device = c.to.device}) end

local function ff_block(self, x)
  return self.linear2(self.dropout(self.activation(self.linear1(x))))
end

-- name: the input's name in errors; x must end in d_model features
local function check_input(fn, name, x, d_model)
  if not is_tensor(x) then fail(fn, "%s must be a tensor, got %s", name, type(x)) end
  local nd = x:dim()
  if nd ~= 2 and nd ~= 3 then fail(fn, "%s must be 2D (unbatched) or 3D, got %s", name, shape_str(x)) end
  if x:size(nd) ~= d_model then
    fail(fn, "%s %s has %d features, expected d_model = %d", name, shape_str(x), x:size(nd), d_model)
  end
end

local function is_causal(fn, name, v)
  return check_bool(fn, name, v) == true
end

---------------------------------------------------------------------------
-- TransformerEncoderLayer
---------------------------------------------------------------------------

local EncoderLayer = nn.Module:extend("TransformerEncoderLayer")
nn.TransformerEncoderLayer = EncoderLayer

-- TransformerEncoderLayer(d_model, nhead, {dim_feedforward = 2048, dropout
-- = 0.1, activation = "relu", layer_norm_eps = 1e-5, batch_first = false,
-- norm_first = false, dtype, device})
function EncoderLayer:init(d_model, nhead, opts)
  local c = common(self, "dl.nn.TransformerEncoderLayer", d_model, nhead, opts)
  self.self_attn = attention(c)
  self.linear1 = linear(d_model, c.ff, c)
  self.dropout = nn.Dropout(c.p)
  self.linear2 = linear(c.ff, d_model, c)
  self.norm_first = c.norm_first
  self.norm1 = norm(c)
  self.norm2 = norm(c)
  self.dropout1 = nn.Dropout(c.p)
  self.dropout2 = nn.Dropout(c.p)
  self.activation = c.activation
end

function EncoderLayer:_label() return fmt("TransformerEncoderLayer(%d, %d)", self.d_model, self.self_attn.num_heads) end

local enc_fwd_opts = {src_mask = true, src_key_padding_mask = true, is_causal = true}

-- the self-attention block: attention of x to itself, then dropout1
local function sa_block(self, x, mask, kpm, causal, drop)
  local y = self.self_attn(x, x, x, {attn_mask = mask, key_padding_mask = kpm, need_weights = false,
    is_causal = causal})
  return drop(y)
end

-- layer(src, {src_mask, src_key_padding_mask, is_causal = false}): src
-- [S, B, d_model] ([B, S, d_model] batch first, [S, d_model] unbatched);
-- the masks as MultiheadAttention's attn_mask and key_padding_mask
function EncoderLayer:forward(src, opts)
  local fn = self:_label()
  check_input(fn, "src", src, self.d_model)
  opts = check_options(fn, opts, enc_fwd_opts)
  local mask, kpm = opts.src_mask, opts.src_key_padding_mask
  local causal = is_causal(fn, "is_causal", opts.is_causal)
  local x = src
  if self.norm_first then
    x = x + sa_block(self, self.norm1(x), mask, kpm, causal, self.dropout1)
    x = x + self.dropout2(ff_block(self, self.norm2(x)))
  else
    x = self.norm1(x + sa_block(self, x, mask, kpm, causal, self.dropout1))
    x = self.norm2(x + self.dropout2(ff_block(self, x)))
  end
  return x
end

---------------------------------------------------------------------------
-- TransformerDecoderLayer
---------------------------------------------------------------------------

local DecoderLayer = nn.Module:extend("TransformerDecoderLayer")
nn.TransformerDecoderLayer = DecoderLayer

-- TransformerDecoderLayer(d_model, nhead, {the encoder layer's options}):
-- self-attention over the target, attention to the memory, feed-forward
function DecoderLayer:init(d_model, nhead, opts)
  local c = common(self, "dl.nn.TransformerDecoderLayer", d_model, nhead, opts)
  self.self_attn = attention(c)
  self.multihead_attn = attention(c)
  self.linear1 = linear(d_model, c.ff, c)
  self.dropout = nn.Dropout(c.p)
  self.linear2 = linear(c.ff, d_model, c)
  self.norm_first = c.norm_first
  self.norm1 = norm(c)
  self.norm2 = norm(c)
  self.norm3 = norm(c)
  self.dropout1 = nn.Dropout(c.p)
  self.dropout2 = nn.Dropout(c.p)
  self.dropout3 = nn.Dropout(c.p)
  self.activation = c.activation
end

function DecoderLayer:_label() return fmt("TransformerDecoderLayer(%d, %d)", self.d_model, self.self_attn.num_heads) end

local dec_fwd_opts = {tgt_mask = true, memory_mask = true, tgt_key_padding_mask = true,
  memory_key_padding_mask = true, tgt_is_causal = true, memory_is_causal = true}

-- attention of x to the memory, then dropout2
local function mha_block(self, x, mem, mask, kpm, causal)
  local y = self.multihead_attn(x, mem, mem, {attn_mask = mask, key_padding_mask = kpm, need_weights = false,
    is_causal = causal})
  return self.dropout2(y)
end

-- layer(tgt, memory, {tgt_mask, memory_mask, tgt_key_padding_mask,
-- memory_key_padding_mask, tgt_is_causal = false, memory_is_causal = false}):
-- tgt [T, B, d_model], memory [S, B, d_model] (batch first: [B, *, d_model];
-- unbatched: [*, d_model])
function DecoderLayer:forward(tgt, memory, opts)
  local fn = self:_label()
  check_input(fn, "tgt", tgt, self.d_model)
  check_input(fn, "memory", memory, self.d_model)
  if memory:dim() ~= tgt:dim() then
    fail(fn, "tgt %s and memory %s must both be batched or both unbatched", shape_str(tgt), shape_str(memory))
  end
  opts = check_options(fn, opts, dec_fwd_opts)
  local tc = is_causal(fn, "tgt_is_causal", opts.tgt_is_causal)
  local mc = is_causal(fn, "memory_is_causal", opts.memory_is_causal)
  local x = tgt
  if self.norm_first then
    x = x + sa_block(self, self.norm1(x), opts.tgt_mask, opts.tgt_key_padding_mask, tc, self.dropout1)
    x = x + mha_block(self, self.norm2(x), memory, opts.memory_mask, opts.memory_key_padding_mask, mc)
    x = x + self.dropout3(ff_block(self, self.norm3(x)))
  else
    x = self.norm1(x + sa_block(self, x, opts.tgt_mask, opts.tgt_key_padding_mask, tc, self.dropout1))
    x = self.norm2(x + mha_block(self, x, memory, opts.memory_mask, opts.memory_key_padding_mask, mc))
    x = self.norm3(x + self.dropout3(ff_block(self, x)))
  end
  return x
end

---------------------------------------------------------------------------
-- Stacks of copies
---------------------------------------------------------------------------

-- v copied as PyTorch's copy.deepcopy copies a module: the same class,
-- plain fields and plain tables copied, parameters new leaves holding
-- clones of the values, buffers (any tensor) cloned, child modules copied
-- recursively; what the original shares stays shared in the copy (memo).
-- Functions, classes and other objects are kept, not copied.
local function deep_copy(v, memo)
  local done = memo[v]
  if done ~= nil then return done end
  local c
  if is_tensor(v) then
    if nn.is_parameter(v) then
      c = nn.Parameter(v:detach():clone(), v.requires_grad)
    else
      c = v:detach():clone()
    end
  elseif type(v) == "table" and (nn.is_module(v) or getmetatable(v) == nil) then
    c = setmetatable({}, getmetatable(v))
    memo[v] = c
    -- raw: a module's fields, its _order / _buffers / _param_slots
    -- bookkeeping and a list's children ("0", "1", ... and _len) as they are
    for k, x in next, v do rawset(c, deep_copy(k, memo), deep_copy(x, memo)) end
    return c
  else
    return v
  end
  memo[v] = c
  return c
end

local function clones(fn, layer, n)
  if not nn.is_module(layer) then fail(fn, "bad argument #1 (a layer module expected, got %s)", type(layer)) end
  check_count(fn, 2, "num_layers", n, 0)
  local list = nn.ModuleList()
  for _ = 1, n do list:append(deep_copy(layer, {})) end
  return list
end

local function stack_init(self, fn, layer, num_layers, opts)
  local list = clones(fn, layer, num_layers)
  opts = check_options(fn, opts, {norm = true})
  if opts.norm ~= nil and not nn.is_module(opts.norm) then
    fail(fn, "norm must be a module (e.g. a LayerNorm), got %s", type(opts.norm))
  end
  self.layers = list
  self.num_layers = num_layers
  self.norm = opts.norm
end

local Encoder = nn.Module:extend("TransformerEncoder")
nn.TransformerEncoder = Encoder

-- TransformerEncoder(encoder_layer, num_layers, {norm}): num_layers deep
-- copies of encoder_layer as `layers` (state dict names layers.0.*, as
-- PyTorch's; the layer given is not registered), then norm when given
function Encoder:init(encoder_layer, num_layers, opts)
  stack_init(self, "dl.nn.TransformerEncoder", encoder_layer, num_layers, opts)
end

function Encoder:_label() return fmt("TransformerEncoder(%d layers)", self.num_layers) end

local encoder_opts = {mask = true, src_key_padding_mask = true, is_causal = true}

-- encoder(src, {mask, src_key_padding_mask, is_causal}): each layer in turn
-- with the same masks, then norm
function Encoder:forward(src, opts)
  local fn = self:_label()
  if not is_tensor(src) then fail(fn, "src must be a tensor, got %s", type(src)) end
  opts = check_options(fn, opts, encoder_opts)
  local call = {src_mask = opts.mask, src_key_padding_mask = opts.src_key_padding_mask,
    is_causal = is_causal(fn, "is_causal", opts.is_causal)}
  local x = src
  for _, layer in self.layers:iter() do x = layer(x, call) end
  if self.norm then x = self.norm(x) end
  return x
end

local Decoder = nn.Module:extend("TransformerDecoder")
nn.TransformerDecoder = Decoder

-- TransformerDecoder(decoder_layer, num_layers, {norm}): as the encoder
function Decoder:init(decoder_layer, num_layers, opts)
  stack_init(self, "dl.nn.TransformerDecoder", decoder_layer, num_layers, opts)
end

function Decoder:_label() return fmt("TransformerDecoder(%d layers)", self.num_layers) end

-- decoder(tgt, memory, {the decoder layer's options}): each layer in turn
-- with the same memory and masks, then norm
function Decoder:forward(tgt, memory, opts)
  local fn = self:_label()
  if not is_tensor(tgt) then fail(fn, "tgt must be a tensor, got %s", type(tgt)) end
  if not is_tensor(memory) then fail(fn, "memory must be a tensor, got %s", type(memory)) end
  opts = check_options(fn, opts, dec_fwd_opts)
  local x = tgt
  for _, layer in self.layers:iter() do x = layer(x, memory, opts) end
  if self.norm then x = self.norm(x) end
  return x
end

return nn
