# add1m.py — PyTorch's twin of add1m.lua: 1M-element float32 add, threads and
# clock from run.sh's setting (bench_util.py), 12 MB moved per add; best of 5
# batches of ITERS adds, printed as
#   RESULT add-1M pytorch <GB/s> GB/s            c = a + b
#   RESULT add-1M pytorch_inplace <GB/s> GB/s    a.add_(b)
# Usage: python3 add1m.py [ITERS]
import sys

import torch

import bench_util as B

torch.manual_seed(0)
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 200
n = 1000000
nbytes = 3 * 4 * n
a, b = torch.rand(n), torch.rand(n)


def fresh():
    return a + b


def inplace():
    a.add_(b)


print("RESULT add-1M pytorch %.2f GB/s" % (nbytes / B.best_of(fresh, iters) * 1e-9))
print("RESULT add-1M pytorch_inplace %.2f GB/s" % (nbytes / B.best_of(inplace, iters) * 1e-9))
