"""dist.py — dist.lua's twin: torch.distributed's all_reduce (the gloo
backend, Debian's PyTorch has no MPI one) between 2 processes of this
machine, float32 sums in place, bus bandwidth (bytes x 2(p-1)/p / time) of
the best of 5 batches:
  RESULT allreduce-<size> pytorch <GB/s> GB/s
Usage: python3 dist.py"""
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SIZES = [(4096, 400), (1 << 20, 100), (64 << 20, 4)]  # bytes, iterations a batch (gloo is slow at 4 KB)


def label(nbytes):
    return f"{nbytes >> 20}MB" if nbytes >= 1 << 20 else f"{nbytes >> 10}KB"


def rank_main(rank, world, port):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for nbytes, iters in SIZES:
        x = torch.ones(nbytes // 4)
        dist.all_reduce(x)
        best = float("inf")
        for _ in range(5):
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                dist.all_reduce(x)
            t = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            best = min(best, t.item())
        if rank == 0:
            print(f"RESULT allreduce-{label(nbytes)} pytorch {nbytes * 2 * (world - 1) / world / best / 1e9:.3f} GB/s",
                  flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    port = 29500 + os.getpid() % 1000
    mp.spawn(rank_main, args=(2, port), nprocs=2, join=True)
    sys.stdout.flush()
