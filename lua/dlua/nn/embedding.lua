-- dlua.nn.embedding: Embedding and dl.F.embedding / dl.F.one_hot.
--
-- A lookup is one index_select of the weight's rows (its backward is
-- index_add, so repeated indices sum their gradients). Indices are 1-based,
-- padding_idx too; the padding row's output is cut from the graph, so it
-- gets no gradient, as PyTorch's. max_norm renormalises the looked-up rows
-- of the weight in place before the lookup, as PyTorch's embedding_renorm_.
local dl = require "dlua"
local nn = dl.nn
local F = nn.functional
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local fmt = string.format
local shape_str, check_options, check_count = checks.shape_str, checks.options, checks.count

F.one_hot = dl.one_hot

-- padding_idx as a row number in [1, n] (negative counts from the end, as
-- PyTorch's), or nil
local function padding_row(fn, padding_idx, n)
  if padding_idx == nil then return nil end
  if math.type(padding_idx) ~= "integer" or padding_idx == 0 or padding_idx > n or padding_idx < -n then
    raise(fmt("%s: padding_idx must be an integer in [1, %d] (or [-%d, -1] from the end), got %s", fn, n, n,
      tostring(padding_idx)))
  end
  return padding_idx < 0 and n + 1 + padding_idx or padding_idx
end

local function check_indices(fn, input, n)
  if not dl.is_tensor(input) then raise(fmt("%s: indices must be a tensor, got %s", fn, type(input))) end
  if input.dtype ~= "int64" then raise(fmt("%s: indices must be int64, got %s", fn, input.dtype)) end
  if input:numel() == 0 then return end
  local lo, hi = input:min():item(), input:max():item()
  if lo < 1 then raise(fmt("%s: index %d out of range [1, %d]", fn, lo, n)) end
  if hi > n then raise(fmt("%s: index %d out of range [1, %d]", fn, hi, n)) end
end

-- rows of weight looked up by input scaled in place to norm <= max_norm
local function renorm(weight, input, max_norm, norm_type)
  dl.no_grad(function()
    local idx = input:reshape(-1)
    local rows = weight:index_select(1, idx)
    local norms = rows:norm(norm_type, 2, true)
    local scale = dl.where(norms:gt(max_norm), max_norm / (norms + 1e-7), dl.ones_like(norms))
    weight:index_copy_(1, idx, rows * scale)
  end)
end

local function embedding(fn, input, weight, padding_idx, max_norm, norm_type)
  if not dl.is_tensor(weight) or weight:dim() ~= 2 then
    raise(fmt("%s: weight must be a 2-D tensor [num_embeddings, embedding_dim], got %s", fn,
      dl.is_tensor(weight) and shape_str(weight) or type(weight)))
  end
  local n = weight:size(1)
  check_indices(fn, input, n)
  local pad = padding_row(fn, padding_idx, n)
  if max_norm ~= nil then
    if type(max_norm) ~= "number" or not (max_norm > 0) then
      raise(fmt("%s: max_norm must be a positive number, got %s", fn, tostring(max_norm)))
    end
    if type(norm_type) ~= "number" or not (norm_type > 0) then
      raise(fmt("%s: norm_type must be a positive number, got %s", fn, tostring(norm_type)))
    end
    renorm(weight, input, max_norm, norm_type)
  end
  local shape = input:size()
  shape[#shape + 1] = weight:size(2)
  local out = weight:index_select(1, input:reshape(-1)):view(shape)
  if pad and weight.requires_grad then
    -- the padding row's lookups carry no gradient to the weight
    out = dl.where(input:eq(pad):unsqueeze(-1), out:detach(), out)
  end
  return out
end

local embedding_fopts = {padding_idx = true, max_norm = true, norm_type = true}

-- F.embedding(input, weight, {padding_idx, max_norm, norm_type = 2})
function F.embedding(input, weight, opts)
  local o = check_options("dl.F.embedding", opts, embedding_fopts)
  return embedding("dl.F.embedding", input, weight, o.padding_idx, o.max_norm, o.norm_type or 2)
end

local Embedding = nn.Module:extend("Embedding")
nn.Embedding = Embedding

local embedding_opts = {padding_idx = true, max_norm = true, norm_type = true, dtype = true, device = true,
  _weight = true, freeze = true}

-- Embedding(num_embeddings, embedding_dim, {padding_idx, max_norm,
-- norm_type = 2, dtype, device}): weight [n, dim] drawn from N(0, 1), the
-- padding row zero, as PyTorch's
function Embedding:init(num_embeddings, embedding_dim, opts)
  check_count("dl.nn.Embedding", 1, "num_embeddings", num_embeddings, 1)
  check_count("dl.nn.Embedding", 2, "embedding_dim", embedding_dim, 0)
  opts = check_options("dl.nn.Embedding", opts, embedding_opts)
  self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
  self.padding_idx = padding_row("dl.nn.Embedding", opts.padding_idx, num_embeddings)
  self.max_norm, self.norm_type = opts.max_norm, opts.norm_type or 2
  if opts._weight then
    local w = opts._weight
    if not dl.is_tensor(w) or w:dim() ~= 2 or w:size(1) ~= num_embeddings or w:size(2) ~= embedding_dim then
      raise(fmt("dl.nn.Embedding: _weight must be [%d, %d], got %s", num_embeddings, embedding_dim,
        dl.is_tensor(w) and shape_str(w) or type(w)))
    end
    self.weight = nn.Parameter(w, opts.freeze ~= true)
  else
    self.weight = nn.Parameter(dl.empty(num_embeddings, embedding_dim, {dtype = opts.dtype, device = opts.device}))
    self:reset_parameters()
  end
end

function Embedding:reset_parameters()
  dl.no_grad(function()
    self.weight:normal_(0, 1)
    if self.padding_idx then self.weight[self.padding_idx]:fill_(0) end
  end)
end

-- Embedding.from_pretrained(embeddings [n, dim], {freeze = true, padding_idx, max_norm, norm_type})
function Embedding.from_pretrained(embeddings, opts)
  local fn = "dl.nn.Embedding.from_pretrained"
  if not dl.is_tensor(embeddings) or embeddings:dim() ~= 2 then
    raise(fmt("%s: embeddings must be a 2-D tensor, got %s", fn,
      dl.is_tensor(embeddings) and shape_str(embeddings) or type(embeddings)))
  end
  local o = check_options(fn, opts, {freeze = true, padding_idx = true, max_norm = true, norm_type = true})
  return Embedding(embeddings:size(1), embeddings:size(2), {padding_idx = o.padding_idx, max_norm = o.max_norm,
    norm_type = o.norm_type, _weight = embeddings:detach():clone(), freeze = o.freeze ~= false})
end

function Embedding:_label() return fmt("Embedding(%d, %d)", self.num_embeddings, self.embedding_dim) end

function Embedding:forward(input)
  return embedding(self:_label(), input, self.weight, self.padding_idx, self.max_norm, self.norm_type)
end

function Embedding:extra_repr()
  local s = fmt("%d, %d", self.num_embeddings, self.embedding_dim)
  if self.padding_idx then s = s .. fmt(", padding_idx=%d", self.padding_idx) end
  if self.max_norm then s = s .. fmt(", max_norm=%s", tostring(self.max_norm)) end
  return s
end

return nn
