"""sgemm.py — PyTorch twin of sgemm.lua: torch.matmul of two 4096 x 4096
float32 CUDA matrices (TF32 off, PyTorch's default for matmul):
  RESULT gpu-sgemm-4096 pytorch <GFLOP/s> GFLOP/s
Usage: python3 sgemm.py [--iters K] [--n N]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch  # noqa: E402

import bench_util as B  # noqa: E402

iters = int(B.number(sys.argv, "--iters", 10))
n = int(B.number(sys.argv, "--n", 4096))
device, sync = B.device(["--device", "cuda"])
torch.backends.cuda.matmul.allow_tf32 = False
a = torch.randn(n, n, device=device)
b = torch.randn(n, n, device=device)
t = B.best_of(lambda: torch.matmul(a, b), iters, 5, sync)
print(f"RESULT gpu-sgemm-{n} pytorch {2 * n ** 3 / t / 1e9:.0f} GFLOP/s")
