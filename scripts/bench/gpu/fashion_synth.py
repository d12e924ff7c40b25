"""fashion_synth.py — PyTorch twin of fashion_synth.lua: fashion_mlp.py's
MLP, loss, optimiser and loop over 60,000 random rows (no dataset files):
  RESULT fashion-mlp-synthetic pytorch <s> s/epoch
Usage: python3 fashion_synth.py [--epochs E] [--device cuda]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch  # noqa: E402
from torch import nn  # noqa: E402

import bench_util as B  # noqa: E402

epochs = int(B.number(sys.argv, "--epochs", 1))
device, sync = B.device(sys.argv)
torch.manual_seed(0)
N, BATCH = 60000, 128
X = torch.rand(N, 784, device=device)
Y = torch.randint(0, 10, (N,), device=device)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(),
                      nn.Linear(256, 128), nn.ReLU(),
                      nn.Linear(128, 100), nn.ReLU(),
                      nn.Linear(100, 10)).to(device)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def epoch():
    perm = torch.randperm(N, device=device)
    loss = None
    for i in range(0, N, BATCH):
        idx = perm[i:i + BATCH]
        loss = loss_fn(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss


epoch()  # warm-up
best = float("inf")
for _ in range(epochs):
    if sync:
        sync()
    t0 = B.clock()
    loss = epoch().item()
    if sync:
        sync()
    best = min(best, B.clock() - t0)
    assert loss == loss, "fashion-mlp-synthetic: the loss is NaN"
print(f"RESULT fashion-mlp-synthetic pytorch {best:.4f} s/epoch")
