"""layers.py — PyTorch twin of layers.lua: forward + backward, one thread,
  softmax-ce  cross-entropy of 128x10 logits against 128 class labels
  batchnorm   BatchNorm1d(256) in train mode on a 128x256 batch, with a fixed
              output gradient
Prints the best of 5 batches of ITERS steps as
  RESULT softmax-ce pytorch <us> us/step
  RESULT batchnorm pytorch <us> us/step
Usage: python3 layers.py [ITERS]"""
import sys

import torch
from torch import nn

import bench_util as B

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
torch.manual_seed(0)

logits = torch.randn(128, 10).requires_grad_()
labels = torch.randint(0, 10, (128,))
ce = nn.CrossEntropyLoss()


def step_ce():
    logits.grad = None
    ce(logits, labels).backward()


bn = nn.BatchNorm1d(256)
x = torch.randn(128, 256).requires_grad_()
g = torch.randn(128, 256)
params = list(bn.parameters())


def step_bn():
    x.grad = None
    for p in params:
        p.grad = None
    bn(x).backward(g)


t_ce = B.best_of(step_ce, iters)
t_bn = B.best_of(step_bn, iters // 4)
print(f"RESULT softmax-ce pytorch {t_ce * 1e6:.2f} us/step")
print(f"RESULT batchnorm pytorch {t_bn * 1e6:.2f} us/step")
