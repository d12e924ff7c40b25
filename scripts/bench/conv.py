"""conv.py — PyTorch twin of conv.lua: the convolutional workloads, each a
training step (forward, backward, SGD) unless named otherwise. Prints
  RESULT conv-lenet pytorch <ms> ms/step, conv-resblock, conv-depthwise,
  bn2d-step (ms/step) and cnn-epoch (s/epoch: 469 steps of batch 128, the best of 4 runs of 10 steps)."""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_util as B  # noqa: E402

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 5
torch.manual_seed(0)
ce = nn.CrossEntropyLoss()


def train_step(model, x, y, loss):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()
    return step


def mean_loss(out, _):
    return out.mean()


lenet = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(64 * 7 * 7, 10))
step = train_step(lenet, torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,)), ce)
print("RESULT conv-lenet pytorch %.2f ms/step" % (B.best_of(step, iters, 3) * 1e3))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)
        self.c2, self.b2 = nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)

    def forward(self, x):
        return (self.b2(self.c2(self.b1(self.c1(x)).relu())) + x).relu()


step = train_step(Block(), torch.randn(32, 64, 32, 32), None, mean_loss)
print("RESULT conv-resblock pytorch %.2f ms/step" % (B.best_of(step, iters, 3) * 1e3))

dw = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.Conv2d(64, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU())
step = train_step(dw, torch.randn(32, 64, 32, 32), None, mean_loss)
print("RESULT conv-depthwise pytorch %.2f ms/step" % (B.best_of(step, iters, 3) * 1e3))

step = train_step(nn.BatchNorm2d(64), torch.randn(32, 64, 32, 32), None, mean_loss)
print("RESULT bn2d-step pytorch %.2f ms/step" % (B.best_of(step, iters * 4, 3) * 1e3))

cnn = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
    nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
step = train_step(cnn, torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,)), ce)
print("RESULT cnn-epoch pytorch %.2f s/epoch" % (B.best_of(step, 10, 4) * 469))
