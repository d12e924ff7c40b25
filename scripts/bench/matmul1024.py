# matmul1024.py — PyTorch's twin of matmul1024.lua: a 1024x1024 float32
# product; threads and clock from run.sh's setting (bench_util.py); best of
# 3 batches of ITERS products, printed as
#   RESULT matmul-1024 pytorch <GFLOP/s> GFLOP/s
# Usage: python3 matmul1024.py [ITERS]
import sys

import torch

import bench_util as B

torch.manual_seed(0)
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 3
n = 1024
a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
torch.matmul(a, b, out=c)  # warm
best = float("inf")
for _ in range(3):
    t0 = B.clock()
    for _ in range(iters):
        torch.matmul(a, b, out=c)
    best = min(best, (B.clock() - t0) / iters)
print("RESULT matmul-1024 pytorch %.2f GFLOP/s" % (2 * n**3 / best * 1e-9))
