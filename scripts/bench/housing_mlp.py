"""housing_mlp.py — PyTorch twin of housing_mlp.lua: the seed's regression,
X 20640x8 (standardised features), y a smooth function of X plus noise,
Sequential(Linear(8,64), ReLU, Linear(64,64), ReLU, Linear(64,64), ReLU,
Linear(64,1)), MSELoss, Adam lr 1e-3, batch 64, shuffled each epoch; seconds
per epoch over all 20,640 rows, two loops:
  DataLoader  torch.utils.data.DataLoader(TensorDataset(X, y), batch_size=64,
              shuffle=True), the loop PyTorch's tutorials write
  index       by hand: torch.randperm, then X[idx] for 64-row slices
Both loops read loss.item() each step. Prints, for the least of EPOCHS timed
epochs after 50 warm-up batches,
  RESULT housing-mlp pytorch_DataLoader <s> s/epoch
  RESULT housing-mlp pytorch_index <s> s/epoch
Usage: python3 housing_mlp.py [--epochs E] [--device cuda]"""
import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bench_util as B

epochs = int(B.number(sys.argv, "--epochs", 3))
device, sync = B.device(sys.argv)
torch.manual_seed(0)

N, BATCH = 20640, 64
X = torch.randn(N, 8)
w = torch.linspace(-1, 1, 8).view(8, 1)
y = (X @ w).tanh() + X[:, :1].pow(2) * 0.1 + torch.randn(N, 1) * 0.1
X, y = X.to(device), y.to(device)


def setup():
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 1)).to(device)
    return model, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=1e-3)


def epoch_loader(model, loss_fn, opt, loader, limit=None):
    total = 0.0
    for b, (xb, yb) in enumerate(loader):
        if limit is not None and b >= limit:
            break
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return total


def epoch_index(model, loss_fn, opt, limit=None):
    total = 0.0
    perm = torch.randperm(N, device=device)
    last = N if limit is None else min(N, limit * BATCH)
    for i in range(0, last, BATCH):
        idx = perm[i:i + BATCH]
        xb, yb = X[idx], y[idx]
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return total


WARMUP = 50  # batches


def time_epochs(run):
    run(WARMUP)
    best = float("inf")
    for _ in range(epochs):
        if sync:
            sync()
        t0 = B.clock()
        loss = run()
        if sync:
            sync()
        best = min(best, B.clock() - t0)
        assert loss == loss, "housing-mlp: the loss is NaN"
    return best


m1, l1, o1 = setup()
loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True)
t_loader = time_epochs(lambda limit=None: epoch_loader(m1, l1, o1, loader, limit))
m2, l2, o2 = setup()
t_index = time_epochs(lambda limit=None: epoch_index(m2, l2, o2, limit))
print(f"RESULT housing-mlp pytorch_DataLoader {t_loader:.5f} s/epoch")
print(f"RESULT housing-mlp pytorch_index {t_index:.5f} s/epoch")
