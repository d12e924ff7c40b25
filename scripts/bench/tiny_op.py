# tiny_op.py — PyTorch's per-op overhead for `c = a + b` on 8-element float32
# tensors at one thread; prints "tiny-op <ns per op>" like tiny_op.lua.
# Both count process CPU time (Lua's os.clock), so a busy machine's waits
# do not count against either.
import sys
import time

import torch

torch.set_num_threads(1)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
a = torch.rand(8)
b = torch.rand(8)
for _ in range(n // 10):
    c = a + b
best = float("inf")
for _ in range(3):
    t0 = time.process_time()
    for _ in range(n):
        c = a + b
    best = min(best, (time.process_time() - t0) / n * 1e9)
print("tiny-op %.1f" % best)
