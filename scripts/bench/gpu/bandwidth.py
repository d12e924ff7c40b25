"""bandwidth.py — PyTorch twin of bandwidth.lua: copy_, a + b and mul_ on
256 MB float32 CUDA tensors, GB/s counting every byte read and written:
  RESULT gpu-bandwidth pytorch_<op> <GB/s> GB/s
Usage: python3 bandwidth.py [--iters K]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch  # noqa: E402

import bench_util as B  # noqa: E402

iters = int(B.number(sys.argv, "--iters", 20))
device, sync = B.device(["--device", "cuda"])
N = 64 * 1024 * 1024
MB = N * 4
a = torch.rand(N, device=device)
b = torch.rand(N, device=device)
state = {"k": 0, "c": None}


def add():
    state["c"] = a + b


def mul_():
    state["k"] += 1
    a.mul_(2 if state["k"] % 2 == 1 else 0.5)


for name, passes, f in (("copy", 2, lambda: b.copy_(a)), ("add", 3, add), ("mul_", 2, mul_)):
    t = B.best_of(f, iters, 5, sync)
    print(f"RESULT gpu-bandwidth pytorch_{name} {passes * MB / t / 1e9:.1f} GB/s")
