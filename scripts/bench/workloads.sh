# workloads.sh — what `make bench` measures; sourced by run.sh (which
# documents the RESULT-line convention each script follows).
#
# An entry <e> runs scripts/bench/<script>.lua with dlua and
# scripts/bench/<script>.py with Debian's PyTorch, where <script> is
# SCRIPT[<e>] or <e> itself. Entries run in ORDER, then any other .lua/.py
# pair in name order.

# shellcheck shell=bash disable=SC2034 # the variables are run.sh's
ORDER=(tiny_op matmul64 matmul1024 add1m mlp_step mlp_nn adam_step layers
  housing_mlp fashion_mlp conv seq dist startup)
declare -A SCRIPT=()

# scripts here that are no workload of their own
HELPERS=(bench_util)

# command-line arguments, per entry and side (<e>.lua / <e>.py); iteration
# counts keep one run of a script within a few seconds on 2 cores
declare -A ARGS=(
  [tiny_op.lua]=500000 [tiny_op.py]=100000
  [matmul64.lua]=5000 [matmul64.py]=5000
  [add1m.lua]=50 [add1m.py]=50
  [mlp_step.lua]=1000 [mlp_step.py]=1000 [mlp_nn.lua]=1000 [mlp_nn.py]=1000
  [adam_step.lua]=500 [adam_step.py]=500
  [housing_mlp.lua]="--epochs 3" [housing_mlp.py]="--epochs 3"
  [conv.lua]=5 [conv.py]=5
  [seq.lua]=5 [seq.py]=5
)
# further arguments for the first round's one-thread runs only: fashion-mlp's
# test accuracy after 3 epochs is the same every run (seeded, one thread),
# so one run per side measures it
declare -A FIRST_ARGS=([fashion_mlp.lua]=--accuracy [fashion_mlp.py]=--accuracy)

# entries measured fewer (or more) times than BENCH_ROUNDS
declare -A ROUNDS=([conv]=3 [seq]=3 [dist]=3)

# startup.py's runs per side (the median is reported)
STARTUP_RUNS=7

# entries whose 1-thread runs also report the process's peak resident
# memory (GNU time's %M) as this workload
declare -A RSS=([housing_mlp]=rss)

# entries where threads matter: also measured at each framework's
# multi-thread settings (below), with wall-clock time
THREADED=(matmul1024 add1m housing_mlp fashion_mlp conv seq)

# THREADED entries also run beside one busy process the bench starts (the
# contention table): each side at one thread and at its multi-thread
# setting (PyTorch: the fastest of the first round), once. The long conv and
# seq entries are left out to keep make bench within minutes.
CONTENDED=(matmul1024 add1m housing_mlp fashion_mlp)

# The multi-thread settings for T threads (T = the cores online, at most
# BENCH_MAX_THREADS; none when T is 1): a RESULT impl gets "@<tag>" appended,
# and the script runs with this environment. dlua runs T threads for both its
# own loops and its (OpenMP) OpenBLAS, which share one pool and never
# oversubscribe. PyTorch has two pools, its intra-op threads
# (torch.set_num_threads) and its pthreads OpenBLAS's (OPENBLAS_NUM_THREADS,
# read once at load): the three ways to fill T cores are all measured in the
# first round, the fastest goes on to the others, and report.lua shows it
# ("<torch>+<blas>" names it) beside the first round's figures of all three.
thread_settings() { # T -> lines "<side> <tag> <environment>"
  local t=$1
  echo "dlua $t BENCH_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t BENCH_CLOCK=wall"
  echo "pytorch 1+$t BENCH_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=$t BENCH_CLOCK=wall"
  echo "pytorch $t+1 BENCH_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 BENCH_CLOCK=wall"
  echo "pytorch $t+$t BENCH_THREADS=$t OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t BENCH_CLOCK=wall"
}
