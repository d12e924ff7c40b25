"""mlp_nn.py — PyTorch twin of mlp_nn.lua: forward + backward of
nn.Sequential(Linear(8,64), ReLU, Linear(64,64), ReLU, Linear(64,64), ReLU,
Linear(64,1)) with MSELoss on a 64-row batch, one thread.
Prints `RESULT mlp-nn pytorch <us> us/step`."""
import sys
import time

import torch
from torch import nn

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
torch.set_num_threads(1)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 1))
loss_fn = nn.MSELoss()
params = list(model.parameters())
x, y = torch.randn(64, 8), torch.randn(64, 1)


def step():
    loss = loss_fn(model(x), y)
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
print(f"RESULT mlp-nn pytorch {best * 1e6:.2f} us/step")
