"""adam_step.py — PyTorch twin of adam_step.lua: one torch.optim.Adam step
(default implementation, float32) over the 8,577 parameters of the seed's
MLP (2-64-64-64-1) and over a 1M-parameter model (Linear(1000, 1000)), with
fixed gradients, one thread. Prints
  RESULT adam-step-mlp pytorch <us> us/step
  RESULT adam-step-1M pytorch <us> us/step"""
import sys
import time

import torch

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
torch.set_num_threads(1)
torch.manual_seed(0)


def params_of(sizes):
    ps = []
    for i in range(len(sizes) - 1):
        ps.append(torch.nn.Parameter(torch.randn(sizes[i + 1], sizes[i]) * 0.1))
        ps.append(torch.nn.Parameter(torch.randn(sizes[i + 1]) * 0.1))
    for p in ps:
        p.grad = torch.randn(p.shape) * 0.01
    return ps


def bench(name, sizes, n):
    ps = params_of(sizes)
    opt = torch.optim.Adam(ps, lr=1e-3)
    for _ in range(max(1, n // 10)):
        opt.step()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            opt.step()
        best = min(best, (time.process_time() - t0) / n)
    print(f"RESULT {name} pytorch {best * 1e6:.2f} us/step")


bench("adam-step-mlp", [2, 64, 64, 64, 1], iters)
bench("adam-step-1M", [1000, 1000], max(1, iters // 40))
