"""mlp_step.py — PyTorch twin of mlp_step.lua: forward + backward of the
8-64-64-64-1 ReLU MLP with MSE on a 64-row batch, one thread.
Prints `RESULT mlp-step pytorch <us> us/step`."""
import sys
import time

import torch

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
torch.set_num_threads(1)
torch.manual_seed(0)
sizes = [8, 64, 64, 64, 1]
params = []
for i in range(len(sizes) - 1):
    bound = 1 / sizes[i] ** 0.5
    params.append(((torch.rand(sizes[i + 1], sizes[i]) * 2 - 1) * bound).requires_grad_())
    params.append(((torch.rand(sizes[i + 1]) * 2 - 1) * bound).requires_grad_())
x, y = torch.randn(64, 8), torch.randn(64, 1)


def step():
    h = x
    for i in range(0, len(params), 2):
        h = torch.addmm(params[i + 1], h, params[i].t())
        if i < len(params) - 2:
            h = h.relu()
    d = h - y
    loss = (d * d).mean()
    for p in params:
        p.grad = None
    loss.backward()
    return loss


for _ in range(iters // 10):
    step()
best = float("inf")
for _ in range(5):
    t0 = time.process_time()
    for _ in range(iters):
        step()
    best = min(best, (time.process_time() - t0) / iters)
print(f"RESULT mlp-step pytorch {best * 1e6:.2f} us/step")
