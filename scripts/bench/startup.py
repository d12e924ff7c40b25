#!/usr/bin/env python3
"""startup: process start to the first op finished, dlua vs PyTorch.
Each command runs alternately, RUNS times (default 15) after 2 warm-ups;
medians printed as `RESULT startup <impl> <seconds> s`.
Usage: python3 startup.py [RUNS]"""
import os
import statistics
import subprocess
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
dlua = [os.path.join(root, "bin", "dlua"), "-e", "local c = dl.ones(2) + 1"]
torch = ["/usr/bin/python3", "-c", "import torch; c = torch.ones(2) + 1"]


def once(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


for cmd in (dlua, torch):
    once(cmd)
    once(cmd)
times = {"dlua": [], "pytorch": []}
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
for _ in range(runs):
    times["dlua"].append(once(dlua))
    times["pytorch"].append(once(torch))
for impl, ts in times.items():
    print(f"RESULT startup {impl} {statistics.median(ts):.6f} s")
sys.stdout.flush()
