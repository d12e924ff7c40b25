-- seq.lua — the sequence workloads, each a training step (forward,
-- backward, SGD) unless named otherwise. Twin: seq.py. Prints
--   RESULT seq-lstm dlua <ms> ms/step          LSTM, batch 32, seq 64, 128 -> 128 hidden, 2 layers
--   RESULT seq-gru dlua <ms> ms/step           GRU of the same size
--   RESULT seq-transformer dlua <ms> ms/step   TransformerEncoderLayer, batch 16, seq 128, d_model 128, 4 heads
--   RESULT seq-generate dlua <ms> ms/256tok    256 tokens from a 4-layer d_model 128 decoder with a KV cache
-- Usage: dlua seq.lua [ITERS]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local nn, F = dl.nn, dl.F
local iters = tonumber(arg and arg[1]) or 5

local function train_step(model, run)
  local opt = dl.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
  return function()
    opt:zero_grad()
    run(model):backward()
    opt:step()
  end
end

dl.manual_seed(0)
local x = dl.randn(64, 32, 128) -- [T, B, features]
local lstm = nn.LSTM(128, 128, {num_layers = 2})
local step = train_step(lstm, function(m) return (m(x)):mean() end)
print(string.format("RESULT seq-lstm dlua %.2f ms/step", B.best_of(step, iters, 3) * 1e3))

local gru = nn.GRU(128, 128, {num_layers = 2})
step = train_step(gru, function(m) return (m(x)):mean() end)
print(string.format("RESULT seq-gru dlua %.2f ms/step", B.best_of(step, iters, 3) * 1e3))

local src = dl.randn(16, 128, 128)
local enc = nn.TransformerEncoderLayer(128, 4, {dim_feedforward = 512, dropout = 0.1, batch_first = true})
step = train_step(enc, function(m) return m(src):mean() end)
print(string.format("RESULT seq-transformer dlua %.2f ms/step", B.best_of(step, iters, 3) * 1e3))

-- a pre-norm decoder (the language-model demo's): per token, each layer
-- appends its key and value to the cache and attends over the cache
local d, heads, layers, vocab, n = 128, 4, 4, 96, 256
local Block = nn.Module:extend("Block")
function Block:init()
  self.ln1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
  self.ln2, self.fc, self.out = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
end
function Block:forward(x, cache)
  local q, k, v = table.unpack(self.qkv(self.ln1(x)):chunk(3, 3))
  local function split(t) return t:reshape(1, 1, heads, d // heads):transpose(2, 3) end
  q, k, v = split(q), split(k), split(v)
  cache.k:narrow(3, cache.n + 1, 1):copy_(k)
  cache.v:narrow(3, cache.n + 1, 1):copy_(v)
  cache.n = cache.n + 1
  local y = F.scaled_dot_product_attention(q, cache.k:narrow(3, 1, cache.n), cache.v:narrow(3, 1, cache.n))
  x = x + self.proj(y:transpose(2, 3):reshape(1, 1, d))
  return x + self.out(F.gelu(self.fc(self.ln2(x))))
end
local tok, pos = nn.Embedding(vocab, d), nn.Embedding(n, d)
local blocks = {}
for i = 1, layers do blocks[i] = Block() end
local ln, head = nn.LayerNorm(d), nn.Linear(d, vocab)
local function generate()
  dl.no_grad(function()
    local caches = {}
    for i = 1, layers do
      caches[i] = {k = dl.zeros(1, heads, n, d // heads), v = dl.zeros(1, heads, n, d // heads), n = 0}
    end
    local t = dl.tensor({{1}})
    for p = 1, n do
      local x = tok(t) + pos(dl.tensor({{p}}))
      for i = 1, layers do x = blocks[i](x, caches[i]) end
      t = head(ln(x)):view(1, vocab):argmax(2, true)
    end
  end)
end
print(string.format("RESULT seq-generate dlua %.2f ms/256tok", B.best_of(generate, math.max(1, iters // 2), 3) * 1e3))
