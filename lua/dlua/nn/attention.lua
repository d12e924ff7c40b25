-- dlua.nn.attention: dl.F.scaled_dot_product_attention and
-- nn.MultiheadAttention (PyTorch's names, parameters and layouts).
--
-- Attention is two batched GEMMs around a masked softmax:
--   out = softmax(q k^T * scale + mask) v   over [..., L, E] x [..., S, E]
-- composed of differentiable ops (dl.matmul reads the head-split, permuted
-- views in place), so reverse mode, forward mode and double backward come
-- with it, on any device. Mask convention (SPEC.md): a bool mask has
-- true = masked out (not attended), a float mask is added to the scores.
-- A row whose keys are all masked gives NaN, as PyTorch's.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local matmul, softmax, dropout = dl.matmul, dl.softmax, dl.dropout
local linear = F.linear
local is_tensor = dl.is_tensor
local fmt, sqrt, huge = string.format, math.sqrt, math.huge
local shape_str, check_options, check_count = checks.shape_str, checks.options, checks.count

local function fail(fn, ...)
  raise(fn .. ": " .. fmt(...))
end

local FLOAT = {float32 = true, float64 = true}

---------------------------------------------------------------------------
-- The core
---------------------------------------------------------------------------

-- [L, S] bool, true where key j > query i (top-left aligned, as PyTorch's
-- is_causal), kept per shape and device while in use: only for a causal
-- cut together with a caller's mask
local causal_cache = setmetatable({}, {__mode = "v"})
local function causal_mask(L, S, device)
  local key = fmt("%d,%d,%s", L, S, device)
  local m = causal_cache[key]
  if not m then
    m = dl.ones(L, S, {dtype = "bool", device = device}):triu(1)
    causal_cache[key] = m
  end
  return m
end

-- softmax over the keys of scores * scale, masked. Without a caller's mask
-- it is one fused op (dl.attention_softmax: scale, the causal cut and the
-- softmax in one pass, no mask tensor); a mask is applied to the scaled
-- scores first (a float mask is added to them, so it cannot come before
-- the scale)
local attention_softmax = dl.attention_softmax
local function masked_softmax(scores, scale, mask, causal)
  if not mask then return attention_softmax(scores, scale, causal) end
  local s = scores * scale
  if causal then
    local nd = s:dim()
    s = s:masked_fill(causal_mask(s:size(nd - 1), s:size(nd), s.device), -huge)
  end
  if mask.dtype == "bool" then s = s:masked_fill(mask, -huge) else s = s + mask end
  return softmax(s, -1)
end

-- q [*, L, E], k [*, S, E], v [*, S, Ev] (batch dims broadcast) -> the
-- output [*, L, Ev] and the attention weights [*, L, S] (after dropout)
local function attention_core(q, k, v, scale, mask, causal, dropout_p, training)
  local w = masked_softmax(matmul(q, k:transpose(-2, -1)), scale, mask, causal)
  if dropout_p > 0 and training then w = dropout(w, dropout_p, true) end
  return matmul(w, v), w
end

---------------------------------------------------------------------------
-- Checks
---------------------------------------------------------------------------

local function check_float(fn, name, t)
  if not is_tensor(t) then fail(fn, "%s must be a tensor, got %s", name, type(t)) end
  if not FLOAT[t.dtype] then fail(fn, "%s must be float32 or float64, got %s", name, t.dtype) end
  return t
end

-- the batch dims (all but the last two) of tensors, broadcast together
local function broadcast_batch(fn, ts)
  local n = 0
  for _, t in ipairs(ts) do n = math.max(n, t:dim() - 2) end
  local out = {}
  for i = 1, n do
    local size = 1
    for _, t in ipairs(ts) do
      local d = t:dim() - 2 - n + i
      local s = d >= 1 and t:size(d) or 1
      if s ~= 1 then
        if size ~= 1 and s ~= size then
          local shapes = {}
          for j, u in ipairs(ts) do shapes[j] = shape_str(u) end
          fail(fn, "batch dims of query, key and value %s cannot be broadcast", table.concat(shapes, ", "))
        end
        size = s
      end
    end
    out[i] = size
  end
  return out
end

local function check_mask_dtype(fn, name, mask, dtype)
  if not is_tensor(mask) then fail(fn, "%s must be a tensor, got %s", name, type(mask)) end
  if mask.dtype ~= "bool" and mask.dtype ~= dtype then
    fail(fn, "%s must be bool (true = masked) or %s like the query (added), got %s", name, dtype, mask.dtype)
  end
end

-- mask must broadcast to the scores' shape
local function check_mask_broadcast(fn, name, mask, scores)
  local nm, ns = mask:dim(), #scores
  local ok = nm <= ns
  for i = 1, ok and nm or 0 do
    local m = mask:size(i)
    if m ~= scores[ns - nm + i] and m ~= 1 then ok = false end
  end
  if not ok then
    fail(fn, "%s %s cannot be broadcast to the attention scores [%s]", name, shape_str(mask), table.concat(scores, ","))
  end
end

local function check_bool(fn, name, v)
  if v ~= nil and type(v) ~= "boolean" then fail(fn, "%s must be a boolean, got %s", name, type(v)) end
  return v
end

local function check_p(fn, name, p)
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    fail(fn, "%s must be a number in [0, 1], got %s", name, tostring(p))
  end
  return p
end

---------------------------------------------------------------------------
-- F.scaled_dot_product_attention
---------------------------------------------------------------------------

local sdpa_opts = {attn_mask = true, is_causal = true, dropout_p = true, scale = true}

-- F.scaled_dot_product_attention(q, k, v, {attn_mask, is_causal = false,
-- dropout_p = 0, scale = 1 / sqrt(E)}): q [*, L, E], k [*, S, E],
-- v [*, S, Ev] -> [*, L, Ev]. Dropout (p = dropout_p) on the attention
-- weights whenever dropout_p > 0, as PyTorch's.
function F.scaled_dot_product_attention(q, k, v, opts)
  local fn = "dl.F.scaled_dot_product_attention"
  check_float(fn, "query", q)
  check_float(fn, "key", k)
  check_float(fn, "value", v)
  opts = check_options(fn, opts, sdpa_opts)
  for _, e in ipairs({{"query", q}, {"key", k}, {"value", v}}) do
    if e[2]:dim() < 2 then fail(fn, "%s must have at least 2 dims [..., length, features], got %s", e[1], shape_str(e[2])) end
  end
  if k.dtype ~= q.dtype or v.dtype ~= q.dtype then
    fail(fn, "query, key and value must have one dtype, got %s, %s and %s", q.dtype, k.dtype, v.dtype)
  end
  local E = q:size(-1)
  if k:size(-1) ~= E then
    fail(fn, "query %s and key %s have different feature sizes (%d and %d)", shape_str(q), shape_str(k), E, k:size(-1))
  end
  if v:size(-2) ~= k:size(-2) then
    fail(fn, "key %s and value %s have different lengths (%d and %d)", shape_str(k), shape_str(v), k:size(-2),
      v:size(-2))
  end
  broadcast_batch(fn, {q, k, v})
  local causal = check_bool(fn, "is_causal", opts.is_causal) == true
  local mask = opts.attn_mask
  if mask ~= nil then
    if causal then fail(fn, "attn_mask and is_causal = true cannot be combined (is_causal masks by itself)") end
    check_mask_dtype(fn, "attn_mask", mask, q.dtype)
    local scores = broadcast_batch(fn, {q, k})
    scores[#scores + 1], scores[#scores + 2] = q:size(-2), k:size(-2)
    check_mask_broadcast(fn, "attn_mask", mask, scores)
  end
  local p = check_p(fn, "dropout_p", opts.dropout_p or 0)
  local scale = opts.scale
  if scale == nil then
    scale = 1 / sqrt(E)
  elseif type(scale) ~= "number" or scale ~= scale or scale == huge or scale == -huge then
    fail(fn, "scale must be a finite number, got %s", tostring(scale))
  end
  return (attention_core(q, k, v, scale, mask, causal, p, true))
end

---------------------------------------------------------------------------
-- MultiheadAttention
---------------------------------------------------------------------------

local MultiheadAttention = nn.Module:extend("MultiheadAttention")
nn.MultiheadAttention = MultiheadAttention

local mha_opts = {dropout = true, bias = true, batch_first = true, kdim = true, vdim = true, dtype = true,
  device = true}

-- MultiheadAttention(embed_dim, num_heads, {dropout = 0, bias = true,
-- batch_first = false, kdim = embed_dim, vdim = embed_dim, dtype, device}):
-- in_proj_weight [3E, E] when kdim == vdim == E, else q_proj_weight [E, E],
-- k_proj_weight [E, kdim], v_proj_weight [E, vdim]; in_proj_bias [3E];
-- out_proj a Linear(E, E). Registered in PyTorch's order, so state dicts
-- move between the two by name.
function MultiheadAttention:init(embed_dim, num_heads, opts)
  local fn = "dl.nn.MultiheadAttention"
  check_count(fn, 1, "embed_dim", embed_dim, 1)
  check_count(fn, 2, "num_heads", num_heads, 1)
  opts = check_options(fn, opts, mha_opts)
  if embed_dim % num_heads ~= 0 then
    fail(fn, "embed_dim %d must be divisible by num_heads %d", embed_dim, num_heads)
  end
  local kdim = opts.kdim == nil and embed_dim or check_count(fn, 3, "kdim", opts.kdim, 1)
  local vdim = opts.vdim == nil and embed_dim or check_count(fn, 3, "vdim", opts.vdim, 1)
  local bias = check_bool(fn, "bias", opts.bias) ~= false
  self.embed_dim, self.kdim, self.vdim = embed_dim, kdim, vdim
  self._qkv_same_embed_dim = kdim == embed_dim and vdim == embed_dim
  self.num_heads = num_heads
  self.dropout = check_p(fn, "dropout", opts.dropout or 0)
  self.batch_first = check_bool(fn, "batch_first", opts.batch_first) == true
  self.head_dim = embed_dim // num_heads
  local to = {dtype = opts.dtype, device = opts.device}
  if self._qkv_same_embed_dim then
    self.in_proj_weight = nn.Parameter(dl.empty(3 * embed_dim, embed_dim, to))
  else
    self.q_proj_weight = nn.Parameter(dl.empty(embed_dim, embed_dim, to))
    self.k_proj_weight = nn.Parameter(dl.empty(embed_dim, kdim, to))
    self.v_proj_weight = nn.Parameter(dl.empty(embed_dim, vdim, to))
  end
  if bias then self.in_proj_bias = nn.Parameter(dl.empty(3 * embed_dim, to)) end
  self.out_proj = nn.Linear(embed_dim, embed_dim, {bias = bias, dtype = opts.dtype, device = opts.device})
  self:reset_parameters()
end

-- PyTorch's: xavier_uniform_ on the projections (the fused [3E, E] as one
-- matrix), zero biases; out_proj.weight keeps Linear's initialisation
function MultiheadAttention:reset_parameters()
  local init = nn.init
  if self._qkv_same_embed_dim then
    init.xavier_uniform_(self.in_proj_weight)
  else
    init.xavier_uniform_(self.q_proj_weight)
    init.xavier_uniform_(self.k_proj_weight)
    init.xavier_uniform_(self.v_proj_weight)
  end
  if self.in_proj_bias then
    init.zeros_(self.in_proj_bias)
    init.zeros_(self.out_proj.bias)
  end
end

function MultiheadAttention:_label() return fmt("MultiheadAttention(%d, %d)", self.embed_dim, self.num_heads) end

-- rows first..first+E-1 of the in-projection (and its bias)
local function in_slice(self, first, n)
  local b = self.in_proj_bias
  return self.in_proj_weight:narrow(1, first, n), b and b:narrow(1, first, n)
end

-- the projected q, k, v ([*, E] each, same layout as the inputs); one GEMM
-- for self-attention (query, key and value one tensor), two when key is value
local function in_projection(self, query, key, value)
  local E, b = self.embed_dim, self.in_proj_bias
  if not self._qkv_same_embed_dim then
    return linear(query, self.q_proj_weight, b and b:narrow(1, 1, E)),
      linear(key, self.k_proj_weight, b and b:narrow(1, E + 1, E)),
      linear(value, self.v_proj_weight, b and b:narrow(1, 2 * E + 1, E))
  end
  -- (inputs are 3-D here; the parts of a fused product are views of it)
  if rawequal(query, key) and rawequal(key, value) then
    local qkv = linear(query, self.in_proj_weight, b)
    return qkv:narrow(3, 1, E), qkv:narrow(3, E + 1, E), qkv:narrow(3, 2 * E + 1, E)
  end
  local q = linear(query, in_slice(self, 1, E))
  if rawequal(key, value) then
    local kv = linear(key, in_slice(self, E + 1, 2 * E))
    return q, kv:narrow(3, 1, E), kv:narrow(3, E + 1, E)
  end
  return q, linear(key, in_slice(self, E + 1, E)), linear(value, in_slice(self, 2 * E + 1, E))
end

-- [L, B, E] (or [B, L, E] batch first) -> [B, H, L, E / H], a view
local function split_heads(x, H, batch_first)
  local a, b, E = x:size(1), x:size(2), x:size(3)
  local y = x:reshape(a, b, H, E // H)
  if batch_first then return y:permute(1, 3, 2, 4) end
  return y:permute(2, 3, 1, 4)
end

-- a bool mask as an additive one of dtype
local function additive(m, dtype)
  if m.dtype ~= "bool" then return m end
  return dl.zeros(m:size(), {dtype = dtype, device = m.device}):masked_fill(m, -huge)
end

-- attn_mask and key_padding_mask as one mask for the scores [B, H, L, S]:
-- both bool -> their union, else the sum of their additive forms
local function merge_masks(a, b, dtype)
  if not a then return b end
  if not b then return a end
  if a.dtype == "bool" and b.dtype == "bool" then return a:logical_or(b) end
  return additive(a, dtype) + additive(b, dtype)
end

local fwd_opts = {attn_mask = true, key_padding_mask = true, need_weights = true, average_attn_weights = true,
  is_causal = true}

local function same_shape(t, shape)
  if t:dim() ~= #shape then return false end
  for i = 1, #shape do if t:size(i) ~= shape[i] then return false end end
  return true
end

-- mha(query, key, value, {attn_mask, key_padding_mask, need_weights = true,
-- average_attn_weights = true, is_causal = false}) -> output, weights.
-- query [L, B, E] ([B, L, E] batch first, [L, E] unbatched), key [S, B,
-- kdim], value [S, B, vdim]; attn_mask [L, S] or [B * heads, L, S] (bool:
-- true = masked, or float: added), key_padding_mask [B, S] (bool: true =
-- ignore that key, or float: added). weights [B, L, S] averaged over the
-- heads or [B, heads, L, S], nil when need_weights is false. is_causal masks
-- key j > query i by itself; with an attn_mask too, both apply (PyTorch
-- takes it as a hint that attn_mask is causal: the same result then).
function MultiheadAttention:forward(query, key, value, opts)
  local fn = self:_label()
  check_float(fn, "query", query)
  check_float(fn, "key", key)
  check_float(fn, "value", value)
  opts = check_options(fn, opts, fwd_opts)
  local E, H, bf = self.embed_dim, self.num_heads, self.batch_first
  local nd = query:dim()
  if nd ~= 2 and nd ~= 3 then
    fail(fn, "query must be [L, E] (unbatched) or %s, got %s", bf and "[B, L, E]" or "[L, B, E]", shape_str(query))
  end
  if key:dim() ~= nd or value:dim() ~= nd then
    fail(fn, "key %s and value %s must be %dD like query %s", shape_str(key), shape_str(value), nd, shape_str(query))
  end
  if key.dtype ~= query.dtype or value.dtype ~= query.dtype then
    fail(fn, "query, key and value must have one dtype, got %s, %s and %s", query.dtype, key.dtype, value.dtype)
  end
  for _, e in ipairs({{"query", query, E, "embed_dim"}, {"key", key, self.kdim, "kdim"},
      {"value", value, self.vdim, "vdim"}}) do
    local got = e[2]:size(nd)
    if got ~= e[3] then fail(fn, "%s %s has %d features, expected %s = %d", e[1], shape_str(e[2]), got, e[4], e[3]) end
  end
  local batched = nd == 3
  local bdim, ldim = bf and 1 or 2, bf and 2 or 1 -- batch and sequence dims of a batched input
  if not batched then
    -- as a batch of one: the same tensor stays the same (self-attention's one GEMM)
    local q1 = query:unsqueeze(bdim)
    local k1 = rawequal(key, query) and q1 or key:unsqueeze(bdim)
    local v1 = rawequal(value, key) and k1 or value:unsqueeze(bdim)
    query, key, value = q1, k1, v1
  end
  local B, L, S = query:size(bdim), query:size(ldim), key:size(ldim)
  if key:size(bdim) ~= B or value:size(bdim) ~= B or value:size(ldim) ~= S then
    fail(fn, "key %s and value %s must have query %s's batch size and one length", shape_str(key), shape_str(value),
      shape_str(query))
  end

  local mask = opts.attn_mask
  if mask ~= nil then
    check_mask_dtype(fn, "attn_mask", mask, query.dtype)
    if same_shape(mask, {B * H, L, S}) then
      mask = mask:reshape(B, H, L, S)
    elseif not same_shape(mask, {L, S}) then
      fail(fn, "attn_mask %s must be [%d, %d] or [%d, %d, %d] (batch * heads, L, S)", shape_str(mask), L, S,
        B * H, L, S)
    end
  end
  local kpm = opts.key_padding_mask
  if kpm ~= nil then
    check_mask_dtype(fn, "key_padding_mask", kpm, query.dtype)
    local want = batched and {B, S} or {S}
    if not same_shape(kpm, want) then
      fail(fn, "key_padding_mask %s must be [%s] (%s)", shape_str(kpm), table.concat(want, ", "),
        batched and "batch, key length" or "key length")
    end
    mask = merge_masks(mask, kpm:reshape(B, 1, 1, S), query.dtype)
  end
  local causal = check_bool(fn, "is_causal", opts.is_causal) == true
  local need_weights = check_bool(fn, "need_weights", opts.need_weights) ~= false
  local average = check_bool(fn, "average_attn_weights", opts.average_attn_weights) ~= false

  local q, k, v = in_projection(self, query, key, value)
  local o, w = attention_core(split_heads(q, H, bf), split_heads(k, H, bf), split_heads(v, H, bf),
    1 / sqrt(self.head_dim), mask, causal, self.dropout, self.training)
  -- [B, H, L, hd] -> the input's layout [*, E]
  o = bf and o:permute(1, 3, 2, 4):reshape(B, L, E) or o:permute(3, 1, 2, 4):reshape(L, B, E)
  o = linear(o, self.out_proj.weight, self.out_proj.bias)
  if not batched then o = o:squeeze(bdim) end
  if not need_weights then return o, nil end
  if average then w = w:mean(2) end
  if not batched then w = w:squeeze(1) end
  return o, w
end

return nn
