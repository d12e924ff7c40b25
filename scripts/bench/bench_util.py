"""bench_util.py — what the PyTorch side of every workload shares: the
thread setting run.sh asks for, the clock that fits it, and best-of timing.
  BENCH_THREADS          torch.set_num_threads(n) (default 1)
  OPENBLAS_NUM_THREADS   read by PyTorch's OpenBLAS when it loads (run.sh sets it)
  BENCH_CLOCK            "cpu" (default when everything runs on one thread:
                         time.process_time) or "wall" (time.perf_counter; the
                         only honest clock once more than one thread runs)
Python puts a script's own directory on sys.path, so `import bench_util`
works from any scripts/bench/*.py."""
import os
import sys
import time

import torch

threads = int(os.environ.get("BENCH_THREADS", "1"))
blas_threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
torch.set_num_threads(threads)
wall = os.environ.get("BENCH_CLOCK") == "wall" or threads > 1 or blas_threads > 1
clock = time.perf_counter if wall else time.process_time


def best_of(f, iters, batches=5, sync=None):
    """The least time per call of f over `batches` batches of `iters` calls,
    after iters // 10 + 1 warm-up calls; sync (optional) runs before each
    clock reading."""
    for _ in range(iters // 10 + 1):
        f()
    best = float("inf")
    for _ in range(batches):
        if sync:
            sync()
        t0 = clock()
        for _ in range(iters):
            f()
        if sync:
            sync()
        best = min(best, (clock() - t0) / iters)
    return best


def device(argv):
    """--device cuda (default cpu); exits with status 2 and a message when
    the device is missing. Returns (torch.device, synchronize or None)."""
    name = "cpu"
    if "--device" in argv:
        i = argv.index("--device")
        name = argv[i + 1] if i + 1 < len(argv) else ""
    if name == "cpu":
        return torch.device("cpu"), None
    if name != "cuda":
        print(f"{sys.argv[0]}: unknown device '{name}' (cpu or cuda)", file=sys.stderr)
        sys.exit(2)
    if not torch.cuda.is_available():
        print(f"{sys.argv[0]}: --device cuda asked for, but torch.cuda.is_available() is False", file=sys.stderr)
        sys.exit(2)
    return torch.device("cuda"), torch.cuda.synchronize


def number(argv, flag, default):
    """The number after flag on the command line, or default."""
    if flag in argv:
        return float(argv[argv.index(flag) + 1])
    return default
