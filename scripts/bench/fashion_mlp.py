"""fashion_mlp.py — PyTorch twin of fashion_mlp.lua: 784-256-128-100-10 ReLU
MLP, cross-entropy, Adam lr 1e-3, batch 128, over the 60,000 Fashion-MNIST
training images read from the same IDX files (Debian's
dataset-fashion-mnist) with gzip + numpy, inputs scaled to [0, 1], shuffled
each epoch by hand (randperm + X[idx]).
Timing (default): 50 warm-up batches, then the least of EPOCHS epochs:
  RESULT fashion-mlp pytorch <s> s/epoch
--accuracy: trains 3 epochs from seed 0, times the last two, and prints the
test accuracy as well:
  RESULT fashion-mlp pytorch_accuracy <percent> %
--synthetic: the same model and loop over 60,000 uniform random rows and
labels, for a machine without the dataset (a bare GPU machine):
  RESULT fashion-mlp-synthetic pytorch <s> s/epoch
Usage: python3 fashion_mlp.py [--epochs E] [--accuracy | --synthetic] [--device cuda]"""
import gzip
import os
import sys

import numpy as np
import torch
from torch import nn

import bench_util as B

ROOT = "/usr/share/datasets/fashion-mnist"
epochs = int(B.number(sys.argv, "--epochs", 1))
accuracy = "--accuracy" in sys.argv
synthetic = "--synthetic" in sys.argv
if accuracy and synthetic:
    sys.exit("fashion_mlp.py: --accuracy needs the real data, not --synthetic")
NAME = "fashion-mlp-synthetic" if synthetic else "fashion-mlp"
device, sync = B.device(sys.argv)
torch.manual_seed(0)
BATCH = 128
WARMUP = 50  # batches


def read_idx(base):
    """One IDX file (gzipped or not) as a numpy array."""
    path = os.path.join(ROOT, base + ".gz")
    opener = gzip.open
    if not os.path.exists(path):
        path, opener = os.path.join(ROOT, base), open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    x = torch.from_numpy(read_idx(prefix + "-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    y = torch.from_numpy(read_idx(prefix + "-labels-idx1-ubyte").astype(np.int64))
    return x.to(device), y.to(device)


if synthetic:
    X = torch.rand(60000, 784, device=device)
    Y = torch.randint(0, 10, (60000,), device=device)
else:
    X, Y = load("train")
N = X.shape[0]
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 100), nn.ReLU(),
                      nn.Linear(100, 10)).to(device)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def epoch(limit=None):
    """One pass over the data in a fresh random order; limit (optional)
    stops after that many batches (a warm-up)."""
    perm = torch.randperm(N, device=device)
    loss = None
    for b, i in enumerate(range(0, N, BATCH)):
        if limit is not None and b >= limit:
            break
        idx = perm[i:i + BATCH]
        xb, yb = X[idx], Y[idx]
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss


def timed_epoch():
    if sync:
        sync()
    t0 = B.clock()
    loss = epoch().item()
    if sync:
        sync()
    assert loss == loss, NAME + ": the loss is NaN"
    return B.clock() - t0


best = float("inf")
if accuracy:
    # 3 full epochs from the seed; the first is the warm-up, the other two are timed as well
    epoch()
    for _ in range(2):
        best = min(best, timed_epoch())
    Xt, Yt = load("test")
    model.eval()
    with torch.no_grad():
        correct = (model(Xt).argmax(1) == Yt).sum().item()
    print(f"RESULT fashion-mlp pytorch_accuracy {100 * correct / Yt.shape[0]:.2f} %")
else:
    epoch(WARMUP)
    for _ in range(epochs):
        best = min(best, timed_epoch())
print(f"RESULT {NAME} pytorch {best:.4f} s/epoch")
