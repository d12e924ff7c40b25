# add1m.py — PyTorch's twin of add1m.lua: 1M-element float32 add, one
# thread, 12 MB moved per add; best of 5 batches of ITERS adds, printed as
#   RESULT add-1M pytorch <GB/s> GB/s            c = a + b
#   RESULT add-1M pytorch_inplace <GB/s> GB/s    a.add_(b)
# Usage: python3 add1m.py [ITERS]
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 200
n = 1000000
nbytes = 3 * 4 * n
a, b = torch.rand(n), torch.rand(n)


def best_of(f):
    for _ in range(iters // 10 + 1):
        f()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(iters):
            f()
        best = min(best, (time.process_time() - t0) / iters)
    return nbytes / best * 1e-9


def fresh():
    return a + b


def inplace():
    a.add_(b)


print("RESULT add-1M pytorch %.2f GB/s" % best_of(fresh))
print("RESULT add-1M pytorch_inplace %.2f GB/s" % best_of(inplace))
