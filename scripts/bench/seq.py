"""seq.py — PyTorch twin of seq.lua: the sequence workloads, each a
training step (forward, backward, SGD) unless named otherwise. Prints
  RESULT seq-lstm pytorch <ms> ms/step, seq-gru, seq-transformer (ms/step)
  and seq-generate (ms/256tok: 256 tokens through a KV cache)."""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_util as B  # noqa: E402

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 5
torch.manual_seed(0)


def train_step(model, run):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        run(model).backward()
        opt.step()
    return step


x = torch.randn(64, 32, 128)
lstm = nn.LSTM(128, 128, num_layers=2)
step = train_step(lstm, lambda m: m(x)[0].mean())
print("RESULT seq-lstm pytorch %.2f ms/step" % (B.best_of(step, iters, 3) * 1e3))

gru = nn.GRU(128, 128, num_layers=2)
step = train_step(gru, lambda m: m(x)[0].mean())
print("RESULT seq-gru pytorch %.2f ms/step" % (B.best_of(step, iters, 3) * 1e3))

src = torch.randn(16, 128, 128)
enc = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.1, batch_first=True)
step = train_step(enc, lambda m: m(src).mean())
print("RESULT seq-transformer pytorch %.2f ms/step" % (B.best_of(step, iters, 3) * 1e3))

d, heads, layers, vocab, n = 128, 4, 4, 96, 256


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln2, self.fc, self.out = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, cache):
        q, k, v = self.qkv(self.ln1(x)).chunk(3, 2)

        def split(t):
            return t.reshape(1, 1, heads, d // heads).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        m = cache["n"]
        cache["k"][:, :, m:m + 1].copy_(k)
        cache["v"][:, :, m:m + 1].copy_(v)
        cache["n"] = m + 1
        kk, vv = cache["k"][:, :, :m + 1], cache["v"][:, :, :m + 1]
        # softmax(q k^T / sqrt(hd)) v: PyTorch 1.13 has no F.scaled_dot_product_attention
        w = torch.softmax(q @ kk.transpose(-2, -1) / math.sqrt(d // heads), -1)
        x = x + self.proj((w @ vv).transpose(1, 2).reshape(1, 1, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


tok, pos = nn.Embedding(vocab, d), nn.Embedding(n, d)
blocks = [Block() for _ in range(layers)]
ln, head = nn.LayerNorm(d), nn.Linear(d, vocab)


def generate():
    with torch.no_grad():
        caches = [{"k": torch.zeros(1, heads, n, d // heads), "v": torch.zeros(1, heads, n, d // heads), "n": 0}
                  for _ in range(layers)]
        t = torch.tensor([[0]])
        for p in range(n):
            x = tok(t) + pos(torch.tensor([[p]]))
            for i in range(layers):
                x = blocks[i](x, caches[i])
            t = head(ln(x)).view(1, vocab).argmax(1, keepdim=True)


print("RESULT seq-generate pytorch %.2f ms/256tok" % (B.best_of(generate, max(1, iters // 2), 3) * 1e3))
