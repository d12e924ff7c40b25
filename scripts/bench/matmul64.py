# matmul64.py — PyTorch's twin of matmul64.lua: a 64x64 float32 product in a
# Python loop, one thread. Prints, best of 5 runs,
#   RESULT matmul64 pytorch <ns> ns/op        a @ b, a new tensor each time
#   RESULT matmul64 pytorch_out <ns> ns/op    torch.matmul(a, b, out=c)
# Usage: python3 matmul64.py [ITERS]
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
a, b, c = torch.rand(64, 64), torch.rand(64, 64), torch.empty(64, 64)


# process CPU time, as os.clock on the dlua side
def best_of(f):
    for _ in range(1000):
        f()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            f()
        best = min(best, (time.process_time() - t0) / n)
    return best


def fresh():
    return a @ b


def reuse():
    torch.matmul(a, b, out=c)


print("RESULT matmul64 pytorch %.1f ns/op" % (best_of(fresh) * 1e9))
print("RESULT matmul64 pytorch_out %.1f ns/op" % (best_of(reuse) * 1e9))
